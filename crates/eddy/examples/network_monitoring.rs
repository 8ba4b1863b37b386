//! Telecom network monitoring: call and data records per subscriber, cut
//! into sessions by 30 s without activity (in event time), with the bytes,
//! call time and duration of each session, and a flag on the sessions that
//! moved more data than the limit.
//!
//! ```text
//! cargo run -p eddy --example network_monitoring -- --events 200000
//! cargo run -p eddy --example network_monitoring -- --bootstrap 127.0.0.1:9092
//! ```
//!
//! The records come from a deterministic generator: each of 500
//! subscribers is online for 45 s of every two minutes (at a phase of its
//! own) and silent otherwise, so its activity falls into sessions; one
//! record in twenty is a call, the rest are data; every fiftieth subscriber
//! streams video and moves tens of megabytes per record, enough to pass the
//! limit.
//!
//! In-process, a generator feeds the job directly. With `--bootstrap`, a
//! producer job writes the records to a fresh topic first, the job reads
//! them from there and writes its sessions to a second topic. Sessions
//! depend only on the records' event times, so both modes find the same
//! sessions for the same `--events`.

pub mod support;

use eddy::prelude::*;
use eddy::Shared;
use serde::{Deserialize, Serialize};
use support::{ExampleRun, KafkaRun, Options, Topics};

/// Subscribers in the generated population.
pub const SUBSCRIBERS: u32 = 500;
/// Event time between consecutive records (of any subscriber).
pub const MS_PER_RECORD: i64 = 10;
/// Event time of the first record (2026-01-01T00:00:00Z): fixed, so that
/// every run sees the same sessions.
pub const START_TS: i64 = 1_767_225_600_000;
/// Silence that ends a session.
pub const GAP: Duration = Duration::from_secs(30);
/// A session moving more bytes than this is flagged: 200 MB.
pub const BYTES_LIMIT: i64 = 200_000_000;
/// A subscriber's activity repeats with this period...
const CYCLE_MS: i64 = 120_000;
/// ...online for this long, silent for the rest: longer than `GAP`, so
/// that each online stretch is a session of its own.
const ONLINE_MS: i64 = 45_000;
/// How far records may arrive out of event-time order. The generator and
/// each Kafka partition deliver a subscriber's records in order, so any
/// small value works; a real network would need its measured disorder.
const LAG: Duration = Duration::from_secs(1);
/// Records generated unless `--events` says otherwise: 2000 s of event
/// time.
const EVENTS_DEFAULT: u64 = 200_000;

/// One call or data record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The subscriber.
    pub subscriber: u32,
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// Length of a call, ms; 0 for data.
    pub call_ms: i64,
    /// Bytes moved by data; 0 for a call.
    pub bytes: i64,
}

/// One session of a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    /// The subscriber.
    pub subscriber: u32,
    /// Event time of its first record, ms.
    pub start: i64,
    /// Event time of its last record, ms.
    pub last: i64,
    /// Records in it.
    pub records: i64,
    /// Bytes moved.
    pub bytes: i64,
    /// Time spent in calls, ms.
    pub call_ms: i64,
    /// Whether it moved more than `BYTES_LIMIT`.
    pub over_limit: bool,
}

/// SplitMix64: a well-mixed hash of `n`, the generator's only randomness.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether the generator makes `subscriber` stream video.
pub fn streams_video(subscriber: u32) -> bool {
    subscriber % 50 == 7
}

/// Whether `subscriber` is online at event time `ts`.
fn online(subscriber: u32, ts: i64) -> bool {
    let phase_ms = (mix(u64::from(subscriber) + (1 << 40)) % CYCLE_MS as u64) as i64;
    (ts - START_TS + phase_ms) % CYCLE_MS < ONLINE_MS
}

/// Record `n` of the generator.
pub fn usage(n: u64) -> UsageRecord {
    let ts = START_TS + n as i64 * MS_PER_RECORD;
    let r = mix(n);
    // A random subscriber, or the next one after it that is online.
    let first = (r % u64::from(SUBSCRIBERS)) as u32;
    let subscriber = (0..SUBSCRIBERS)
        .map(|i| (first + i) % SUBSCRIBERS)
        .find(|&s| online(s, ts))
        .unwrap_or(first);
    let size = ((r >> 24) % 20_000_000) as i64;
    let (call_ms, bytes) = if (r >> 16) % 20 == 0 {
        (5_000 + size % 55_000, 0)
    } else if streams_video(subscriber) {
        (0, 20_000_000 + size)
    } else {
        (0, 10_000 + size / 10)
    };
    UsageRecord {
        subscriber,
        ts,
        call_ms,
        bytes,
    }
}

