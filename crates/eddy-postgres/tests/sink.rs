//! `PostgresSink` against a real server: upserts, batching and errors.

use eddy_core::{Event, Inbox, Processor, ProcessorContext, ProcessorError, VecOutbox};
use eddy_pipeline::Sink;
use eddy_postgres::PostgresSink;
use eddy_testkit::postgres::TestPg;
use serde::Serialize;
use std::time::Duration;

#[derive(Serialize, Clone)]
struct Payment {
    id: i64,
    name: String,
    amount: f64,
}

/// Runs a sink over `items` the way the runtime does (init, inboxes of
/// `chunk` items, complete until done, close).
fn run_sink<T: Serialize + Send + 'static>(
    sink: &PostgresSink<T>,
    items: Vec<T>,
    chunk: usize,
) -> Result<(), ProcessorError> {
    let ctx = ProcessorContext::standalone("pg-sink");
    let mut p = sink.create(&ctx);
    assert!(
        !p.is_cooperative(),
        "a blocking sink must get its own thread"
    );
    p.init(&ctx)?;
    let mut outbox = VecOutbox::with_capacity(0);
    let mut items = items.into_iter().map(Event::untimed).peekable();
    while items.peek().is_some() {
        let batch: Vec<_> = items.by_ref().take(chunk).collect();
        p.process(0, &mut Inbox::from_vec(batch), &mut outbox)?;
    }
    while !p.complete(&mut outbox)? {}
    p.close()
}

fn payments_table(pg: &TestPg) {
    pg.psql("CREATE TABLE payments (id bigint PRIMARY KEY, name text NOT NULL, amount double precision)");
}

#[test]
fn when_input_has_duplicate_keys_then_upsert_keeps_the_last_value_per_key() {
    let pg = TestPg::start();
    payments_table(&pg);
    let items: Vec<Payment> = (0..3_000)
        .map(|i| Payment {
            id: i % 100,
            name: format!("n{i}"),
            amount: i as f64,
        })
        .collect();
    // Batches of 256 put duplicates both within one batch and across batches.
    let sink = PostgresSink::new(&pg.url(), "payments", &["id", "name", "amount"])
        .upsert(&["id"])
        .batch_rows(256);
    run_sink(&sink, items, 100).unwrap();
    assert_eq!(pg.psql("SELECT count(*) FROM payments"), "100");
    let wrong = pg.psql(
        "SELECT count(*) FROM payments WHERE amount <> 2900 + id OR name <> 'n' || (2900 + id)",
    );
    assert_eq!(wrong, "0", "every key holds the value of its last item");
}

#[test]
fn when_inserting_then_every_item_is_a_row_and_slow_streams_flush_after_linger() {
    let pg = TestPg::start();
    payments_table(&pg);
    let sink = PostgresSink::new(&pg.url(), "payments", &["id", "name", "amount"])
        .linger(Duration::from_millis(200));
    let ctx = ProcessorContext::standalone("pg-sink");
    let mut p = sink.create(&ctx);
    p.init(&ctx).unwrap();
    let mut outbox = VecOutbox::with_capacity(0);
    let items = (0..5)
        .map(|i| {
            Event::untimed(Payment {
                id: i,
                name: "x".into(),
                amount: 1.5,
            })
        })
        .collect();
    p.process(0, &mut Inbox::from_vec(items), &mut outbox)
        .unwrap();
    assert_eq!(
        pg.psql("SELECT count(*) FROM payments"),
        "0",
        "a partial batch waits"
    );
    std::thread::sleep(Duration::from_millis(250));
    assert!(p.try_process(&mut outbox).unwrap());
    assert_eq!(
        pg.psql("SELECT count(*) FROM payments"),
        "5",
        "linger flushed it"
    );
    assert!(p.complete(&mut outbox).unwrap());
}

#[test]
fn when_a_column_is_wrong_then_the_job_fails_naming_it() {
    let pg = TestPg::start();
    payments_table(&pg);
    let url = pg.url();

    let sink = PostgresSink::new(&url, "payments", &["id", "nmae"]);
    let err = run_sink::<Payment>(&sink, vec![], 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column 'nmae'") && err.contains("payments"),
        "{err}"
    );

    let sink = PostgresSink::new(&url, "paymnets", &["id"]);
    let err = run_sink::<Payment>(&sink, vec![], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("table 'paymnets' does not exist"), "{err}");

    #[derive(Serialize)]
    struct Bad {
        id: i64,
        name: String,
        amount: String,
    }
    let sink = PostgresSink::new(&url, "payments", &["id", "name", "amount"]);
    let bad = Bad {
        id: 1,
        name: "x".into(),
        amount: "lots".into(),
    };
    let err = run_sink(&sink, vec![bad], 1).unwrap_err().to_string();
    assert!(
        err.contains("column 'amount'") && err.contains("double precision"),
        "{err}"
    );
}

#[test]
fn when_the_connection_drops_between_batches_then_the_sink_reconnects() {
    let pg = TestPg::start();
    payments_table(&pg);
    let sink = PostgresSink::new(&pg.url(), "payments", &["id", "name", "amount"]).batch_rows(10);
    let ctx = ProcessorContext::standalone("pg-sink");
    let mut p = sink.create(&ctx);
    p.init(&ctx).unwrap();
    let mut outbox = VecOutbox::with_capacity(0);
    let batch = |from: i64| {
        Inbox::from_vec(
            (from..from + 10)
                .map(|i| {
                    Event::untimed(Payment {
                        id: i,
                        name: "x".into(),
                        amount: 0.0,
                    })
                })
                .collect(),
        )
    };
    p.process(0, &mut batch(0), &mut outbox).unwrap();
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'eddy' AND pid <> pg_backend_pid()");
    p.process(0, &mut batch(10), &mut outbox).unwrap();
    assert_eq!(pg.psql("SELECT count(*) FROM payments"), "20");
}

#[test]
fn when_the_server_restarts_during_a_batch_then_the_sink_retries_until_it_is_back() {
    let pg = std::sync::Arc::new(TestPg::start());
    payments_table(&pg);
    let sink = PostgresSink::new(&pg.url(), "payments", &["id", "name", "amount"]).batch_rows(5);
    let ctx = ProcessorContext::standalone("pg-sink");
    let mut p = sink.create(&ctx);
    p.init(&ctx).unwrap();
    pg.stop();
    let restarter = {
        let pg = pg.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            pg.start_server();
        })
    };
    let items = (0..5)
        .map(|i| {
            Event::untimed(Payment {
                id: i,
                name: "x".into(),
                amount: 0.0,
            })
        })
        .collect();
    let mut outbox = VecOutbox::with_capacity(0);
    // Blocks in the backoff loop while the server is down.
    p.process(0, &mut Inbox::from_vec(items), &mut outbox)
        .unwrap();
    restarter.join().unwrap();
    assert_eq!(pg.psql("SELECT count(*) FROM payments"), "5");
}

#[test]
fn when_nothing_listens_then_the_job_fails_after_its_retries_saying_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("host=127.0.0.1 port={port} user=postgres dbname=eddy");
    let backoff = eddy_postgres::Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(1),
        attempts: 2,
    };
    let sink = PostgresSink::new(&url, "payments", &["id"]).backoff(backoff);
    let err = run_sink::<Payment>(&sink, vec![], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot reach PostgreSQL"), "{err}");

    let sink = PostgresSink::new("hots=nowhere", "payments", &["id"]).backoff(backoff);
    let err = run_sink::<Payment>(&sink, vec![], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("check the connection string"), "{err}");
}
