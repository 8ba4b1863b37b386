//! Exactly-once output for sinks whose target cannot tell what it already
//! holds (memory, standard output, a grid map): output waits per epoch
//! until the snapshot that covers it is durable, and a process-wide record
//! of the epochs each writer committed keeps a restore from delivering an
//! epoch twice.
//!
//! Each sink instance writes under a *writer id* of its own, unique in the
//! process and across processes (a random base plus a counter). A restored
//! instance commits the epochs it took over from the snapshot under their
//! old writer's id, and writes its own under a fresh one, so that a job
//! restored twice from one snapshot does not mistake its new epochs for
//! ones the first restore committed.
//!
//! The record lives in the process, like the targets it protects: a target
//! that outlives the process (a grid map persisted through a map store) may
//! see the last committed epoch again after the process restarts.

use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{Guarantee, PendingEpochs, ProcessorContext, ProcessorError, State};
use parking_lot::Mutex;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The last epoch each writer committed, by writer id. Touched once per
/// epoch commit, never per item. It keeps one small entry per sink instance
/// that ever committed, since a snapshot naming that writer may be restored
/// at any later time.
fn committed() -> &'static Mutex<hashbrown::HashMap<u64, u64>> {
    static COMMITTED: OnceLock<Mutex<hashbrown::HashMap<u64, u64>>> = OnceLock::new();
    COMMITTED.get_or_init(|| Mutex::new(hashbrown::HashMap::new()))
}

/// A writer id no other sink instance has, in this process or another.
fn new_writer_id() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    });
    base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The output of a sink under exactly-once, held per epoch; under other
/// guarantees it is disabled and the sink writes straight through.
pub(crate) struct EpochOutput<T> {
    enabled: bool,
    /// The input ended and everything was delivered: nothing is left to
    /// save (the runtime saves a finished processor once more).
    finished: bool,
    pending: PendingEpochs<T>,
    writer: u64,
    instance: usize,
    parallelism: usize,
}

/// An epoch holding this many items asks for the next snapshot at once
/// rather than at the end of the interval: what a sink holds is bounded by
/// the input of about one snapshot, not of one interval.
const EARLY_SNAPSHOT_ITEMS: usize = 100_000;

impl<T: State> EpochOutput<T> {
    /// Disabled until [`init`](EpochOutput::init).
    pub(crate) fn new() -> Self {
        EpochOutput {
            enabled: false,
            finished: false,
            pending: PendingEpochs::default(),
            writer: 0,
            instance: 0,
            parallelism: 1,
        }
    }

    /// Enables it when the job is exactly-once.
    pub(crate) fn init(&mut self, ctx: &ProcessorContext) {
        self.enabled = ctx.guarantee == Guarantee::ExactlyOnce;
        self.writer = new_writer_id();
        self.instance = ctx.instance;
        self.parallelism = ctx.parallelism.max(1);
        self.pending.set_requester(ctx.snapshot_requester.clone());
    }

    /// Whether output waits for snapshots.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Adds an item to the current epoch.
    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        self.pending.push(item);
    }

    /// Asks for an early snapshot when the current epoch has grown large;
    /// called once per input batch.
    pub(crate) fn ask_if_large(&mut self) {
        let items = self.pending.current_len();
        self.pending.ask_early_if(items, EARLY_SNAPSHOT_ITEMS);
    }

    /// Seals the current epoch as `snapshot_id` and saves every epoch not
    /// committed yet.
    pub(crate) fn save(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        if !self.enabled || self.finished {
            return Ok(());
        }
        self.pending
            .seal_and_save(snapshot_id, self.writer as usize, writer)
    }

    /// Takes back an epoch a snapshot saved, if it falls to this instance.
    pub(crate) fn restore(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.pending.restore(entry, self.instance, self.parallelism)
    }

    /// Hands the items of every epoch up to `snapshot_id` that no one
    /// committed yet to `deliver`, oldest first, and records them as
    /// committed.
    pub(crate) fn commit(&mut self, snapshot_id: u64, mut deliver: impl FnMut(Vec<T>)) {
        for epoch in self.pending.take_sealed_up_to(snapshot_id) {
            let writer = epoch.writer_instance as u64;
            let done = committed().lock().get(&writer).copied();
            if done.is_some_and(|last| last >= epoch.epoch) {
                continue;
            }
            deliver(epoch.items);
            committed().lock().insert(writer, epoch.epoch);
        }
    }

    /// At the end of the input: delivers every epoch not committed yet and
    /// the current one. In a job nothing is left by then, since the runtime
    /// commits a final snapshot before a sink completes; a processor run
    /// without the runtime (a test harness) delivers its output here.
    pub(crate) fn finish(&mut self, mut deliver: impl FnMut(Vec<T>)) {
        self.commit(u64::MAX, &mut deliver);
        let rest = self.pending.take_current();
        if !rest.is_empty() {
            deliver(rest);
        }
        self.finished = true;
    }
}