/// The records of a run: from the generator in-process, from the input
/// topic over Kafka.
fn records(p: &Pipeline, events: u64, topics: Option<&Topics>) -> Shared<UsageRecord> {
    match topics {
        None => p
            .read_from(Sources::generator(usage).limit(events))
            .named("records")
            // One generator instance emits the records in event-time order.
            .set_local_parallelism(1)
            .with_timestamps(|r| r.ts, LAG)
            .share(),
        Some(topics) => p
            .read_from(
                KafkaSource::topic(topics.input.as_str())
                    .bootstrap(topics.bootstrap.as_str())
                    .json::<UsageRecord>()
                    // Per partition: a subscriber's records share one, in order.
                    .event_time(EventTimePolicy::lag(LAG))
                    .timestamp_fn(|r: &UsageRecord| r.ts)
                    .stop_at_end(),
            )
            .named("records")
            .share(),
    }
}

/// The monitoring, the same in both modes: session windows per subscriber,
/// summed up and checked against the limit.
fn sessions(records: &Shared<UsageRecord>) -> Shared<Session> {
    let gap_ms = GAP.as_millis() as i64;
    records
        .stream()
        .grouping_key(|r| r.subscriber)
        .window(WindowDefinition::session(GAP))
        .aggregate(agg::all_of(
            agg::count(),
            agg::sum_i64(|r: &UsageRecord| r.bytes),
            agg::sum_i64(|r: &UsageRecord| r.call_ms),
        ))
        .map(move |w| {
            let (records, bytes, call_ms) = w.value;
            Session {
                subscriber: w.key,
                start: w.start,
                // A session window ends one gap after its last record.
                last: w.end - gap_ms,
                records,
                bytes,
                call_ms,
                over_limit: bytes > BYTES_LIMIT,
            }
        })
        .share()
}

/// What a run found.
#[derive(Debug)]
pub struct Summary {
    /// Records processed.
    pub records: u64,
    /// All sessions, sorted by subscriber and start.
    pub sessions: Vec<Session>,
    /// With `--bootstrap`: the topics and what the output topic holds.
    pub kafka: Option<KafkaRun>,
}

impl Summary {
    /// Prints the counts and the first flagged sessions.
    pub fn print(&self) {
        let flagged: Vec<&Session> = self.sessions.iter().filter(|s| s.over_limit).collect();
        let mut subscribers: Vec<u32> = flagged.iter().map(|s| s.subscriber).collect();
        subscribers.dedup();
        println!(
            "{} records, {} sessions, {} over {} MB, of subscribers {subscribers:?}",
            self.records,
            self.sessions.len(),
            flagged.len(),
            BYTES_LIMIT / 1_000_000
        );
        for s in flagged.iter().take(5) {
            println!(
                "  subscriber {:>3}: {} MB and {} s of calls in {} records over {} s, from {} s into the run",
                s.subscriber,
                s.bytes / 1_000_000,
                s.call_ms / 1000,
                s.records,
                (s.last - s.start) / 1000,
                (s.start - START_TS) / 1000
            );
        }
        if let Some(kafka) = &self.kafka {
            kafka.print();
        }
    }
}

/// Runs the example to the end of its input.
pub fn run(options: &Options) -> anyhow::Result<Summary> {
    let run = ExampleRun::start(options, "network-monitoring", usage, |r| {
        r.subscriber.to_string()
    })?;
    let p = Pipeline::new();
    let sessions = sessions(&records(&p, options.events, run.topics.as_ref()));
    let (sink, collected) = Sinks::collect();
    sessions.stream().write_to(sink);
    run.run_job(p, "network-monitoring", &sessions, |s: &Session| {
        s.subscriber.to_string()
    })?;
    let mut sessions = collected.take();
    sessions.sort();
    Ok(Summary {
        records: options.events,
        sessions,
        kafka: run.finish()?,
    })
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_command_line("network_monitoring", EVENTS_DEFAULT);
    run(&options)?.print();
    Ok(())
}
