//! `eddy-bench`: the benchmarks of `eddy bench`, with a counting global
//! allocator so that reports include heap allocations per event.

use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: eddy_bench::alloc::CountingAllocator = eddy_bench::alloc::CountingAllocator;

/// Eddy's benchmarks, each against a baseline measured in the same run.
#[derive(Parser)]
#[command(name = "eddy-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    which: eddy_bench::BenchCommand,
}

fn main() -> ExitCode {
    match eddy_bench::run(Cli::parse().which) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
