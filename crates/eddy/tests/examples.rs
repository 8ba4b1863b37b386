//! The examples under `examples/`, run end to end: each in-process against
//! a naive model of what its generator produced, and over a real Kafka
//! broker against its own in-process run.
//!
//! The example files are compiled in here as modules; the tests call their
//! `run`, as their `main` does.

// Each example compiles the shared `support` module into itself, as its
// binary does; here that makes one copy per example, on purpose.
#![allow(clippy::duplicate_mod)]

// Each example's `main` and command-line handling belong to its binary;
// the tests use the rest.
#[allow(dead_code)]
#[path = "../examples/iot_anomalies.rs"]
mod iot_anomalies;
#[allow(dead_code)]
#[path = "../examples/live_pricing.rs"]
mod live_pricing;
#[allow(dead_code)]
#[path = "../examples/network_monitoring.rs"]
mod network_monitoring;

use eddy_testkit::kafka::TestBroker;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Readings for the IoT tests: 60 s of event time, which covers every
/// overheating episode (the last ends 54 s in).
const IOT_EVENTS: u64 = 60_000;
/// Orders for the pricing tests: enough that every bestseller's surcharge
/// reaches `SURGING_PCT` while no other product's does.
const PRICING_EVENTS: u64 = 50_000;
/// Records for the network tests: 300 s of event time, two to three
/// online stretches per subscriber.
const NETWORK_EVENTS: u64 = 30_000;

/// The broker of the Kafka tests: one for all the tests that run at the
/// same time, stopped when the last of them lets go of it.
fn broker() -> Arc<TestBroker> {
    static SHARED: Mutex<Weak<TestBroker>> = Mutex::new(Weak::new());
    // Each broker gets a directory of its own: one still stopping must not
    // share it with the next.
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(broker) = shared.upgrade() {
        return broker;
    }
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let broker = Arc::new(TestBroker::start(&format!("examples-{n}")));
    *shared = Arc::downgrade(&broker);
    broker
}

#[test]
fn when_arguments_are_bad_then_parsing_says_which() {
    use iot_anomalies::support::Options;
    let parse = |args: &[&str]| Options::parse(args.iter().map(|a| a.to_string()), 7);
    assert_eq!(
        parse(&[]),
        Ok(Options {
            events: 7,
            bootstrap: None
        })
    );
    assert_eq!(
        parse(&["--events", "500", "--bootstrap", "127.0.0.1:9092"]),
        Ok(Options {
            events: 500,
            bootstrap: Some("127.0.0.1:9092".into())
        })
    );
    for (args, error) in [
        (
            &["--events", "0"][..],
            "--events takes a whole number above 0, not '0'",
        ),
        (
            &["--events", "many"][..],
            "--events takes a whole number above 0, not 'many'",
        ),
        (&["--events"][..], "--events needs a value"),
        (
            &["--events", "--bootstrap", "h:1"][..],
            "--events needs a value",
        ),
        (
            &["--bootstrap", "localhost"][..],
            "--bootstrap takes HOST:PORT, not 'localhost'",
        ),
        (
            &["--parallelism", "2"][..],
            "unknown argument '--parallelism'",
        ),
    ] {
        assert_eq!(parse(args), Err(error.to_string()), "{args:?}");
    }
}

/// The alerts of a straightforward computation over all readings: every
/// sliding window of every device, averaged from scratch.
fn iot_model(events: u64) -> Vec<iot_anomalies::Alert> {
    use iot_anomalies::{reading, Alert, Reading, SLIDE, THRESHOLD_DC, WINDOW};
    let (window_ms, slide_ms) = (WINDOW.as_millis() as i64, SLIDE.as_millis() as i64);
    let mut by_device: BTreeMap<u32, Vec<Reading>> = BTreeMap::new();
    for n in 0..events {
        let r = reading(n);
        by_device.entry(r.device).or_default().push(r);
    }
    let mut alerts = Vec::new();
    for (device, readings) in by_device {
        let first_end = (readings[0].ts / slide_ms + 1) * slide_ms;
        let last_end = (readings[readings.len() - 1].ts / slide_ms + 1) * slide_ms + window_ms;
        let mut hot = false;
        for end in (first_end..last_end).step_by(slide_ms as usize) {
            let inside = readings
                .iter()
                .filter(|r| r.ts >= end - window_ms && r.ts < end);
            let (count, sum) = inside.fold((0, 0), |(c, s), r| (c + 1, s + r.temp_dc));
            if count == 0 {
                continue;
            }
            let over = sum > THRESHOLD_DC * count;
            if over && !hot {
                alerts.push(Alert {
                    device,
                    window_end: end,
                    average_dc: sum / count,
                    readings: count,
                });
            }
            hot = over;
        }
    }
    alerts
}

