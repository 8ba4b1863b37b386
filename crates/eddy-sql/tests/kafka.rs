//! A SQL job over a real Kafka broker: JSON rows produced to a topic by a
//! plain pipeline (and one record that is not JSON), read by a bounded
//! SQL table, windowed, written to another topic, and read back there.
//! Starts a broker with scripts/kafka (Java and Maven; about 15 s).

use eddy::kafka::{create_topic, KafkaSink, KafkaSource};
use eddy::prelude::*;
use eddy_sql::{Outcome, Session};
use eddy_testkit::kafka::TestBroker;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, serde::Serialize)]
struct Reading {
    sensor: String,
    value: i64,
    ts: i64,
}

const READINGS: i64 = 3000;

fn reading(i: i64) -> Reading {
    Reading {
        sensor: format!("s{}", i % 3),
        value: i % 10,
        ts: 10_000 + i * 5,
    }
}

#[test]
fn when_a_sql_job_windows_a_topic_into_a_topic_then_the_expected_rows_arrive() {
    let broker = TestBroker::start("sql");
    let b = broker.bootstrap().to_string();
    let timeout = std::time::Duration::from_secs(30);
    create_topic(&b, "readings", 3, timeout).unwrap();
    create_topic(&b, "per-sensor", 2, timeout).unwrap();
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(2)));

    // Produce the readings, and one record that is not JSON.
    let p = Pipeline::new();
    p.read_from(Sources::items(
        (0..READINGS).map(reading).collect::<Vec<_>>(),
    ))
    .write_to(
        KafkaSink::topic("readings")
            .bootstrap(b.clone())
            // One producer: each partition gets its records in time order,
            // so no disorder exceeds the table's watermark lag (records
            // behind it would be late and dropped).
            .parallelism(1)
            .json::<Reading>(),
    );
    eddy.submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();
    let p = Pipeline::new();
    p.read_from(Sources::items(vec!["not json".to_string()]))
        .write_to(KafkaSink::topic("readings").bootstrap(b.clone()).string());
    eddy.submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();

    let mut s = Session::new(eddy.clone(), Grid::new());
    let script = format!(
        "CREATE TABLE readings (sensor VARCHAR, value BIGINT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
         WITH ('connector' = 'kafka', 'topic' = 'readings', 'properties.bootstrap.servers' = '{b}',
               'format' = 'json', 'scan.startup.mode' = 'earliest-offset',
               'scan.bounded.mode' = 'latest-offset', 'dead-letter.topic' = 'readings-bad');
         CREATE TABLE per_sensor (window_start TIMESTAMP(3), sensor VARCHAR, n BIGINT, total BIGINT,
           PRIMARY KEY (sensor) NOT ENFORCED)
         WITH ('connector' = 'kafka', 'topic' = 'per-sensor', 'properties.bootstrap.servers' = '{b}',
               'json.timestamp-format' = 'epoch-millis');
         CREATE JOB per_sensor AS INSERT INTO per_sensor
           SELECT window_start, sensor, COUNT(*), SUM(value)
           FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '2' SECOND))
           GROUP BY window_start, window_end, sensor;"
    );
    let outcomes = s.execute_script(&script, |_| {}).unwrap();
    assert!(matches!(outcomes.last(), Some(Outcome::Job { .. })));
    s.wait_for_bounded_jobs().unwrap();

    // The model: per 2-second window and sensor, count and sum.
    let mut expected: BTreeMap<(i64, String), (i64, i64)> = BTreeMap::new();
    for i in 0..READINGS {
        let r = reading(i);
        let e = expected
            .entry((r.ts.div_euclid(2000) * 2000, r.sensor))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += r.value;
    }

    // Read the output topic back with a plain pipeline.
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(
        KafkaSource::topic("per-sensor")
            .bootstrap(b.clone())
            .stop_at_end()
            .map_record(|r: eddy::kafka::KafkaRecord<Vec<u8>, Vec<u8>>| {
                (
                    r.key.map(|k| String::from_utf8(k).unwrap()),
                    String::from_utf8(r.value).unwrap(),
                )
            }),
    )
    .write_to(sink);
    eddy.submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();
    let mut actual: BTreeMap<(i64, String), (i64, i64)> = BTreeMap::new();
    for (key, value) in out.take() {
        let v: serde_json::Value = serde_json::from_str(&value).unwrap();
        let sensor = v["sensor"].as_str().unwrap().to_string();
        assert_eq!(
            key.as_deref(),
            Some(sensor.as_str()),
            "records are keyed by the primary key"
        );
        let start = v["window_start"].as_i64().expect("epoch-millis timestamps");
        let row = (v["n"].as_i64().unwrap(), v["total"].as_i64().unwrap());
        assert!(
            actual.insert((start, sensor), row).is_none(),
            "a window written twice: {value}"
        );
    }
    assert_eq!(actual, expected);

    // The record that was not JSON went to the dead-letter topic.
    let p = Pipeline::new();
    let (sink, bad) = Sinks::collect();
    p.read_from(
        KafkaSource::topic("readings-bad")
            .bootstrap(b.clone())
            .stop_at_end()
            .string(),
    )
    .write_to(sink);
    eddy.submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(bad.take(), vec!["not json".to_string()]);

    // And the output topic reads back as a bounded SQL table.
    s.execute(&format!(
        "CREATE TABLE back (window_start TIMESTAMP(3), sensor VARCHAR, n BIGINT, total BIGINT)
         WITH ('connector' = 'kafka', 'topic' = 'per-sensor', 'properties.bootstrap.servers' = '{b}',
               'scan.bounded.mode' = 'latest-offset')"
    ))
    .unwrap();
    let Outcome::Rows { rows, .. } = s.execute("SELECT SUM(n) FROM back").unwrap() else {
        panic!()
    };
    assert_eq!(rows[0][0], eddy_sql::Value::Int(READINGS));
}
