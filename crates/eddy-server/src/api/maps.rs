//! `/api/maps`: statistics, entries, queries, aggregations and changes.

use super::json;
use crate::error::ApiError;
use crate::params::{key_candidates, parse_aggregate_params, parse_put_params, parse_query_params};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use eddy_grid::{GridError, JsonMap, MapStats};
use serde::Serialize;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A map in the list: its statistics and whether its changes stream.
#[derive(Serialize)]
struct MapView {
    #[serde(flatten)]
    stats: MapStats,
    /// Hits over reads, 0.0 to 1.0; `null` before the first read.
    hit_rate: Option<f64>,
}

fn view(stats: MapStats) -> MapView {
    MapView {
        hit_rate: (stats.gets > 0).then(|| stats.hits as f64 / stats.gets as f64),
        stats,
    }
}

fn map(state: &AppState, name: &str) -> Result<JsonMap, ApiError> {
    state.node.grid.json_map(name).map_err(|_| {
        ApiError::not_found(format!(
            "no map named '{name}'; list the maps with GET /api/maps"
        ))
    })
}

/// Runs `op` with each way the path key may be meant until the map's key
/// type accepts one; returns the key that worked and the result.
fn with_key<T>(
    raw: &str,
    mut op: impl FnMut(Value) -> Result<T, GridError>,
) -> Result<(Value, T), ApiError> {
    let mut last = None;
    for key in key_candidates(raw) {
        match op(key.clone()) {
            Ok(r) => return Ok((key, r)),
            Err(e @ GridError::Json { what: "key", .. }) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .map(ApiError::from)
        .unwrap_or_else(|| ApiError::bad_request(format!("key '{raw}' is not valid"))))
}

/// Runs blocking grid work (queries scan the map) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's worker failed: {e}"),
        )
    })?
}

/// `GET /api/maps`
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let grid = state.node.grid.clone();
    let stats = blocking(move || Ok(grid.stats())).await?;
    let maps: Vec<MapView> = stats.into_iter().map(view).collect();
    json(&maps)
}

/// `GET /api/maps/{name}`
pub(crate) async fn stats(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = map(&state, &name)?;
    json(&view(m.stats()))
}

