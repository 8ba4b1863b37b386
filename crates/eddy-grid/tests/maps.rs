//! Map operations, expiry, eviction, listeners, journal, stats and the JSON view.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use eddy_grid::{
    EntryEventKind, EventFilter, EvictionPolicy, Expiry, Grid, GridConfig, GridError, JournalStart,
    ManualClock, MapConfig, MapEvent, Predicate,
};
use serde_json::json;

fn grid(partitions: usize) -> (Grid, ManualClock) {
    let clock = ManualClock::new();
    let grid = Grid::with_config(
        GridConfig::default()
            .with_partitions(partitions)
            .with_clock(Arc::new(clock.clone()))
            .with_sweep_interval(None),
    )
    .unwrap();
    (grid, clock)
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn when_using_basic_operations_then_results_follow_map_semantics() {
    let (grid, _) = grid(8);
    let m = grid.map::<String, i64>("basic").unwrap();
    assert_eq!(m.put("a".into(), 1), None);
    assert_eq!(m.put("a".into(), 2), Some(1));
    m.set("b".into(), 3);
    assert_eq!(m.put_if_absent("b".into(), 9), Some(3));
    assert_eq!(m.put_if_absent("c".into(), 4), None);
    assert_eq!(m.replace(&"zz".into(), 1), None);
    assert_eq!(m.replace(&"c".into(), 5), Some(4));
    assert!(!m.replace_if_equal(&"c".into(), &4, 6));
    assert!(m.replace_if_equal(&"c".into(), &5, 6));
    assert_eq!(m.get(&"c".into()), Some(6));
    assert!(m.contains_key(&"a".into()));
    assert_eq!(m.size(), 3);
    assert_eq!(m.remove(&"a".into()), Some(2));
    assert!(!m.delete(&"a".into()));
    assert!(m.delete(&"b".into()));
    m.put_all((0..10).map(|i| (format!("k{i}"), i)));
    let got = m.get_all(&["k1".to_string(), "nope".into(), "k3".into()]);
    assert_eq!(got, vec![("k1".into(), 1), ("k3".into(), 3)]);
    assert_eq!(m.keys().len(), 11);
    assert_eq!(m.values().iter().sum::<i64>(), 45 + 6);
    assert_eq!(m.entries().len(), 11);
    assert_eq!(m.clear(), 11);
    assert!(m.is_empty());
}

#[test]
fn when_ttl_passes_then_entry_is_never_returned() {
    let (grid, clock) = grid(4);
    let m = grid.map::<u32, u32>("ttl").unwrap();
    m.put_ttl(1, 10, Duration::from_millis(500));
    m.put(2, 20);
    clock.advance(Duration::from_millis(499));
    assert_eq!(m.get(&1), Some(10));
    clock.advance(Duration::from_millis(1));
    assert_eq!(m.get(&1), None);
    assert_eq!(m.entries(), vec![(2, 20)]);
    assert_eq!(m.stats().expirations, 1);
}

#[test]
fn when_map_has_default_ttl_then_entries_expire_unless_told_never() {
    let (grid, clock) = grid(4);
    let cfg = MapConfig::default().with_ttl(Duration::from_secs(10));
    let m = grid
        .map_with_config::<u32, u32>("default-ttl", cfg)
        .unwrap();
    m.put(1, 1);
    m.put_with_expiry(2, 2, Expiry::never());
    clock.advance(Duration::from_secs(5));
    m.put(1, 11); // a write restarts the TTL
    clock.advance(Duration::from_secs(6));
    assert_eq!(m.get(&1), Some(11));
    clock.advance(Duration::from_secs(5));
    assert_eq!(m.get(&1), None);
    assert_eq!(m.get(&2), Some(2));
}

#[test]
fn when_max_idle_passes_without_access_then_entry_expires() {
    let (grid, clock) = grid(4);
    let cfg = MapConfig::default().with_max_idle(Duration::from_secs(3));
    let m = grid.map_with_config::<u32, u32>("idle", cfg).unwrap();
    m.put(1, 1);
    m.put(2, 2);
    m.put_with_expiry(
        3,
        3,
        Expiry {
            ttl: None,
            max_idle: Some(Duration::from_secs(20)),
        },
    );
    for _ in 0..5 {
        clock.advance(Duration::from_secs(2));
        assert_eq!(m.get(&1), Some(1), "reads keep the entry alive");
    }
    assert_eq!(m.get(&2), None);
    assert_eq!(m.get(&3), Some(3));
    clock.advance(Duration::from_secs(19));
    assert_eq!(m.get(&3), Some(3), "the read above restarted its idle time");
    clock.advance(Duration::from_secs(20));
    assert_eq!(m.get(&3), None);
}

#[test]
fn when_sweeper_runs_then_expired_entries_leave_and_stats_count_them() {
    let (grid, clock) = grid(4);
    let m = grid.map::<u32, u32>("sweep").unwrap();
    for i in 0..2_000 {
        m.put_ttl(i, i, Duration::from_secs(1 + (i % 2) as u64));
    }
    clock.advance(Duration::from_millis(1_500));
    assert_eq!(m.size(), 2_000, "nothing removed before a sweep");
    grid.run_maintenance();
    assert_eq!(m.size(), 1_000);
    assert_eq!(m.stats().expirations, 1_000);
    clock.advance(Duration::from_secs(1));
    m.evict_expired();
    assert!(m.is_empty());
}

#[test]
fn when_table_grows_then_each_entry_keeps_its_own_expiry() {
    // One partition, so the table grows many times while entries with
    // different deadlines and plain entries are mixed in it.
    let (grid, clock) = grid(1);
    let m = grid.map::<u32, u32>("grow").unwrap();
    for i in 0..5_000u32 {
        match i % 3 {
            0 => m.set(i, i),
            1 => drop(m.put_ttl(i, i, Duration::from_millis(100 + (i % 7) as u64 * 100))),
            _ => drop(m.put_with_expiry(
                i,
                i,
                Expiry {
                    ttl: None,
                    max_idle: Some(Duration::from_millis(400)),
                },
            )),
        }
        if i % 10 == 0 {
            // Removals leave deleted markers that growing clears.
            m.delete(&(i / 2));
        }
    }
    let present: Vec<u32> = (0..5_000).filter(|i| m.get(i).is_some()).collect();
    for step in 1..=8u64 {
        clock.advance(Duration::from_millis(100));
        for &i in &present {
            let ttl_ms = 100 + (i % 7) as u64 * 100;
            let want = match i % 3 {
                0 => true,
                1 => step * 100 < ttl_ms,
                // Read every 100 ms above, so max-idle never passes.
                _ => true,
            };
            assert_eq!(m.get(&i).is_some(), want, "key {i} at {} ms", step * 100);
        }
    }
}

#[test]
fn when_plain_map_gets_a_ttl_entry_then_only_that_entry_expires() {
    let (grid, clock) = grid(2);
    let m = grid.map::<u64, u64>("mixed").unwrap();
    for k in 0..1_000 {
        m.set(k, k);
    }
    m.put_ttl(5, 55, Duration::from_secs(1));
    m.put_ttl(2_000, 1, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    grid.run_maintenance();
    assert_eq!(m.get(&5), None);
    assert_eq!(m.get(&2_000), None);
    assert_eq!(m.size(), 999);
    assert!((0..1_000).filter(|&k| k != 5).all(|k| m.get(&k) == Some(k)));
    assert_eq!(m.stats().expirations, 2);
}

fn evicting_map(
    policy: EvictionPolicy,
    max_entries: usize,
) -> (Grid, ManualClock, eddy_grid::Map<u32, u32>) {
    let (grid, clock) = grid(1);
    let cfg = MapConfig::default().with_eviction(policy, Some(max_entries), None);
    let m = grid.map_with_config("evict", cfg).unwrap();
    (grid, clock, m)
}

#[test]
fn when_max_entries_exceeded_with_lru_then_least_recently_used_goes() {
    let (_g, clock, m) = evicting_map(EvictionPolicy::Lru, 10);
    for i in 0..10 {
        clock.advance(Duration::from_millis(10));
        m.put(i, i);
    }
    clock.advance(Duration::from_millis(10));
    for i in 1..10 {
        m.get(&i); // key 0 is now the least recently used
    }
    clock.advance(Duration::from_millis(10));
    m.put(100, 100);
    assert_eq!(m.size(), 10);
    assert_eq!(m.get(&0), None);
    assert_eq!(m.get(&100), Some(100));
    assert_eq!(m.stats().evictions, 1);
}

#[test]
fn when_lru_entry_is_read_after_a_sweep_then_it_outlives_older_entries() {
    // Reads of LRU entries record the map's latest clock reading (a write's
    // or the sweeper's), not the clock: a read after a sweep must still
    // count as more recent than every write before that sweep.
    // Without the sweep, key 0's read would tie with key 1's write.
    let (grid, clock, m) = evicting_map(EvictionPolicy::Lru, 2);
    for i in 0..2 {
        clock.advance(Duration::from_millis(10));
        m.put(i, i);
    }
    clock.advance(Duration::from_millis(10));
    grid.run_maintenance();
    m.get(&0);
    clock.advance(Duration::from_millis(10));
    m.put(2, 2);
    assert_eq!(m.get(&0), Some(0));
    assert_eq!(m.get(&1), None, "key 1 was the least recently used");
    assert_eq!(m.stats().evictions, 1);
}

#[test]
fn when_max_entries_exceeded_with_lfu_then_least_frequently_used_goes() {
    let (_g, _clock, m) = evicting_map(EvictionPolicy::Lfu, 10);
    for i in 0..10 {
        m.put(i, i);
    }
    for _ in 0..5 {
        for i in 0..10 {
            if i != 7 {
                m.get(&i);
            }
        }
    }
    m.put(100, 100);
    assert_eq!(m.get(&7), None);
    assert_eq!(m.size(), 10);
}

#[test]
fn when_many_puts_with_random_policy_then_size_stays_bounded() {
    let (grid, _) = grid(16);
    let cfg = MapConfig::default().with_eviction(EvictionPolicy::Random, Some(1_000), None);
    let m = grid.map_with_config::<u32, u32>("random", cfg).unwrap();
    for i in 0..20_000 {
        m.put(i, i);
        // Per-partition limits: at most the limit rounded up per partition.
        assert!(m.size() <= 1_000usize.div_ceil(16) * 16);
    }
    assert!(m.stats().evictions >= 19_000 - 8 * 16);
}

#[test]
fn when_max_bytes_exceeded_then_entries_are_evicted() {
    let (grid, _) = grid(2);
    let cfg = MapConfig::default().with_eviction(EvictionPolicy::Lru, None, Some(200_000));
    let m = grid.map_with_config::<u32, String>("bytes", cfg).unwrap();
    for i in 0..1_000 {
        m.put(i, "x".repeat(1_000));
    }
    let s = m.stats();
    assert!(s.bytes <= 200_000, "{s:?}");
    assert!(s.entries > 100 && s.entries < 200, "{s:?}");
}

#[test]
fn when_listener_registered_then_events_arrive_in_order_per_key() {
    let (grid, _) = grid(8);
    let m = grid.map::<u32, u32>("order").unwrap();
    type Seen = Vec<(u32, EntryEventKind, Option<u32>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = Arc::clone(&seen);
    m.add_listener(EventFilter::All, true, move |e| {
        if let MapEvent::Entry(e) = e {
            sink.lock().unwrap().push((e.key, e.kind, e.new_value));
        }
    });
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for round in 0..200u32 {
                    for k in 0..5u32 {
                        m.put(t * 100 + k, round);
                    }
                }
                m.remove(&(t * 100));
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(m.flush_listeners(WAIT));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4 * (200 * 5 + 1));
    for t in 0..4u32 {
        for k in 0..5u32 {
            let key = t * 100 + k;
            let per_key: Vec<_> = seen.iter().filter(|e| e.0 == key).collect();
            assert_eq!(per_key[0].1, EntryEventKind::Added);
            let values: Vec<u32> = per_key.iter().filter_map(|e| e.2).collect();
            assert_eq!(values, (0..200).collect::<Vec<_>>(), "key {key}");
            if k == 0 {
                assert_eq!(per_key.last().unwrap().1, EntryEventKind::Removed);
            }
        }
    }
}

#[test]
fn when_listener_is_slow_then_events_are_dropped_and_counted_without_blocking_writers() {
    let (grid, _) = grid(4);
    let cfg = MapConfig::default().with_listener_buffer(4);
    let m = grid.map_with_config::<u32, u32>("slow", cfg).unwrap();
    let gate = Arc::new(Barrier::new(2));
    let delivered = Arc::new(AtomicUsize::new(0));
    let (g, d) = (Arc::clone(&gate), Arc::clone(&delivered));
    m.add_listener(EventFilter::All, false, move |_| {
        if d.fetch_add(1, Ordering::SeqCst) == 0 {
            g.wait(); // stuck until the writer is done
        }
    });
    for i in 0..100 {
        m.put(i, i);
    }
    gate.wait();
    assert!(m.flush_listeners(WAIT));
    let s = m.stats();
    assert_eq!(
        s.listener_events_dropped + s.listener_events_delivered,
        100,
        "{s:?}"
    );
    assert!(s.listener_events_dropped >= 90, "{s:?}");
}

#[test]
fn when_listener_filters_by_key_or_predicate_then_only_matching_events_arrive() {
    let (grid, _) = grid(4);
    let m = grid.map::<u32, serde_json::Value>("filters").unwrap();
    let by_key: Arc<Mutex<Vec<MapEvent<u32, serde_json::Value>>>> = Arc::default();
    let by_pred: Arc<Mutex<Vec<u32>>> = Arc::default();
    let (a, b) = (Arc::clone(&by_key), Arc::clone(&by_pred));
    m.add_listener(EventFilter::Key(2), false, move |e| {
        a.lock().unwrap().push(e.clone())
    });
    m.add_listener(
        EventFilter::Predicate(Predicate::parse("amount > 10").unwrap()),
        true,
        move |e| {
            if let Some(k) = e.key() {
                b.lock().unwrap().push(*k)
            }
        },
    );
    for i in 0..5u32 {
        m.put(i, json!({ "amount": i * 5 }));
    }
    m.clear();
    assert!(m.flush_listeners(WAIT));
    let by_key = by_key.lock().unwrap();
    assert_eq!(by_key.len(), 2);
    match &by_key[0] {
        MapEvent::Entry(e) => assert!(
            e.key == 2 && e.new_value.is_none(),
            "values were not asked for"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(by_key[1], MapEvent::Cleared { entries: 5 });
    assert_eq!(*by_pred.lock().unwrap(), vec![3, 4]);
}

#[test]
fn when_listener_panics_then_others_still_get_events() {
    let (grid, _) = grid(2);
    let m = grid.map::<u32, u32>("panics").unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    m.add_listener(EventFilter::All, false, |_| panic!("listener bug"));
    let id = m.add_listener(EventFilter::All, false, move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    m.put(1, 1);
    m.put(2, 2);
    assert!(m.flush_listeners(WAIT));
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(m.stats().listener_panics, 2);
    assert!(m.remove_listener(id));
    assert_eq!(m.stats().listeners, 1);
}

#[test]
fn when_journal_overflows_then_reader_learns_how_many_events_it_lost() {
    let (grid, _) = grid(1);
    let m = grid
        .map_with_config::<u32, u32>("journal", MapConfig::default().with_journal(10))
        .unwrap();
    let mut reader = m.journal_reader(JournalStart::Oldest).unwrap();
    for i in 0..5 {
        m.put(i, i);
    }
    let first = reader.poll(100);
    assert_eq!((first.events.len(), first.lost), (5, 0));
    assert_eq!(
        first.events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    for i in 0..25 {
        m.put(i % 3, i);
    }
    let second = reader.poll(100);
    assert_eq!(second.lost, 15, "25 new events, 10 kept");
    assert_eq!(second.events.len(), 10);
    assert_eq!(second.events[0].sequence, 20);
    match &second.events[9].event {
        MapEvent::Entry(e) => assert_eq!(
            (e.kind, e.key, e.old_value, e.new_value),
            (EntryEventKind::Updated, 0, Some(21), Some(24))
        ),
        other => panic!("{other:?}"),
    }
    let mut late = m.journal_reader(JournalStart::Newest).unwrap();
    assert!(late.poll(10).events.is_empty());
    m.remove(&1);
    let only = late.poll(10);
    assert_eq!(only.events.len(), 1);
    assert_eq!(only.lost, 0);
}

#[test]
fn when_map_has_no_journal_then_reader_is_refused_with_advice() {
    let (grid, _) = grid(1);
    let m = grid.map::<u32, u32>("nojournal").unwrap();
    let err = m.journal_reader(JournalStart::Oldest).err().unwrap();
    assert!(err.to_string().contains("journal capacity"), "{err}");
}

#[test]
fn when_entry_processors_run_concurrently_then_updates_are_atomic() {
    let (grid, _) = grid(4);
    let m = grid.map::<u32, u64>("counters").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..1_000u32 {
                    m.execute_on_key(&(i % 7), |e| {
                        let v = e.value().copied().unwrap_or(0);
                        e.set_value(v + 1);
                    });
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let total: u64 = m.values().iter().sum();
    assert_eq!(total, 4_000);
    let removed = m.execute_on_entries(&Predicate::parse("this > 571").unwrap(), |e| {
        e.remove();
        true
    });
    assert_eq!(removed.len(), 6, "keys 0..=5 got 572 each, key 6 got 568");
    let read = m.execute_on_keys(&[6, 99], |e| e.value().copied());
    assert_eq!(read, vec![(6, Some(568)), (99, None)]);
    assert_eq!(m.stats().puts, 4_000);
}

#[test]
fn when_using_json_view_then_typed_maps_are_reachable_and_bad_input_is_an_error() {
    let (grid, _) = grid(4);
    let m = grid.map::<u64, serde_json::Value>("orders").unwrap();
    m.put(1, json!({"amount": 5}));
    let view = grid.json_map("orders").unwrap();
    assert_eq!(view.get(json!(1)).unwrap(), Some(json!({"amount": 5})));
    view.put(json!(2), json!({"amount": 50}), None).unwrap();
    assert_eq!(m.get(&2), Some(json!({"amount": 50})));
    assert!(matches!(view.get(json!("x")), Err(GridError::Json { .. })));
    let (page, total) = view.query(Some("amount > 10"), 10, 0).unwrap();
    assert_eq!((page, total), (vec![(json!(2), json!({"amount": 50}))], 1));
    assert_eq!(view.aggregate("sum(amount)", None).unwrap(), json!(55));
    assert!(matches!(
        view.query(Some("amount >"), 10, 0),
        Err(GridError::Parse(_))
    ));
    assert!(matches!(
        grid.json_map("nope"),
        Err(GridError::NoSuchMap { .. })
    ));
    assert!(matches!(
        grid.map::<String, u64>("orders"),
        Err(GridError::TypeMismatch { .. })
    ));
    let other = MapConfig::default().with_ttl(Duration::from_secs(1));
    assert!(matches!(
        grid.map_with_config::<u64, serde_json::Value>("orders", other),
        Err(GridError::ConfigConflict { .. })
    ));
    assert_eq!(grid.map_names(), vec!["orders".to_string()]);
}

#[test]
fn when_config_is_out_of_range_then_error_names_the_field() {
    let (grid, _) = grid(4);
    let bad = MapConfig::default().with_max_idle(Duration::from_secs(60 * 86_400));
    let err = grid.map_with_config::<u32, u32>("bad", bad).err().unwrap();
    assert!(err.to_string().contains("MapConfig::max_idle"), "{err}");
    let err = Grid::with_config(GridConfig::default().with_partitions(0))
        .err()
        .unwrap();
    assert!(err.to_string().contains("partitions"), "{err}");
}

#[test]
fn when_map_is_used_then_stats_count_reads_writes_and_activity() {
    let (grid, clock) = grid(4);
    let m = grid.map::<u32, String>("stats").unwrap();
    m.put(1, "hello".into());
    m.get(&1);
    m.get(&2);
    clock.advance(Duration::from_secs(3));
    grid.run_maintenance();
    let s = m.stats();
    assert_eq!(
        (s.gets, s.hits, s.misses, s.puts, s.entries),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(s.last_update_ms, Some(3_000));
    assert!(s.bytes >= 5 && s.allocated_bytes >= s.bytes / 2);
    clock.advance(Duration::from_secs(1));
    m.get(&1);
    grid.run_maintenance();
    let s = m.stats();
    assert_eq!(
        (s.last_access_ms, s.last_update_ms),
        (Some(4_000), Some(3_000))
    );
}

#[test]
fn when_json_listener_added_then_it_sees_typed_changes_as_json() {
    let grid = eddy_grid::Grid::new();
    let map = grid.map::<u64, String>("names").unwrap();
    let view = grid.json_map("names").unwrap();
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let id = view.add_listener(true, move |event| {
        if let eddy_grid::MapEvent::Entry(e) = event {
            sink.lock().push((e.key.clone(), e.new_value.clone()));
        }
    });
    map.put(7, "seven".to_string());
    assert!(map.flush_listeners(std::time::Duration::from_secs(5)));
    assert_eq!(
        *seen.lock(),
        vec![(serde_json::json!(7), Some(serde_json::json!("seven")))]
    );
    assert!(view.remove_listener(id));
}
