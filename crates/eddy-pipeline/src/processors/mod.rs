//! The stateful processors behind the pipeline's stages.

pub mod join;
pub mod keyed;
pub mod session;
pub mod window;
pub mod windowed;

use eddy_core::{Event, Outbox};
use std::collections::VecDeque;

/// Called with each late event a windowing stage drops.
pub type LateEventFn<T> = std::sync::Arc<dyn Fn(Event<T>) + Send + Sync>;

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
