//! SQL jobs run to the end on generated data, their output compared with
//! a naive model computed here from the same generated rows.

use eddy::prelude::*;
use eddy_sql::connectors::Connector;
use eddy_sql::error::Pos;
use eddy_sql::{Outcome, Session, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const ORDERS: &str = "CREATE TABLE orders (
    id BIGINT, customer VARCHAR, amount BIGINT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '500' MILLISECOND
) WITH (
    'connector' = 'datagen', 'number-of-rows' = '5000', 'seed' = '7',
    'fields.id.kind' = 'sequence',
    'fields.customer.length' = '1',
    'fields.amount.min' = '1', 'fields.amount.max' = '50',
    'fields.ts.start' = '1000', 'fields.ts.step' = '3'
)";

fn session() -> (Session, Grid) {
    let grid = Grid::new();
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(2)));
    (Session::new(eddy, grid.clone()), grid)
}

/// (window start, customer) → (count, sum) of the generated orders, in
/// tumbling windows of `size_ms`.
fn model(s: &Session, size_ms: i64) -> BTreeMap<(i64, String), (i64, i64)> {
    let table = s.catalog().table("orders", Pos::START).unwrap();
    let Connector::Datagen(gen) = &table.connector else {
        panic!("a datagen table")
    };
    let mut out = BTreeMap::new();
    for n in 0..5000 {
        let row = gen.row(n);
        let (Value::Str(c), Value::Int(a), Value::Timestamp(ts)) = (&row[1], &row[2], &row[3])
        else {
            panic!("unexpected row {row:?}")
        };
        let start = ts.div_euclid(size_ms) * size_ms;
        let e = out.entry((start, c.to_string())).or_insert((0, 0));
        e.0 += 1;
        e.1 += a;
    }
    out
}

#[test]
fn when_datagen_is_windowed_into_a_map_then_the_map_equals_the_model() {
    let (mut s, grid) = session();
    s.execute(ORDERS).unwrap();
    s.execute(
        "CREATE TABLE per_customer (window_start TIMESTAMP(3), customer VARCHAR, n BIGINT, total BIGINT,
           PRIMARY KEY (window_start, customer) NOT ENFORCED) WITH ('connector' = 'map')",
    )
    .unwrap();
    let outcome = s
        .execute(
            "CREATE JOB counts AS INSERT INTO per_customer
             SELECT window_start, customer, COUNT(*), SUM(amount)
             FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND))
             GROUP BY window_start, window_end, customer",
        )
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Job { ref name, .. } if name == "counts"),
        "{outcome:?}"
    );
    s.wait_for_bounded_jobs().unwrap();

    let expected = model(&s, 1000);
    let map = grid
        .map::<String, serde_json::Value>("per_customer")
        .unwrap();
    assert_eq!(map.size(), expected.len());
    for ((start, customer), (n, total)) in &expected {
        let key =
            serde_json::json!([eddy_sql::types::format_rfc3339(*start), customer]).to_string();
        let v = map.get(&key).unwrap_or_else(|| panic!("no entry {key}"));
        assert_eq!(v["n"], *n, "{key}");
        assert_eq!(v["total"], *total, "{key}");
    }

    // The map table reads back as a bounded table.
    let Outcome::Rows { rows, .. } = s
        .execute("SELECT customer, SUM(n) AS n FROM per_customer WHERE n > 0 GROUP BY customer ORDER BY customer")
        .unwrap()
    else {
        panic!()
    };
    let total: i64 = rows.iter().map(|r| r[1].as_i64().unwrap()).sum();
    assert_eq!(total, 5000);
}

#[test]
fn when_datagen_is_windowed_into_a_file_then_the_lines_equal_the_model() {
    let (mut s, _grid) = session();
    let dir = std::env::temp_dir().join(format!("eddy-sql-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("counts.jsonl");
    s.execute(ORDERS).unwrap();
    s.execute(&format!(
        "CREATE TABLE counts (window_start TIMESTAMP(3), window_end TIMESTAMP(3), customer VARCHAR, n BIGINT, total BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json')",
        path.display()
    ))
    .unwrap();
    s.execute(
        "INSERT INTO counts
         SELECT window_start, window_end, customer, COUNT(*) AS n, SUM(amount) AS total
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '2' SECOND))
         GROUP BY window_start, window_end, customer",
    )
    .unwrap();
    s.wait_for_bounded_jobs().unwrap();

    let expected = model(&s, 2000);
    let mut actual = BTreeMap::new();
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let start = eddy_sql::types::parse_timestamp(v["window_start"].as_str().unwrap()).unwrap();
        let end = eddy_sql::types::parse_timestamp(v["window_end"].as_str().unwrap()).unwrap();
        assert_eq!(end - start, 2000);
        let key = (start, v["customer"].as_str().unwrap().to_string());
        let value = (v["n"].as_i64().unwrap(), v["total"].as_i64().unwrap());
        assert!(
            actual.insert(key, value).is_none(),
            "a window written twice: {line}"
        );
    }
    assert_eq!(actual, expected);

    // The file reads back as a table.
    let Outcome::Rows { rows, .. } = s.execute("SELECT SUM(n) FROM counts").unwrap() else {
        panic!()
    };
    assert_eq!(rows[0][0], Value::Int(5000));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_an_unbounded_stream_is_grouped_without_window_then_the_map_holds_the_latest_totals() {
    let (mut s, grid) = session();
    s.execute(
        "CREATE TABLE clicks (user_id BIGINT, page VARCHAR) WITH ('connector' = 'datagen',
           'fields.user_id.min' = '1', 'fields.user_id.max' = '5', 'fields.page.length' = '2')",
    )
    .unwrap();
    s.execute(
        "CREATE TABLE per_user (user_id BIGINT, n BIGINT, PRIMARY KEY (user_id) NOT ENFORCED)
         WITH ('connector' = 'map', 'map.name' = 'clicks_per_user')",
    )
    .unwrap();
    s.execute("CREATE JOB per_user AS INSERT INTO per_user SELECT user_id, COUNT(*) FROM clicks GROUP BY user_id")
        .unwrap();
    let map = grid
        .map::<String, serde_json::Value>("clicks_per_user")
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while map.size() < 5
        || map
            .values()
            .iter()
            .map(|v| v["n"].as_i64().unwrap())
            .sum::<i64>()
            < 1000
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the map did not fill: {}",
            map.size()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let Outcome::Rows { rows, .. } = s.execute("SHOW JOBS").unwrap() else {
        panic!()
    };
    assert_eq!(rows[0][2], Value::str("RUNNING"));
    s.execute("DROP JOB per_user").unwrap();
    assert!(
        matches!(s.execute("SHOW JOBS").unwrap(), Outcome::Rows { rows, .. } if rows.is_empty())
    );
}

