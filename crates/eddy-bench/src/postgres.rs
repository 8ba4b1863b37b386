//! Sink throughput against two plain loops on the same driver, in the same
//! run, on the same table: batched multi-row `INSERT`s and batched binary
//! `COPY`.

use anyhow::{anyhow, Context};
use eddy::postgres::PostgresSink;
use eddy::processor::{Inbox, Processor, ProcessorContext, VecOutbox};
use eddy::{Event, Sink};
use serde::Serialize;
use std::fmt;
use std::time::Instant;
use tokio::runtime::Runtime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

type PgError = anyhow::Error;

/// One connection driven by a runtime of its own, as the sink's is.
struct Conn {
    rt: Runtime,
    client: Client,
}

impl Conn {
    fn new(url: &str) -> Result<Conn, PgError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a tokio runtime")?;
        let (client, connection) = rt
            .block_on(tokio_postgres::connect(url, NoTls))
            .with_context(|| format!("connecting to '{url}'"))?;
        rt.spawn(connection);
        Ok(Conn { rt, client })
    }
}

/// Rows per statement (or `COPY`) of every contender, so that only the
/// sink's own overhead (JSON encoding, `json_populate_recordset`) differs.
const BATCH_ROWS: usize = 1_000;

/// Table the benchmark creates, fills and drops.
const TABLE: &str = "eddy_bench_sink";

/// One benchmark row.
#[derive(Serialize)]
struct BenchRow {
    id: i64,
    name: String,
    amount: f64,
}

fn row(i: u64) -> BenchRow {
    BenchRow {
        id: i as i64,
        name: format!("customer-{}", i % 10_000),
        amount: (i % 1_000) as f64 * 0.25,
    }
}

/// What [`run`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchReport {
    /// Rows written by each contender.
    pub rows: u64,
    /// The plain multi-row `INSERT` loop with typed parameters.
    pub baseline_rows_per_sec: f64,
    /// A binary `COPY` per batch.
    pub copy_rows_per_sec: f64,
    /// [`PostgresSink`] in insert mode.
    pub sink_rows_per_sec: f64,
}

impl BenchReport {
    /// Sink throughput as a fraction of the multi-row `INSERT` loop's.
    pub fn ratio(&self) -> f64 {
        self.sink_rows_per_sec / self.baseline_rows_per_sec
    }

    /// Sink throughput as a fraction of the `COPY` loop's.
    pub fn copy_ratio(&self) -> f64 {
        self.sink_rows_per_sec / self.copy_rows_per_sec
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgres sink: {} rows; multi-row INSERT {:.0} rows/s, binary COPY {:.0} rows/s, sink {:.0} rows/s ({:.0}% of INSERT, {:.0}% of COPY)",
            self.rows,
            self.baseline_rows_per_sec,
            self.copy_rows_per_sec,
            self.sink_rows_per_sec,
            self.ratio() * 100.0,
            self.copy_ratio() * 100.0
        )
    }
}

/// Writes `rows` rows with each contender into a fresh table of the
/// database at `url` (it needs the right to create tables) and reports the
/// rows per second of each. The table is dropped afterwards.
pub fn run(url: &str, rows: u64) -> Result<BenchReport, PgError> {
    let mut conn = Conn::new(url)?;
    exec(&mut conn, &format!(
        "DROP TABLE IF EXISTS {TABLE}; CREATE UNLOGGED TABLE {TABLE} (id bigint PRIMARY KEY, name text, amount double precision)"
    ))?;
    let baseline = time(|| baseline(&mut conn, rows))?;
    exec(&mut conn, &format!("TRUNCATE {TABLE}"))?;
    let copy = time(|| copy(&mut conn, rows))?;
    exec(&mut conn, &format!("TRUNCATE {TABLE}"))?;
    let sink = time(|| through_sink(url, rows))?;
    exec(&mut conn, &format!("DROP TABLE {TABLE}"))?;
    Ok(BenchReport {
        rows,
        baseline_rows_per_sec: rows as f64 / baseline,
        copy_rows_per_sec: rows as f64 / copy,
        sink_rows_per_sec: rows as f64 / sink,
    })
}

fn time(f: impl FnOnce() -> Result<(), PgError>) -> Result<f64, PgError> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64().max(1e-9))
}

fn exec(conn: &mut Conn, sql: &str) -> Result<(), PgError> {
    conn.rt
        .block_on(conn.client.batch_execute(sql))
        .with_context(|| format!("running '{sql}'"))
}

fn baseline(conn: &mut Conn, rows: u64) -> Result<(), PgError> {
    let mut start = 0;
    while start < rows {
        let end = (start + BATCH_ROWS as u64).min(rows);
        let batch: Vec<BenchRow> = (start..end).map(row).collect();
        let placeholders: Vec<String> = (0..batch.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO {TABLE} (id, name, amount) VALUES {}",
            placeholders.join(", ")
        );
        let params: Vec<&(dyn ToSql + Sync)> = batch
            .iter()
            .flat_map(|r| [&r.id as _, &r.name as _, &r.amount as _])
            .collect();
        conn.rt
            .block_on(conn.client.execute(sql.as_str(), params.as_slice()))
            .context("a multi-row INSERT")?;
        start = end;
    }
    Ok(())
}

fn copy(conn: &mut Conn, rows: u64) -> Result<(), PgError> {
    let sql = format!("COPY {TABLE} (id, name, amount) FROM STDIN BINARY");
    let sql = sql.as_str();
    let mut start = 0;
    while start < rows {
        let end = (start + BATCH_ROWS as u64).min(rows);
        let batch: Vec<BenchRow> = (start..end).map(row).collect();
        let client = &conn.client;
        conn.rt
            .block_on(async {
                let sink = client.copy_in(sql).await?;
                let types = [Type::INT8, Type::TEXT, Type::FLOAT8];
                let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
                for r in &batch {
                    writer.as_mut().write(&[&r.id, &r.name, &r.amount]).await?;
                }
                writer.finish().await
            })
            .context("a binary COPY")?;
        start = end;
    }
    Ok(())
}

fn through_sink(url: &str, rows: u64) -> Result<(), PgError> {
    let sink =
        PostgresSink::<BenchRow>::new(url, TABLE, &["id", "name", "amount"]).batch_rows(BATCH_ROWS);
    let ctx = ProcessorContext::standalone("bench");
    let mut p = sink.create(&ctx);
    let fail = |e: eddy::ProcessorError| anyhow!("the benchmark's sink failed: {e}");
    p.init(&ctx).map_err(fail)?;
    let mut outbox = VecOutbox::with_capacity(0);
    let mut start = 0;
    while start < rows {
        // Inboxes of the size the runtime hands a sink.
        let end = (start + 256).min(rows);
        let mut inbox = Inbox::from_vec((start..end).map(|i| Event::untimed(row(i))).collect());
        p.process(0, &mut inbox, &mut outbox).map_err(fail)?;
        start = end;
    }
    while !p.complete(&mut outbox).map_err(fail)? {}
    p.close().map_err(fail)?;
    Ok(())
}
