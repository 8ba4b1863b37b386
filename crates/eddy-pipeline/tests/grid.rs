//! Grid maps in pipelines: sinks, sources, the journal and enrichment.

use eddy_grid::{Grid, JournalStart, MapConfig, Predicate};
use eddy_pipeline::grid::MapChange;
use eddy_pipeline::{agg, Pipeline, Sinks, Sources};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use std::time::Duration;

fn eddy() -> Eddy {
    Eddy::new(EddyConfig::with_threads(2))
}

#[test]
fn when_results_written_to_map_then_map_holds_them() {
    let grid = Grid::new();
    let totals = grid.map::<u32, i64>("totals").unwrap();
    let p = Pipeline::new();
    p.read_from(Sources::items((0..1000u32).collect()))
        .grouping_key(|n| n % 10)
        .aggregate(agg::sum_i64(|n: &u32| *n as i64))
        .write_to(Sinks::map(totals.clone()));
    let e = eddy();
    e.submit(p, JobConfig::default()).unwrap().join().unwrap();
    assert_eq!(totals.size(), 10);
    assert_eq!(
        totals.get(&3),
        Some((0..1000).filter(|n| n % 10 == 3).sum())
    );
}

#[test]
fn when_map_update_sink_then_entries_merge_per_key() {
    let grid = Grid::new();
    let counts = grid.map::<String, u64>("counts").unwrap();
    let p = Pipeline::new();
    let words = ["a", "b", "a", "c", "a"].map(String::from).to_vec();
    p.read_from(Sources::items(words))
        .write_to(Sinks::map_update(
            counts.clone(),
            |w: &String| w.clone(),
            |entry, _w| {
                let next = entry.value().copied().unwrap_or(0) + 1;
                entry.set_value(next);
            },
        ));
    let e = eddy();
    e.submit(p, JobConfig::default().parallelism(3))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(counts.get(&"a".to_string()), Some(3));
    assert_eq!(counts.get(&"c".to_string()), Some(1));
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Account {
    owner: String,
    country: String,
    limit: i64,
}

#[test]
fn when_map_source_has_predicate_then_only_matching_entries_flow() {
    let grid = Grid::new();
    let accounts = grid.map::<u32, Account>("accounts").unwrap();
    for i in 0..100u32 {
        let country = if i % 4 == 0 { "DE" } else { "FR" };
        accounts.put(
            i,
            Account {
                owner: format!("o{i}"),
                country: country.into(),
                limit: i as i64,
            },
        );
    }
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    let predicate = Predicate::parse("country = 'DE' and limit >= 50").unwrap();
    p.read_from(Sources::map(accounts, Some(predicate)))
        .map(|(k, _)| k)
        .write_to(sink);
    let e = eddy();
    e.submit(p, JobConfig::default()).unwrap().join().unwrap();
    let mut keys = out.take();
    keys.sort();
    assert_eq!(keys, (50..100).filter(|i| i % 4 == 0).collect::<Vec<u32>>());
}

#[test]
fn when_events_enriched_from_map_then_lookup_sees_live_values() {
    let grid = Grid::new();
    let accounts = grid.map::<u32, Account>("accounts").unwrap();
    accounts.put(
        1,
        Account {
            owner: "Ada".into(),
            country: "DE".into(),
            limit: 100,
        },
    );
    accounts.put(
        2,
        Account {
            owner: "Bob".into(),
            country: "FR".into(),
            limit: 10,
        },
    );
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::items(vec![(1u32, 50i64), (2, 50), (3, 5)]))
        .map_using_map(
            accounts,
            |t| t.0,
            |t, account| account.map(|a| (a.owner.clone(), t.1 > a.limit)),
        )
        .write_to(sink);
    let e = eddy();
    e.submit(p, JobConfig::default()).unwrap().join().unwrap();
    let mut got = out.take();
    got.sort();
    assert_eq!(
        got,
        vec![("Ada".to_string(), false), ("Bob".to_string(), true)]
    );
}

#[test]
fn when_map_changes_then_journal_source_streams_them() {
    let grid = Grid::new();
    let prices = grid
        .map_with_config::<u32, i64>("prices", MapConfig::default().with_journal(10_000))
        .unwrap();
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::map_journal(prices.clone(), JournalStart::Oldest))
        .write_to(sink);
    let e = eddy();
    let job = e.submit(p, JobConfig::default()).unwrap();
    for i in 0..100u32 {
        prices.put(i % 10, i as i64);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while out.len() < 100 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    job.cancel();
    let _ = job.join();
    let changes = out.take();
    assert_eq!(changes.len(), 100, "every put is one change");
    assert!(changes.iter().all(|c| matches!(c, MapChange::Event(_))));
}
