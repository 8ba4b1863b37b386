//! Hash join of a stream with a batch side input.

use eddy_core::{Either, Event, Inbox, Outbox, Processor, ProcessorError};
use hashbrown::HashMap;
use std::hash::Hash;

/// Joins each stream item with the side-input items of the same key.
///
/// The side input (ordinal 0, read to the end first thanks to its edge
/// priority) fills a hash table; then each stream item is looked up and the
/// joiner decides what to emit (`None` drops the item: an inner join;
/// emitting for a missing match: a left outer join).
pub struct HashJoinP<T, S, K, R, MK, SK, J> {
    main_key: MK,
    side_key: SK,
    joiner: J,
    table: HashMap<K, S>,
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
            _types: std::marker::PhantomData,
        }
    }
}

impl<T, S, K, R, MK, SK, J> Processor for HashJoinP<T, S, K, R, MK, SK, J>
where
    T: Send + 'static,
    S: Send + 'static,
    K: Hash + Eq + Send + 'static,
    R: Clone + Send + 'static,
    MK: Fn(&T) -> K + Send + 'static,
    SK: Fn(&S) -> K + Send + 'static,
    J: Fn(T, Option<&S>) -> Option<R> + Send + 'static,
{
    type In = Event<Either<T, S>>;
    type Out = Event<R>;

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
                        if outbox
                            .offer(Event {
                                ts: event.ts,
                                value,
                            })
                            .is_err()
                        {
                            unreachable!("has_room promised one offer");
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
