//! Snapshot failures are never silent: each is counted with its cause and
//! retried at the next interval, and after too many in a row the job fails
//! with an error that says what failed and what to do.

use eddy_core::{EddyError, Guarantee};
use eddy_pipeline::{Pipeline, Sinks, Sources};
use eddy_runtime::{Eddy, EddyConfig, JobConfig, JobStatus};
use std::time::{Duration, Instant};

#[test]
fn when_snapshots_keep_failing_then_they_are_counted_and_the_job_fails_with_the_cause() {
    let root = std::env::temp_dir().join(format!("eddy-snapshot-failures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let p = Pipeline::new();
    p.read_from(Sources::generator(|n: u64| n).rate(2_000.0))
        .write_to(Sinks::noop().0);
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let job = eddy
        .submit(
            p,
            JobConfig::default()
                .name("doomed")
                .guarantee(Guarantee::AtLeastOnce)
                .snapshot_interval(Duration::from_millis(20))
                .snapshot_dir(&root)
                .snapshot_failures_max(3),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while job.snapshot_stats().completed == 0 {
        assert!(Instant::now() < deadline, "no snapshot completed");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The job's snapshot directory becomes a file: every write fails, even
    // for root, which permissions would not stop.
    let dir = root.join("doomed");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();

    let err = job.join().unwrap_err();
    assert!(matches!(err, EddyError::SnapshotFailed(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("3 snapshots failed in a row"), "{text}");
    assert!(text.contains("doomed"), "{text}");
    assert_eq!(job.status(), JobStatus::Failed);
    let stats = job.snapshot_stats();
    assert!(stats.failed >= 3, "{stats:?}");
    assert!(stats.last_failure.is_some(), "{stats:?}");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&dir);
}