#[test]
fn when_iot_anomalies_run_in_process_then_each_overheating_device_alerts_once() {
    use iot_anomalies::{overheats, run, support::Options, DEVICES};
    let summary = run(&Options {
        events: IOT_EVENTS,
        bootstrap: None,
    })
    .unwrap();
    summary.print();
    assert_eq!(summary.alerts, iot_model(IOT_EVENTS));
    let alerted: Vec<u32> = summary.alerts.iter().map(|a| a.device).collect();
    let overheating: Vec<u32> = (0..DEVICES).filter(|d| overheats(*d)).collect();
    assert_eq!(
        alerted, overheating,
        "glitches must not alert, episodes once"
    );
    assert!(summary.kafka.is_none());
}

#[test]
fn when_iot_anomalies_run_over_kafka_then_alerts_equal_the_in_process_run() {
    use iot_anomalies::{run, support::Options};
    let in_process = run(&Options {
        events: IOT_EVENTS,
        bootstrap: None,
    })
    .unwrap();
    let broker = broker();
    let over_kafka = run(&Options {
        events: IOT_EVENTS,
        bootstrap: Some(broker.bootstrap().to_string()),
    })
    .unwrap();
    over_kafka.print();
    assert_eq!(over_kafka.alerts, in_process.alerts);
    let kafka = over_kafka
        .kafka
        .expect("a run over Kafka reports its topics");
    assert_eq!(kafka.records_out, in_process.alerts.len() as u64);
}

/// The `prices` map a straightforward computation over all orders gives.
fn pricing_model(events: u64) -> Vec<live_pricing::Quote> {
    use live_pricing::{order, product, Quote, PRODUCTS, SURCHARGE_PCT_MAX, SURGE_UNITS};
    let mut demand: BTreeMap<u32, (i64, i64)> = BTreeMap::new();
    for n in 0..events {
        let o = order(n);
        if o.product < PRODUCTS {
            let (orders, units) = demand.entry(o.product).or_default();
            *orders += 1;
            *units += o.quantity;
        }
    }
    demand
        .into_iter()
        .map(|(id, (orders, units))| {
            let base_price_cents = product(id).base_price_cents;
            let surcharge_pct = SURCHARGE_PCT_MAX * units.min(SURGE_UNITS) / SURGE_UNITS;
            Quote {
                product: id,
                orders,
                units,
                base_price_cents,
                surcharge_pct,
                price_cents: base_price_cents * (100 + surcharge_pct) / 100,
            }
        })
        .collect()
}

#[test]
fn when_live_pricing_runs_in_process_then_prices_follow_demand_and_queries_find_bestsellers() {
    use live_pricing::{run, support::Options, PRODUCTS, SURGING_PCT};
    let summary = run(&Options {
        events: PRICING_EVENTS,
        bootstrap: None,
    })
    .unwrap();
    summary.print();
    let expected = pricing_model(PRICING_EVENTS);
    assert_eq!(summary.prices, expected);
    let surging: Vec<u32> = expected
        .iter()
        .filter(|q| q.surcharge_pct >= SURGING_PCT)
        .map(|q| q.product)
        .collect();
    assert_eq!(summary.surging, surging);
    let bestsellers: Vec<u32> = (0..PRODUCTS).step_by(50).collect();
    assert_eq!(summary.surging, bestsellers);
    let mean = expected.iter().map(|q| q.surcharge_pct).sum::<i64>() as f64 / expected.len() as f64;
    assert!(
        (summary.surcharge_pct_mean - mean).abs() < 1e-9,
        "{} vs {mean}",
        summary.surcharge_pct_mean
    );
    // One order in fifty names a discontinued product: the join drops it.
    let priced: i64 = summary.prices.iter().map(|q| q.orders).sum();
    assert_eq!(priced as u64, PRICING_EVENTS - PRICING_EVENTS / 50);
}

