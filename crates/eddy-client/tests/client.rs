//! The client against a real node started in-process on port 0: entries
//! round trip, queries, jobs and their lifecycle, errors, and the near
//! cache's hits and invalidation from the change stream.

use eddy_client::{Client, ClientError, JobAction};
use eddy_grid::Grid;
use eddy_pipeline::{agg, Pipeline, Sinks, Sources, WindowDefinition};
use eddy_runtime::{Eddy, EddyConfig, Guarantee, JobConfig};
use eddy_server::{start, Node, ServerConfig, ServerHandle};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn node_and_server(config: ServerConfig) -> (Arc<Node>, ServerHandle) {
    let node = Node::new(
        Arc::new(Eddy::new(EddyConfig::with_threads(1))),
        Grid::new(),
    );
    let accounts = node.grid.map::<String, Value>("accounts").unwrap();
    for i in 0..20 {
        accounts.put(
            format!("acc-{i}"),
            json!({"owner": format!("owner {i}"), "balance": i * 100}),
        );
    }
    node.watch_map(&accounts);
    node.grid.map::<u64, u64>("plain").unwrap().put(1, 1);
    let server = start(node.clone(), {
        let mut c = config;
        c.bind = "127.0.0.1:0".parse().unwrap();
        c
    })
    .unwrap();
    (node, server)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn when_entries_are_put_read_queried_and_deleted_then_they_round_trip() {
    let (_node, server) = node_and_server(ServerConfig::default());
    let client = Client::new(&server.url()).unwrap();
    client.health().unwrap();
    assert!(client.ready().unwrap());

    assert_eq!(
        client
            .put("accounts", "acc-x", &json!({"owner": "X", "balance": 7}))
            .unwrap(),
        None
    );
    assert_eq!(
        client.get("accounts", "acc-x").unwrap().unwrap()["balance"],
        7
    );
    let old = client
        .put("accounts", "acc-x", &json!({"owner": "X", "balance": 8}))
        .unwrap();
    assert_eq!(old.unwrap()["balance"], 7);

    let page = client
        .query("accounts", Some("balance >= 1500"), 0, 3)
        .unwrap();
    assert_eq!((page.total, page.pages, page.entries.len()), (5, 2, 3));
    assert_eq!(
        client
            .aggregate("accounts", "count", Some("balance < 300"))
            .unwrap(),
        json!(4)
    );

    assert_eq!(
        client.delete("accounts", "acc-x").unwrap().unwrap()["balance"],
        8
    );
    assert_eq!(client.get("accounts", "acc-x").unwrap(), None);
    assert_eq!(client.delete("accounts", "acc-x").unwrap(), None);
    assert_eq!(client.get("plain", "1").unwrap(), Some(json!(1)));

    let err = client.get("nope", "k").unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("no map named 'nope'"), "{err}");
    let err = client
        .query("accounts", Some("balance >"), 0, 10)
        .unwrap_err();
    assert_eq!(err.status(), Some(400));

    let maps = client.maps().unwrap();
    assert!(maps.iter().any(|m| m.name == "accounts"));
    assert!(client
        .metrics_text()
        .unwrap()
        .contains("eddy_map_entries{map=\"accounts\"}"));
    assert!(client.jobs().unwrap().is_empty());
    assert_eq!(client.job(1).unwrap_err().status(), Some(404));
    assert_eq!(
        client
            .job_action(1, JobAction::Cancel)
            .unwrap_err()
            .status(),
        Some(404)
    );
}

#[test]
fn when_the_node_has_a_token_then_writes_need_it() {
    let (_node, server) = node_and_server(ServerConfig::default().with_token("t0ken"));
    let anonymous = Client::new(&server.url()).unwrap();
    assert_eq!(
        anonymous
            .put("accounts", "k", &json!(1))
            .unwrap_err()
            .status(),
        Some(401)
    );
    assert!(anonymous.get("accounts", "acc-1").unwrap().is_some());
    let authorised = Client::new(&server.url()).unwrap().with_token("t0ken");
    authorised.put("accounts", "k", &json!(1)).unwrap();
}

