//! The node's SQL: one [`Session`] over the node's engine and grid, the
//! catalog file that keeps its tables and jobs across restarts, and the
//! replay of that file at start.
//!
//! The catalog file (`<data dir>/catalog.json`) holds each table's
//! `CREATE TABLE` text and each streaming job's `CREATE JOB` (or `INSERT`)
//! text with the status it had: the settings of a job are in its text
//! (`WITH (…)`), so replaying the text re-creates it as it was. A named job
//! resumes from its latest snapshot because the engine keeps snapshots by
//! job name under its snapshot directory. The file is written whole after
//! every statement that changed the catalog: to a temporary file, synced,
//! renamed over the old one, and the directory synced, so that a crash
//! leaves either the old catalog or the new one, never a torn one.
//!
//! Tables and jobs created by the config file's SQL (see
//! [`Node::execute_config_sql`](crate::Node::execute_config_sql)) are not
//! written: the config file creates them at every start.

use eddy_sql::{ErrorKind, Outcome, Session, SqlError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the catalog file in a node's data directory.
pub const CATALOG_FILE: &str = "catalog.json";

/// The format version written; a file of a later version is refused
/// rather than misread.
const CATALOG_VERSION: u32 = 1;

/// What a script did before it stopped at an error.
#[derive(Debug)]
pub struct SqlFailure {
    /// Outcomes of the statements that ran before the error.
    pub done: Vec<Outcome>,
    /// The error, positioned in the script.
    pub error: SqlError,
}

/// What replaying a catalog re-created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replayed {
    /// Tables re-created.
    pub tables: usize,
    /// Jobs resubmitted.
    pub jobs: usize,
}

