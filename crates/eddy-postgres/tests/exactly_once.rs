//! `PostgresSink` under exactly-once against a real server, driving its
//! processor directly: save, "crash" (drop without commit), restore into a
//! fresh instance, and check which rows the table holds.

use eddy_core::snapshot::{read_entries, SnapshotWriter};
use eddy_core::{Event, Guarantee, Inbox, Processor, ProcessorContext, VecOutbox};
use eddy_pipeline::Sink;
use eddy_postgres::{PostgresSink, PostgresSinkP};
use eddy_testkit::postgres::TestPg;
use serde::Serialize;

#[derive(Serialize, Clone)]
struct Payment {
    id: i64,
    amount: f64,
}

fn context(job: &str) -> ProcessorContext {
    let mut ctx = ProcessorContext::standalone("pg-sink");
    ctx.job_name = job.to_string();
    ctx.guarantee = Guarantee::ExactlyOnce;
    ctx
}

fn started(pg: &TestPg, job: &str) -> PostgresSinkP<Payment> {
    // Small batches, so that one epoch takes several statements.
    let sink = PostgresSink::new(&pg.url(), "payments", &["id", "amount"]).batch_rows(3);
    let ctx = context(job);
    let mut p = sink.create(&ctx);
    p.init(&ctx).unwrap();
    p
}

fn send(p: &mut PostgresSinkP<Payment>, ids: std::ops::Range<i64>) {
    let items = ids
        .map(|id| Event::untimed(Payment { id, amount: 1.0 }))
        .collect();
    p.process(
        0,
        &mut Inbox::from_vec(items),
        &mut VecOutbox::with_capacity(0),
    )
    .unwrap();
}

fn save(p: &mut PostgresSinkP<Payment>, snapshot_id: u64) -> Vec<u8> {
    let mut w = SnapshotWriter::new();
    p.save_to_snapshot(snapshot_id, &mut w).unwrap();
    w.take().0
}

fn restore(p: &mut PostgresSinkP<Payment>, snapshot: &[u8]) {
    for entry in read_entries(snapshot) {
        p.restore_from_snapshot(entry.unwrap()).unwrap();
    }
    p.finish_snapshot_restore().unwrap();
}

fn rows(pg: &TestPg) -> String {
    pg.psql("SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' ids' FROM payments")
}

fn payments_table(pg: &TestPg) {
    pg.psql("CREATE TABLE payments (id bigint, amount double precision)");
}

#[test]
fn when_an_epoch_is_saved_then_its_rows_appear_only_when_its_snapshot_commits() {
    let pg = TestPg::start();
    payments_table(&pg);
    let mut p = started(&pg, "visible");
    send(&mut p, 0..5);
    assert_eq!(rows(&pg), "0 rows, 0 ids", "rows wait for their epoch");
    save(&mut p, 1);
    send(&mut p, 5..7);
    assert_eq!(
        rows(&pg),
        "0 rows, 0 ids",
        "a saved epoch waits for its commit"
    );
    p.snapshot_commit_finish(1).unwrap();
    assert_eq!(rows(&pg), "5 rows, 5 ids", "epoch 1 only");
    save(&mut p, 2);
    // The end of the input writes the sealed epoch 2 and the current one.
    send(&mut p, 7..9);
    assert!(p.complete(&mut VecOutbox::with_capacity(0)).unwrap());
    assert_eq!(rows(&pg), "9 rows, 9 ids");
    assert_eq!(save(&mut p, 3).len(), 0, "nothing is left to save");
    p.close().unwrap();
    assert_eq!(
        pg.psql("SELECT writer || ' ' || epoch FROM eddy_commit_markers"),
        r#"["visible","pg-sink",0] 2"#
    );
}

#[test]
fn when_restored_then_an_uncommitted_epoch_is_written_once_and_a_committed_one_skipped() {
    let pg = TestPg::start();
    payments_table(&pg);
    let mut p = started(&pg, "restore");
    send(&mut p, 0..5);
    save(&mut p, 1);
    send(&mut p, 5..10);
    // Snapshot 2 holds epochs 1 and 2; only 1 commits before the crash.
    let snapshot = save(&mut p, 2);
    p.snapshot_commit_finish(1).unwrap();
    drop(p);
    assert_eq!(rows(&pg), "5 rows, 5 ids");

    let mut p = started(&pg, "restore");
    restore(&mut p, &snapshot);
    send(&mut p, 10..12);
    save(&mut p, 3);
    assert_eq!(rows(&pg), "10 rows, 10 ids", "recovery wrote epoch 2 alone");
    p.snapshot_commit_finish(3).unwrap();
    assert_eq!(rows(&pg), "12 rows, 12 ids");
    drop(p);

    // Restoring the same snapshot again writes nothing of it.
    let mut p = started(&pg, "restore");
    restore(&mut p, &snapshot);
    assert!(p.complete(&mut VecOutbox::with_capacity(0)).unwrap());
    assert_eq!(rows(&pg), "12 rows, 12 ids");
}

#[test]
fn when_a_job_starts_afresh_under_an_old_name_then_its_first_epoch_is_written() {
    let pg = TestPg::start();
    payments_table(&pg);
    let mut old = started(&pg, "reused");
    send(&mut old, 0..3);
    save(&mut old, 7);
    old.snapshot_commit_finish(7).unwrap();
    drop(old);

    let mut p = started(&pg, "reused");
    send(&mut p, 3..5);
    save(&mut p, 1);
    p.snapshot_commit_finish(1).unwrap();
    assert_eq!(
        rows(&pg),
        "5 rows, 5 ids",
        "the old marker (7) did not hide epoch 1"
    );
}

#[test]
fn when_the_connection_drops_before_a_commit_then_the_epoch_is_written_once() {
    let pg = TestPg::start();
    payments_table(&pg);
    let mut p = started(&pg, "reconnect");
    send(&mut p, 0..5);
    save(&mut p, 1);
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'eddy' AND pid <> pg_backend_pid()");
    p.snapshot_commit_finish(1).unwrap();
    assert_eq!(rows(&pg), "5 rows, 5 ids");
}

#[test]
fn when_a_value_is_rejected_in_a_commit_then_the_job_fails_naming_the_column() {
    let pg = TestPg::start();
    pg.psql("CREATE TABLE payments (id bigint, amount smallint)");
    let mut p = started(&pg, "rejected");
    let items = vec![Event::untimed(Payment { id: 1, amount: 1e9 })];
    p.process(
        0,
        &mut Inbox::from_vec(items),
        &mut VecOutbox::with_capacity(0),
    )
    .unwrap();
    save(&mut p, 1);
    let err = p.snapshot_commit_finish(1).unwrap_err().to_string();
    assert!(
        err.contains("column 'amount'") && err.contains("smallint"),
        "{err}"
    );
    assert_eq!(rows(&pg), "0 rows, 0 ids");
}
