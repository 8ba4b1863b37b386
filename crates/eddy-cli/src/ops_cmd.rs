//! `eddy serve`, `eddy jobs` and `eddy map`: running a node and talking to
//! one over its HTTP API.

use anyhow::Context;
use eddy::{Guarantee, JobConfig};
use eddy_client::{Client, JobAction};
use eddy_server::{Node, ServerConfig, TOKEN_ENV};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Suspends a running job after a final snapshot (a job without
    /// snapshots just stops, and starts afresh when resumed).
    Suspend {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resumes a suspended job from its latest snapshot.
    Resume {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Restarts a running job from its latest snapshot, as after a failure.
    Restart {
        /// Job id.
        id: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Exports a snapshot of a running job under a name and prints its path
    /// on the node; a job started with that file as `restore_from` goes on
    /// from it (an upgrade).
    Export {
        /// Job id.
        id: u64,
        /// Name to keep the snapshot under: letters, digits, '-', '_', '.'.
        #[arg(long)]
        name: String,
        /// Cancel the job once the snapshot is durable.
        #[arg(long)]
        cancel: bool,
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
                "{:>4}  {:<24} {:<10} {:<14} {:>10} {:>14} {:>14}",
                "id", "name", "status", "guarantee", "uptime s", "source out", "sink in"
            );
            for j in jobs {
                println!(
                    "{:>4}  {:<24} {:<10} {:<14} {:>10} {:>14} {:>14}",
                    j.id,
                    j.name,
                    j.status,
                    j.guarantee,
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
            println!("guarantee: {}", s.guarantee);
            if let Some(snapshots) = &s.snapshots {
                println!("snapshots: {}", describe_snapshots(snapshots));
            }
            if !job.unmatched_state.is_empty() {
                println!(
                    "state of stages not in this job (renamed or removed): {}",
                    job.unmatched_state.join(", ")
                );
            }
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
        JobsCommand::Export {
            id,
            name,
            cancel,
            remote,
        } => {
            let client = remote.client()?;
            let exported = if cancel {
                client.cancel_and_export_snapshot(id, &name)?
            } else {
                client.export_snapshot(id, &name)?
            };
            if remote.json {
                return print_json(&exported);
            }
            println!(
                "job {} ('{}'): snapshot '{}' exported to {} (on the node); the job is {}",
                exported.id, exported.name, exported.snapshot, exported.path, exported.status
            );
            return Ok(());
        }
    };
    let answer = remote.client()?.job_action(id, action)?;
    if remote.json {
        return print_json(&answer);
    }
    if answer.status == action.target_status() {
        println!("job {id} ('{}'): {}", answer.name, answer.status);
    } else {
        // The node stopped waiting (a large final snapshot, say); the
        // action goes on there.
        println!(
            "job {id} ('{}'): {} requested, still {}; `eddy jobs show {id}` tells when it is {}",
            answer.name,
            action.as_str(),
            answer.status,
            action.target_status()
        );
    }
    Ok(())
}

/// One line about a job's snapshots: how many, and the latest one's id,
/// age, duration and size.
fn describe_snapshots(s: &eddy_client::SnapshotInfo) -> String {
    let mut line = format!("{} completed", s.completed);
    if let (Some(id), Some(age_ms), Some(took_ms), Some(bytes), Some(entries)) = (
        s.last_id,
        s.last_age_ms,
        s.last_duration_ms,
        s.last_bytes,
        s.last_entries,
    ) {
        line.push_str(&format!(
            "; latest #{id} {:.1} s ago, took {took_ms:.1} ms, {bytes} bytes, {entries} entries",
            age_ms as f64 / 1000.0
        ));
    }
    if let Some(from) = s.restored_from {
        line.push_str(&format!("; this run started from #{from}"));
    }
    line
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
    /// Directory that keeps the node's SQL catalog (tables and jobs) and,
    /// unless the config file sets snapshot_dir, the jobs' snapshots: a
    /// node started again on it re-creates its tables and resumes its jobs
    /// (overrides the config file's data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve on an address other machines can reach without a token
    /// (otherwise refused): only behind a network boundary that protects
    /// the node. Logged as a warning at every start.
    #[arg(long)]
    allow_unauthenticated: bool,
}

/// The config file of `eddy serve`. Unknown fields are errors, so that a
/// misspelt setting is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeConfig {
    /// Address of the HTTP API.
    bind: Option<SocketAddr>,
    /// Cooperative worker threads.
    workers: Option<usize>,
    /// Where jobs keep their snapshots, and exported ones go (default:
    /// `eddy-snapshots` in the system's temporary directory, which a
    /// reboot may empty).
    snapshot_dir: Option<PathBuf>,
    /// Where the node keeps its SQL catalog, and its snapshots unless
    /// `snapshot_dir` is set.
    data_dir: Option<PathBuf>,
    /// SQL files run at every start, in order (relative paths are relative
    /// to the config file); what they create is not kept in the catalog.
    #[serde(default)]
    sql: Vec<PathBuf>,
    /// Bearer token every read (GET) must carry, except /health and /ready.
    read_token: Option<String>,
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
        /// `none` (default), `at-least-once` or `exactly-once`.
        #[serde(default, deserialize_with = "guarantee")]
        guarantee: Guarantee,
        /// Time between snapshots (default: the engine's, 10 s).
        snapshot_interval_ms: Option<u64>,
    },
}

fn guarantee<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Guarantee, D::Error> {
    let text = String::deserialize(d)?;
    Guarantee::parse(&text).map_err(serde::de::Error::custom)
}

/// The settings of a config file job shared by every kind.
fn job_config(
    index: usize,
    name: &str,
    guarantee: Guarantee,
    snapshot_interval_ms: Option<u64>,
) -> anyhow::Result<JobConfig> {
    let mut config = JobConfig::default().name(name).guarantee(guarantee);
    if let Some(ms) = snapshot_interval_ms {
        anyhow::ensure!(
            guarantee.takes_snapshots(),
            "jobs[{index}] ({name}): snapshot_interval_ms is set but the guarantee is none, which takes no snapshots; set guarantee = \"exactly-once\" or \"at-least-once\", or remove snapshot_interval_ms"
        );
        anyhow::ensure!(
            ms > 0,
            "jobs[{index}] ({name}): snapshot_interval_ms must be at least 1; give the time between snapshots, e.g. 10000"
        );
        config = config.snapshot_interval(Duration::from_millis(ms));
    }
    Ok(config)
}

fn read_config(path: &PathBuf) -> anyhow::Result<NodeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    parse_config(&text).map_err(|e| anyhow::anyhow!("'{}': {e}", path.display()))
}

fn parse_config(text: &str) -> Result<NodeConfig, toml::de::Error> {
    toml::from_str(text)
}

/// The server's configuration of `bind` with `token`.
pub fn server_config(bind: SocketAddr, token: Option<String>) -> ServerConfig {
    match token {
        Some(token) => ServerConfig::bind(bind).with_token(token),
        None => ServerConfig::bind(bind),
    }
}

/// Starts the HTTP API on `node` and blocks until it stops.
pub fn serve_node(node: std::sync::Arc<Node>, config: ServerConfig) -> anyhow::Result<()> {
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
    let bind = args
        .bind
        .or(config.bind)
        .unwrap_or(eddy_server::BIND_DEFAULT);
    let token = args.token.or_else(|| std::env::var(TOKEN_ENV).ok());
    let mut server =
        server_config(bind, token).allowing_unauthenticated(args.allow_unauthenticated);
    server.read_token = config.read_token.clone();
    // Refused before any job starts.
    server.validate().map_err(|e| match e {
        eddy_server::ServerError::Config {
            field: "ServerConfig::read_token",
            reason,
        } => {
            anyhow::anyhow!("read_token in the config file: {reason}")
        }
        e => anyhow::anyhow!("{e}"),
    })?;
    let data_dir = args.data_dir.or(config.data_dir.clone());
    let mut engine = eddy::EddyConfig::default();
    if let Some(w) = config.workers {
        anyhow::ensure!(w > 0, "workers in the config file must be at least 1");
        engine.cooperative_threads = w;
    }
    let snapshot_dir = config
        .snapshot_dir
        .clone()
        .or_else(|| data_dir.as_ref().map(|d| d.join("snapshots")));
    if let Some(dir) = snapshot_dir {
        // Created now, so that a directory the node cannot write is an
        // error at start rather than a failed snapshot minutes later.
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "snapshot_dir '{}' cannot be created; point it at a writable directory",
                dir.display()
            )
        })?;
        engine.snapshot_dir = dir;
    }
    let eddy = std::sync::Arc::new(eddy::Eddy::new(engine));
    let grid = eddy::grid::Grid::new();
    let node = Node::new(eddy.clone(), grid.clone());
    for (index, spec) in config.jobs.into_iter().enumerate() {
        match spec {
            JobSpec::FraudDemo {
                seed,
                rate,
                events,
                guarantee,
                snapshot_interval_ms,
            } => {
                anyhow::ensure!(
                    rate > 0.0,
                    "jobs[{index}] (fraud-demo): rate must be positive, e.g. rate = 5000.0"
                );
                let job = job_config(index, "fraud-detection", guarantee, snapshot_interval_ms)?;
                eddy_demo::submit_served(&node, seed, events, Some(rate), job)?;
            }
        }
    }
    let base = args
        .config
        .as_deref()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    for (index, file) in config.sql.iter().enumerate() {
        let path = base.join(file);
        let script = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "sql[{index}]: cannot read '{}'; give the path of a SQL file, relative to the config file",
                path.display()
            )
        })?;
        if let Err(f) = node.execute_config_sql(&script) {
            anyhow::bail!(
                "sql[{index}] '{}' failed; fix the statement:\n{}",
                path.display(),
                f.error.render(&script)
            );
        }
    }
    if let Some(dir) = &data_dir {
        let replayed = node.open_catalog(dir)?;
        tracing::info!(
            data_dir = %dir.display(),
            tables = replayed.tables,
            jobs = replayed.jobs,
            "SQL catalog loaded"
        );
    }
    serve_node(node, server)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAUD: &str = "[[jobs]]\nkind = \"fraud-demo\"\nrate = 100.0\n";

    #[test]
    fn when_a_job_sets_a_guarantee_and_interval_then_its_config_has_them() {
        let text = format!(
            "snapshot_dir = \"/var/lib/eddy\"\n{FRAUD}guarantee = \"exactly-once\"\nsnapshot_interval_ms = 250\n"
        );
        let config = parse_config(&text).unwrap();
        assert_eq!(config.snapshot_dir, Some(PathBuf::from("/var/lib/eddy")));
        let JobSpec::FraudDemo {
            guarantee,
            snapshot_interval_ms,
            ..
        } = config.jobs[0];
        let job = job_config(0, "fraud-detection", guarantee, snapshot_interval_ms).unwrap();
        assert_eq!(job.guarantee, Guarantee::ExactlyOnce);
        assert_eq!(job.snapshot_interval, Duration::from_millis(250));
        let JobSpec::FraudDemo { guarantee, .. } = parse_config(FRAUD).unwrap().jobs[0];
        assert_eq!(guarantee, Guarantee::None);
    }

    #[test]
    fn when_a_field_is_unknown_or_invalid_then_the_error_names_it_and_the_fix() {
        let unknown = parse_config(&format!("{FRAUD}guarantees = \"none\"\n")).unwrap_err();
        assert!(unknown.to_string().contains("guarantees"), "{unknown}");
        let node_level = parse_config("snapshot_directory = \"/x\"\n").unwrap_err();
        assert!(
            node_level.to_string().contains("snapshot_directory"),
            "{node_level}"
        );
        let bad = parse_config(&format!("{FRAUD}guarantee = \"twice\"\n")).unwrap_err();
        assert!(bad.to_string().contains("exactly-once"), "{bad}");
        assert!(bad.to_string().contains("guarantee"), "{bad}");

        let without_snapshots = job_config(2, "j", Guarantee::None, Some(100)).unwrap_err();
        let message = without_snapshots.to_string();
        assert!(
            message.contains("jobs[2]") && message.contains("snapshot_interval_ms"),
            "{message}"
        );
        assert!(message.contains("exactly-once"), "{message}");
        let zero = job_config(0, "j", Guarantee::AtLeastOnce, Some(0)).unwrap_err();
        assert!(zero.to_string().contains("at least 1"), "{zero}");
    }
}