/// The catalog file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: u32,
    tables: Vec<TableEntry>,
    jobs: Vec<JobEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableEntry {
    name: String,
    sql: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobEntry {
    name: String,
    sql: String,
    /// `running`, `suspended`, …: what the job was when the file was written.
    status: String,
}

/// The session and where its catalog is kept; behind the node's mutex.
pub(crate) struct SqlState {
    pub(crate) session: Session,
    data_dir: Option<PathBuf>,
    /// Tables (lower case) created by the config file's SQL.
    declared_tables: BTreeSet<String>,
    /// Jobs (lower case) started by the config file's SQL.
    declared_jobs: BTreeSet<String>,
}

/// A job's status as the API and the catalog file write it.
pub(crate) fn status_name(status: eddy_runtime::JobStatus) -> String {
    format!("{status:?}").to_ascii_lowercase()
}

impl SqlState {
    pub(crate) fn new(session: Session) -> SqlState {
        SqlState {
            session,
            data_dir: None,
            declared_tables: BTreeSet::new(),
            declared_jobs: BTreeSet::new(),
        }
    }

    /// Runs `script`; with a data directory, saves the catalog if a
    /// statement changed it (also when a later statement failed).
    pub(crate) fn execute(&mut self, script: &str) -> Result<Vec<Outcome>, SqlFailure> {
        let mut done = Vec::new();
        let result = self
            .session
            .execute_script(script, |o| done.push(o.clone()));
        let changed = done
            .iter()
            .any(|o| matches!(o, Outcome::Ddl(_) | Outcome::Job { .. }));
        let saved = if changed { self.save() } else { Ok(()) };
        match (result, saved) {
            (Err(error), _) => Err(SqlFailure { done, error }),
            (Ok(_), Err(error)) => Err(SqlFailure { done, error }),
            (Ok(_), Ok(())) => Ok(done),
        }
    }

    /// Runs the config file's `script`; what it creates is not saved.
    pub(crate) fn execute_declared(&mut self, script: &str) -> Result<Vec<Outcome>, SqlFailure> {
        let mut done = Vec::new();
        let result = self
            .session
            .execute_script(script, |o| done.push(o.clone()));
        for t in self.session.catalog().tables() {
            self.declared_tables.insert(t.name.to_ascii_lowercase());
        }
        for j in self.session.jobs() {
            self.declared_jobs.insert(j.name.to_ascii_lowercase());
        }
        match result {
            Ok(_) => Ok(done),
            Err(error) => Err(SqlFailure { done, error }),
        }
    }

    /// Keeps the catalog in `dir` from now on, after re-creating what
    /// `dir/catalog.json` holds: its tables, then its jobs that were
    /// running or suspended. An entry named like one of the config file's
    /// is skipped (the config file's wins, with a warning).
    pub(crate) fn open(&mut self, dir: &Path) -> Result<Replayed, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "the data directory '{}' cannot be created: {e}; point --data-dir (or data_dir) at a writable directory",
                dir.display()
            )
        })?;
        let path = dir.join(CATALOG_FILE);
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<CatalogFile>(&text).map_err(|e| {
                format!(
                    "'{}' is not a catalog this node can read: {e}; restore it from a backup, or move it away to start with an empty catalog",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogFile::default(),
            Err(e) => return Err(format!("cannot read '{}': {e}", path.display())),
        };
        if file.version > CATALOG_VERSION {
            return Err(format!(
                "'{}' has version {}, newer than the {CATALOG_VERSION} this node reads; run the Eddy that wrote it",
                path.display(),
                file.version
            ));
        }
        let mut replayed = Replayed::default();
        let failed = |what: &str, name: &str, e: &SqlError, sql: &str| {
            format!(
                "'{}': the {what} '{name}' cannot be re-created: {}; fix or remove its entry in the file\n{}",
                path.display(),
                e.message,
                e.render(sql)
            )
        };
        for t in &file.tables {
            if self.declared_tables.contains(&t.name.to_ascii_lowercase()) {
                tracing::warn!(table = %t.name, file = %path.display(), "the catalog's table is also created by the config file's SQL; the config file's definition is used");
                continue;
            }
            self.session
                .execute(&t.sql)
                .map_err(|e| failed("table", &t.name, &e, &t.sql))?;
            replayed.tables += 1;
        }
        for j in &file.jobs {
            if self.declared_jobs.contains(&j.name.to_ascii_lowercase()) {
                tracing::warn!(job = %j.name, file = %path.display(), "the catalog's job is also started by the config file's SQL; the config file's job runs");
                continue;
            }
            if !matches!(
                j.status.as_str(),
                "starting" | "running" | "restarting" | "suspending" | "suspended"
            ) {
                continue;
            }
            self.session
                .execute(&j.sql)
                .map_err(|e| failed("job", &j.name, &e, &j.sql))?;
            if matches!(j.status.as_str(), "suspending" | "suspended") {
                if let Some(job) = self.session.jobs().iter().find(|s| s.name == j.name) {
                    job.job.suspend();
                }
            }
            replayed.jobs += 1;
        }
        self.data_dir = Some(dir.to_path_buf());
        self.save().map_err(|e| e.message)?;
        Ok(replayed)
    }

    /// Writes the catalog file, if the node has a data directory.
    fn save(&self) -> Result<(), SqlError> {
        let Some(dir) = &self.data_dir else {
            return Ok(());
        };
        let file = CatalogFile {
            version: CATALOG_VERSION,
            tables: self
                .session
                .catalog()
                .tables()
                .filter(|t| !self.declared_tables.contains(&t.name.to_ascii_lowercase()))
                .filter_map(|t| {
                    t.sql.as_ref().map(|sql| TableEntry {
                        name: t.name.clone(),
                        sql: sql.clone(),
                    })
                })
                .collect(),
            jobs: self
                .session
                .jobs()
                .iter()
                .filter(|j| {
                    !j.bounded && !self.declared_jobs.contains(&j.name.to_ascii_lowercase())
                })
                .map(|j| JobEntry {
                    name: j.name.clone(),
                    sql: j.sql.trim().to_string(),
                    status: status_name(j.job.status()),
                })
                .collect(),
        };
        write_atomically(&dir.join(CATALOG_FILE), &file).map_err(|e| {
            SqlError::new(
                ErrorKind::Execution,
                eddy_sql::error::Pos::START,
                format!(
                    "the statements ran, but the catalog could not be saved in '{}': {e}; free space or fix the directory's permissions, then repeat the last definition",
                    dir.display()
                ),
            )
        })
    }
}

/// Writes `value` as JSON to `path` so that a crash leaves the old file or
/// the new one: a temporary file, synced, renamed over `path`, and the
/// directory synced so that the rename itself is durable.
fn write_atomically(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
