//! SQL aggregates as one engine aggregate operation over rows: the
//! accumulator holds one state per aggregate call, and the result is a row
//! of their values in call order. `COUNT`, `SUM` and `AVG` can deduct (so
//! sliding windows subtract the frame that leaves); with `MIN`, `MAX` or
//! `COUNT(DISTINCT …)` in the query the window recombines its frames.

use crate::binder::AggKind;
use crate::types::{DataType, Row, Value};
use eddy::AggregateOperation;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// One aggregate call: what it computes over which field of its input.
#[derive(Debug, Clone)]
pub struct AggSpec {
    /// The function.
    pub kind: AggKind,
    /// The input field of its argument (unused by `COUNT(*)`).
    pub column: usize,
    /// The type of its argument.
    pub arg_type: DataType,
}

/// The state of one aggregate call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AccState {
    /// `COUNT`.
    Count(i64),
    /// `SUM` of integers (wrapping on overflow) and how many were summed.
    SumInt(i64, i64),
    /// `SUM` of doubles and how many were summed.
    SumDouble(f64, i64),
    /// `MIN` or `MAX` so far.
    Extreme(Value),
    /// `COUNT(DISTINCT …)`: each value with its count (so that deducting
    /// would be possible; not used for that yet).
    Distinct(HashMap<Value, u64>),
}

static NULL: Value = Value::Null;

/// The aggregate operation of a grouped query.
#[derive(Debug, Clone)]
pub struct SqlAggregate {
    specs: Arc<[AggSpec]>,
    deductible: bool,
}

impl SqlAggregate {
    /// An operation computing `specs`.
    pub fn new(specs: Vec<AggSpec>) -> Self {
        let deductible = specs.iter().all(|s| {
            matches!(
                s.kind,
                AggKind::CountStar | AggKind::Count | AggKind::Sum | AggKind::Avg
            )
        });
        SqlAggregate {
            specs: specs.into(),
            deductible,
        }
    }
}

impl AggregateOperation<Row> for SqlAggregate {
    type Acc = Vec<AccState>;
    type Result = Row;

    fn create(&self) -> Vec<AccState> {
        self.specs
            .iter()
            .map(|s| match s.kind {
                AggKind::CountStar | AggKind::Count => AccState::Count(0),
                AggKind::Sum | AggKind::Avg => {
                    if s.arg_type == DataType::Double {
                        AccState::SumDouble(0.0, 0)
                    } else {
                        AccState::SumInt(0, 0)
                    }
                }
                AggKind::Min | AggKind::Max => AccState::Extreme(Value::Null),
                AggKind::CountDistinct => AccState::Distinct(HashMap::new()),
            })
            .collect()
    }

    #[inline]
    fn accumulate(&self, acc: &mut Vec<AccState>, item: &Row) {
        for (spec, state) in self.specs.iter().zip(acc.iter_mut()) {
            // COUNT(*) reads no field (its input may have none).
            let v = item.get(spec.column).unwrap_or(&NULL);
            match state {
                AccState::Count(n) => {
                    if spec.kind == AggKind::CountStar || !v.is_null() {
                        *n += 1;
                    }
                }
                AccState::SumInt(sum, n) => {
                    if let Some(x) = v.as_i64() {
                        *sum = sum.wrapping_add(x);
                        *n += 1;
                    }
                }
                AccState::SumDouble(sum, n) => {
                    if let Some(x) = v.as_f64() {
                        *sum += x;
                        *n += 1;
                    }
                }
                AccState::Extreme(best) => {
                    if !v.is_null() {
                        let better = match spec.kind {
                            AggKind::Min => best.is_null() || v.total_cmp(best).is_lt(),
                            _ => best.is_null() || v.total_cmp(best).is_gt(),
                        };
                        if better {
                            *best = v.clone();
                        }
                    }
                }
                AccState::Distinct(set) => {
                    if !v.is_null() {
                        *set.entry(v.clone()).or_insert(0) += 1;
                    }
                }
            }
        }
    }

    fn combine(&self, acc: &mut Vec<AccState>, other: &Vec<AccState>) {
        for ((spec, a), b) in self.specs.iter().zip(acc.iter_mut()).zip(other) {
            match (a, b) {
                (AccState::Count(x), AccState::Count(y)) => *x += y,
                (AccState::SumInt(s, n), AccState::SumInt(t, m)) => {
                    *s = s.wrapping_add(*t);
                    *n += m;
                }
                (AccState::SumDouble(s, n), AccState::SumDouble(t, m)) => {
                    *s += t;
                    *n += m;
                }
                (AccState::Extreme(best), AccState::Extreme(v)) => {
                    if !v.is_null() {
                        let better = match spec.kind {
                            AggKind::Min => best.is_null() || v.total_cmp(best).is_lt(),
                            _ => best.is_null() || v.total_cmp(best).is_gt(),
                        };
                        if better {
                            *best = v.clone();
                        }
                    }
                }
                (AccState::Distinct(set), AccState::Distinct(other)) => {
                    for (v, c) in other {
                        *set.entry(v.clone()).or_insert(0) += c;
                    }
                }
                _ => debug_assert!(false, "accumulators of one operation have the same shape"),
            }
        }
    }

    fn can_deduct(&self) -> bool {
        self.deductible
    }

    fn deduct(&self, acc: &mut Vec<AccState>, other: &Vec<AccState>) {
        assert!(
            self.deductible,
            "deduct called on an aggregate that cannot deduct"
        );
        for (a, b) in acc.iter_mut().zip(other) {
            match (a, b) {
                (AccState::Count(x), AccState::Count(y)) => *x -= y,
                (AccState::SumInt(s, n), AccState::SumInt(t, m)) => {
                    *s = s.wrapping_sub(*t);
                    *n -= m;
                }
                (AccState::SumDouble(s, n), AccState::SumDouble(t, m)) => {
                    *s -= t;
                    *n -= m;
                }
                _ => debug_assert!(false, "only counts and sums deduct"),
            }
        }
    }

    fn export(&self, acc: &Vec<AccState>) -> Row {
        let values = self
            .specs
            .iter()
            .zip(acc)
            .map(|(spec, state)| match (spec.kind, state) {
                (_, AccState::Count(n)) => Value::Int(*n),
                (AggKind::Avg, AccState::SumInt(s, n)) if *n > 0 => {
                    Value::Double(*s as f64 / *n as f64)
                }
                (AggKind::Avg, AccState::SumDouble(s, n)) if *n > 0 => Value::Double(s / *n as f64),
                (_, AccState::SumInt(s, n)) if *n > 0 => {
                    if spec.arg_type == DataType::Interval {
                        Value::Interval(*s)
                    } else {
                        Value::Int(*s)
                    }
                }
                (_, AccState::SumDouble(s, n)) if *n > 0 => Value::Double(*s),
                (_, AccState::SumInt(..) | AccState::SumDouble(..)) => Value::Null,
                (_, AccState::Extreme(v)) => v.clone(),
                (_, AccState::Distinct(set)) => Value::Int(set.len() as i64),
            })
            .collect();
        Row::new(values)
    }
}
