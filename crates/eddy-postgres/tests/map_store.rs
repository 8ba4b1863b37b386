//! `PostgresMapStore` behind a grid map: read-through, write-through,
//! write-behind coalescing, and an outage with nothing lost.

use eddy_grid::{Grid, InitialLoad, StoreConfig, StoredMap, WriteMode};
use eddy_postgres::PostgresMapStore;
use eddy_testkit::postgres::TestPg;
use std::time::Duration;

fn store(pg: &TestPg) -> PostgresMapStore<String, i64> {
    PostgresMapStore::<String, i64>::create_table(&pg.url(), "kv").unwrap();
    PostgresMapStore::new(&pg.url(), "kv").unwrap()
}

#[test]
fn when_key_misses_then_it_reads_through_and_writes_go_through() {
    let pg = TestPg::start();
    let store = store(&pg);
    pg.psql(r#"INSERT INTO kv VALUES ('"a"', '1'), ('"b"', '2')"#);
    let grid = Grid::new();
    let map = StoredMap::new(grid.map("m").unwrap(), store, StoreConfig::default()).unwrap();
    assert_eq!(map.map().size(), 0, "lazy: nothing loaded up front");
    assert_eq!(map.get(&"a".to_string()).unwrap(), Some(1));
    assert_eq!(
        map.map().get(&"a".to_string()),
        Some(1),
        "cached after the miss"
    );
    assert_eq!(map.get(&"zz".to_string()).unwrap(), None);
    let both = map.get_all(&["a".into(), "b".into(), "c".into()]).unwrap();
    assert_eq!(both.len(), 2);

    map.put("c".into(), 3).unwrap();
    assert_eq!(pg.psql(r#"SELECT value FROM kv WHERE key = '"c"'"#), "3");
    map.remove(&"a".to_string()).unwrap();
    assert_eq!(pg.psql(r#"SELECT count(*) FROM kv WHERE key = '"a"'"#), "0");
}

#[test]
fn when_the_table_does_not_fit_then_the_store_names_the_column() {
    let pg = TestPg::start();
    pg.psql("CREATE TABLE kv (key jsonb PRIMARY KEY, val jsonb)");
    let err = PostgresMapStore::<String, i64>::new(&pg.url(), "kv")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("column 'value'"), "{err}");

    pg.psql("ALTER TABLE kv RENAME COLUMN val TO value; ALTER TABLE kv ALTER COLUMN key TYPE text");
    let err = PostgresMapStore::<String, i64>::new(&pg.url(), "kv")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("column 'key'") && err.contains("(text)"),
        "{err}"
    );
}

#[test]
fn when_one_key_is_updated_many_times_then_write_behind_writes_it_once() {
    let pg = TestPg::start();
    let store = store(&pg);
    let grid = Grid::new();
    // A delay longer than the test: only the explicit flush writes.
    let config = StoreConfig::default()
        .write(WriteMode::Behind {
            delay: Duration::from_secs(3600),
            batch_size: 1_000,
        })
        .initial_load(InitialLoad::Lazy);
    let map = StoredMap::new(grid.map("m").unwrap(), store, config).unwrap();
    for i in 0..1_000 {
        map.put("hot".into(), i).unwrap();
    }
    map.put("gone".into(), 1).unwrap();
    map.remove(&"gone".to_string()).unwrap();
    assert_eq!(
        map.get(&"gone".to_string()).unwrap(),
        None,
        "a queued delete hides the row"
    );
    assert_eq!(map.store_stats().pending, 2);
    map.flush_store().unwrap();
    let stats = map.store_stats();
    assert_eq!((stats.pending, stats.failed), (0, 0));
    assert!(
        stats.calls <= 2,
        "1,001 writes coalesced into {} calls",
        stats.calls
    );
    assert_eq!(
        pg.psql(r#"SELECT value FROM kv WHERE key = '"hot"'"#),
        "999"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM kv"), "1");
}

#[test]
fn when_postgres_is_down_then_write_behind_keeps_writes_and_loses_nothing() {
    let pg = TestPg::start();
    let store = store(&pg);
    let grid = Grid::new();
    let config = StoreConfig::default()
        .write(WriteMode::Behind {
            delay: Duration::from_millis(20),
            batch_size: 50,
        })
        .initial_load(InitialLoad::Lazy);
    let map = StoredMap::new(grid.map("m").unwrap(), store, config).unwrap();
    for i in 0..100 {
        map.put(format!("k{i}"), i).unwrap();
    }
    map.flush_store().unwrap();

    pg.stop();
    for i in 50..200 {
        map.put(format!("k{i}"), i * 10).unwrap();
    }
    // Let the write-behind thread try (and fail) a few rounds.
    std::thread::sleep(Duration::from_millis(300));
    let during = map.store_stats();
    assert!(during.failed > 0, "failed writes are counted: {during:?}");
    assert!(during.pending > 0, "failed writes stay queued: {during:?}");
    assert!(
        map.flush_store().is_err(),
        "a flush during the outage reports it"
    );

    pg.start_server();
    map.flush_store().unwrap();
    assert_eq!(map.store_stats().pending, 0);
    assert_eq!(pg.psql("SELECT count(*) FROM kv"), "200");
    for i in 0..200 {
        let expected = if i < 50 { i } else { i * 10 };
        let got = pg.psql(&format!(r#"SELECT value FROM kv WHERE key = '"k{i}"'"#));
        assert_eq!(got, expected.to_string(), "key k{i}");
    }

    // Eager initial load into a fresh grid sees everything.
    drop(map);
    let grid = Grid::new();
    let config = StoreConfig::default()
        .write(WriteMode::Through)
        .initial_load(InitialLoad::Eager);
    let reloaded = StoredMap::new(
        grid.map::<String, i64>("m").unwrap(),
        PostgresMapStore::new(&pg.url(), "kv").unwrap(),
        config,
    )
    .unwrap();
    assert_eq!(reloaded.map().size(), 200);
}
