//! `eddy bench nexmark`: runs one NEXMark query (from `eddy-nexmark`) and
//! measures it.
//!
//! Figures, as the issue and nexmark-jet define them:
//!
//! * throughput: events over the wall time from submission to completion,
//!   and events per CPU-second of the whole process (generator, engine and
//!   measuring sink together, as the Java harness counts its whole JVM);
//! * latency, only at a fixed rate (open loop): event `n` is scheduled at
//!   `start + n / rate` and carries that time as its event time, so a slow
//!   engine shows as latency. A result's latency is the wall clock at the
//!   sink minus its window end (windowed queries) or minus its input
//!   event's time (the others). As in nexmark-jet, each sink instance
//!   records one sample per new reference time (the first result of each
//!   window end, or of each millisecond), and none during the warm-up;
//! * peak RSS of the process.

use crate::latency::{now_us, LatencySink, SinkState};
use crate::proc_stats::{peak_rss_bytes, process_cpu_secs};
use eddy::{Eddy, EddyConfig, EddyError, JobConfig, Pipeline, Sources};
use eddy_nexmark::jet::JET_KEYS;
use eddy_nexmark::queries::{self, QueryConfig};
use eddy_nexmark::{Event, GeneratorConfig, JetConfig, Query, Variant};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Event-time rate of runs without `--rate` (as fast as possible): event
/// time still advances by `1 / rate` per event, which sets how many events
/// fall into a window. One million per second is the rate the latency goal
/// is stated at, so both kinds of run see the same windows.
pub const NOMINAL_RATE_PER_SEC: f64 = 1_000_000.0;

/// Share of a fixed-rate run, from its start, whose results are not
/// measured: JIT warm-up on the Java side, and on both sides the first
/// windows, which hold fewer events than the rest.
pub const WARMUP_FRACTION: f64 = 0.2;

/// Delay between building the job and the scheduled time of event 0, so
/// that job start-up does not count as latency of the first events.
const START_DELAY_MS: i64 = 100;

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum NexmarkError {
    /// An option is out of range or not understood; the message says which
    /// and what to use.
    #[error("{0}")]
    InvalidOption(String),
    /// The job failed.
    #[error("the benchmark job failed: {0}")]
    Job(#[from] EddyError),
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkOptions {
    /// The query.
    pub query: Query,
    /// The event stream.
    pub variant: Variant,
    /// Number of events to generate.
    pub events: u64,
    /// Events per second, open loop, for latency; `None` runs as fast as
    /// possible for throughput.
    pub rate_per_sec: Option<f64>,
    /// Instances per vertex, and cooperative worker threads.
    pub parallelism: usize,
    /// Seed of the faithful generator.
    pub seed: u64,
    /// Out-of-order group size of the faithful generator (1: in order).
    pub out_of_order_group: u64,
}

impl Default for NexmarkOptions {
    fn default() -> Self {
        NexmarkOptions {
            query: Query::Q5,
            variant: Variant::Faithful,
            events: 10_000_000,
            rate_per_sec: None,
            parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            seed: 0,
            out_of_order_group: 1,
        }
    }
}

/// Latency percentiles of a fixed-rate run, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyReport {
    /// Samples recorded after the warm-up.
    pub samples: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `eddy` (the Java harness writes `jet`).
    pub engine: String,
    /// Query name, `q5`.
    pub query: String,
    /// `faithful` or `jet`.
    pub variant: String,
    /// Events generated.
    pub events: u64,
    /// Instances per vertex and worker threads.
    pub parallelism: usize,
    /// Fixed input rate, or `None` for as fast as possible.
    pub rate_per_sec: Option<f64>,
    /// Results the query emitted.
    pub outputs: u64,
    /// Wall time from submission to completion, s.
    pub wall_secs: f64,
    /// Events per wall-clock second.
    pub events_per_sec: f64,
    /// Process CPU time (user + system) during the run, s.
    pub cpu_secs: f64,
    /// Events per CPU-second.
    pub events_per_cpu_sec: f64,
    /// Latency, for fixed-rate runs.
    pub latency: Option<LatencyReport>,
    /// Peak resident set size of the process, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Cores the OS offers the process.
    pub cores: usize,
}

impl fmt::Display for Report {
    /// A two-column table, one figure per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.rate_per_sec.map_or_else(
            || "as fast as possible".to_string(),
            |r| format!("{r:.0} events/s"),
        );
        writeln!(
            f,
            "{:<22} {} {} ({})",
            "query", self.engine, self.query, self.variant
        )?;
        writeln!(f, "{:<22} {}", "events", self.events)?;
        writeln!(f, "{:<22} {}", "rate", rate)?;
        writeln!(
            f,
            "{:<22} {} (of {} cores)",
            "parallelism", self.parallelism, self.cores
        )?;
        writeln!(f, "{:<22} {}", "outputs", self.outputs)?;
        writeln!(f, "{:<22} {:.3} s", "wall time", self.wall_secs)?;
        writeln!(f, "{:<22} {:.0}", "events/s", self.events_per_sec)?;
        writeln!(f, "{:<22} {:.3} s", "cpu time", self.cpu_secs)?;
        writeln!(f, "{:<22} {:.0}", "events/cpu-s", self.events_per_cpu_sec)?;
        match &self.latency {
            Some(l) => writeln!(
                f,
                "{:<22} p50 {} us, p99 {} us, p99.9 {} us, p99.99 {} us, max {} us ({} samples)",
                "latency", l.p50_us, l.p99_us, l.p999_us, l.p9999_us, l.max_us, l.samples
            )?,
            None => writeln!(f, "{:<22} not measured (no --rate)", "latency")?,
        }
        match self.peak_rss_bytes {
            Some(b) => writeln!(
                f,
                "{:<22} {:.1} MiB",
                "peak rss",
                b as f64 / (1024.0 * 1024.0)
            ),
            None => writeln!(f, "{:<22} unknown", "peak rss"),
        }
    }
}

