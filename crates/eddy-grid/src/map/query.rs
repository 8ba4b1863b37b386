//! Reads: point lookups, scans, and predicate queries with indexes,
//! paging and aggregations.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::events::Matcher;
use crate::keyhash::key_hash;
use crate::partition::{SlotRef, NEVER};
use crate::query::{
    json_total_cmp, plan, Accumulator, Aggregation, AttrPath, Attributes, IndexType, PartIndex,
    Predicate, Scalar,
};

use super::{Extractors, GridKey, GridValue, MapInner};

/// Attributes of one entry, converting key and value to JSON only when a
/// path needs them.
pub(crate) struct EntryAttrs<'a, K, V> {
    key: &'a K,
    value: &'a V,
    extractors: &'a Extractors<V>,
    key_json: OnceCell<Option<Value>>,
    value_json: OnceCell<Option<Value>>,
}

impl<'a, K: Serialize, V: Serialize> EntryAttrs<'a, K, V> {
    pub(crate) fn new(key: &'a K, value: &'a V, extractors: &'a Extractors<V>) -> Self {
        EntryAttrs {
            key,
            value,
            extractors,
            key_json: OnceCell::new(),
            value_json: OnceCell::new(),
        }
    }

    pub(super) fn scalar(&self, path: &AttrPath) -> Option<Scalar> {
        self.attribute(path).and_then(|v| Scalar::from_json(&v))
    }
}

impl<K: Serialize, V: Serialize> Attributes for EntryAttrs<'_, K, V> {
    fn attribute(&self, path: &AttrPath) -> Option<Cow<'_, Value>> {
        let key_json = || {
            self.key_json
                .get_or_init(|| serde_json::to_value(self.key).ok())
                .as_ref()
        };
        let value_json = || {
            self.value_json
                .get_or_init(|| serde_json::to_value(self.value).ok())
                .as_ref()
        };
        match path.head() {
            crate::query::KEY_ATTRIBUTE => {
                AttrPath::walk(key_json()?, path.tail()).map(Cow::Borrowed)
            }
            crate::query::THIS_ATTRIBUTE => {
                AttrPath::walk(value_json()?, path.tail()).map(Cow::Borrowed)
            }
            head => match self.extractors.get(head) {
                Some(extract) => {
                    let v = extract(self.value);
                    AttrPath::walk(&v, path.tail()).cloned().map(Cow::Owned)
                }
                None => AttrPath::walk(value_json()?, path.segments()).map(Cow::Borrowed),
            },
        }
    }
}

/// How a query will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryPlan {
    /// Every entry is checked.
    FullScan,
    /// Candidates come from the indexes on these attributes.
    Indexes(Vec<String>),
}

/// One page of a query's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<K, V> {
    /// The entries of the page, ordered by key (see [`json_total_cmp`]).
    pub entries: Vec<(K, V)>,
    /// Matching entries over all pages.
    pub total: usize,
}

