//! The event journal: per partition, a bounded ring of the map's changes with sequence numbers.
//!
//! Every mutation appends an event under the partition lock, so a
//! partition's journal is in the order its keys changed. The ring keeps the
//! newest `capacity` events; a reader that falls further behind is told how
//! many events it lost ([`JournalBatch::lost`]) and resumes at the oldest
//! event still kept, so losses are reported, never hidden. A
//! [`JournalReader`] keeps one cursor per partition and polls them in turn.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::events::MapEvent;
use crate::map::{GridKey, GridValue, MapInner};

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

/// What a [`JournalReader`] poll returned.
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

/// Reads a map's event journal, partition by partition.
///
/// A reader keeps one cursor per partition; it is not shared between
/// threads (`&mut self`), but any number of readers may read one map.
pub struct JournalReader<K, V> {
    map: Arc<MapInner<K, V>>,
    cursors: Vec<u64>,
    next_partition: usize,
}

impl<K, V> JournalReader<K, V> {
    /// Where the reader is: per partition, the sequence number of the next
    /// event it reads.
    pub fn positions(&self) -> &[u64] {
        &self.cursors
    }

    /// Moves the reader to `positions`, as [`positions`](Self::positions)
    /// returned them (a restored journal source resumes there). Events
    /// already overwritten there are reported as lost by the next poll.
    ///
    /// # Panics
    /// When `positions` does not hold one position per partition: that is
    /// a bug in the caller, which can compare with `positions().len()`.
    pub fn seek(&mut self, positions: &[u64]) {
        assert_eq!(
            positions.len(),
            self.cursors.len(),
            "one journal position per partition"
        );
        self.cursors.copy_from_slice(positions);
    }
}

impl<K: GridKey, V: GridValue> JournalReader<K, V> {
    /// A reader of every partition of `map`, starting at `start`.
    ///
    /// # Panics
    /// When the map keeps no journal: [`Map::journal_reader`](crate::Map::journal_reader)
    /// refuses such maps before it gets here.
    pub(crate) fn new(map: Arc<MapInner<K, V>>, start: JournalStart) -> Self {
        let cursors = map
            .partitions()
            .iter()
            .map(|p| {
                let data = p.data.read();
                let j = data
                    .journal
                    .as_ref()
                    .expect("journal exists when capacity > 0");
                match start {
                    JournalStart::Oldest => j.oldest(),
                    JournalStart::Newest => j.next_sequence(),
                }
            })
            .collect();
        JournalReader {
            map,
            cursors,
            next_partition: 0,
        }
    }

    /// Up to `max` events not read yet, and how many were lost to overflow.
    /// Partitions take turns being read first, so none is starved.
    pub fn poll(&mut self, max: usize) -> JournalBatch<K, V> {
        let n = self.cursors.len();
        let mut events = Vec::new();
        let mut lost = 0;
        for step in 0..n {
            if events.len() >= max {
                break;
            }
            let p = (self.next_partition + step) % n;
            let data = self.map.partitions()[p].data.read();
            if let Some(j) = &data.journal {
                lost += j.read(&mut self.cursors[p], max - events.len(), &mut events);
            }
        }
        self.next_partition = (self.next_partition + 1) % n;
        JournalBatch { events, lost }
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
