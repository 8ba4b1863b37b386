//! Snapshots of a map to a file, written atomically, and loading them back.
//!
//! # Format (version 1)
//!
//! JSON lines: a header `{"format":"eddy-grid-snapshot","version":1,"map":NAME}`,
//! one line per entry `{"k":KEY,"v":VALUE,"ttl_ms":REMAINING|null,"idle_ms":MAX_IDLE|null}`,
//! and a trailer `{"end":COUNT}`. A file without the trailer, or whose count
//! does not match, is rejected whole: a snapshot loads completely or not at all.
//! TTLs are stored as the time left at saving, so an entry has the same
//! time left after loading (the time the process was down is not counted).
//!
//! # Atomicity
//!
//! The snapshot is written to a temporary file beside the target
//! (`NAME.tmp-PID-N`), flushed and fsynced, then renamed over the target,
//! and the directory is fsynced so the rename itself survives a crash. A
//! crash or error at any point before the rename leaves the previous
//! snapshot untouched; a temporary file left by a crash is ignored by
//! loading and never read.
//!
//! Each partition is read under its lock, so each partition is consistent,
//! but the snapshot is not one point in time across partitions.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Expiry;
use crate::map::{GridKey, GridValue, MapInner};
use crate::GridError;

const FORMAT: &str = "eddy-grid-snapshot";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    map: String,
}

#[derive(Serialize)]
struct EntryOut<'a, K, V> {
    k: &'a K,
    v: &'a V,
    ttl_ms: Option<u64>,
    idle_ms: Option<u32>,
}

#[derive(Deserialize)]
struct EntryIn<K, V> {
    k: K,
    v: V,
    ttl_ms: Option<u64>,
    idle_ms: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: usize,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GridError + '_ {
    move |source| GridError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes temporary names unique within the process (two saves at once).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `path` atomically: `write` fills a temporary file, which replaces
/// `path` only if `write` and the fsync succeed.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), GridError>,
) -> Result<(), GridError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| GridError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"),
    })?;
    let temp = dir.join(format!(
        "{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let file = File::create(&temp).map_err(io_err(&temp))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| io_err(&temp)(e.into_error()))?;
        file.sync_all().map_err(io_err(&temp))?;
        fs::rename(&temp, path).map_err(io_err(path))?;
        // Persist the rename: without this a crash could forget it.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))
    })();
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless, never loaded.
        let _ = fs::remove_file(&temp);
    }
    result
}

pub(crate) fn save<K: GridKey, V: GridValue>(
    map: &MapInner<K, V>,
    path: &Path,
) -> Result<usize, GridError> {
    let mut count = 0;
    write_atomic(path, |out| {
        let line = |out: &mut BufWriter<File>, v: &dyn erased::Json| -> Result<(), GridError> {
            v.write(out).map_err(|source| GridError::Encode {
                map: map.name.clone(),
                what: "entry",
                source,
            })?;
            out.write_all(b"\n").map_err(io_err(path))
        };
        line(
            out,
            &Header {
                format: FORMAT.into(),
                version: VERSION,
                map: map.name.clone(),
            },
        )?;
        let mut failed = None;
        map.for_each_with_expiry(|k, v, ttl_ms, idle_ms| {
            if failed.is_none() {
                match line(
                    out,
                    &EntryOut {
                        k,
                        v,
                        ttl_ms,
                        idle_ms,
                    },
                ) {
                    Ok(()) => count += 1,
                    Err(e) => failed = Some(e),
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        line(out, &Trailer { end: count })?;
        out.flush().map_err(io_err(path))
    })?;
    Ok(count)
}

/// Object-safe JSON writing, so one closure writes every line kind.
mod erased {
    use std::io::Write;

    pub(super) trait Json {
        fn write(&self, out: &mut dyn Write) -> Result<(), serde_json::Error>;
    }

    impl<T: serde::Serialize> Json for T {
        fn write(&self, out: &mut dyn Write) -> Result<(), serde_json::Error> {
            serde_json::to_writer(out, self)
        }
    }
}

pub(crate) fn load<K: GridKey, V: GridValue>(
    path: &Path,
) -> Result<Vec<(K, V, Expiry)>, GridError> {
    let corrupt = |line: usize, reason: String| GridError::CorruptSnapshot {
        path: path.to_owned(),
        reason: format!("line {line}: {reason}"),
    };
    let file = File::open(path).map_err(io_err(path))?;
    let mut lines = BufReader::new(file).lines();
    let header = lines
        .next()
        .ok_or_else(|| corrupt(1, "empty file".into()))?
        .map_err(io_err(path))?;
    let header: Header =
        serde_json::from_str(&header).map_err(|e| corrupt(1, format!("bad header ({e})")))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(corrupt(
            1,
            format!(
                "format {} version {} is not {FORMAT} version {VERSION}",
                header.format, header.version
            ),
        ));
    }
    // The map name in the header is informative: loading a snapshot of
    // another map is allowed (e.g. to copy a map), as long as types fit.
    let mut entries = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let line = line.map_err(io_err(path))?;
        if let Ok(t) = serde_json::from_str::<Trailer>(&line) {
            if t.end != entries.len() {
                return Err(corrupt(
                    n,
                    format!("trailer says {} entries, file has {}", t.end, entries.len()),
                ));
            }
            return Ok(entries);
        }
        let e: EntryIn<K, V> =
            serde_json::from_str(&line).map_err(|e| corrupt(n, format!("bad entry ({e})")))?;
        let expiry = Expiry {
            ttl: Some(e.ttl_ms.map_or(Duration::ZERO, Duration::from_millis)),
            max_idle: Some(
                e.idle_ms
                    .map_or(Duration::ZERO, |ms| Duration::from_millis(ms as u64)),
            ),
        };
        entries.push((e.k, e.v, expiry));
    }
    Err(corrupt(
        entries.len() + 2,
        "no trailer: the file is truncated".into(),
    ))
}
