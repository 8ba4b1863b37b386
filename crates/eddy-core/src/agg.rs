//! The built-in aggregate operations and their combinators.
//!
//! Every operation here is generic and monomorphised: accumulating an item
//! is a direct call, with no allocation except where the result is a
//! collection (`to_list`, `top_n`, `count_distinct`). Every accumulator is
//! serializable (it goes into snapshots) as long as the values it keeps are:
//! hence the [`State`] bounds on what `min`, `to_list` and the like hold.

use crate::{AggregateOperation, Either, State, StateKey};
use std::marker::PhantomData;
use std::sync::Arc;

/// Counts items. Deducts.
pub fn count() -> Count {
    Count
}

/// See [`count`].
#[derive(Debug, Clone, Copy)]
pub struct Count;

impl<T> AggregateOperation<T> for Count {
    type Acc = i64;
    type Result = i64;
    fn create(&self) -> i64 {
        0
    }
    #[inline]
    fn accumulate(&self, acc: &mut i64, _item: &T) {
        *acc += 1;
    }
    fn combine(&self, acc: &mut i64, other: &i64) {
        *acc += other;
    }
    fn can_deduct(&self) -> bool {
        true
    }
    fn deduct(&self, acc: &mut i64, other: &i64) {
        *acc -= other;
    }
    fn export(&self, acc: &i64) -> i64 {
        *acc
    }
}

/// Sums an integer extracted from each item (wrapping on overflow). Deducts.
pub fn sum_i64<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static>(f: F) -> SumI64<F> {
    SumI64(f)
}

/// See [`sum_i64`].
#[derive(Debug, Clone, Copy)]
pub struct SumI64<F>(F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static> AggregateOperation<T> for SumI64<F> {
    type Acc = i64;
    type Result = i64;
    fn create(&self) -> i64 {
        0
    }
    #[inline]
    fn accumulate(&self, acc: &mut i64, item: &T) {
        *acc = acc.wrapping_add((self.0)(item));
    }
    fn combine(&self, acc: &mut i64, other: &i64) {
        *acc = acc.wrapping_add(*other);
    }
    fn can_deduct(&self) -> bool {
        true
    }
    fn deduct(&self, acc: &mut i64, other: &i64) {
        *acc = acc.wrapping_sub(*other);
    }
    fn export(&self, acc: &i64) -> i64 {
        *acc
    }
}

/// Sums a float extracted from each item. Deducts (up to rounding).
pub fn sum_f64<T, F: Fn(&T) -> f64 + Clone + Send + Sync + 'static>(f: F) -> SumF64<F> {
    SumF64(f)
}

/// See [`sum_f64`].
#[derive(Debug, Clone, Copy)]
pub struct SumF64<F>(F);

impl<T, F: Fn(&T) -> f64 + Clone + Send + Sync + 'static> AggregateOperation<T> for SumF64<F> {
    type Acc = f64;
    type Result = f64;
    fn create(&self) -> f64 {
        0.0
    }
    #[inline]
    fn accumulate(&self, acc: &mut f64, item: &T) {
        *acc += (self.0)(item);
    }
    fn combine(&self, acc: &mut f64, other: &f64) {
        *acc += other;
    }
    fn can_deduct(&self) -> bool {
        true
    }
    fn deduct(&self, acc: &mut f64, other: &f64) {
        *acc -= other;
    }
    fn export(&self, acc: &f64) -> f64 {
        *acc
    }
}

/// The mean of a float extracted from each item; NaN for no items. Deducts.
pub fn average<T, F: Fn(&T) -> f64 + Clone + Send + Sync + 'static>(f: F) -> Average<F> {
    Average(f)
}

/// See [`average`].
#[derive(Debug, Clone, Copy)]
pub struct Average<F>(F);

impl<T, F: Fn(&T) -> f64 + Clone + Send + Sync + 'static> AggregateOperation<T> for Average<F> {
    type Acc = (i64, f64);
    type Result = f64;
    fn create(&self) -> (i64, f64) {
        (0, 0.0)
    }
    #[inline]
    fn accumulate(&self, acc: &mut (i64, f64), item: &T) {
        acc.0 += 1;
        acc.1 += (self.0)(item);
    }
    fn combine(&self, acc: &mut (i64, f64), other: &(i64, f64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn can_deduct(&self) -> bool {
        true
    }
    fn deduct(&self, acc: &mut (i64, f64), other: &(i64, f64)) {
        acc.0 -= other.0;
        acc.1 -= other.1;
    }
    fn export(&self, acc: &(i64, f64)) -> f64 {
        if acc.0 == 0 {
            f64::NAN
        } else {
            acc.1 / acc.0 as f64
        }
    }
}

/// The smallest value extracted from the items, `None` for no items.
pub fn min<T, V, F>(f: F) -> Extreme<F, V, false>
where
    V: PartialOrd + Clone + State,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    Extreme(f, PhantomData)
}

