//! Snapshot scenarios of the Kafka source and sink, driving their
//! processors directly: save, "crash" (drop without commit), restore into
//! fresh instances, and check what a `read_committed` consumer sees.

use eddy_core::snapshot::{read_entries, SnapshotWriter};
use eddy_core::{Event, Guarantee, Inbox, Processor, ProcessorContext, VecOutbox};
use eddy_kafka::{create_topic, partition_count, KafkaSink, KafkaSource};
use eddy_pipeline::{EventTimePolicy, Sink, Source};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

fn context(
    job: &str,
    vertex: &str,
    instance: usize,
    parallelism: usize,
    guarantee: Guarantee,
) -> ProcessorContext {
    let mut ctx = ProcessorContext::standalone(vertex);
    ctx.job_name = job.to_string();
    ctx.instance = instance;
    ctx.parallelism = parallelism;
    ctx.guarantee = guarantee;
    ctx.snapshot_interval = Some(Duration::from_secs(1));
    ctx
}

fn save<P: Processor>(p: &mut P, snapshot_id: u64) -> Vec<u8> {
    let mut w = SnapshotWriter::new();
    p.save_to_snapshot(snapshot_id, &mut w).unwrap();
    w.take().0
}

fn restore<P: Processor>(p: &mut P, snapshots: &[&[u8]]) {
    for bytes in snapshots {
        for entry in read_entries(bytes) {
            p.restore_from_snapshot(entry.unwrap()).unwrap();
        }
    }
    p.finish_snapshot_restore().unwrap();
}

/// Every value a `read_committed` consumer sees in `topic`, read up to the
/// end offsets of all its partitions (so nothing in flight is missed).
fn committed_values(b: &str, topic: &str) -> Vec<String> {
    let consumer = |isolation: &str| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", b)
            .set("group.id", "eddy-test-snapshots")
            .set("enable.auto.commit", "false")
            .set("isolation.level", isolation)
            .create()
            .unwrap()
    };
    let partitions = partition_count(b, topic, TIMEOUT).unwrap().unwrap();
    let ends_reader = consumer("read_uncommitted");
    let ends: Vec<i64> = (0..partitions)
        .map(|p| ends_reader.fetch_watermarks(topic, p, TIMEOUT).unwrap().1)
        .collect();
    let reader = consumer("read_committed");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    reader.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {
                let positions = reader.position().unwrap();
                let done = (0..partitions).all(|p| {
                    let end = ends[p as usize];
                    end == 0
                        || matches!(
                            positions.find_partition(topic, p).map(|e| e.offset()),
                            Some(Offset::Offset(o)) if o >= end
                        )
                });
                if done {
                    return values;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "reading {topic} to its end timed out"
        );
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

/// Drives a source until it emitted `until` records in all (counting
/// `emitted`), returning the new ones and the watermarks it emitted.
fn drain_source<P: Processor<Out = Event<String>>>(
    p: &mut P,
    emitted: &mut Vec<String>,
    until: usize,
    watermarks: &mut Vec<i64>,
) {
    // A small outbox, so that polled records wait in the processor.
    let mut out = VecOutbox::with_capacity(7);
    let deadline = Instant::now() + TIMEOUT;
    while emitted.len() < until {
        assert!(
            Instant::now() < deadline,
            "the source emitted {} of {until} records",
            emitted.len()
        );
        p.complete(&mut out).unwrap();
        watermarks.extend(out.watermarks.drain(..).map(|(_, w)| w.0));
        emitted.extend(out.items.drain(..).map(|e| e.value));
    }
}

/// The source saves the offset after the last record it emitted; fresh
/// instances restored from that (at another parallelism) emit exactly the
/// rest, and resume the watermark where it was.
pub fn source_offsets_restored(b: &str) {
    let topic = "snap-source";
    let total = 3_000;
    create_topic(b, topic, 3, TIMEOUT).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", b)
        .create()
        .unwrap();
    let base = (eddy_runtime::metrics::now_ms() / 1000 - 600) * 1000;
    for (i, v) in values("rec", total).iter().enumerate() {
        let key = format!("k{}", i % 30);
        producer
            .send(
                BaseRecord::to(topic)
                    .key(&key)
                    .payload(v)
                    .timestamp(base + i as i64),
            )
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();

    let source = KafkaSource::topic(topic)
        .bootstrap(b)
        .string()
        .event_time(EventTimePolicy::lag(Duration::from_millis(10)));
    let ctx = context("snap-job", "source", 0, 1, Guarantee::ExactlyOnce);
    let mut first = source.create(&ctx);
    first.init(&ctx).unwrap();
    let mut before = Vec::new();
    let mut watermarks = Vec::new();
    drain_source(&mut first, &mut before, 1_000, &mut watermarks);
    // The watermark waits until every partition delivered.
    while watermarks.is_empty() {
        let until = before.len() + 50;
        assert!(until < 2_500, "no watermark after {until} records");
        drain_source(&mut first, &mut before, until, &mut watermarks);
    }
    let snapshot = save(&mut first, 1);
    let watermark_saved = *watermarks.last().expect("a watermark before the snapshot");
    // Progress after the barrier is lost with the crash.
    let mut lost = before.clone();
    drain_source(&mut first, &mut lost, 1_500, &mut Vec::new());
    first.close().unwrap();
    drop(first);

    let ends = eddy_kafka::end_offsets(b, topic, TIMEOUT).unwrap();
    let mut after = Vec::new();
    for instance in 0..2 {
        let ctx = context("snap-job", "source", instance, 2, Guarantee::ExactlyOnce);
        let mut p = source.create(&ctx);
        p.init(&ctx).unwrap();
        restore(&mut p, &[&snapshot]);
        // Instance 0 owns partitions 0 and 2, instance 1 partition 1: read
        // until each owned partition is read to its end.
        let owned = if instance == 0 { 2 } else { 1 };
        let mut out = VecOutbox::with_capacity(64);
        let mut wms = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            p.complete(&mut out).unwrap();
            wms.extend(out.watermarks.drain(..).map(|(_, w)| w.0));
            after.extend(out.items.drain(..).map(|e| e.value));
            let offsets = p.offsets();
            if offsets.len() == owned
                && offsets
                    .iter()
                    .all(|(_, part, o)| *o >= ends[*part as usize])
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "instance {instance} did not read its partitions to their ends"
            );
        }
        let first_wm = *wms.first().expect("a watermark after the restore");
        assert!(
            first_wm >= watermark_saved,
            "instance {instance} resumes the watermark ({first_wm} < {watermark_saved})"
        );
        assert!(
            wms.windows(2).all(|w| w[0] < w[1]),
            "watermarks never go back"
        );
        p.close().unwrap();
    }
    let mut all = before;
    all.extend(after);
    assert_eq!(
        sorted(all),
        values("rec", total),
        "records before the snapshot and after the restore: each exactly once"
    );
}

