//! Property: a windowed GROUP BY in SQL (tumbling, hop, session) over random,
//! out-of-order rows equals a naive model of the windows. The rows go
//! through a JSON-lines file table with a watermark whose lag covers the
//! disorder, so no row is late and every row counts.
//!
//! Seeded (`EDDY_TEST_SEED` repeats a run; a failure prints its seed).

use eddy::prelude::*;
use eddy_sql::{Outcome, Session, Value};
use eddy_testkit::Seed;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Cases per window kind: each runs a job, so a few dozen keep the test
/// within seconds.
const CASES: u32 = 24;

type Rows = Vec<(i64, u8, i64)>;

/// Rows `(ts, key, value)` with timestamps up to `disorder` ms behind
/// increasing order, and that disorder.
fn rows_strategy() -> impl Strategy<Value = (Rows, i64)> {
    (1usize..150, 0i64..60).prop_flat_map(|(n, disorder)| {
        (
            prop::collection::vec((0i64..=disorder, 0u8..4, -50i64..50), n).prop_map(|raw| {
                raw.into_iter()
                    .enumerate()
                    .map(|(i, (jitter, k, v))| (1_000 + i as i64 * 7 - jitter, k, v))
                    .collect::<Vec<_>>()
            }),
            Just(disorder),
        )
    })
}

/// (window start, window end, key) → (count, sum, min, max).
type Model = BTreeMap<(i64, i64, i64), (i64, i64, i64, i64)>;

fn model(rows: &Rows, slide_ms: i64, size_ms: i64) -> Model {
    let mut out: Model = BTreeMap::new();
    for &(ts, k, v) in rows {
        let mut end = ts.div_euclid(slide_ms) * slide_ms + slide_ms;
        while end - size_ms <= ts {
            let e = out
                .entry((end - size_ms, end, k as i64))
                .or_insert((0, 0, i64::MAX, i64::MIN));
            e.0 += 1;
            e.1 += v;
            e.2 = e.2.min(v);
            e.3 = e.3.max(v);
            end += slide_ms;
        }
    }
    out
}

/// Sessions per key: rows closer than `gap_ms` to the session's last row
/// join it; a session ends `gap_ms` after its last row.
fn session_model(rows: &Rows, gap_ms: i64) -> Model {
    let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
    for &(ts, k, v) in rows {
        by_key.entry(k).or_default().push((ts, v));
    }
    let mut out = Model::new();
    for (k, mut evs) in by_key {
        evs.sort();
        let mut i = 0;
        while i < evs.len() {
            let (start, mut last) = (evs[i].0, evs[i].0);
            let mut acc = (0, 0, i64::MAX, i64::MIN);
            while i < evs.len() && evs[i].0 < last + gap_ms {
                last = last.max(evs[i].0);
                let v = evs[i].1;
                acc = (acc.0 + 1, acc.1 + v, acc.2.min(v), acc.3.max(v));
                i += 1;
            }
            out.insert((start, last + gap_ms, k as i64), acc);
        }
    }
    out
}

static FILES: AtomicU64 = AtomicU64::new(0);

fn run_sql(eddy: &Arc<Eddy>, rows: &Rows, lag_ms: i64, window: &str) -> Model {
    let path = std::env::temp_dir().join(format!(
        "eddy-sql-windows-{}-{}.jsonl",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = std::fs::File::create(&path).unwrap();
    for (ts, k, v) in rows {
        writeln!(f, r#"{{"ts":{ts},"k":{k},"v":{v}}}"#).unwrap();
    }
    drop(f);
    let mut s = Session::new(eddy.clone(), Grid::new());
    s.execute(&format!(
        "CREATE TABLE r (ts TIMESTAMP(3), k BIGINT, v BIGINT, WATERMARK FOR ts AS ts - INTERVAL '{lag_ms}' MILLISECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}')",
        path.display()
    ))
    .unwrap();
    let outcome = s
        .execute(&format!(
            "SELECT window_start, window_end, k, COUNT(*), SUM(v), MIN(v), MAX(v)
             FROM TABLE({window}) GROUP BY window_start, window_end, k"
        ))
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let Outcome::Rows { rows, .. } = outcome else {
        panic!("rows expected")
    };
    let mut out = Model::new();
    for r in rows {
        let [Value::Timestamp(start), Value::Timestamp(end), Value::Int(k), Value::Int(n), Value::Int(sum), Value::Int(min), Value::Int(max)] =
            &r[..]
        else {
            panic!("unexpected row {r:?}")
        };
        assert!(
            out.insert((*start, *end, *k), (*n, *sum, *min, *max))
                .is_none(),
            "a window emitted twice: {r:?}"
        );
    }
    out
}

fn check(seed: &Seed, slide_ms: i64, size_ms: i64, window: &str) {
    check_with(seed, window, |rows| model(rows, slide_ms, size_ms));
}

fn check_with(seed: &Seed, window: &str, reference: impl Fn(&Rows) -> Model) {
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(2)));
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed.value().to_le_bytes().repeat(4)),
    );
    runner
        .run(&rows_strategy(), |(rows, disorder)| {
            let actual = run_sql(&eddy, &rows, disorder + 1, window);
            prop_assert_eq!(actual, reference(&rows));
            Ok(())
        })
        .unwrap();
}

#[test]
fn when_random_out_of_order_rows_then_sql_tumbling_windows_equal_the_model() {
    let seed = Seed::new("SQL tumbling windows vs model");
    check(
        &seed,
        50,
        50,
        "TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '50' MILLISECOND)",
    );
}

#[test]
fn when_random_out_of_order_rows_then_sql_hop_windows_equal_the_model() {
    let seed = Seed::new("SQL hop windows vs model");
    check(
        &seed,
        20,
        60,
        "HOP(TABLE r, DESCRIPTOR(ts), INTERVAL '20' MILLISECOND, INTERVAL '60' MILLISECOND)",
    );
}

#[test]
fn when_random_out_of_order_rows_then_sql_session_windows_equal_the_model() {
    let seed = Seed::new("SQL session windows vs model");
    check_with(
        &seed,
        "SESSION(TABLE r PARTITION BY k, DESCRIPTOR(ts), INTERVAL '15' MILLISECOND)",
        |rows| session_model(rows, 15),
    );
}
