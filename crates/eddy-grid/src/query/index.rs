//! Per-partition attribute indexes, and the planner that picks one for a predicate.
//!
//! Each partition keeps its own indexes next to its entries and updates them
//! under the partition's write lock, so an index is always consistent with
//! the data it sits beside and indexing adds no lock of its own. A query
//! asks each partition's index for candidate keys and then checks every
//! candidate against the whole predicate, so an index only ever narrows the
//! scan: results equal a full scan by construction, as long as an index
//! lookup returns a superset of the entries matching the indexed condition.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::ops::Bound;

use hashbrown::{HashMap, HashSet};
use serde_json::Value;

use super::predicate::{AttrPath, CompareOp, Predicate};
use super::value::Scalar;

/// The kind of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IndexType {
    /// Equality and `in` lookups.
    Hash,
    /// Equality, `in`, ranges (`<`, `<=`, `>`, `>=`, `between`).
    Sorted,
}

enum Store<K> {
    Hash(HashMap<Scalar, HashSet<K>>),
    Sorted(BTreeMap<Scalar, HashSet<K>>),
}

/// One index of one partition: attribute value -> keys with that value.
pub(crate) struct PartIndex<K> {
    /// The indexed attribute.
    pub(crate) path: AttrPath,
    store: Store<K>,
}

impl<K> PartIndex<K> {
    pub(crate) fn clear(&mut self) {
        match &mut self.store {
            Store::Hash(m) => m.clear(),
            Store::Sorted(m) => m.clear(),
        }
    }
}

impl<K: Eq + Hash + Clone> PartIndex<K> {
    pub(crate) fn new(path: AttrPath, kind: IndexType) -> Self {
        PartIndex {
            path,
            store: match kind {
                IndexType::Hash => Store::Hash(HashMap::new()),
                IndexType::Sorted => Store::Sorted(BTreeMap::new()),
            },
        }
    }

    pub(crate) fn insert(&mut self, value: Scalar, key: K) {
        match &mut self.store {
            Store::Hash(m) => m.entry(value).or_default().insert(key),
            Store::Sorted(m) => m.entry(value).or_default().insert(key),
        };
    }

    pub(crate) fn remove(&mut self, value: &Scalar, key: &K) {
        let emptied = match &mut self.store {
            Store::Hash(m) => m.get_mut(value).map(|s| {
                s.remove(key);
                s.is_empty()
            }),
            Store::Sorted(m) => m.get_mut(value).map(|s| {
                s.remove(key);
                s.is_empty()
            }),
        };
        if emptied == Some(true) {
            match &mut self.store {
                Store::Hash(m) => m.remove(value),
                Store::Sorted(m) => m.remove(value),
            };
        }
    }

    /// Keys whose indexed attribute satisfies `cond` (exactly, within the
    /// semantics of `compare`).
    fn lookup<'a>(&'a self, cond: &Cond, out: &mut Vec<&'a K>) {
        match (cond, &self.store) {
            (Cond::Eq(values), Store::Hash(m)) => {
                for v in values {
                    out.extend(m.get(v).into_iter().flatten());
                }
            }
            (Cond::Eq(values), Store::Sorted(m)) => {
                for v in values {
                    out.extend(m.get(v).into_iter().flatten());
                }
            }
            (Cond::Range { low, high, kind }, Store::Sorted(m)) => {
                if !range_is_valid(low, high) {
                    return;
                }
                for (k, keys) in m.range((low.clone(), high.clone())) {
                    if k.same_kind(kind) {
                        out.extend(keys);
                    }
                }
            }
            (Cond::Range { .. }, Store::Hash(_)) => {
                unreachable!("the planner only plans ranges on sorted indexes")
            }
        }
    }
}

