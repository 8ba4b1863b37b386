//! The exactly-once state of a sink instance: the records of the current
//! epoch, the sealed epochs waiting for their snapshot to be durable, and
//! the recovery that runs before the first commit (the protocol is
//! described in the `transactional` module).
//!
//! Memory: a sink holds the output of every epoch not yet committed, at
//! most about one snapshot interval of output (two while a commit runs). It
//! cannot hold back input to bound this: under exactly-once the barrier
//! that ends an epoch arrives behind that input. Instead an epoch that grows
//! past 32 MiB asks the job for its next snapshot at once.

use crate::format::Encoder;
use crate::transactional::{TransactionalProducer, TransactionalSettings};
use crate::ProducerRecord;
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{PendingEpochs, ProcessorError, SealedEpoch, SnapshotRequester};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The records of one epoch, encoded: keys and values back to back in one
/// buffer, so that holding an epoch costs two growing vectors rather than
/// an allocation per record.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct EpochRecords {
    #[serde(with = "raw_bytes")]
    bytes: Vec<u8>,
    records: Vec<RecordShape>,
}

/// Where a record's key and value lie in [`EpochRecords::bytes`] (the key
/// first), and the rest of the record.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RecordShape {
    key_len: Option<u32>,
    value_len: u32,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) partition: Option<i32>,
    pub(crate) timestamp_ms: Option<i64>,
}

/// A record of an epoch, borrowed.
pub(crate) struct RecordRef<'a> {
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: &'a [u8],
    pub(crate) shape: &'a RecordShape,
}

fn len_u32(len: usize) -> Result<u32, String> {
    u32::try_from(len).map_err(|_| format!("{len} bytes is larger than Kafka accepts"))
}

impl EpochRecords {
    /// Encodes and appends a record.
    pub(crate) fn push<KE: Encoder, VE: Encoder>(
        &mut self,
        key_encoder: &KE,
        value_encoder: &VE,
        record: ProducerRecord<KE::Value, VE::Value>,
    ) -> Result<(), String> {
        let start = self.bytes.len();
        let key_len = match &record.key {
            Some(k) => {
                if let Err(e) = key_encoder.encode(k, &mut self.bytes) {
                    self.bytes.truncate(start);
                    return Err(format!("key: {e}"));
                }
                Some(len_u32(self.bytes.len() - start)?)
            }
            None => None,
        };
        let value_start = self.bytes.len();
        if let Err(e) = value_encoder.encode(&record.value, &mut self.bytes) {
            self.bytes.truncate(start);
            return Err(format!("value: {e}"));
        }
        self.records.push(RecordShape {
            key_len,
            value_len: len_u32(self.bytes.len() - value_start)?,
            headers: record.headers,
            partition: record.partition,
            timestamp_ms: record.timestamp_ms,
        });
        Ok(())
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> {
        let mut at = 0usize;
        self.records.iter().map(move |shape| {
            let key = shape.key_len.map(|len| {
                let key = &self.bytes[at..at + len as usize];
                at += len as usize;
                key
            });
            let value = &self.bytes[at..at + shape.value_len as usize];
            at += shape.value_len as usize;
            RecordRef { key, value, shape }
        })
    }
}

/// Serializes a byte vector as one byte string (postcard: length and raw
/// bytes) instead of serde's default sequence of single bytes.
mod raw_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// The exactly-once state of one sink instance.
pub(crate) struct EpochWriter {
    settings: Arc<TransactionalSettings>,
    instance: usize,
    parallelism: usize,
    /// Records since the last barrier.
    current: EpochRecords,
    /// Sealed epochs not committed yet; each holds one [`EpochRecords`], or
    /// none for an epoch without output.
    pending: PendingEpochs<EpochRecords>,
    /// This instance's producer, once recovery ran.
    producer: Option<TransactionalProducer>,
}

/// An epoch holding this many encoded bytes asks for the next snapshot at
/// once rather than at the end of the interval, which bounds what the sink
/// holds by the output of about one snapshot rather than of one interval.
const EARLY_SNAPSHOT_BYTES: usize = 32 << 20;

impl EpochWriter {
    pub(crate) fn new(
        settings: Arc<TransactionalSettings>,
        instance: usize,
        parallelism: usize,
        requester: SnapshotRequester,
    ) -> Self {
        EpochWriter {
            settings,
            instance,
            parallelism: parallelism.max(1),
            current: EpochRecords::default(),
            pending: {
                let mut pending = PendingEpochs::default();
                pending.set_requester(requester);
                pending
            },
            producer: None,
        }
    }

    /// Asks for an early snapshot when the current epoch has grown large;
    /// called once per input batch.
    pub(crate) fn ask_if_large(&mut self) {
        self.pending
            .ask_early_if(self.current.bytes.len(), EARLY_SNAPSHOT_BYTES);
    }

    /// Checks the job's snapshot interval against the transaction timeout.
    pub(crate) fn check_snapshot_interval(
        &self,
        interval: Option<std::time::Duration>,
    ) -> Result<(), ProcessorError> {
        self.settings.check_snapshot_interval(interval)
    }

