//! Runs one NEXMark query and prints its report, like `eddy bench nexmark`.
//!
//! ```text
//! cargo run --release -p eddy-nexmark --example nexmark -- \
//!     --query q5 [--events N] [--rate R] [--parallelism P] \
//!     [--variant faithful|jet] [--seed S] [--json]
//! ```

use eddy_nexmark::{run, NexmarkOptions};
use std::process::ExitCode;

fn parse(args: &[String]) -> Result<(NexmarkOptions, bool), String> {
    let mut options = NexmarkOptions::default();
    let mut json = false;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--json" {
            json = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--query" => options.query = value.parse().map_err(|e| bad(&e))?,
            "--variant" => options.variant = value.parse().map_err(|e| bad(&e))?,
            "--events" => options.events = value.replace('_', "").parse().map_err(|e| bad(&e))?,
            "--rate" => {
                options.rate_per_sec = Some(value.replace('_', "").parse().map_err(|e| bad(&e))?)
            }
            "--parallelism" => options.parallelism = value.parse().map_err(|e| bad(&e))?,
            "--seed" => options.seed = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok((options, json))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (options, json) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(report) if json => match serde_json::to_string(&report) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
