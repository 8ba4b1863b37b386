//! Queries: the textual syntax on maps, indexes against full scans, aggregations, paging.

use std::sync::Arc;

use eddy_grid::query::{AttrPath, CompareOp};
use eddy_grid::{
    Aggregation, Grid, GridConfig, GridError, IndexType, ManualClock, Map, Predicate, QueryPlan,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

fn grid() -> Grid {
    Grid::with_config(
        GridConfig::default()
            .with_partitions(5)
            .with_clock(Arc::new(ManualClock::new()))
            .with_sweep_interval(None),
    )
    .unwrap()
}

fn orders(grid: &Grid) -> Map<u32, Value> {
    let m = grid.map::<u32, Value>("orders").unwrap();
    let countries = ["DE", "FR", "US"];
    for i in 0..30u32 {
        m.put(
            i,
            json!({
                "amount": i * 10,
                "country": countries[i as usize % 3],
                "name": format!("{}-{i}", if i % 2 == 0 { "Alice" } else { "Bob" }),
                "address": { "zip": 10_000 + i },
            }),
        );
    }
    m
}

fn keys(mut v: Vec<u32>) -> Vec<u32> {
    v.sort();
    v
}

#[test]
fn when_querying_with_text_then_each_operator_selects_the_right_entries() {
    let g = grid();
    let m = orders(&g);
    let q = |text: &str| keys(m.query(text).unwrap().into_iter().map(|(k, _)| k).collect());
    assert_eq!(q("amount > 250 and country = 'DE'"), vec![27]);
    assert_eq!(q("amount between 10 and 30"), vec![1, 2, 3]);
    assert_eq!(q("country in ('FR', 'US') and amount < 30"), vec![1, 2]);
    assert_eq!(q("name like 'Bob-1_'"), vec![11, 13, 15, 17, 19]);
    assert_eq!(q("name regex 'Alice-2[0-4]'"), vec![20, 22, 24]);
    assert_eq!(q("not (amount >= 30) and address.zip != 10001"), vec![0, 2]);
    assert_eq!(q("__key <= 1 or __key = 29"), vec![0, 1, 29]);
    assert_eq!(q("missing = 1"), Vec::<u32>::new());
    assert_eq!(
        q("country = 5"),
        Vec::<u32>::new(),
        "a number never equals a string"
    );
    let err = m.query("amount >> 5").unwrap_err();
    match err {
        GridError::Parse(e) => assert_eq!(e.position, 8, "{e}"),
        other => panic!("{other}"),
    }
}

#[test]
fn when_indexes_exist_then_queries_use_them_and_track_updates() {
    let g = grid();
    let m = orders(&g);
    m.add_index("country", IndexType::Hash).unwrap();
    m.add_index("amount", IndexType::Sorted).unwrap();
    let p = Predicate::parse("country = 'DE' and amount > 100").unwrap();
    assert_eq!(m.explain(&p), QueryPlan::Indexes(vec!["country".into()]));
    let range = Predicate::parse("amount > 100").unwrap();
    assert_eq!(m.explain(&range), QueryPlan::Indexes(vec!["amount".into()]));
    assert_eq!(
        m.explain(&Predicate::parse("name like 'A%'").unwrap()),
        QueryPlan::FullScan
    );
    assert_eq!(keys(m.keys_where(&p)), vec![12, 15, 18, 21, 24, 27]);
    m.put(12, json!({"amount": 5, "country": "DE"}));
    m.remove(&15);
    m.execute_on_key(&18, |e| {
        e.set_value(json!({"amount": 500, "country": "FR"}))
    });
    assert_eq!(keys(m.keys_where(&p)), vec![21, 24, 27]);
    m.clear();
    assert!(m.keys_where(&p).is_empty());
}

#[test]
fn when_extractor_is_registered_then_queries_and_indexes_read_it() {
    let g = grid();
    let m = orders(&g);
    m.add_extractor("big", |v: &Value| {
        json!(v["amount"].as_u64().unwrap_or(0) >= 200)
    });
    m.add_index("big", IndexType::Hash).unwrap();
    let p = Predicate::eq("big", true).unwrap();
    assert_eq!(m.explain(&p), QueryPlan::Indexes(vec!["big".into()]));
    assert_eq!(m.keys_where(&p).len(), 10);
}

#[test]
fn when_aggregating_then_results_match_the_selected_entries() {
    let g = grid();
    let m = orders(&g);
    let de = Predicate::parse("country = 'DE'").unwrap();
    let agg = |a: &str, p: Option<&Predicate>| m.aggregate(&Aggregation::parse(a).unwrap(), p);
    assert_eq!(agg("count", None), json!(30));
    assert_eq!(agg("count", Some(&de)), json!(10));
    assert_eq!(agg("sum(amount)", Some(&de)), json!(1350));
    assert_eq!(agg("avg(amount)", Some(&de)), json!(135.0));
    assert_eq!(agg("min(amount)", Some(&de)), json!(0));
    assert_eq!(agg("max(name)", None), json!("Bob-9"));
    assert_eq!(agg("distinct(country)", None), json!(["DE", "FR", "US"]));
    assert_eq!(agg("avg(nothing)", None), Value::Null);
    assert!(Aggregation::parse("median(amount)").is_err());
}

#[test]
fn when_paging_then_pages_are_stable_disjoint_and_cover_all_matches() {
    let g = grid();
    let m = orders(&g);
    let p = Predicate::parse("amount >= 50").unwrap();
    let mut seen = Vec::new();
    for page in 0..4 {
        let pg = m.page(&p, 7, page);
        assert_eq!(pg.total, 25);
        assert_eq!(pg, m.page(&p, 7, page), "same page twice");
        seen.extend(pg.entries.into_iter().map(|(k, _)| k));
    }
    assert_eq!(
        seen,
        (5..30).collect::<Vec<_>>(),
        "ordered by key, no gaps or repeats"
    );
    assert!(m.page(&p, 7, 99).entries.is_empty());
}

// ----- property: indexed queries equal full scans ---------------------------

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..8).prop_map(Value::from),
        (0i64..8).prop_map(|i| Value::from(i as f64 + 0.5)),
        prop::sample::select(vec!["a", "b", "c", "ab"]).prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
    ]
}

