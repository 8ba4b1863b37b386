//! `eddy demo`: the arguments of the fraud-detection demo and the printing
//! of its summary; the demo itself is the `eddy-demo` crate.

use eddy::prelude::*;
use eddy_demo::{DemoOptions, Summary};
use std::io::IsTerminal;
use std::sync::Arc;

/// Arguments of `eddy demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seed of the transaction generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of transactions to process.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Instances per stage (defaults to the number of cores).
    #[arg(long, value_parser = at_least_one)]
    parallelism: Option<usize>,
    /// Print the final summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Keep running as a node: serve the HTTP API and the dashboard while
    /// the job runs and after it ends (stop with Ctrl-C).
    #[arg(long)]
    serve: bool,
    /// Address of the dashboard with --serve.
    #[arg(long, default_value_t = eddy_server::BIND_DEFAULT)]
    bind: std::net::SocketAddr,
    /// Transactions per second (default: as fast as possible; with --serve,
    /// 20000 so that the dashboard has something to show for a while).
    #[arg(long, value_parser = crate::kafka_cmd::positive_rate)]
    rate: Option<f64>,
    /// Run over Kafka at this bootstrap address: a producer job writes the
    /// transactions to a topic, the detection job reads them from there and
    /// writes its alerts to a second topic.
    #[arg(long, conflicts_with = "serve")]
    bootstrap: Option<String>,
    /// Partitions of the transactions topic with --bootstrap.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Keep the reference data in PostgreSQL (loaded into the grid maps at
    /// start, seeded first if the tables are empty) and write the alerts to
    /// a table there too; a connection string such as
    /// "host=127.0.0.1 port=5432 user=postgres dbname=eddy".
    #[arg(long, conflicts_with = "serve")]
    postgres: Option<String>,
    /// What the detection job promises when it is killed and started again
    /// with the same --snapshot-dir: none, at-least-once or exactly-once.
    #[arg(long, default_value = "none", value_parser = Guarantee::parse)]
    guarantee: Guarantee,
    /// Where the detection job keeps its snapshots: a run killed before it
    /// completed resumes from the latest one when started again.
    #[arg(long)]
    snapshot_dir: Option<std::path::PathBuf>,
    /// Time between the detection job's snapshots, in ms (default 10 s).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_interval_ms: Option<u64>,
    /// With --bootstrap: the transactions topic, instead of a fresh one.
    #[arg(long, requires = "bootstrap")]
    transactions_topic: Option<String>,
    /// With --bootstrap: the alerts topic, instead of a fresh one.
    #[arg(long, requires = "bootstrap")]
    alerts_topic: Option<String>,
    /// Read the transactions a run before wrote to --transactions-topic
    /// instead of producing them (to resume a killed run).
    #[arg(long, requires = "transactions_topic")]
    skip_produce: bool,
}

/// A count of instances: 1 or more.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".to_string()),
        Err(e) => Err(format!("'{text}' is not a whole number ({e})")),
    }
}

/// The detection job's name, guarantee and snapshot settings from the
/// command line.
fn detection_config(args: &DemoArgs) -> JobConfig {
    let mut config = JobConfig::default()
        .name(eddy_demo::DETECTION_JOB)
        .guarantee(args.guarantee);
    if let Some(dir) = &args.snapshot_dir {
        config = config.snapshot_dir(dir);
    }
    if let Some(ms) = args.snapshot_interval_ms {
        config = config.snapshot_interval(Duration::from_millis(ms));
    }
    config
}

/// Runs `eddy demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = detection_config(&args);
    if args.serve {
        let eddy = Arc::new(Eddy::new(EddyConfig::default()));
        let node = eddy_server::Node::new(eddy, Grid::new());
        let rate = args.rate.or(Some(20_000.0));
        eddy_demo::submit_served(&node, args.seed, Some(args.events), rate, config)?;
        return crate::ops_cmd::serve_node(
            node,
            crate::ops_cmd::server_config(args.bind, std::env::var(eddy_server::TOKEN_ENV).ok()),
        );
    }
    let json = args.json;
    let summary = eddy_demo::run(DemoOptions {
        seed: args.seed,
        events: args.events,
        parallelism: args.parallelism,
        rate: args.rate,
        bootstrap: args.bootstrap,
        partitions: args.partitions,
        postgres: args.postgres,
        job: config,
        transactions_topic: args.transactions_topic,
        alerts_topic: args.alerts_topic,
        skip_produce: args.skip_produce,
        live: std::io::stderr().is_terminal() && !json,
    })?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &Summary) {
    println!(
        "fraud detection: {} transactions in {} ms ({:.0} events/s)",
        s.events_in, s.duration_ms, s.events_per_sec
    );
    for (rule, n) in &s.alerts_by_rule {
        println!("  {:<22} {n:>8} alerts", format!("{rule:?}"));
    }
    println!(
        "  {:<22} {:>8} alerts (digest {})",
        "total", s.alerts_total, s.alerts_digest
    );
    if let (Some(t), Some(a)) = (&s.transactions_topic, &s.alerts_topic) {
        println!("  transactions read from Kafka topic {t}, alerts written to {a}");
    }
    println!(
        "  latency generation -> alert: p50 {} us, p99 {} us",
        s.latency_p50_us, s.latency_p99_us
    );
}
