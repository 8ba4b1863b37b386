//! [`PostgresSink`]: writes a stream into a table, batched, by insert or
//! upsert; under exactly-once, in one transaction per committed snapshot
//! (see the `epochs` module).

use crate::conn::{Backoff, Conn};
use crate::epochs::{
    EpochRows, COMMIT_MARKER_TABLE, CREATE_MARKER_TABLE, READ_MARKER, RESET_MARKER, TXID_STATUS,
    WRITE_MARKER,
};
use crate::sql::{check_columns, quote_ident, table_columns};
use crate::PgError;
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{
    Event, Guarantee, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, SealedEpoch,
};
use eddy_pipeline::Sink;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// Default rows per batch: one statement of 1,000 rows amortises the round
/// trip and the per-statement overhead over many rows (the benchmark, which
/// uses this size, reaches 80-90% of binary `COPY`), while keeping a
/// batch's JSON payload around 100 KiB for rows of ~100 bytes. Raise it
/// for tiny rows on a high-latency link; lower it for very wide rows.
pub const DEFAULT_BATCH_ROWS: usize = 1_000;

/// Default longest time a row waits in a partial batch: bounds the latency
/// of a slow stream without writing tiny batches under load.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(100);

/// A sink that writes each item as one row of a PostgreSQL table.
///
/// # Row mapping
///
/// Items are `serde::Serialize` structs (or maps); each serialises to a
/// JSON object whose fields named like the configured columns become the
/// row. PostgreSQL converts the values to the columns' types
/// (`json_populate_recordset`), so a struct field `amount: f64` fills a
/// `numeric` or `double precision` column, a `String` fills `text`,
/// `timestamptz` (in ISO 8601) or `uuid`, and nested structs fill `jsonb`.
/// A field missing from the object writes NULL.
///
/// # Batching, backpressure, retries
///
/// Rows are written in batches of [`batch_rows`](PostgresSink::batch_rows),
/// or after [`linger`](PostgresSink::linger) when the stream is slow, as one
/// multi-row `INSERT` (`... ON CONFLICT (key) DO UPDATE` when upserting).
/// A batch is written synchronously on the sink's own thread (the processor
/// is non-cooperative), so at most one batch per instance is in flight and a
/// slow database slows the job down instead of filling memory. Transient
/// errors (connection lost, server restarting) are retried with
/// [`Backoff`]; permanent ones (unknown table or column, a value the column
/// type rejects) fail the job with an error naming the table and column.
///
/// # Upserts and duplicates
///
/// With [`upsert`](PostgresSink::upsert) the last row of each key wins:
/// within a batch only the last item per key is sent (PostgreSQL refuses to
/// update one row twice in one statement), and batches are written in
/// order. This holds per instance, so the default parallelism is 1; with
/// more instances, route items by key first.
///
/// # Snapshots
///
/// The job's guarantee decides how the sink takes part in snapshots:
///
/// * none or at-least-once: rows are written as above; after a restart
///   from a snapshot, the rows written since it are written again (an
///   upsert makes that harmless);
/// * exactly-once: rows are held per epoch and written, in batches of
///   `batch_rows`, in one transaction per completed snapshot, together
///   with a commit marker in the table `eddy_commit_markers` (created if
///   missing), which tells a restored job what was written before a crash.
///   Rows become visible one snapshot interval late, and the sink holds
///   that interval's rows in memory. See the `epochs` module for the
///   protocol and its crash cases.
pub struct PostgresSink<T> {
    url: String,
    table: String,
    columns: Vec<String>,
    key: Vec<String>,
    batch_rows: usize,
    linger: Duration,
    backoff: Backoff,
    parallelism: usize,
    _t: PhantomData<fn(T)>,
}

impl<T> PostgresSink<T> {
    /// Inserts rows into `table` (as written in SQL: unquoted names fold to
    /// lower case), filling `columns` from the items' fields of the same
    /// names.
    pub fn new(url: &str, table: &str, columns: &[&str]) -> Self {
        PostgresSink {
            url: url.to_string(),
            table: table.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            key: Vec::new(),
            batch_rows: DEFAULT_BATCH_ROWS,
            linger: DEFAULT_LINGER,
            backoff: Backoff::default(),
            parallelism: 1,
            _t: PhantomData,
        }
    }

