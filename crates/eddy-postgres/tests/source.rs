//! `PostgresSource` against a real server.

use eddy_core::{Processor, ProcessorContext, VecOutbox};
use eddy_pipeline::Source;
use eddy_postgres::{PostgresSource, Row};
use eddy_testkit::postgres::TestPg;

fn account(row: &Row) -> Result<(i64, String), String> {
    let id = row.try_get("id").map_err(|e| format!("column 'id': {e}"))?;
    let owner = row
        .try_get("owner")
        .map_err(|e| format!("column 'owner': {e}"))?;
    Ok((id, owner))
}

#[test]
fn when_query_runs_then_every_row_is_emitted_in_order_under_backpressure() {
    let pg = TestPg::start();
    pg.psql(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL); \
             INSERT INTO accounts SELECT g, 'owner-' || g FROM generate_series(1, 250) g",
    );
    let source = PostgresSource::new(
        &pg.url(),
        "SELECT id, owner FROM accounts ORDER BY id",
        account,
    );
    let ctx = ProcessorContext::standalone("pg-source");
    let mut p = source.create(&ctx);
    assert!(!p.is_cooperative());
    p.init(&ctx).unwrap();
    // A small outbox forces the source to stop and resume.
    let mut outbox = VecOutbox::with_capacity(7);
    let mut got = Vec::new();
    loop {
        let done = p.complete(&mut outbox).unwrap();
        got.extend(outbox.items.drain(..).map(|e| e.value));
        if done {
            break;
        }
    }
    let expected: Vec<(i64, String)> = (1..=250).map(|i| (i, format!("owner-{i}"))).collect();
    assert_eq!(got, expected);
}

#[test]
fn when_a_row_does_not_fit_then_the_error_names_the_column() {
    let pg = TestPg::start();
    pg.psql("CREATE TABLE accounts (id text, owner text)");
    pg.psql("INSERT INTO accounts VALUES ('x', 'y')");
    let source = PostgresSource::new(&pg.url(), "SELECT id, owner FROM accounts", account);
    let ctx = ProcessorContext::standalone("pg-source");
    let mut p = source.create(&ctx);
    let mut outbox = VecOutbox::with_capacity(10);
    let err = p.complete(&mut outbox).unwrap_err().to_string();
    assert!(err.contains("column 'id'"), "{err}");
}