/// The largest value extracted from the items, `None` for no items.
pub fn max<T, V, F>(f: F) -> Extreme<F, V, true>
where
    V: PartialOrd + Clone + State,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    Extreme(f, PhantomData)
}

/// See [`min`] and [`max`]; `MAX` selects which.
pub struct Extreme<F, V, const MAX: bool>(F, PhantomData<fn() -> V>);

impl<F: Clone, V, const MAX: bool> Clone for Extreme<F, V, MAX> {
    fn clone(&self) -> Self {
        Extreme(self.0.clone(), PhantomData)
    }
}

#[inline]
fn better<V: PartialOrd, const MAX: bool>(candidate: &V, current: &V) -> bool {
    if MAX {
        candidate > current
    } else {
        candidate < current
    }
}

impl<T, V, F, const MAX: bool> AggregateOperation<T> for Extreme<F, V, MAX>
where
    V: PartialOrd + Clone + State,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    type Acc = Option<V>;
    type Result = Option<V>;
    fn create(&self) -> Option<V> {
        None
    }
    #[inline]
    fn accumulate(&self, acc: &mut Option<V>, item: &T) {
        let v = (self.0)(item);
        match acc {
            Some(cur) if !better::<V, MAX>(&v, cur) => {}
            _ => *acc = Some(v),
        }
    }
    fn combine(&self, acc: &mut Option<V>, other: &Option<V>) {
        if let Some(v) = other {
            match acc {
                Some(cur) if !better::<V, MAX>(v, cur) => {}
                _ => *acc = Some(v.clone()),
            }
        }
    }
    fn export(&self, acc: &Option<V>) -> Option<V> {
        acc.clone()
    }
}

/// The item with the smallest key, `None` for no items; the first one seen
/// wins a tie.
pub fn min_by<T, V, F>(key: F) -> ExtremeBy<F, V, false>
where
    T: Clone + State,
    V: PartialOrd + 'static,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    ExtremeBy(key, PhantomData)
}

/// The item with the largest key, `None` for no items; the first one seen
/// wins a tie.
pub fn max_by<T, V, F>(key: F) -> ExtremeBy<F, V, true>
where
    T: Clone + State,
    V: PartialOrd + 'static,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    ExtremeBy(key, PhantomData)
}

/// See [`min_by`] and [`max_by`].
pub struct ExtremeBy<F, V, const MAX: bool>(F, PhantomData<fn() -> V>);

impl<F: Clone, V, const MAX: bool> Clone for ExtremeBy<F, V, MAX> {
    fn clone(&self) -> Self {
        ExtremeBy(self.0.clone(), PhantomData)
    }
}

impl<T, V, F, const MAX: bool> AggregateOperation<T> for ExtremeBy<F, V, MAX>
where
    T: Clone + State,
    V: PartialOrd + 'static,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    type Acc = Option<T>;
    type Result = Option<T>;
    fn create(&self) -> Option<T> {
        None
    }
    #[inline]
    fn accumulate(&self, acc: &mut Option<T>, item: &T) {
        match acc {
            Some(cur) if !better::<V, MAX>(&(self.0)(item), &(self.0)(cur)) => {}
            _ => *acc = Some(item.clone()),
        }
    }
    fn combine(&self, acc: &mut Option<T>, other: &Option<T>) {
        if let Some(item) = other {
            self.accumulate(acc, item);
        }
    }
    fn export(&self, acc: &Option<T>) -> Option<T> {
        acc.clone()
    }
}

/// All items in a list, in arrival order within one accumulator.
pub fn to_list() -> ToList {
    ToList
}

/// See [`to_list`].
#[derive(Debug, Clone, Copy)]
pub struct ToList;

impl<T: Clone + State> AggregateOperation<T> for ToList {
    type Acc = Vec<T>;
    type Result = Vec<T>;
    fn create(&self) -> Vec<T> {
        Vec::new()
    }
    fn accumulate(&self, acc: &mut Vec<T>, item: &T) {
        acc.push(item.clone());
    }
    fn combine(&self, acc: &mut Vec<T>, other: &Vec<T>) {
        acc.extend_from_slice(other);
    }
    fn export(&self, acc: &Vec<T>) -> Vec<T> {
        acc.clone()
    }
    fn finish(&self, acc: Vec<T>) -> Vec<T> {
        acc
    }
}

