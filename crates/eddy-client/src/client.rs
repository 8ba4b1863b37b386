//! The blocking client: one method per API call.

use crate::error::ClientError;
use crate::near_cache::NearCache;
use crate::types::{
    ExportedSnapshot, JobAction, JobDetails, JobState, JobSummary, MapInfo, QueryPage, SqlAnswer,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// How long one API call may take before it fails: far above any answer
/// of a healthy node (a query of a large map is the slowest), short enough
/// that a CLI does not hang on a stuck one.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Characters a path segment keeps as they are (RFC 3986 unreserved);
/// everything else is percent-encoded, so any key text reaches the node.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_segment(k), encode_segment(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A client of one Eddy node's HTTP API.
///
/// Cheap to clone; thread safety: `Send + Sync`, calls may run on any
/// number of threads at once (connections are pooled).
///
/// Keys are given as the text of the URL path: `"card-7"` for a map with
/// string keys, `"42"` for one with integer keys (the node tries the text
/// as JSON first, then as a plain string).
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    stream_agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Client {
    /// A client of the node at `base_url` (`http://host:port`).
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::InvalidUrl(base_url.to_owned()))?;
        if rest.is_empty() || rest.contains('/') {
            return Err(ClientError::InvalidUrl(base_url.to_owned()));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .into();
        // Change streams last as long as they are read: no overall timeout.
        let stream_agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Client {
            base,
            token: None,
            agent,
            stream_agent,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every call.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn finish<T: DeserializeOwned>(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let mut response = response.map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| ClientError::Transport {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            return Err(ClientError::Http { status, message });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        self.finish(&url, req.call())
    }

    fn send_json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let response = match method {
            "DELETE" => {
                let mut req = self.agent.delete(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            _ => {
                let mut req = if method == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                match body {
                    Some(b) => req
                        .header("Content-Type", "application/json")
                        .send(b.to_string()),
                    None => req.send_empty(),
                }
            }
        };
        self.finish(&url, response)
    }

    /// Runs SQL statements (`;`-separated) on the node. A statement that
    /// fails is not a [`ClientError`]: the answer holds the outcomes of the
    /// statements before it and the error with its position and caret
    /// text. A bounded `SELECT` waits for its rows, up to [`CALL_TIMEOUT`].
    pub fn sql(&self, script: &str) -> Result<SqlAnswer, ClientError> {
        let url = self.url("/api/sql");
        let mut req = self.agent.post(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let response = req
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(script);
        match self.finish::<SqlAnswer>(&url, response) {
            Err(ClientError::Http {
                status: 400,
                message,
            }) => match serde_json::from_str::<SqlAnswer>(&message) {
                Ok(answer) if answer.error.is_some() => Ok(answer),
                _ => Err(ClientError::Http {
                    status: 400,
                    message,
                }),
            },
            other => other,
        }
    }

    /// Whether the node answers `/health`.
    pub fn health(&self) -> Result<(), ClientError> {
        self.get_json::<Value>("/health").map(|_| ())
    }

    /// Whether the node is ready (`/ready` answers 200).
    pub fn ready(&self) -> Result<bool, ClientError> {
        match self.get_json::<Value>("/ready") {
            Ok(_) => Ok(true),
            Err(ClientError::Http { status: 503, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// All jobs.
    pub fn jobs(&self) -> Result<Vec<JobSummary>, ClientError> {
        self.get_json("/api/jobs")
    }

    /// One job with its DAG and per-vertex metrics.
    pub fn job(&self, id: u64) -> Result<JobDetails, ClientError> {
        self.get_json(&format!("/api/jobs/{id}"))
    }

    /// Cancels, suspends, resumes or restarts a job; returns its status
    /// after the action. An action the job's status does not allow
    /// (resuming a running job) fails with status 409 and the reason.
    pub fn job_action(&self, id: u64, action: JobAction) -> Result<JobState, ClientError> {
        self.send_json("POST", &format!("/api/jobs/{id}/{}", action.as_str()), None)
    }

    /// Cancels a job; its snapshots are deleted.
    pub fn cancel_job(&self, id: u64) -> Result<JobState, ClientError> {
        self.job_action(id, JobAction::Cancel)
    }

    /// Suspends a running job after a final snapshot.
    pub fn suspend_job(&self, id: u64) -> Result<JobState, ClientError> {
        self.job_action(id, JobAction::Suspend)
    }

    /// Resumes a suspended job from its latest snapshot.
    pub fn resume_job(&self, id: u64) -> Result<JobState, ClientError> {
        self.job_action(id, JobAction::Resume)
    }

    /// Restarts a running job from its latest snapshot.
    pub fn restart_job(&self, id: u64) -> Result<JobState, ClientError> {
        self.job_action(id, JobAction::Restart)
    }

    /// Takes a snapshot of a running job and keeps it under `name` (letters,
    /// digits, `-`, `_`, `.`) while the job goes on; the answer has the
    /// file's path on the node. Fails with 409 for a job that takes no
    /// snapshots or is not running.
    pub fn export_snapshot(&self, id: u64, name: &str) -> Result<ExportedSnapshot, ClientError> {
        self.export(id, name, false)
    }

    /// Like [`export_snapshot`](Client::export_snapshot), and the job is
    /// cancelled once the snapshot is durable: the snapshot is its last
    /// state, to start an upgraded job from.
    pub fn cancel_and_export_snapshot(
        &self,
        id: u64,
        name: &str,
    ) -> Result<ExportedSnapshot, ClientError> {
        self.export(id, name, true)
    }

    fn export(&self, id: u64, name: &str, cancel: bool) -> Result<ExportedSnapshot, ClientError> {
        let mut pairs = vec![("name", name)];
        if cancel {
            pairs.push(("cancel", "true"));
        }
        let path = format!("/api/jobs/{id}/export?{}", encode_query(&pairs));
        self.send_json("POST", &path, None)
    }

    /// All maps with their statistics.
    pub fn maps(&self) -> Result<Vec<MapInfo>, ClientError> {
        self.get_json("/api/maps")
    }

    /// One map's statistics.
    pub fn map_stats(&self, map: &str) -> Result<MapInfo, ClientError> {
        self.get_json(&format!("/api/maps/{}", encode_segment(map)))
    }

    /// The value at `key`; `None` if absent.
    pub fn get(&self, map: &str, key: &str) -> Result<Option<Value>, ClientError> {
        let path = format!(
            "/api/maps/{}/entries/{}",
            encode_segment(map),
            encode_segment(key)
        );
        match self.get_json::<Value>(&path) {
            Ok(mut v) => Ok(Some(v["value"].take())),
            Err(ClientError::Http {
                status: 404,
                message,
            }) if message.contains("has no entry") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Puts `value` at `key`; returns the old value.
    pub fn put(&self, map: &str, key: &str, value: &Value) -> Result<Option<Value>, ClientError> {
        self.put_ttl(map, key, value, None)
    }

    /// Puts `value` at `key` with a time to live; returns the old value.
    pub fn put_ttl(
        &self,
        map: &str,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
    ) -> Result<Option<Value>, ClientError> {
        let mut path = format!(
            "/api/maps/{}/entries/{}",
            encode_segment(map),
            encode_segment(key)
        );
        if let Some(ttl) = ttl {
            path.push_str(&format!("?ttl_ms={}", ttl.as_millis().max(1)));
        }
        let mut answer: Value = self.send_json("PUT", &path, Some(value))?;
        Ok(Some(answer["old_value"].take()).filter(|v| !v.is_null()))
    }

    /// Removes `key`; returns its value, `None` if it was absent.
    pub fn delete(&self, map: &str, key: &str) -> Result<Option<Value>, ClientError> {
        let path = format!(
            "/api/maps/{}/entries/{}",
            encode_segment(map),
            encode_segment(key)
        );
        let mut answer: Value = self.send_json("DELETE", &path, None)?;
        Ok(Some(answer["old_value"].take()).filter(|v| !v.is_null()))
    }

    /// One page of the entries matching `predicate` (all for `None`).
    pub fn query(
        &self,
        map: &str,
        predicate: Option<&str>,
        page: usize,
        page_size: usize,
    ) -> Result<QueryPage, ClientError> {
        let page = page.to_string();
        let size = page_size.to_string();
        let mut pairs = vec![("page", page.as_str()), ("page_size", size.as_str())];
        if let Some(p) = predicate {
            pairs.push(("predicate", p));
        }
        self.get_json(&format!(
            "/api/maps/{}/query?{}",
            encode_segment(map),
            encode_query(&pairs)
        ))
    }

    /// An aggregation (`count`, `sum(path)`, `avg(path)`, `min(path)`,
    /// `max(path)`, `distinct(path)`) over the entries matching `predicate`.
    pub fn aggregate(
        &self,
        map: &str,
        aggregation: &str,
        predicate: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut pairs = vec![("aggregation", aggregation)];
        if let Some(p) = predicate {
            pairs.push(("predicate", p));
        }
        let mut answer: Value = self.get_json(&format!(
            "/api/maps/{}/aggregate?{}",
            encode_segment(map),
            encode_query(&pairs)
        ))?;
        Ok(answer["result"].take())
    }

    /// The `/metrics` page (Prometheus text format).
    pub fn metrics_text(&self) -> Result<String, ClientError> {
        let url = self.url("/metrics");
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        response
            .body_mut()
            .read_to_string()
            .map_err(|e| ClientError::Transport {
                url,
                reason: e.to_string(),
            })
    }

    /// A near cache of `map` holding at most `capacity` entries, kept
    /// coherent by the map's change stream; fails if the map has no change
    /// stream. See [`NearCache`].
    pub fn near_cache(&self, map: &str, capacity: usize) -> Result<NearCache, ClientError> {
        NearCache::open(self.clone(), map, capacity)
    }

    /// Opens the change stream of `map` (server-sent events).
    pub(crate) fn open_changes(&self, map: &str) -> Result<ureq::Body, ClientError> {
        let url = self.url(&format!("/api/maps/{}/changes", encode_segment(map)));
        let mut req = self
            .stream_agent
            .get(&url)
            .header("Accept", "text/event-stream");
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut response = req.call().map_err(|e| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            return Err(ClientError::Http { status, message });
        }
        Ok(response.into_body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_key_has_reserved_characters_then_they_are_percent_encoded() {
        assert_eq!(encode_segment("card-7"), "card-7");
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(encode_segment("ü"), "%C3%BC");
    }

    #[test]
    fn when_the_url_is_not_plain_http_then_the_client_refuses_it() {
        assert!(Client::new("http://127.0.0.1:8080/").is_ok());
        assert!(Client::new("https://x").is_err());
        assert!(Client::new("127.0.0.1:8080").is_err());
        assert!(Client::new("http://x/api").is_err());
    }
}
