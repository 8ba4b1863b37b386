//! Map events, and their delivery to entry listeners on a dedicated thread.
//!
//! # Delivery
//!
//! Mutations enqueue events while they still hold the partition lock, so
//! events of one key are queued in the order the key changed; one thread
//! per map (started with the first listener) takes them off the queue and
//! calls the listeners, so they are also delivered in that order, and never
//! on the thread that changed the map.
//!
//! # A slow listener drops events, it does not slow the map
//!
//! The queue is bounded ([`MapConfig::listener_buffer`](crate::MapConfig::listener_buffer)).
//! When it is full, new events are dropped and counted
//! ([`MapStats::listener_events_dropped`](crate::MapStats::listener_events_dropped)):
//! we chose drops over backpressure because the map is shared by pipeline
//! processors and network handlers that must not stall behind one slow
//! observer. A consumer that must see every change reads the event journal,
//! which keeps a window of changes and reports exactly how many it lost.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::query::Predicate;

/// What happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EntryEventKind {
    /// A new key was written.
    Added,
    /// An existing key got a new value.
    Updated,
    /// A key was removed by `remove`, `delete` or an entry processor.
    Removed,
    /// A key was removed to keep the map under its size limits.
    Evicted,
    /// A key outlived its TTL or max-idle and was removed.
    Expired,
}

/// A change of one entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EntryEvent<K, V> {
    /// What happened.
    pub kind: EntryEventKind,
    /// The key.
    pub key: K,
    /// Value before the change (not for `Added`; `None` when the listener
    /// asked for no values).
    pub old_value: Option<V>,
    /// Value after the change (only for `Added` and `Updated`; `None` when
    /// the listener asked for no values).
    pub new_value: Option<V>,
}

/// An event of a map.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MapEvent<K, V> {
    /// One entry changed.
    Entry(EntryEvent<K, V>),
    /// `clear` removed `entries` entries (of the whole map for listeners,
    /// of one partition in the journal).
    Cleared {
        /// How many entries were removed.
        entries: usize,
    },
}

impl<K, V> MapEvent<K, V> {
    /// The key, for entry events.
    pub fn key(&self) -> Option<&K> {
        match self {
            MapEvent::Entry(e) => Some(&e.key),
            MapEvent::Cleared { .. } => None,
        }
    }
}

/// Which events a listener receives.
#[derive(Debug, Clone)]
pub enum EventFilter<K> {
    /// Every event.
    All,
    /// Events of one key, plus `Cleared`.
    Key(K),
    /// Entry events whose value (the new one, or the old one for removals)
    /// matches, plus `Cleared`.
    Predicate(Predicate),
}

/// Identifies a listener for [`Map::remove_listener`](crate::Map::remove_listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u64);

type Callback<K, V> = Box<dyn Fn(&MapEvent<K, V>) + Send + Sync>;
/// Evaluates a predicate filter on a key and value, with the map's extractors.
pub(crate) type Matcher<K, V> = Arc<dyn Fn(&Predicate, &K, &V) -> bool + Send + Sync>;

/// The current listeners, replaced whole on every change (copy on write)
/// so that delivery never holds the lock while calling a listener.
type Registry<K, V> = Arc<RwLock<Arc<Vec<Arc<Registration<K, V>>>>>>;

struct Registration<K, V> {
    id: ListenerId,
    filter: EventFilter<K>,
    include_values: bool,
    callback: Callback<K, V>,
}

enum Msg<K, V> {
    Event(MapEvent<K, V>),
    Flush(mpsc::Sender<()>),
}

/// Counters of event delivery, shared with the delivery thread.
#[derive(Default)]
pub(crate) struct HubCounters {
    pub(crate) dropped: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) panicked: AtomicU64,
}

/// The listeners of one map and the queue to their thread.
pub(crate) struct ListenerHub<K, V> {
    map_name: String,
    buffer: usize,
    active: AtomicUsize,
    want_values: AtomicBool,
    next_id: AtomicU64,
    registrations: Registry<K, V>,
    sender: OnceLock<SyncSender<Msg<K, V>>>,
    start: Mutex<()>,
    pub(crate) counters: Arc<HubCounters>,
}

