//! `/api/jobs`: list, details with the DAG, per-vertex metrics and
//! snapshot statistics, and the lifecycle actions (cancel, suspend, resume,
//! restart, export a snapshot).

use super::{json, json_with};
use crate::error::ApiError;
use crate::params::{parse_export_params, parse_job_id, reject_query};
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use eddy_core::EddyError;
use eddy_runtime::{Job, JobStatus, RoutingKind, SnapshotStats, VertexMetrics};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// How long an action waits for the job to reach the status it asked for
/// before answering. A suspend takes a final snapshot first, which for a
/// job with little state takes milliseconds; the wait keeps the answer
/// (and the CLI's output) showing the outcome in the common case, while a
/// job with much state answers 202 and reaches the status later.
pub(crate) const ACTION_WAIT: Duration = Duration::from_secs(5);

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
    /// Items the job's fallible stages sent to its dead letters.
    dead_letters: u64,
    /// The fullest input queue of any vertex: backpressure at a glance.
    queue_fill_max: f64,
    /// `none`, `at-least-once` or `exactly-once`.
    guarantee: String,
    /// Snapshot statistics; `None` for a job whose guarantee takes none.
    snapshots: Option<SnapshotView>,
}

/// A job's snapshots. The `last_*` fields are `None` until the first
/// snapshot completes.
#[derive(Serialize)]
struct SnapshotView {
    /// Snapshots completed, over all executions of the job.
    completed: u64,
    last_id: Option<u64>,
    /// From the request to the durable file.
    last_duration_ms: Option<f64>,
    last_bytes: Option<u64>,
    last_entries: Option<u64>,
    /// Time since the latest snapshot became durable: a growing age means
    /// snapshots no longer complete.
    last_age_ms: Option<u64>,
    /// The snapshot the current execution started from.
    restored_from: Option<u64>,
    /// Snapshots that failed, over all executions.
    failed: u64,
    /// Failures since the latest completed snapshot.
    failed_in_a_row: u32,
    /// Why the latest failed snapshot failed.
    last_failure: Option<String>,
}

impl SnapshotView {
    fn of(stats: &SnapshotStats) -> SnapshotView {
        let done = stats.completed > 0;
        let age_ms = stats.last_completed_at.map(|at| {
            let age = SystemTime::now().duration_since(at).unwrap_or_default();
            u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
        });
        SnapshotView {
            completed: stats.completed,
            last_id: done.then_some(stats.last_id),
            last_duration_ms: done.then_some(stats.last_duration.as_secs_f64() * 1000.0),
            last_bytes: done.then_some(stats.last_bytes),
            last_entries: done.then_some(stats.last_entries),
            last_age_ms: age_ms.filter(|_| done),
            restored_from: stats.restored_from,
            failed: stats.failed,
            failed_in_a_row: stats.failed_in_a_row,
            last_failure: stats.last_failure.clone(),
        }
    }
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
    /// Stages whose state in the snapshot the job started from no stage of
    /// this job took (renamed or removed in an upgrade).
    unmatched_state: Vec<String>,
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
        dead_letters: job.dead_letters(),
        queue_fill_max: metrics.iter().map(|m| m.queue_fill()).fold(0.0, f64::max),
        guarantee: job.guarantee().to_string(),
        snapshots: job
            .guarantee()
            .takes_snapshots()
            .then(|| SnapshotView::of(&job.snapshot_stats())),
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
        unmatched_state: job.unmatched_state(),
        vertices,
        edges,
    })
}

/// A 409 for an action the job's status does not allow.
fn conflict(job: &Job, action: &str, allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "cannot {action} job {} ('{}'): it is {}; {allowed}",
            job.id(),
            job.name(),
            status_name(job.status())
        ),
    )
}

