//! NEXMark Q0, Q1 and Q2 written in SQL (`sql/*.sql`) give the same rows as
//! the Rust queries on the same events, compared regardless of order.

use eddy::prelude::*;
use eddy_nexmark::queries::{self, AuctionPrice, QueryConfig};
use eddy_nexmark::{Bid, Event, GeneratorConfig};
use eddy_pipeline::sinks::CollectSink;
use eddy_pipeline::sources::ItemsSource;
use eddy_sql::{Outcome, Row, Session, Value};
use std::io::Write;
use std::sync::Arc;

const EVENTS: u64 = 20_000;

fn events() -> (Vec<Event>, GeneratorConfig) {
    let config = GeneratorConfig {
        seed: 42,
        base_time_ms: 1_000_000,
        rate_per_sec: 1000.0,
        out_of_order_group: 1,
    };
    ((0..EVENTS).map(|n| config.event(n)).collect(), config)
}

fn sql_text(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sql")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A session whose table `bid` holds the bids of `events`.
fn session(eddy: &Arc<Eddy>, events: &[Event], lag_ms: i64) -> (Session, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("eddy-nexmark-sql-{}.jsonl", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for e in events {
        if let Event::Bid(b) = e {
            serde_json::to_writer(&mut f, b).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }
    f.flush().unwrap();
    let mut s = Session::new(eddy.clone(), Grid::new());
    let ddl = sql_text("bid.sql")
        .replace("{path}", &path.display().to_string())
        .replace("{lag_ms}", &lag_ms.to_string());
    s.execute_script(&ddl, |_| {}).unwrap();
    (s, path)
}

fn rows(s: &mut Session, file: &str) -> Vec<Row> {
    match s.execute(&sql_text(file)).unwrap() {
        Outcome::Rows { rows, .. } => rows,
        other => panic!("{file}: rows expected, got {other:?}"),
    }
}

/// A Rust query writing bids, as the harness calls it.
type BidQuery = fn(&Pipeline, ItemsSource<Event>, &QueryConfig, CollectSink<Bid>);

fn rust_bids(eddy: &Eddy, events: &[Event], q: BidQuery, config: &QueryConfig) -> Vec<Bid> {
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    q(&p, Sources::items(events.to_vec()), config, sink);
    eddy.submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();
    out.take()
}

fn bid_tuple(b: &Bid) -> (i64, i64, i64, i64, String) {
    (
        b.auction as i64,
        b.bidder as i64,
        b.price as i64,
        b.date_time,
        b.extra.clone(),
    )
}

fn row_tuple(r: &Row) -> (i64, i64, i64, i64, String) {
    let [Value::Int(a), Value::Int(b), Value::Int(p), Value::Timestamp(t), Value::Str(x)] = &r[..]
    else {
        panic!("unexpected row {r:?}")
    };
    (*a, *b, *p, *t, x.to_string())
}

#[test]
fn when_q0_q1_q2_run_in_sql_then_they_equal_the_rust_queries() {
    let (events, generator) = events();
    let config = QueryConfig::faithful(generator.disorder_ms());
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(2)));
    let (mut s, path) = session(&eddy, &events, config.lag_ms);

    let bid_queries: [(&str, BidQuery); 2] = [("q0.sql", queries::q0), ("q1.sql", queries::q1)];
    for (file, q) in bid_queries {
        let mut expected: Vec<_> = rust_bids(&eddy, &events, q, &config)
            .iter()
            .map(bid_tuple)
            .collect();
        let mut actual: Vec<_> = rows(&mut s, file).iter().map(row_tuple).collect();
        expected.sort();
        actual.sort();
        assert!(!expected.is_empty());
        assert_eq!(actual.len(), expected.len(), "{file}");
        assert!(
            actual == expected,
            "{file}: the SQL rows differ from the Rust query's"
        );
    }

    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    queries::q2(&p, Sources::items(events.clone()), &config, sink);
    eddy.submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();
    let mut expected: Vec<(i64, i64)> = out
        .take()
        .into_iter()
        .map(|a: AuctionPrice| (a.auction as i64, a.price as i64))
        .collect();
    let mut actual: Vec<(i64, i64)> = rows(&mut s, "q2.sql")
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_i64().unwrap()))
        .collect();
    expected.sort();
    actual.sort();
    assert!(!expected.is_empty());
    assert_eq!(actual, expected, "q2.sql");
    let _ = std::fs::remove_file(path);
}
