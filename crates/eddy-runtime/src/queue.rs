//! Bounded single-producer single-consumer queues of batches between tasklets.

use crossbeam_queue::ArrayQueue;
use eddy_core::Msg;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;
use std::thread::Thread;

/// Sizing of the queues of one job.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct QueueLimits {
    /// Most data items one queue holds.
    ///
    /// 8192: with batches of up to [`QueueLimits::batch_items_max`] items this
    /// is a few batches in flight per queue, enough to keep a consumer busy
    /// while its producer is descheduled, and small enough that a full queue
    /// adds at most a few milliseconds of latency at a million events per
    /// second. Raise it for bursty sources, lower it for tighter latency.
    pub items_max: usize,
    /// Most bytes one queue holds, counting the in-line size of the items
    /// (`size_of::<T>()`; heap data an item owns is not counted). 64 MiB
    /// keeps a job of large items within memory whatever `items_max` says.
    pub bytes_max: usize,
    /// Most items in one batch (the outbox capacity of a processor).
    ///
    /// 1024: large enough that the per-batch costs (a queue push and pop, an
    /// allocation, a routing call) are below 1% of the per-item work, small
    /// enough that a batch fits in L2 cache for typical items.
    pub batch_items_max: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            items_max: 8192,
            bytes_max: 64 << 20,
            batch_items_max: 1024,
        }
    }
}

/// Tells a worker that a tasklet has something to do, and wakes the
/// worker's thread.
///
/// A worker calls only the tasklets whose signal was raised since their
/// last call (or that made progress in it, or whose deadline came, or all
/// of them every few milliseconds, for what nothing signals), so that a
/// trickle of input through a long pipeline costs a call of the tasklets it
/// reaches, not of every tasklet of the worker.
///
/// Thread safety: raised by any thread (producers, consumers, I/O threads),
/// taken by the worker that runs the tasklet.
#[derive(Debug)]
pub struct Signal {
    ready: std::sync::atomic::AtomicBool,
    thread: Thread,
}

impl Signal {
    /// A signal for a tasklet run by `thread`, raised from the start.
    pub fn new(thread: Thread) -> Arc<Signal> {
        Arc::new(Signal {
            ready: std::sync::atomic::AtomicBool::new(true),
            thread,
        })
    }

    /// Marks the tasklet as having work and wakes its thread. Unparking a
    /// thread that is not parked only makes its next park return at once,
    /// so a raise is never lost.
    pub fn raise(&self) {
        self.ready.store(true, Ordering::Release);
        self.thread.unpark();
    }

    /// Whether the signal was raised since the last take; lowers it.
    pub fn take(&self) -> bool {
        self.ready.swap(false, Ordering::AcqRel)
    }
}

/// Slots for messages in one queue. Control messages (watermarks, barriers)
/// take a slot each, so there are more slots than data batches fit; the item
/// bound, not this, limits the data.
const QUEUE_SLOTS: usize = 256;

/// A bounded queue of [`Msg`]s from one producer tasklet to one consumer.
///
/// Thread safety: one thread pushes and one pops at a time (the producer and
/// consumer tasklets); the underlying ring is lock-free and safe for any
/// number of threads.
///
/// Wake-ups: a worker with nothing to do parks, and calls only tasklets
/// whose [`Signal`] was raised. So that a consumer does not sleep on data, a
/// push into an empty queue raises the consumer's signal; so that a
/// producer does not sleep on room, a pop from a nearly full queue raises
/// the producer's. A raise is never lost: the consumer takes its signal
/// before it reads the queue, and a push that found the queue empty raises
/// it after the push.
#[derive(Debug)]
pub struct BatchQueue<T> {
    slots: ArrayQueue<Msg<T>>,
    items: AtomicUsize,
    items_max: usize,
    /// Above this many items held, the producer may be blocked.
    producer_blocked_above: usize,
    consumer: OnceLock<Arc<Signal>>,
    producer: OnceLock<Arc<Signal>>,
}

impl<T> BatchQueue<T> {
    /// A queue bounded by `limits`, in items and in bytes of `T`.
    pub fn new(limits: &QueueLimits) -> Self {
        let by_bytes = limits.bytes_max / std::mem::size_of::<T>().max(1);
        let items_max = limits.items_max.min(by_bytes).max(1);
        BatchQueue {
            slots: ArrayQueue::new(QUEUE_SLOTS),
            items: AtomicUsize::new(0),
            items_max,
            producer_blocked_above: items_max.saturating_sub(limits.batch_items_max),
            consumer: OnceLock::new(),
            producer: OnceLock::new(),
        }
    }

    /// Records the signal of the tasklet that pops from this queue, to
    /// raise it on data.
    pub fn bind_consumer(&self, signal: &Arc<Signal>) {
        // Bound once, when the consumer's tasklet starts on its thread.
        self.consumer.get_or_init(|| signal.clone());
    }

