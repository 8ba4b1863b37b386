//! Snapshot contracts: processing guarantees, and how processors save and
//! restore their state as key/value entries.
//!
//! A processor's state is a list of entries. Each entry has a key and a value
//! (serialized with serde into a compact binary form) and a *partition*: the
//! partition of the grouping key it belongs to ([`partition_of`]), or
//! [`BROADCAST`] for state that is not keyed (a source's offsets, a sink's
//! pending output). On restore, keyed entries go to the instance that owns
//! their partition at the new parallelism, which is how keyed state is
//! redistributed when a job restarts with another parallelism; broadcast
//! entries go to every instance, which keeps what concerns it.

use crate::partition::{key_hash, partition_of_hash};
use crate::ProcessorError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;

/// What a job promises about its output when it fails and restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Guarantee {
    /// No snapshots: a failed job restarts from scratch, or not at all.
    #[default]
    None,
    /// Snapshots without barrier alignment: after a restart every input
    /// record is reflected in the output, some possibly twice.
    AtLeastOnce,
    /// Aligned snapshots and two-phase-commit sinks: after a restart the
    /// output is as if no failure happened.
    ExactlyOnce,
}

impl Guarantee {
    /// Whether the job takes snapshots at all.
    pub fn takes_snapshots(self) -> bool {
        self != Guarantee::None
    }

    /// Parses the names used by the CLI and configuration files.
    pub fn parse(text: &str) -> Result<Guarantee, String> {
        match text.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
            "none" => Ok(Guarantee::None),
            "atleastonce" => Ok(Guarantee::AtLeastOnce),
            "exactlyonce" => Ok(Guarantee::ExactlyOnce),
            _ => Err(format!(
                "unknown guarantee '{text}': use none, at-least-once or exactly-once"
            )),
        }
    }
}

impl std::fmt::Display for Guarantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Guarantee::None => "none",
            Guarantee::AtLeastOnce => "at-least-once",
            Guarantee::ExactlyOnce => "exactly-once",
        })
    }
}

/// The partition of entries that are not keyed: restored on every instance.
pub const BROADCAST: u32 = u32::MAX;

/// The partition of a grouping key: where its state lives. Matches the
/// routing of partitioned edges, so restored state lands on the instance
/// that will receive the key's items.
#[inline]
pub fn partition_of<K: Hash + ?Sized>(key: &K) -> u32 {
    partition_of_hash(key_hash(key))
}

/// What processor state is made of: anything serde can save into a snapshot
/// and read back. Blanket-implemented for every such type; it exists to name
/// the bound once (accumulators, `map_stateful` state, join tables, items a
/// two-phase-commit sink holds back).
pub trait State: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> State for T {}

/// A grouping key: hashed to the partition its state lives in
/// ([`partition_of`]), and saved with that state.
pub trait StateKey: State + Hash + Eq + Clone {}

impl<T: State + Hash + Eq + Clone> StateKey for T {}

fn encode_error(e: postcard::Error) -> ProcessorError {
    ProcessorError::new(format!("cannot serialize state for a snapshot: {e}"))
}

/// Collects the entries a processor saves into a snapshot.
///
/// Layout of one entry: partition (u32 LE), key length (u32 LE), key bytes,
/// value length (u32 LE), value bytes. Keys and values are postcard-encoded.
#[derive(Debug, Default)]
pub struct SnapshotWriter {
    bytes: Vec<u8>,
    entries: u64,
}

impl SnapshotWriter {
    /// An empty writer.
    pub fn new() -> Self {
        SnapshotWriter::default()
    }

