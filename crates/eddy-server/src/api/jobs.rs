//! `/api/jobs`: list, details with the DAG and per-vertex metrics, actions.

use super::json;
use crate::error::ApiError;
use crate::params::parse_job_id;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use eddy_runtime::{Job, JobStatus, RoutingKind, VertexMetrics};
use serde::Serialize;
use std::time::Duration;

/// A job in the list.
#[derive(Serialize)]
pub(crate) struct JobSummary {
    id: u64,
    name: String,
    status: &'static str,
    uptime_ms: u64,
    /// Number of vertices (the details list them under `vertices`).
    vertex_count: usize,
    /// Items emitted by the vertices without inputs.
    source_items_out: u64,
    /// Items received by the vertices without outputs.
    sink_items_in: u64,
    late_events: u64,
    /// The fullest input queue of any vertex: backpressure at a glance.
    queue_fill_max: f64,
}

/// One vertex with its metrics.
#[derive(Serialize)]
struct VertexView {
    index: usize,
    name: String,
    parallelism: usize,
    items_in: u64,
    items_out: u64,
    queue_items: u64,
    queue_capacity: u64,
    queue_fill: f64,
    watermark_ms: Option<i64>,
    watermark_lag_ms: Option<i64>,
    late_events: u64,
}

#[derive(Serialize)]
struct EdgeView {
    from: usize,
    to: usize,
    routing: &'static str,
}

#[derive(Serialize)]
struct JobDetails {
    #[serde(flatten)]
    summary: JobSummary,
    /// The failure, for a failed job.
    error: Option<String>,
    vertices: Vec<VertexView>,
    edges: Vec<EdgeView>,
}

pub(crate) fn status_name(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Running => "running",
        JobStatus::Suspended => "suspended",
        JobStatus::Completed => "completed",
        JobStatus::Failed => "failed",
        JobStatus::Cancelled => "cancelled",
    }
}

fn routing_name(r: RoutingKind) -> &'static str {
    match r {
        RoutingKind::Unicast => "unicast",
        RoutingKind::Isolated => "isolated",
        RoutingKind::Broadcast => "broadcast",
        RoutingKind::Partitioned => "partitioned",
    }
}

pub(crate) fn summary(job: &Job, metrics: &[VertexMetrics]) -> JobSummary {
    let dag = job.dag();
    let has_input = |v: usize| dag.edges.iter().any(|e| e.1 == v);
    let has_output = |v: usize| dag.edges.iter().any(|e| e.0 == v);
    JobSummary {
        id: job.id(),
        name: job.name().to_owned(),
        status: status_name(job.status()),
        uptime_ms: u64::try_from(job.uptime().as_millis()).unwrap_or(u64::MAX),
        vertex_count: metrics.len(),
        source_items_out: (0..metrics.len())
            .filter(|&v| !has_input(v))
            .map(|v| metrics[v].items_out)
            .sum(),
        sink_items_in: (0..metrics.len())
            .filter(|&v| !has_output(v))
            .map(|v| metrics[v].items_in)
            .sum(),
        late_events: metrics.iter().map(|m| m.late_events).sum(),
        queue_fill_max: metrics.iter().map(|m| m.queue_fill()).fold(0.0, f64::max),
    }
}

fn find(state: &AppState, raw_id: &str) -> Result<Job, ApiError> {
    let id = parse_job_id(raw_id)?;
    state.node.eddy.job(id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no job with id {id}; list the jobs with GET /api/jobs"
        ))
    })
}

/// `GET /api/jobs`
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let jobs: Vec<JobSummary> = state
        .node
        .eddy
        .jobs()
        .iter()
        .map(|j| summary(j, &j.metrics()))
        .collect();
    json(&jobs)
}

/// `GET /api/jobs/{id}`
pub(crate) async fn details(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = find(&state, &id)?;
    let metrics = job.metrics();
    let error = match job.status() {
        JobStatus::Failed => job
            .join_timeout(Duration::ZERO)
            .and_then(|r| r.err())
            .map(|e| e.to_string()),
        _ => None,
    };
    let vertices = metrics
        .iter()
        .enumerate()
        .map(|(index, m)| VertexView {
            index,
            name: m.name.clone(),
            parallelism: m.parallelism,
            items_in: m.items_in,
            items_out: m.items_out,
            queue_items: m.queue_items,
            queue_capacity: m.queue_capacity,
            queue_fill: m.queue_fill(),
            watermark_ms: m.watermark_ms,
            watermark_lag_ms: m.watermark_lag_ms,
            late_events: m.late_events,
        })
        .collect();
    let edges = job
        .dag()
        .edges
        .iter()
        .map(|&(from, to, r)| EdgeView {
            from,
            to,
            routing: routing_name(r),
        })
        .collect();
    json(&JobDetails {
        summary: summary(&job, &metrics),
        error,
        vertices,
        edges,
    })
}

/// `POST /api/jobs/{id}/{action}`: cancel works; suspend, resume and
/// restart answer 501 until the engine has snapshots.
pub(crate) async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = find(&state, &id)?;
    match action.as_str() {
        "cancel" => {
            let status = job.status();
            if status.is_terminal() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "job {} ('{}') is already {}; only a running job can be cancelled",
                        job.id(),
                        job.name(),
                        status_name(status)
                    ),
                ));
            }
            job.cancel();
            // Tasklets stop at their next call; wait briefly so the answer
            // usually shows the final status rather than "running".
            let waiting = job.clone();
            let _ = tokio::task::spawn_blocking(move || {
                waiting.join_timeout(Duration::from_millis(500))
            })
            .await;
            json(&serde_json::json!({
                "id": job.id(),
                "name": job.name(),
                "status": status_name(job.status()),
            }))
        }
        "suspend" | "resume" | "restart" => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "cannot {action} job {}: suspend, resume and restart need snapshots (fault tolerance), which Eddy does not implement yet; cancel the job and submit it again instead",
                job.id()
            ),
        )),
        other => Err(ApiError::not_found(format!(
            "unknown job action '{other}'; use cancel, suspend, resume or restart"
        ))),
    }
}
