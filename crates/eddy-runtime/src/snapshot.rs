//! Snapshots: the coordination between a job's tasklets while a snapshot is
//! taken, and the durable store of complete snapshots.
//!
//! A snapshot goes like this. The job's supervisor raises `requested` to the
//! new snapshot id; each source tasklet sees it on its next call, saves its
//! state (its offsets) and injects a barrier after everything it emitted so
//! far. Every other tasklet saves its state when the barrier has arrived on
//! all its inputs (under exactly-once it stops reading an input once the
//! barrier arrived there: alignment), then forwards the barrier. Each saved
//! part is handed here; when every tasklet has acknowledged (or has finished,
//! in which case its final state stands in), the supervisor writes the parts
//! to one file (temporary name, fsync, rename, fsync of the directory) and
//! only then raises `committed`, upon which the tasklets run the second phase
//! of their two-phase commit. The store keeps the last two complete
//! snapshots.
//!
//! At the end of an exactly-once job, each sink whose input ended asks for
//! one more snapshot and completes only once it is committed, so that the
//! latest snapshot always covers every output made visible: a restart or a
//! failure at any point of the end restores it without delivering twice.

use eddy_core::partition::owner_of_partition;
use eddy_core::snapshot::{read_entries, SnapshotEntry, BROADCAST};
use eddy_core::{EddyError, Guarantee, ProcessorError};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::time::{Duration, Instant};

/// The state one processor instance saved.
#[derive(Debug, Clone)]
pub(crate) struct StatePart {
    pub(crate) vertex: String,
    pub(crate) instance: usize,
    pub(crate) entries: u64,
    pub(crate) bytes: Vec<u8>,
}

/// Coordination between the tasklets of one execution and its supervisor.
///
/// Thread safety: tasklets read the two atomics once per call; the mutex is
/// taken only when a tasklet saves a part or finishes.
pub(crate) struct SnapshotShared {
    pub(crate) guarantee: Guarantee,
    /// The latest snapshot requested; sources inject its barrier.
    pub(crate) requested: AtomicU64,
    /// Whether the requested snapshot is the last one (suspend, export and
    /// stop): sources stop emitting after its barrier.
    pub(crate) requested_terminal: AtomicBool,
    /// The latest complete, durable snapshot: tasklets commit up to it.
    pub(crate) committed: AtomicU64,
    /// Tasklets still reading an input of an earlier priority to its end
    /// (a hash join's side input): snapshots wait until none is. Jet has
    /// the same rule; the side input of a join must therefore be finite.
    pub(crate) loading: std::sync::atomic::AtomicUsize,
    /// Tasklets that have not finished restoring their state yet.
    restoring: std::sync::atomic::AtomicUsize,
    created: Instant,
    /// From the execution's start until every tasklet restored its state.
    restore_duration: Mutex<Option<Duration>>,
    progress: Mutex<Progress>,
    changed: Condvar,
}

struct Progress {
    /// Snapshot being taken; parts below are for it.
    current: u64,
    parts: Vec<Option<StatePart>>,
    /// The state each finished tasklet saved as it finished.
    finished: Vec<Option<StatePart>>,
    /// The latest snapshot each tasklet ran the commit phase of.
    committed_by: Vec<u64>,
}

impl SnapshotShared {
    pub(crate) fn new(guarantee: Guarantee, tasklets: usize, last_complete: u64) -> Self {
        SnapshotShared {
            guarantee,
            requested: AtomicU64::new(last_complete),
            requested_terminal: AtomicBool::new(false),
            committed: AtomicU64::new(last_complete),
            loading: std::sync::atomic::AtomicUsize::new(0),
            restoring: std::sync::atomic::AtomicUsize::new(tasklets),
            created: Instant::now(),
            restore_duration: Mutex::new(None),
            progress: Mutex::new(Progress {
                current: last_complete,
                parts: vec![None; tasklets],
                finished: vec![None; tasklets],
                committed_by: vec![last_complete; tasklets],
            }),
            changed: Condvar::new(),
        }
    }

    /// A tasklet saved its state for `snapshot_id`.
    pub(crate) fn ack(&self, tasklet: usize, snapshot_id: u64, part: StatePart) {
        let mut p = self.progress.lock();
        if p.current == snapshot_id {
            p.parts[tasklet] = Some(part);
            self.changed.notify_all();
        }
    }

    /// A tasklet finished; `part` is its final state.
    pub(crate) fn finished(&self, tasklet: usize, part: StatePart) {
        let mut p = self.progress.lock();
        p.finished[tasklet] = Some(part);
        self.changed.notify_all();
    }

