//! The `datagen` connector: generated rows, so that SQL runs without
//! Kafka. Each field is a sequence or random; random values are a function
//! of the seed, the column and the row number only, so the same table
//! gives the same rows at any parallelism and in every run.
//!
//! Options: `'rows-per-second'` (default: as fast as possible),
//! `'number-of-rows'` (bounded; default unbounded), `'seed'` (default 0),
//! and per field `'fields.<col>.kind'` = `'sequence'` | `'random'` with
//! `'fields.<col>.min'` / `'max'` (random numbers and timestamps),
//! `'fields.<col>.start'` / `'step'` (sequences; timestamps in ms or as
//! text), `'fields.<col>.length'` (random text). Defaults: timestamps are
//! a sequence from 0 stepping 1000 / rows-per-second ms (1 ms without a
//! rate); numbers random in [0, 1000] (doubles in [0, 1)); text random of
//! length 10; booleans random.

use super::Options;
use crate::catalog::Column;
use crate::error::{did_you_mean, Pos, SqlError};
use crate::types::{parse_timestamp, DataType, Row, Value};
use eddy::{Source, Sources};
use std::sync::Arc;

/// How one field is generated.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldGen {
    /// `start + n * step`.
    Sequence {
        /// The first value.
        start: i64,
        /// The step.
        step: i64,
    },
    /// Uniform in `[min, max]`.
    Random {
        /// The least value.
        min: i64,
        /// The greatest value.
        max: i64,
    },
    /// Uniform in `[min, max)`.
    RandomDouble {
        /// The least value.
        min: f64,
        /// The bound.
        max: f64,
    },
    /// Random lowercase letters and digits.
    RandomText {
        /// Characters.
        length: usize,
    },
    /// Random true or false.
    RandomBool,
}

/// A `datagen` table's options.
#[derive(Debug, Clone)]
pub struct DatagenTable {
    /// `'rows-per-second'`.
    pub rows_per_second: Option<f64>,
    /// `'number-of-rows'`.
    pub number_of_rows: Option<u64>,
    /// `'seed'`.
    pub seed: u64,
    /// Per column.
    pub fields: Arc<[(FieldGen, DataType)]>,
}

/// Longest random text: a limit on what one row may cost.
const TEXT_LENGTH_MAX: usize = 64 * 1024;

impl DatagenTable {
    pub(crate) fn from_options(
        opts: &mut Options,
        columns: &[Column],
        pos: Pos,
    ) -> Result<DatagenTable, SqlError> {
        let rows_per_second = match opts.take("rows-per-second") {
            None => None,
            Some((text, rpos)) => match text.trim().parse::<f64>() {
                Ok(r) if r > 0.0 && r.is_finite() => Some(r),
                _ => {
                    return Err(SqlError::plan(
                        rpos,
                        format!("'rows-per-second' must be a number above 0, not '{text}'"),
                    ))
                }
            },
        };
        let number_of_rows = opts.take_parsed("number-of-rows", "a whole number")?;
        let seed = opts.take_parsed("seed", "a whole number")?.unwrap_or(0);
        let mut per_field = opts.take_prefixed("fields.");
        let mut fields = Vec::with_capacity(columns.len());
        for c in columns {
            let mut take = |prop: &str| -> Option<(String, Pos)> {
                let i = per_field.iter().position(|(k, _, _)| {
                    k.len() == c.name.len() + 1 + prop.len()
                        && k[..c.name.len()].eq_ignore_ascii_case(&c.name)
                        && k[c.name.len()..].strip_prefix('.') == Some(prop)
                })?;
                let (_, v, p) = per_field.remove(i);
                Some((v, p))
            };
            let kind = take("kind");
            let int = |v: Option<(String, Pos)>,
                       what: &str,
                       ty: DataType|
             -> Result<Option<i64>, SqlError> {
                match v {
                    None => Ok(None),
                    Some((text, pos)) => {
                        let parsed = text.trim().parse::<i64>().ok().or_else(|| {
                            (ty == DataType::Timestamp)
                                .then(|| parse_timestamp(&text))
                                .flatten()
                        });
                        parsed.map(Some).ok_or_else(|| {
                            SqlError::plan(
                                pos,
                                format!(
                                    "'fields.{}.{what}' must be a whole number{}, not '{text}'",
                                    c.name,
                                    if ty == DataType::Timestamp {
                                        " of ms or a timestamp"
                                    } else {
                                        ""
                                    }
                                ),
                            )
                        })
                    }
                }
            };
            let ty = c.data_type;
            let sequence = match &kind {
                None => ty == DataType::Timestamp,
                Some((k, pos)) => match k.as_str() {
                    "sequence" => true,
                    "random" => false,
                    other => {
                        return Err(SqlError::plan(
                            *pos,
                            format!(
                                "'fields.{}.kind' = '{other}' is not 'sequence' or 'random'",
                                c.name
                            ),
                        ))
                    }
                },
            };
            let generator = if sequence {
                if matches!(ty, DataType::Boolean) {
                    return Err(SqlError::plan(
                        kind.map_or(pos, |k| k.1),
                        format!("column '{}' is BOOLEAN: it can only be random", c.name),
                    ));
                }
                let default_step = match (ty, rows_per_second) {
                    (DataType::Timestamp, Some(r)) => ((1000.0 / r) as i64).max(1),
                    _ => 1,
                };
                FieldGen::Sequence {
                    start: int(take("start"), "start", ty)?.unwrap_or(0),
                    step: int(take("step"), "step", ty)?.unwrap_or(default_step),
                }
            } else {
                match ty {
                    DataType::Double => {
                        let f = |v: Option<(String, Pos)>,
                                 what: &str,
                                 d: f64|
                         -> Result<f64, SqlError> {
                            match v {
                                None => Ok(d),
                                Some((t, pos)) => t.trim().parse().map_err(|_| {
                                    SqlError::plan(
                                        pos,
                                        format!(
                                            "'fields.{}.{what}' must be a number, not '{t}'",
                                            c.name
                                        ),
                                    )
                                }),
                            }
                        };
                        FieldGen::RandomDouble {
                            min: f(take("min"), "min", 0.0)?,
                            max: f(take("max"), "max", 1.0)?,
                        }
                    }
                    DataType::Varchar => {
                        let given = take("length");
                        let lpos = given.as_ref().map_or(pos, |g| g.1);
                        let length = int(given, "length", ty)?.unwrap_or(10);
                        if !(0..=TEXT_LENGTH_MAX as i64).contains(&length) {
                            return Err(SqlError::plan(
                                lpos,
                                format!(
                                    "'fields.{}.length' must be in [0, {TEXT_LENGTH_MAX}]",
                                    c.name
                                ),
                            ));
                        }
                        FieldGen::RandomText {
                            length: length as usize,
                        }
                    }
                    DataType::Boolean => FieldGen::RandomBool,
                    _ => {
                        let given = take("min");
                        let mpos = given.as_ref().map_or(pos, |g| g.1);
                        let min = int(given, "min", ty)?.unwrap_or(0);
                        let max = int(take("max"), "max", ty)?.unwrap_or(1000);
                        if min > max {
                            return Err(SqlError::plan(
                                mpos,
                                format!("'fields.{}.min' is above its 'max'", c.name),
                            ));
                        }
                        FieldGen::Random { min, max }
                    }
                }
            };
            fields.push((generator, ty));
        }
        if let Some((k, _, pos)) = per_field.first() {
            let col = k.split('.').next().unwrap_or(k);
            let known_col = columns.iter().any(|c| c.name.eq_ignore_ascii_case(col));
            let msg = if known_col {
                format!("unknown option 'fields.{k}' (a field takes kind, min, max, start, step, length)")
            } else {
                format!(
                    "option 'fields.{k}' names no column{}",
                    did_you_mean(col, columns.iter().map(|c| c.name.as_str()))
                )
            };
            return Err(SqlError::plan(*pos, msg));
        }
        Ok(DatagenTable {
            rows_per_second,
            number_of_rows,
            seed,
            fields: fields.into(),
        })
    }

