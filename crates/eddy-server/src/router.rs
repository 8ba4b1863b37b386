//! Routes and the guard in front of them: size limits, the bearer token,
//! the cross-origin check, and JSON bodies for every error.

use crate::api::{jobs, maps, ops, sql};
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Largest error body of an inner layer turned into a JSON message; longer
/// ones are cut (they are axum's one-line rejections in practice).
const ERROR_BODY_BYTES_MAX: usize = 4096;

/// All routes with the guard.
pub(crate) fn routes(state: AppState) -> Router {
    let body_max = state.config.body_bytes_max;
    Router::new()
        .route("/", get(ops::dashboard_html))
        .route("/dashboard.js", get(ops::dashboard_js))
        .route("/dashboard.css", get(ops::dashboard_css))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::prometheus))
        .route("/api", get(ops::index))
        .route("/api/metrics", get(ops::metrics_json))
        .route("/api/panels", get(ops::panels))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::details))
        .route("/api/jobs/{id}/{action}", post(jobs::action))
        .route("/api/sql", post(sql::execute))
        .route("/api/sql/tables", get(sql::tables))
        .route("/api/sql/jobs", get(sql::jobs))
        .route("/api/maps", get(maps::list))
        .route("/api/maps/{name}", get(maps::stats))
        .route(
            "/api/maps/{name}/entries/{key}",
            get(maps::get_entry)
                .put(maps::put_entry)
                .delete(maps::delete_entry),
        )
        .route("/api/maps/{name}/query", get(maps::query))
        .route("/api/maps/{name}/aggregate", get(maps::aggregate))
        .route("/api/maps/{name}/changes", get(maps::changes))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_max))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {method} {}; GET /api lists the endpoints",
        uri.path()
    ))
}

fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Compares without stopping at the first difference, so response timing
/// does not reveal how much of a guessed token was right.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn check_auth(headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    check_any(headers, &[token], "changes")
}

/// Accepts a bearer token equal to one of `tokens`; `what` names what the
/// token is needed for in the refusal.
fn check_any(headers: &HeaderMap, tokens: &[&str], what: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t)
            if tokens
                .iter()
                .any(|token| same_token(t.trim().as_bytes(), token.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the bearer token is wrong; use the token the node was started with (--token or EDDY_TOKEN)",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("this node requires a bearer token for {what}: send `Authorization: Bearer <token>` (the CLI takes --token or EDDY_TOKEN)"),
        )),
    }
}

/// A browser sends `Origin` with every cross-site POST, PUT and DELETE. A
/// page on another site must not change this node through the visitor's
/// browser, token or not, so such requests are refused when the origin's
/// host is not the host the request was sent to.
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("cross-origin change from '{origin}' refused; send changes from the dashboard itself, the CLI or a client without an Origin header"),
        ))
    }
}

async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let target_len = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().len())
        .unwrap_or(0);
    if target_len > state.config.uri_bytes_max {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target is {target_len} bytes, more than the {} accepted; shorten the key or predicate",
                state.config.uri_bytes_max
            ),
        )
        .into_response();
    }
    if is_mutating(request.method()) {
        if let Err(e) = check_origin(request.headers()) {
            return e.into_response();
        }
        if let Some(token) = &state.config.token {
            if let Err(e) = check_auth(request.headers(), token) {
                return e.into_response();
            }
        }
    } else if let Some(read) = &state.config.read_token {
        // Probes of liveness and readiness carry no token, and the
        // dashboard's static files hold no data (its API calls do).
        let probe = matches!(
            request.uri().path(),
            "/health" | "/ready" | "/" | "/dashboard.js" | "/dashboard.css"
        );
        let mut accepted = vec![read.as_str()];
        accepted.extend(state.config.token.as_deref());
        if !probe {
            if let Err(e) = check_any(request.headers(), &accepted, "reads") {
                return e.into_response();
            }
        }
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.config.body_bytes_max as u64) {
        return too_large(state.config.body_bytes_max).into_response();
    }
    let response = next.run(request).await;
    as_json_error(response, state.config.body_bytes_max).await
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the {max} bytes accepted (ServerConfig::body_bytes_max); send a smaller value"),
    )
}

/// Gives the errors axum produces itself (unknown method, bad path
/// encoding, a body over the limit) the same `{"error": ...}` shape as ours.
async fn as_json_error(response: Response, body_max: usize) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(body_max).into_response();
    }
    let (_, body) = response.into_parts();
    let text = axum::body::to_bytes(Body::new(body), ERROR_BODY_BYTES_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::METHOD_NOT_ALLOWED) => {
            "this method is not allowed on this path; GET /api lists the endpoints and their methods".to_owned()
        }
        (true, s) => s.canonical_reason().unwrap_or("request failed").to_owned(),
    };
    ApiError::new(status, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_tokens_differ_in_length_or_content_then_they_do_not_match() {
        assert!(same_token(b"secret", b"secret"));
        assert!(!same_token(b"secreT", b"secret"));
        assert!(!same_token(b"secret1", b"secret"));
        assert!(!same_token(b"", b"secret"));
    }
}
