//! The harness end to end: small runs of each query, with and without a
//! fixed rate.

use eddy_bench::nexmark::{run, NexmarkError, NexmarkOptions};
use eddy_nexmark::{Query, Variant};

#[test]
fn when_each_query_runs_then_the_report_counts_every_event() {
    for query in Query::ALL {
        let report = run(&NexmarkOptions {
            query,
            events: 30_000,
            parallelism: 2,
            ..NexmarkOptions::default()
        })
        .unwrap();
        assert_eq!(report.events, 30_000, "{query}");
        assert!(
            report.events_per_sec > 0.0 && report.latency.is_none(),
            "{query}"
        );
        assert!(report.peak_rss_bytes.is_some(), "{query}");
    }
}

#[test]
fn when_a_rate_is_given_then_latency_is_measured_after_the_warmup() {
    let report = run(&NexmarkOptions {
        query: Query::Q5,
        variant: Variant::Jet,
        events: 50_000,
        rate_per_sec: Some(100_000.0),
        parallelism: 2,
        ..NexmarkOptions::default()
    })
    .unwrap();
    let latency = report
        .latency
        .clone()
        .expect("fixed-rate runs measure latency");
    assert!(latency.samples > 0 && latency.p50_us <= latency.p9999_us);
    // 0.5 s of input at 100k events/s: the run cannot be much faster.
    assert!(report.wall_secs >= 0.45, "{}", report.wall_secs);
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"p9999_us\""));
    assert!(report.to_string().contains("events/cpu-s"));
}

#[test]
fn when_options_are_wrong_then_the_error_names_the_fix() {
    let err = run(&NexmarkOptions {
        query: Query::Q3,
        variant: Variant::Jet,
        ..NexmarkOptions::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, NexmarkError::InvalidOption(ref m) if m.contains("--variant faithful")),
        "{err}"
    );
    let err = run(&NexmarkOptions {
        events: 0,
        ..NexmarkOptions::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("--events"));
    assert!("q42".parse::<Query>().is_err());
    assert_eq!("Q13".parse::<Query>().unwrap(), Query::Q13);
    assert_eq!("jet".parse::<Variant>().unwrap(), Variant::Jet);
}
