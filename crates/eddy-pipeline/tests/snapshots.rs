//! Sources and sinks across snapshots: sources resume where the snapshot
//! was taken (at another parallelism too), and exactly-once sinks deliver
//! each epoch once, whatever restores happen.

use eddy_core::snapshot::{read_entries, SnapshotWriter};
use eddy_core::{Event, Guarantee, Inbox, Processor, ProcessorContext, VecOutbox};
use eddy_grid::{Grid, JournalStart, MapConfig};
use eddy_pipeline::grid::MapChange;
use eddy_pipeline::{Sink, Sinks, Source, Sources};
use eddy_testkit::{Seed, TestOutput, TestSupport};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// A context for instance `instance` of `parallelism` under `guarantee`.
fn context(instance: usize, parallelism: usize, guarantee: Guarantee) -> ProcessorContext {
    let mut ctx = ProcessorContext::standalone("under-test");
    ctx.instance = instance;
    ctx.parallelism = parallelism;
    ctx.guarantee = guarantee;
    ctx
}

/// The state `p` saves for snapshot `id`.
fn save<P: Processor>(p: &mut P, id: u64) -> Vec<u8> {
    let mut writer = SnapshotWriter::new();
    p.save_to_snapshot(id, &mut writer).unwrap();
    writer.take().0
}

/// Restores `parts` (all broadcast or all for this instance) into `p`, as
/// the runtime does: the entries, the end of the restore, the commit.
fn restore<P: Processor>(p: &mut P, parts: &[Vec<u8>], id: u64) {
    for part in parts {
        for entry in read_entries(part) {
            p.restore_from_snapshot(entry.unwrap()).unwrap();
        }
    }
    p.finish_snapshot_restore().unwrap();
    p.snapshot_commit_finish(id).unwrap();
}

/// Calls `complete` once with room for `room` items; returns what it
/// emitted and whether it finished.
fn complete_once<P: Processor<Out = Event<T>>, T>(p: &mut P, room: usize) -> (Vec<T>, bool) {
    let mut outbox = VecOutbox::with_capacity(room);
    let done = p.complete(&mut outbox).unwrap();
    (outbox.items.into_iter().map(|e| e.value).collect(), done)
}

/// Ends a sink's input: `complete` until it is done.
fn complete_sink<P: Processor<Out = ()>>(p: &mut P) {
    while !p.complete(&mut VecOutbox::with_capacity(0)).unwrap() {}
}

/// Feeds `items` to a sink at once.
fn feed<P: Processor<In = Event<T>>, T>(p: &mut P, items: impl IntoIterator<Item = T>) {
    let mut inbox = Inbox::from_vec(items.into_iter().map(Event::untimed).collect());
    p.process(0, &mut inbox, &mut VecOutbox::with_capacity(0))
        .unwrap();
    assert!(inbox.is_empty());
}

/// A fresh directory for one test's files.
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-snapshots-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn when_items_source_restored_then_it_goes_on_after_the_last_item_emitted() {
    let source = Sources::items((0..30).collect::<Vec<u32>>());
    let ctx = context(0, 1, Guarantee::ExactlyOnce);
    TestSupport::verify(|| source.create(&ctx)).expect_output(
        (0..30)
            .map(|n| TestOutput::Item(Event::untimed(n)))
            .collect(),
    );
}

