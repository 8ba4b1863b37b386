//! SQL types and values: the [`Value`] of one field, the compact [`Row`]
//! the pipeline carries (fields by position; the schema is fixed when the
//! statement is planned, so a row holds no names), and grouping keys.
//!
//! Fixed-width values (booleans, integers, doubles, timestamps, intervals)
//! live inline in the enum; text is shared (`Arc<str>`), so copying a
//! field never copies its characters.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The type of a column or expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// `BOOLEAN`.
    Boolean,
    /// `INT` (held as 64 bits; the name is kept for `DESCRIBE`).
    Int,
    /// `BIGINT`.
    BigInt,
    /// `DOUBLE` (also `FLOAT`, `REAL`).
    Double,
    /// `VARCHAR` / `STRING` / `TEXT`.
    Varchar,
    /// `TIMESTAMP(3)`: milliseconds since the epoch, UTC.
    Timestamp,
    /// `INTERVAL`: milliseconds.
    Interval,
    /// The type of a bare `NULL`: fits any other.
    Null,
}

impl DataType {
    /// Whether it is `INT`, `BIGINT` or `DOUBLE`.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Int | DataType::BigInt | DataType::Double)
    }

    /// Whether it is `INT` or `BIGINT`.
    pub fn is_integer(self) -> bool {
        matches!(self, DataType::Int | DataType::BigInt)
    }

    /// Whether a value of type `self` may be stored in a column of type
    /// `target` without a `CAST`.
    pub fn assignable_to(self, target: DataType) -> bool {
        self == target || self == DataType::Null || (self.is_integer() && target.is_numeric())
    }

    /// Whether two values of these types can be compared.
    pub fn comparable(self, other: DataType) -> bool {
        self == other
            || self == DataType::Null
            || other == DataType::Null
            || (self.is_numeric() && other.is_numeric())
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::Boolean => "BOOLEAN",
            DataType::Int => "INT",
            DataType::BigInt => "BIGINT",
            DataType::Double => "DOUBLE",
            DataType::Varchar => "VARCHAR",
            DataType::Timestamp => "TIMESTAMP(3)",
            DataType::Interval => "INTERVAL",
            DataType::Null => "NULL",
        })
    }
}

/// One field's value. `Null` is SQL's NULL (of any type).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    #[default]
    Null,
    /// A `BOOLEAN`.
    Bool(bool),
    /// An `INT` or `BIGINT`.
    Int(i64),
    /// A `DOUBLE`.
    Double(f64),
    /// A `VARCHAR`.
    Str(Arc<str>),
    /// A `TIMESTAMP(3)`: ms since the epoch.
    Timestamp(i64),
    /// An `INTERVAL`: ms.
    Interval(i64),
}

impl Value {
    /// Whether it is NULL.
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number, if it is one.
    #[inline]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// An integer, timestamp or interval as its `i64`.
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::Timestamp(i) | Value::Interval(i) => Some(*i),
            _ => None,
        }
    }

    /// A boolean, or `None` for NULL (and anything else).
    #[inline]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The text of a `VARCHAR`.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// SQL comparison: `None` when either side is NULL or the two cannot
    /// be compared. Integers and doubles compare as numbers.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Timestamp(a), Value::Timestamp(b)) => Some(a.cmp(b)),
            (Value::Interval(a), Value::Interval(b)) => Some(a.cmp(b)),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => None,
            },
        }
    }

    /// A total order for sorting output and keeping MIN/MAX: NULL first,
    /// then by [`sql_cmp`](Self::sql_cmp), then by kind.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Less,
            (_, Value::Null) => Ordering::Greater,
            (a, b) => a
                .sql_cmp(b)
                .unwrap_or_else(|| a.kind_rank().cmp(&b.kind_rank())),
        }
    }

    fn kind_rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Double(_) => 2,
            Value::Str(_) => 3,
            Value::Timestamp(_) => 4,
            Value::Interval(_) => 5,
        }
    }

    /// A text value.
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// The value as JSON: timestamps as RFC 3339 text, intervals as ms.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::Timestamp(ms) => serde_json::Value::String(format_rfc3339(*ms)),
            Value::Interval(ms) => (*ms).into(),
        }
    }

    /// The JSON value `v` as a value of type `ty`; the error says what did
    /// not fit.
    pub fn from_json(v: &serde_json::Value, ty: DataType) -> Result<Value, String> {
        use serde_json::Value as J;
        Ok(match (v, ty) {
            (J::Null, _) => Value::Null,
            (J::Bool(b), DataType::Boolean) => Value::Bool(*b),
            (J::Number(n), DataType::Int | DataType::BigInt) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => return Err(format!("{n} is not an integer")),
            },
            (J::Number(n), DataType::Double) => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
            (J::String(s), DataType::Varchar) => Value::str(s),
            (J::Number(n), DataType::Varchar) => Value::str(&n.to_string()),
            (J::Bool(b), DataType::Varchar) => Value::str(if *b { "true" } else { "false" }),
            (J::Number(n), DataType::Timestamp) => match n.as_i64() {
                Some(ms) => Value::Timestamp(ms),
                None => return Err(format!("{n} is not a timestamp in epoch milliseconds")),
            },
            (J::String(s), DataType::Timestamp) => match parse_timestamp(s) {
                Some(ms) => Value::Timestamp(ms),
                None => {
                    return Err(format!(
                        "'{s}' is not a timestamp (write RFC 3339, 'YYYY-MM-DD HH:MM:SS[.fff]' or epoch milliseconds)"
                    ))
                }
            },
            (J::Number(n), DataType::Interval) => match n.as_i64() {
                Some(ms) => Value::Interval(ms),
                None => return Err(format!("{n} is not an interval in milliseconds")),
            },
            (other, ty) => return Err(format!("{other} is not a {ty}")),
        })
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Double(a), Value::Double(b)) => canonical_bits(*a) == canonical_bits(*b),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Timestamp(a), Value::Timestamp(b)) => a == b,
            (Value::Interval(a), Value::Interval(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

/// The bits of a double with -0.0 folded into 0.0 and every NaN into one,
/// so that equal values group together.
fn canonical_bits(d: f64) -> u64 {
    if d == 0.0 {
        0
    } else if d.is_nan() {
        f64::NAN.to_bits()
    } else {
        d.to_bits()
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(i) | Value::Timestamp(i) | Value::Interval(i) => i.hash(state),
            Value::Double(d) => canonical_bits(*d).hash(state),
            Value::Str(s) => s.hash(state),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d}"),
            Value::Str(s) => f.write_str(s),
            Value::Timestamp(ms) => f.write_str(&format_timestamp(*ms)),
            Value::Interval(ms) => write!(f, "INTERVAL '{}' SECOND", *ms as f64 / 1000.0),
        }
    }
}

