//! `eddy bench nexmark --sql`: a NEXMark query written in SQL
//! (`crates/eddy-nexmark/sql/`) against the same query written in Rust, in
//! the same process on the same events, with the ratio of their rates.
//!
//! The SQL run reads the bids of the first `events` events of the faithful
//! generator as a generated table (Eddy SQL has no views, so `bid` is a
//! table of its own rather than Flink's view over the event stream) and
//! writes to a blackhole table; its rate counts the same `events`, so the
//! two rates compare the same work.

use crate::nexmark::{NexmarkOptions, Report};
use eddy::prelude::*;
use eddy_nexmark::generator::{AUCTION_PROPORTION, PERSON_PROPORTION, PROPORTION_DENOMINATOR};
use eddy_nexmark::{Event, GeneratorConfig, Query};
use eddy_sql::{Column, DataType, Row, Session, Value};
use std::sync::Arc;
use std::time::Instant;

const BID_TABLE: &str = include_str!("../../eddy-nexmark/sql/bid.sql");

/// Bids per epoch of the generator's proportions.
const BIDS_PER_EPOCH: u64 = PROPORTION_DENOMINATOR - PERSON_PROPORTION - AUCTION_PROPORTION;

/// The query's SQL text and the columns of its output; an error for a
/// query not written in SQL yet.
pub fn query_text(query: Query) -> anyhow::Result<(&'static str, &'static str)> {
    const BID_COLUMNS: &str =
        "auction BIGINT, bidder BIGINT, price BIGINT, date_time TIMESTAMP(3), extra VARCHAR";
    Ok(match query {
        Query::Q0 => (include_str!("../../eddy-nexmark/sql/q0.sql"), BID_COLUMNS),
        Query::Q1 => (include_str!("../../eddy-nexmark/sql/q1.sql"), BID_COLUMNS),
        Query::Q2 => (
            include_str!("../../eddy-nexmark/sql/q2.sql"),
            "auction BIGINT, price BIGINT",
        ),
        other => anyhow::bail!(
            "{other} is not written in SQL yet (Q0, Q1 and Q2 are): run it without --sql"
        ),
    })
}

/// The event number of bid `k` of the stream (in order: out-of-order
/// group 1).
fn bid_event_number(k: u64) -> u64 {
    (k / BIDS_PER_EPOCH) * PROPORTION_DENOMINATOR
        + PERSON_PROPORTION
        + AUCTION_PROPORTION
        + k % BIDS_PER_EPOCH
}

/// Bids among the first `events` events.
fn bids_in(events: u64) -> u64 {
    let full = events / PROPORTION_DENOMINATOR * BIDS_PER_EPOCH;
    let rest =
        (events % PROPORTION_DENOMINATOR).saturating_sub(PERSON_PROPORTION + AUCTION_PROPORTION);
    full + rest
}

/// The SQL run of `options.query`: the report's rates count `events`.
pub fn run_sql(options: &NexmarkOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(
        options.rate_per_sec.is_none(),
        "--sql measures throughput: leave out --rate"
    );
    anyhow::ensure!(
        options.out_of_order_group == 1,
        "--sql reads the generator's events in order"
    );
    let (text, out_columns) = query_text(options.query)?;
    let generator = GeneratorConfig {
        seed: options.seed,
        base_time_ms: 1_700_000_000_000,
        rate_per_sec: crate::nexmark::NOMINAL_RATE_PER_SEC,
        out_of_order_group: 1,
    };
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(options.parallelism)));
    let mut s = Session::new(eddy, Grid::new());
    let columns = vec![
        col("auction", DataType::BigInt),
        col("bidder", DataType::BigInt),
        col("price", DataType::BigInt),
        col("channel", DataType::Varchar),
        col("url", DataType::Varchar),
        col("date_time", DataType::Timestamp),
        col("extra", DataType::Varchar),
    ];
    // The same schema as sql/bid.sql, whose file source this replaces.
    debug_assert!(BID_TABLE.contains("date_time TIMESTAMP(3)"));
    let rows = bids_in(options.events);
    s.create_generated_table(
        "bid",
        columns,
        Some(("date_time", generator.disorder_ms())),
        Some(rows),
        move |k| match generator.event(bid_event_number(k)) {
            Event::Bid(b) => Row::new(vec![
                Value::Int(b.auction as i64),
                Value::Int(b.bidder as i64),
                Value::Int(b.price as i64),
                Value::str(&b.channel),
                Value::str(&b.url),
                Value::Timestamp(b.date_time),
                Value::str(&b.extra),
            ]),
            // Proportions are fixed: event bid_event_number(k) is a bid.
            other => unreachable!("event {} is not a bid: {other:?}", bid_event_number(k)),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    s.execute(&format!(
        "CREATE TABLE out ({out_columns}) WITH ('connector' = 'blackhole')"
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let statement = format!(
        "CREATE JOB nexmark WITH ('parallelism' = '{}') AS INSERT INTO out {}",
        options.parallelism,
        text.trim().trim_end_matches(';')
    );
    let cpu_before = crate::proc_stats::process_cpu_secs().unwrap_or(0.0);
    let started = Instant::now();
    s.execute(&statement)
        .map_err(|e| anyhow::anyhow!("{}", e.render(&statement)))?;
    s.wait_for_bounded_jobs()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let wall_secs = started.elapsed().as_secs_f64();
    let cpu_secs = crate::proc_stats::process_cpu_secs().unwrap_or(0.0) - cpu_before;
    Ok(Report {
        engine: "eddy-sql".into(),
        query: options.query.to_string(),
        variant: "faithful".into(),
        events: options.events,
        parallelism: options.parallelism,
        rate_per_sec: None,
        outputs: 0,
        wall_secs,
        events_per_sec: options.events as f64 / wall_secs,
        cpu_secs,
        events_per_cpu_sec: options.events as f64 / cpu_secs.max(1e-9),
        latency: None,
        peak_rss_bytes: None,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    })
}

fn col(name: &str, data_type: DataType) -> Column {
    Column {
        name: name.into(),
        data_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_bids_are_numbered_then_each_is_a_bid_event() {
        let g = GeneratorConfig {
            seed: 1,
            base_time_ms: 0,
            rate_per_sec: 1000.0,
            out_of_order_group: 1,
        };
        for k in 0..500 {
            assert!(
                matches!(g.event(bid_event_number(k)), Event::Bid(_)),
                "bid {k}"
            );
        }
        let counted = (0..1234)
            .filter(|n| matches!(g.event(*n), Event::Bid(_)))
            .count() as u64;
        assert_eq!(bids_in(1234), counted);
    }

    #[test]
    fn when_q1_runs_in_sql_then_it_reports_a_rate() {
        let options = NexmarkOptions {
            query: Query::Q1,
            events: 20_000,
            parallelism: 2,
            ..NexmarkOptions::default()
        };
        let report = run_sql(&options).unwrap();
        assert!(report.events_per_sec > 0.0);
        let e = run_sql(&NexmarkOptions {
            query: Query::Q5,
            ..options
        })
        .unwrap_err();
        assert!(e.to_string().contains("not written in SQL yet"), "{e}");
    }
}
