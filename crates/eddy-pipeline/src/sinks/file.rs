//! The file sink: lines of text, one per item.
//!
//! Without exactly-once it writes `<path>` (created or truncated). Under
//! exactly-once it writes one file per epoch that has lines, named
//! `<path>.<epoch>`, where the epoch is the id of the snapshot whose
//! barrier ended it; the lines that follow the last barrier when the input
//! ends go to `<path>.<last epoch + 1>`. Readers take the files in the
//! numeric order of their suffix.
//!
//! An epoch's file is written under the temporary name `<path>.<epoch>.tmp`
//! and fsynced when its barrier arrives, before the snapshot can become
//! durable; it is renamed into place (and the directory fsynced) once the
//! snapshot is durable. The snapshot also holds the epoch's lines, so a job
//! restored from it finishes the epochs it had not committed: one whose
//! file is in place was committed and is left alone, any other is written
//! again and renamed. No epoch is thus published twice or lost. When the
//! input ends, temporary files left by failed executions are removed.

use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{
    Event, Guarantee, Inbox, Outbox, PendingEpochs, Processor, ProcessorContext, ProcessorError,
};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Sink;

/// See [`Sinks::file`](super::Sinks::file).
pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    pub(crate) fn new(path: PathBuf) -> Self {
        FileSink { path }
    }
}

impl<T: Display + Send + 'static> Sink<T> for FileSink {
    type Processor = FileSinkP<T>;
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> FileSinkP<T> {
        FileSinkP {
            path: self.path.clone(),
            writer: None,
            epochs: PendingEpochs::default(),
            exactly_once: false,
            prepared: BTreeSet::new(),
            last_epoch: 0,
            finished: false,
            instance: 0,
            parallelism: 1,
            _t: std::marker::PhantomData,
        }
    }
}

/// The processor of [`Sinks::file`](super::Sinks::file); blocking I/O, so
/// non-cooperative. See the [module docs](self) for the files it writes.
pub struct FileSinkP<T> {
    path: PathBuf,
    /// Without exactly-once: the open `<path>`.
    writer: Option<std::io::BufWriter<std::fs::File>>,
    /// Under exactly-once: the lines of each epoch not committed yet.
    epochs: PendingEpochs<String>,
    exactly_once: bool,
    /// Epochs whose temporary file this instance wrote.
    prepared: BTreeSet<u64>,
    /// The highest epoch sealed or taken over: the lines after it, at the
    /// end of the input, go to the next one.
    last_epoch: u64,
    /// The input ended and every file is in place.
    finished: bool,
    instance: usize,
    parallelism: usize,
    _t: std::marker::PhantomData<fn(T)>,
}

/// `<path>` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl<T> FileSinkP<T> {
    fn io_error(&self, e: std::io::Error) -> ProcessorError {
        ProcessorError::new(format!("writing '{}' failed: {e}", self.path.display()))
    }

    /// Where epoch `epoch` ends up.
    pub fn epoch_path(&self, epoch: u64) -> PathBuf {
        with_suffix(&self.path, &format!(".{epoch}"))
    }

    fn temp_path(&self, epoch: u64) -> PathBuf {
        with_suffix(&self.path, &format!(".{epoch}.tmp"))
    }

    /// Writes `lines` to the temporary file of `epoch` and fsyncs it.
    fn write_temp(&self, epoch: u64, lines: &[String]) -> Result<(), ProcessorError> {
        let temp = self.temp_path(epoch);
        let written = (|| {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&temp)?);
            for line in lines {
                writeln!(out, "{line}")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        written.map_err(|e| self.io_error(e))
    }

    /// The directory the files go to.
    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        }
    }

    /// Renames the temporary file of `epoch` into place and fsyncs the
    /// directory, so that the rename survives a crash.
    fn publish(&self, epoch: u64) -> Result<(), ProcessorError> {
        let published = std::fs::rename(self.temp_path(epoch), self.epoch_path(epoch))
            .and_then(|_| std::fs::File::open(self.dir())?.sync_all());
        published.map_err(|e| self.io_error(e))
    }

    /// Puts epoch `epoch` in place unless it is already.
    fn commit_epoch(&mut self, epoch: u64, lines: &[String]) -> Result<(), ProcessorError> {
        if lines.is_empty() {
            return Ok(());
        }
        if !self.prepared.remove(&epoch) {
            // Taken over from a snapshot: in place means committed before.
            if self.epoch_path(epoch).exists() {
                return Ok(());
            }
            self.write_temp(epoch, lines)?;
        }
        self.publish(epoch)
    }

    /// Removes the temporary files of epochs whose snapshot never became
    /// durable (written by an execution that failed at their barrier): once
    /// the input ended, no restore can need them.
    fn remove_stale_temps(&self) -> Result<(), ProcessorError> {
        let Some(name) = self.path.file_name() else {
            return Ok(());
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let is_stale = |file: &str| {
            file.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".tmp"))
                .is_some_and(|epoch| epoch.parse::<u64>().is_ok())
        };
        let entries = std::fs::read_dir(self.dir()).map_err(|e| self.io_error(e))?;
        for entry in entries.flatten() {
            if is_stale(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(entry.path()).map_err(|e| self.io_error(e))?;
            }
        }
        Ok(())
    }

    fn commit_up_to(&mut self, snapshot_id: u64) -> Result<(), ProcessorError> {
        for e in self.epochs.take_sealed_up_to(snapshot_id) {
            self.commit_epoch(e.epoch, &e.items)?;
        }
        Ok(())
    }
}