    /// Upserts instead: a row whose `key` columns match an existing row
    /// replaces its other columns. The key columns need a unique index or
    /// primary key and must be among the written columns.
    pub fn upsert(mut self, key: &[&str]) -> Self {
        self.key = key.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Rows per batch (at least 1; default [`DEFAULT_BATCH_ROWS`]).
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// Longest time a row waits in a partial batch (default [`DEFAULT_LINGER`]).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Retry policy for transient errors.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Number of instances (default 1; see the type's docs on upserts).
    pub fn parallelism(mut self, instances: usize) -> Self {
        self.parallelism = instances.max(1);
        self
    }

    /// The `INSERT` statement; its one parameter is the text of a JSON
    /// array of rows (sent as text so that items serialise straight into
    /// it, without an intermediate `serde_json::Value`).
    fn statement(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        let cols = cols.join(", ");
        let mut sql = format!(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{t}, $1::text::json)",
            t = self.table
        );
        if !self.key.is_empty() {
            let key: Vec<String> = self.key.iter().map(|c| quote_ident(c)).collect();
            let updates: Vec<String> = self
                .columns
                .iter()
                .filter(|c| !self.key.contains(c))
                .map(|c| format!("{q} = EXCLUDED.{q}", q = quote_ident(c)))
                .collect();
            sql.push_str(&format!(" ON CONFLICT ({}) DO ", key.join(", ")));
            if updates.is_empty() {
                sql.push_str("NOTHING");
            } else {
                sql.push_str(&format!("UPDATE SET {}", updates.join(", ")));
            }
        }
        sql
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for PostgresSink<T> {
    type Processor = PostgresSinkP<T>;
    fn name(&self) -> String {
        format!("postgres:{}", self.table)
    }
    fn parallelism(&self) -> Option<usize> {
        Some(self.parallelism)
    }
    fn create(&self, ctx: &ProcessorContext) -> PostgresSinkP<T> {
        PostgresSinkP {
            url: self.url.clone(),
            table: self.table.clone(),
            columns: self.columns.clone(),
            key: self.key.clone(),
            sql: self.statement(),
            types: Vec::new(),
            batch_rows: self.batch_rows,
            linger: self.linger,
            backoff: self.backoff,
            conn: None,
            batch: Vec::new(),
            first_at: None,
            epochs: (ctx.guarantee == Guarantee::ExactlyOnce).then(|| EpochRows::new(ctx)),
            _t: PhantomData,
        }
    }
}

/// The processor of [`PostgresSink`]; blocks on the database, so
/// non-cooperative.
pub struct PostgresSinkP<T> {
    url: String,
    table: String,
    columns: Vec<String>,
    key: Vec<String>,
    sql: String,
    /// SQL type of each of `columns`, for error messages.
    types: Vec<String>,
    batch_rows: usize,
    linger: Duration,
    backoff: Backoff,
    conn: Option<Conn>,
    batch: Vec<PendingRow>,
    /// When the oldest row of `batch` arrived.
    first_at: Option<Instant>,
    /// Under exactly-once: the rows held per epoch (`batch` stays empty).
    epochs: Option<EpochRows>,
    _t: PhantomData<fn(T)>,
}

impl<T> PostgresSinkP<T> {
    fn fail(e: PgError) -> ProcessorError {
        ProcessorError::new(e.to_string())
    }

    /// Checks the configuration against the table, connecting first.
    fn prepare(&mut self) -> Result<(), PgError> {
        if self.columns.is_empty() {
            return Err(PgError::Config(format!(
                "no columns given for table '{}'; name the columns to write",
                self.table
            )));
        }
        if let Some(k) = self.key.iter().find(|k| !self.columns.contains(k)) {
            return Err(PgError::Config(format!(
                "upsert key column '{k}' is not among the written columns {:?}; add it to the columns",
                self.columns
            )));
        }
        let mut conn = Conn::new(&self.url)?;
        let existing = table_columns(&mut conn, self.backoff, &self.table)?;
        self.types = check_columns(&self.table, &existing, &self.columns)?;
        if self.epochs.is_some() {
            create_marker_table(&mut conn, self.backoff)?;
        }
        self.conn = Some(conn);
        Ok(())
    }

    /// Turns an item into a pending row, checking that it is an object.
    fn serialise(&self, item: &T) -> Result<PendingRow, PgError>
    where
        T: Serialize,
    {
        let bad = |err: serde_json::Error| {
            PgError::Mapping(format!(
                "an item for table '{}' does not serialise: {err}",
                self.table
            ))
        };
        let json = serde_json::to_string(item).map_err(bad)?;
        if !json.starts_with('{') {
            return Err(PgError::Mapping(format!(
                "an item for table '{}' serialised to {json}, not an object; use a struct with fields named like the columns",
                self.table
            )));
        }
        let key = if self.key.is_empty() {
            String::new()
        } else {
            // Upserts only: a second, tree-shaped serialisation to read the
            // key fields; inserts skip it.
            let value = serde_json::to_value(item).map_err(bad)?;
            let key: Vec<&Value> = self
                .key
                .iter()
                .map(|c| value.get(c).unwrap_or(&Value::Null))
                .collect();
            serde_json::to_string(&key).map_err(bad)?
        };
        Ok(PendingRow { key, json })
    }

    /// Writes the batch if its oldest row has waited for the linger.
    fn flush_if_lingered(&mut self) -> Result<(), PgError> {
        if self.first_at.is_some_and(|t| t.elapsed() >= self.linger) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the batch, retrying transient failures.
    fn flush(&mut self) -> Result<(), PgError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let payload = json_array(&self.batch, !self.key.is_empty());
        self.batch.clear();
        self.first_at = None;
        let sql = self.sql.as_str();
        let backoff = self.backoff;
        let conn = self.conn.as_mut().ok_or_else(not_initialised)?;
        let result = conn.run_retrying(backoff, |client| {
            let payload = &payload;
            async move {
                let r = client.execute(sql, &[payload]).await;
                (client, r.map_err(|e| PgError::from_driver(&e, sql)))
            }
        });
        match result {
            Err(PgError::Query { message, .. }) if is_data_error(&message) => {
                Err(self.diagnose(&payload, message))
            }
            other => other.map(|_| ()),
        }
    }

    /// Runs once under exactly-once, before the first save or commit: see
    /// "Markers of earlier runs" and "Crash cases" in the `epochs` module.
    fn recover(&mut self) -> Result<(), PgError> {
        let Some(recovery) = self.epochs.as_mut().and_then(EpochRows::recovery) else {
            return Ok(());
        };
        if let Some(writer) = &recovery.reset {
            let backoff = self.backoff;
            self.conn
                .as_mut()
                .ok_or_else(not_initialised)?
                .run_retrying(backoff, |client| async move {
                    let r = client.execute(RESET_MARKER, &[writer]).await;
                    (
                        client,
                        r.map_err(|e| PgError::from_driver(&e, "resetting the commit marker")),
                    )
                })?;
        }
        for (writer, epochs) in &recovery.restored {
            self.commit_epochs(writer, epochs, &[])?;
        }
        Ok(())
    }

    /// Writes the epochs above `writer`'s marker, then `tail` (the rows of
    /// the current epoch, at the end of the input), in one transaction that
    /// moves the marker to the last epoch; retries transient failures.
    fn commit_epochs(
        &mut self,
        writer: &str,
        epochs: &[SealedEpoch<PendingRow>],
        tail: &[PendingRow],
    ) -> Result<(), PgError> {
        let last = match epochs.iter().rev().find(|e| !e.items.is_empty()) {
            Some(e) => Some(i64::try_from(e.epoch).map_err(|_| {
                PgError::Config(format!("epoch {} does not fit a bigint", e.epoch))
            })?),
            None if tail.is_empty() => return Ok(()),
            None => None,
        };
        let sql = self.sql.as_str();
        let upsert = !self.key.is_empty();
        let batch_rows = self.batch_rows;
        let backoff = self.backoff;
        // The transaction of the previous attempt, whose COMMIT may have
        // succeeded with its acknowledgement lost.
        let attempt_txid: Cell<Option<i64>> = Cell::new(None);
        // The batch the server rejected, for `diagnose`.
        let rejected: RefCell<Option<String>> = RefCell::new(None);
        let conn = self.conn.as_mut().ok_or_else(not_initialised)?;
        let result = conn.run_retrying(backoff, |mut client| {
            let (attempt_txid, rejected) = (&attempt_txid, &rejected);
            async move {
                let r = async {
                    let driver =
                        |e: tokio_postgres::Error| PgError::from_driver(&e, "committing an epoch");
                    if let Some(txid) = attempt_txid.get() {
                        let row = client
                            .query_one(TXID_STATUS, &[&txid])
                            .await
                            .map_err(driver)?;
                        let status: Option<String> = row.try_get(0).map_err(driver)?;
                        match status.as_deref() {
                            Some("committed") => return Ok(()),
                            Some("in progress") => {
                                return Err(PgError::Connection(
                                    "the previous attempt's transaction is still open".into(),
                                ))
                            }
                            _ => {}
                        }
                    }
                    let tx = client.transaction().await.map_err(driver)?;
                    let txid: i64 = tx
                        .query_one("SELECT txid_current()", &[])
                        .await
                        .map_err(driver)?
                        .try_get(0)
                        .map_err(driver)?;
                    attempt_txid.set(Some(txid));
                    let marker: i64 = tx
                        .query_opt(READ_MARKER, &[&writer])
                        .await
                        .map_err(driver)?
                        .map_or(Ok(0), |r| r.try_get(0))
                        .map_err(|e| {
                            PgError::from_driver(
                                &e,
                                &format!("reading column 'epoch' of table '{COMMIT_MARKER_TABLE}'"),
                            )
                        })?;
                    let rows: Vec<&PendingRow> = epochs
                        .iter()
                        .filter(|e| e.epoch as i64 > marker)
                        .flat_map(|e| &e.items)
                        .chain(tail)
                        .collect();
                    for chunk in rows.chunks(batch_rows) {
                        let payload = json_array(chunk, upsert);
                        if let Err(e) = tx.execute(sql, &[&payload]).await {
                            *rejected.borrow_mut() = Some(payload);
                            return Err(PgError::from_driver(&e, sql));
                        }
                    }
                    if let Some(last) = last.filter(|&last| last > marker) {
                        tx.execute(WRITE_MARKER, &[&writer, &last])
                            .await
                            .map_err(driver)?;
                    }
                    tx.commit().await.map_err(driver)
                }
                .await;
                (client, r)
            }
        });
        match result {
            Err(PgError::Query { message, .. }) if is_data_error(&message) => {
                match rejected.into_inner() {
                    Some(payload) => Err(self.diagnose(&payload, message)),
                    None => Err(PgError::Query {
                        context: format!("committing into '{}'", self.table),
                        message,
                    }),
                }
            }
            other => other,
        }
    }

    /// Finds the column whose values PostgreSQL rejected, by converting the
    /// batch one column at a time (only after a data error, so the cost
    /// does not matter).
    fn diagnose(&mut self, payload: &String, message: String) -> PgError {
        let Some(conn) = self.conn.as_mut() else {
            return PgError::Mapping(message);
        };
        for (column, ty) in self.columns.iter().zip(&self.types) {
            let sql = format!(
                "SELECT (r->>$2)::{ty} FROM json_array_elements($1::text::json) r",
                ty = ty
            );
            let sql = sql.as_str();
            let failed = conn.run(|client| async move {
                let r = client.query(sql, &[payload, column]).await;
                (client, Ok::<_, PgError>(r.is_err()))
            });
            if matches!(failed, Ok(true)) {
                return PgError::TypeMismatch {
                    table: self.table.clone(),
                    column: column.clone(),
                    sql_type: ty.clone(),
                    message,
                };
            }
        }
        PgError::Query {
            context: format!("inserting into '{}'", self.table),
            message,
        }
    }
}

/// One item, serialised, waiting for its batch (or, under exactly-once,
/// for its epoch's commit, saved in snapshots as it is).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PendingRow {
    /// The JSON text of the key columns' values (upserts only).
    pub(crate) key: String,
    /// The item's JSON object.
    pub(crate) json: String,
}

fn not_initialised() -> PgError {
    PgError::Config("the sink was used before init; this is a runtime bug".into())
}

/// Class 22 is "data exception": a value the column type rejects, reported
/// without the column's name, so `diagnose` finds it.
fn is_data_error(message: &str) -> bool {
    message.contains("SQLSTATE 22")
}

/// The statement parameter for `rows`: a JSON array of their objects, with
/// only the last row of each key when upserting.
fn json_array<R: Borrow<PendingRow>>(rows: &[R], upsert: bool) -> String {
    let mut payload = String::with_capacity(
        rows.iter()
            .map(|r| r.borrow().json.len() + 1)
            .sum::<usize>()
            + 2,
    );
    let mut push = |i: usize, row: &PendingRow| {
        payload.push(if i == 0 { '[' } else { ',' });
        payload.push_str(&row.json);
    };
    if upsert {
        for (i, row) in last_per_key(rows).into_iter().enumerate() {
            push(i, row);
        }
    } else {
        for (i, row) in rows.iter().enumerate() {
            push(i, row.borrow());
        }
    }
    if payload.is_empty() {
        payload.push('[');
    }
    payload.push(']');
    payload
}

/// Keeps only the last row of each key, in the order of those last rows.
fn last_per_key<R: Borrow<PendingRow>>(rows: &[R]) -> Vec<&PendingRow> {
    let mut seen = HashSet::new();
    let mut kept: Vec<&PendingRow> = rows
        .iter()
        .rev()
        .map(Borrow::borrow)
        .filter(|row| seen.insert(row.key.as_str()))
        .collect();
    kept.reverse();
    kept
}

/// Creates the marker table if it is missing. Instances that start together
/// race to create it; the loser's error says it exists, which is as good.
fn create_marker_table(conn: &mut Conn, backoff: Backoff) -> Result<(), PgError> {
    let sql = CREATE_MARKER_TABLE;
    let result = conn.run_retrying(backoff, |client| async move {
        let r = client.batch_execute(sql).await;
        (
            client,
            r.map_err(|e| PgError::from_driver(&e, "creating the commit-marker table")),
        )
    });
    match result {
        Err(PgError::Query { message, .. })
            if message.contains("SQLSTATE 23505") || message.contains("SQLSTATE 42P07") =>
        {
            Ok(())
        }
        other => other,
    }
}

impl<T: Serialize + Send + 'static> Processor for PostgresSinkP<T> {
    type In = Event<T>;
    type Out = ();

