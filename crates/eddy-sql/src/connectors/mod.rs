//! Connectors: what a table's `WITH ('connector' = …)` options mean, checked
//! when the table is created, and the sources and sinks of rows they make
//! for a job.
//!
//! | connector | source | sink |
//! |---|---|---|
//! | `datagen` | generated rows, bounded with `'number-of-rows'` | – |
//! | `kafka` | JSON records of a topic, bounded with `'scan.bounded.mode' = 'latest-offset'` | JSON records |
//! | `map` | the entries of a grid map (bounded) | upsert by primary key |
//! | `filesystem` | JSON lines of a file (bounded) | JSON lines |
//! | `blackhole` | – | discards rows |

pub mod datagen;
pub mod filesystem;
pub mod json;
pub mod kafka;
pub mod map;

use crate::catalog::Column;
use crate::error::{did_you_mean, Pos, SqlError};
use crate::parser::SqlOption;
use std::time::Duration;

/// A table's connector with its checked options.
#[derive(Debug, Clone)]
pub enum Connector {
    /// Generated rows.
    Datagen(datagen::DatagenTable),
    /// A Kafka topic of JSON records.
    Kafka(kafka::KafkaTable),
    /// A grid map.
    Map(map::MapTable),
    /// A file of JSON lines.
    Filesystem(filesystem::FileTable),
    /// A sink that discards rows.
    Blackhole,
    /// Rows an application generates (see
    /// [`Session::create_generated_table`](crate::Session::create_generated_table)).
    Generated(GeneratedTable),
}

/// The row function of a generated table: row `n` of the table.
pub type RowFn = std::sync::Arc<dyn Fn(u64) -> crate::types::Row + Send + Sync>;

/// A table whose rows a function of the row number makes, registered by
/// the application rather than by `CREATE TABLE`: benchmarks and tests feed
/// generators of their own through it.
#[derive(Clone)]
pub struct GeneratedTable {
    /// Rows in the table, or `None` for an endless one.
    pub rows: Option<u64>,
    /// Row `n`.
    pub row: RowFn,
}

impl std::fmt::Debug for GeneratedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedTable")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

const CONNECTORS: [&str; 5] = ["datagen", "kafka", "map", "filesystem", "blackhole"];

impl Connector {
    /// The connector the options of `CREATE TABLE` describe.
    pub fn from_options(
        options: &[SqlOption],
        columns: &[Column],
        table_pos: Pos,
    ) -> Result<Connector, SqlError> {
        let mut opts = Options::new(options)?;
        let Some((name, pos)) = opts.take("connector") else {
            return Err(SqlError::plan(
                table_pos,
                format!(
                    "the table has no connector: add WITH ('connector' = '…') with one of {}",
                    CONNECTORS.join(", ")
                ),
            ));
        };
        let connector = match name.as_str() {
            "datagen" => Connector::Datagen(datagen::DatagenTable::from_options(
                &mut opts, columns, pos,
            )?),
            "kafka" | "upsert-kafka" => {
                Connector::Kafka(kafka::KafkaTable::from_options(&mut opts, pos)?)
            }
            "map" | "imap" => Connector::Map(map::MapTable::from_options(&mut opts)?),
            "filesystem" => {
                Connector::Filesystem(filesystem::FileTable::from_options(&mut opts, pos)?)
            }
            "blackhole" => Connector::Blackhole,
            other => {
                return Err(SqlError::plan(
                    pos,
                    format!(
                        "unknown connector '{other}'{}; the connectors are {}",
                        did_you_mean(other, CONNECTORS),
                        CONNECTORS.join(", ")
                    ),
                ))
            }
        };
        opts.finish(&name)?;
        Ok(connector)
    }

