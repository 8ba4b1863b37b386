//! Tests against a real Apache Kafka broker, which the test starts itself
//! with `scripts/kafka start` in a temporary directory and stops at the end
//! (also when a scenario fails). One test function runs the scenarios in
//! sequence on that broker, so a broker is started once per run; each
//! scenario prints its name and time. Nothing is skipped: without Java or
//! Maven the broker does not start and the test fails saying so.

use eddy_kafka::format::Utf8;
use eddy_kafka::{
    create_topic, partition_for_key, DeadLetter, KafkaSink, KafkaSource, ProducerRecord,
    StartPosition, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC,
};
use eddy_pipeline::{agg, Pipeline, Sinks, Sources, WindowDefinition};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Records of the round-trip scenario.
const ROUND_TRIP_RECORDS: usize = 1_000_000;

use eddy_testkit::kafka::TestBroker as Broker;

#[path = "kafka_broker/snapshots.rs"]
mod snapshots;

fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random")
        .create()
        .expect("test producer")
}

/// Sends a record, waiting while the producer's queue is full.
fn send(p: &ThreadedProducer<DefaultProducerContext>, mut record: BaseRecord<'_, str, [u8]>) {
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((e, back)) => {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "send failed: {e}"
                );
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// One record read back.
#[derive(Debug, Clone)]
struct Read {
    partition: i32,
    key: Option<String>,
    value: Vec<u8>,
    headers: HashMap<String, String>,
}

/// Reads every record of `topic` from the beginning until `expected`
/// arrived (then a little longer, to catch extras) or `timeout` passed.
fn read_all(bootstrap: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eddy-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
    let partitions = eddy_kafka::partition_count(bootstrap, topic, Duration::from_secs(10))
        .expect("metadata")
        .unwrap_or_else(|| panic!("topic {topic} does not exist"));
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + timeout;
    let mut grace: Option<Instant> = None;
    while Instant::now() < deadline {
        if out.len() >= expected {
            let until = *grace.get_or_insert_with(|| Instant::now() + Duration::from_millis(500));
            if Instant::now() >= until {
                break;
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Read {
                partition: m.partition(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => eprintln!("  (reader: {e})"),
            None => {}
        }
    }
    out
}

fn scenario(name: &str, f: impl FnOnce()) {
    eprintln!("--- scenario: {name}");
    let started = Instant::now();
    f();
    eprintln!("--- scenario: {name}: ok in {:.1?}", started.elapsed());
}

#[test]
fn kafka_against_a_real_broker() {
    let started = Instant::now();
    let broker = Broker::start("kafka-test");
    eprintln!(
        "broker at {} in {:.1?}",
        broker.bootstrap(),
        started.elapsed()
    );
    let b = broker.bootstrap().to_string();
    let eddy = Eddy::new(EddyConfig::with_threads(2));

    scenario(
        "broker down at job start: a clear error after retries",
        || broker_down_at_start(&eddy),
    );
    scenario(
        "round trip keeps every record and per-partition order",
        || round_trip(&eddy, &b),
    );
    scenario("per-partition watermarks with an idle partition", || {
        watermarks(&eddy, &b)
    });
    scenario(
        "malformed and oversized records go to the dead-letter topic",
        || dead_letters(&eddy, &b),
    );
    scenario(
        "items a stage rejects go to a dead-letter topic with the reason",
        || stage_dead_letters(&b),
    );
    scenario("broker restart mid-stream loses nothing", || {
        broker_restart(&eddy, &broker)
    });
    scenario(
        "source offsets and watermarks restored into fresh instances",
        || snapshots::source_offsets_restored(&b),
    );
    scenario(
        "exactly-once sink: commit, crash before and after it, zombie",
        || snapshots::exactly_once_sink(&b),
    );
    scenario(
        "exactly-once sink: epochs restored at another parallelism",
        || snapshots::exactly_once_sink_rescaled(&b),
    );
    scenario(
        "exactly-once sink: a fresh start ignores an earlier run's markers",
        || snapshots::exactly_once_sink_fresh_start(&b),
    );
    scenario("produce and consume functions of the CLI", || {
        cli_produce_consume(&b)
    });
    scenario("interoperability with kafka-python", || {
        python_interop(&eddy, &b, broker.dir())
    });
    eprintln!("all Kafka scenarios passed in {:.1?}", started.elapsed());
}

fn broker_down_at_start(eddy: &Eddy) {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = KafkaSource::topic("nowhere")
        .bootstrap(format!("127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(3))
        .string();
    let metrics = source.metrics();
    let p = Pipeline::new();
    let (sink, _) = Sinks::collect::<String>();
    p.read_from(source).write_to(sink);
    let job = eddy.submit(p, JobConfig::default().parallelism(1)).unwrap();
    let err = job
        .join_timeout(Duration::from_secs(30))
        .expect("the job fails within the connect timeout")
        .expect_err("the job cannot succeed without a broker")
        .to_string();
    eprintln!("  error: {err}");
    assert!(err.contains("cannot reach the Kafka cluster"), "{err}");
    assert!(err.contains("check that the broker runs"), "{err}");
    assert!(
        metrics
            .connect_retries
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2,
        "it retried"
    );
}

fn round_trip(eddy: &Eddy, b: &str) {
    let keys = 1000;
    create_topic(b, "rt-in", 4, Duration::from_secs(10)).unwrap();
    create_topic(b, "rt-out", 4, Duration::from_secs(10)).unwrap();
    let t = Instant::now();
    let p = producer(b);
    // Value: "<key>:<sequence of the key>", so order per key is checkable.
    for i in 0..ROUND_TRIP_RECORDS {
        let key = format!("k{}", i % keys);
        let value = format!("{key}:{:07}", i / keys);
        send(
            &p,
            BaseRecord::to("rt-in")
                .key(key.as_str())
                .payload(value.as_bytes()),
        );
    }
    p.flush(Duration::from_secs(60)).unwrap();
    eprintln!(
        "  loaded {ROUND_TRIP_RECORDS} records in {:.1?}",
        t.elapsed()
    );

    let t = Instant::now();
    let source = KafkaSource::topic("rt-in")
        .bootstrap(b)
        .stop_at_end()
        .key_decoder(Utf8)
        .string()
        .records();
    let metrics = source.metrics();
    let sink = KafkaSink::topic("rt-out")
        .bootstrap(b)
        .key_encoder(Utf8)
        .string()
        .records()
        .parallelism(1);
    let pipeline = Pipeline::new();
    pipeline
        .read_from(source)
        .map(|r: eddy_kafka::KafkaRecord<String, String>| ProducerRecord::new(r.key, r.value))
        .write_to(sink);
    let job = eddy
        .submit(pipeline, JobConfig::default().parallelism(2))
        .unwrap();
    job.join_timeout(Duration::from_secs(120))
        .expect("the job completes")
        .unwrap();
    eprintln!(
        "  pipeline copied {} records in {:.1?}",
        metrics.records(),
        t.elapsed()
    );
    assert_eq!(metrics.records() as usize, ROUND_TRIP_RECORDS);

    let out = read_all(b, "rt-out", ROUND_TRIP_RECORDS, Duration::from_secs(120));
    assert_eq!(
        out.len(),
        ROUND_TRIP_RECORDS,
        "every record arrives exactly once (no failure happened)"
    );
    let mut next_seq: HashMap<String, u64> = HashMap::new();
    for r in &out {
        let key = r.key.clone().expect("keyed");
        let value = String::from_utf8(r.value.clone()).unwrap();
        let (vk, seq) = value.split_once(':').unwrap();
        assert_eq!(vk, key);
        let seq: u64 = seq.parse().unwrap();
        let expected = next_seq.entry(key.clone()).or_insert(0);
        assert_eq!(seq, *expected, "key {key}: records in order");
        *expected += 1;
        assert_eq!(
            Some(r.partition),
            partition_for_key(key.as_bytes(), 4),
            "key {key} in its murmur2 partition"
        );
    }
    assert_eq!(next_seq.len(), keys);
}

fn watermarks(eddy: &Eddy, b: &str) {
    create_topic(b, "wm", 3, Duration::from_secs(10)).unwrap();
    // Recent timestamps (the broker's retention goes by them), whole seconds.
    let base = (eddy_runtime::metrics::now_ms() / 1000 - 120) * 1000;
    let p = producer(b);
    // Partition 0 runs 10 s ahead, partition 1 5 s; partition 2 stays empty.
    for (partition, seconds) in [(0, 10), (1, 5)] {
        for i in 0..seconds * 10 {
            let value = format!("{partition}:{i}");
            send(
                &p,
                BaseRecord::to("wm")
                    .partition(partition)
                    .payload(value.as_bytes())
                    .timestamp(base + i * 100),
            );
        }
    }
    p.flush(Duration::from_secs(10)).unwrap();

    let source = KafkaSource::topic("wm")
        .bootstrap(b)
        .event_time(
            eddy_pipeline::EventTimePolicy::lag(Duration::ZERO)
                .idle_timeout(Duration::from_millis(500)),
        )
        .parallelism(1)
        .string();
    let (sink, results) = Sinks::collect();
    let pipeline = Pipeline::new();
    pipeline
        .read_from(source)
        .window(WindowDefinition::tumbling(Duration::from_secs(1)))
        .aggregate(agg::count())
        .write_to(sink);
    let job = eddy.submit(pipeline, JobConfig::default()).unwrap();
    // The watermark is the slower live partition's: base + 4.9 s, so the
    // windows of seconds 0..4 close, each with 10 records of each partition.
    let deadline = Instant::now() + Duration::from_secs(20);
    while results.len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Longer than the idle timeout: if the idle partition 0 after its
    // records were emitted made the watermark jump, more windows would close.
    std::thread::sleep(Duration::from_millis(1500));
    job.cancel();
    let mut windows = results.take();
    windows.sort_by_key(|w| w.start);
    let summary: Vec<(i64, i64)> = windows
        .iter()
        .map(|w| ((w.start - base) / 1000, w.value))
        .collect();
    eprintln!("  windows (second, count): {summary:?}");
    assert!(
        summary.len() >= 4,
        "the idle partition 2 does not hold the watermark back"
    );
    assert_eq!(&summary[..4], &[(0, 20), (1, 20), (2, 20), (3, 20)]);
    // Once both partitions are idle the stream is idle, which closes no
    // window by itself; any window later than second 4 would mean the
    // watermark overtook partition 1.
    assert!(summary.iter().all(|&(s, _)| s <= 4), "{summary:?}");
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Good {
    n: u32,
}

fn dead_letters(eddy: &Eddy, b: &str) {
    create_topic(b, "dl", 1, Duration::from_secs(10)).unwrap();
    let p = producer(b);
    let big = format!("{{\"n\":7,\"pad\":\"{}\"}}", "x".repeat(300));
    let values: Vec<&[u8]> = vec![
        b"{\"n\":1}",
        b"{not json",
        b"{\"n\":2}",
        b"{\"n\":\"three\"}",
        big.as_bytes(),
        b"{\"n\":4}",
    ];
    for v in &values {
        let headers = OwnedHeaders::new().insert(Header {
            key: "origin",
            value: Some("test"),
        });
        send(
            &p,
            BaseRecord::to("dl").key("k").payload(*v).headers(headers),
        );
    }
    p.flush(Duration::from_secs(10)).unwrap();

    let source = KafkaSource::topic("dl")
        .bootstrap(b)
        .stop_at_end()
        .value_bytes_max(200)
        .dead_letter(DeadLetter::DefaultTopic)
        .json::<Good>();
    let metrics = source.metrics();
    let (sink, results) = Sinks::collect();
    let pipeline = Pipeline::new();
    pipeline.read_from(source).map(|g: Good| g.n).write_to(sink);
    eddy.submit(pipeline, JobConfig::default().parallelism(1))
        .unwrap()
        .join_timeout(Duration::from_secs(30))
        .expect("completes")
        .unwrap();
    let mut good = results.take();
    good.sort();
    assert_eq!(good, vec![1, 2, 4], "the job went on past the bad records");
    assert_eq!(metrics.dead_letters(), 3);

    let letters = read_all(b, "dl.dlq", 3, Duration::from_secs(20));
    assert_eq!(letters.len(), 3, "{letters:?}");
    let offsets: Vec<&str> = letters
        .iter()
        .map(|l| l.headers[HEADER_OFFSET].as_str())
        .collect();
    assert_eq!(offsets, ["1", "3", "4"]);
    for l in &letters {
        assert_eq!(l.headers[HEADER_TOPIC], "dl");
        assert_eq!(l.headers[HEADER_PARTITION], "0");
        assert_eq!(l.headers["origin"], "test", "original headers kept");
        assert_eq!(l.key.as_deref(), Some("k"), "original key kept");
    }
    assert!(
        letters[0].headers[HEADER_REASON].contains("invalid JSON"),
        "{:?}",
        letters[0].headers
    );
    assert!(
        letters[1].headers[HEADER_REASON].contains("invalid JSON"),
        "{:?}",
        letters[1].headers
    );
    assert!(
        letters[2].headers[HEADER_REASON].contains("exceeds the limit of 200 bytes"),
        "{:?}",
        letters[2].headers
    );
    assert_eq!(letters[0].value, b"{not json");
}

fn stage_dead_letters(b: &str) {
    let topic = "stage-dlq";
    eddy_kafka::create_topic(b, topic, 1, Duration::from_secs(30)).unwrap();
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::items((0..100u32).collect()))
        .named("checks")
        .try_map(|n: &u32| {
            if n % 25 == 3 {
                Err(format!("{n} fails the check"))
            } else {
                Ok(*n)
            }
        })
        .write_to(sink);
    let config = JobConfig::default()
        .on_error(eddy_core::ErrorPolicy::DeadLetter)
        .dead_letters(eddy_kafka::dead_letter_topic(b, topic).unwrap());
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let job = eddy.submit(p, config).unwrap();
    job.join().unwrap();
    assert_eq!(out.len(), 96);
    assert_eq!(job.dead_letters(), 4);
    let letters = read_all(b, topic, 4, Duration::from_secs(30));
    assert_eq!(letters.len(), 4);
    for letter in &letters {
        let value: serde_json::Value = serde_json::from_slice(&letter.value).unwrap();
        assert!(
            value["error"]
                .as_str()
                .unwrap()
                .ends_with("fails the check"),
            "{value}"
        );
        assert_eq!(letter.key.as_deref(), Some("checks (try_map)"));
        assert_eq!(
            letter.headers.get("eddy.dlq.reason"),
            value["error"].as_str().map(str::to_string).as_ref()
        );
    }
}

fn broker_restart(eddy: &Eddy, broker: &Broker) {
    let b = broker.bootstrap();
    let n = 200_000;
    create_topic(b, "rs-in", 2, Duration::from_secs(10)).unwrap();
    create_topic(b, "rs-out", 2, Duration::from_secs(10)).unwrap();
    let p = producer(b);
    for i in 0..n {
        let v = i.to_string();
        send(
            &p,
            BaseRecord::to("rs-in")
                .key(v.as_str())
                .payload(v.as_bytes()),
        );
    }
    p.flush(Duration::from_secs(30)).unwrap();
    drop(p);

    let source = KafkaSource::topic("rs-in")
        .bootstrap(b)
        .stop_at_end()
        .string();
    let metrics = source.metrics();
    // A slow map, so that the broker goes down while the job runs.
    let sink = KafkaSink::topic("rs-out")
        .bootstrap(b)
        .string()
        .key_string_by(|v: &String| v.clone());
    let sink_metrics = sink.metrics();
    let pipeline = Pipeline::new();
    pipeline
        .read_from(source)
        .map(|v: String| {
            std::thread::sleep(Duration::from_micros(20));
            v
        })
        .write_to(sink);
    let job = eddy
        .submit(pipeline, JobConfig::default().parallelism(2))
        .unwrap();
    while metrics.records() < 20_000 {
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !job.status().is_terminal(),
            "the job ended early: {:?}",
            job.join()
        );
    }
    eprintln!("  stopping the broker after {} records", metrics.records());
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    eprintln!(
        "  starting it again ({} records read meanwhile)",
        metrics.records()
    );
    broker.restart();
    // Generous: after a restart librdkafka reconnects with backoff and
    // retries requests that were in flight (request.timeout.ms).
    let outcome = job.join_timeout(Duration::from_secs(240));
    let Some(outcome) = outcome else {
        let vertices: Vec<String> = job
            .metrics()
            .iter()
            .map(|m| format!("{} in {} out {}", m.name, m.items_in, m.items_out))
            .collect();
        panic!(
            "the job did not complete within 240 s of the broker's restart: source read {} of {n}; {}",
            metrics.records(),
            vertices.join(", ")
        );
    };
    outcome.unwrap();
    assert_eq!(metrics.records(), n as u64);
    let out = read_all(b, "rs-out", n, Duration::from_secs(60));
    let mut seen = vec![false; n];
    for r in &out {
        let i: usize = String::from_utf8_lossy(&r.value).parse().unwrap();
        seen[i] = true;
    }
    let missing = seen.iter().filter(|s| !**s).count();
    eprintln!(
        "  sink: {} stalled producer(s) replaced, {} records sent again",
        sink_metrics
            .recoveries
            .load(std::sync::atomic::Ordering::Relaxed),
        sink_metrics
            .resent
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    eprintln!(
        "  {} records written for {n} read ({} duplicates), {missing} missing",
        out.len(),
        out.len() - (n - missing)
    );
    assert_eq!(missing, 0, "at-least-once: nothing lost");
}

const PYTHON_SCRIPT: &str = r#"
import json, sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
bootstrap, mode, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode == "produce":
    p = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(count):
        key = "user-%d" % (i % 37)
        p.send(topic, key=key.encode(), value=json.dumps({"i": i, "key": key}).encode())
    p.flush()
    p.close()
else:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic)]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    n = 0
    for m in c:
        print(json.dumps({"partition": m.partition, "key": m.key.decode(), "value": m.value.decode()}))
        n += 1
        if n >= count:
            break
    c.close()
"#;

fn python_interop(eddy: &Eddy, b: &str, dir: &Path) {
    let venv = dir.join("venv");
    let t = Instant::now();
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 runs");
    assert!(
        ok.success(),
        "python3 -m venv failed: install python3 with its venv module"
    );
    let pip = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "kafka-python==3.0.12",
        ])
        .output()
        .expect("pip runs");
    assert!(
        pip.status.success(),
        "pip install kafka-python failed: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    eprintln!("  kafka-python installed in {:.1?}", t.elapsed());
    let script = dir.join("interop.py");
    std::fs::write(&script, PYTHON_SCRIPT).unwrap();
    let python = |args: &[&str]| {
        let out = Command::new(venv.join("bin/python"))
            .arg(&script)
            .args(args)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "python {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let n = 1000;
    let partitions = 6;
    create_topic(b, "py-in", partitions, Duration::from_secs(10)).unwrap();
    create_topic(b, "py-out", partitions, Duration::from_secs(10)).unwrap();
    python(&[b, "produce", "py-in", &n.to_string()]);

    // Eddy reads what Python wrote and writes it on with the same keys.
    let source = KafkaSource::topic("py-in")
        .bootstrap(b)
        .start(StartPosition::Earliest)
        .stop_at_end()
        .key_decoder(Utf8)
        .json::<serde_json::Value>()
        .records();
    let (seen, seen_items) = Sinks::collect();
    let pipeline = Pipeline::new();
    let shared = pipeline.read_from(source).share();
    shared
        .stream()
        .map(|r: eddy_kafka::KafkaRecord<String, serde_json::Value>| {
            (r.key.unwrap_or_default(), r.partition, r.value)
        })
        .write_to(seen);
    shared
        .stream()
        .map(|r: eddy_kafka::KafkaRecord<String, serde_json::Value>| {
            ProducerRecord::new(r.key, r.value)
        })
        .write_to(
            KafkaSink::topic("py-out")
                .bootstrap(b)
                .key_encoder(Utf8)
                .json::<serde_json::Value>()
                .records(),
        );
    eddy.submit(pipeline, JobConfig::default().parallelism(2))
        .unwrap()
        .join_timeout(Duration::from_secs(60))
        .expect("completes")
        .unwrap();
    let read = seen_items.take();
    assert_eq!(read.len(), n, "Eddy read every record Python wrote");
    for (key, partition, value) in &read {
        assert_eq!(
            value["key"].as_str(),
            Some(key.as_str()),
            "key and value belong together"
        );
        assert_eq!(
            Some(*partition),
            partition_for_key(key.as_bytes(), partitions),
            "Python put {key} in its murmur2 partition"
        );
    }

    // Python reads what Eddy wrote: same keys, same partitions.
    let lines = python(&[b, "consume", "py-out", &n.to_string()]);
    let back: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back.len(), n, "Python read every record Eddy wrote");
    let in_partition: HashMap<&str, i32> = read.iter().map(|(k, p, _)| (k.as_str(), *p)).collect();
    for r in &back {
        let key = r["key"].as_str().unwrap();
        let partition = r["partition"].as_i64().unwrap() as i32;
        assert_eq!(
            in_partition[key], partition,
            "key {key}: same partition whichever client wrote it"
        );
        let value: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(value["key"].as_str(), Some(key));
    }
}

fn cli_produce_consume(b: &str) {
    use eddy_kafka::cli::{
        consume, produce, ConsumeOptions, OutputFormat, ProduceInput, ProduceOptions,
    };
    let options = ProduceOptions {
        bootstrap: b.to_string(),
        topic: "cli-gen".into(),
        partitions: Some(3),
        properties: Default::default(),
    };
    let mut ticks = 0;
    let report = produce::<&[u8]>(
        &options,
        ProduceInput::Generator {
            event: Box::new(|n| (format!("key-{}", n % 7), format!("{{\"n\":{n}}}"))),
            rate_per_sec: None,
            count: 2500,
        },
        &mut |_| ticks += 1,
    )
    .unwrap();
    assert_eq!(report.records, 2500);
    assert!(report.created_topic && ticks >= 3);

    let lines = "{\"user\":\"ann\",\"n\":1}\n\n{\"user\":\"bob\",\"n\":2}\n{\"n\":3}\n";
    let options = ProduceOptions {
        topic: "cli-lines".into(),
        partitions: Some(2),
        ..options
    };
    let input = ProduceInput::JsonLines {
        reader: lines.as_bytes(),
        key_field: Some("user".into()),
    };
    let report = produce(&options, input, &mut |_| {}).unwrap();
    assert_eq!((report.records, report.unkeyed), (3, 1));
    let bad = ProduceInput::JsonLines {
        reader: "{\"ok\":1}\n{broken\n".as_bytes(),
        key_field: None,
    };
    let err = produce(&options, bad, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("line 2 is not valid JSON"), "{err}");

    let mut consume_options = ConsumeOptions {
        bootstrap: b.to_string(),
        topic: "cli-gen".into(),
        from_beginning: true,
        max: Some(2500),
        read_committed: true,
        format: OutputFormat::Json,
        idle_timeout: Some(Duration::from_secs(10)),
        properties: Default::default(),
    };
    let mut out = Vec::new();
    assert_eq!(consume(&consume_options, &mut out).unwrap(), 2500);
    let first: serde_json::Value =
        serde_json::from_slice(out.split(|b| *b == b'\n').next().unwrap()).unwrap();
    // The generator above: record n is keyed "key-<n % 7>" with value
    // {"n": n}.
    let n = first["value"]["n"].as_u64().unwrap();
    let key = format!("key-{}", n % 7);
    assert_eq!(
        first["key"].as_str(),
        Some(key.as_str()),
        "generated records keep the generator's key"
    );
    assert_eq!(
        Some(first["partition"].as_i64().unwrap() as i32),
        partition_for_key(key.as_bytes(), 3)
    );

    consume_options.topic = "cli-lines".into();
    consume_options.format = OutputFormat::Text;
    consume_options.max = None;
    consume_options.idle_timeout = Some(Duration::from_secs(2));
    let mut out = Vec::new();
    assert_eq!(
        consume(&consume_options, &mut out).unwrap(),
        4,
        "three lines, and the good line of the bad input"
    );
    consume_options.topic = "no-such-topic".into();
    let err = consume(&consume_options, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn when_snapshot_interval_reaches_the_transaction_timeout_then_submission_is_refused() {
    // No broker needed: the settings are checked before anything connects.
    let eddy = Eddy::new(EddyConfig::with_threads(1));
    let submit = |interval: Duration| {
        let pipeline = Pipeline::new();
        pipeline
            .read_from(eddy_pipeline::Sources::items(vec!["a".to_string()]))
            .write_to(
                KafkaSink::topic("never-written")
                    .bootstrap("127.0.0.1:9")
                    .string()
                    .property("transaction.timeout.ms", "10000"),
            );
        eddy.submit(
            pipeline,
            JobConfig::default()
                .guarantee(eddy_runtime::Guarantee::ExactlyOnce)
                .snapshot_interval(interval),
        )
    };
    let err = submit(Duration::from_secs(30)).unwrap_err().to_string();
    assert!(
        err.contains("transaction.timeout.ms") && err.contains("snapshot interval"),
        "{err}"
    );
    let job = submit(Duration::from_secs(1)).expect("a shorter interval is accepted");
    job.cancel();
    let _ = job.join();
}