#[test]
fn when_a_job_is_suspended_resumed_restarted_and_exported_then_the_client_reports_each_status() {
    let dir = std::env::temp_dir().join(format!("eddy-client-lifecycle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let node = Node::new(
        Arc::new(Eddy::new({
            let mut c = EddyConfig::with_threads(1);
            c.snapshot_dir = dir.clone();
            c
        })),
        Grid::new(),
    );
    let p = Pipeline::new();
    p.read_from(Sources::generator(|n| n).rate(1000.0))
        .with_timestamps(|n| *n as i64, Duration::from_millis(10))
        .grouping_key(|n| n % 4)
        .window(WindowDefinition::tumbling(Duration::from_millis(100)))
        .aggregate(agg::count())
        .write_to(Sinks::noop().0);
    let config = JobConfig::default()
        .name("counts")
        .guarantee(Guarantee::ExactlyOnce)
        .snapshot_interval(Duration::from_millis(50));
    let id = node.eddy.submit(p, config).unwrap().id();
    let server = start(node, ServerConfig::bind("127.0.0.1:0".parse().unwrap())).unwrap();
    let client = Client::new(&server.url()).unwrap();
    wait_until("a snapshot completed", || {
        client.job(id).unwrap().summary.snapshots.unwrap().completed > 0
    });
    let job = client.job(id).unwrap();
    assert_eq!(job.summary.guarantee, "exactly-once");
    assert!(job.summary.snapshots.unwrap().last_bytes.unwrap() > 0);

    assert_eq!(client.suspend_job(id).unwrap().status, "suspended");
    let err = client.restart_job(id).unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert!(err.to_string().contains("resume"), "{err}");
    assert_eq!(client.resume_job(id).unwrap().status, "running");
    assert_eq!(client.restart_job(id).unwrap().status, "running");

    let exported = client.export_snapshot(id, "v1").unwrap();
    assert_eq!(
        (exported.snapshot.as_str(), exported.status.as_str()),
        ("v1", "running")
    );
    assert!(
        std::path::Path::new(&exported.path).exists(),
        "{exported:?}"
    );
    assert_eq!(
        client.export_snapshot(id, "../x").unwrap_err().status(),
        Some(400)
    );
    let last = client.cancel_and_export_snapshot(id, "v1-final").unwrap();
    assert_eq!(last.status, "cancelled");
    assert_eq!(client.resume_job(id).unwrap_err().status(), Some(409));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_a_key_is_read_twice_then_the_second_read_hits_the_near_cache() {
    let (node, server) = node_and_server(ServerConfig::default());
    let client = Client::new(&server.url()).unwrap();
    let cache = client.near_cache("accounts", 100).unwrap();
    let gets_before = node.grid.json_map("accounts").unwrap().stats().gets;
    let first = cache.get("acc-3").unwrap();
    let second = cache.get("acc-3").unwrap();
    assert_eq!(first, second);
    assert_eq!(cache.get("absent").unwrap(), None);
    assert_eq!(cache.get("absent").unwrap(), None);
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.entries),
        (2, 2, 2),
        "{stats:?}"
    );
    assert!(stats.live);
    let gets_after = node.grid.json_map("accounts").unwrap().stats().gets;
    assert_eq!(
        gets_after - gets_before,
        2,
        "only the misses reached the node"
    );
}

#[test]
fn when_an_entry_changes_on_the_node_then_the_near_cache_drops_it_and_reads_the_new_value() {
    let (node, server) = node_and_server(ServerConfig::default());
    let client = Client::new(&server.url()).unwrap();
    let cache = client.near_cache("accounts", 100).unwrap();
    assert_eq!(cache.get("acc-5").unwrap().unwrap()["balance"], 500);
    assert_eq!(cache.get("acc-5").unwrap().unwrap()["balance"], 500);
    assert_eq!(cache.get("acc-new").unwrap(), None);

    // Changed on the node directly, not through this client.
    let accounts = node.grid.map::<String, Value>("accounts").unwrap();
    accounts.put("acc-5".into(), json!({"owner": "owner 5", "balance": 555}));
    accounts.put("acc-new".into(), json!({"owner": "new", "balance": 1}));
    wait_until("the cache dropped both keys", || {
        cache.stats().invalidations >= 2
    });
    assert_eq!(cache.get("acc-5").unwrap().unwrap()["balance"], 555);
    assert_eq!(cache.get("acc-new").unwrap().unwrap()["owner"], "new");

    accounts.remove(&"acc-5".to_owned());
    wait_until("the removal reached the cache", || {
        cache.stats().invalidations >= 3
    });
    assert_eq!(cache.get("acc-5").unwrap(), None);

    accounts.clear();
    wait_until("the clear emptied the cache", || cache.stats().entries == 0);
}

#[test]
fn when_the_cache_is_full_then_it_stays_within_capacity() {
    let (_node, server) = node_and_server(ServerConfig::default());
    let cache = Client::new(&server.url())
        .unwrap()
        .near_cache("accounts", 5)
        .unwrap();
    for i in 0..20 {
        cache.get(&format!("acc-{i}")).unwrap();
    }
    assert_eq!(cache.stats().entries, 5);
}

#[test]
fn when_the_map_does_not_exist_then_no_near_cache_is_opened() {
    let (_node, server) = node_and_server(ServerConfig::default());
    let client = Client::new(&server.url()).unwrap();
    match client.near_cache("missing", 10) {
        Err(ClientError::Http {
            status: 404,
            message,
        }) => {
            assert!(message.contains("missing"), "{message}")
        }
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[test]
fn when_the_node_is_down_then_the_error_says_so() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = Client::new(&format!("http://{free}")).unwrap();
    let err = client.jobs().unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    assert!(err.to_string().contains("eddy serve"), "{err}");
}