/// Runs one query as `options` say and reports its figures.
pub fn run(options: &NexmarkOptions) -> Result<Report, NexmarkError> {
    validate(options)?;
    let event_rate = options.rate_per_sec.unwrap_or(NOMINAL_RATE_PER_SEC);
    let start_ms = now_us() / 1000 + START_DELAY_MS;
    match options.variant {
        Variant::Faithful => {
            let generator = GeneratorConfig {
                seed: options.seed,
                base_time_ms: start_ms,
                rate_per_sec: event_rate,
                out_of_order_group: options.out_of_order_group,
            };
            let config = QueryConfig::faithful(generator.disorder_ms());
            run_with(options, &config, start_ms, move |n| generator.event(n))
        }
        Variant::Jet => {
            let generator = JetConfig {
                query: options.query,
                base_time_ms: start_ms,
                rate_per_sec: event_rate,
                keys: JET_KEYS,
            };
            run_with(options, &QueryConfig::jet(), start_ms, move |n| {
                generator.event(n)
            })
        }
    }
}

fn validate(options: &NexmarkOptions) -> Result<(), NexmarkError> {
    let invalid = |m: String| Err(NexmarkError::InvalidOption(m));
    if options.events == 0 {
        return invalid("--events must be at least 1".into());
    }
    if options.parallelism == 0 {
        return invalid("--parallelism must be at least 1".into());
    }
    if let Some(rate) = options.rate_per_sec {
        if !(rate.is_finite() && rate > 0.0) {
            return invalid(format!(
                "--rate must be a positive number of events per second, not {rate}"
            ));
        }
    }
    if options.variant == Variant::Jet && !JetConfig::supports(options.query) {
        return invalid(format!(
            "nexmark-jet defines no events for {}: run it with --variant faithful",
            options.query
        ));
    }
    Ok(())
}

fn run_with<F>(
    options: &NexmarkOptions,
    config: &QueryConfig,
    start_ms: i64,
    generate: F,
) -> Result<Report, NexmarkError>
where
    F: Fn(u64) -> Event + Clone + Send + Sync + 'static,
{
    let mut source = Sources::generator(generate).limit(options.events);
    let mut measured = None;
    if let Some(rate) = options.rate_per_sec {
        source = source.rate(rate).anchored_at_epoch_ms(start_ms);
        let span_ms = (options.events as f64 * 1000.0 / rate) as i64;
        measured = Some((
            start_ms + (span_ms as f64 * WARMUP_FRACTION) as i64,
            start_ms + span_ms,
        ));
    }
    let state = SinkState::new();
    let sink = LatencySink {
        state: state.clone(),
        window_offset_ms: i64::from(options.query.is_windowed()),
        measured,
        first_per_reference: true,
    };
    let p = Pipeline::new();
    match options.query {
        Query::Q0 => queries::q0(&p, source, config, sink),
        Query::Q1 => queries::q1(&p, source, config, sink),
        Query::Q2 => queries::q2(&p, source, config, sink),
        Query::Q3 => queries::q3(&p, source, config, sink),
        Query::Q4 => queries::q4(&p, source, config, sink),
        Query::Q5 => queries::q5(&p, source, config, sink),
        Query::Q7 => queries::q7(&p, source, config, sink),
        Query::Q8 => queries::q8(&p, source, config, sink),
        Query::Q13 => queries::q13(&p, source, config, sink),
        Query::Q13Map => queries::q13_map(&p, source, config, sink),
    }
    let eddy = Eddy::new(EddyConfig::with_threads(options.parallelism));
    let cpu_before = process_cpu_secs().unwrap_or(0.0);
    let started = Instant::now();
    eddy.submit(
        p,
        JobConfig::default()
            .name(format!("nexmark-{}", options.query))
            .parallelism(options.parallelism),
    )?
    .join()?;
    let wall_secs = started.elapsed().as_secs_f64();
    let cpu_secs = process_cpu_secs().unwrap_or(0.0) - cpu_before;
    drop(eddy);
    let histogram = state.histogram.lock().map_err(|_| poisoned())?;
    let latency = measured.map(|_| LatencyReport {
        samples: histogram.len(),
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
        p999_us: histogram.value_at_quantile(0.999),
        p9999_us: histogram.value_at_quantile(0.9999),
        max_us: histogram.max(),
    });
    Ok(Report {
        engine: "eddy".into(),
        query: options.query.to_string(),
        variant: options.variant.to_string(),
        events: options.events,
        parallelism: options.parallelism,
        rate_per_sec: options.rate_per_sec,
        outputs: state.outputs.load(Ordering::Relaxed),
        wall_secs,
        events_per_sec: options.events as f64 / wall_secs,
        cpu_secs,
        events_per_cpu_sec: if cpu_secs > 0.0 {
            options.events as f64 / cpu_secs
        } else {
            f64::NAN
        },
        latency,
        peak_rss_bytes: peak_rss_bytes(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    })
}

fn poisoned() -> NexmarkError {
    NexmarkError::Job(EddyError::InvalidJob(
        "a latency sink panicked while holding the histogram".into(),
    ))
}
