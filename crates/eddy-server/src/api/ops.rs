//! Operations endpoints: health, readiness, metrics, the endpoint index
//! and the dashboard's static files.

use super::{json, json_with};
use crate::error::ApiError;
use crate::registry::Metric;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json as j;

/// `GET /health`: the process answers.
pub(crate) async fn health() -> Result<Response, ApiError> {
    json(&j!({ "status": "ok" }))
}

/// `GET /ready`: the node is ready for traffic (503 while it says not).
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.node.is_ready() {
        json(&j!({ "ready": true }))
    } else {
        json_with(
            StatusCode::SERVICE_UNAVAILABLE,
            &j!({ "ready": false, "error": "the node is starting (loading data or jobs); retry shortly" }),
        )
    }
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn prometheus(State(state): State<AppState>) -> Response {
    let text = crate::prometheus::render(&state.node);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /api/metrics`: the metrics jobs registered, as JSON, with
/// quantiles of each histogram since the node started.
pub(crate) async fn metrics_json(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut histograms = Vec::new();
    let mut gauges = Vec::new();
    let mut counters = Vec::new();
    for r in state.node.metrics().all() {
        match &r.metric {
            Metric::Histogram(h) => {
                let s = h.snapshot();
                histograms.push(j!({
                    "name": r.name, "help": r.help, "count": s.count(),
                    "p50_s": s.quantile(0.5), "p90_s": s.quantile(0.9), "p99_s": s.quantile(0.99),
                    "bounds_s": s.bounds_s, "counts": s.counts, "sum_s": s.sum_s,
                }));
            }
            Metric::Gauge(g) => {
                gauges.push(j!({ "name": r.name, "help": r.help, "value": g.get() }))
            }
            Metric::Counter(c) => {
                counters.push(j!({ "name": r.name, "help": r.help, "value": c.get() }))
            }
        }
    }
    json(&j!({ "histograms": histograms, "gauges": gauges, "counters": counters }))
}

/// `GET /api/panels`: the dashboard's panels, as jobs registered them.
pub(crate) async fn panels(State(state): State<AppState>) -> Result<Response, ApiError> {
    json(&j!({ "panels": state.node.panels() }))
}

/// `GET /api`: the endpoints, so that a person with curl can find their way.
pub(crate) async fn index() -> Result<Response, ApiError> {
    json(&j!({
        "endpoints": [
            "GET /api/jobs", "GET /api/jobs/{id}",
            "POST /api/jobs/{id}/cancel", "POST /api/jobs/{id}/suspend",
            "POST /api/jobs/{id}/resume", "POST /api/jobs/{id}/restart",
            "POST /api/jobs/{id}/export?name=&cancel= (the snapshot's path on the node)",
            "POST /api/sql (body: SQL statements separated by ';')",
            "GET /api/sql/tables", "GET /api/sql/jobs",
            "GET /api/maps", "GET /api/maps/{name}",
            "GET|PUT|DELETE /api/maps/{name}/entries/{key} (PUT body: the JSON value; ?ttl_ms=)",
            "GET /api/maps/{name}/query?predicate=&page=&page_size=",
            "GET /api/maps/{name}/aggregate?aggregation=&predicate=",
            "GET /api/maps/{name}/changes (server-sent events)",
            "GET /api/metrics", "GET /api/panels", "GET /metrics (Prometheus)", "GET /health", "GET /ready", "GET / (dashboard)"
        ],
        "auth": "mutating requests need `Authorization: Bearer <token>` when the node has a token",
    }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Served from memory; no-cache keeps a dashboard open across an
            // upgrade from running the old script.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`
pub(crate) async fn dashboard_html() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("../../assets/index.html"),
    )
}

/// `GET /dashboard.js`
pub(crate) async fn dashboard_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard.js"),
    )
}

/// `GET /dashboard.css`
pub(crate) async fn dashboard_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard.css"),
    )
}