    /// Starts snapshot `id`: sources inject its barrier on their next call.
    pub(crate) fn start(&self, id: u64, terminal: bool) {
        let mut p = self.progress.lock();
        p.current = id;
        p.parts.iter_mut().for_each(|part| *part = None);
        self.requested_terminal.store(terminal, Ordering::Release);
        self.requested.store(id, Ordering::Release);
    }

    /// Waits until every tasklet acknowledged the current snapshot or
    /// finished; `None` when `give_up` says so first (the execution stopped).
    pub(crate) fn wait_complete(&self, give_up: impl Fn() -> bool) -> Option<Vec<StatePart>> {
        let mut p = self.progress.lock();
        loop {
            let complete = p
                .parts
                .iter()
                .zip(&p.finished)
                .all(|(a, f)| a.is_some() || f.is_some());
            if complete {
                let parts = p
                    .parts
                    .iter()
                    .zip(&p.finished)
                    .filter_map(|(a, f)| a.clone().or_else(|| f.clone()))
                    .collect();
                return Some(parts);
            }
            if give_up() {
                return None;
            }
            self.changed.wait_for(&mut p, Duration::from_millis(20));
        }
    }

    /// A tasklet has restored its state from the snapshot the execution
    /// started from.
    pub(crate) fn restored(&self) {
        if self.restoring.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.restore_duration.lock() = Some(self.created.elapsed());
        }
    }

    /// How long restoring took, once every tasklet has restored.
    pub(crate) fn restore_duration(&self) -> Option<Duration> {
        *self.restore_duration.lock()
    }

    /// A tasklet ran the commit phase of snapshot `id`.
    pub(crate) fn commit_done(&self, tasklet: usize, id: u64) {
        let mut p = self.progress.lock();
        p.committed_by[tasklet] = id;
        self.changed.notify_all();
    }

    /// Waits until every unfinished tasklet ran the commit phase of `id`;
    /// `false` when `give_up` says so first.
    pub(crate) fn wait_committed(&self, id: u64, give_up: impl Fn() -> bool) -> bool {
        let mut p = self.progress.lock();
        loop {
            let done = p
                .committed_by
                .iter()
                .zip(&p.finished)
                .all(|(&c, f)| c >= id || f.is_some());
            if done {
                return true;
            }
            if give_up() {
                return false;
            }
            self.changed.wait_for(&mut p, Duration::from_millis(20));
        }
    }

    /// Snapshot `id` is durable: tasklets commit on their next call.
    pub(crate) fn mark_committed(&self, id: u64) {
        self.committed.store(id, Ordering::Release);
    }
}

/// What a snapshot cost: shown in job metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshots completed by the job (all executions).
    pub completed: u64,
    /// Id of the latest complete snapshot, 0 if none.
    pub last_id: u64,
    /// From the request to the durable file, of the latest snapshot.
    pub last_duration: Duration,
    /// Size of the latest snapshot's file.
    pub last_bytes: u64,
    /// Entries in the latest snapshot.
    pub last_entries: u64,
    /// Wall-clock time the latest snapshot became durable: its age tells
    /// an operator whether snapshots still complete.
    pub last_completed_at: Option<std::time::SystemTime>,
    /// Snapshots that failed (all executions): they are retried at the
    /// next interval, and too many in a row fail the job.
    pub failed: u64,
    /// Failures since the latest completed snapshot.
    pub failed_in_a_row: u32,
    /// Why the latest failed snapshot failed.
    pub last_failure: Option<String>,
    /// Id of the snapshot the current execution started from, if any.
    pub restored_from: Option<u64>,
    /// From the start of the current execution until all its processors
    /// restored their state, once they have (when it started from one).
    pub restore_duration: Option<Duration>,
}

const MAGIC: &[u8; 8] = b"EDDYSNP1";

/// A snapshot read back from disk, ready to hand out to the tasklets of a
/// new execution.
#[derive(Debug)]
pub struct LoadedSnapshot {
    /// The snapshot's id.
    pub id: u64,
    /// The name of the job that wrote it.
    pub job_name: String,
    parts: HashMap<String, Vec<StatePart>>,
}

