//! The `map` connector: a grid map as a table. As a sink it upserts each
//! row under its primary key; as a source it reads the map's entries once
//! (a bounded source).
//!
//! Entries are `String` keys and JSON object values, so that the grid's
//! JSON view, its predicate queries, `eddy map` and the dashboard read
//! them like any map: the key is the primary key's value as text (for a
//! key of several columns, a JSON array of them), and the value is the
//! row as a JSON object of its columns.

use super::Options;
use crate::error::SqlError;
use crate::types::{Row, Value};

/// A `map` table's options.
#[derive(Debug, Clone)]
pub struct MapTable {
    /// The grid map's name (`'map.name'`, default the table's name).
    pub map_name: String,
}

impl MapTable {
    pub(crate) fn from_options(opts: &mut Options) -> Result<MapTable, SqlError> {
        let map_name = opts.take("map.name").map(|(v, _)| v).unwrap_or_default();
        Ok(MapTable { map_name })
    }
}

/// The map key of `row`: its key columns' value as text, or a JSON array
/// of them.
pub fn key_of(row: &[Value], key: &[usize]) -> String {
    match key {
        [one] => match &row[*one] {
            Value::Str(s) => s.to_string(),
            Value::Null => "null".to_string(),
            v => v.to_json().to_string(),
        },
        many => {
            serde_json::Value::Array(many.iter().map(|i| row[*i].to_json()).collect()).to_string()
        }
    }
}

/// The row as the JSON object stored in the map.
pub fn to_object(row: &Row, names: &[String]) -> serde_json::Value {
    let mut m = serde_json::Map::with_capacity(names.len());
    for (name, v) in names.iter().zip(row.iter()) {
        m.insert(name.clone(), v.to_json());
    }
    serde_json::Value::Object(m)
}

use super::json::RowDecoder;
use crate::catalog::Column;
use eddy::grid::Map;
use eddy::processor::ProcessorContext;
use eddy::source::SourceBuilder;
use eddy::{ProcessorError, Source};
use std::sync::Arc;

/// The grid map type of `map` tables.
pub type RowMap = Map<String, serde_json::Value>;

/// Entries one fill call converts.
const ENTRIES_PER_FILL: usize = 1024;

/// The source of a map's entries at the time the job starts.
pub fn source(map: RowMap, columns: Arc<[Column]>) -> impl Source<Out = Row> {
    let decoder = RowDecoder::new(columns);
    let name = map.name().to_string();
    SourceBuilder::batch(format!("map:{name}"), move |_ctx: &ProcessorContext| {
        Ok(map.values().into_iter())
    })
    .fill(
        move |values: &mut std::vec::IntoIter<serde_json::Value>, buf| {
            for _ in 0..ENTRIES_PER_FILL {
                let Some(v) = values.next() else {
                    buf.close();
                    return Ok(());
                };
                let row = decoder.from_value(&v).map_err(|e| {
                    ProcessorError::new(format!(
                        "an entry of map '{name}' does not fit the table: {e}"
                    ))
                })?;
                buf.add(row);
            }
            Ok(())
        },
    )
    .build()
}
