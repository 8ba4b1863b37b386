//! The JSON API's handlers, by resource.

pub(crate) mod jobs;
pub(crate) mod maps;
pub(crate) mod ops;
pub(crate) mod sql;

use crate::error::ApiError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON response with status 200.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    json_with(StatusCode::OK, value)
}

/// A JSON response with `status`.
pub(crate) fn json_with<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not encode the response as JSON: {e}"),
        )
    })?;
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