impl LoadedSnapshot {
    /// Names of the vertices that saved state.
    pub fn vertices(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.parts.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Total number of entries.
    pub fn entries(&self) -> u64 {
        self.parts.values().flatten().map(|p| p.entries).sum()
    }

    /// Calls `f` with each entry meant for instance `instance` of
    /// `parallelism` of the vertex named `vertex`: keyed entries of the
    /// partitions it owns and all broadcast entries.
    pub(crate) fn for_each_entry(
        &self,
        vertex: &str,
        instance: usize,
        parallelism: usize,
        mut f: impl FnMut(SnapshotEntry<'_>) -> Result<(), ProcessorError>,
    ) -> Result<(), ProcessorError> {
        let Some(parts) = self.parts.get(vertex) else {
            return Ok(());
        };
        for part in parts {
            for entry in read_entries(&part.bytes) {
                let entry = entry?;
                if entry.partition == BROADCAST
                    || owner_of_partition(entry.partition, parallelism) == instance
                {
                    f(entry)?;
                }
            }
        }
        Ok(())
    }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EddyError {
    let context = context.into();
    move |source| EddyError::Io { context, source }
}

fn write_u32(w: &mut impl Write, v: u32) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn write_u64(w: &mut impl Write, v: u64) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn write_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    write_u32(w, s.len() as u32)?;
    w.write_all(s.as_bytes())
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_bytes(r: &mut impl Read, len: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a length field runs past the end of the file",
        ));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_str(r: &mut impl Read, limit: u64) -> std::io::Result<String> {
    let len = read_u32(r)?;
    String::from_utf8(read_bytes(r, u64::from(len), limit)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes a snapshot file atomically: a temporary name, fsync, rename, fsync
/// of the directory. Returns the file's size.
pub(crate) fn write_snapshot_file(
    path: &Path,
    id: u64,
    job_name: &str,
    parts: &[StatePart],
) -> Result<u64, EddyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error(format!(
        "creating snapshot directory {}",
        dir.display()
    )))?;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<u64> {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(MAGIC)?;
        write_u64(&mut w, id)?;
        write_str(&mut w, job_name)?;
        write_u32(&mut w, parts.len() as u32)?;
        for p in parts {
            write_str(&mut w, &p.vertex)?;
            write_u32(&mut w, p.instance as u32)?;
            write_u64(&mut w, p.entries)?;
            write_u64(&mut w, p.bytes.len() as u64)?;
            w.write_all(&p.bytes)?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    };
    let size = write().map_err(io_error(format!("writing snapshot {}", tmp.display())))?;
    rename_into_place(&tmp, path)?;
    Ok(size)
}

/// Renames a written and fsynced temporary file to its name, then fsyncs
/// the directory: the rename is durable only once the directory is.
fn rename_into_place(tmp: &Path, path: &Path) -> Result<(), EddyError> {
    std::fs::rename(tmp, path).map_err(io_error(format!(
        "renaming snapshot {} into place",
        tmp.display()
    )))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(format!(
            "syncing directory {} after renaming a snapshot into it",
            dir.display()
        )))
}

/// Copies a snapshot file to its export name, as durably as a snapshot is
/// written: temporary name, fsync, rename, fsync of the directory.
pub(crate) fn export_snapshot_file(from: &Path, to: &Path) -> Result<(), EddyError> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error(format!(
        "creating the export directory {}",
        dir.display()
    )))?;
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp)
        .and_then(|_| File::open(&tmp)?.sync_all())
        .map_err(io_error(format!("exporting snapshot to {}", tmp.display())))?;
    rename_into_place(&tmp, to)
}

/// Reads a snapshot file written by [`write_snapshot_file`].
pub fn read_snapshot_file(path: &Path) -> Result<LoadedSnapshot, EddyError> {
    let context = format!("reading snapshot {}", path.display());
    let file = File::open(path).map_err(io_error(context.clone()))?;
    let limit = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut read = || -> std::io::Result<LoadedSnapshot> {
        let mut magic = [0; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not an Eddy snapshot file",
            ));
        }
        let id = read_u64(&mut r)?;
        let job_name = read_str(&mut r, limit)?;
        let count = read_u32(&mut r)?;
        let mut parts: HashMap<String, Vec<StatePart>> = HashMap::new();
        for _ in 0..count {
            let vertex = read_str(&mut r, limit)?;
            let instance = read_u32(&mut r)? as usize;
            let entries = read_u64(&mut r)?;
            let len = read_u64(&mut r)?;
            let bytes = read_bytes(&mut r, len, limit)?;
            parts.entry(vertex.clone()).or_default().push(StatePart {
                vertex,
                instance,
                entries,
                bytes,
            });
        }
        Ok(LoadedSnapshot {
            id,
            job_name,
            parts,
        })
    };
    read().map_err(io_error(context))
}