    fn is_cooperative(&self) -> bool {
        false
    }

    fn init(&mut self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.prepare().map_err(Self::fail)
    }

    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        while let Some(e) = inbox.poll() {
            let row = self.serialise(&e.value).map_err(Self::fail)?;
            if let Some(epochs) = &mut self.epochs {
                epochs.push(row);
                continue;
            }
            self.first_at.get_or_insert_with(Instant::now);
            self.batch.push(row);
            if self.batch.len() >= self.batch_rows {
                self.flush().map_err(Self::fail)?;
            }
        }
        if let Some(epochs) = &mut self.epochs {
            epochs.ask_if_large();
        }
        // A trickle of input never leaves the runtime an idle round in which
        // to call `try_process`, so the linger is checked here too.
        self.flush_if_lingered().map_err(Self::fail)
    }

    fn try_process<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        self.flush_if_lingered().map_err(Self::fail)?;
        Ok(true)
    }

    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        self.recover().map_err(Self::fail)?;
        if let Some(epochs) = &mut self.epochs {
            // In a job a final snapshot has committed everything by now;
            // run without the runtime (a harness), commit the rest.
            let (writer, sealed, current) = epochs.finish();
            self.commit_epochs(&writer, &sealed, &current)
                .map_err(Self::fail)?;
        }
        self.flush().map_err(Self::fail)?;
        Ok(true)
    }

    fn save_to_snapshot(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        self.recover().map_err(Self::fail)?;
        match &mut self.epochs {
            Some(epochs) => epochs.save(snapshot_id, writer),
            None => Ok(()),
        }
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        // Only an exactly-once sink saves entries; a job restarted with
        // another guarantee has no use for them.
        match &mut self.epochs {
            Some(epochs) => epochs.restore(entry),
            None => Ok(()),
        }
    }

    fn snapshot_commit_finish(&mut self, snapshot_id: u64) -> Result<(), ProcessorError> {
        self.recover().map_err(Self::fail)?;
        if let Some(epochs) = &mut self.epochs {
            let (writer, sealed) = epochs.take_up_to(snapshot_id);
            self.commit_epochs(&writer, &sealed, &[])
                .map_err(Self::fail)?;
        }
        Ok(())
    }
}
