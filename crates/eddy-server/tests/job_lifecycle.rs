//! The job lifecycle through the HTTP API, against a real job that takes
//! snapshots: a generator feeding a keyed tumbling-window count, exactly
//! once, a snapshot every 50 ms. Suspend, resume, restart and export each
//! get their success and their 409, and the details and `/metrics` show
//! the guarantee and the snapshots.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use eddy_grid::Grid;
use eddy_pipeline::{agg, Pipeline, Sinks, Sources, WindowDefinition};
use eddy_runtime::{Eddy, EddyConfig, Guarantee, JobConfig};
use eddy_server::{app, Node, ServerConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// Time between snapshots: short, so that a test sees several in well
/// under a second.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(50);

/// A snapshot directory of its own per test, emptied first, so that no
/// test resumes from another's (or an earlier run's) snapshots.
fn snapshot_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "eddy-server-lifecycle-{}-{test}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A node running "windowed-counts" with `guarantee`: generated numbers,
/// timestamped by sequence, counted per key (n mod 8) in 100 ms tumbling
/// windows.
fn node_with_windowed_job(dir: &Path, guarantee: Guarantee) -> Arc<Node> {
    let mut config = EddyConfig::with_threads(1);
    config.snapshot_dir = dir.to_path_buf();
    let node = Node::new(Arc::new(Eddy::new(config)), Grid::new());
    let p = Pipeline::new();
    let (sink, _count) = Sinks::noop();
    p.read_from(Sources::generator(|n| n).rate(2000.0))
        .with_timestamps(|n| *n as i64, Duration::from_millis(10))
        .grouping_key(|n| n % 8)
        .window(WindowDefinition::tumbling(Duration::from_millis(100)))
        .aggregate(agg::count())
        .write_to(sink);
    let job_config = JobConfig::default()
        .name("windowed-counts")
        .guarantee(guarantee)
        .snapshot_interval(SNAPSHOT_INTERVAL);
    node.eddy.submit(p, job_config).unwrap();
    node
}

struct Api {
    rt: tokio::runtime::Runtime,
    app: Router,
}

impl Api {
    fn new(node: Arc<Node>, config: ServerConfig) -> Api {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Api {
            rt,
            app: app(node, config).unwrap(),
        }
    }

    fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        self.rt.block_on(async {
            let response = self.app.clone().oneshot(req).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
                .await
                .unwrap();
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (status, body)
        })
    }

    fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
    }

    fn post(&self, uri: &str) -> (StatusCode, Value) {
        self.call(
            Request::builder()
                .method(Method::POST)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
    }

    /// The job's details once `ok` holds for them; panics after 10 s.
    fn job_until(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, job) = self.get("/api/jobs/1");
            assert_eq!(status, StatusCode::OK, "{job}");
            if ok(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}: {job}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn snapshots_completed(&self) -> u64 {
        self.get("/api/jobs/1").1["snapshots"]["completed"]
            .as_u64()
            .unwrap_or(0)
    }
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[test]
fn when_a_job_takes_snapshots_then_details_list_and_metrics_show_them() {
    let dir = snapshot_dir("details");
    let api = Api::new(
        node_with_windowed_job(&dir, Guarantee::ExactlyOnce),
        ServerConfig::default(),
    );
    let job = api.job_until("two snapshots completed", |j| {
        j["snapshots"]["completed"].as_u64() >= Some(2)
    });
    assert_eq!(job["guarantee"], "exactly-once");
    let snapshots = &job["snapshots"];
    assert!(snapshots["last_id"].as_u64().unwrap() >= 2, "{job}");
    assert!(snapshots["last_bytes"].as_u64().unwrap() > 0, "{job}");
    assert!(snapshots["last_entries"].as_u64().is_some(), "{job}");
    assert!(snapshots["last_duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(snapshots["last_age_ms"].as_u64().unwrap() < 10_000, "{job}");
    assert!(snapshots["restored_from"].is_null(), "{job}");
    assert_eq!(job["unmatched_state"], serde_json::json!([]));

    let (_, list) = api.get("/api/jobs");
    assert_eq!(list[0]["guarantee"], "exactly-once");
    assert!(list[0]["snapshots"]["completed"].as_u64() >= Some(2));

    let (status, text) = api.get("/metrics");
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    let labels = "{job=\"windowed-counts\",job_id=\"1\"}";
    for family in [
        "eddy_job_snapshots_completed_total",
        "eddy_job_snapshot_last_duration_seconds",
        "eddy_job_snapshot_last_bytes",
        "eddy_job_snapshot_last_entries",
        "eddy_job_snapshot_last_completed_timestamp_seconds",
    ] {
        assert!(
            text.contains(&format!("{family}{labels} ")),
            "missing {family} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE eddy_job_snapshots_completed_total counter"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_a_job_is_suspended_and_resumed_then_it_goes_on_from_its_snapshot_and_wrong_states_answer_409(
) {
    let dir = snapshot_dir("suspend");
    let api = Api::new(
        node_with_windowed_job(&dir, Guarantee::ExactlyOnce),
        ServerConfig::default(),
    );
    api.job_until("a snapshot completed", |j| {
        j["snapshots"]["completed"].as_u64() >= Some(1)
    });

    let (status, body) = api.post("/api/jobs/1/resume");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("only a suspended job"), "{body}");

    let (status, body) = api.post("/api/jobs/1/suspend");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "suspended");
    let suspended_at = api.get("/api/jobs/1").1["snapshots"]["last_id"].clone();

    for (action, hint) in [
        ("suspend", "only a running job"),
        ("restart", "resume a suspended one"),
        ("export?name=x", "resume a suspended job first"),
    ] {
        let (status, body) = api.post(&format!("/api/jobs/1/{action}"));
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert!(error_of(&body).contains("suspended"), "{action}: {body}");
        assert!(error_of(&body).contains(hint), "{action}: {body}");
    }
    let (status, body) = api.post("/api/jobs/1/resume");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
    let job = api.job_until("the job runs again", |j| j["status"] == "running");
    assert_eq!(
        job["snapshots"]["restored_from"], suspended_at,
        "a resumed job starts from the snapshot its suspension took: {job}"
    );
    let (status, body) = api.post("/api/jobs/1/resume");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = api.post("/api/jobs/1/cancel?force=1");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.post("/api/jobs/1/cancel");
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (status, body) = api.post("/api/jobs/1/suspend");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("cancelled"), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_a_job_is_restarted_then_it_runs_on_from_its_latest_snapshot() {
    let dir = snapshot_dir("restart");
    let api = Api::new(
        node_with_windowed_job(&dir, Guarantee::ExactlyOnce),
        ServerConfig::default(),
    );
    api.job_until("a snapshot completed", |j| {
        j["snapshots"]["completed"].as_u64() >= Some(1)
    });
    let (status, body) = api.post("/api/jobs/1/restart");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
    let job = api.job_until("the new execution restored a snapshot", |j| {
        j["snapshots"]["restored_from"].is_u64()
    });
    let before = job["snapshots"]["completed"].as_u64().unwrap();
    api.job_until("the restarted job snapshots again", |j| {
        j["snapshots"]["completed"].as_u64() > Some(before)
    });
    assert_eq!(api.get("/api/jobs/1").1["status"], "running");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_a_snapshot_is_exported_then_its_file_exists_and_cancel_true_stops_the_job() {
    let dir = snapshot_dir("export");
    let api = Api::new(
        node_with_windowed_job(&dir, Guarantee::ExactlyOnce),
        ServerConfig::default(),
    );
    for (query, needle) in [
        ("", "missing query parameter 'name'"),
        ("?name=..%2Fescape", "snapshot name"),
        ("?name=ok&cancel=maybe", "true or false"),
        ("?name=ok&force=1", "unknown query parameter"),
    ] {
        let (status, body) = api.post(&format!("/api/jobs/1/export{query}"));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(error_of(&body).contains(needle), "{query}: {body}");
    }

    let (status, body) = api.post("/api/jobs/1/export?name=before-upgrade");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
    assert_eq!(body["snapshot"], "before-upgrade");
    let path = PathBuf::from(body["path"].as_str().unwrap());
    assert!(path.starts_with(&dir), "{body}");
    assert!(std::fs::metadata(&path).unwrap().len() > 0, "{body}");
    assert!(api.snapshots_completed() >= 1);

    let (status, body) = api.post("/api/jobs/1/export?name=final&cancel=true");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert!(PathBuf::from(body["path"].as_str().unwrap()).exists());
    let (status, body) = api.post("/api/jobs/1/export?name=late");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("cancelled"), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_a_job_takes_no_snapshots_then_export_answers_409_and_metrics_omit_it() {
    let dir = snapshot_dir("none");
    let api = Api::new(
        node_with_windowed_job(&dir, Guarantee::None),
        ServerConfig::default(),
    );
    let (_, job) = api.get("/api/jobs/1");
    assert_eq!(job["guarantee"], "none");
    assert!(job["snapshots"].is_null(), "{job}");
    let (status, body) = api.post("/api/jobs/1/export?name=x");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("exactly-once"), "{body}");
    let (_, text) = api.get("/metrics");
    assert!(
        !text.as_str().unwrap().contains("eddy_job_snapshot"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_a_node_has_a_token_then_lifecycle_actions_need_it_and_refuse_other_sites() {
    let dir = snapshot_dir("token");
    let api = Api::new(
        node_with_windowed_job(&dir, Guarantee::ExactlyOnce),
        ServerConfig::default().with_token("s3cret"),
    );
    for action in ["suspend", "resume", "restart", "export?name=x"] {
        let (status, body) = api.post(&format!("/api/jobs/1/{action}"));
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{action}: {body}");
        let cross_site = Request::post(format!("/api/jobs/1/{action}"))
            .header("Authorization", "Bearer s3cret")
            .header("Origin", "http://evil.example")
            .header("Host", "127.0.0.1:8080")
            .body(Body::empty())
            .unwrap();
        assert_eq!(api.call(cross_site).0, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(api.get("/api/jobs/1").1["status"], "running");
    let authorized = Request::post("/api/jobs/1/suspend")
        .header("Authorization", "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    let (status, body) = api.call(authorized);
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
