//! The event journal: per partition, a bounded ring of the map's changes with sequence numbers.
//!
//! Every mutation appends an event under the partition lock, so a
//! partition's journal is in the order its keys changed. The ring keeps the
//! newest `capacity` events; a reader that falls further behind is told how
//! many events it lost ([`JournalBatch::lost`]) and resumes at the oldest
//! event still kept, so losses are reported, never hidden.

use std::collections::VecDeque;

use crate::events::MapEvent;

/// One journal entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JournalEvent<K, V> {
    /// Partition of the change.
    pub partition: usize,
    /// Sequence number within the partition: 0, 1, 2, ... without gaps.
    pub sequence: u64,
    /// The change, always with old and new values.
    pub event: MapEvent<K, V>,
}

/// What a [`JournalReader`](crate::JournalReader) poll returned.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalBatch<K, V> {
    /// Events in order per partition.
    pub events: Vec<JournalEvent<K, V>>,
    /// Events the reader will never see because the ring overwrote them
    /// before it read them (summed over partitions).
    pub lost: u64,
}

/// Where a new reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalStart {
    /// At the oldest event still kept.
    Oldest,
    /// After the newest event: only changes from now on.
    Newest,
}

/// The ring of one partition.
pub(crate) struct Journal<K, V> {
    ring: VecDeque<JournalEvent<K, V>>,
    capacity: usize,
    next_sequence: u64,
}

impl<K, V> Journal<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Journal {
            ring: VecDeque::new(),
            capacity,
            next_sequence: 0,
        }
    }
}

impl<K: Clone, V: Clone> Journal<K, V> {
    pub(crate) fn push(&mut self, partition: usize, event: MapEvent<K, V>) {
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(JournalEvent {
            partition,
            sequence: self.next_sequence,
            event,
        });
        self.next_sequence += 1;
    }

    /// Sequence of the oldest kept event (== `next_sequence` when empty).
    pub(crate) fn oldest(&self) -> u64 {
        self.next_sequence - self.ring.len() as u64
    }

    pub(crate) fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Copies up to `max` events from `*cursor` on into `out`, advancing the
    /// cursor; returns how many events before the oldest kept one were lost.
    pub(crate) fn read(
        &self,
        cursor: &mut u64,
        max: usize,
        out: &mut Vec<JournalEvent<K, V>>,
    ) -> u64 {
        let oldest = self.oldest();
        let lost = oldest.saturating_sub(*cursor);
        *cursor = (*cursor).max(oldest);
        let skip = (*cursor - oldest) as usize;
        let before = out.len();
        out.extend(self.ring.iter().skip(skip).take(max).cloned());
        *cursor += (out.len() - before) as u64;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_ring_overflows_then_reader_is_told_how_many_it_lost() {
        let mut j: Journal<u32, u32> = Journal::new(3);
        for i in 0..5 {
            j.push(0, MapEvent::Cleared { entries: i });
        }
        let (mut cursor, mut out) = (0, Vec::new());
        assert_eq!(j.read(&mut cursor, 10, &mut out), 2);
        assert_eq!(
            out.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(cursor, 5);
        assert_eq!(j.read(&mut cursor, 10, &mut out), 0);
    }
}
