//! Lowering: a [`QueryPlan`] becomes a [`Pipeline`] of the same stages a
//! Rust user writes. The source, its timestamps, `WHERE` and the first
//! projection fuse into the source's vertex; an aggregation adds the keyed
//! window (or rolling, or batch) aggregate vertex, with `HAVING` and the
//! `SELECT` list fused after it; the sink reads from whichever came last.
//!
//! Stage names come from the plan (`sql:source:<table>`, `sql:window`,
//! `sql:aggregate`), so the same query gets the same names every time.

use crate::agg::SqlAggregate;
use crate::catalog::Table;
use crate::connectors::{json::RowEncoder, map as map_conn, Connector};
use crate::error::{Pos, SqlError};
use crate::expr::Expr;
use crate::plan::{QueryPlan, WindowKind};
use crate::types::{GroupKey, Row, Value};
use eddy::grid::Grid;
use eddy::{Collected, Pipeline, Shared, Sinks, WindowDefinition};
use std::sync::Arc;
use std::time::Duration;

/// Where a query's rows go.
pub enum Target<'a> {
    /// Collected for the caller (a bounded `SELECT`).
    Collect,
    /// A table's sink.
    Table(&'a Table),
}

/// A lowered query.
pub struct Lowered {
    /// The pipeline to submit.
    pub pipeline: Pipeline,
    /// The rows, for [`Target::Collect`].
    pub collected: Option<Collected<Row>>,
}

/// A projection of rows, or `None` to pass them on unchanged.
type Projection = Option<Arc<[Expr]>>;

#[inline]
fn project(p: &Projection, row: Row) -> Row {
    match p {
        None => row,
        Some(exprs) => Row(exprs.iter().map(|e| e.eval(&row)).collect()),
    }
}

#[inline]
fn event_time(row: &Row, column: usize) -> i64 {
    match row[column] {
        Value::Timestamp(ms) => ms,
        // A row without event time is late for every window.
        _ => i64::MIN,
    }
}

/// The map of a `map` table, typed as the connector keeps it.
pub fn row_map(
    grid: &Grid,
    table: &Table,
    name: &str,
    pos: Pos,
) -> Result<map_conn::RowMap, SqlError> {
    grid.map::<String, serde_json::Value>(name).map_err(|e| {
        SqlError::plan(
            pos,
            format!("table '{}' cannot use grid map '{name}': {e}", table.name),
        )
    })
}

fn map_name(table: &Table, m: &map_conn::MapTable) -> String {
    if m.map_name.is_empty() {
        table.name.clone()
    } else {
        m.map_name.clone()
    }
}

/// Reads the plan's table: source, event time (when windowed), `WHERE` and
/// `projection`, fused into one vertex.
fn read(
    p: &Pipeline,
    plan: &QueryPlan,
    grid: &Grid,
    projection: Projection,
    pos: Pos,
) -> Result<Shared<Row>, SqlError> {
    let table = &plan.table;
    let filter: Option<Expr> = plan.filter.as_ref().map(|(e, _)| e.clone());
    let keep = move |r: &Row| filter.as_ref().is_none_or(|f| f.test(r));
    let proj = move |r: Row| project(&projection, r);
    let ts = if plan.uses_event_time {
        table.watermark.as_ref().map(|w| (w.column, w.lag_ms))
    } else {
        None
    };
    let name = format!("sql:source:{}", table.name);
    macro_rules! chain {
        ($stage:expr) => {{
            let stage = $stage.named(&name);
            match ts {
                Some((column, lag_ms)) => stage
                    .with_timestamps(
                        move |r: &Row| event_time(r, column),
                        Duration::from_millis(lag_ms.max(0) as u64),
                    )
                    .filter(keep)
                    .map(proj)
                    .share(),
                None => stage.filter(keep).map(proj).share(),
            }
        }};
    }
    Ok(match &table.connector {
        Connector::Datagen(d) => chain!(p.read_from(d.source())),
        Connector::Filesystem(f) => chain!(p.read_from(f.source(table.columns.clone()))),
        Connector::Map(m) => {
            let map = row_map(grid, table, &map_name(table, m), pos)?;
            chain!(p.read_from(map_conn::source(map, table.columns.clone())))
        }
        Connector::Generated(g) => {
            let f = g.row.clone();
            let source = eddy::Sources::generator(move |n| f(n));
            match g.rows {
                Some(n) => chain!(p.read_from(source.limit(n))),
                None => chain!(p.read_from(source)),
            }
        }
        Connector::Kafka(k) => {
            // Kafka tracks event time per partition in the source itself.
            let watermark = if plan.uses_event_time {
                table.watermark.as_ref()
            } else {
                None
            };
            let stage = p
                .read_from(k.source(table.columns.clone(), watermark))
                .named(&name);
            stage.filter(keep).map(proj).share()
        }
        Connector::Blackhole => {
            return Err(SqlError::plan(
                pos,
                format!(
                    "table '{}' is a blackhole: it can only be written to",
                    table.name
                ),
            ))
        }
    })
}

