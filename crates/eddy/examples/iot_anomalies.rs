//! IoT sensor anomaly alerts: temperature readings of 100 devices, a
//! 10-second average per device sliding every second in event time, and an
//! alert each time a device's average rises above 45 °C.
//!
//! The readings come from a deterministic generator: every tenth device
//! overheats once (it heats up, stays hot for a while and cools down
//! again), and now and then a healthy sensor reports a single absurd value,
//! which the average rides out. So the alerts name exactly the overheating
//! devices, once each.
//!
//! ```text
//! cargo run -p eddy --example iot_anomalies -- --events 200000
//! cargo run -p eddy --example iot_anomalies -- --bootstrap 127.0.0.1:9092
//! ```
//!
//! In-process, a generator feeds the job directly. With `--bootstrap`, a
//! producer job writes the readings to a fresh topic first, the job reads
//! them from there and writes its alerts to a second topic. Event time
//! comes from the readings, never the wall clock, so both modes raise the
//! same alerts for the same `--events`.

pub mod support;

use eddy::prelude::*;
use eddy::Shared;
use serde::{Deserialize, Serialize};
use support::{ExampleRun, KafkaRun, Options, Topics};

/// Devices reporting; reading `n` comes from device `n % DEVICES`.
pub const DEVICES: u32 = 100;
/// Event time between consecutive readings (of any device): each device
/// reports every 100 ms.
pub const MS_PER_READING: i64 = 1;
/// Event time of the first reading (2026-01-01T00:00:00Z): fixed, so that
/// every run sees the same windows.
pub const START_TS: i64 = 1_767_225_600_000;
/// The span the average covers.
pub const WINDOW: Duration = Duration::from_secs(10);
/// How often a new average is computed.
pub const SLIDE: Duration = Duration::from_secs(1);
/// An average above this, in tenths of a degree Celsius, raises an alert.
pub const THRESHOLD_DC: i64 = 450;
/// How far readings may arrive out of event-time order. The generator and
/// each Kafka partition deliver a device's readings in order, so any small
/// value works; real sensors would need their measured disorder here.
const LAG: Duration = Duration::from_millis(500);
/// Readings generated unless `--events` says otherwise: 200 s of event
/// time, a few seconds of processing.
const EVENTS_DEFAULT: u64 = 200_000;

/// One temperature reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The sensor.
    pub device: u32,
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// Temperature in tenths of a degree Celsius: integers keep the
    /// averages exact, so they do not depend on summation order.
    pub temp_dc: i64,
}

/// A device whose average temperature rose above the threshold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Alert {
    /// The device.
    pub device: u32,
    /// End of the window whose average crossed the threshold, ms.
    pub window_end: i64,
    /// That window's average, tenths of a degree Celsius (rounded down).
    pub average_dc: i64,
    /// Readings in that window.
    pub readings: i64,
}

/// SplitMix64: a well-mixed hash of `n`, the generator's only randomness.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether the generator makes `device` overheat.
pub fn overheats(device: u32) -> bool {
    device % 10 == 7
}

/// Heat added to an overheating device at event time `ts`, tenths of a
/// degree: from a start between 5 and 14 s into the run it rises by 5 °C a
/// second to +50 °C, holds for 20 s and falls back as fast.
fn excess_heat_dc(device: u32, ts: i64) -> i64 {
    let since_ms = ts - START_TS - 5_000 - 1_000 * i64::from(device / 10);
    match since_ms {
        ..0 => 0,
        0..10_000 => since_ms / 20,
        10_000..30_000 => 500,
        30_000..40_000 => 500 - (since_ms - 30_000) / 20,
        _ => 0,
    }
}

/// Reading `n` of the generator.
pub fn reading(n: u64) -> Reading {
    let device = (n % u64::from(DEVICES)) as u32;
    let ts = START_TS + n as i64 * MS_PER_READING;
    let r = mix(n);
    // Each sensor sits around its own 18 to 23 °C, with ±3 °C of noise.
    let mut temp_dc = 180 + i64::from(device % 50) + (r % 61) as i64 - 30;
    if overheats(device) {
        temp_dc += excess_heat_dc(device, ts);
    } else if r % 997 == 0 {
        // A glitch: one reading of 95 °C.
        temp_dc = 950;
    }
    Reading {
        device,
        ts,
        temp_dc,
    }
}

