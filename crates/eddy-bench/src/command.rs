//! The benchmark commands: `eddy bench <which>` and `eddy-bench <which>`
//! parse the same arguments and run the same code.

use clap::Subcommand;

/// Which benchmark to run, with its settings.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The engine against hand-written loops doing the same work, and the
    /// latency of tumbling windows at a fixed rate.
    Engine {
        /// Events per throughput scenario.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 20_000_000)]
        events: u64,
        /// Input rate of the latency scenario, events per second.
        #[arg(long, value_parser = positive, default_value_t = 1_000_000.0)]
        rate: f64,
        /// Seconds the latency scenario measures (after 2 s of warm-up).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 10)]
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
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 20_000_000)]
        events: u64,
        /// Time between snapshots, in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 1000)]
        interval_ms: u64,
        /// Keys in the state that is snapshotted and restored.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 1_000_000)]
        keys: u64,
        /// Worker threads and parallelism.
        #[arg(long, value_parser = at_least_one, default_value_t = 2)]
        workers: usize,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// The data grid against a plain hashbrown map doing the same work.
    Grid {
        /// Entries of the get/put and memory measurements.
        #[arg(long, value_parser = at_least_one, default_value_t = 1_000_000)]
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
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 10_000_000)]
        events: u64,
        /// Events per second, open loop, to measure latency (default: as
        /// fast as possible, to measure throughput).
        #[arg(long, value_parser = positive)]
        rate: Option<f64>,
        /// Instances per vertex and worker threads (default: cores).
        #[arg(long, value_parser = at_least_one)]
        parallelism: Option<usize>,
        /// faithful (Beam's generator) or jet (nexmark-jet's events).
        #[arg(long, default_value = "faithful")]
        variant: String,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Also run the query written in SQL (Q0, Q1, Q2) on the same
        /// events, and print both rates and their ratio.
        #[arg(long)]
        sql: bool,
    },
    /// The PostgreSQL sink against plain batched INSERT and COPY loops with
    /// the same driver, on a running server.
    Postgres {
        /// Connection string, e.g. "host=127.0.0.1 port=5432 user=postgres dbname=eddy".
        #[arg(long)]
        url: String,
        /// Rows per measurement.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 500_000)]
        rows: u64,
    },
    /// A raw rdkafka copy loop against an Eddy Kafka pipeline, on a running
    /// broker (start one with `scripts/kafka start`).
    Kafka {
        /// Kafka bootstrap address, host:port.
        #[arg(long)]
        bootstrap: String,
        /// Records to pre-load and copy.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 1_000_000)]
        records: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// A rate: a finite number above zero.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(r) => Err(format!("{r} is not a rate: give events per second above 0")),
        Err(e) => Err(format!("'{text}' is not a number ({e})")),
    }
}

/// A count of threads, instances or entries: 1 or more.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".to_string()),
        Err(e) => Err(format!("'{text}' is not a whole number ({e})")),
    }
}

/// Runs a benchmark command and prints its report.
pub fn run(which: BenchCommand) -> anyhow::Result<()> {
    match which {
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
            sql,
        } => bench_nexmark(&query, events, rate, parallelism, &variant, json, sql),
        BenchCommand::Kafka {
            bootstrap,
            records,
            json,
        } => bench_kafka(&bootstrap, records, json),
    }
}

fn bench_engine(events: u64, rate: f64, latency_seconds: u64, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(events > 0, "--events must be at least 1");
    anyhow::ensure!(rate > 0.0, "--rate must be positive");
    if !json {
        eprintln!("throughput: {events} events per scenario, workers 1 and 2…");
    }
    let throughput = crate::engine::throughput(events);
    if !json {
        crate::print_table(&throughput);
        eprintln!("latency: {rate} events/s for {latency_seconds} s after 2 s warm-up…");
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let latency = crate::engine::latency(rate, latency_seconds, workers);
    if json {
        let report = crate::engine::EngineReport {
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
    let throughput = crate::snapshot::throughput(events, interval, workers);
    if !json {
        eprintln!("state: snapshot and restore of {keys} keys…");
    }
    let state = crate::snapshot::state(keys, workers);
    let report = crate::snapshot::SnapshotReport { throughput, state };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        crate::snapshot::print(&report);
    }
    Ok(())
}

fn bench_grid(entries: usize, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(entries > 0, "--entries must be at least 1");
    let config = crate::grid::BenchConfig {
        entries,
        ..crate::grid::BenchConfig::default()
    };
    let report = crate::grid::run(&config);
    let lookup = crate::enrichment::enrichment_lookup(entries.min(100_000) as u64, 10_000_000);
    if json {
        let value = serde_json::json!({ "grid": report, "enrichment": lookup });
        println!("{value}");
    } else {
        print!("{}", report.table());
        crate::print_table(std::slice::from_ref(&lookup));
    }
    Ok(())
}

fn bench_kafka(bootstrap: &str, records: u64, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(records > 0, "--records must be at least 1");
    let options = crate::kafka::BenchOptions {
        records,
        ..crate::kafka::BenchOptions::default()
    };
    let report = crate::kafka::run_kafka_bench(bootstrap, &options)?;
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
    sql: bool,
) -> anyhow::Result<()> {
    let mut options = crate::nexmark::NexmarkOptions {
        query: query.parse()?,
        variant: variant.parse()?,
        events,
        rate_per_sec: rate,
        ..crate::nexmark::NexmarkOptions::default()
    };
    if let Some(p) = parallelism {
        options.parallelism = p;
    }
    if sql {
        anyhow::ensure!(
            options.variant == eddy_nexmark::Variant::Faithful,
            "--sql runs the faithful generator's events: leave out --variant jet"
        );
        // Fail on a query without SQL before spending a Rust run on it.
        crate::sql::query_text(options.query)?;
        let rust = crate::nexmark::run(&options)?;
        let in_sql = crate::sql::run_sql(&options)?;
        let ratio = in_sql.events_per_cpu_sec / rust.events_per_cpu_sec;
        if json {
            println!(
                "{}",
                serde_json::json!({ "rust": rust, "sql": in_sql, "sql_to_rust_per_cpu_sec": ratio })
            );
        } else {
            print!("rust\n{rust}sql\n{in_sql}");
            println!("SQL / Rust, events per CPU-second: {ratio:.2}");
        }
        return Ok(());
    }
    let report = crate::nexmark::run(&options)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn bench_postgres(url: &str, rows: u64) -> anyhow::Result<()> {
    anyhow::ensure!(rows > 0, "--rows must be at least 1");
    let report = crate::postgres::run(url, rows)?;
    print!("{report}");
    Ok(())
}
