//! `eddy serve`, `eddy jobs` and `eddy map`: running a node and talking to
//! one over its HTTP API.

use anyhow::Context;
use eddy_client::{Client, JobAction};
use eddy_server::{Node, ServerConfig, TOKEN_ENV};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where a command finds its node.
#[derive(clap::Args, Debug)]
pub struct Remote {
    /// Base URL of the node's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    http: String,
    /// Bearer token for mutating calls (default: the EDDY_TOKEN variable).
    #[arg(long)]
    token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl Remote {
    fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.http)
            .with_context(|| format!("'{}' is not a usable node URL", self.http))?;
        let token = self.token.clone().or_else(|| std::env::var(TOKEN_ENV).ok());
        Ok(match token {
            Some(t) => client.with_token(t),
            None => client,
        })
    }
}

/// `eddy jobs` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum JobsCommand {
    /// Lists the node's jobs.
    List(Remote),
    /// Shows a job with its DAG and per-vertex metrics.
    Show {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Cancels a job.
    Cancel {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Suspends a job (needs snapshots; the node says when it cannot).
    Suspend {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resumes a suspended job.
    Resume {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Restarts a job from its last snapshot.
    Restart {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `eddy map` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum MapCommand {
    /// Lists the node's maps with their statistics.
    List(Remote),
    /// Shows one map's statistics.
    Stats {
        /// Map name.
        map: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Prints the value of a key.
    Get {
        /// Map name.
        map: String,
        /// Key (JSON, or plain text for string keys).
        key: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Sets the value of a key.
    Put {
        /// Map name.
        map: String,
        /// Key (JSON, or plain text for string keys).
        key: String,
        /// Value as JSON.
        value: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Removes a key.
    Delete {
        /// Map name.
        map: String,
        /// Key (JSON, or plain text for string keys).
        key: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Lists the entries matching a predicate, e.g. "amount > 100 and country = 'DE'".
    Query {
        /// Map name.
        map: String,
        /// The predicate.
        predicate: String,
        /// Page number, from 0.
        #[arg(long, default_value_t = 0)]
        page: usize,
        /// Entries per page.
        #[arg(long, default_value_t = 20)]
        page_size: usize,
        #[command(flatten)]
        remote: Remote,
    },
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs an `eddy jobs` command.
pub fn run_jobs(command: JobsCommand) -> anyhow::Result<()> {
    let (id, remote, action) = match command {
        JobsCommand::List(remote) => {
            let jobs = remote.client()?.jobs()?;
            if remote.json {
                return print_json(&jobs);
            }
            println!(
                "{:>4}  {:<24} {:<10} {:>10} {:>14} {:>14}",
                "id", "name", "status", "uptime s", "source out", "sink in"
            );
            for j in jobs {
                println!(
                    "{:>4}  {:<24} {:<10} {:>10} {:>14} {:>14}",
                    j.id,
                    j.name,
                    j.status,
                    j.uptime_ms / 1000,
                    j.source_items_out,
                    j.sink_items_in
                );
            }
            return Ok(());
        }
        JobsCommand::Show { id, remote } => {
            let job = remote.client()?.job(id)?;
            if remote.json {
                return print_json(&job);
            }
            let s = &job.summary;
            println!(
                "job {} '{}': {} for {} s",
                s.id,
                s.name,
                s.status,
                s.uptime_ms / 1000
            );
            if let Some(e) = &job.error {
                println!("error: {e}");
            }
            println!(
                "{:<28} {:>5} {:>14} {:>14} {:>9} {:>12}",
                "vertex", "par", "items in", "items out", "queue", "wm lag ms"
            );
            for v in &job.vertices {
                println!(
                    "{:<28} {:>5} {:>14} {:>14} {:>8.0}% {:>12}",
                    v.name,
                    v.parallelism,
                    v.items_in,
                    v.items_out,
                    v.queue_fill * 100.0,
                    v.watermark_lag_ms
                        .map_or("-".to_string(), |l| l.to_string())
                );
            }
            return Ok(());
        }
        JobsCommand::Cancel { id, remote } => (id, remote, JobAction::Cancel),
        JobsCommand::Suspend { id, remote } => (id, remote, JobAction::Suspend),
        JobsCommand::Resume { id, remote } => (id, remote, JobAction::Resume),
        JobsCommand::Restart { id, remote } => (id, remote, JobAction::Restart),
    };
    let answer = remote.client()?.job_action(id, action)?;
    if remote.json {
        print_json(&answer)
    } else {
        println!("job {id}: {} done", action.as_str());
        Ok(())
    }
}

/// Runs an `eddy map` command.
pub fn run_map(command: MapCommand) -> anyhow::Result<()> {
    match command {
        MapCommand::List(remote) => {
            let maps = remote.client()?.maps()?;
            if remote.json {
                return print_json(&maps);
            }
            println!(
                "{:<24} {:>10} {:>12} {:>10} {:>10} {:>10}",
                "map", "entries", "bytes", "gets", "puts", "hits"
            );
            for m in maps {
                println!(
                    "{:<24} {:>10} {:>12} {:>10} {:>10} {:>10}",
                    m.name, m.entries, m.bytes, m.gets, m.puts, m.hits
                );
            }
            Ok(())
        }
        MapCommand::Stats { map, remote } => {
            let stats = remote.client()?.map_stats(&map)?;
            print_json(&stats)
        }
        MapCommand::Get { map, key, remote } => match remote.client()?.get(&map, &key)? {
            Some(value) if remote.json => print_json(&value),
            Some(value) => {
                println!("{value}");
                Ok(())
            }
            None => anyhow::bail!("map '{map}' has no entry for key {key}"),
        },
        MapCommand::Put {
            map,
            key,
            value,
            remote,
        } => {
            let value: serde_json::Value = serde_json::from_str(&value).with_context(|| {
                format!("the value is not JSON: {value} (quote strings: '\"text\"')")
            })?;
            let old = remote.client()?.put(&map, &key, &value)?;
            if remote.json {
                print_json(&serde_json::json!({ "old_value": old }))
            } else {
                Ok(())
            }
        }
        MapCommand::Delete { map, key, remote } => match remote.client()?.delete(&map, &key)? {
            Some(old) if remote.json => print_json(&serde_json::json!({ "old_value": old })),
            Some(_) => Ok(()),
            None => anyhow::bail!("map '{map}' has no entry for key {key}"),
        },
        MapCommand::Query {
            map,
            predicate,
            page,
            page_size,
            remote,
        } => {
            let result = remote
                .client()?
                .query(&map, Some(&predicate), page, page_size)?;
            if remote.json {
                return print_json(&result);
            }
            for e in &result.entries {
                println!("{}\t{}", e.key, e.value);
            }
            eprintln!(
                "page {} of {} ({} matching entries)",
                result.page,
                result.pages.max(1),
                result.total
            );
            Ok(())
        }
    }
}

/// Arguments of `eddy serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TOML file with the node's settings and jobs.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the HTTP API and dashboard (overrides the config file).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Bearer token required for mutating calls (default: the EDDY_TOKEN variable).
    #[arg(long)]
    token: Option<String>,
}

/// The config file of `eddy serve`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeConfig {
    /// Address of the HTTP API.
    bind: Option<SocketAddr>,
    /// Cooperative worker threads.
    workers: Option<usize>,
    /// Jobs to run.
    #[serde(default)]
    jobs: Vec<JobSpec>,
}

/// A job of the config file.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum JobSpec {
    /// The fraud-detection demo at a fixed rate.
    FraudDemo {
        /// Generator seed.
        #[serde(default)]
        seed: u64,
        /// Transactions per second.
        rate: f64,
        /// Stop after this many transactions (default: run until cancelled).
        events: Option<u64>,
    },
}

fn read_config(path: &PathBuf) -> anyhow::Result<NodeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("'{}': {e}", path.display()))
}

/// Starts the HTTP API on `node` and blocks until it stops.
pub fn serve_node(
    node: std::sync::Arc<Node>,
    bind: SocketAddr,
    token: Option<String>,
) -> anyhow::Result<()> {
    let config = ServerConfig {
        bind,
        token,
        ..ServerConfig::default()
    };
    let server = eddy_server::start(node, config).context("starting the HTTP server")?;
    eprintln!("dashboard and API at {}", server.url());
    server.wait().context("the HTTP server stopped")?;
    Ok(())
}

/// Runs `eddy serve`.
pub fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => read_config(path)?,
        None => NodeConfig::default(),
    };
    let mut engine = eddy_runtime::EddyConfig::default();
    if let Some(w) = config.workers {
        anyhow::ensure!(w > 0, "workers in the config file must be at least 1");
        engine.cooperative_threads = w;
    }
    let eddy = std::sync::Arc::new(eddy_runtime::Eddy::new(engine));
    let grid = eddy_grid::Grid::new();
    let node = Node::new(eddy.clone(), grid.clone());
    for spec in config.jobs {
        match spec {
            JobSpec::FraudDemo { seed, rate, events } => {
                anyhow::ensure!(rate > 0.0, "rate of a fraud-demo job must be positive");
                crate::demo::submit_served(&node, seed, events, Some(rate))?;
            }
        }
    }
    let bind = args
        .bind
        .or(config.bind)
        .unwrap_or(eddy_server::BIND_DEFAULT);
    let token = args.token.or_else(|| std::env::var(TOKEN_ENV).ok());
    serve_node(node, bind, token)
}