impl<K, V> ListenerHub<K, V>
where
    K: Clone + PartialEq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(map_name: &str, buffer: usize) -> Self {
        ListenerHub {
            map_name: map_name.to_owned(),
            buffer,
            active: AtomicUsize::new(0),
            want_values: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            registrations: Arc::new(RwLock::new(Arc::new(Vec::new()))),
            sender: OnceLock::new(),
            start: Mutex::new(()),
            counters: Arc::new(HubCounters::default()),
        }
    }

    /// Whether any listener is registered (one relaxed load: this is on
    /// every mutation's path).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Whether events must carry values.
    pub(crate) fn want_values(&self) -> bool {
        self.want_values.load(Ordering::Relaxed)
    }

    pub(crate) fn count(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub(crate) fn add(
        &self,
        filter: EventFilter<K>,
        include_values: bool,
        callback: Callback<K, V>,
        matcher: Matcher<K, V>,
    ) -> ListenerId {
        self.ensure_thread(matcher);
        let id = ListenerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut regs = self.registrations.write();
        let mut next: Vec<_> = regs.iter().cloned().collect();
        next.push(Arc::new(Registration {
            id,
            filter,
            include_values,
            callback,
        }));
        self.publish(&mut regs, next);
        id
    }

    pub(crate) fn remove(&self, id: ListenerId) -> bool {
        let mut regs = self.registrations.write();
        let next: Vec<_> = regs.iter().filter(|r| r.id != id).cloned().collect();
        let removed = next.len() != regs.len();
        self.publish(&mut regs, next);
        removed
    }

    fn publish(
        &self,
        regs: &mut Arc<Vec<Arc<Registration<K, V>>>>,
        next: Vec<Arc<Registration<K, V>>>,
    ) {
        let values = next
            .iter()
            .any(|r| r.include_values || matches!(r.filter, EventFilter::Predicate(_)));
        self.want_values.store(values, Ordering::Relaxed);
        self.active.store(next.len(), Ordering::Relaxed);
        *regs = Arc::new(next);
    }

    fn ensure_thread(&self, matcher: Matcher<K, V>) {
        let _guard = self.start.lock();
        if self.sender.get().is_some() {
            return;
        }
        let (tx, rx) = mpsc::sync_channel(self.buffer);
        let regs = Arc::clone(&self.registrations);
        let counters = Arc::clone(&self.counters);
        let spawned = std::thread::Builder::new()
            .name(format!("eddy-grid-listeners-{}", self.map_name))
            .spawn(move || deliver(rx, regs, counters, matcher));
        match spawned {
            Ok(_) => {
                let _ = self.sender.set(tx);
            }
            // Without a thread events cannot be delivered: they are counted
            // as dropped (no sender), and the next listener retries.
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues an event; never blocks.
    pub(crate) fn send(&self, event: MapEvent<K, V>) {
        let Some(tx) = self.sender.get() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match tx.try_send(Msg::Event(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every event queued before this call was delivered, or
    /// `timeout` passed; returns whether it was delivered.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = self.sender.get() else {
            return true;
        };
        let (ack_tx, ack_rx) = mpsc::channel();
        // A flush marker waits for room rather than being dropped.
        if tx.send(Msg::Flush(ack_tx)).is_err() {
            return false;
        }
        ack_rx.recv_timeout(timeout).is_ok()
    }
}

fn passes<K: PartialEq, V>(
    r: &Registration<K, V>,
    event: &MapEvent<K, V>,
    matcher: &Matcher<K, V>,
) -> bool {
    let MapEvent::Entry(e) = event else {
        return true;
    };
    match &r.filter {
        EventFilter::All => true,
        EventFilter::Key(k) => *k == e.key,
        EventFilter::Predicate(p) => match e.new_value.as_ref().or(e.old_value.as_ref()) {
            Some(v) => matcher(p, &e.key, v),
            None => false,
        },
    }
}

fn deliver<K: PartialEq + Clone, V: Clone>(
    rx: Receiver<Msg<K, V>>,
    regs: Registry<K, V>,
    counters: Arc<HubCounters>,
    matcher: Matcher<K, V>,
) {
    // Ends when the map (and with it the sender) is dropped.
    while let Ok(msg) = rx.recv() {
        let event = match msg {
            Msg::Event(e) => e,
            Msg::Flush(ack) => {
                let _ = ack.send(());
                continue;
            }
        };
        let current = Arc::clone(&regs.read());
        for r in current.iter() {
            if !passes(r, &event, &matcher) {
                continue;
            }
            let stripped;
            let view = match (&event, r.include_values) {
                (MapEvent::Entry(e), false) if e.old_value.is_some() || e.new_value.is_some() => {
                    stripped = MapEvent::Entry(EntryEvent {
                        kind: e.kind,
                        key: e.key.clone(),
                        old_value: None,
                        new_value: None,
                    });
                    &stripped
                }
                _ => &event,
            };
            // A panicking listener must not take the delivery thread (and
            // every other listener of the map) down with it.
            if catch_unwind(AssertUnwindSafe(|| (r.callback)(view))).is_err() {
                counters.panicked.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
