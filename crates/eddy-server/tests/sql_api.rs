//! `/api/sql` and the SQL catalog through the router: statements answer
//! rows, jobs and definitions; errors are positioned with their caret;
//! the token guards statements; the catalog of a node with a data
//! directory survives the node.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use eddy_grid::Grid;
use eddy_runtime::{Eddy, EddyConfig};
use eddy_server::{app, Node, ServerConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn call(rt: &tokio::runtime::Runtime, app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    rt.block_on(async {
        let response = app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    })
}

fn sql(text: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/api/sql").header("content-type", "text/plain");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(text.to_owned())).unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn node_with(snapshot_dir: Option<&Path>) -> Arc<Node> {
    let mut config = EddyConfig::with_threads(1);
    if let Some(dir) = snapshot_dir {
        config.snapshot_dir = dir.to_path_buf();
    }
    Node::new(Arc::new(Eddy::new(config)), Grid::new())
}

fn fresh_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-sql-api-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const ORDERS: &str = "CREATE TABLE orders (id BIGINT, amount BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'number-of-rows' = '100', 'fields.id.kind' = 'sequence',
        'fields.amount.kind' = 'sequence', 'fields.ts.step' = '100')";

const CLICKS: &str = "CREATE TABLE clicks (user_id BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'rows-per-second' = '200', 'fields.user_id.max' = '4')";

const PER_USER: &str = "CREATE TABLE per_user (window_start TIMESTAMP(3), user_id BIGINT, n BIGINT,
  PRIMARY KEY (window_start, user_id) NOT ENFORCED) WITH ('connector' = 'map')";

const COUNT_JOB: &str = "CREATE JOB clicks_per_user AS INSERT INTO per_user
  SELECT window_start, user_id, COUNT(*)
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' SECOND))
  GROUP BY window_start, window_end, user_id";

#[test]
fn when_a_datagen_table_is_queried_then_the_rows_come_back_as_json() {
    let app = app(node_with(None), ServerConfig::default()).unwrap();
    let rt = runtime();
    let script = format!(
        "{ORDERS};
         SELECT window_start, COUNT(*) AS n, SUM(amount) AS total
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND))
         GROUP BY window_start, window_end ORDER BY window_start;
         EXPLAIN SELECT id FROM orders"
    );
    let (status, body) = call(&rt, &app, sql(&script, None));
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{body}");
    assert_eq!(results[0]["kind"], "ddl");
    assert!(
        results[0]["message"]
            .as_str()
            .unwrap()
            .contains("created table 'orders'"),
        "{body}"
    );
    assert_eq!(results[1]["kind"], "rows");
    assert_eq!(
        results[1]["columns"],
        json!([
            {"name": "window_start", "type": "TIMESTAMP(3)"},
            {"name": "n", "type": "BIGINT"},
            {"name": "total", "type": "BIGINT"}
        ])
    );
    assert_eq!(
        results[1]["rows"],
        json!([
            ["1970-01-01T00:00:00.000Z", 50, 1225],
            ["1970-01-01T00:00:05.000Z", 50, 3725]
        ]),
        "{body}"
    );
    assert_eq!(results[2]["kind"], "plan");
    assert!(results[2]["text"].as_str().unwrap().contains("orders"));

    let (status, tables) = call(&rt, &app, get("/api/sql/tables"));
    assert_eq!(status, StatusCode::OK);
    let t = &tables[0];
    assert_eq!(t["name"], "orders");
    assert_eq!(t["connector"], "datagen");
    assert_eq!(t["options"]["number-of-rows"], "100");
    assert_eq!(
        t["columns"][2],
        json!({"name": "ts", "type": "TIMESTAMP(3)"})
    );
    assert_eq!(t["watermark"], json!({"column": "ts", "lag_ms": 1000}));
    assert_eq!(t["primary_key"], json!([]));
    assert!(t["sql"]
        .as_str()
        .unwrap()
        .starts_with("CREATE TABLE orders"));
}

#[test]
fn when_a_statement_is_wrong_then_400_names_line_column_and_draws_the_caret() {
    let app = app(node_with(None), ServerConfig::default()).unwrap();
    let rt = runtime();
    let script = format!("{ORDERS};\nSELECT amout FROM orders");
    let (status, body) = call(&rt, &app, sql(&script, None));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let e = &body["error"];
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("did you mean 'amount'"),
        "{body}"
    );
    assert_eq!(e["line"], 5, "{body}");
    assert_eq!(e["column"], 8, "{body}");
    assert_eq!(e["kind"], "plan");
    assert!(
        e["caret"]
            .as_str()
            .unwrap()
            .contains("5 | SELECT amout FROM orders\n  |        ^"),
        "{body}"
    );
    // The statement before the error ran, and says so.
    assert_eq!(body["results"][0]["kind"], "ddl", "{body}");

    let (status, body) = call(&rt, &app, sql("   ", None));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("empty"), "{body}");
}

#[test]
fn when_the_node_has_a_token_then_sql_without_it_is_401() {
    let app = app(
        node_with(None),
        ServerConfig::default().with_token("s3cret"),
    )
    .unwrap();
    let rt = runtime();
    let (status, body) = call(&rt, &app, sql("SHOW TABLES", None));
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let (status, _) = call(&rt, &app, sql("SHOW TABLES", Some("wrong")));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&rt, &app, sql("SHOW TABLES", Some("s3cret")));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["kind"], "rows");
}