fn range_is_valid(low: &Bound<Scalar>, high: &Bound<Scalar>) -> bool {
    match (low, high) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

/// A condition an index can answer.
#[derive(Debug, Clone)]
enum Cond {
    Eq(Vec<Scalar>),
    Range {
        low: Bound<Scalar>,
        high: Bound<Scalar>,
        /// Ranges only match values of the bound's kind.
        kind: Scalar,
    },
}

/// How a query uses the map's indexes: a set of candidate keys.
#[derive(Debug, Clone)]
pub(crate) enum IndexPlan {
    /// Look up index number `index` (in the map's index list).
    Lookup { index: usize, cond: CondBox },
    /// The union of several lookups (an `or` of indexable terms).
    Union(Vec<IndexPlan>),
}

/// Opaque wrapper so the condition type stays private to this module.
#[derive(Debug, Clone)]
pub(crate) struct CondBox(Cond);

impl IndexPlan {
    /// The attribute paths (as index numbers) the plan reads.
    pub(crate) fn indexes(&self) -> Vec<usize> {
        match self {
            IndexPlan::Lookup { index, .. } => vec![*index],
            IndexPlan::Union(ps) => ps.iter().flat_map(|p| p.indexes()).collect(),
        }
    }

    /// Candidate keys in one partition, given its indexes; may repeat keys.
    pub(crate) fn candidates<'a, K: Eq + Hash + Clone>(
        &self,
        indexes: &'a [PartIndex<K>],
        out: &mut Vec<&'a K>,
    ) {
        match self {
            IndexPlan::Lookup { index, cond } => indexes[*index].lookup(&cond.0, out),
            IndexPlan::Union(ps) => ps.iter().for_each(|p| p.candidates(indexes, out)),
        }
    }
}

fn scalar(v: &Value) -> Option<Scalar> {
    Scalar::from_json(v)
}

/// Picks indexes for `pred`; `defs` lists the map's indexes in order.
/// `None` means a full scan.
pub(crate) fn plan(pred: &Predicate, defs: &[(AttrPath, IndexType)]) -> Option<IndexPlan> {
    let find = |path: &AttrPath, sorted_needed: bool| {
        defs.iter()
            .position(|(p, t)| p == path && (!sorted_needed || *t == IndexType::Sorted))
    };
    let lookup = |index: usize, cond: Cond| IndexPlan::Lookup {
        index,
        cond: CondBox(cond),
    };
    match pred {
        Predicate::Compare { path, op, value } => {
            let s = scalar(value)?;
            match op {
                CompareOp::Eq => Some(lookup(find(path, false)?, Cond::Eq(vec![s]))),
                CompareOp::Ne => None,
                _ => {
                    let index = find(path, true)?;
                    let (low, high) = match op {
                        CompareOp::Lt => {
                            (Bound::Included(s.kind_min()), Bound::Excluded(s.clone()))
                        }
                        CompareOp::Le => {
                            (Bound::Included(s.kind_min()), Bound::Included(s.clone()))
                        }
                        CompareOp::Gt => (Bound::Excluded(s.clone()), Bound::Unbounded),
                        _ => (Bound::Included(s.clone()), Bound::Unbounded),
                    };
                    Some(lookup(index, Cond::Range { low, high, kind: s }))
                }
            }
        }
        Predicate::Between { path, low, high } => {
            let (l, h) = (scalar(low)?, scalar(high)?);
            if !l.same_kind(&h) {
                return None;
            }
            let index = find(path, true)?;
            Some(lookup(
                index,
                Cond::Range {
                    low: Bound::Included(l.clone()),
                    high: Bound::Included(h),
                    kind: l,
                },
            ))
        }
        Predicate::In { path, values } => {
            let scalars: Option<Vec<Scalar>> = values.iter().map(scalar).collect();
            Some(lookup(find(path, false)?, Cond::Eq(scalars?)))
        }
        Predicate::And(ps) => {
            // Prefer an equality lookup (usually the most selective), then
            // any indexable conjunct; the other conjuncts filter candidates.
            let plans: Vec<IndexPlan> = ps.iter().filter_map(|p| plan(p, defs)).collect();
            let eq = plans.iter().position(|p| {
                matches!(
                    p,
                    IndexPlan::Lookup {
                        cond: CondBox(Cond::Eq(_)),
                        ..
                    }
                )
            });
            let mut plans = plans;
            match eq {
                Some(i) => Some(plans.swap_remove(i)),
                None => plans.into_iter().next(),
            }
        }
        Predicate::Or(ps) => {
            let plans: Option<Vec<IndexPlan>> = ps.iter().map(|p| plan(p, defs)).collect();
            Some(IndexPlan::Union(plans?))
        }
        Predicate::True | Predicate::Like { .. } | Predicate::Regex { .. } | Predicate::Not(_) => {
            None
        }
    }
}
