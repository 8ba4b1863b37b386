//! Edge routing: which consumer instance gets which items.
//!
//! Routers work on whole batches: the runtime makes one call per batch, and
//! the router's loop over the items is monomorphised for the item type and
//! key function, so there is no dynamic dispatch per item.

use eddy_core::partition::{owner_of_partition, partition_of_hash};
use eddy_core::Msg;
use std::collections::VecDeque;
use std::sync::Arc;

/// Splits a batch among the consumer instances of an edge.
pub trait Router<T>: Send {
    /// Appends the items of `batch` to the queues of the targets they go to.
    fn route(&mut self, batch: Vec<T>, targets: &mut [VecDeque<Msg<T>>]);
}

/// The routing policy of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingKind {
    /// Batches go to consumer instances in turn.
    Unicast,
    /// Instance `i` sends to instance `i` (the edge needs equal parallelism).
    Isolated,
    /// Every consumer instance gets every item.
    Broadcast,
    /// Each key goes to the one instance that owns its partition.
    Partitioned,
}

type RouterFactory<T> = Arc<dyn Fn(usize, usize) -> Box<dyn Router<T>> + Send + Sync>;

/// How an edge routes items of type `T`; build one with the constructors.
pub struct Routing<T> {
    pub(crate) kind: RoutingKind,
    /// Makes the router of one producer instance: `(producer_index,
    /// consumer_count)`.
    pub(crate) factory: RouterFactory<T>,
}

impl<T> Clone for Routing<T> {
    fn clone(&self) -> Self {
        Routing {
            kind: self.kind,
            factory: self.factory.clone(),
        }
    }
}

impl<T: Clone + Send + 'static> Routing<T> {
    /// Round robin by batch.
    pub fn unicast() -> Self {
        Routing {
            kind: RoutingKind::Unicast,
            factory: Arc::new(|producer, _| Box::new(RoundRobin { next: producer })),
        }
    }

    /// Producer instance `i` to consumer instance `i`.
    pub fn isolated() -> Self {
        Routing {
            kind: RoutingKind::Isolated,
            factory: Arc::new(|producer, _| Box::new(Fixed { target: producer })),
        }
    }

    /// Every item to every consumer instance.
    pub fn broadcast() -> Self {
        Routing {
            kind: RoutingKind::Broadcast,
            factory: Arc::new(|_, _| Box::new(Broadcast)),
        }
    }

    /// By key: `key_hash` must be a stable hash of the item's key (use
    /// [`eddy_core::partition::key_hash`]), so that each key has one owner.
    pub fn partitioned<F>(key_hash: F) -> Self
    where
        F: Fn(&T) -> u64 + Clone + Send + Sync + 'static,
    {
        Routing {
            kind: RoutingKind::Partitioned,
            factory: Arc::new(move |_, consumers| {
                let owners = (0..eddy_core::partition::PARTITION_COUNT)
                    .map(|p| owner_of_partition(p, consumers) as u32)
                    .collect();
                Box::new(ByKey {
                    key_hash: key_hash.clone(),
                    owners,
                    scratch: (0..consumers).map(|_| Vec::new()).collect(),
                })
            }),
        }
    }
}

struct RoundRobin {
    next: usize,
}

impl<T> Router<T> for RoundRobin {
    fn route(&mut self, batch: Vec<T>, targets: &mut [VecDeque<Msg<T>>]) {
        let t = self.next % targets.len();
        self.next = t + 1;
        targets[t].push_back(Msg::Batch(batch));
    }
}

struct Fixed {
    target: usize,
}

impl<T> Router<T> for Fixed {
    fn route(&mut self, batch: Vec<T>, targets: &mut [VecDeque<Msg<T>>]) {
        let t = self.target % targets.len();
        targets[t].push_back(Msg::Batch(batch));
    }
}

struct Broadcast;

impl<T: Clone> Router<T> for Broadcast {
    fn route(&mut self, batch: Vec<T>, targets: &mut [VecDeque<Msg<T>>]) {
        let (last, rest) = targets.split_last_mut().expect("an edge has consumers");
        for t in rest {
            t.push_back(Msg::Batch(batch.clone()));
        }
        last.push_back(Msg::Batch(batch));
    }
}

struct ByKey<T, F> {
    key_hash: F,
    owners: Vec<u32>,
    scratch: Vec<Vec<T>>,
}

impl<T: Send, F: Fn(&T) -> u64 + Send> Router<T> for ByKey<T, F> {
    fn route(&mut self, batch: Vec<T>, targets: &mut [VecDeque<Msg<T>>]) {
        if targets.len() == 1 {
            targets[0].push_back(Msg::Batch(batch));
            return;
        }
        let share = batch.len() / targets.len() + 16;
        for item in batch {
            let owner = self.owners[partition_of_hash((self.key_hash)(&item)) as usize];
            let out = &mut self.scratch[owner as usize];
            if out.capacity() == 0 {
                out.reserve(share);
            }
            out.push(item);
        }
        for (t, out) in self.scratch.iter_mut().enumerate() {
            if !out.is_empty() {
                targets[t].push_back(Msg::Batch(std::mem::take(out)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::partition::{key_hash, owner_of_key};

    fn items(q: &VecDeque<Msg<u64>>) -> Vec<u64> {
        q.iter()
            .flat_map(|m| match m {
                Msg::Batch(b) => b.clone(),
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn when_partitioned_then_each_key_goes_to_its_owner() {
        let routing = Routing::<u64>::partitioned(key_hash::<u64>);
        let mut router = (routing.factory)(0, 3);
        let mut targets: Vec<VecDeque<Msg<u64>>> = (0..3).map(|_| VecDeque::new()).collect();
        router.route((0..1000).collect(), &mut targets);
        for (t, q) in targets.iter().enumerate() {
            for k in items(q) {
                assert_eq!(owner_of_key(&k, 3), t);
            }
        }
        let total: usize = targets.iter().map(|q| items(q).len()).sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn when_broadcast_then_every_target_gets_all() {
        let routing = Routing::<u64>::broadcast();
        let mut router = (routing.factory)(0, 2);
        let mut targets: Vec<VecDeque<Msg<u64>>> = (0..2).map(|_| VecDeque::new()).collect();
        router.route(vec![1, 2, 3], &mut targets);
        assert_eq!(items(&targets[0]), vec![1, 2, 3]);
        assert_eq!(items(&targets[1]), vec![1, 2, 3]);
    }
}
