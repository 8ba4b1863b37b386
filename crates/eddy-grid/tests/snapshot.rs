//! Snapshots: round trip with expiry, and a crash in the middle of a write.

use std::sync::Arc;
use std::time::Duration;

use eddy_grid::{Grid, GridConfig, GridError, ManualClock};
use serde::{Deserialize, Serialize, Serializer};

fn grid(clock: &ManualClock) -> Grid {
    Grid::with_config(
        GridConfig::default()
            .with_partitions(8)
            .with_clock(Arc::new(clock.clone()))
            .with_sweep_interval(None),
    )
    .unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-grid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    amount: i64,
    country: String,
}

#[test]
fn when_snapshot_is_saved_and_loaded_then_entries_and_remaining_ttl_survive() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("orders.snap");
    let clock = ManualClock::new();
    let before = grid(&clock).map::<String, Order>("orders").unwrap();
    for i in 0..1_000 {
        before.put(
            format!("o{i}"),
            Order {
                amount: i,
                country: "DE".into(),
            },
        );
    }
    before.put_ttl(
        "short".into(),
        Order {
            amount: -1,
            country: "FR".into(),
        },
        Duration::from_secs(10),
    );
    clock.advance(Duration::from_secs(4));
    assert_eq!(before.save_snapshot(&path).unwrap(), 1_001);

    let clock2 = ManualClock::new();
    let after = grid(&clock2).map::<String, Order>("orders").unwrap();
    assert_eq!(after.load_snapshot(&path).unwrap(), 1_001);
    let mut a = after.entries();
    let mut b = before.entries();
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(a, b);
    clock2.advance(Duration::from_millis(5_999));
    assert!(after.get(&"short".into()).is_some(), "6 s of TTL were left");
    clock2.advance(Duration::from_millis(1));
    assert!(after.get(&"short".into()).is_none());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// A value whose serialization fails when poisoned: a crash while writing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Fragile {
    n: u32,
    poisoned: bool,
}

impl Serialize for Fragile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.poisoned {
            return Err(serde::ser::Error::custom("disk pulled mid-write"));
        }
        #[derive(Serialize)]
        struct Plain {
            n: u32,
            poisoned: bool,
        }
        Plain {
            n: self.n,
            poisoned: false,
        }
        .serialize(s)
    }
}

#[test]
fn when_write_fails_midway_then_previous_snapshot_is_intact_and_no_temp_file_remains() {
    let dir = temp_dir("crash");
    let path = dir.join("fragile.snap");
    let clock = ManualClock::new();
    let g = grid(&clock);
    let m = g.map::<u32, Fragile>("fragile").unwrap();
    for n in 0..100 {
        m.put(n, Fragile { n, poisoned: false });
    }
    assert_eq!(m.save_snapshot(&path).unwrap(), 100);
    let good = std::fs::read(&path).unwrap();

    for n in 100..200 {
        m.put(n, Fragile { n, poisoned: false });
    }
    m.put(
        150,
        Fragile {
            n: 150,
            poisoned: true,
        },
    );
    let err = m.save_snapshot(&path).unwrap_err();
    assert!(matches!(err, GridError::Encode { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the previous snapshot is untouched"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "the partial temp file was removed"
    );

    // A process killed mid-write leaves its temp file behind: it is ignored.
    std::fs::write(dir.join("fragile.snap.tmp-999-0"), &good[..good.len() / 2]).unwrap();
    let fresh = grid(&clock).map::<u32, Fragile>("fragile").unwrap();
    assert_eq!(fresh.load_snapshot(&path).unwrap(), 100);
    assert_eq!(fresh.size(), 100);
}

#[test]
fn when_snapshot_is_truncated_or_garbage_then_nothing_loads_and_error_says_where() {
    let dir = temp_dir("corrupt");
    let path = dir.join("m.snap");
    let clock = ManualClock::new();
    let m = grid(&clock).map::<u32, u32>("m").unwrap();
    for i in 0..50 {
        m.put(i, i);
    }
    m.save_snapshot(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.snap");
    std::fs::write(&cut, &bytes[..bytes.len() - 12]).unwrap();
    let target = grid(&clock).map::<u32, u32>("m").unwrap();
    let err = target.load_snapshot(&cut).unwrap_err();
    assert!(matches!(err, GridError::CorruptSnapshot { .. }), "{err}");
    assert!(target.is_empty(), "a torn snapshot loads nothing");
    std::fs::write(&cut, b"not json\n").unwrap();
    assert!(target
        .load_snapshot(&cut)
        .unwrap_err()
        .to_string()
        .contains("line 1"));
    let wrong_types = grid(&clock).map::<String, String>("m").unwrap();
    assert!(wrong_types.load_snapshot(&path).is_err());
    assert!(matches!(
        target.load_snapshot(dir.join("missing.snap")),
        Err(GridError::Io { .. })
    ));
}