/// Waits until `f` holds, failing after 20 s with `what`.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn when_a_job_is_created_then_it_is_listed_with_its_sql_and_fills_its_map() {
    let node = node_with(None);
    let app = app(node.clone(), ServerConfig::default()).unwrap();
    let rt = runtime();
    let (status, body) = call(
        &rt,
        &app,
        sql(&format!("{CLICKS}; {PER_USER}; {COUNT_JOB};"), None),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = &body["results"][2];
    assert_eq!(job["kind"], "job", "{body}");
    assert_eq!(job["name"], "clicks_per_user");
    let id = job["id"].as_u64().unwrap();

    let (status, jobs) = call(&rt, &app, get("/api/sql/jobs"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs[0]["name"], "clicks_per_user", "{jobs}");
    assert_eq!(jobs[0]["id"].as_u64(), Some(id));
    assert!(jobs[0]["sql"]
        .as_str()
        .unwrap()
        .starts_with("CREATE JOB clicks_per_user"));
    assert!(
        matches!(jobs[0]["status"].as_str(), Some("starting" | "running")),
        "{jobs}"
    );
    // It is a job of the node like any other.
    let (_, all) = call(&rt, &app, get("/api/jobs"));
    assert!(
        all.as_array().unwrap().iter().any(|j| j["id"] == id),
        "{all}"
    );
    eventually("windows in the map", || {
        let (_, body) = call(&rt, &app, sql("SELECT COUNT(*) AS n FROM per_user", None));
        body["results"][0]["rows"][0][0].as_i64().unwrap_or(0) > 0
    });
    let (status, _) = call(&rt, &app, sql("DROP JOB clicks_per_user", None));
    assert_eq!(status, StatusCode::OK);
    let (_, jobs) = call(&rt, &app, get("/api/sql/jobs"));
    assert_eq!(jobs, json!([]));
}

#[test]
fn when_a_node_with_a_data_dir_restarts_then_its_tables_and_jobs_are_back() {
    let dir = fresh_dir("restart");
    let data = dir.join("data");
    {
        let node = node_with(Some(&data.join("snapshots")));
        assert_eq!(node.open_catalog(&data).unwrap().tables, 0);
        let app = app(node.clone(), ServerConfig::default()).unwrap();
        let rt = runtime();
        let (status, body) = call(
            &rt,
            &app,
            sql(
                &format!("{CLICKS}; {PER_USER}; {ORDERS}; DROP TABLE orders; {COUNT_JOB};"),
                None,
            ),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(data.join("catalog.json").is_file());
        assert!(!data.join("catalog.json.tmp").exists());
        // Dropping the last handle of the engine stops its jobs, keeping
        // their snapshots, as a node that stops does.
        drop(app);
        drop(node);
    }
    let node = node_with(Some(&data.join("snapshots")));
    let replayed = node.open_catalog(&data).unwrap();
    assert_eq!((replayed.tables, replayed.jobs), (2, 1));
    let app = app(node.clone(), ServerConfig::default()).unwrap();
    let rt = runtime();
    let (_, tables) = call(&rt, &app, get("/api/sql/tables"));
    let names: Vec<&str> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["clicks", "per_user"], "{tables}");
    assert_eq!(tables[1]["primary_key"], json!(["window_start", "user_id"]));
    let (_, jobs) = call(&rt, &app, get("/api/sql/jobs"));
    assert_eq!(jobs[0]["name"], "clicks_per_user", "{jobs}");
    assert!(jobs[0]["sql"].as_str().unwrap().contains("TUMBLE"));
    eventually("the resubmitted job fills the map", || {
        let (_, body) = call(&rt, &app, sql("SELECT COUNT(*) AS n FROM per_user", None));
        body["results"][0]["rows"][0][0].as_i64().unwrap_or(0) > 0
    });
    drop(app);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_the_catalog_file_is_damaged_then_opening_names_it_and_the_fix() {
    let dir = fresh_dir("damaged");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("catalog.json"), "{\"version\": 1, \"tables\": [").unwrap();
    let e = node_with(None).open_catalog(&dir).unwrap_err().to_string();
    assert!(
        e.contains("catalog.json") && e.contains("move it away"),
        "{e}"
    );
    std::fs::write(
        dir.join("catalog.json"),
        r#"{"version": 1, "tables": [{"name": "t", "sql": "CREATE TABLE t (a BIGINT) WITH ('connector' = 'datagn')"}], "jobs": []}"#,
    )
    .unwrap();
    let e = node_with(None).open_catalog(&dir).unwrap_err().to_string();
    assert!(e.contains("table 't'") && e.contains("datagen"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_bound_beyond_loopback_without_a_token_then_the_server_refuses_to_start() {
    let open = ServerConfig::bind("0.0.0.0:0".parse().unwrap());
    let e = app(node_with(None), open.clone()).unwrap_err().to_string();
    assert!(
        e.contains("0.0.0.0:0") && e.contains("--allow-unauthenticated") && e.contains("token"),
        "{e}"
    );
    assert!(eddy_server::start(node_with(None), open.clone()).is_err());
    assert!(app(node_with(None), open.clone().with_token("t")).is_ok());
    assert!(app(node_with(None), open.allowing_unauthenticated(true)).is_ok());
}

#[test]
fn when_a_read_token_is_set_then_reads_need_it_but_probes_do_not() {
    let config = ServerConfig::default()
        .with_token("wr1te")
        .with_read_token("r3ad");
    let app = app(node_with(None), config).unwrap();
    let rt = runtime();
    let (status, body) = call(&rt, &app, get("/api/sql/tables"));
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("reads"), "{body}");
    for token in ["r3ad", "wr1te"] {
        let req = Request::get("/api/sql/tables")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&rt, &app, req).0, StatusCode::OK, "{token}");
    }
    assert_eq!(call(&rt, &app, get("/health")).0, StatusCode::OK);
    // The read token does not allow changes.
    let (status, _) = call(&rt, &app, sql("SHOW TABLES", Some("r3ad")));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