    /// Saves one entry. `partition` is [`partition_of`] the grouping key for
    /// keyed state, or [`BROADCAST`].
    pub fn put<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        partition: u32,
        key: &K,
        value: &V,
    ) -> Result<(), ProcessorError> {
        self.bytes.extend_from_slice(&partition.to_le_bytes());
        Self::put_field(&mut self.bytes, key)?;
        Self::put_field(&mut self.bytes, value)?;
        self.entries += 1;
        Ok(())
    }

    /// Saves a keyed entry whose partition is that of `key` itself.
    pub fn put_keyed<K: Serialize + Hash, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), ProcessorError> {
        self.put(partition_of(key), key, value)
    }

    fn put_field<T: Serialize + ?Sized>(
        out: &mut Vec<u8>,
        field: &T,
    ) -> Result<(), ProcessorError> {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let taken = std::mem::take(out);
        let mut extended = postcard::to_extend(field, taken).map_err(encode_error)?;
        let len = u32::try_from(extended.len() - len_at - 4)
            .map_err(|_| ProcessorError::new("a snapshot entry is larger than 4 GiB"))?;
        extended[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        *out = extended;
        Ok(())
    }

    /// Number of entries saved.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The encoded entries.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the encoded entries, leaving the writer empty.
    pub fn take(&mut self) -> (Vec<u8>, u64) {
        let entries = std::mem::take(&mut self.entries);
        (std::mem::take(&mut self.bytes), entries)
    }
}

/// One saved entry, as handed to
/// [`Processor::restore_from_snapshot`](crate::Processor::restore_from_snapshot).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotEntry<'a> {
    /// The entry's partition, or [`BROADCAST`].
    pub partition: u32,
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> SnapshotEntry<'a> {
    /// Decodes the key.
    pub fn key<K: DeserializeOwned>(&self) -> Result<K, ProcessorError> {
        postcard::from_bytes(self.key).map_err(|e| {
            ProcessorError::new(format!(
                "cannot read a snapshot entry's key ({e}): the snapshot was written by a job whose state has another type"
            ))
        })
    }

    /// Decodes the value.
    pub fn value<V: DeserializeOwned>(&self) -> Result<V, ProcessorError> {
        postcard::from_bytes(self.value).map_err(|e| {
            ProcessorError::new(format!(
                "cannot read a snapshot entry's value ({e}): the snapshot was written by a job whose state has another type"
            ))
        })
    }

    /// Decodes key and value.
    pub fn decode<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
    ) -> Result<(K, V), ProcessorError> {
        Ok((self.key()?, self.value()?))
    }
}

/// Iterates over the entries in bytes written by a [`SnapshotWriter`].
pub fn read_entries(bytes: &[u8]) -> EntryIter<'_> {
    EntryIter { rest: bytes }
}

/// Iterator of [`read_entries`]; yields an error once if the bytes are cut
/// short, then stops.
#[derive(Debug)]
pub struct EntryIter<'a> {
    rest: &'a [u8],
}

impl<'a> EntryIter<'a> {
    fn take_u32(&mut self) -> Option<u32> {
        let (head, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(u32::from_le_bytes(*head))
    }

    fn take_field(&mut self) -> Option<&'a [u8]> {
        let len = self.take_u32()? as usize;
        if self.rest.len() < len {
            return None;
        }
        let (field, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(field)
    }
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = Result<SnapshotEntry<'a>, ProcessorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let entry = (|| {
            let partition = self.take_u32()?;
            let key = self.take_field()?;
            let value = self.take_field()?;
            Some(SnapshotEntry {
                partition,
                key,
                value,
            })
        })();
        match entry {
            Some(e) => Some(Ok(e)),
            None => {
                self.rest = &[];
                Some(Err(ProcessorError::new(
                    "a snapshot's state is cut short: the snapshot file is damaged",
                )))
            }
        }
    }
}

/// Output a two-phase-commit sink holds back until the snapshot that covers
/// it is complete: the write-ahead log of sinks whose target has no
/// transaction that survives a crash (files, grid maps, Kafka through a
/// producer that cannot resume another's transaction).
///
/// Items pushed between two barriers form one epoch. At the barrier of
/// snapshot `n` the current epoch is sealed as epoch `n` and every sealed,
/// uncommitted epoch is saved into the snapshot; when snapshot `n`
/// completes, the sink commits the sealed epochs up to `n`. After a crash the
/// restored snapshot brings back the epochs it sealed, and the sink commits
/// those it had not committed yet (it must tell which from its target:
/// a marker, a file name).
///
/// A sink cannot hold input back to bound what it holds (the barrier that
/// ends an epoch is behind that input), so an epoch that grows large asks
/// the job for its next snapshot at once ([`ask_early_if`](Self::ask_early_if)):
/// what a sink holds is then bounded by one snapshot's output rather than
/// one interval's.
pub struct PendingEpochs<T> {
    current: Vec<T>,
    sealed: std::collections::VecDeque<SealedEpoch<T>>,
    requester: crate::SnapshotRequester,
    /// Asked for an early snapshot in the current epoch already.
    requested: bool,
}