#[test]
fn when_file_source_restored_then_it_seeks_to_the_first_line_not_emitted() {
    let dir = test_dir("file-source");
    let path = dir.join("lines.txt");
    let lines: Vec<String> = (0..25)
        .map(|i| format!("line {i} {}", "x".repeat(i)))
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let source = Sources::file_lines(&path);
    let ctx = context(0, 1, Guarantee::ExactlyOnce);
    TestSupport::verify(|| source.create(&ctx)).expect_output(
        lines
            .into_iter()
            .map(|l| TestOutput::Item(Event::untimed(l)))
            .collect(),
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn when_generator_restored_at_random_parallelisms_then_every_number_once() {
    let seed = Seed::new("generator restored at random parallelisms");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed.value());
    const COUNT: u64 = 500;
    let source = Sources::generator(|n| n).limit(COUNT);
    let start = |parallelism: usize| -> Vec<_> {
        (0..parallelism)
            .map(|i| {
                let ctx = context(i, parallelism, Guarantee::ExactlyOnce);
                let mut p = source.create(&ctx);
                p.init(&ctx).unwrap();
                p
            })
            .collect()
    };
    let mut instances = start(rng.gen_range(1..=4));
    let mut emitted = Vec::new();
    for id in 1.. {
        let mut all_done = true;
        for p in &mut instances {
            let (items, done) = complete_once(p, rng.gen_range(0..40));
            emitted.extend(items);
            all_done &= done;
        }
        if all_done {
            break;
        }
        let parts: Vec<Vec<u8>> = instances.iter_mut().map(|p| save(p, id)).collect();
        instances = start(rng.gen_range(1..=4));
        for p in &mut instances {
            restore(p, &parts, id);
        }
    }
    emitted.sort_unstable();
    assert_eq!(emitted, (0..COUNT).collect::<Vec<_>>());
}

#[test]
fn when_map_journal_source_restored_then_each_change_once() {
    let grid = Grid::new();
    let map = grid
        .map_with_config::<u32, i64>("changes", MapConfig::default().with_journal(1000))
        .unwrap();
    for k in 0..50 {
        map.put(k, i64::from(k));
    }
    let source = Sources::map_journal(map.clone(), JournalStart::Oldest);
    let ctx = context(0, 1, Guarantee::ExactlyOnce);
    let start = || {
        let mut p = source.create(&ctx);
        p.init(&ctx).unwrap();
        p
    };
    let mut p = start();
    let mut seen = Vec::new();
    for id in 1..=12 {
        let (items, _) = complete_once(&mut p, 7);
        seen.extend(items);
        let part = save(&mut p, id);
        p = start();
        restore(&mut p, &[part], id);
        if id == 6 {
            for k in 50..60 {
                map.put(k, i64::from(k));
            }
        }
    }
    let keys: Vec<u32> = seen
        .iter()
        .map(|c| match c {
            MapChange::Event(e) => match &e.event {
                eddy_grid::MapEvent::Entry(entry) => entry.key,
                other => panic!("unexpected journal event {other:?}"),
            },
            MapChange::Lost(n) => panic!("{n} changes lost"),
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..60).collect::<Vec<_>>(), "each change once");
}

#[test]
fn when_collect_sink_exactly_once_then_epochs_show_after_commit_and_once_after_restores() {
    let (sink, out) = Sinks::collect::<u32>();
    let ctx = context(0, 1, Guarantee::ExactlyOnce);
    let start = || {
        let mut p = sink.create(&ctx);
        p.init(&ctx).unwrap();
        p
    };
    let mut p = start();
    feed(&mut p, [1, 2]);
    let _first = save(&mut p, 1);
    assert!(
        out.is_empty(),
        "nothing shows before the snapshot is durable"
    );
    p.snapshot_commit_finish(1).unwrap();
    assert_eq!(out.items(), vec![1, 2]);
    feed(&mut p, [3]);
    // The job fails after snapshot 2 is durable, before its commit ran.
    let second = save(&mut p, 2);
    let mut q = start();
    restore(&mut q, std::slice::from_ref(&second), 2);
    assert_eq!(out.items(), vec![1, 2, 3]);
    // Restored once more from the same snapshot: epoch 2 is not repeated.
    let mut r = start();
    restore(&mut r, &[second], 2);
    assert_eq!(out.items(), vec![1, 2, 3]);
    // The input ends without a further snapshot: the rest is delivered.
    feed(&mut r, [4, 5]);
    complete_sink(&mut r);
    assert_eq!(out.items(), vec![1, 2, 3, 4, 5]);
    assert!(save(&mut r, 3).is_empty(), "a finished sink holds nothing");
}

#[test]
fn when_map_update_sink_exactly_once_restored_twice_then_each_update_applied_once() {
    let grid = Grid::new();
    let counts = grid.map::<u32, u64>("counts").unwrap();
    let sink = Sinks::map_update(
        counts.clone(),
        |k: &u32| *k,
        |entry, _k| {
            let next = entry.value().copied().unwrap_or(0) + 1;
            entry.set_value(next);
        },
    );
    // Two instances, restored at parallelism 3: every old instance's
    // epochs are committed by exactly one new instance.
    let start = |parallelism: usize| -> Vec<_> {
        (0..parallelism)
            .map(|i| {
                let ctx = context(i, parallelism, Guarantee::ExactlyOnce);
                let mut p = Sink::<u32>::create(&sink, &ctx);
                p.init(&ctx).unwrap();
                p
            })
            .collect()
    };
    let mut old = start(2);
    feed(&mut old[0], [7, 7]);
    feed(&mut old[1], [8]);
    let parts: Vec<Vec<u8>> = old.iter_mut().map(|p| save(p, 1)).collect();
    // Instance 0 committed before the failure, instance 1 did not.
    old[0].snapshot_commit_finish(1).unwrap();
    assert_eq!(counts.get(&7), Some(2));
    assert_eq!(counts.get(&8), None);
    for _restore in 0..2 {
        for p in &mut start(3) {
            restore(p, &parts, 1);
        }
        assert_eq!(counts.get(&7), Some(2));
        assert_eq!(counts.get(&8), Some(1));
    }
}

#[test]
fn when_file_sink_exactly_once_then_one_file_per_epoch_published_once() {
    let dir = test_dir("file-sink");
    let path = dir.join("out.txt");
    let sink = Sinks::file(&path);
    let ctx = context(0, 1, Guarantee::ExactlyOnce);
    let start = || {
        let mut p = Sink::<u32>::create(&sink, &ctx);
        p.init(&ctx).unwrap();
        p
    };
    let read = |epoch: u64| std::fs::read_to_string(dir.join(format!("out.txt.{epoch}")));
    let mut p = start();
    feed(&mut p, [1, 2]);
    save(&mut p, 1);
    assert!(dir.join("out.txt.1.tmp").exists(), "written at the barrier");
    assert!(read(1).is_err(), "published only once durable");
    p.snapshot_commit_finish(1).unwrap();
    assert_eq!(read(1).unwrap(), "1\n2\n");
    assert!(!dir.join("out.txt.1.tmp").exists());

    // The job fails after snapshot 2 is durable, before its commit ran;
    // its temporary file is lost too: the restore writes it again.
    feed(&mut p, [3]);
    let second = save(&mut p, 2);
    std::fs::remove_file(dir.join("out.txt.2.tmp")).unwrap();
    let mut q = start();
    restore(&mut q, std::slice::from_ref(&second), 2);
    assert_eq!(read(2).unwrap(), "3\n");

    // Restored again: epoch 2 is in place, so it is left alone.
    std::fs::write(dir.join("out.txt.2"), "3\n(appended by a reader)\n").unwrap();
    let mut r = start();
    restore(&mut r, &[second], 2);
    assert_eq!(read(2).unwrap(), "3\n(appended by a reader)\n");

    // An empty epoch makes no file; the end of the input publishes the
    // rest after the last epoch.
    save(&mut r, 3);
    r.snapshot_commit_finish(3).unwrap();
    assert!(read(3).is_err());
    feed(&mut r, [4]);
    complete_sink(&mut r);
    assert_eq!(read(4).unwrap(), "4\n");
    assert!(!path.exists(), "exactly-once writes only epoch files");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn when_file_sink_directory_missing_then_the_job_is_refused_at_submission() {
    let sink = Sinks::file("/nonexistent-eddy-dir/out.txt");
    let ctx = context(0, 1, Guarantee::ExactlyOnce);
    let p = Sink::<u32>::create(&sink, &ctx);
    let err = p.validate(&ctx).unwrap_err().message;
    assert!(
        err.contains("/nonexistent-eddy-dir' does not exist"),
        "{err}"
    );
}
