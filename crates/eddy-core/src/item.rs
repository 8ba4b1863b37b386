//! The items that flow between tasklets: data batches, watermarks, barriers.

/// Timestamp of an event that has no event time (no `with_timestamps` stage).
pub const NO_TIMESTAMP: i64 = i64::MIN;

/// An event-time watermark in milliseconds: the promise that no more events
/// with a timestamp below it will arrive on this stream.
///
/// Law: the watermarks of one stream never go back. The runtime asserts it on
/// every input queue and forwards only coalesced watermarks that advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub i64);

/// A value with its event timestamp in milliseconds.
///
/// The pipeline carries every stream item as an `Event` so that windowing
/// after any number of `map`s still knows the time the event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Event<T> {
    /// Event time in milliseconds since the epoch, or [`NO_TIMESTAMP`].
    pub ts: i64,
    /// The payload.
    pub value: T,
}

impl<T> Event<T> {
    /// An event without a timestamp.
    pub fn untimed(value: T) -> Self {
        Event {
            ts: NO_TIMESTAMP,
            value,
        }
    }
}

/// One of two types: the input of processors that consume two streams of
/// different types (hash joins, co-grouping). The left stream is ordinal 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Either<L, R> {
    /// An item of the first (left) input.
    Left(L),
    /// An item of the second (right) input.
    Right(R),
}

/// A snapshot barrier injected by the sources. Everything before it on a
/// stream belongs to snapshot `snapshot_id`, everything after it to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotBarrier {
    /// The snapshot this barrier closes.
    pub snapshot_id: u64,
    /// True when the job stops after this snapshot (suspend, export).
    pub is_terminal: bool,
}

/// What travels on a queue between two tasklets.
///
/// Queues carry batches, not single items, so that the cost of a queue
/// operation is shared by many events.
#[derive(Debug)]
pub enum Msg<T> {
    /// A batch of data items, in order.
    Batch(Vec<T>),
    /// The sender's watermark advanced to this value.
    Watermark(Watermark),
    /// The sender has no data for now; consumers leave it out of the
    /// watermark minimum until it sends data or a watermark again.
    Idle,
    /// A snapshot barrier.
    Barrier(SnapshotBarrier),
    /// The sender has finished; nothing follows on this queue.
    Done,
}

impl<T> Msg<T> {
    /// Number of data items in this message (0 for control messages).
    pub fn item_count(&self) -> usize {
        match self {
            Msg::Batch(items) => items.len(),
            _ => 0,
        }
    }
}
