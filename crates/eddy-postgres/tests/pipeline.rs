//! The connectors inside real jobs: a query feeds a pipeline that upserts
//! into a table, and a permanent sink error fails the job naming the column.

use eddy_pipeline::Pipeline;
use eddy_postgres::{PostgresSink, PostgresSource, Row};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use eddy_testkit::postgres::TestPg;
use serde::Serialize;

#[derive(Serialize, Clone)]
struct Total {
    account: i64,
    total: i64,
}

fn payment(row: &Row) -> Result<(i64, i64), String> {
    let account = row
        .try_get("account")
        .map_err(|e| format!("column 'account': {e}"))?;
    let amount = row
        .try_get("amount")
        .map_err(|e| format!("column 'amount': {e}"))?;
    Ok((account, amount))
}

#[test]
fn when_a_job_reads_and_upserts_then_the_table_holds_the_result() {
    let pg = TestPg::start();
    pg.psql(
        "CREATE TABLE payments (account bigint, amount bigint); \
         INSERT INTO payments SELECT g % 10, g FROM generate_series(1, 1000) g; \
         CREATE TABLE totals (account bigint PRIMARY KEY, total bigint)",
    );
    let p = Pipeline::new();
    p.read_from(PostgresSource::new(
        &pg.url(),
        "SELECT account, amount FROM payments ORDER BY amount",
        payment,
    ))
    // A running maximum stands in for any per-key result that changes.
    .map(|(account, amount)| Total {
        account,
        total: amount,
    })
    .write_to(PostgresSink::new(&pg.url(), "totals", &["account", "total"]).upsert(&["account"]));
    let eddy = Eddy::new(EddyConfig::default());
    eddy.submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(pg.psql("SELECT count(*) FROM totals"), "10");
    assert_eq!(
        pg.psql("SELECT count(*) FROM totals WHERE total <> 990 + account + CASE WHEN account = 0 THEN 10 ELSE 0 END"),
        "0",
        "each account holds its last (largest) amount"
    );
}

#[test]
fn when_the_sink_names_a_missing_column_then_the_job_fails_naming_it() {
    let pg = TestPg::start();
    pg.psql("CREATE TABLE totals (account bigint PRIMARY KEY, total bigint)");
    let p = Pipeline::new();
    p.read_from(eddy_pipeline::Sources::items(vec![Total {
        account: 1,
        total: 2,
    }]))
    .write_to(PostgresSink::new(&pg.url(), "totals", &["account", "totl"]));
    let eddy = Eddy::new(EddyConfig::default());
    let err = eddy
        .submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column 'totl'") && err.contains("existing columns: account, total"),
        "{err}"
    );
}