/// Waits (off the server's threads) until the job has `wanted` or stopped
/// for good, at most [`ACTION_WAIT`]; then answers with its status: 200 if
/// it got there, 202 if it is still on its way.
async fn answer_when(job: Job, wanted: JobStatus) -> Result<Response, ApiError> {
    let waiting = job.clone();
    let reached = tokio::task::spawn_blocking(move || {
        if wanted.is_terminal() {
            waiting.join_timeout(ACTION_WAIT).is_some()
        } else {
            waiting.wait_for_status(wanted, ACTION_WAIT)
        }
    })
    .await
    .unwrap_or(false);
    let status = if reached {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    json_with(
        status,
        &serde_json::json!({
            "id": job.id(),
            "name": job.name(),
            "status": status_name(job.status()),
        }),
    )
}

/// `POST /api/jobs/{id}/{action}`: `cancel`, `suspend`, `resume`,
/// `restart`, and `export?name=N[&cancel=true]`. An action the job's status
/// does not allow answers 409 and says which would.
pub(crate) async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let job = find(&state, &id)?;
    if action == "export" {
        return export(job, query.as_deref()).await;
    }
    let status = job.status();
    // What the action needs of the job's status, the status it leads to,
    // and the command that gets it there. A restart keeps the job
    // "running", so its answer comes at once.
    let (allowed, wanted, command, hint): (bool, JobStatus, fn(&Job), &str) = match action.as_str()
    {
        "cancel" => (
            !status.is_terminal(),
            JobStatus::Cancelled,
            Job::cancel,
            "only a running or suspended job can be cancelled",
        ),
        "suspend" => (
            status == JobStatus::Running,
            JobStatus::Suspended,
            Job::suspend,
            "only a running job can be suspended",
        ),
        "resume" => (
            status == JobStatus::Suspended,
            JobStatus::Running,
            Job::resume,
            "only a suspended job can be resumed",
        ),
        "restart" => (
            status == JobStatus::Running,
            JobStatus::Running,
            Job::restart,
            "only a running job can be restarted; resume a suspended one",
        ),
        other => {
            return Err(ApiError::not_found(format!(
                "unknown job action '{other}'; use cancel, suspend, resume, restart or export"
            )))
        }
    };
    reject_query(query.as_deref(), &action)?;
    if !allowed {
        return Err(conflict(&job, &action, hint));
    }
    command(&job);
    answer_when(job, wanted).await
}

/// `POST /api/jobs/{id}/export?name=N[&cancel=true]`: takes a snapshot,
/// keeps it under `name` and answers its path on the node; with
/// `cancel=true` the job stops once the snapshot is durable.
async fn export(job: Job, query: Option<&str>) -> Result<Response, ApiError> {
    let params = parse_export_params(query)?;
    if !job.guarantee().takes_snapshots() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "cannot export a snapshot of job {} ('{}'): its guarantee is none, so it takes no snapshots; submit it with at-least-once or exactly-once",
                job.id(),
                job.name()
            ),
        ));
    }
    if job.status() != JobStatus::Running {
        return Err(conflict(
            &job,
            "export a snapshot of",
            "only a running job can export one (resume a suspended job first)",
        ));
    }
    let exporting = job.clone();
    let name = params.name.clone();
    let result = tokio::task::spawn_blocking(move || {
        if params.cancel {
            exporting.cancel_and_export_snapshot(&name)
        } else {
            exporting.export_snapshot(&name)
        }
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the export of a snapshot of job {} panicked: {e}", job.id()),
        )
    })?;
    let path = result.map_err(|e| export_error(&job, e))?;
    if params.cancel {
        // Stopping follows the snapshot at once; a short wait lets the
        // answer show "cancelled".
        let waiting = job.clone();
        let _ = tokio::task::spawn_blocking(move || waiting.join_timeout(ACTION_WAIT)).await;
    }
    json(&serde_json::json!({
        "id": job.id(),
        "name": job.name(),
        "snapshot": params.name,
        "path": path.display().to_string(),
        "status": status_name(job.status()),
    }))
}

fn export_error(job: &Job, e: EddyError) -> ApiError {
    let prefix = format!(
        "cannot export a snapshot of job {} ('{}')",
        job.id(),
        job.name()
    );
    match e {
        // The job stopped or was suspended meanwhile: a conflict with its
        // state, not a failure of the node.
        EddyError::InvalidJob(reason) => {
            ApiError::new(StatusCode::CONFLICT, format!("{prefix}: {reason}"))
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{prefix}: {other}; check the node's snapshot directory (space, permissions)"),
        ),
    }
}