type StringSinkP = <eddy_kafka::KafkaSink<
    eddy_kafka::format::Bytes,
    eddy_kafka::format::Utf8,
    eddy_kafka::Unkeyed,
> as Sink<String>>::Processor;

fn eo_sink(b: &str, topic: &str, job: &str, instance: usize, parallelism: usize) -> StringSinkP {
    let sink = KafkaSink::topic(topic).bootstrap(b).string();
    let ctx = context(job, "sink", instance, parallelism, Guarantee::ExactlyOnce);
    let mut p = Sink::<String>::create(&sink, &ctx);
    assert!(
        !p.is_cooperative(),
        "an exactly-once sink waits for the broker"
    );
    p.init(&ctx).unwrap();
    p
}

fn push(p: &mut StringSinkP, records: &[String]) {
    let mut inbox = Inbox::from_vec(
        records
            .iter()
            .map(|v| Event {
                ts: 0,
                value: v.clone(),
            })
            .collect(),
    );
    p.process(0, &mut inbox, &mut VecOutbox::with_capacity(1))
        .unwrap();
    assert!(inbox.is_empty());
}

/// The exactly-once sink: output appears only at the commit; a restored
/// epoch is committed if it was not and skipped if it was; a zombie
/// producer is fenced; epochs restored at another parallelism are each
/// committed once; markers of an earlier run of the same job name do not
/// hide a new run's epochs.
pub fn exactly_once_sink(b: &str) {
    let topic = "eo-out";
    create_topic(b, topic, 2, TIMEOUT).unwrap();
    let (r1, r2, r3) = (values("r1", 100), values("r2", 100), values("r3", 100));

    let mut a = eo_sink(b, topic, "eo-job", 0, 1);
    push(&mut a, &r1);
    let s1 = save(&mut a, 1);
    assert!(
        committed_values(b, topic).is_empty(),
        "invisible before the commit"
    );
    a.snapshot_commit_finish(1).unwrap();
    assert_eq!(
        sorted(committed_values(b, topic)),
        r1,
        "visible after the commit"
    );

    push(&mut a, &r2);
    let s2 = save(&mut a, 2);
    drop(a); // crash before the commit of epoch 2
    assert_eq!(sorted(committed_values(b, topic)), r1);

    let mut b1 = eo_sink(b, topic, "eo-job", 0, 1);
    restore(&mut b1, &[&s2]);
    b1.snapshot_commit_finish(2).unwrap();
    let r12 = sorted([r1.clone(), r2.clone()].concat());
    assert_eq!(
        sorted(committed_values(b, topic)),
        r12,
        "the restored uncommitted epoch is committed once"
    );
    drop(b1); // crash after the commit, before another snapshot

    for snapshot in [&s1, &s2] {
        let mut c = eo_sink(b, topic, "eo-job", 0, 1);
        restore(&mut c, &[snapshot]);
        c.snapshot_commit_finish(2).unwrap();
    }
    assert_eq!(
        sorted(committed_values(b, topic)),
        r12,
        "restored committed epochs are skipped"
    );

    // A zombie: a producer of the previous execution, with an open
    // transaction.
    let zombie: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", b)
        .set("transactional.id", "eddy-eo-job-sink-0")
        .create()
        .unwrap();
    zombie.init_transactions(TIMEOUT).unwrap();
    zombie.begin_transaction().unwrap();
    zombie
        .send(BaseRecord::<str, str>::to(topic).payload("zombie"))
        .unwrap();
    zombie.flush(TIMEOUT).unwrap();
    let mut d = eo_sink(b, topic, "eo-job", 0, 1);
    restore(&mut d, &[&s2]);
    d.snapshot_commit_finish(2).unwrap();
    push(&mut d, &r3);
    let _ = save(&mut d, 3);
    d.snapshot_commit_finish(3).unwrap();
    assert!(
        zombie.commit_transaction(TIMEOUT).is_err(),
        "the zombie is fenced"
    );
    let r123 = sorted([r12, r3].concat());
    assert_eq!(
        sorted(committed_values(b, topic)),
        r123,
        "the zombie's records are aborted"
    );
    d.close().unwrap();
}