    /// The connector's name.
    pub fn name(&self) -> &'static str {
        match self {
            Connector::Datagen(_) => "datagen",
            Connector::Kafka(_) => "kafka",
            Connector::Map(_) => "map",
            Connector::Filesystem(_) => "filesystem",
            Connector::Blackhole => "blackhole",
            Connector::Generated(_) => "generated",
        }
    }

    /// Whether reading the table ends.
    pub fn is_bounded(&self) -> bool {
        match self {
            Connector::Datagen(d) => d.number_of_rows.is_some(),
            Connector::Kafka(k) => k.bounded,
            Connector::Map(_) | Connector::Filesystem(_) => true,
            Connector::Blackhole => true,
            Connector::Generated(g) => g.rows.is_some(),
        }
    }

    /// One line for `DESCRIBE` and `EXPLAIN`.
    pub fn describe(&self) -> String {
        match self {
            Connector::Datagen(d) => d.describe(),
            Connector::Kafka(k) => k.describe(),
            Connector::Map(m) => format!("map '{}'", m.map_name),
            Connector::Filesystem(f) => format!("filesystem '{}' (JSON lines)", f.path.display()),
            Connector::Blackhole => "blackhole".into(),
            Connector::Generated(g) => match g.rows {
                Some(n) => format!("generated by the application ({n} rows)"),
                None => "generated by the application (unbounded)".into(),
            },
        }
    }
}

/// The options of a `WITH` clause being read: each connector takes the
/// ones it knows, and what is left is an error naming the nearest known.
pub struct Options {
    items: Vec<(String, String, Pos)>,
    known: Vec<&'static str>,
}

impl Options {
    /// The options, refusing a key given twice.
    pub fn new(options: &[SqlOption]) -> Result<Options, SqlError> {
        let mut items: Vec<(String, String, Pos)> = Vec::new();
        for o in options {
            if items.iter().any(|(k, _, _)| *k == o.key) {
                return Err(SqlError::plan(
                    o.pos,
                    format!("option '{}' is given twice", o.key),
                ));
            }
            items.push((o.key.clone(), o.value.clone(), o.pos));
        }
        Ok(Options {
            items,
            known: vec!["connector"],
        })
    }

    /// Takes option `key`: its value and position.
    pub fn take(&mut self, key: &'static str) -> Option<(String, Pos)> {
        self.known.push(key);
        let i = self.items.iter().position(|(k, _, _)| k == key)?;
        let (_, v, p) = self.items.remove(i);
        Some((v, p))
    }

    /// Takes every option whose key starts with `prefix`, without it.
    pub fn take_prefixed(&mut self, prefix: &'static str) -> Vec<(String, String, Pos)> {
        self.known.push(prefix);
        let (taken, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|(k, _, _)| k.starts_with(prefix));
        self.items = rest;
        taken
            .into_iter()
            .map(|(k, v, p)| (k[prefix.len()..].to_string(), v, p))
            .collect()
    }

    /// Takes a numeric option.
    pub fn take_parsed<T: std::str::FromStr>(
        &mut self,
        key: &'static str,
        what: &str,
    ) -> Result<Option<T>, SqlError> {
        match self.take(key) {
            None => Ok(None),
            Some((v, pos)) => v.trim().parse().map(Some).map_err(|_| {
                SqlError::plan(pos, format!("option '{key}' must be {what}, not '{v}'"))
            }),
        }
    }

    /// Fails on the first option no one took.
    pub fn finish(self, connector: &str) -> Result<(), SqlError> {
        match self.items.first() {
            None => Ok(()),
            Some((k, _, pos)) => Err(SqlError::plan(
                *pos,
                format!(
                    "unknown option '{k}' for connector '{connector}'{}",
                    did_you_mean(k, self.known.iter().copied())
                ),
            )),
        }
    }
}

/// A duration option: `500ms`, `2s`, `2 s`, `1min`, `1h`, or plain
/// milliseconds.
pub fn parse_duration(text: &str, key: &str, pos: Pos) -> Result<Duration, SqlError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        SqlError::plan(
            pos,
            format!("option '{key}' must be a duration like '500ms', '2s' or '1min', not '{text}'"),
        )
    })?;
    let ms_per = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "second" | "seconds" => 1000.0,
        "min" | "m" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        _ => {
            return Err(SqlError::plan(
                pos,
                format!("option '{key}' has an unknown unit in '{text}': use ms, s, min or h"),
            ))
        }
    };
    Ok(Duration::from_millis((value * ms_per) as u64))
}
