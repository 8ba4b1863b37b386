//! The `eddy` command: argument parsing, printing and exit codes. Each
//! command calls into a library: `serve`, `jobs` and `map` into the server
//! and the HTTP client (`ops_cmd`), `produce` and `consume` into the Kafka
//! connector's tools (`kafka_cmd`), `demo` into the demo crate
//! (`demo_cmd`), `sql` into Eddy SQL (`sql_cmd`), `bench` into the
//! benchmarks crate.

mod demo_cmd;
mod kafka_cmd;
mod log;
mod ops_cmd;
mod sql_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Eddy: a stream processor and in-memory data grid around Apache Kafka.
#[derive(Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(flatten)]
    log: log::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the fraud-detection demo job on generated card transactions.
    Demo(demo_cmd::DemoArgs),
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
    /// Runs SQL statements in an embedded node: `eddy sql -e "…"`, `-f FILE`
    /// or piped in; bounded queries print rows, jobs run to their end.
    Sql(sql_cmd::SqlArgs),
    /// Runs a benchmark and prints rates against a baseline from the same run.
    Bench {
        #[command(subcommand)]
        which: eddy_bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = log::init(&cli.log) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        // SQL errors exit 1, usage errors 2: the command picks its codes.
        Command::Sql(args) => return sql_cmd::run(args),
        Command::Demo(args) => demo_cmd::run(args),
        Command::Produce(args) => kafka_cmd::run_produce(args),
        Command::Serve(args) => ops_cmd::run_serve(args),
        Command::Jobs { command } => ops_cmd::run_jobs(command),
        Command::Map { command } => ops_cmd::run_map(command),
        Command::Consume(args) => kafka_cmd::run_consume(args),
        Command::Bench { which } => eddy_bench::run(which),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
