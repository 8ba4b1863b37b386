//! The `eddy` command line: runs the demo job, benchmarks, and (in later
//! layers) the server and Kafka tools. No business logic lives here: each
//! command parses its arguments and calls into the library crates.

mod alloc;
mod bench;
mod demo;
mod kafka_cmd;
mod ops_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: alloc::CountingAllocator = alloc::CountingAllocator;

/// Eddy: a stream processor and in-memory data grid around Apache Kafka.
#[derive(Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the fraud-detection demo job on generated card transactions.
    Demo(demo::DemoArgs),
    /// Writes records to a Kafka topic: JSON lines or a built-in generator.
    Produce(kafka_cmd::ProduceArgs),
    /// Reads records of a Kafka topic, for inspection.
    Consume(kafka_cmd::ConsumeArgs),
    /// Runs a node: the jobs of a config file, the grid, the HTTP API and
    /// the dashboard.
    Serve(ops_cmd::ServeArgs),
    /// Lists and controls the jobs of a running node.
    Jobs {
        #[command(subcommand)]
        command: ops_cmd::JobsCommand,
    },
    /// Reads and writes the maps of a running node.
    Map {
        #[command(subcommand)]
        command: ops_cmd::MapCommand,
    },
    /// Runs a benchmark and prints rates against a baseline from the same run.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The engine against hand-written loops doing the same work, and the
    /// latency of tumbling windows at a fixed rate.
    Engine {
        /// Events per throughput scenario.
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
        /// Input rate of the latency scenario, events per second.
        #[arg(long, default_value_t = 1_000_000.0)]
        rate: f64,
        /// Seconds the latency scenario measures (after 2 s of warm-up).
        #[arg(long, default_value_t = 10)]
        latency_seconds: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What snapshots cost: the keyed sliding window of `bench engine` with
    /// no guarantee, at-least-once and exactly-once, and the time to
    /// snapshot and restore a large keyed state.
    Snapshot {
        /// Events per throughput run.
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
        /// Time between snapshots, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Keys in the state that is snapshotted and restored.
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        /// Worker threads and parallelism.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// The data grid against a plain hashbrown map doing the same work.
    Grid {
        /// Entries of the get/put and memory measurements.
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A NEXMark query; Hazelcast Jet runs the same with bench/jet/run.
    Nexmark {
        /// The query: q0, q1, q2, q3, q4, q5, q7, q8 or q13.
        #[arg(long, default_value = "q5")]
        query: String,
        /// Events to generate.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Events per second, open loop, to measure latency (default: as
        /// fast as possible, to measure throughput).
        #[arg(long)]
        rate: Option<f64>,
        /// Instances per vertex and worker threads (default: cores).
        #[arg(long)]
        parallelism: Option<usize>,
        /// faithful (Beam's generator) or jet (nexmark-jet's events).
        #[arg(long, default_value = "faithful")]
        variant: String,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The PostgreSQL sink against plain batched INSERT and COPY loops with
    /// the same driver, on a running server.
    Postgres {
        /// Connection string, e.g. "host=127.0.0.1 port=5432 user=postgres dbname=eddy".
        #[arg(long)]
        url: String,
        /// Rows per measurement.
        #[arg(long, default_value_t = 500_000)]
        rows: u64,
    },
    /// A raw rdkafka copy loop against an Eddy Kafka pipeline, on a running
    /// broker (start one with `scripts/kafka start`).
    Kafka {
        /// Kafka bootstrap address, host:port.
        #[arg(long)]
        bootstrap: String,
        /// Records to pre-load and copy.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Produce(args) => kafka_cmd::run_produce(args),
        Command::Serve(args) => ops_cmd::run_serve(args),
        Command::Jobs { command } => ops_cmd::run_jobs(command),
        Command::Map { command } => ops_cmd::run_map(command),
        Command::Consume(args) => kafka_cmd::run_consume(args),
        Command::Bench { which } => match which {
            BenchCommand::Engine {
                events,
                rate,
                latency_seconds,
                json,
            } => bench_engine(events, rate, latency_seconds, json),
            BenchCommand::Grid { entries, json } => bench_grid(entries, json),
            BenchCommand::Snapshot {
                events,
                interval_ms,
                keys,
                workers,
                json,
            } => bench_snapshot(events, interval_ms, keys, workers, json),
            BenchCommand::Postgres { url, rows } => bench_postgres(&url, rows),
            BenchCommand::Nexmark {
                query,
                events,
                rate,
                parallelism,
                variant,
                json,
            } => bench_nexmark(&query, events, rate, parallelism, &variant, json),
            BenchCommand::Kafka {
                bootstrap,
                records,
                json,
            } => bench_kafka(&bootstrap, records, json),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench_engine(events: u64, rate: f64, latency_seconds: u64, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(events > 0, "--events must be at least 1");
    anyhow::ensure!(rate > 0.0, "--rate must be positive");
    if !json {
        eprintln!("throughput: {events} events per scenario, workers 1 and 2…");
    }
    let throughput = bench::engine::throughput(events);
    if !json {
        bench::print_table(&throughput);
        eprintln!("latency: {rate} events/s for {latency_seconds} s after 2 s warm-up…");
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let latency = bench::engine::latency(rate, latency_seconds, workers);
    if json {
        let report = bench::engine::EngineReport {
            throughput,
            latency,
        };
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "latency of 20 ms tumbling windows at {:.0} ev/s ({} workers, {} windows): p50 {} us, p99 {} us, p99.99 {} us, max {} us",
            latency.rate_per_sec, workers, latency.samples, latency.p50_us, latency.p99_us, latency.p9999_us, latency.max_us
        );
    }
    Ok(())
}

fn bench_snapshot(
    events: u64,
    interval_ms: u64,
    keys: u64,
    workers: usize,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(events > 0, "--events must be at least 1");
    anyhow::ensure!(interval_ms > 0, "--interval-ms must be at least 1");
    anyhow::ensure!(keys > 0, "--keys must be at least 1");
    let workers = workers.max(1);
    if !json {
        eprintln!(
            "throughput: {events} events under each guarantee, snapshots every {interval_ms} ms…"
        );
    }
    let interval = std::time::Duration::from_millis(interval_ms);
    let throughput = bench::snapshot::throughput(events, interval, workers);
    if !json {
        eprintln!("state: snapshot and restore of {keys} keys…");
    }
    let state = bench::snapshot::state(keys, workers);
    let report = bench::snapshot::SnapshotReport { throughput, state };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        bench::snapshot::print(&report);
    }
    Ok(())
}

fn bench_grid(entries: usize, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(entries > 0, "--entries must be at least 1");
    let config = eddy_grid::bench::BenchConfig {
        entries,
        ..eddy_grid::bench::BenchConfig::default()
    };
    let report = eddy_grid::bench::run(&config);
    let lookup = bench::grid::enrichment_lookup(entries.min(100_000) as u64, 10_000_000);
    if json {
        let value = serde_json::json!({ "grid": report, "enrichment": lookup });
        println!("{value}");
    } else {
        print!("{}", report.table());
        bench::print_table(std::slice::from_ref(&lookup));
    }
    Ok(())
}

fn bench_kafka(bootstrap: &str, records: u64, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(records > 0, "--records must be at least 1");
    let options = eddy_kafka::bench::BenchOptions {
        records,
        ..eddy_kafka::bench::BenchOptions::default()
    };
    let report = eddy_kafka::bench::run_kafka_bench(bootstrap, &options)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn bench_nexmark(
    query: &str,
    events: u64,
    rate: Option<f64>,
    parallelism: Option<usize>,
    variant: &str,
    json: bool,
) -> anyhow::Result<()> {
    let mut options = eddy_nexmark::NexmarkOptions {
        query: query.parse()?,
        variant: variant.parse()?,
        events,
        rate_per_sec: rate,
        ..eddy_nexmark::NexmarkOptions::default()
    };
    if let Some(p) = parallelism {
        options.parallelism = p;
    }
    let report = eddy_nexmark::run(&options)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn bench_postgres(url: &str, rows: u64) -> anyhow::Result<()> {
    anyhow::ensure!(rows > 0, "--rows must be at least 1");
    let report = eddy_postgres::bench::run(url, rows)?;
    print!("{report}");
    Ok(())
}