/// The readings of a run: from the generator in-process, from the input
/// topic over Kafka.
fn readings(p: &Pipeline, events: u64, topics: Option<&Topics>) -> Shared<Reading> {
    match topics {
        None => p
            .read_from(Sources::generator(reading).limit(events))
            .named("readings")
            // One generator instance emits the readings in event-time order.
            .set_local_parallelism(1)
            .with_timestamps(|r| r.ts, LAG)
            .share(),
        Some(topics) => p
            .read_from(
                KafkaSource::topic(topics.input.as_str())
                    .bootstrap(topics.bootstrap.as_str())
                    .json::<Reading>()
                    // Per partition: a device's readings share one, in order.
                    .event_time(EventTimePolicy::lag(LAG))
                    .timestamp_fn(|r: &Reading| r.ts)
                    .stop_at_end(),
            )
            .named("readings")
            .share(),
    }
}

/// The anomaly detection, the same in both modes: a sliding average per
/// device, and an alert when it crosses the threshold upwards.
fn alerts(readings: &Shared<Reading>) -> Shared<Alert> {
    readings
        .stream()
        .grouping_key(|r| r.device)
        .window(WindowDefinition::sliding(WINDOW, SLIDE))
        .aggregate(agg::count().and(agg::sum_i64(|r: &Reading| r.temp_dc)))
        // Windows of one device arrive in order of their end: remember
        // whether the last one was hot, so that one episode raises one
        // alert, not one per second.
        .grouping_key(|w| w.key)
        .map_stateful(
            None,
            || false,
            |hot: &mut bool, device: &u32, w| {
                let (count, sum_dc) = w.value;
                let was_hot = std::mem::replace(hot, sum_dc > THRESHOLD_DC * count);
                (*hot && !was_hot).then(|| Alert {
                    device: *device,
                    window_end: w.end,
                    average_dc: sum_dc / count,
                    readings: count,
                })
            },
            |_, _, _| None,
        )
        .share()
}

/// What a run found.
#[derive(Debug)]
pub struct Summary {
    /// Readings processed.
    pub readings: u64,
    /// All alerts, sorted by device and time.
    pub alerts: Vec<Alert>,
    /// With `--bootstrap`: the topics and what the output topic holds.
    pub kafka: Option<KafkaRun>,
}

impl Summary {
    /// Prints the counts and the first alerts.
    pub fn print(&self) {
        let mut devices: Vec<u32> = self.alerts.iter().map(|a| a.device).collect();
        devices.dedup();
        println!(
            "{} readings of {DEVICES} devices, {} alerts from {} devices: {devices:?}",
            self.readings,
            self.alerts.len(),
            devices.len()
        );
        for a in self.alerts.iter().take(5) {
            println!(
                "  device {:>3}: {:.1} °C on average over the 10 s ({} readings) up to {} s into the run",
                a.device,
                a.average_dc as f64 / 10.0,
                a.readings,
                (a.window_end - START_TS) / 1000
            );
        }
        if let Some(kafka) = &self.kafka {
            kafka.print();
        }
    }
}

/// Runs the example to the end of its input.
pub fn run(options: &Options) -> anyhow::Result<Summary> {
    let run = ExampleRun::start(options, "iot-anomalies", reading, |r| r.device.to_string())?;
    let p = Pipeline::new();
    let alerts = alerts(&readings(&p, options.events, run.topics.as_ref()));
    let (sink, collected) = Sinks::collect();
    alerts.stream().write_to(sink);
    run.run_job(p, "iot-anomalies", &alerts, |a: &Alert| {
        a.device.to_string()
    })?;
    let mut alerts = collected.take();
    alerts.sort();
    Ok(Summary {
        readings: options.events,
        alerts,
        kafka: run.finish()?,
    })
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_command_line("iot_anomalies", EVENTS_DEFAULT);
    run(&options)?.print();
    Ok(())
}