    /// Records the signal of the tasklet that pushes into this queue, to
    /// raise it on room.
    pub fn bind_producer(&self, signal: &Arc<Signal>) {
        // Bound once, when the producer's tasklet starts on its thread.
        self.producer.get_or_init(|| signal.clone());
    }

    /// Pushes a message, or hands it back when the queue is full.
    ///
    /// A batch larger than the item bound is still accepted into an empty
    /// queue, so that no batch can be stuck forever.
    pub fn try_push(&self, msg: Msg<T>) -> Result<(), Msg<T>> {
        let n = msg.item_count();
        if n > 0 {
            let held = self.items.load(Ordering::Acquire);
            if held > 0 && held + n > self.items_max {
                return Err(msg);
            }
        }
        // Count before pushing so that the consumer never subtracts first.
        self.items.fetch_add(n, Ordering::AcqRel);
        let was_empty = self.slots.is_empty();
        match self.slots.push(msg) {
            Ok(()) => {
                if was_empty {
                    if let Some(consumer) = self.consumer.get() {
                        consumer.raise();
                    }
                }
                Ok(())
            }
            Err(msg) => {
                self.items.fetch_sub(n, Ordering::AcqRel);
                Err(msg)
            }
        }
    }

    /// Takes the oldest message.
    pub fn pop(&self) -> Option<Msg<T>> {
        let slots_full = self.slots.is_full();
        let msg = self.slots.pop()?;
        let n = msg.item_count();
        let held_before = if n > 0 {
            self.items.fetch_sub(n, Ordering::AcqRel)
        } else {
            self.items.load(Ordering::Acquire)
        };
        if slots_full || held_before > self.producer_blocked_above {
            if let Some(producer) = self.producer.get() {
                producer.raise();
            }
        }
        Some(msg)
    }

    /// Number of data items held.
    pub fn len_items(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }

    /// The item bound.
    pub fn items_max(&self) -> usize {
        self.items_max
    }
}

/// A read-only view of a queue's fill, for metrics.
pub trait QueueGauge: Send + Sync {
    /// Items held and the item bound.
    fn fill(&self) -> (usize, usize);
}

impl<T: Send> QueueGauge for BatchQueue<T> {
    fn fill(&self) -> (usize, usize) {
        (self.len_items(), self.items_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(items_max: usize) -> QueueLimits {
        QueueLimits {
            items_max,
            ..QueueLimits::default()
        }
    }

    #[test]
    fn when_item_bound_reached_then_push_refused_until_pop() {
        let q = BatchQueue::<u64>::new(&limits(10));
        assert!(q.try_push(Msg::Batch(vec![1; 6])).is_ok());
        assert!(q.try_push(Msg::Batch(vec![2; 6])).is_err());
        assert!(q.try_push(Msg::Watermark(eddy_core::Watermark(5))).is_ok());
        assert_eq!(q.len_items(), 6);
        assert!(matches!(q.pop(), Some(Msg::Batch(b)) if b.len() == 6));
        assert!(q.try_push(Msg::Batch(vec![2; 6])).is_ok());
    }

    #[test]
    fn when_batch_larger_than_bound_then_accepted_into_empty_queue() {
        let q = BatchQueue::<u64>::new(&limits(4));
        assert!(q.try_push(Msg::Batch(vec![0; 100])).is_ok());
        assert!(q.try_push(Msg::Batch(vec![0; 1])).is_err());
    }

    #[test]
    fn when_bytes_bound_smaller_then_it_limits_items() {
        let q = BatchQueue::<[u8; 1024]>::new(&QueueLimits {
            items_max: 1000,
            bytes_max: 4096,
            batch_items_max: 16,
        });
        assert_eq!(q.items_max(), 4);
    }

    #[test]
    fn when_two_threads_push_and_pop_then_all_items_arrive_in_order() {
        let q = std::sync::Arc::new(BatchQueue::<u64>::new(&limits(64)));
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut next = 0u64;
                while next < 100_000 {
                    let batch: Vec<u64> = (next..next + 10).collect();
                    let mut msg = Msg::Batch(batch);
                    loop {
                        match q.try_push(msg) {
                            Ok(()) => break,
                            Err(m) => {
                                msg = m;
                                std::thread::yield_now();
                            }
                        }
                    }
                    next += 10;
                }
                while q.try_push(Msg::Done).is_err() {
                    std::thread::yield_now();
                }
            })
        };
        let mut expected = 0u64;
        loop {
            match q.pop() {
                Some(Msg::Batch(b)) => {
                    for x in b {
                        assert_eq!(x, expected);
                        expected += 1;
                    }
                }
                Some(Msg::Done) => break,
                Some(_) => {}
                None => std::thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(expected, 100_000);
        assert_eq!(q.len_items(), 0);
    }
}
