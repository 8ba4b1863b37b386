//! The laws of `AggregateOperation`, as property tests over the built-in
//! operations: combine is associative with `create` as identity, splitting
//! the input does not change the result, and deduct undoes combine.

use eddy_core::{agg, AggregateOperation};
use proptest::prelude::*;

fn acc_of<Op: AggregateOperation<i64>>(op: &Op, items: &[i64]) -> Op::Acc {
    let mut acc = op.create();
    for x in items {
        op.accumulate(&mut acc, x);
    }
    acc
}

fn check_laws<Op>(op: Op, a: &[i64], b: &[i64], c: &[i64]) -> Result<(), TestCaseError>
where
    Op: AggregateOperation<i64>,
    Op::Result: PartialEq + std::fmt::Debug,
{
    // Splitting: acc(a ++ b) == combine(acc(a), acc(b)).
    let whole: Vec<i64> = a.iter().chain(b).copied().collect();
    let mut split = acc_of(&op, a);
    op.combine(&mut split, &acc_of(&op, b));
    prop_assert_eq!(op.export(&split), op.export(&acc_of(&op, &whole)));

    // Associativity: (a + b) + c == a + (b + c).
    let mut left = acc_of(&op, a);
    op.combine(&mut left, &acc_of(&op, b));
    op.combine(&mut left, &acc_of(&op, c));
    let mut bc = acc_of(&op, b);
    op.combine(&mut bc, &acc_of(&op, c));
    let mut right = acc_of(&op, a);
    op.combine(&mut right, &bc);
    prop_assert_eq!(op.export(&left), op.export(&right));

    // Identity: combining a fresh accumulator changes nothing.
    let mut with_empty = acc_of(&op, a);
    op.combine(&mut with_empty, &op.create());
    prop_assert_eq!(op.export(&with_empty), op.export(&acc_of(&op, a)));

    // Deduct undoes combine.
    if op.can_deduct() {
        let mut undone = acc_of(&op, a);
        op.combine(&mut undone, &acc_of(&op, b));
        op.deduct(&mut undone, &acc_of(&op, b));
        prop_assert_eq!(op.export(&undone), op.export(&acc_of(&op, a)));
    }
    Ok(())
}

fn lists() -> impl Strategy<Value = (Vec<i64>, Vec<i64>, Vec<i64>)> {
    let list = || prop::collection::vec(-1000i64..1000, 0..20);
    (list(), list(), list())
}

proptest! {
    #[test]
    fn when_count_sum_combined_then_laws_hold((a, b, c) in lists()) {
        check_laws(agg::count().and(agg::sum_i64(|x: &i64| *x)), &a, &b, &c)?;
    }

    #[test]
    fn when_min_max_combined_then_laws_hold((a, b, c) in lists()) {
        check_laws(agg::min(|x: &i64| *x).and(agg::max(|x: &i64| *x)), &a, &b, &c)?;
    }

    #[test]
    fn when_average_combined_then_laws_hold((a, b, c) in lists()) {
        // Averages of integers are exact in f64 at these magnitudes.
        check_laws(agg::average(|x: &i64| *x as f64).map_result(|v| if v.is_nan() { None } else { Some((v * 1e6).round() as i64) }), &a, &b, &c)?;
    }

    #[test]
    fn when_count_distinct_and_top_n_combined_then_laws_hold((a, b, c) in lists()) {
        check_laws(agg::count_distinct(|x: &i64| *x % 7), &a, &b, &c)?;
        check_laws(agg::top_n(3, |x: &i64| *x).map_result(|v| v.into_iter().collect::<Vec<_>>()), &a, &b, &c)?;
        check_laws(agg::max_by(|x: &i64| x.abs()).map_result(|v| v.map(|x| x.abs())), &a, &b, &c)?;
    }
}
