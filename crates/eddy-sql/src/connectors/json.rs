//! Rows as JSON objects: decoding (for the Kafka and file sources) and
//! encoding (for the sinks). A field missing from an object is NULL;
//! fields the table does not have are ignored; a field of the wrong type
//! is an error naming the column.

use super::Options;
use crate::catalog::Column;
use crate::error::SqlError;
use crate::types::{format_rfc3339, Row, Value};
use std::sync::Arc;

/// Checks `'format'` (and `'value.format'`): JSON is the one there is yet.
pub fn check_format(opts: &mut Options, connector: &str) -> Result<(), SqlError> {
    for key in ["format", "value.format"] {
        if let Some((format, pos)) = opts.take(key) {
            if format != "json" {
                return Err(SqlError::unsupported_hint(
                    pos,
                    format!("'{key}' = '{format}' for connector '{connector}'"),
                    format!("JSON is the format there is: '{key}' = 'json'"),
                ));
            }
        }
    }
    Ok(())
}

/// How timestamps are written to JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// RFC 3339 text in UTC, with milliseconds (the default).
    #[default]
    Rfc3339,
    /// Milliseconds since the epoch.
    EpochMillis,
}

/// Decodes JSON objects into rows of a table's columns.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    columns: Arc<[Column]>,
}

impl RowDecoder {
    /// A decoder for rows of `columns`.
    pub fn new(columns: Arc<[Column]>) -> Self {
        RowDecoder { columns }
    }

    /// The row of one JSON object; the error says what did not fit.
    pub fn decode(&self, bytes: &[u8]) -> Result<Row, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        self.from_value(&value)
    }

    /// The row of one parsed JSON object.
    pub fn from_value(&self, value: &serde_json::Value) -> Result<Row, String> {
        let serde_json::Value::Object(map) = value else {
            return Err(format!("expected a JSON object, found {value}"));
        };
        let mut row = Vec::with_capacity(self.columns.len());
        for c in self.columns.iter() {
            let v = match map.get(&c.name) {
                None => Value::Null,
                Some(v) => Value::from_json(v, c.data_type)
                    .map_err(|e| format!("column '{}': {e}", c.name))?,
            };
            row.push(v);
        }
        Ok(Row::new(row))
    }
}

impl eddy::kafka::Decoder for RowDecoder {
    type Value = Row;
    fn decode(&self, bytes: &[u8]) -> Result<Row, String> {
        RowDecoder::decode(self, bytes)
    }
}

/// Encodes rows as JSON objects with the given column names.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    names: Arc<[String]>,
    timestamps: TimestampFormat,
}

impl RowEncoder {
    /// An encoder writing these names.
    pub fn new(names: Arc<[String]>, timestamps: TimestampFormat) -> Self {
        RowEncoder { names, timestamps }
    }

    /// Appends the JSON object of `row` to `out`.
    pub fn write(&self, row: &[Value], out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (name, v)) in self.names.iter().zip(row.iter()).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Names and text go through serde_json for escaping.
            serde_json::to_writer(&mut *out, name.as_str()).expect("writing to a Vec");
            out.push(b':');
            match v {
                Value::Timestamp(ms) if self.timestamps == TimestampFormat::Rfc3339 => {
                    serde_json::to_writer(&mut *out, &format_rfc3339(*ms))
                        .expect("writing to a Vec")
                }
                Value::Timestamp(ms) | Value::Interval(ms) | Value::Int(ms) => {
                    out.extend_from_slice(ms.to_string().as_bytes())
                }
                other => {
                    serde_json::to_writer(&mut *out, &other.to_json()).expect("writing to a Vec")
                }
            }
        }
        out.push(b'}');
    }

    /// The JSON text of `row`.
    pub fn line(&self, row: &[Value]) -> String {
        let mut out = Vec::with_capacity(16 * row.len());
        self.write(row, &mut out);
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }
}

impl eddy::kafka::Encoder for RowEncoder {
    type Value = Row;
    fn encode(&self, value: &Row, out: &mut Vec<u8>) -> Result<(), String> {
        self.write(value, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::DataType;

    #[test]
    fn when_a_row_round_trips_through_json_then_it_is_equal() {
        let columns: Arc<[Column]> = vec![
            Column {
                name: "id".into(),
                data_type: DataType::BigInt,
            },
            Column {
                name: "name".into(),
                data_type: DataType::Varchar,
            },
            Column {
                name: "ts".into(),
                data_type: DataType::Timestamp,
            },
            Column {
                name: "x".into(),
                data_type: DataType::Double,
            },
        ]
        .into();
        let names: Arc<[String]> = columns.iter().map(|c| c.name.clone()).collect();
        let row = Row::new(vec![
            Value::Int(7),
            Value::str("a \"q\""),
            Value::Timestamp(1_700_000_000_123),
            Value::Null,
        ]);
        let line = RowEncoder::new(names, TimestampFormat::Rfc3339).line(&row);
        let back = RowDecoder::new(columns).decode(line.as_bytes()).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn when_a_field_has_the_wrong_type_then_the_error_names_the_column() {
        let columns: Arc<[Column]> = vec![Column {
            name: "id".into(),
            data_type: DataType::BigInt,
        }]
        .into();
        let e = RowDecoder::new(columns)
            .decode(br#"{"id":"x"}"#)
            .unwrap_err();
        assert!(e.contains("column 'id'"), "{e}");
    }
}