/// A row: the fields of one record, by position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Row(pub Box<[Value]>);

impl Row {
    /// A row of these values.
    pub fn new(values: Vec<Value>) -> Row {
        Row(values.into_boxed_slice())
    }

    /// The fields.
    #[inline]
    pub fn values(&self) -> &[Value] {
        &self.0
    }
}

impl std::ops::Deref for Row {
    type Target = [Value];
    #[inline]
    fn deref(&self) -> &[Value] {
        &self.0
    }
}

/// The grouping key of an aggregation: no allocation for none or one key
/// column, the common cases.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupKey {
    /// No key columns: one group.
    Unit,
    /// One key column.
    One(Value),
    /// Several key columns.
    Many(Box<[Value]>),
}

impl GroupKey {
    /// The key made of the first `n` fields of `row`.
    #[inline]
    pub fn of(row: &[Value], n: usize) -> GroupKey {
        match n {
            0 => GroupKey::Unit,
            1 => GroupKey::One(row[0].clone()),
            _ => GroupKey::Many(row[..n].to_vec().into_boxed_slice()),
        }
    }

    /// Appends the key's values to `out`.
    pub fn extend_into(&self, out: &mut Vec<Value>) {
        match self {
            GroupKey::Unit => {}
            GroupKey::One(v) => out.push(v.clone()),
            GroupKey::Many(vs) => out.extend(vs.iter().cloned()),
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split_ms(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    (
        y,
        mo,
        d,
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    )
}

/// `2024-01-31 12:00:05.250`: how timestamps print in tables.
pub fn format_timestamp(ms: i64) -> String {
    let (y, mo, d, h, mi, s, f) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{f:03}")
}

/// `2024-01-31T12:00:05.250Z`: how timestamps are written as JSON.
pub fn format_rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s, f) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:03}Z")
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]` or RFC 3339 (a `T`
/// and an optional `Z` or `±HH:MM` offset) into ms since the epoch, UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |t: &str| -> Option<i64> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut dp = date.splitn(3, '-');
    let (y, mo, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, d) * 86_400_000;
    let Some(mut time) = rest else {
        return Some(ms);
    };
    let mut offset_ms = 0;
    if let Some(t) = time.strip_suffix(['Z', 'z']) {
        time = t;
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (t, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        offset_ms = sign * (num(oh)? * 3_600_000 + num(om)? * 60_000);
        time = t;
    }
    let mut tp = time.splitn(3, ':');
    let h = num(tp.next()?)?;
    let mi = num(tp.next()?)?;
    let (sec, frac) = match tp.next() {
        Some(sf) => match sf.split_once('.') {
            Some((s, f)) => {
                let digits: String = f.chars().take(3).collect();
                let scaled = num(&digits)? * 10i64.pow(3 - digits.len() as u32);
                (num(s)?, scaled)
            }
            None => (num(sf)?, 0),
        },
        None => (0, 0),
    };
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    ms += h * 3_600_000 + mi * 60_000 + sec * 1000 + frac;
    Some(ms - offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_timestamps_round_trip_then_text_and_ms_agree() {
        for ms in [0, 1_700_000_000_123, -86_400_001, 951_782_400_000] {
            assert_eq!(parse_timestamp(&format_rfc3339(ms)), Some(ms));
            assert_eq!(parse_timestamp(&format_timestamp(ms)), Some(ms));
        }
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("2024-13-01"), None);
        assert_eq!(parse_timestamp("x"), None);
    }

    #[test]
    fn when_doubles_are_zero_or_nan_then_they_group_together() {
        assert_eq!(Value::Double(0.0), Value::Double(-0.0));
        assert_eq!(Value::Double(f64::NAN), Value::Double(f64::NAN));
        assert_eq!(
            Value::Int(2).sql_cmp(&Value::Double(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(Value::Null.sql_cmp(&Value::Int(1)), None);
    }
}