/// The snapshots of one job in a directory: `snapshot-<id>.bin` files, of
/// which the last two complete ones are kept.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// The store of job `job_name` under `root`.
    pub fn new(root: &Path, job_name: &str) -> Self {
        let safe: String = job_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        SnapshotStore {
            dir: root.join(safe),
        }
    }

    /// The directory of the job's snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: u64) -> PathBuf {
        self.dir.join(format!("snapshot-{id:020}.bin"))
    }

    /// Ids of the complete snapshots on disk, oldest first.
    pub fn ids(&self) -> Vec<u64> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = read
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("snapshot-")?
                    .strip_suffix(".bin")?
                    .parse()
                    .ok()
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The latest complete snapshot, if any. A damaged latest file (which
    /// the atomic rename should rule out) falls back to the one before.
    pub fn latest(&self) -> Result<Option<LoadedSnapshot>, EddyError> {
        let ids = self.ids();
        let mut last_error = None;
        for id in ids.iter().rev() {
            match read_snapshot_file(&self.path_of(*id)) {
                Ok(s) => return Ok(Some(s)),
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Writes snapshot `id` durably, then deletes all but the last two.
    pub(crate) fn write(
        &self,
        id: u64,
        job_name: &str,
        parts: &[StatePart],
    ) -> Result<(PathBuf, u64), EddyError> {
        let path = self.path_of(id);
        let size = write_snapshot_file(&path, id, job_name, parts)?;
        let ids = self.ids();
        if ids.len() > 2 {
            for old in &ids[..ids.len() - 2] {
                // An old snapshot left behind costs disk, not correctness:
                // the newest complete one is what counts.
                if let Err(e) = std::fs::remove_file(self.path_of(*old)) {
                    tracing::warn!(job = job_name, snapshot = old, error = %e, "cannot delete an old snapshot");
                }
            }
        }
        Ok((path, size))
    }

    /// Deletes all of the job's snapshots (a job that completed or was
    /// cancelled leaves nothing to resume).
    pub fn clear(&self) {
        for id in self.ids() {
            if let Err(e) = std::fs::remove_file(self.path_of(id)) {
                tracing::warn!(snapshot = id, path = %self.path_of(id).display(), error = %e, "cannot delete a snapshot of a finished job");
            }
        }
    }
}

/// Where exported snapshots go: `<root>/exported/<name>.bin`.
pub fn exported_snapshot_path(root: &Path, name: &str) -> Result<PathBuf, EddyError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if !valid {
        return Err(EddyError::InvalidJob(format!(
            "snapshot name '{name}': use letters, digits, '-', '_' and '.', not starting with '.'"
        )));
    }
    Ok(root.join("exported").join(format!("{name}.bin")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::SnapshotWriter;

    /// A fresh directory for one test.
    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-snapshot-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn part(vertex: &str, instance: usize, keys: std::ops::Range<u64>) -> StatePart {
        let mut w = SnapshotWriter::new();
        for k in keys {
            w.put_keyed(&k, &(k * 10)).unwrap();
        }
        w.put(BROADCAST, &"offset", &(instance as u64)).unwrap();
        let (bytes, entries) = w.take();
        StatePart {
            vertex: vertex.into(),
            instance,
            entries,
            bytes,
        }
    }

    #[test]
    fn when_snapshots_written_then_last_two_kept_and_latest_read_back() {
        let dir = temp_dir("last-two");
        let store = SnapshotStore::new(&dir, "job a/b");
        assert!(store.latest().unwrap().is_none());
        for id in 1..=4 {
            store
                .write(
                    id,
                    "job a/b",
                    &[part("window", 0, 0..50), part("window", 1, 50..100)],
                )
                .unwrap();
        }
        assert_eq!(store.ids(), vec![3, 4]);
        let latest = store.latest().unwrap().unwrap();
        assert_eq!(latest.id, 4);
        assert_eq!(latest.job_name, "job a/b");
        assert_eq!(latest.entries(), 102);
        assert_eq!(latest.vertices(), vec!["window"]);
    }

    #[test]
    fn when_restored_at_other_parallelism_then_each_key_once_and_broadcast_everywhere() {
        let dir = temp_dir("rescale");
        let store = SnapshotStore::new(&dir, "j");
        store
            .write(
                7,
                "j",
                &[part("window", 0, 0..500), part("window", 1, 500..1000)],
            )
            .unwrap();
        let snap = store.latest().unwrap().unwrap();
        let mut keys = Vec::new();
        for instance in 0..3 {
            let mut broadcast = 0;
            snap.for_each_entry("window", instance, 3, |e| {
                if e.partition == BROADCAST {
                    broadcast += 1;
                } else {
                    let k: u64 = e.key()?;
                    assert_eq!(eddy_core::partition::owner_of_key(&k, 3), instance);
                    keys.push(k);
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(broadcast, 2, "both old instances' broadcast entries");
        }
        keys.sort_unstable();
        assert_eq!(keys, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn when_file_damaged_then_error_names_it() {
        let path = temp_dir("damaged").join("x.bin");
        write_snapshot_file(&path, 1, "j", &[part("v", 0, 0..10)]).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let err = read_snapshot_file(&path).unwrap_err().to_string();
        assert!(err.contains("x.bin"), "{err}");
    }
}
