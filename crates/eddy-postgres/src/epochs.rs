//! Exactly-once output to PostgreSQL: the bookkeeping of the rows a sink
//! instance holds per epoch, and the commit protocol they follow.
//!
//! A row is written only once the snapshot that covers its input is
//! durable. The sink holds the rows of each *epoch* (those between two
//! snapshot barriers) as their JSON text; the barrier of snapshot `n`
//! seals the current epoch as epoch `n` and saves every sealed epoch not
//! committed yet into the snapshot ([`PendingEpochs`]); when snapshot `n`
//! completes, the sealed epochs up to `n` are written in one PostgreSQL
//! transaction together with an upsert of the *commit marker* of their
//! writer: a row of [`COMMIT_MARKER_TABLE`] that holds the last epoch the
//! writer committed. The marker commits or rolls back with the rows, so it
//! says exactly which epochs reached the table. Each commit reads the
//! marker inside its transaction (locking the row) and writes only the
//! epochs above it.
//!
//! # Writers
//!
//! A marker is keyed by job name, vertex name and the instance that sealed
//! the epoch ([`EpochRows::writer_id`]): stable across restarts of the
//! process, so that a restored epoch is checked against the marker its
//! writer left. Epochs restored at another parallelism are committed under
//! their old writer's marker.
//!
//! # Crash cases
//!
//! For an epoch `e` sealed by snapshot `e`:
//!
//! * before snapshot `e` is durable: the job restarts from an older
//!   snapshot, which does not hold `e`; nothing of `e` was written, and the
//!   sources replay its input;
//! * after snapshot `e` is durable, before the commit: `e` is restored, the
//!   marker is below it, so `e` is written when the restored instance
//!   recovers (before its first snapshot or commit);
//! * during the commit: the server rolls the transaction back when the
//!   connection is lost, unless the commit had already happened; the
//!   marker says which, and `e` is written once either way;
//! * after the commit: the marker is at `e` or above, so `e` is skipped.
//!
//! A commit that loses its connection is retried on a new one. A retry
//! after a lost `COMMIT` acknowledgement first asks the server whether the
//! previous transaction committed (`txid_status`): the marker covers the
//! sealed epochs, but not the rows of the last, unsealed epoch that the end
//! of the input writes.
//!
//! # Markers of earlier runs
//!
//! A job started without a snapshot may find markers of an earlier run
//! with the same name, whose epoch numbers mean nothing now. So an instance
//! that restores no epoch of its own writer resets that writer's marker
//! before it saves its first epoch, that is before any snapshot holding
//! one of its epochs can complete: from then on, the markers of every
//! writer with epochs in the job's snapshots were written by the job's
//! current history.
//!
//! # The end of the input
//!
//! No snapshot follows the end of the input, so the sink then writes the
//! remaining sealed epochs and the current one in one transaction. A crash
//! after that transaction and before the job finishes restores the last
//! snapshot and replays the input after it, which writes the last epoch's
//! rows again: the window is the time the job takes to finish.
//!
//! Memory: a sink holds the rows of every epoch not yet committed, about
//! one snapshot interval of output (two while a commit runs). It cannot
//! hold back input to bound this: under exactly-once the barrier that ends
//! an epoch arrives behind that input.

use crate::sink::PendingRow;
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{PendingEpochs, ProcessorContext, ProcessorError, SealedEpoch};
use std::collections::BTreeMap;

/// The marker table's name, for the statements below to be constants.
macro_rules! marker_table {
    () => {
        "eddy_commit_markers"
    };
}

/// The table that holds the commit markers of every exactly-once
/// PostgreSQL sink writing to a database (in the connection's default
/// schema); the sink creates it if it is missing.
pub const COMMIT_MARKER_TABLE: &str = marker_table!();

