//! `eddy produce` and `eddy consume`: the Kafka tools of the CLI.

use anyhow::Context;
use eddy_kafka::cli::{
    consume, produce, ConsumeOptions, EventFn, OutputFormat, ProduceInput, ProduceOptions,
};
use eddy_kafka::Properties;
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `eddy produce`.
#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// Kafka bootstrap address, host:port.
    #[arg(long)]
    bootstrap: String,
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Read JSON lines from this file instead of standard input.
    #[arg(long, conflicts_with = "generator")]
    file: Option<PathBuf>,
    /// JSON field whose value becomes the record key.
    #[arg(long)]
    key_field: Option<String>,
    /// Use a built-in generator: transactions (the fraud demo's input,
    /// exactly as `eddy demo` reads it), sensors or clicks.
    #[arg(long)]
    generator: Option<String>,
    /// Generator rate in records per second (default: as fast as possible).
    #[arg(long, requires = "generator", value_parser = positive_rate)]
    rate: Option<f64>,
    /// Number of generated records.
    #[arg(long, default_value_t = 1000, requires = "generator")]
    count: u64,
    /// Seed of the transactions generator (the demo's default, so that
    /// `eddy demo --bootstrap … --transactions-topic … --skip-produce`
    /// finds what its own run would have produced).
    #[arg(long, default_value_t = 42, requires = "generator")]
    seed: u64,
    /// Create the topic with this many partitions first.
    #[arg(long)]
    partitions: Option<i32>,
    /// Producer property, as key=value (repeatable).
    #[arg(long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `eddy consume`.
#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// Kafka bootstrap address, host:port.
    #[arg(long)]
    bootstrap: String,
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Start from the oldest record instead of only new ones.
    #[arg(long)]
    from_beginning: bool,
    /// Stop after this many records.
    #[arg(long)]
    max: Option<u64>,
    /// Only records of committed transactions.
    #[arg(long)]
    read_committed: bool,
    /// Stop after this many seconds without a record.
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
    /// One JSON object per record (partition, offset, key, value, headers)
    /// instead of the value as text.
    #[arg(long)]
    json: bool,
    /// Consumer property, as key=value (repeatable).
    #[arg(long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
}

/// A rate flag: a finite number above zero.
pub fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(r) => Err(format!(
            "{r} is not a rate: give records per second above 0, e.g. 5000"
        )),
        Err(e) => Err(format!("'{text}' is not a number ({e}); e.g. 5000")),
    }
}

/// SplitMix64: a well-mixed hash of a sequence number, so that generated
/// record `n` is the same in every run without a random-number dependency.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The built-in generators of `eddy produce`: record `n` as (key, JSON).
fn generator(kind: &str, seed: u64) -> anyhow::Result<EventFn> {
    Ok(match kind {
        "transactions" | "cards" | "card-transactions" => {
            Box::new(move |n| eddy_demo::transaction_record(seed, n))
        }
        "sensors" | "sensor-readings" => Box::new(|n| {
            let r = mix(n);
            let sensor = format!("sensor-{:03}", r % 500);
            let value = serde_json::json!({
                "sensor_id": sensor,
                "temperature_c": 15.0 + ((r >> 16) % 2000) as f64 / 100.0,
                "humidity_pct": ((r >> 32) % 1000) as f64 / 10.0,
                "ts_ms": now_ms(),
            });
            (sensor, value.to_string())
        }),
        "clicks" => Box::new(|n| {
            const PAGES: [&str; 5] = ["/", "/search", "/product", "/cart", "/checkout"];
            let r = mix(n);
            let user = format!("user-{:05}", r % 50_000);
            let value = serde_json::json!({
                "user_id": user,
                "page": PAGES[(r >> 24) as usize % PAGES.len()],
                "session": format!("s-{:x}", (r >> 40) % 100_000),
                "ts_ms": now_ms(),
            });
            (user, value.to_string())
        }),
        other => anyhow::bail!(
            "--generator {other}: unknown generator; use transactions, sensors or clicks"
        ),
    })
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "'{text}' is not key=value, e.g. --property linger.ms=5"
        )),
    }
}

fn properties(pairs: Vec<(String, String)>) -> Properties {
    pairs.into_iter().collect()
}

/// Runs `eddy produce`.
pub fn run_produce(args: ProduceArgs) -> anyhow::Result<()> {
    let options = ProduceOptions {
        bootstrap: args.bootstrap,
        topic: args.topic,
        partitions: args.partitions,
        properties: properties(args.properties),
    };
    let live = std::io::stderr().is_terminal() && !args.json;
    let total = args.generator.as_ref().map(|_| args.count);
    let mut progress = |n: u64| {
        if live {
            match total {
                Some(t) => eprint!(
                    "\r{:>5.1}%  {n} records",
                    100.0 * n as f64 / t.max(1) as f64
                ),
                None => eprint!("\r{n} records"),
            }
        }
    };
    let report = match (args.generator, args.file) {
        (Some(kind), _) => {
            let input = ProduceInput::<BufReader<std::io::Empty>>::Generator {
                event: generator(&kind, args.seed)?,
                rate_per_sec: args.rate,
                count: args.count,
            };
            produce(&options, input, &mut progress)?
        }
        (None, Some(path)) => {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("cannot open '{}'", path.display()))?;
            let input = ProduceInput::JsonLines {
                reader: BufReader::new(file),
                key_field: args.key_field,
            };
            produce(&options, input, &mut progress)?
        }
        (None, None) => {
            let input = ProduceInput::JsonLines {
                reader: std::io::stdin().lock(),
                key_field: args.key_field,
            };
            produce(&options, input, &mut progress)?
        }
    };
    if live {
        eprintln!();
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "records": report.records,
                "bytes": report.bytes,
                "unkeyed": report.unkeyed,
                "created_topic": report.created_topic,
                "elapsed_ms": report.elapsed.as_millis() as u64,
            })
        );
    } else {
        println!(
            "{} records ({} bytes) written to '{}' in {} ms{}",
            report.records,
            report.bytes,
            options.topic,
            report.elapsed.as_millis(),
            if report.created_topic {
                " (topic created)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Runs `eddy consume`.
pub fn run_consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let options = ConsumeOptions {
        bootstrap: args.bootstrap,
        topic: args.topic,
        from_beginning: args.from_beginning,
        max: args.max,
        read_committed: args.read_committed,
        format: if args.json {
            OutputFormat::Json
        } else {
            OutputFormat::Text
        },
        idle_timeout: args.idle_timeout_secs.map(Duration::from_secs),
        properties: properties(args.properties),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::LineWriter::new(stdout.lock());
    let n = consume(&options, &mut out)?;
    out.flush().context("writing to standard output")?;
    if std::io::stderr().is_terminal() {
        eprintln!("{n} records");
    }
    Ok(())
}