/// The `n` items with the largest keys, largest first.
pub fn top_n<T, V, F>(n: usize, key: F) -> TopN<F, V>
where
    T: Clone + State,
    V: PartialOrd + 'static,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    TopN {
        n,
        key,
        _v: PhantomData,
    }
}

/// See [`top_n`].
pub struct TopN<F, V> {
    n: usize,
    key: F,
    _v: PhantomData<fn() -> V>,
}

impl<F: Clone, V> Clone for TopN<F, V> {
    fn clone(&self) -> Self {
        TopN {
            n: self.n,
            key: self.key.clone(),
            _v: PhantomData,
        }
    }
}

impl<T, V, F> AggregateOperation<T> for TopN<F, V>
where
    T: Clone + State,
    V: PartialOrd + 'static,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    // Kept sorted, largest first, at most `n` long: inserting is O(n), which
    // beats a heap for the small `n` top-N queries use.
    type Acc = Vec<T>;
    type Result = Vec<T>;
    fn create(&self) -> Vec<T> {
        Vec::with_capacity(self.n)
    }
    fn accumulate(&self, acc: &mut Vec<T>, item: &T) {
        let k = (self.key)(item);
        let pos = acc
            .iter()
            .position(|x| (self.key)(x) < k)
            .unwrap_or(acc.len());
        if pos < self.n {
            if acc.len() == self.n {
                acc.pop();
            }
            acc.insert(pos, item.clone());
        }
    }
    fn combine(&self, acc: &mut Vec<T>, other: &Vec<T>) {
        for item in other {
            self.accumulate(acc, item);
        }
    }
    fn export(&self, acc: &Vec<T>) -> Vec<T> {
        acc.clone()
    }
    fn finish(&self, acc: Vec<T>) -> Vec<T> {
        acc
    }
}

/// The number of distinct values extracted from the items.
pub fn count_distinct<T, V, F>(f: F) -> CountDistinct<F, V>
where
    V: StateKey,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    CountDistinct(f, PhantomData)
}

/// See [`count_distinct`].
pub struct CountDistinct<F, V>(F, PhantomData<fn() -> V>);

impl<F: Clone, V> Clone for CountDistinct<F, V> {
    fn clone(&self) -> Self {
        CountDistinct(self.0.clone(), PhantomData)
    }
}

impl<T, V, F> AggregateOperation<T> for CountDistinct<F, V>
where
    V: StateKey,
    F: Fn(&T) -> V + Clone + Send + Sync + 'static,
{
    type Acc = hashbrown::HashSet<V>;
    type Result = i64;
    fn create(&self) -> Self::Acc {
        hashbrown::HashSet::new()
    }
    fn accumulate(&self, acc: &mut Self::Acc, item: &T) {
        acc.insert((self.0)(item));
    }
    fn combine(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        acc.extend(other.iter().cloned());
    }
    fn export(&self, acc: &Self::Acc) -> i64 {
        acc.len() as i64
    }
}

/// Two operations in one pass; see [`AggregateOperation::and`].
#[derive(Debug, Clone, Copy)]
pub struct And<A, B>(pub A, pub B);

impl<T, A: AggregateOperation<T>, B: AggregateOperation<T>> AggregateOperation<T> for And<A, B> {
    type Acc = (A::Acc, B::Acc);
    type Result = (A::Result, B::Result);
    fn create(&self) -> Self::Acc {
        (self.0.create(), self.1.create())
    }
    #[inline]
    fn accumulate(&self, acc: &mut Self::Acc, item: &T) {
        self.0.accumulate(&mut acc.0, item);
        self.1.accumulate(&mut acc.1, item);
    }
    fn combine(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        self.0.combine(&mut acc.0, &other.0);
        self.1.combine(&mut acc.1, &other.1);
    }
    fn can_deduct(&self) -> bool {
        self.0.can_deduct() && self.1.can_deduct()
    }
    fn deduct(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        self.0.deduct(&mut acc.0, &other.0);
        self.1.deduct(&mut acc.1, &other.1);
    }
    fn export(&self, acc: &Self::Acc) -> Self::Result {
        (self.0.export(&acc.0), self.1.export(&acc.1))
    }
    fn finish(&self, acc: Self::Acc) -> Self::Result {
        (self.0.finish(acc.0), self.1.finish(acc.1))
    }
}

