//! The demo over Kafka as a user runs it: `eddy produce --generator
//! transactions` writes exactly what `eddy demo` reads, the summary counts
//! what was read, and a record naming an unknown country goes to the
//! dead-letter topic with its reason while the job goes on.

use eddy_testkit::kafka::TestBroker;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .output()
        .expect("the eddy binary runs")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn summary(out: Output, what: &str) -> serde_json::Value {
    serde_json::from_str(&ok(out, what)).expect("one JSON summary")
}

#[test]
fn when_produced_transactions_are_read_by_the_demo_then_alerts_equal_the_in_process_run() {
    let broker = TestBroker::start("demo-kafka-cli");
    let b = broker.bootstrap();
    let (topic, alerts) = ("cli-transactions", "cli-alerts");
    ok(
        eddy(&[
            "produce",
            "--bootstrap",
            b,
            "--topic",
            topic,
            "--partitions",
            "3",
            "--generator",
            "transactions",
            "--count",
            "30000",
            "--json",
        ]),
        "eddy produce",
    );
    // One record that decodes but names a country the demo does not know.
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args([
            "produce",
            "--bootstrap",
            b,
            "--topic",
            topic,
            "--key-field",
            "card",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.as_mut().unwrap(),
        "{{\"card\":5,\"merchant\":3,\"country\":9,\"amount_cents\":100,\"ts\":1767225600000}}"
    )
    .unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    let over_kafka = summary(
        eddy(&[
            "demo",
            "--bootstrap",
            b,
            "--transactions-topic",
            topic,
            "--alerts-topic",
            alerts,
            "--skip-produce",
            "--events",
            "30000",
            "--json",
        ]),
        "eddy demo over Kafka",
    );
    let in_process = summary(eddy(&["demo", "--events", "30000", "--json"]), "eddy demo");
    // The summary counts what was read: the 30,000 good records (the bad
    // one went to the dead-letter topic instead).
    assert_eq!(over_kafka["events_in"], 30_000, "{over_kafka}");
    assert_eq!(
        over_kafka["alerts_digest"], in_process["alerts_digest"],
        "{over_kafka} vs {in_process}"
    );

    let dead = ok(
        eddy(&[
            "consume",
            "--bootstrap",
            b,
            "--topic",
            &format!("{topic}.dlq"),
            "--from-beginning",
            "--max",
            "1",
            "--idle-timeout-secs",
            "20",
            "--json",
        ]),
        "eddy consume of the dead-letter topic",
    );
    let letter: serde_json::Value = serde_json::from_str(dead.trim()).expect("one dead letter");
    let reason = letter["headers"]["eddy.dlq.reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("country 9"), "{letter}");
}