    /// One line for `DESCRIBE` and `EXPLAIN`.
    pub fn describe(&self) -> String {
        let rate = self
            .rows_per_second
            .map_or("as fast as possible".to_string(), |r| format!("{r} rows/s"));
        let rows = self
            .number_of_rows
            .map_or("unbounded".to_string(), |n| format!("{n} rows"));
        format!("datagen ({rows}, {rate}, seed {})", self.seed)
    }

    /// Row number `n`.
    pub fn row(&self, n: u64) -> Row {
        generate(&self.fields, self.seed, n)
    }

    /// The source of the table's rows.
    pub fn source(&self) -> impl Source<Out = Row> {
        let fields = self.fields.clone();
        let seed = self.seed;
        let g = Sources::generator(move |n| generate(&fields, seed, n));
        let g = match self.rows_per_second {
            Some(r) => g.rate(r),
            None => g,
        };
        match self.number_of_rows {
            Some(n) => g.limit(n).into_unbounded(),
            None => g,
        }
    }
}

/// SplitMix64: a fast, well-mixed hash of the seed, column and row.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn generate(fields: &[(FieldGen, DataType)], seed: u64, n: u64) -> Row {
    let mut row = Vec::with_capacity(fields.len());
    for (i, (g, ty)) in fields.iter().enumerate() {
        let r = mix(seed ^ mix(n ^ ((i as u64 + 1) << 48)));
        let v = match g {
            FieldGen::Sequence { start, step } => {
                let x = start.wrapping_add((n as i64).wrapping_mul(*step));
                match ty {
                    DataType::Double => Value::Double(x as f64),
                    DataType::Varchar => Value::str(&x.to_string()),
                    DataType::Timestamp => Value::Timestamp(x),
                    DataType::Interval => Value::Interval(x),
                    _ => Value::Int(x),
                }
            }
            FieldGen::Random { min, max } => {
                let span = (*max as i128 - *min as i128 + 1) as u128;
                let x = (*min as i128 + (r as u128 % span) as i128) as i64;
                match ty {
                    DataType::Timestamp => Value::Timestamp(x),
                    DataType::Interval => Value::Interval(x),
                    _ => Value::Int(x),
                }
            }
            FieldGen::RandomDouble { min, max } => {
                let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
                Value::Double(min + unit * (max - min))
            }
            FieldGen::RandomText { length } => {
                const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
                let mut s = String::with_capacity(*length);
                let mut x = r;
                for k in 0..*length {
                    if k % 8 == 0 && k > 0 {
                        x = mix(x);
                    }
                    s.push(ALPHABET[(x % 36) as usize] as char);
                    x /= 36;
                }
                Value::str(&s)
            }
            FieldGen::RandomBool => Value::Bool(r & 1 == 1),
        };
        row.push(v);
    }
    Row::new(row)
}