/// Three operations in one pass, with a triple as the result.
pub fn all_of<T, A, B, C>(a: A, b: B, c: C) -> AllOf3<A, B, C>
where
    A: AggregateOperation<T>,
    B: AggregateOperation<T>,
    C: AggregateOperation<T>,
{
    AllOf3(a, b, c)
}

/// See [`all_of`].
#[derive(Debug, Clone, Copy)]
pub struct AllOf3<A, B, C>(A, B, C);

impl<T, A, B, C> AggregateOperation<T> for AllOf3<A, B, C>
where
    A: AggregateOperation<T>,
    B: AggregateOperation<T>,
    C: AggregateOperation<T>,
{
    type Acc = (A::Acc, B::Acc, C::Acc);
    type Result = (A::Result, B::Result, C::Result);
    fn create(&self) -> Self::Acc {
        (self.0.create(), self.1.create(), self.2.create())
    }
    #[inline]
    fn accumulate(&self, acc: &mut Self::Acc, item: &T) {
        self.0.accumulate(&mut acc.0, item);
        self.1.accumulate(&mut acc.1, item);
        self.2.accumulate(&mut acc.2, item);
    }
    fn combine(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        self.0.combine(&mut acc.0, &other.0);
        self.1.combine(&mut acc.1, &other.1);
        self.2.combine(&mut acc.2, &other.2);
    }
    fn can_deduct(&self) -> bool {
        self.0.can_deduct() && self.1.can_deduct() && self.2.can_deduct()
    }
    fn deduct(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        self.0.deduct(&mut acc.0, &other.0);
        self.1.deduct(&mut acc.1, &other.1);
        self.2.deduct(&mut acc.2, &other.2);
    }
    fn export(&self, acc: &Self::Acc) -> Self::Result {
        (
            self.0.export(&acc.0),
            self.1.export(&acc.1),
            self.2.export(&acc.2),
        )
    }
}

/// An operation with its result transformed; see
/// [`AggregateOperation::map_result`].
#[derive(Debug, Clone, Copy)]
pub struct MapResult<A, F>(pub A, pub F);

impl<T, R, A, F> AggregateOperation<T> for MapResult<A, F>
where
    A: AggregateOperation<T>,
    R: Clone + Send + 'static,
    F: Fn(A::Result) -> R + Clone + Send + Sync + 'static,
{
    type Acc = A::Acc;
    type Result = R;
    fn create(&self) -> A::Acc {
        self.0.create()
    }
    #[inline]
    fn accumulate(&self, acc: &mut A::Acc, item: &T) {
        self.0.accumulate(acc, item);
    }
    fn combine(&self, acc: &mut A::Acc, other: &A::Acc) {
        self.0.combine(acc, other);
    }
    fn can_deduct(&self) -> bool {
        self.0.can_deduct()
    }
    fn deduct(&self, acc: &mut A::Acc, other: &A::Acc) {
        self.0.deduct(acc, other);
    }
    fn export(&self, acc: &A::Acc) -> R {
        (self.1)(self.0.export(acc))
    }
    fn finish(&self, acc: A::Acc) -> R {
        (self.1)(self.0.finish(acc))
    }
}

/// Aggregates two inputs at once: `left` over the left items of an
/// [`Either`], `right` over the right ones. Co-grouping two streams is a
/// windowed aggregation with this operation.
pub fn co_aggregate<L, R, A, B>(left: A, right: B) -> CoAggregate<A, B>
where
    A: AggregateOperation<L>,
    B: AggregateOperation<R>,
{
    CoAggregate(left, right)
}

/// See [`co_aggregate`].
#[derive(Debug, Clone, Copy)]
pub struct CoAggregate<A, B>(A, B);

impl<L, R, A, B> AggregateOperation<Either<L, R>> for CoAggregate<A, B>
where
    A: AggregateOperation<L>,
    B: AggregateOperation<R>,
{
    type Acc = (A::Acc, B::Acc);
    type Result = (A::Result, B::Result);
    fn create(&self) -> Self::Acc {
        (self.0.create(), self.1.create())
    }
    #[inline]
    fn accumulate(&self, acc: &mut Self::Acc, item: &Either<L, R>) {
        match item {
            Either::Left(l) => self.0.accumulate(&mut acc.0, l),
            Either::Right(r) => self.1.accumulate(&mut acc.1, r),
        }
    }
    fn combine(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        self.0.combine(&mut acc.0, &other.0);
        self.1.combine(&mut acc.1, &other.1);
    }
    fn can_deduct(&self) -> bool {
        self.0.can_deduct() && self.1.can_deduct()
    }
    fn deduct(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        self.0.deduct(&mut acc.0, &other.0);
        self.1.deduct(&mut acc.1, &other.1);
    }
    fn export(&self, acc: &Self::Acc) -> Self::Result {
        (self.0.export(&acc.0), self.1.export(&acc.1))
    }
    fn finish(&self, acc: Self::Acc) -> Self::Result {
        (self.0.finish(acc.0), self.1.finish(acc.1))
    }
}

