//! `/api/sql`: statements in, their outcomes (rows, a job, a definition
//! applied, a plan) or a positioned error out; and the catalog: tables
//! with connector and schema, jobs with their SQL text and status.

use super::{json, json_with};
use crate::error::ApiError;
use crate::sql::status_name;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use eddy_sql::{ErrorKind, Outcome, SqlError};
use serde_json::{json, Map, Value};

/// Runs the statements of the body on the blocking pool (a bounded
/// `SELECT` waits for its job) and answers `{"results": [...]}`, or 400
/// with `{"error": {message, line, column, kind, caret}, "results": [...]}`
/// where `results` are the statements that ran before the error.
pub(crate) async fn execute(
    State(state): State<AppState>,
    body: String,
) -> Result<Response, ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send SQL statements as text, separated by ';'",
        ));
    }
    let node = state.node.clone();
    let script = body.clone();
    let result = tokio::task::spawn_blocking(move || node.execute_sql(&script))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the statement panicked: {e}; this is a bug worth reporting with the statement"
                ),
            )
        })?;
    match result {
        Ok(outcomes) => {
            json(&json!({ "results": outcomes.iter().map(outcome).collect::<Vec<_>>() }))
        }
        Err(failure) => json_with(
            StatusCode::BAD_REQUEST,
            &json!({
                "error": error(&failure.error, &body),
                "results": failure.done.iter().map(outcome).collect::<Vec<_>>(),
            }),
        ),
    }
}

/// An outcome as JSON: `{"kind": "rows" | "job" | "ddl" | "plan", …}`.
pub(crate) fn outcome(o: &Outcome) -> Value {
    match o {
        Outcome::Rows { columns, rows } => json!({
            "kind": "rows",
            "columns": columns
                .iter()
                .map(|c| json!({ "name": c.name, "type": c.data_type.to_string() }))
                .collect::<Vec<_>>(),
            "rows": rows
                .iter()
                .map(|r| r.iter().map(|v| v.to_json()).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        }),
        Outcome::Job { name, id } => json!({ "kind": "job", "name": name, "id": id }),
        Outcome::Ddl(message) => json!({ "kind": "ddl", "message": message }),
        Outcome::Plan(text) => json!({ "kind": "plan", "text": text }),
    }
}

fn error(e: &SqlError, script: &str) -> Value {
    let kind = match e.kind {
        ErrorKind::Syntax => "syntax",
        ErrorKind::Plan => "plan",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Execution => "execution",
        _ => "other",
    };
    json!({
        "message": e.message,
        "line": e.line,
        "column": e.column,
        "kind": kind,
        "caret": e.render(script),
    })
}

/// `GET /api/sql/tables`: each table's connector, options, columns with
/// types, watermark, primary key and `CREATE TABLE` text.
pub(crate) async fn tables(State(state): State<AppState>) -> Result<Response, ApiError> {
    let node = state.node.clone();
    let tables = blocking(move || {
        node.with_sql(|s| {
            s.catalog()
                .tables()
                .map(|t| {
                    let options: Map<String, Value> = t
                        .options
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    json!({
                        "name": t.name,
                        "connector": t.connector.name(),
                        "description": t.connector.describe(),
                        "bounded": t.connector.is_bounded(),
                        "options": options,
                        "columns": t.columns.iter().map(|c| json!({
                            "name": c.name,
                            "type": c.data_type.to_string(),
                        })).collect::<Vec<_>>(),
                        "watermark": t.watermark.as_ref().map(|w| json!({
                            "column": t.columns[w.column].name,
                            "lag_ms": w.lag_ms,
                        })),
                        "primary_key": t.primary_key.iter().map(|&i| t.columns[i].name.clone()).collect::<Vec<_>>(),
                        "sql": t.sql,
                    })
                })
                .collect::<Vec<_>>()
        })
    })
    .await?;
    json(&tables)
}

/// `GET /api/sql/jobs`: each job the node's SQL started, with its id,
/// SQL text and status.
pub(crate) async fn jobs(State(state): State<AppState>) -> Result<Response, ApiError> {
    let node = state.node.clone();
    let jobs = blocking(move || {
        node.with_sql(|s| {
            s.jobs()
                .iter()
                .map(|j| {
                    json!({
                        "name": j.name,
                        "id": j.job.id(),
                        "sql": j.sql.trim(),
                        "status": status_name(j.job.status()),
                        "bounded": j.bounded,
                    })
                })
                .collect::<Vec<_>>()
        })
    })
    .await?;
    json(&jobs)
}

/// Runs `f` on the blocking pool: the session's lock may be held by a
/// statement that waits for a bounded query.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the SQL catalog failed: {e}"),
        )
    })
}
