//! Change feeds: the entry events of watched maps, as JSON, for the
//! `/api/maps/{name}/changes` stream.
//!
//! A feed registers a grid listener only while someone subscribes, so a
//! watched map pays nothing for it when no one is looking. Events are
//! turned into JSON once, on the map's listener thread, and shared by every
//! subscriber.

use eddy_grid::{EventFilter, GridKey, GridValue, JsonMap, ListenerId, Map, MapEvent};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events buffered per feed for its slowest subscriber. A subscriber that
/// falls further behind is told how many events it lost (a `lost` event)
/// instead of slowing the map; 4096 covers a burst of several thousand
/// changes while a browser tab is busy, at a few hundred KiB per feed.
pub const FEED_BUFFER_EVENTS: usize = 4096;

/// Adds and removes the typed listener of one map.
trait Source: Send + Sync {
    fn attach(&self, tx: broadcast::Sender<Arc<str>>) -> ListenerId;
    fn detach(&self, id: ListenerId);
}

struct TypedSource<K, V>(Map<K, V>);

impl<K: GridKey, V: GridValue> Source for TypedSource<K, V> {
    fn attach(&self, tx: broadcast::Sender<Arc<str>>) -> ListenerId {
        self.0.add_listener(EventFilter::All, true, move |event| {
            // A send fails only when no one subscribes any more; the
            // listener is removed right after, so the event is not needed.
            let _ = tx.send(event_json(event).into());
        })
    }

    fn detach(&self, id: ListenerId) {
        self.0.remove_listener(id);
    }
}

/// The listener of a map known only by name, through the grid's JSON view.
struct JsonSource(JsonMap);

impl Source for JsonSource {
    fn attach(&self, tx: broadcast::Sender<Arc<str>>) -> ListenerId {
        self.0.add_listener(true, move |event| {
            // As above: a failed send means no one listens any more.
            let _ = tx.send(event_json(event).into());
        })
    }

    fn detach(&self, id: ListenerId) {
        self.0.remove_listener(id);
    }
}

/// The JSON of one map event as subscribers receive it.
fn event_json<K: serde::Serialize, V: serde::Serialize>(event: &MapEvent<K, V>) -> String {
    let v = match event {
        MapEvent::Entry(e) => json!({
            "type": "entry",
            "kind": format!("{:?}", e.kind).to_ascii_lowercase(),
            "key": e.key,
            "old_value": e.old_value,
            "new_value": e.new_value,
        }),
        MapEvent::Cleared { entries } => json!({ "type": "cleared", "entries": entries }),
    };
    v.to_string()
}

struct FeedState {
    subscribers: usize,
    listener: Option<ListenerId>,
}

/// The change feed of one map.
struct Feed {
    source: Box<dyn Source>,
    tx: broadcast::Sender<Arc<str>>,
    state: Mutex<FeedState>,
}

/// A live subscription; dropping it unsubscribes, and the last one to go
/// removes the map listener.
pub struct Subscription {
    /// The events, as JSON text.
    pub events: broadcast::Receiver<Arc<str>>,
    feed: Arc<Feed>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.feed.state.lock();
        state.subscribers -= 1;
        if state.subscribers == 0 {
            if let Some(id) = state.listener.take() {
                self.feed.source.detach(id);
            }
        }
    }
}

/// The change feeds of a node, by map name.
///
/// Thread safety: all methods take `&self`.
#[derive(Default)]
pub struct ChangeFeeds {
    feeds: Mutex<BTreeMap<String, Arc<Feed>>>,
}

impl ChangeFeeds {
    /// Makes the changes of `map` available to subscribers; watching a map
    /// again replaces the earlier handle.
    pub fn watch<K: GridKey, V: GridValue>(&self, map: &Map<K, V>) {
        let (tx, _) = broadcast::channel(FEED_BUFFER_EVENTS);
        let feed = Feed {
            source: Box::new(TypedSource(map.clone())),
            tx,
            state: Mutex::new(FeedState {
                subscribers: 0,
                listener: None,
            }),
        };
        self.feeds
            .lock()
            .insert(map.name().to_owned(), Arc::new(feed));
    }

    /// Subscribes to the changes of `map`, watching it through the grid's
    /// JSON view if no typed handle was registered for it.
    pub fn subscribe_json(&self, map: &JsonMap) -> Subscription {
        let feed = self
            .feeds
            .lock()
            .entry(map.name().to_owned())
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(FEED_BUFFER_EVENTS);
                Arc::new(Feed {
                    source: Box::new(JsonSource(map.clone())),
                    tx,
                    state: Mutex::new(FeedState {
                        subscribers: 0,
                        listener: None,
                    }),
                })
            })
            .clone();
        Self::attach(feed)
    }

    fn attach(feed: Arc<Feed>) -> Subscription {
        let events = feed.tx.subscribe();
        let mut state = feed.state.lock();
        state.subscribers += 1;
        if state.listener.is_none() {
            state.listener = Some(feed.source.attach(feed.tx.clone()));
        }
        drop(state);
        Subscription { events, feed }
    }
}
