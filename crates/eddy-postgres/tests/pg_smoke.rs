//! The throwaway test cluster itself works.

#[test]
fn when_cluster_started_then_psql_answers() {
    let pg = eddy_testkit::postgres::TestPg::start();
    assert_eq!(pg.psql("select 1"), "1");
}