impl<T> std::fmt::Debug for PendingEpochs<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEpochs")
            .field("current", &self.current.len())
            .field("sealed", &self.sealed.len())
            .field("requested", &self.requested)
            .finish()
    }
}

/// One sealed epoch of a [`PendingEpochs`].
#[derive(Debug, Clone, PartialEq)]
pub struct SealedEpoch<T> {
    /// The snapshot whose barrier sealed it.
    pub epoch: u64,
    /// The instance that wrote it (before a restore, possibly at another
    /// parallelism).
    pub writer_instance: usize,
    /// Its items, in order.
    pub items: Vec<T>,
}

impl<T> Default for PendingEpochs<T> {
    fn default() -> Self {
        PendingEpochs {
            current: Vec::new(),
            sealed: std::collections::VecDeque::new(),
            requester: crate::SnapshotRequester::default(),
            requested: false,
        }
    }
}

impl<T> PendingEpochs<T> {
    /// Lets [`ask_early_if`](Self::ask_early_if) ask the job (the context's
    /// requester, given at `init`) for snapshots.
    pub fn set_requester(&mut self, requester: crate::SnapshotRequester) {
        self.requester = requester;
    }

    /// Asks the job for its next snapshot at once when the current epoch's
    /// size (`size`, in whatever the sink counts: items, rows, bytes) has
    /// reached `size_max`; at most once per epoch. Call it once per input
    /// batch.
    pub fn ask_early_if(&mut self, size: usize, size_max: usize) {
        if !self.requested && size >= size_max {
            self.requested = true;
            self.requester.request();
        }
    }
}

impl<T: Serialize + DeserializeOwned> PendingEpochs<T> {
    /// Adds an item to the current epoch.
    #[inline]
    pub fn push(&mut self, item: T) {
        self.current.push(item);
    }

    /// Number of items in the current (unsealed) epoch.
    pub fn current_len(&self) -> usize {
        self.current.len()
    }

    /// Number of items held in sealed epochs, waiting for their commit.
    pub fn sealed_len(&self) -> usize {
        self.sealed.iter().map(|e| e.items.len()).sum()
    }

    /// Seals the current epoch as `snapshot_id` and saves every sealed epoch
    /// as broadcast entries keyed by (writer instance, epoch).
    pub fn seal_and_save(
        &mut self,
        snapshot_id: u64,
        instance: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        let items = std::mem::take(&mut self.current);
        self.requested = false;
        self.sealed.push_back(SealedEpoch {
            epoch: snapshot_id,
            writer_instance: instance,
            items,
        });
        for e in &self.sealed {
            writer.put(BROADCAST, &(e.writer_instance as u64, e.epoch), &e.items)?;
        }
        Ok(())
    }

    /// The sealed epochs waiting for their commit, oldest first (a sink that
    /// prepares each epoch as it is sealed, such as writing a file, reads
    /// the newest).
    pub fn sealed(&self) -> impl Iterator<Item = &SealedEpoch<T>> {
        self.sealed.iter()
    }

    /// Takes the sealed epochs up to and including `snapshot_id`, oldest
    /// first, for the sink to commit.
    pub fn take_sealed_up_to(&mut self, snapshot_id: u64) -> Vec<SealedEpoch<T>> {
        let mut out = Vec::new();
        while self.sealed.front().is_some_and(|e| e.epoch <= snapshot_id) {
            out.extend(self.sealed.pop_front());
        }
        out
    }

    /// Takes the current (unsealed) epoch's items: for a job without
    /// snapshots, or one that completes, where there is no barrier to wait for.
    pub fn take_current(&mut self) -> Vec<T> {
        std::mem::take(&mut self.current)
    }

