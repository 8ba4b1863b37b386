//! [`PostgresSink`]: writes a stream into a table, batched, by insert or
//! upsert.

use crate::conn::{Backoff, Conn};
use crate::sql::{check_columns, quote_ident, table_columns};
use crate::PgError;
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError};
use eddy_pipeline::Sink;
use serde::Serialize;
use serde_json::Value;
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
    fn create(&self, _ctx: &ProcessorContext) -> PostgresSinkP<T> {
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
        let rows = std::mem::take(&mut self.batch);
        self.first_at = None;
        let rows = if self.key.is_empty() {
            rows
        } else {
            last_per_key(rows)
        };
        let mut payload =
            String::with_capacity(rows.iter().map(|r| r.json.len() + 1).sum::<usize>() + 2);
        payload.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                payload.push(',');
            }
            payload.push_str(&row.json);
        }
        payload.push(']');
        let sql = self.sql.as_str();
        let conn = self.conn.as_mut().ok_or_else(|| {
            PgError::Config("the sink was used before init; this is a runtime bug".into())
        })?;
        let result = conn.run_retrying(self.backoff, |client| {
            let payload = &payload;
            async move {
                let r = client.execute(sql, &[payload]).await;
                (client, r.map_err(|e| PgError::from_driver(&e, sql)))
            }
        });
        match result {
            // Class 22 is "data exception": a value the column type rejects,
            // reported without the column's name, so find it.
            Err(PgError::Query { message, .. }) if message.contains("SQLSTATE 22") => {
                Err(self.diagnose(&payload, message))
            }
            other => other.map(|_| ()),
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

/// One item, serialised, waiting for its batch.
struct PendingRow {
    /// The JSON text of the key columns' values (upserts only).
    key: String,
    /// The item's JSON object.
    json: String,
}

/// Keeps only the last row of each key, in the order of those last rows.
fn last_per_key(rows: Vec<PendingRow>) -> Vec<PendingRow> {
    let mut seen = HashSet::new();
    let mut kept: Vec<PendingRow> = rows
        .into_iter()
        .rev()
        .filter(|row| seen.insert(row.key.clone()))
        .collect();
    kept.reverse();
    kept
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
            self.first_at.get_or_insert_with(Instant::now);
            self.batch.push(row);
            if self.batch.len() >= self.batch_rows {
                self.flush().map_err(Self::fail)?;
            }
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
        self.flush().map_err(Self::fail)?;
        Ok(true)
    }
}
