//! The `eddy` command line: runs the demo job, benchmarks, and (in later
//! layers) the server and Kafka tools. No business logic lives here: each
//! command parses its arguments and calls into the library crates.

mod alloc;
mod bench;
mod demo;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Bench { which } => match which {
            BenchCommand::Engine {
                events,
                rate,
                latency_seconds,
                json,
            } => bench_engine(events, rate, latency_seconds, json),
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