#[test]
fn when_live_pricing_runs_over_kafka_then_prices_equal_the_in_process_run() {
    use live_pricing::{run, support::Options};
    let in_process = run(&Options {
        events: PRICING_EVENTS,
        bootstrap: None,
    })
    .unwrap();
    let broker = broker();
    let over_kafka = run(&Options {
        events: PRICING_EVENTS,
        bootstrap: Some(broker.bootstrap().to_string()),
    })
    .unwrap();
    over_kafka.print();
    assert_eq!(over_kafka.prices, in_process.prices);
    assert_eq!(over_kafka.surging, in_process.surging);
    // Every priced order wrote one quote to the output topic.
    let priced: i64 = in_process.prices.iter().map(|q| q.orders).sum();
    let kafka = over_kafka
        .kafka
        .expect("a run over Kafka reports its topics");
    assert_eq!(kafka.records_out, priced as u64);
}

/// The sessions of a straightforward split of each subscriber's records
/// wherever two are a gap or more apart.
fn network_model(events: u64) -> Vec<network_monitoring::Session> {
    use network_monitoring::{usage, Session, UsageRecord, BYTES_LIMIT, GAP};
    let gap_ms = GAP.as_millis() as i64;
    let mut by_subscriber: BTreeMap<u32, Vec<UsageRecord>> = BTreeMap::new();
    for n in 0..events {
        let r = usage(n);
        by_subscriber.entry(r.subscriber).or_default().push(r);
    }
    let mut sessions = Vec::new();
    for (subscriber, records) in by_subscriber {
        let mut current: Option<Session> = None;
        for r in records {
            match &mut current {
                Some(s) if r.ts - s.last < gap_ms => {
                    s.last = r.ts;
                    s.records += 1;
                    s.bytes += r.bytes;
                    s.call_ms += r.call_ms;
                }
                _ => {
                    sessions.extend(current.take());
                    current = Some(Session {
                        subscriber,
                        start: r.ts,
                        last: r.ts,
                        records: 1,
                        bytes: r.bytes,
                        call_ms: r.call_ms,
                        over_limit: false,
                    });
                }
            }
        }
        sessions.extend(current);
    }
    for s in &mut sessions {
        s.over_limit = s.bytes > BYTES_LIMIT;
    }
    sessions.sort();
    sessions
}

#[test]
fn when_network_monitoring_runs_in_process_then_sessions_match_a_naive_split() {
    use network_monitoring::{run, streams_video, support::Options, SUBSCRIBERS};
    let summary = run(&Options {
        events: NETWORK_EVENTS,
        bootstrap: None,
    })
    .unwrap();
    summary.print();
    assert_eq!(summary.sessions, network_model(NETWORK_EVENTS));
    // Each subscriber is online in stretches with longer silences between:
    // several sessions each.
    assert!(
        summary.sessions.len() > 2 * SUBSCRIBERS as usize,
        "{}",
        summary.sessions.len()
    );
    let mut flagged: Vec<u32> = summary
        .sessions
        .iter()
        .filter(|s| s.over_limit)
        .map(|s| s.subscriber)
        .collect();
    flagged.dedup();
    let streaming: Vec<u32> = (0..SUBSCRIBERS).filter(|s| streams_video(*s)).collect();
    assert_eq!(
        flagged, streaming,
        "only video streamers pass the limit, and all do"
    );
}

#[test]
fn when_network_monitoring_runs_over_kafka_then_sessions_equal_the_in_process_run() {
    use network_monitoring::{run, support::Options};
    let in_process = run(&Options {
        events: NETWORK_EVENTS,
        bootstrap: None,
    })
    .unwrap();
    let broker = broker();
    let over_kafka = run(&Options {
        events: NETWORK_EVENTS,
        bootstrap: Some(broker.bootstrap().to_string()),
    })
    .unwrap();
    over_kafka.print();
    assert_eq!(over_kafka.sessions, in_process.sessions);
    let kafka = over_kafka
        .kafka
        .expect("a run over Kafka reports its topics");
    assert_eq!(kafka.records_out, in_process.sessions.len() as u64);
}
