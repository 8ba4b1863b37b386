//! The sink benchmark runs end to end (a small run here; the numbers come
//! from `cargo test --release -p eddy-bench --test postgres -- --ignored --nocapture`).

use eddy_testkit::postgres::TestPg;

#[test]
fn when_bench_runs_then_both_contenders_write_every_row() {
    let pg = TestPg::start();
    let report = eddy_bench::postgres::run(&pg.url(), 2_000).unwrap();
    assert_eq!(report.rows, 2_000);
    assert!(report.baseline_rows_per_sec > 0.0 && report.sink_rows_per_sec > 0.0);
    assert_eq!(
        pg.psql("SELECT to_regclass('eddy_bench_sink') IS NULL"),
        "t",
        "table dropped"
    );
}

/// The full benchmark; prints its report.
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn sink_throughput_report() {
    let pg = TestPg::start();
    for _ in 0..3 {
        println!("{}", eddy_bench::postgres::run(&pg.url(), 500_000).unwrap());
    }
}