    /// Adds a record to the current epoch.
    #[inline]
    pub(crate) fn push<KE: Encoder, VE: Encoder>(
        &mut self,
        key_encoder: &KE,
        value_encoder: &VE,
        record: ProducerRecord<KE::Value, VE::Value>,
    ) -> Result<(), String> {
        self.current.push(key_encoder, value_encoder, record)
    }

    /// Takes a restored entry: a sealed epoch, kept if this instance is the
    /// one to commit it at the new parallelism.
    pub(crate) fn restore(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.pending.restore(entry, self.instance, self.parallelism)
    }

    /// Seals the current epoch as `snapshot_id` and saves every epoch not
    /// committed yet.
    pub(crate) fn save(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        self.recover()?;
        if !self.current.is_empty() {
            self.pending.push(std::mem::take(&mut self.current));
        }
        self.pending
            .seal_and_save(snapshot_id, self.instance, writer)
    }

    /// Commits the sealed epochs up to `snapshot_id`, which is durable;
    /// returns the number of records written.
    pub(crate) fn commit_up_to(&mut self, snapshot_id: u64) -> Result<usize, ProcessorError> {
        self.recover()?;
        let epochs = with_output(self.pending.take_sealed_up_to(snapshot_id));
        if epochs.is_empty() {
            return Ok(0);
        }
        let producer = self
            .producer
            .as_mut()
            .ok_or_else(|| ProcessorError::new("the exactly-once Kafka sink did not recover"))?;
        producer.commit(&epochs)?;
        Ok(records_in(&epochs))
    }

    /// Whether everything pushed has been committed.
    pub(crate) fn is_drained(&self) -> bool {
        self.current.is_empty() && self.pending.sealed_len() == 0
    }

    /// Runs once, before the first commit: fences the producers of earlier
    /// executions, commits the restored epochs their markers do not cover,
    /// and, for an instance that restored no epoch of its own, writes an
    /// empty marker (see the module docs of `transactional`).
    fn recover(&mut self) -> Result<(), ProcessorError> {
        if self.producer.is_some() {
            return Ok(());
        }
        let mut by_writer: BTreeMap<usize, Vec<SealedEpoch<EpochRecords>>> = BTreeMap::new();
        for e in self.pending.take_sealed_up_to(u64::MAX) {
            by_writer.entry(e.writer_instance).or_default().push(e);
        }
        let mut own = TransactionalProducer::open(&self.settings, self.instance)?;
        if !by_writer.contains_key(&self.instance) {
            own.commit(&[])?;
        }
        for (writer, epochs) in by_writer {
            let mut other;
            let producer = if writer == self.instance {
                &mut own
            } else {
                other = TransactionalProducer::open(&self.settings, writer)?;
                &mut other
            };
            let last = producer.last_committed()?;
            let missing = with_output(
                epochs
                    .into_iter()
                    .filter(|e| Some(e.epoch) > last)
                    .collect(),
            );
            if !missing.is_empty() {
                producer.commit(&missing)?;
            }
        }
        self.producer = Some(own);
        Ok(())
    }
}

/// The epochs that hold records: one without output needs no transaction.
fn with_output(epochs: Vec<SealedEpoch<EpochRecords>>) -> Vec<SealedEpoch<EpochRecords>> {
    epochs
        .into_iter()
        .filter(|e| e.items.iter().any(|r| !r.is_empty()))
        .collect()
}

fn records_in(epochs: &[SealedEpoch<EpochRecords>]) -> usize {
    epochs
        .iter()
        .flat_map(|e| &e.items)
        .map(EpochRecords::len)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Bytes, Utf8};
    use eddy_core::snapshot::{read_entries, BROADCAST};

    #[test]
    fn when_epoch_records_saved_then_read_back_with_keys_headers_and_partitions() {
        let mut epoch = EpochRecords::default();
        epoch
            .push(
                &Bytes,
                &Utf8,
                ProducerRecord::new(Some(b"k1".to_vec()), "one".to_string()),
            )
            .unwrap();
        let mut with_more = ProducerRecord::new(None, String::new()).header("h", "v");
        with_more.partition = Some(3);
        with_more.timestamp_ms = Some(42);
        epoch.push(&Bytes, &Utf8, with_more).unwrap();
        let mut w = SnapshotWriter::new();
        w.put(BROADCAST, &1u8, &epoch).unwrap();
        let entry = read_entries(w.bytes()).next().unwrap().unwrap();
        let back: EpochRecords = entry.value().unwrap();
        let records: Vec<_> = back.iter().collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key, Some(&b"k1"[..]));
        assert_eq!(records[0].value, b"one");
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].value, b"");
        assert_eq!(
            records[1].shape.headers,
            vec![("h".to_string(), b"v".to_vec())]
        );
        assert_eq!(records[1].shape.partition, Some(3));
        assert_eq!(records[1].shape.timestamp_ms, Some(42));
    }
}
