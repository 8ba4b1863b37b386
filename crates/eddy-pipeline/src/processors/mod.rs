//! The stateful processors behind the pipeline's stages.
//!
//! Each saves its state into snapshots as entries keyed by the grouping key
//! (partition [`partition_of`](eddy_core::snapshot::partition_of) of the key,
//! the same partition the keyed edge routes the key's items to), so that a
//! job restored at another parallelism finds every key's state on the
//! instance that receives its items. What is not keyed (a watermark, a hash
//! join's table) is saved as broadcast entries. State types are
//! [`State`](eddy_core::State) for that reason, and keys
//! [`StateKey`](eddy_core::StateKey).

pub mod join;
pub mod keyed;
pub mod session;
pub mod window;
pub mod windowed;

use eddy_core::{Event, Outbox};
use std::collections::VecDeque;

/// Called with each late event a windowing stage drops.
pub type LateEventFn<T> = std::sync::Arc<dyn Fn(Event<T>) + Send + Sync>;

/// The value of `key`, created with `create` if missing. Unlike
/// `entry(key.clone())`, it clones the key only when it inserts, which keys
/// that own heap data make worth it on the per-event path.
pub(crate) fn value_of<'m, K, V>(
    map: &'m mut hashbrown::HashMap<K, V>,
    key: &K,
    create: impl FnOnce() -> V,
) -> &'m mut V
where
    K: std::hash::Hash + Eq + Clone,
{
    if !map.contains_key(key) {
        map.insert(key.clone(), create());
    }
    map.get_mut(key).expect("inserted above")
}

/// Offers buffered output until the outbox fills; true when all went out.
pub(crate) fn drain_into<T, O: Outbox<T>>(pending: &mut VecDeque<T>, outbox: &mut O) -> bool {
    while let Some(item) = pending.pop_front() {
        if let Err(item) = outbox.offer(item) {
            pending.push_front(item);
            return false;
        }
    }
    true
}