pub(crate) const CREATE_MARKER_TABLE: &str = concat!(
    "CREATE TABLE IF NOT EXISTS ",
    marker_table!(),
    " (writer text PRIMARY KEY, epoch bigint NOT NULL)"
);
/// Reads a writer's marker, locking it until the transaction ends.
pub(crate) const READ_MARKER: &str = concat!(
    "SELECT epoch FROM ",
    marker_table!(),
    " WHERE writer = $1 FOR UPDATE"
);
/// Moves a writer's marker to the last epoch a transaction writes.
pub(crate) const WRITE_MARKER: &str = concat!(
    "INSERT INTO ",
    marker_table!(),
    " (writer, epoch) VALUES ($1, $2) ON CONFLICT (writer) DO UPDATE SET epoch = EXCLUDED.epoch"
);
/// Sets a writer's marker to "no epoch" (epochs start at 1).
pub(crate) const RESET_MARKER: &str = concat!(
    "INSERT INTO ",
    marker_table!(),
    " (writer, epoch) VALUES ($1, 0) ON CONFLICT (writer) DO UPDATE SET epoch = 0"
);
/// Whether a transaction committed (NULL when too old to say).
pub(crate) const TXID_STATUS: &str = "SELECT txid_status($1)";

/// What an instance does once, before its first save or commit: reset its
/// own marker (when it restored no epoch of its own), then write the
/// restored epochs of each writer that its marker does not cover.
pub(crate) struct Recovery {
    /// The writer whose marker to reset, if any.
    pub(crate) reset: Option<String>,
    /// The restored epochs by writer id, oldest first.
    pub(crate) restored: Vec<(String, Vec<SealedEpoch<PendingRow>>)>,
}

/// The exactly-once state of one sink instance.
pub(crate) struct EpochRows {
    job_name: String,
    vertex_name: String,
    instance: usize,
    parallelism: usize,
    /// Rows since the last barrier, and sealed epochs not committed yet.
    pending: PendingEpochs<PendingRow>,
    /// Whether [`recovery`](EpochRows::recovery) was taken.
    recovered: bool,
    /// The input ended and everything was written: nothing is left to save
    /// (the runtime saves a finished processor once more).
    finished: bool,
}

/// An epoch holding this many rows asks for the next snapshot at once
/// rather than at the end of the interval: what the sink holds is bounded
/// by the rows of about one snapshot, not of one interval.
const EARLY_SNAPSHOT_ROWS: usize = 100_000;

impl EpochRows {
    pub(crate) fn new(ctx: &ProcessorContext) -> Self {
        EpochRows {
            job_name: ctx.job_name.clone(),
            vertex_name: ctx.vertex_name.clone(),
            instance: ctx.instance,
            parallelism: ctx.parallelism.max(1),
            pending: {
                let mut pending = PendingEpochs::default();
                pending.set_requester(ctx.snapshot_requester.clone());
                pending
            },
            recovered: false,
            finished: false,
        }
    }

    /// Asks for an early snapshot when the current epoch has grown large;
    /// called once per input batch.
    pub(crate) fn ask_if_large(&mut self) {
        let rows = self.pending.current_len();
        self.pending.ask_early_if(rows, EARLY_SNAPSHOT_ROWS);
    }

    /// The marker key of the epochs sealed by instance `writer`: a JSON
    /// array, so that no job or vertex name can make two writers collide.
    pub(crate) fn writer_id(&self, writer: usize) -> String {
        serde_json::json!([self.job_name, self.vertex_name, writer]).to_string()
    }

    /// Adds a row to the current epoch.
    #[inline]
    pub(crate) fn push(&mut self, row: PendingRow) {
        self.pending.push(row);
    }

    /// Takes a restored entry: a sealed epoch, kept if this instance is the
    /// one to commit it at the new parallelism.
    pub(crate) fn restore(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.pending.restore(entry, self.instance, self.parallelism)
    }

