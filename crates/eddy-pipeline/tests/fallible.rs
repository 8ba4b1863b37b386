//! The fallible stages: an item whose function returns an error or panics
//! fails the job under the fail policy, and under the dead-letter policy
//! goes to the job's dead letters with the stage and the reason while every
//! other item goes on; the stage's policy wins over the job's.

use eddy_core::{DeadLetter, DeadLetters, ErrorPolicy, Guarantee};
use eddy_pipeline::{Pipeline, Sinks, Sources};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn collecting() -> (DeadLetters, Arc<Mutex<Vec<DeadLetter>>>) {
    let letters = Arc::new(Mutex::new(Vec::new()));
    let kept = letters.clone();
    let target = DeadLetters::to(move |l: &DeadLetter| {
        kept.lock().unwrap().push(l.clone());
        Ok(())
    });
    (target, letters)
}

/// Records as text: every 100th is not a number, every 250th (from 5)
/// makes the parser panic.
fn records(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| match i {
            i if i % 100 == 7 => format!("bad-{i}"),
            i if i % 250 == 5 => format!("panic-{i}"),
            i => i.to_string(),
        })
        .collect()
}

fn parse(s: &String) -> Result<u32, String> {
    if s.starts_with("panic") {
        panic!("the parser cannot handle {s}");
    }
    s.parse::<u32>().map_err(|e| format!("'{s}': {e}"))
}

#[test]
fn when_the_job_dead_letters_then_bad_items_are_kept_with_their_reason_and_the_rest_goes_on() {
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::items(records(10_000)))
        .named("parse")
        .try_map(parse)
        .try_filter(|n: &u32| {
            if *n == 4_242 {
                Err("4242 is cursed")
            } else {
                Ok(n % 2 == 0)
            }
        })
        .try_flat_map(|n: &u32| -> Result<Vec<u32>, String> { Ok(vec![*n, n + 1]) })
        .write_to(sink);
    let (target, letters) = collecting();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let job = eddy
        .submit(
            p,
            JobConfig::default()
                .on_error(ErrorPolicy::DeadLetter)
                .dead_letters(target),
        )
        .unwrap();
    job.join().unwrap();
    let bad = (0..10_000u32)
        .filter(|i| i % 100 == 7 || i % 250 == 5)
        .count();
    let letters = letters.lock().unwrap().clone();
    assert_eq!(
        letters.len(),
        bad + 1,
        "{:?}",
        &letters[..3.min(letters.len())]
    );
    assert_eq!(job.dead_letters(), letters.len() as u64);
    let panics: Vec<_> = letters
        .iter()
        .filter(|l| l.item.contains("panic-"))
        .collect();
    assert!(!panics.is_empty());
    assert!(panics
        .iter()
        .all(|l| l.error.contains("panicked: the parser cannot handle")));
    assert!(letters
        .iter()
        .any(|l| l.error == "4242 is cursed" && l.stage.contains("try_filter")));
    assert!(
        letters.iter().all(|l| l.stage.starts_with("parse")),
        "{:?}",
        letters[0]
    );
    let expected: Vec<u32> = (0..10_000u32)
        .filter(|i| i % 100 != 7 && i % 250 != 5 && *i != 4_242 && i % 2 == 0)
        .flat_map(|n| [n, n + 1])
        .collect();
    let mut got = out.take();
    got.sort_unstable();
    let mut expected = expected;
    expected.sort_unstable();
    assert_eq!(got, expected);
}

#[test]
fn when_the_policy_is_fail_then_the_job_fails_naming_the_stage_the_error_and_the_fix() {
    let p = Pipeline::new();
    p.read_from(Sources::items(records(1_000)))
        .named("parse")
        .try_map(parse)
        .write_to(Sinks::noop().0);
    let err = Eddy::new(EddyConfig::with_threads(1))
        .submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap_err()
        .to_string();
    assert!(err.contains("parse (try_map)"), "{err}");
    // The first bad item is the one whose parse panics.
    assert!(
        err.contains("panicked: the parser cannot handle panic-5"),
        "{err}"
    );
    assert!(err.contains("ErrorPolicy::DeadLetter"), "{err}");
}

#[test]
fn when_the_stage_says_dead_letter_then_it_wins_over_the_jobs_fail() {
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::items(records(1_000)))
        .try_map(parse)
        .on_error(ErrorPolicy::DeadLetter)
        .write_to(sink);
    let (target, letters) = collecting();
    let eddy = Eddy::new(EddyConfig::with_threads(1));
    let job = eddy
        .submit(p, JobConfig::default().dead_letters(target))
        .unwrap();
    job.join().unwrap();
    assert_eq!(letters.lock().unwrap().len(), 10 + 4);
    assert_eq!(out.len(), 1_000 - 14);
}

#[test]
fn when_a_dead_letter_cannot_be_kept_then_the_job_fails_rather_than_drop_it() {
    let p = Pipeline::new();
    p.read_from(Sources::items(records(1_000)))
        .try_map(parse)
        .write_to(Sinks::noop().0);
    let refusing = DeadLetters::to(|_: &DeadLetter| Err("the dead-letter map is full".into()));
    let err = Eddy::new(EddyConfig::with_threads(1))
        .submit(
            p,
            JobConfig::default()
                .on_error(ErrorPolicy::DeadLetter)
                .dead_letters(refusing),
        )
        .unwrap()
        .join()
        .unwrap_err()
        .to_string();
    assert!(err.contains("the dead-letter map is full"), "{err}");
}

#[test]
fn when_restarted_from_snapshots_under_exactly_once_then_each_good_item_is_delivered_once() {
    let dir = std::env::temp_dir().join(format!("eddy-fallible-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::generator(|n: u64| n).limit(20_000).rate(100_000.0))
        .try_flat_map(|n: &u64| -> Result<Vec<u64>, String> {
            if n % 1_000 == 999 {
                Err(format!("{n} is rejected"))
            } else {
                Ok(vec![*n; 3])
            }
        })
        .write_to(sink);
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let job = eddy
        .submit(
            p,
            JobConfig::default()
                .name("fallible-restarts")
                .guarantee(Guarantee::ExactlyOnce)
                .snapshot_interval(Duration::from_millis(10))
                .snapshot_dir(&dir)
                .on_error(ErrorPolicy::DeadLetter),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(60));
    job.restart();
    job.join().unwrap();
    let mut got = out.take();
    got.sort_unstable();
    let expected: Vec<u64> = (0..20_000u64)
        .filter(|n| n % 1_000 != 999)
        .flat_map(|n| [n; 3])
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    let _ = std::fs::remove_dir_all(&dir);
}
