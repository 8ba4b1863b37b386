//! Aggregations over the entries of a map: count, sum, avg, min, max, distinct.

use std::cmp::Ordering;

use serde_json::Value;

use super::predicate::{AttrPath, Attributes};
use super::value::json_total_cmp;
use crate::GridError;

/// An aggregation over the entries a query selects.
///
/// Sum and average read numeric attributes and skip others; min, max and
/// distinct use [`json_total_cmp`](super::json_total_cmp) and skip entries
/// without the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aggregation {
    /// Number of entries.
    Count,
    /// Sum of a numeric attribute (an integer while every input is one).
    Sum(AttrPath),
    /// Mean of a numeric attribute; `null` when no entry has one.
    Avg(AttrPath),
    /// Least value of an attribute; `null` when no entry has it.
    Min(AttrPath),
    /// Greatest value of an attribute; `null` when no entry has it.
    Max(AttrPath),
    /// The distinct values of an attribute, sorted.
    Distinct(AttrPath),
}

impl Aggregation {
    /// Parses `count`, `sum(path)`, `avg(path)`, `min(path)`, `max(path)` or
    /// `distinct(path)`, the form the CLI and HTTP API accept.
    pub fn parse(text: &str) -> Result<Aggregation, GridError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("count") || t.eq_ignore_ascii_case("count()") {
            return Ok(Aggregation::Count);
        }
        let bad = || {
            GridError::InvalidConfig {
            field: "aggregation",
            reason: format!("'{text}' is not one of count, sum(path), avg(path), min(path), max(path), distinct(path)"),
        }
        };
        let (name, rest) = t.split_once('(').ok_or_else(bad)?;
        let path = AttrPath::parse(rest.strip_suffix(')').ok_or_else(bad)?.trim())?;
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "sum" => Aggregation::Sum(path),
            "avg" => Aggregation::Avg(path),
            "min" => Aggregation::Min(path),
            "max" => Aggregation::Max(path),
            "distinct" => Aggregation::Distinct(path),
            _ => return Err(bad()),
        })
    }
}

/// Running state of one aggregation.
pub(crate) struct Accumulator<'a> {
    agg: &'a Aggregation,
    count: u64,
    int_sum: i128,
    float_sum: f64,
    any_float: bool,
    best: Option<Value>,
    distinct: Vec<Value>,
}

impl<'a> Accumulator<'a> {
    pub(crate) fn new(agg: &'a Aggregation) -> Self {
        Accumulator {
            agg,
            count: 0,
            int_sum: 0,
            float_sum: 0.0,
            any_float: false,
            best: None,
            distinct: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, entry: &dyn Attributes) {
        let path = match self.agg {
            Aggregation::Count => {
                self.count += 1;
                return;
            }
            Aggregation::Sum(p)
            | Aggregation::Avg(p)
            | Aggregation::Min(p)
            | Aggregation::Max(p)
            | Aggregation::Distinct(p) => p,
        };
        let Some(v) = entry.attribute(path) else {
            return;
        };
        match self.agg {
            Aggregation::Sum(_) | Aggregation::Avg(_) => {
                let Value::Number(n) = v.as_ref() else { return };
                self.count += 1;
                if let Some(i) = n.as_i64() {
                    self.int_sum += i as i128;
                } else if let Some(u) = n.as_u64() {
                    self.int_sum += u as i128;
                } else {
                    self.any_float = true;
                    self.float_sum += n.as_f64().unwrap_or(0.0);
                }
            }
            Aggregation::Min(_) | Aggregation::Max(_) => {
                let want = if matches!(self.agg, Aggregation::Min(_)) {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                let better = match &self.best {
                    None => true,
                    Some(b) => json_total_cmp(&v, b) == want,
                };
                if better {
                    self.best = Some(v.into_owned());
                }
            }
            Aggregation::Distinct(_) => self.distinct.push(v.into_owned()),
            Aggregation::Count => {}
        }
    }

    pub(crate) fn finish(mut self) -> Value {
        match self.agg {
            Aggregation::Count => Value::from(self.count),
            Aggregation::Sum(_) => {
                if self.any_float {
                    Value::from(self.int_sum as f64 + self.float_sum)
                } else if let Ok(i) = i64::try_from(self.int_sum) {
                    Value::from(i)
                } else {
                    Value::from(self.int_sum as f64)
                }
            }
            Aggregation::Avg(_) => {
                if self.count == 0 {
                    Value::Null
                } else {
                    Value::from((self.int_sum as f64 + self.float_sum) / self.count as f64)
                }
            }
            Aggregation::Min(_) | Aggregation::Max(_) => self.best.take().unwrap_or(Value::Null),
            Aggregation::Distinct(_) => {
                self.distinct.sort_by(json_total_cmp);
                self.distinct
                    .dedup_by(|a, b| json_total_cmp(a, b) == Ordering::Equal);
                Value::Array(std::mem::take(&mut self.distinct))
            }
        }
    }
}