    /// The recovery to run, the first time only. Until then every sealed
    /// epoch is a restored one.
    pub(crate) fn recovery(&mut self) -> Option<Recovery> {
        if self.recovered {
            return None;
        }
        self.recovered = true;
        let mut by_writer: BTreeMap<usize, Vec<SealedEpoch<PendingRow>>> = BTreeMap::new();
        for e in self.pending.take_sealed_up_to(u64::MAX) {
            by_writer.entry(e.writer_instance).or_default().push(e);
        }
        let reset =
            (!by_writer.contains_key(&self.instance)).then(|| self.writer_id(self.instance));
        let restored = by_writer
            .into_iter()
            .map(|(w, epochs)| (self.writer_id(w), epochs))
            .collect();
        Some(Recovery { reset, restored })
    }

    /// Seals the current epoch as `snapshot_id` and saves every epoch not
    /// committed yet. Runs after the recovery.
    pub(crate) fn save(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        assert!(self.recovered, "an epoch was sealed before the recovery");
        if self.finished {
            return Ok(());
        }
        self.pending
            .seal_and_save(snapshot_id, self.instance, writer)
    }

    /// This instance's writer id and its sealed epochs up to
    /// `snapshot_id`, to commit. Runs after the recovery.
    pub(crate) fn take_up_to(
        &mut self,
        snapshot_id: u64,
    ) -> (String, Vec<SealedEpoch<PendingRow>>) {
        assert!(self.recovered, "an epoch was committed before the recovery");
        (
            self.writer_id(self.instance),
            self.pending.take_sealed_up_to(snapshot_id),
        )
    }

    /// At the end of the input: this instance's writer id, every sealed
    /// epoch and the rows of the current one, to commit together.
    pub(crate) fn finish(&mut self) -> (String, Vec<SealedEpoch<PendingRow>>, Vec<PendingRow>) {
        let (writer, sealed) = self.take_up_to(u64::MAX);
        self.finished = true;
        (writer, sealed, self.pending.take_current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::snapshot::read_entries;

    fn row(json: &str) -> PendingRow {
        PendingRow {
            key: String::new(),
            json: json.to_string(),
        }
    }

    fn instance(job: &str, instance: usize, parallelism: usize) -> EpochRows {
        let mut ctx = ProcessorContext::standalone("pg");
        ctx.job_name = job.to_string();
        ctx.instance = instance;
        ctx.parallelism = parallelism;
        EpochRows::new(&ctx)
    }

    #[test]
    fn when_nothing_restored_then_own_marker_is_reset_once() {
        let mut e = instance("job", 1, 2);
        let r = e.recovery().unwrap();
        assert_eq!(r.reset.as_deref(), Some(r#"["job","pg",1]"#));
        assert!(r.restored.is_empty());
        assert!(e.recovery().is_none());
    }

    #[test]
    fn when_own_epochs_restored_then_no_reset_and_others_grouped_by_writer() {
        let mut snapshots = Vec::new();
        for w in 0..3 {
            let mut e = instance("job", w, 3);
            e.recovery();
            e.push(row(&format!("{{\"w\":{w}}}")));
            let mut out = SnapshotWriter::new();
            e.save(4, &mut out).unwrap();
            snapshots.push(out);
        }
        // At parallelism 2, instance 0 takes the epochs of writers 0 and 2.
        let mut e = instance("job", 0, 2);
        for s in &snapshots {
            for entry in read_entries(s.bytes()) {
                e.restore(entry.unwrap()).unwrap();
            }
        }
        let r = e.recovery().unwrap();
        assert_eq!(r.reset, None);
        let writers: Vec<&str> = r.restored.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(writers, [r#"["job","pg",0]"#, r#"["job","pg",2]"#]);
        assert_eq!(r.restored[1].1[0].items[0].json, r#"{"w":2}"#);
    }

    #[test]
    fn when_finished_then_sealed_and_current_rows_are_taken_and_nothing_more_saved() {
        let mut e = instance("job", 0, 1);
        e.recovery();
        e.push(row("{}"));
        e.save(1, &mut SnapshotWriter::new()).unwrap();
        e.push(row("{}"));
        let (_, sealed, current) = e.finish();
        assert_eq!((sealed.len(), current.len()), (1, 1));
        let mut out = SnapshotWriter::new();
        e.save(2, &mut out).unwrap();
        assert_eq!(out.entries(), 0);
    }
}