/// Lowers `plan` into a pipeline writing to `target`.
pub fn lower(
    plan: &QueryPlan,
    target: Target<'_>,
    grid: &Grid,
    pos: Pos,
) -> Result<Lowered, SqlError> {
    let p = Pipeline::new();
    let select: Arc<[Expr]> = plan.select.iter().cloned().collect();
    let out: Shared<Row> = match &plan.aggregate {
        None => {
            let projection = if plan.identity { None } else { Some(select) };
            read(&p, plan, grid, projection, pos)?
        }
        Some(a) => {
            let pre: Arc<[Expr]> = a.pre.iter().cloned().collect();
            let input = read(&p, plan, grid, Some(pre), pos)?;
            let key_count = a.key_count;
            let op = SqlAggregate::new(a.aggs.clone());
            let having: Option<Expr> = a.having.as_ref().map(|(e, _)| e.clone());
            let keep = move |r: &Row| having.as_ref().is_none_or(|h| h.test(r));
            let select2 = select.clone();
            let finish = move |r: Row| Row(select2.iter().map(|e| e.eval(&r)).collect());
            let keyed = input
                .stream()
                .grouping_key(move |r: &Row| GroupKey::of(r, key_count));
            match a.window {
                Some(w) => {
                    let def = match w {
                        WindowKind::Tumble { size_ms } => {
                            WindowDefinition::tumbling(Duration::from_millis(size_ms as u64))
                        }
                        WindowKind::Hop { slide_ms, size_ms } => WindowDefinition::sliding(
                            Duration::from_millis(size_ms as u64),
                            Duration::from_millis(slide_ms as u64),
                        ),
                        WindowKind::Session { gap_ms } => {
                            WindowDefinition::session(Duration::from_millis(gap_ms as u64))
                        }
                    };
                    keyed
                        .window(def)
                        .aggregate(op)
                        .named("sql:window")
                        .map(|w: eddy::WindowResult<GroupKey, Row>| {
                            let mut v = Vec::with_capacity(2 + w.value.len() + 2);
                            v.push(Value::Timestamp(w.start));
                            v.push(Value::Timestamp(w.end));
                            w.key.extend_into(&mut v);
                            v.extend(w.value.0.into_vec());
                            Row::new(v)
                        })
                        .filter(keep)
                        .map(finish)
                        .share()
                }
                None => {
                    let to_row = |(k, aggs): (GroupKey, Row)| {
                        let mut v = Vec::with_capacity(aggs.len() + 2);
                        k.extend_into(&mut v);
                        v.extend(aggs.0.into_vec());
                        Row::new(v)
                    };
                    if plan.table.connector.is_bounded() {
                        keyed
                            .aggregate(op)
                            .named("sql:aggregate")
                            .map(to_row)
                            .filter(keep)
                            .map(finish)
                            .share()
                    } else {
                        keyed
                            .rolling_aggregate(op)
                            .named("sql:rolling-aggregate")
                            .map(to_row)
                            .filter(keep)
                            .map(finish)
                            .share()
                    }
                }
            }
        }
    };
    let collected = match target {
        Target::Collect => {
            let (sink, collected) = Sinks::collect::<Row>();
            out.stream().write_to(sink);
            Some(collected)
        }
        Target::Table(t) => {
            write(&out, t, grid, pos)?;
            None
        }
    };
    Ok(Lowered {
        pipeline: p,
        collected,
    })
}

/// Writes `out` into table `t`'s sink.
fn write(out: &Shared<Row>, t: &Table, grid: &Grid, pos: Pos) -> Result<(), SqlError> {
    let names: Arc<[String]> = t.columns.iter().map(|c| c.name.clone()).collect();
    match &t.connector {
        Connector::Map(m) => {
            if t.primary_key.is_empty() {
                return Err(SqlError::plan(
                    pos,
                    format!("table '{}' is a map: it needs a PRIMARY KEY (…) NOT ENFORCED to know each row's key", t.name),
                ));
            }
            let map = row_map(grid, t, &map_name(t, m), pos)?;
            let key = t.primary_key.clone();
            let sink = Sinks::map_update(
                map,
                move |r: &Row| map_conn::key_of(r, &key),
                move |entry, row: Row| entry.set_value(map_conn::to_object(&row, &names)),
            );
            out.stream().write_to(sink);
        }
        Connector::Filesystem(f) => {
            let encoder = RowEncoder::new(names, Default::default());
            out.stream()
                .map(move |r: Row| encoder.line(&r))
                .write_to(Sinks::file(f.path.clone()));
        }
        Connector::Kafka(k) => {
            if t.primary_key.is_empty() {
                out.stream().write_to(k.sink(names));
            } else {
                out.stream()
                    .write_to(k.keyed_sink(names, t.primary_key.clone()));
            }
        }
        Connector::Blackhole => {
            let (sink, _count) = Sinks::noop();
            out.stream().write_to(sink);
        }
        Connector::Datagen(_) | Connector::Generated(_) => {
            return Err(SqlError::plan(
                pos,
                format!(
                    "table '{}' is a {} table: it can be read, not written",
                    t.name,
                    t.connector.name()
                ),
            ))
        }
    }
    Ok(())
}