/// `GET /api/maps/{name}/entries/{key}`
pub(crate) async fn get_entry(
    State(state): State<AppState>,
    Path((name, raw_key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let m = map(&state, &name)?;
    let mut type_error = None;
    for key in key_candidates(&raw_key) {
        match m.get(key.clone()) {
            Ok(Some(value)) => return json(&serde_json::json!({ "key": key, "value": value })),
            Ok(None) => {
                return Err(ApiError::not_found(format!(
                    "map '{name}' has no entry with key '{raw_key}'"
                )))
            }
            // Another reading of the key may still fit the key type.
            Err(e @ GridError::Json { what: "key", .. }) => type_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(type_error
        .map(ApiError::from)
        .unwrap_or_else(|| ApiError::bad_request(format!("key '{raw_key}' is not valid"))))
}

/// `PUT /api/maps/{name}/entries/{key}` with the value as the JSON body.
pub(crate) async fn put_entry(
    State(state): State<AppState>,
    Path((name, raw_key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ttl = parse_put_params(query.as_deref())?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not JSON ({e}); send the value as JSON, e.g. {{\"rule\": \"velocity\"}} or \"text\" with quotes"
        ))
    })?;
    let m = map(&state, &name)?;
    let (key, old) = with_key(&raw_key, |k| m.put(k, value.clone(), ttl))?;
    json(&serde_json::json!({ "key": key, "old_value": old }))
}

/// `DELETE /api/maps/{name}/entries/{key}`
pub(crate) async fn delete_entry(
    State(state): State<AppState>,
    Path((name, raw_key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let m = map(&state, &name)?;
    let (key, old) = with_key(&raw_key, |k| m.remove(k))?;
    json(&serde_json::json!({ "key": key, "removed": old.is_some(), "old_value": old }))
}

#[derive(Serialize)]
struct Entry {
    key: Value,
    value: Value,
}

#[derive(Serialize)]
struct QueryPage {
    entries: Vec<Entry>,
    /// Matches over all pages.
    total: usize,
    page: usize,
    page_size: usize,
    pages: usize,
}

/// `GET /api/maps/{name}/query?predicate=...&page=0&page_size=50`
pub(crate) async fn query(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = parse_query_params(raw.as_deref())?;
    let m = map(&state, &name)?;
    let (entries, total) = blocking(move || {
        Ok(m.query(
            params.predicate.as_deref(),
            params.paging.page_size,
            params.paging.page,
        )?)
    })
    .await?;
    json(&QueryPage {
        entries: entries
            .into_iter()
            .map(|(key, value)| Entry { key, value })
            .collect(),
        total,
        page: params.paging.page,
        page_size: params.paging.page_size,
        pages: total.div_ceil(params.paging.page_size),
    })
}

/// `GET /api/maps/{name}/aggregate?aggregation=count&predicate=...`
pub(crate) async fn aggregate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = parse_aggregate_params(raw.as_deref())?;
    let m = map(&state, &name)?;
    let result =
        blocking(move || Ok(m.aggregate(&params.aggregation, params.predicate.as_deref())?))
            .await?;
    json(&serde_json::json!({ "result": result }))
}

/// How often an idle change stream sends a keep-alive comment: often
/// enough that clients with a read timeout of a few seconds notice a dead
/// server quickly, rare enough to cost nothing.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// How often a change stream checks whether the map dropped listener
/// events (its listener buffer was full): subscribers are then told to
/// forget what they cached, since a change may have gone unseen.
const DROP_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Decrements the open-stream count when a stream ends.
struct StreamSlot(AppState);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One change stream: its subscription and what it tracks.
struct StreamState {
    /// The `ready` event, until sent.
    ready: Option<String>,
    /// The map's dropped-listener-event count already reported.
    dropped: u64,
    subscription: crate::changes::Subscription,
    map: JsonMap,
    check: tokio::time::Interval,
    shutdown: tokio::sync::watch::Receiver<bool>,
    _slot: StreamSlot,
}

impl StreamState {
    /// The next event's JSON; `None` ends the stream.
    async fn next(&mut self) -> Option<String> {
        use tokio::sync::broadcast::error::RecvError;
        if let Some(ready) = self.ready.take() {
            return Some(ready);
        }
        loop {
            tokio::select! {
                received = self.subscription.events.recv() => return match received {
                    Ok(json) => Some(json.to_string()),
                    Err(RecvError::Lagged(n)) => Some(lost(n)),
                    Err(RecvError::Closed) => None,
                },
                _ = self.check.tick() => {
                    let now = self.map.stats().listener_events_dropped;
                    if now > self.dropped {
                        let n = now - self.dropped;
                        self.dropped = now;
                        return Some(lost(n));
                    }
                }
                _ = self.shutdown.changed() => return None,
            }
        }
    }
}

fn lost(events: u64) -> String {
    serde_json::json!({"type": "lost", "events": events}).to_string()
}

/// `GET /api/maps/{name}/changes`: server-sent events, one JSON object per
/// event: `{"type":"ready"}` once subscribed, then `entry` (with `kind`,
/// `key`, `old_value`, `new_value`), `cleared`, and `lost` (with `events`,
/// when this stream fell behind: forget any cached entries of the map).
pub(crate) async fn changes(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = map(&state, &name)?;
    let open = state.streams.fetch_add(1, Ordering::Relaxed);
    let slot = StreamSlot(state.clone());
    if open >= state.config.streams_max {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{open} change streams are open, the most this server allows (ServerConfig::streams_max); close one or raise the limit"
            ),
        ));
    }
    let subscription = state.node.feeds().subscribe_json(&m);
    let ready = serde_json::json!({"type": "ready", "map": name}).to_string();
    let mut check = tokio::time::interval(DROP_CHECK_INTERVAL);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream_state = StreamState {
        ready: Some(ready),
        dropped: m.stats().listener_events_dropped,
        subscription,
        map: m,
        check,
        shutdown: state.shutdown.clone(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(stream_state, |mut s| async move {
        let data = s.next().await?;
        Some((Ok::<_, Infallible>(Event::default().data(data)), s))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
        .into_response())
}