type DeductFn<A> = Arc<dyn Fn(&mut A, &A) + Send + Sync>;

/// A user-defined operation from its functions; add `deduct` with
/// [`Custom::with_deduct`].
///
/// ```
/// use eddy_core::{agg, AggregateOperation};
/// // The largest gap between consecutive readings, as (min, max) spread.
/// let spread = agg::custom(
///     || (i64::MAX, i64::MIN),
///     |acc: &mut (i64, i64), x: &i64| { acc.0 = acc.0.min(*x); acc.1 = acc.1.max(*x); },
///     |acc, other| { acc.0 = acc.0.min(other.0); acc.1 = acc.1.max(other.1); },
///     |acc| acc.1 - acc.0,
/// );
/// let mut acc = spread.create();
/// for x in [5, 1, 9] { spread.accumulate(&mut acc, &x); }
/// assert_eq!(spread.export(&acc), 8);
/// ```
pub fn custom<T, A, R, FC, FA, FB, FE>(
    create: FC,
    accumulate: FA,
    combine: FB,
    export: FE,
) -> Custom<T, A, FC, FA, FB, FE>
where
    A: State,
    R: Clone + Send + 'static,
    FC: Fn() -> A + Clone + Send + Sync + 'static,
    FA: Fn(&mut A, &T) + Clone + Send + Sync + 'static,
    FB: Fn(&mut A, &A) + Clone + Send + Sync + 'static,
    FE: Fn(&A) -> R + Clone + Send + Sync + 'static,
{
    Custom {
        create,
        accumulate,
        combine,
        export,
        deduct: None,
        _t: PhantomData,
    }
}

/// See [`custom`].
pub struct Custom<T, A, FC, FA, FB, FE> {
    create: FC,
    accumulate: FA,
    combine: FB,
    export: FE,
    // Deduct runs once per key per window slide, not per event, so one
    // indirect call there costs nothing measurable and keeps the type simple.
    deduct: Option<DeductFn<A>>,
    _t: PhantomData<fn(&T)>,
}

impl<T, A, FC: Clone, FA: Clone, FB: Clone, FE: Clone> Clone for Custom<T, A, FC, FA, FB, FE> {
    fn clone(&self) -> Self {
        Custom {
            create: self.create.clone(),
            accumulate: self.accumulate.clone(),
            combine: self.combine.clone(),
            export: self.export.clone(),
            deduct: self.deduct.clone(),
            _t: PhantomData,
        }
    }
}

impl<T, A, FC, FA, FB, FE> Custom<T, A, FC, FA, FB, FE> {
    /// Adds the inverse of `combine`, enabling O(1) sliding windows.
    pub fn with_deduct(mut self, deduct: impl Fn(&mut A, &A) + Send + Sync + 'static) -> Self {
        self.deduct = Some(Arc::new(deduct));
        self
    }
}

impl<T, A, R, FC, FA, FB, FE> AggregateOperation<T> for Custom<T, A, FC, FA, FB, FE>
where
    T: 'static,
    A: State,
    R: Clone + Send + 'static,
    FC: Fn() -> A + Clone + Send + Sync + 'static,
    FA: Fn(&mut A, &T) + Clone + Send + Sync + 'static,
    FB: Fn(&mut A, &A) + Clone + Send + Sync + 'static,
    FE: Fn(&A) -> R + Clone + Send + Sync + 'static,
{
    type Acc = A;
    type Result = R;
    fn create(&self) -> A {
        (self.create)()
    }
    #[inline]
    fn accumulate(&self, acc: &mut A, item: &T) {
        (self.accumulate)(acc, item);
    }
    fn combine(&self, acc: &mut A, other: &A) {
        (self.combine)(acc, other);
    }
    fn can_deduct(&self) -> bool {
        self.deduct.is_some()
    }
    fn deduct(&self, acc: &mut A, other: &A) {
        match &self.deduct {
            Some(d) => d(acc, other),
            None => panic!("deduct called on a custom aggregate operation without with_deduct"),
        }
    }
    fn export(&self, acc: &A) -> R {
        (self.export)(acc)
    }
}