impl<T: Display + Send + 'static> Processor for FileSinkP<T> {
    type In = Event<T>;
    type Out = ();
    fn is_cooperative(&self) -> bool {
        false
    }
    fn validate(&self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        // Under exactly-once the first file is written at the first
        // barrier: a missing directory is better refused at submission.
        let dir = self.dir();
        if dir.is_dir() {
            return Ok(());
        }
        Err(ProcessorError::new(format!(
            "cannot write '{}': the directory '{}' does not exist; create it first",
            self.path.display(),
            dir.display()
        )))
    }
    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.instance = ctx.instance;
        self.parallelism = ctx.parallelism.max(1);
        self.exactly_once = ctx.guarantee == Guarantee::ExactlyOnce;
        if self.exactly_once {
            return Ok(());
        }
        let file = std::fs::File::create(&self.path).map_err(|e| {
            ProcessorError::new(format!(
                "cannot create '{}': {e}; check that its directory exists and is writable",
                self.path.display()
            ))
        })?;
        self.writer = Some(std::io::BufWriter::new(file));
        Ok(())
    }
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        if self.exactly_once {
            while let Some(e) = inbox.poll() {
                self.epochs.push(e.value.to_string());
            }
            return Ok(());
        }
        let writer = self.writer.as_mut().expect("init created the file");
        let mut result = Ok(());
        while let Some(e) = inbox.poll() {
            if let Err(err) = writeln!(writer, "{}", e.value) {
                result = Err(err);
                break;
            }
        }
        result.map_err(|e| self.io_error(e))
    }
    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        if self.exactly_once {
            if !self.finished {
                // In a job a final snapshot has committed everything by
                // now; run without the runtime (a harness), commit the rest.
                self.commit_up_to(u64::MAX)?;
                let rest = self.epochs.take_current();
                if !rest.is_empty() {
                    let epoch = self.last_epoch + 1;
                    self.write_temp(epoch, &rest)?;
                    self.publish(epoch)?;
                }
                self.remove_stale_temps()?;
                self.finished = true;
            }
            return Ok(true);
        }
        let writer = self.writer.as_mut().expect("init created the file");
        let flushed = writer.flush().and_then(|_| writer.get_ref().sync_all());
        flushed.map_err(|e| self.io_error(e))?;
        Ok(true)
    }
    fn save_to_snapshot(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        if !self.exactly_once || self.finished {
            return Ok(());
        }
        self.epochs
            .seal_and_save(snapshot_id, self.instance, writer)?;
        self.last_epoch = self.last_epoch.max(snapshot_id);
        let newest = self.epochs.sealed().last().expect("sealed above");
        if !newest.items.is_empty() {
            self.write_temp(snapshot_id, &newest.items)?;
            self.prepared.insert(snapshot_id);
        }
        Ok(())
    }
    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.epochs
            .restore(entry, self.instance, self.parallelism)?;
        if let Some(newest) = self.epochs.sealed().last() {
            self.last_epoch = self.last_epoch.max(newest.epoch);
        }
        Ok(())
    }
    fn snapshot_commit_finish(&mut self, snapshot_id: u64) -> Result<(), ProcessorError> {
        self.last_epoch = self.last_epoch.max(snapshot_id);
        self.commit_up_to(snapshot_id)
    }
}
