//! The HTTP API through the router (no socket) and through a real server:
//! jobs, maps, errors, limits, authentication, metrics, change streams,
//! and a property test that no request makes the server fail or panic.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use common::node_with_job;
use eddy_server::{app, start, ServerConfig};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
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

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn with_body(method: Method, uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[test]
fn when_a_job_runs_then_list_details_and_cancel_work() {
    let node = node_with_job(2000.0);
    let app = app(node, ServerConfig::default()).unwrap();
    let rt = runtime();
    let (status, jobs) = call(&rt, &app, get("/api/jobs"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs[0]["name"], "alerts-generator");
    assert_eq!(jobs[0]["status"], "running");
    let id = jobs[0]["id"].as_u64().unwrap();

    let (status, details) = call(&rt, &app, get(&format!("/api/jobs/{id}")));
    assert_eq!(status, StatusCode::OK);
    // One key per name: clients that decode the summary's fields into a
    // typed struct choke on a duplicated key.
    let text = details.to_string();
    assert_eq!(text.matches("\"vertices\"").count(), 1, "{text}");
    assert_eq!(
        details["vertex_count"].as_u64(),
        Some(details["vertices"].as_array().unwrap().len() as u64)
    );
    let vertices = details["vertices"].as_array().unwrap();
    assert!(vertices.len() >= 2, "{details}");
    assert!(vertices[0].get("queue_fill").is_some());
    assert_eq!(details["edges"][0]["from"], 0);

    assert_eq!(details["guarantee"], "none");
    assert!(details["snapshots"].is_null(), "{details}");
    let (status, body) = call(
        &rt,
        &app,
        with_body(Method::POST, &format!("/api/jobs/{id}/cancel"), ""),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, body) = call(
        &rt,
        &app,
        with_body(Method::POST, &format!("/api/jobs/{id}/cancel"), ""),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    assert_eq!(
        call(&rt, &app, get("/api/jobs/999")).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&rt, &app, get("/api/jobs/abc")).0,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn when_entries_are_put_read_queried_and_deleted_then_the_api_round_trips() {
    let node = node_with_job(1.0);
    let app = app(node, ServerConfig::default()).unwrap();
    let rt = runtime();
    let put = with_body(
        Method::PUT,
        "/api/maps/alerts/entries/manual-1",
        r#"{"rule":"manual","card":7,"amount":5000}"#,
    );
    let (status, body) = call(&rt, &app, put);
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&rt, &app, get("/api/maps/alerts/entries/manual-1"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"]["amount"], 5000);

    // Integer keys: the path segment "3" is tried as a number first.
    let (status, body) = call(&rt, &app, get("/api/maps/counts/entries/3"));
    assert_eq!((status, body["value"].clone()), (StatusCode::OK, json!(9)));
    let (status, body) = call(&rt, &app, get("/api/maps/counts/entries/not-a-number"));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        call(&rt, &app, get("/api/maps/counts/entries/77")).0,
        StatusCode::NOT_FOUND
    );

    let (status, body) = call(
        &rt,
        &app,
        get("/api/maps/alerts/query?predicate=rule%20%3D%20%27manual%27&page_size=5"),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["entries"][0]["key"], "manual-1");

    let (status, body) = call(
        &rt,
        &app,
        get("/api/maps/counts/query?predicate=this%20%3D%3D&page=0"),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().len() > 10, "{body}");
    let (status, body) = call(&rt, &app, get("/api/maps/counts/query?page_size=0"));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(&rt, &app, get("/api/maps/counts/query?page_size=3&page=1"));
    assert_eq!(
        (status, body["total"].clone(), body["pages"].clone()),
        (StatusCode::OK, json!(10), json!(4))
    );
    assert_eq!(body["entries"][0]["key"], 3);

    let (status, body) = call(
        &rt,
        &app,
        get("/api/maps/counts/aggregate?aggregation=sum(this)"),
    );
    assert_eq!(
        (status, body["result"].clone()),
        (StatusCode::OK, json!(285))
    );

    let (status, body) = call(
        &rt,
        &app,
        with_body(Method::DELETE, "/api/maps/alerts/entries/manual-1", ""),
    );
    assert_eq!(
        (status, body["removed"].clone()),
        (StatusCode::OK, json!(true))
    );
    assert_eq!(
        call(&rt, &app, get("/api/maps/alerts/entries/manual-1")).0,
        StatusCode::NOT_FOUND
    );

    let (status, body) = call(
        &rt,
        &app,
        with_body(Method::PUT, "/api/maps/counts/entries/1", "\"text\""),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = call(
        &rt,
        &app,
        with_body(Method::PUT, "/api/maps/counts/entries/1", "{not json"),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(&rt, &app, get("/api/maps/nope/entries/1")).0,
        StatusCode::NOT_FOUND
    );

    let (status, maps) = call(&rt, &app, get("/api/maps"));
    assert_eq!(status, StatusCode::OK);
    let alerts = maps
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "alerts")
        .unwrap();
    assert!(alerts["hit_rate"].is_number());
}

#[test]
fn when_a_token_is_set_then_changes_need_it_and_reads_do_not() {
    let node = node_with_job(1.0);
    let app = app(node, ServerConfig::default().with_token("s3cret")).unwrap();
    let rt = runtime();
    let (status, body) = call(
        &rt,
        &app,
        with_body(Method::PUT, "/api/maps/counts/entries/1", "5"),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let wrong = Request::put("/api/maps/counts/entries/1")
        .header("Authorization", "Bearer nope")
        .body(Body::from("5"))
        .unwrap();
    assert_eq!(call(&rt, &app, wrong).0, StatusCode::UNAUTHORIZED);
    let right = Request::put("/api/maps/counts/entries/1")
        .header("Authorization", "Bearer s3cret")
        .body(Body::from("5"))
        .unwrap();
    assert_eq!(call(&rt, &app, right).0, StatusCode::OK);
    assert_eq!(
        call(&rt, &app, get("/api/maps/counts/entries/1")).0,
        StatusCode::OK
    );

    let cross_site = Request::put("/api/maps/counts/entries/1")
        .header("Authorization", "Bearer s3cret")
        .header("Origin", "http://evil.example")
        .header("Host", "127.0.0.1:8080")
        .body(Body::from("5"))
        .unwrap();
    assert_eq!(call(&rt, &app, cross_site).0, StatusCode::FORBIDDEN);
    assert!(ServerConfig::default()
        .with_token("has space")
        .validate()
        .is_err());
}

#[test]
fn when_requests_exceed_limits_or_miss_routes_then_json_errors_with_the_right_status() {
    let node = node_with_job(1.0);
    let mut config = ServerConfig::default();
    config.body_bytes_max = 100;
    config.uri_bytes_max = 300;
    let app = app(node, config).unwrap();
    let rt = runtime();
    let big = format!("\"{}\"", "x".repeat(200));
    let (status, body) = call(
        &rt,
        &app,
        with_body(Method::PUT, "/api/maps/alerts/entries/k", &big),
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"].as_str().unwrap().contains("100 bytes"),
        "{body}"
    );
    let (status, body) = call(
        &rt,
        &app,
        get(&format!(
            "/api/maps/alerts/query?predicate={}",
            "a".repeat(400)
        )),
    );
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert!(body["error"].is_string());
    let (status, body) = call(&rt, &app, get("/no/such/route"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("GET /api"));
    let (status, body) = call(&rt, &app, with_body(Method::PATCH, "/api/jobs", ""));
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = call(&rt, &app, get("/api/maps/alerts/query?page=1&page=2"));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("twice"));
}

#[test]
fn when_metrics_are_scraped_then_jobs_vertices_maps_and_histograms_are_exposed() {
    let node = node_with_job(2000.0);
    let app = app(node, ServerConfig::default()).unwrap();
    let rt = runtime();
    std::thread::sleep(Duration::from_millis(300));
    let (status, text) = call(&rt, &app, get("/metrics"));
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    for needle in [
        "eddy_job_status{job=\"alerts-generator\",job_id=\"1\",status=\"running\"} 1",
        "# TYPE eddy_vertex_items_out_total counter",
        "eddy_vertex_queue_fill_ratio{",
        "eddy_vertex_late_events_total{",
        "eddy_map_entries{map=\"counts\"} 10",
        "# TYPE eddy_test_latency_seconds histogram",
        "eddy_test_latency_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let (status, m) = call(&rt, &app, get("/api/metrics"));
    assert_eq!(status, StatusCode::OK);
    assert!(m["histograms"][0]["p99_s"].as_f64().unwrap() > 0.0, "{m}");
    let (status, panels) = call(&rt, &app, get("/api/panels"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        panels["panels"],
        serde_json::json!([{ "title": "Alerts per rule", "map": "alerts", "group_by": "rule" }])
    );
    assert_eq!(call(&rt, &app, get("/health")).0, StatusCode::OK);
    assert_eq!(call(&rt, &app, get("/ready")).0, StatusCode::OK);
    let (status, html) = call(&rt, &app, get("/"));
    assert_eq!(status, StatusCode::OK);
    assert!(html.as_str().unwrap().contains("dashboard.js"));
}

#[test]
fn when_not_ready_then_ready_answers_503_and_health_200() {
    let node = node_with_job(1.0);
    node.set_ready(false);
    let app = app(node, ServerConfig::default()).unwrap();
    let rt = runtime();
    assert_eq!(
        call(&rt, &app, get("/ready")).0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(call(&rt, &app, get("/health")).0, StatusCode::OK);
}

#[test]
fn when_a_map_changes_then_the_change_stream_delivers_the_event() {
    let node = node_with_job(1.0);
    let server = start(
        node.clone(),
        ServerConfig::bind("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let counts = node.grid.map::<u64, u64>("counts").unwrap();
    // Not registered: streamed through the grid's JSON view.
    expect_entry_event(&server, &counts, 41);
    // Registered with a typed handle.
    node.watch_map(&counts);
    expect_entry_event(&server, &counts, 42);
    server.shutdown().unwrap();
}

/// Opens the change stream of `counts`, puts `key` once it is ready, and
/// checks that the event arrives.
fn expect_entry_event(
    server: &eddy_server::ServerHandle,
    counts: &eddy_grid::Map<u64, u64>,
    key: u64,
) {
    let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /api/maps/counts/changes HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut lines = BufReader::new(tcp).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let line = lines.next().unwrap().unwrap();
        if line.contains("\"ready\"") {
            counts.put(key, 1764);
        }
        if let Some(data) = line.strip_prefix("data: ") {
            seen.push(data.to_owned());
            if data.contains("\"entry\"") {
                let event: Value = serde_json::from_str(data).unwrap();
                assert_eq!(event["kind"], "added");
                assert_eq!(event["key"], key);
                assert_eq!(event["new_value"], 1764);
                return;
            }
        }
    }
    panic!("no entry event within 10 s; saw {seen:?}");
}

#[test]
fn when_the_server_starts_on_port_0_then_it_answers_and_stops_promptly() {
    let node = node_with_job(1.0);
    let started = Instant::now();
    let server = start(node, ServerConfig::bind("127.0.0.1:0".parse().unwrap())).unwrap();
    let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = String::new();
    BufReader::new(tcp).read_line(&mut first).unwrap();
    assert!(first.contains("200"), "{first}");
    eprintln!("start to first answer: {:?}", started.elapsed());
    let stopping = Instant::now();
    server.shutdown().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = start(
        node_with_job(1.0),
        ServerConfig::bind(taken.local_addr().unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot listen"), "{err}");
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("alerts".to_owned()),
        Just("counts".to_owned()),
        Just("1".to_owned()),
        "[a-z0-9%._~-]{0,12}",
        ".{0,12}".prop_map(|s| s.bytes().map(|b| format!("%{b:02X}")).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever path, query and body arrive, the answer is a JSON error or
    /// success, never a 5xx, and nothing panics.
    #[test]
    fn any_request_gets_a_json_answer_without_server_errors(
        method in prop_oneof![Just(Method::GET), Just(Method::PUT), Just(Method::DELETE), Just(Method::POST)],
        root in prop_oneof![Just("/api/maps"), Just("/api/jobs")],
        segments in prop::collection::vec(segment(), 0..4),
        query in "[a-z_=&%0-9'. ()<>]{0,60}",
        body in ".{0,40}",
    ) {
        thread_local! {
            static FIXTURE: (tokio::runtime::Runtime, Router) =
                (runtime(), app(node_with_job(1.0), ServerConfig::default()).unwrap());
        }
        let mut uri = root.to_owned();
        for s in &segments {
            uri.push('/');
            uri.push_str(s);
        }
        if segments.last().is_some_and(|s| s == "changes") {
            return Ok(()); // a stream never ends; covered by its own test
        }
        uri.push('?');
        uri.push_str(&query);
        let Ok(req) = Request::builder().method(method).uri(&uri).body(Body::from(body)) else {
            return Ok(()); // not a valid request target; hyper rejects it before us
        };
        let (status, answer) = FIXTURE.with(|(rt, app)| call(rt, app, req));
        prop_assert!(!status.is_server_error(), "{uri} -> {status} {answer}");
        prop_assert!(status.is_success() || answer["error"].is_string(), "{uri} -> {status} {answer}");
    }
}
