//! A near cache of one map: reads are served locally after the first, and
//! the map's change stream removes entries that changed on the node.

use crate::client::Client;
use crate::error::ClientError;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How long opening a near cache waits for its change stream to be
/// subscribed: until then nothing can be cached safely.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between attempts to reconnect a lost change stream.
const RECONNECT_PAUSE_MAX: Duration = Duration::from_secs(2);

/// Counters of a near cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NearCacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the node.
    pub misses: u64,
    /// Entries removed because they changed on the node.
    pub invalidations: u64,
    /// Entries held now.
    pub entries: usize,
    /// Whether the change stream is connected (reads bypass the cache
    /// while it is not).
    pub live: bool,
}

/// The bounded entries, evicted first in, first out. FIFO rather than LRU
/// because a hit then costs no bookkeeping, and hot keys evicted are back
/// after their next read. Eviction is approximate after invalidations (a
/// key removed and cached again may go early), never beyond `capacity`.
struct Entries {
    map: HashMap<String, Option<Value>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Entries {
    fn insert(&mut self, key: String, value: Option<Value>) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Removes from the map only: `order` is cleaned lazily (in `compact`)
    /// so that an invalidation costs O(1) however large the cache is.
    fn remove(&mut self, key: &str) -> bool {
        let removed = self.map.remove(key).is_some();
        if removed && self.order.len() > 2 * self.capacity {
            self.compact();
        }
        removed
    }

    /// Drops keys of `order` that are no longer cached, and repeats (a key
    /// removed and cached again): amortised over the removals that grew it.
    fn compact(&mut self) {
        let mut seen = std::collections::HashSet::with_capacity(self.map.len());
        let map = &self.map;
        self.order
            .retain(|k| map.contains_key(k) && seen.insert(k.clone()));
    }

    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

/// State shared with the stream thread.
struct Shared {
    entries: Mutex<Entries>,
    /// Bumped by every invalidation: a read that started before one may
    /// have fetched an old value, so it is not cached (see `get`).
    epoch: AtomicU64,
    live: AtomicBool,
    stop: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

impl Shared {
    fn invalidate(&self, key: &Value) {
        // The cache is keyed by the text the caller used; a string key is
        // its own text, any other key its JSON text (`42`).
        let text = match key {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut entries = self.entries.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let a = entries.remove(&text);
        let b = entries.remove(&key.to_string());
        if a || b {
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn forget_all(&self) {
        let mut entries = self.entries.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let n = entries.map.len() as u64;
        entries.clear();
        self.invalidations.fetch_add(n, Ordering::Relaxed);
    }
}

/// A near cache of one map.
///
/// Reads (`get`) are answered locally after the first and go to the node
/// on a miss; writes go to the node and drop the local entry. A background
/// thread follows the map's change stream and drops every entry that
/// changed on the node, so a cached value is at most one stream delay
/// (milliseconds on a healthy node) behind. When the stream breaks, the
/// cache forgets everything and serves every read from the node until it
/// reconnects; when the node reports that the stream fell behind, the
/// cache forgets everything too. Absent keys are cached as absent.
///
/// Thread safety: `Send + Sync`; share it by reference or in an `Arc`.
/// Dropping it stops the stream thread within about a second (at the
/// node's next keep-alive).
pub struct NearCache {
    client: Client,
    map: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache")
            .field("map", &self.map)
            .field("stats", &self.stats())
            .finish()
    }
}

impl NearCache {
    pub(crate) fn open(
        client: Client,
        map: &str,
        capacity: usize,
    ) -> Result<NearCache, ClientError> {
        let shared = Arc::new(Shared {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                order: VecDeque::new(),
                capacity: capacity.max(1),
            }),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        });
        let (opened_tx, opened_rx) = mpsc::channel();
        let thread_client = client.clone();
        let thread_shared = Arc::clone(&shared);
        let thread_map = map.to_owned();
        std::thread::Builder::new()
            .name(format!("eddy-near-cache-{map}"))
            .spawn(move || follow(thread_client, thread_map, thread_shared, opened_tx))
            .map_err(|e| ClientError::Transport {
                url: client.base_url().to_owned(),
                reason: format!("cannot start the near cache's stream thread: {e}"),
            })?;
        match opened_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok(())) => Ok(NearCache {
                client,
                map: map.to_owned(),
                shared,
            }),
            Ok(Err(e)) => {
                shared.stop.store(true, Ordering::Relaxed);
                Err(e)
            }
            Err(_) => {
                shared.stop.store(true, Ordering::Relaxed);
                Err(ClientError::Transport {
                    url: client.base_url().to_owned(),
                    reason: format!(
                        "the change stream of map '{map}' was not ready within {OPEN_TIMEOUT:?}"
                    ),
                })
            }
        }
    }

    /// The map this cache holds entries of.
    pub fn map(&self) -> &str {
        &self.map
    }

    /// The value at `key`, from the cache when it holds the key.
    pub fn get(&self, key: &str) -> Result<Option<Value>, ClientError> {
        if self.shared.live.load(Ordering::Acquire) {
            if let Some(v) = self.shared.entries.lock().map.get(key) {
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(v.clone());
            }
        }
        self.shared.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        let value = self.client.get(&self.map, key)?;
        let mut entries = self.shared.entries.lock();
        // Cache only if no invalidation arrived while the read was under
        // way: it might have been for this key, and the value read may
        // predate it. Checked under the lock that invalidations take.
        if self.shared.live.load(Ordering::Acquire)
            && self.shared.epoch.load(Ordering::Acquire) == epoch
        {
            entries.insert(key.to_owned(), value.clone());
        }
        Ok(value)
    }

    /// Puts on the node and drops the local entry; returns the old value.
    pub fn put(&self, key: &str, value: &Value) -> Result<Option<Value>, ClientError> {
        let old = self.client.put(&self.map, key, value);
        self.shared.invalidate(&Value::String(key.to_owned()));
        old
    }

    /// Removes on the node and drops the local entry; returns the old value.
    pub fn delete(&self, key: &str) -> Result<Option<Value>, ClientError> {
        let old = self.client.delete(&self.map, key);
        self.shared.invalidate(&Value::String(key.to_owned()));
        old
    }

    /// Hit, miss and invalidation counts, and the entries held.
    pub fn stats(&self) -> NearCacheStats {
        NearCacheStats {
            hits: self.shared.hits.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
            invalidations: self.shared.invalidations.load(Ordering::Relaxed),
            entries: self.shared.entries.lock().map.len(),
            live: self.shared.live.load(Ordering::Acquire),
        }
    }

    /// Forgets every cached entry.
    pub fn clear(&self) {
        self.shared.forget_all();
    }
}

impl Drop for NearCache {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The stream thread: follows the change stream, reconnecting after a
/// pause that grows to [`RECONNECT_PAUSE_MAX`], until the cache is dropped.
/// Reports the outcome of the first subscription on `opened`.
fn follow(
    client: Client,
    map: String,
    shared: Arc<Shared>,
    opened: mpsc::Sender<Result<(), ClientError>>,
) {
    let mut opened = Some(opened);
    let mut pause = Duration::from_millis(50);
    while !shared.stop.load(Ordering::Relaxed) {
        match client.open_changes(&map) {
            Ok(body) => {
                pause = Duration::from_millis(50);
                read_stream(body, &shared, &mut opened);
            }
            // A map without a stream will not get one by retrying.
            Err(e @ ClientError::Http { status: 404, .. }) => {
                if let Some(tx) = opened.take() {
                    let _ = tx.send(Err(e));
                }
                return;
            }
            Err(e) => {
                if let Some(tx) = opened.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        // Whatever changed while disconnected is unknown: forget it all.
        shared.live.store(false, Ordering::Release);
        shared.forget_all();
        std::thread::sleep(pause);
        pause = (pause * 2).min(RECONNECT_PAUSE_MAX);
    }
}

/// Applies the events of one connection until it ends or the cache is dropped.
fn read_stream(
    body: ureq::Body,
    shared: &Shared,
    opened: &mut Option<mpsc::Sender<Result<(), ClientError>>>,
) {
    let reader = BufReader::new(body.into_reader());
    for line in reader.lines() {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(line) = line else { return };
        let Some(data) = line.strip_prefix("data:") else {
            continue; // keep-alive comments and blank separators
        };
        let Ok(event) = serde_json::from_str::<Value>(data.trim_start()) else {
            continue;
        };
        match event["type"].as_str() {
            Some("ready") => {
                shared.forget_all();
                shared.live.store(true, Ordering::Release);
                if let Some(tx) = opened.take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Some("entry") => shared.invalidate(&event["key"]),
            // Cleared, or events lost: any cached entry may be stale.
            Some(_) => shared.forget_all(),
            None => {}
        }
    }
}