    /// Restores a sealed epoch from an entry saved by
    /// [`seal_and_save`](PendingEpochs::seal_and_save). An instance keeps the
    /// epochs written by the old instances `w` with `w % parallelism ==
    /// instance`, so that each epoch is restored exactly once whatever the
    /// new parallelism.
    pub fn restore(
        &mut self,
        entry: SnapshotEntry<'_>,
        instance: usize,
        parallelism: usize,
    ) -> Result<(), ProcessorError> {
        let (writer_instance, epoch): (u64, u64) = entry.key()?;
        let writer_instance = writer_instance as usize;
        if writer_instance % parallelism.max(1) != instance {
            return Ok(());
        }
        if self
            .sealed
            .iter()
            .any(|e| e.epoch == epoch && e.writer_instance == writer_instance)
        {
            return Ok(());
        }
        let items: Vec<T> = entry.value()?;
        let at = self.sealed.partition_point(|e| e.epoch <= epoch);
        self.sealed.insert(
            at,
            SealedEpoch {
                epoch,
                writer_instance,
                items,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_entries_written_then_read_back_in_order() {
        let mut w = SnapshotWriter::new();
        w.put_keyed(&"card-1".to_string(), &(3u64, 4.5f64)).unwrap();
        w.put(BROADCAST, &("offsets", 2u32), &vec![1i64, 2, 3])
            .unwrap();
        assert_eq!(w.entries(), 2);
        let entries: Vec<_> = read_entries(w.bytes()).map(|e| e.unwrap()).collect();
        assert_eq!(entries[0].partition, partition_of(&"card-1".to_string()));
        assert_eq!(
            entries[0].decode::<String, (u64, f64)>().unwrap(),
            ("card-1".to_string(), (3, 4.5))
        );
        assert_eq!(entries[1].partition, BROADCAST);
        assert_eq!(entries[1].value::<Vec<i64>>().unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn when_bytes_cut_short_then_one_error() {
        let mut w = SnapshotWriter::new();
        w.put_keyed(&7u64, &"seven").unwrap();
        let bytes = &w.bytes()[..w.bytes().len() - 2];
        let results: Vec<_> = read_entries(bytes).collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].is_err());
    }

    #[test]
    fn when_epochs_sealed_and_restored_at_another_parallelism_then_each_once() {
        let mut writers = Vec::new();
        for instance in 0..3 {
            let mut p = PendingEpochs::default();
            p.push(instance * 10);
            let mut w = SnapshotWriter::new();
            p.seal_and_save(1, instance, &mut w).unwrap();
            p.push(instance * 10 + 1);
            let mut w = SnapshotWriter::new();
            p.seal_and_save(2, instance, &mut w).unwrap();
            assert_eq!(p.take_sealed_up_to(1).len(), 1);
            writers.push(w);
        }
        // Restore at parallelism 2: each (writer, epoch) lands once.
        let mut restored: Vec<(usize, u64, Vec<usize>)> = Vec::new();
        for instance in 0..2 {
            let mut p = PendingEpochs::<usize>::default();
            for w in &writers {
                for e in read_entries(w.bytes()) {
                    p.restore(e.unwrap(), instance, 2).unwrap();
                }
            }
            for e in p.take_sealed_up_to(u64::MAX) {
                restored.push((e.writer_instance, e.epoch, e.items));
            }
        }
        restored.sort();
        assert_eq!(
            restored,
            vec![
                (0, 1, vec![0]),
                (0, 2, vec![1]),
                (1, 1, vec![10]),
                (1, 2, vec![11]),
                (2, 1, vec![20]),
                (2, 2, vec![21]),
            ]
        );
    }

    #[test]
    fn when_guarantee_parsed_then_names_round_trip() {
        for g in [
            Guarantee::None,
            Guarantee::AtLeastOnce,
            Guarantee::ExactlyOnce,
        ] {
            assert_eq!(Guarantee::parse(&g.to_string()).unwrap(), g);
        }
        assert!(Guarantee::parse("twice")
            .unwrap_err()
            .contains("exactly-once"));
    }
}