impl<K: GridKey, V: GridValue> MapInner<K, V> {
    /// Applies `read` to the live value of `key` under its partition's read lock.
    pub(crate) fn get_with<R>(&self, key: &K, read: impl FnOnce(&V) -> R) -> Option<R> {
        let (h, p) = self.locate(key);
        let part = &self.parts[p];
        let data = part.data.read();
        if !data.has_meta() {
            // Nothing in a plain partition expires or is tracked: one probe.
            return match data.find_value(h, key) {
                Some(v) => {
                    let r = read(v);
                    part.hits.fetch_add(1, Ordering::Relaxed);
                    Some(r)
                }
                None => {
                    part.misses.fetch_add(1, Ordering::Relaxed);
                    None
                }
            };
        }
        let Some(at) = data.find(h, key) else {
            part.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let slot = data.slot(at);
        let meta = slot.meta.expect("a partition with metadata");
        let access = if meta.may_expire() {
            // Expiry needs the true time.
            let now = self.now().get();
            if meta.expired(now) {
                drop(data);
                self.expire_key(p, h, key);
                part.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            (self.track_access || meta.max_idle_ms != 0).then_some(now)
        } else if self.track_access {
            // The entry cannot expire, so only eviction reads its access
            // time: the map's latest clock reading will do (see
            // `MapInner::recent_ms`) and saves reading the clock.
            Some(self.recent_ms.load(Ordering::Relaxed))
        } else {
            None
        };
        meta.touch(access, self.lfu);
        part.hits.fetch_add(1, Ordering::Relaxed);
        Some(read(slot.value))
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.get_with(key, V::clone)
    }

    /// Calls `visit` on every live entry, one partition at a time.
    pub(super) fn for_each_live(&self, mut visit: impl FnMut(&SlotRef<'_, K, V>)) {
        let now = self.clock.now_ms();
        for part in self.parts.iter() {
            let data = part.data.read();
            for slot in data.slots() {
                if slot.live(now) {
                    visit(&slot);
                }
            }
        }
    }

    /// Calls `visit` on every live entry matching `pred`, using indexes
    /// where the planner finds one.
    pub(super) fn for_each_match(
        &self,
        pred: &Predicate,
        mut visit: impl FnMut(&SlotRef<'_, K, V>, &EntryAttrs<'_, K, V>),
    ) {
        let plan = plan(pred, &self.index_defs.read());
        let extractors = self.extractors.read().clone();
        let now = self.clock.now_ms();
        let mut check = |slot: SlotRef<'_, K, V>| {
            if !slot.live(now) {
                return;
            }
            let attrs = EntryAttrs::new(slot.key, slot.value, &extractors);
            if pred.matches(&attrs) {
                visit(&slot, &attrs);
            }
        };
        let mut positions = Vec::new();
        for part in self.parts.iter() {
            let data = part.data.read();
            match &plan {
                None => data.slots().for_each(&mut check),
                Some(plan) => {
                    let mut keys = Vec::new();
                    plan.candidates(&data.indexes, &mut keys);
                    positions.clear();
                    positions.extend(keys.into_iter().filter_map(|k| data.find(key_hash(k), k)));
                    // An `or` or an `in` may name one entry twice.
                    positions.sort_unstable();
                    positions.dedup();
                    positions.iter().for_each(|&at| check(data.slot(at)));
                }
            }
        }
    }

    pub(crate) fn explain(&self, pred: &Predicate) -> QueryPlan {
        let defs = self.index_defs.read();
        match plan(pred, &defs) {
            None => QueryPlan::FullScan,
            Some(p) => {
                let mut names: Vec<String> = p
                    .indexes()
                    .into_iter()
                    .map(|i| defs[i].0.to_string())
                    .collect();
                names.dedup();
                QueryPlan::Indexes(names)
            }
        }
    }

    pub(crate) fn entries_where(&self, pred: &Predicate) -> Vec<(K, V)> {
        let mut out = Vec::new();
        self.for_each_match(pred, |s, _| out.push((s.key.clone(), s.value.clone())));
        out
    }

    pub(crate) fn page(&self, pred: &Predicate, page_size: usize, page: usize) -> Page<K, V> {
        let mut all: Vec<(Value, K, V)> = Vec::new();
        self.for_each_match(pred, |s, _| {
            let kj = serde_json::to_value(s.key).unwrap_or(Value::Null);
            all.push((kj, s.key.clone(), s.value.clone()));
        });
        all.sort_by(|a, b| json_total_cmp(&a.0, &b.0));
        let total = all.len();
        let start = page.saturating_mul(page_size).min(total);
        let end = start.saturating_add(page_size).min(total);
        Page {
            entries: all.drain(start..end).map(|(_, k, v)| (k, v)).collect(),
            total,
        }
    }

    pub(crate) fn aggregate(&self, agg: &Aggregation, pred: Option<&Predicate>) -> Value {
        let mut acc = Accumulator::new(agg);
        self.for_each_match(pred.unwrap_or(&Predicate::True), |_, attrs| acc.add(attrs));
        acc.finish()
    }

    pub(super) fn matcher(&self) -> Matcher<K, V> {
        let extractors = Arc::clone(&self.extractors);
        Arc::new(move |pred: &Predicate, k: &K, v: &V| {
            let ex = extractors.read().clone();
            pred.matches(&EntryAttrs::new(k, v, &ex))
        })
    }

    pub(super) fn add_index(&self, path: AttrPath, kind: IndexType) {
        let mut defs = self.index_defs.write();
        if defs.iter().any(|(p, _)| *p == path) {
            return;
        }
        let extractors = self.extractors.read().clone();
        for part in self.parts.iter() {
            let mut data = part.data.write();
            let mut index = PartIndex::new(path.clone(), kind);
            for slot in data.slots() {
                if let Some(s) = EntryAttrs::new(slot.key, slot.value, &extractors).scalar(&path) {
                    index.insert(s, slot.key.clone());
                }
            }
            data.indexes.push(index);
        }
        defs.push((path, kind));
    }

    /// Entries with their remaining TTL and max-idle, for snapshots.
    pub(crate) fn for_each_with_expiry(
        &self,
        mut visit: impl FnMut(&K, &V, Option<u64>, Option<u32>),
    ) {
        let now = self.clock.now_ms();
        self.for_each_live(|s| {
            let (deadline_ms, max_idle_ms) = s
                .meta
                .map_or((NEVER, 0), |m| (m.deadline_ms, m.max_idle_ms));
            let ttl = (deadline_ms != NEVER).then(|| deadline_ms.saturating_sub(now).max(1));
            let idle = (max_idle_ms != 0).then_some(max_idle_ms);
            visit(s.key, s.value, ttl, idle)
        });
    }
}
