//! Hash join of a stream with a batch side input.

use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{Either, Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, State};
use hashbrown::HashMap;
use std::hash::Hash;

/// Joins each stream item with the side-input items of the same key.
///
/// The side input (ordinal 0, read to the end first thanks to its edge
/// priority) fills a hash table; then each stream item is looked up and the
/// joiner decides what to emit (`None` drops the item: an inner join;
/// emitting for a missing match: a left outer join).
///
/// Snapshot: every instance reads the whole side input (a broadcast edge),
/// so their tables are equal at an aligned barrier; instance 0 alone saves
/// its table, as broadcast entries, and every instance restores it. Whether
/// the side input had completed needs no saving: a finished side source is
/// restored as finished and completes the side edge again at once, and an
/// unfinished one replays what its table lacks.
pub struct HashJoinP<T, S, K, R, MK, SK, J> {
    main_key: MK,
    side_key: SK,
    joiner: J,
    table: HashMap<K, S>,
    instance: usize,
    _types: std::marker::PhantomData<fn(T) -> R>,
}

impl<T, S, K, R, MK, SK, J> HashJoinP<T, S, K, R, MK, SK, J> {
    /// A join of stream items keyed by `main_key` with side items keyed by
    /// `side_key`; a later side item with the same key replaces an earlier.
    pub fn new(main_key: MK, side_key: SK, joiner: J) -> Self {
        HashJoinP {
            main_key,
            side_key,
            joiner,
            table: HashMap::new(),
            instance: 0,
            _types: std::marker::PhantomData,
        }
    }
}

impl<T, S, K, R, MK, SK, J> Processor for HashJoinP<T, S, K, R, MK, SK, J>
where
    T: Send + 'static,
    S: State,
    K: State + Hash + Eq,
    R: Clone + Send + 'static,
    MK: Fn(&T) -> K + Send + 'static,
    SK: Fn(&S) -> K + Send + 'static,
    J: Fn(T, Option<&S>) -> Option<R> + Send + 'static,
{
    type In = Event<Either<T, S>>;
    type Out = Event<R>;

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.instance = ctx.instance;
        Ok(())
    }

    fn process<O: Outbox<Event<R>>>(
        &mut self,
        _ordinal: usize,
        inbox: &mut Inbox<Event<Either<T, S>>>,
        outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        while outbox.has_room() {
            let Some(event) = inbox.poll() else { break };
            match event.value {
                Either::Right(side) => {
                    self.table.insert((self.side_key)(&side), side);
                }
                Either::Left(item) => {
                    let matched = self.table.get(&(self.main_key)(&item));
                    if let Some(value) = (self.joiner)(item, matched) {
                        outbox.offer_granted(Event {
                            ts: event.ts,
                            value,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        if self.instance == 0 {
            for (key, side) in &self.table {
                writer.put(BROADCAST, key, side)?;
            }
        }
        Ok(())
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (key, side) = entry.decode()?;
        self.table.insert(key, side);
        Ok(())
    }
}
