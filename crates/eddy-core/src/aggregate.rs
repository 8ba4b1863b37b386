//! The `AggregateOperation` contract.

use crate::State;

/// How to aggregate items of type `T`: create an accumulator, accumulate items
/// into it, combine partial accumulators, and turn one into a result.
///
/// # Laws
///
/// Windowed and parallel aggregation rely on these; the property tests of
/// `eddy-core` check them for the built-in operations.
///
/// * `combine` is associative, and combining with a fresh accumulator is the
///   identity: a window computed from frames equals one accumulated directly.
/// * Accumulating items into two accumulators and combining them equals
///   accumulating all items into one (the order of items within one key does
///   not matter for the built-in operations, except `to_list`).
/// * Where [`can_deduct`](AggregateOperation::can_deduct) is true, `deduct`
///   undoes `combine`: `combine(a, b); deduct(a, b)` leaves `a` as it was.
///   Sliding windows use it to slide in O(1) per key instead of recombining
///   every frame.
///
/// Accumulators are [`State`]: windows and keyed stages save them into
/// snapshots, so an operation's accumulator must be serializable (the
/// built-in ones are whenever the values they keep are).
pub trait AggregateOperation<T>: Clone + Send + Sync + 'static {
    /// The mutable accumulation state.
    type Acc: State;
    /// The result type.
    type Result: Clone + Send + 'static;

    /// A fresh accumulator (the identity of `combine`).
    fn create(&self) -> Self::Acc;

    /// Adds one item.
    fn accumulate(&self, acc: &mut Self::Acc, item: &T);

    /// Adds the content of `other` into `acc`.
    fn combine(&self, acc: &mut Self::Acc, other: &Self::Acc);

    /// Whether [`deduct`](AggregateOperation::deduct) is available.
    fn can_deduct(&self) -> bool {
        false
    }

    /// Removes the content of `other` from `acc` (the inverse of `combine`).
    ///
    /// # Panics
    /// When called on an operation whose `can_deduct` is false: that is a bug
    /// in the caller.
    fn deduct(&self, _acc: &mut Self::Acc, _other: &Self::Acc) {
        panic!("deduct called on an aggregate operation that cannot deduct");
    }

    /// The current result, leaving the accumulator usable (early results,
    /// rolling aggregation, sliding windows).
    fn export(&self, acc: &Self::Acc) -> Self::Result;

    /// The final result, consuming the accumulator.
    fn finish(&self, acc: Self::Acc) -> Self::Result {
        self.export(&acc)
    }

    /// This operation and `other` in one pass; the result is a pair.
    fn and<B: AggregateOperation<T>>(self, other: B) -> crate::agg::And<Self, B>
    where
        Self: Sized,
    {
        crate::agg::And(self, other)
    }

    /// Transforms the result with `f`.
    fn map_result<R, F>(self, f: F) -> crate::agg::MapResult<Self, F>
    where
        Self: Sized,
        R: Clone + Send + 'static,
        F: Fn(Self::Result) -> R + Clone + Send + Sync + 'static,
    {
        crate::agg::MapResult(self, f)
    }
}
