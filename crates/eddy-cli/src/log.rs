//! Logs: the `tracing` subscriber of the `eddy` command. Libraries only
//! emit events; this decides what is written and how.
//!
//! The level comes from `--log-level`, else the `EDDY_LOG` variable (a
//! filter such as `info` or `eddy_runtime=debug,warn`), else `info` for
//! Eddy's own crates and `warn` for the rest. The format is human-readable
//! on a terminal and JSON lines otherwise (for a log shipper), unless
//! `--log-format` says. Logs go to stderr; stdout stays for results.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The variable that holds the log filter when `--log-level` is not given.
pub const LOG_ENV: &str = "EDDY_LOG";

/// The filter when neither `--log-level` nor `EDDY_LOG` is set.
const DEFAULT_FILTER: &str = "warn,eddy=info,eddy_runtime=info,eddy_kafka=info,eddy_postgres=info,eddy_server=info,eddy_grid=info,eddy_pipeline=info";

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON lines otherwise.
    Auto,
    /// One human-readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// The logging flags every command takes.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// Log filter: error, warn, info, debug, trace, or per crate such as
    /// "eddy_runtime=debug,warn" (default: the EDDY_LOG variable, else info).
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
}

/// Installs the subscriber; an unusable filter is an error naming where it
/// came from.
pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let (filter, origin) = match (&args.log_level, std::env::var(LOG_ENV)) {
        (Some(level), _) => (level.clone(), "--log-level"),
        (None, Ok(env)) if !env.trim().is_empty() => (env, LOG_ENV),
        _ => (DEFAULT_FILTER.to_string(), "the default filter"),
    };
    let filter = EnvFilter::try_new(&filter).map_err(|e| {
        anyhow::anyhow!("{origin} '{filter}' is not a log filter ({e}); use e.g. info, debug or eddy_runtime=debug,warn")
    })?;
    let stderr_is_terminal = std::io::stderr().is_terminal();
    let json = match args.log_format {
        LogFormat::Auto => !stderr_is_terminal,
        LogFormat::Human => false,
        LogFormat::Json => true,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr closed by whoever
        // started the node) is dropped: reporting it would `eprintln!` to
        // the same closed stderr, which panics the thread that logged, and
        // a node must not stop because nobody reads its log.
        .log_internal_errors(false);
    if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.with_ansi(stderr_is_terminal).try_init()
    }
    .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