/// Epochs of two instances restored at parallelism 1 are each committed
/// once, under their writers' transactional ids.
pub fn exactly_once_sink_rescaled(b: &str) {
    let topic = "eo-rescaled";
    create_topic(b, topic, 2, TIMEOUT).unwrap();
    let mut snapshots = Vec::new();
    let mut expected = Vec::new();
    for instance in 0..2 {
        let mut p = eo_sink(b, topic, "eo-rescaled", instance, 2);
        let records = values(&format!("w{instance}"), 50);
        push(&mut p, &records);
        snapshots.push(save(&mut p, 1));
        expected.extend(records);
    }
    // Writer 1's epoch 1 had been committed before the crash.
    let mut w1 = eo_sink(b, topic, "eo-rescaled", 1, 2);
    restore(&mut w1, &[&snapshots[1]]);
    w1.snapshot_commit_finish(1).unwrap();
    drop(w1);
    let mut merged = eo_sink(b, topic, "eo-rescaled", 0, 1);
    let parts: Vec<&[u8]> = snapshots.iter().map(Vec::as_slice).collect();
    restore(&mut merged, &parts);
    merged.snapshot_commit_finish(1).unwrap();
    assert_eq!(sorted(committed_values(b, topic)), sorted(expected));
}

/// A job started afresh under the name of an earlier one, whose markers
/// say epoch 7 was committed: its own epoch 1, restored after a crash, is
/// committed all the same.
pub fn exactly_once_sink_fresh_start(b: &str) {
    let topic = "eo-fresh";
    create_topic(b, topic, 1, TIMEOUT).unwrap();
    let (old, new) = (values("old", 20), values("new", 20));
    let mut earlier = eo_sink(b, topic, "eo-fresh", 0, 1);
    push(&mut earlier, &old);
    let _ = save(&mut earlier, 7);
    earlier.snapshot_commit_finish(7).unwrap();
    drop(earlier);

    let mut fresh = eo_sink(b, topic, "eo-fresh", 0, 1);
    push(&mut fresh, &new);
    let s1 = save(&mut fresh, 1);
    drop(fresh);
    let mut restored = eo_sink(b, topic, "eo-fresh", 0, 1);
    restore(&mut restored, &[&s1]);
    restored.snapshot_commit_finish(1).unwrap();
    let mut by_run: BTreeMap<&str, usize> = BTreeMap::new();
    let seen = committed_values(b, topic);
    for v in &seen {
        *by_run
            .entry(if v.starts_with("old") { "old" } else { "new" })
            .or_default() += 1;
    }
    assert_eq!(
        by_run,
        BTreeMap::from([("new", 20), ("old", 20)]),
        "{seen:?}"
    );
}
