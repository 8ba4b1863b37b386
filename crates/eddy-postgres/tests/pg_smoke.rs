//! The throwaway test cluster itself works.
mod common;

#[test]
fn when_cluster_started_then_psql_answers() {
    let pg = common::TestPg::start();
    assert_eq!(pg.psql("select 1"), "1");
}