fn arb_record() -> impl Strategy<Value = Value> {
    (arb_value(), prop::option::of(arb_value()), arb_value()).prop_map(|(x, y, z)| {
        let mut o = serde_json::Map::new();
        o.insert("x".into(), x);
        if let Some(y) = y {
            o.insert("y".into(), y);
        }
        o.insert("n".into(), json!({ "z": z }));
        Value::Object(o)
    })
}

fn arb_leaf() -> impl Strategy<Value = Predicate> {
    let path = prop::sample::select(vec!["x", "y", "n.z", "__key"]);
    let op = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ]);
    prop_oneof![
        (path.clone(), op, arb_value()).prop_map(|(p, op, value)| Predicate::Compare {
            path: AttrPath::parse(p).unwrap(),
            op,
            value
        }),
        (path.clone(), arb_value(), arb_value()).prop_map(|(p, low, high)| Predicate::Between {
            path: AttrPath::parse(p).unwrap(),
            low,
            high
        }),
        (path.clone(), prop::collection::vec(arb_value(), 1..4)).prop_map(|(p, values)| {
            Predicate::In {
                path: AttrPath::parse(p).unwrap(),
                values,
            }
        }),
        (path, prop::sample::select(vec!["a%", "_", "%b"]))
            .prop_map(|(p, pat)| Predicate::like(p, pat).unwrap()),
    ]
}

fn arb_predicate() -> impl Strategy<Value = Predicate> {
    arb_leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Predicate::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Predicate::Or),
            inner.prop_map(|p| p.not()),
        ]
    })
}

#[derive(Debug, Clone)]
enum Change {
    Put(u32, Value),
    Remove(u32),
}

fn arb_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0u32..40, arb_record()).prop_map(|(k, v)| Change::Put(k, v)),
        1 => (0u32..40).prop_map(Change::Remove),
    ]
}

#[test]
fn when_indexes_answer_a_query_then_results_equal_a_full_scan() {
    // Deterministic: the same cases on every run; proptest prints the
    // minimal failing data and predicate.
    let config = Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = (
        prop::collection::vec(arb_change(), 0..80),
        prop::collection::vec(arb_predicate(), 1..6),
    );
    runner
        .run(&strategy, |(changes, predicates)| {
            let g = grid();
            let plain = g.map::<u32, Value>("plain").unwrap();
            let indexed = g.map::<u32, Value>("indexed").unwrap();
            indexed.add_index("x", IndexType::Sorted).unwrap();
            indexed.add_index("y", IndexType::Hash).unwrap();
            indexed.add_index("__key", IndexType::Sorted).unwrap();
            for (i, c) in changes.iter().enumerate() {
                if i == changes.len() / 2 {
                    indexed.add_index("n.z", IndexType::Sorted).unwrap(); // built over existing data
                }
                for m in [&plain, &indexed] {
                    match c {
                        Change::Put(k, v) => {
                            m.put(*k, v.clone());
                        }
                        Change::Remove(k) => {
                            m.remove(k);
                        }
                    }
                }
            }
            indexed.add_index("n.z", IndexType::Sorted).unwrap();
            for p in &predicates {
                let scan = keys(plain.keys_where(p));
                let via_index = keys(indexed.keys_where(p));
                prop_assert_eq!(
                    &scan,
                    &via_index,
                    "predicate {} plan {:?}",
                    p,
                    indexed.explain(p)
                );
            }
            Ok(())
        })
        .unwrap();
}