#[test]
fn when_expressions_run_then_sql_semantics_hold() {
    let (mut s, _grid) = session();
    s.execute(
        "CREATE TABLE n (x BIGINT, name VARCHAR) WITH ('connector' = 'datagen', 'number-of-rows' = '5',
           'fields.x.kind' = 'sequence', 'fields.x.start' = '-2', 'fields.name.length' = '3')",
    )
    .unwrap();
    let e = s.execute("SELECT COALESCE(nulif_x, 1) FROM n").unwrap_err();
    assert!(e.message.contains("unknown column 'nulif_x'"), "{e}");
    let Outcome::Rows { columns, rows } = s
        .execute(
            "SELECT x,
                    CASE WHEN x < 0 THEN 'neg' WHEN x = 0 THEN 'zero' ELSE 'pos' END AS sign,
                    ABS(x) AS a, MOD(x + 10, 3) AS m, x / 0 AS z,
                    COALESCE(CASE WHEN x > 0 THEN NULL ELSE x END, 100) AS c,
                    x IN (1, NULL) AS i, CHAR_LENGTH(name) AS l,
                    SUBSTRING('abcdef' FROM 2 FOR 3) AS sub, TRIM(BOTH 'x' FROM 'xxaxx') AS t,
                    CAST('12' AS INT) + 1 AS ci, CAST('no' AS INT) AS bad,
                    ROUND(2.456, 2) AS r, FLOOR(2.5) AS f, CEIL(2.1) AS ce,
                    EXTRACT(YEAR FROM TIMESTAMP '2024-03-01 10:00:00') AS y
             FROM n ORDER BY x DESC",
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(columns[1].name, "sign");
    assert_eq!(rows.len(), 5);
    let first = &rows[0]; // x = 2
    assert_eq!(first[0], Value::Int(2));
    assert_eq!(first[1], Value::str("pos"));
    assert_eq!(first[3], Value::Int(0));
    assert_eq!(first[4], Value::Null);
    assert_eq!(first[5], Value::Int(100));
    assert_eq!(first[6], Value::Null); // 2 IN (1, NULL) is NULL
    assert_eq!(first[7], Value::Int(3));
    assert_eq!(first[8], Value::str("bcd"));
    assert_eq!(first[9], Value::str("a"));
    assert_eq!(first[10], Value::Int(13));
    assert_eq!(first[11], Value::Null);
    assert_eq!(first[12], Value::Double(2.46));
    assert_eq!(first[13], Value::Double(2.0));
    assert_eq!(first[14], Value::Double(3.0));
    assert_eq!(first[15], Value::Int(2024));
    let last = &rows[4]; // x = -2
    assert_eq!(last[1], Value::str("neg"));
    assert_eq!(last[2], Value::Int(2));
    assert_eq!(last[5], Value::Int(-2));
    assert_eq!(rows[1][6], Value::Bool(true)); // 1 IN (1, NULL)
}

#[test]
fn when_explained_then_the_plan_names_the_stages() {
    let (mut s, _grid) = session();
    s.execute(ORDERS).unwrap();
    s.execute("CREATE TABLE sink (customer VARCHAR, n BIGINT) WITH ('connector' = 'blackhole')")
        .unwrap();
    let Outcome::Plan(text) = s
        .execute(
            "EXPLAIN INSERT INTO sink SELECT customer, COUNT(*) FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '3' SECOND))
             WHERE amount > 10 GROUP BY window_start, window_end, customer",
        )
        .unwrap()
    else {
        panic!()
    };
    for stage in [
        "read_from",
        "with_timestamps",
        "filter",
        "grouping_key",
        "window",
        "hopping 3000 ms every 1000 ms",
        "aggregate",
        "write_to",
    ] {
        assert!(text.contains(stage), "{stage} missing from:\n{text}");
    }
}
