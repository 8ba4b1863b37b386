//! Compiled expressions: a tree bound once at plan time, with columns
//! resolved to positions, evaluated against each row without any name
//! lookup. NULL follows SQL's three-valued logic: a comparison with NULL
//! is NULL, `AND` is false if either side is false, `OR` is true if either
//! side is true, and `WHERE` keeps a row only when its condition is true.
//!
//! Errors of data at run time do not fail the job: an integer overflow, a
//! division by zero or a `CAST` of text that does not parse gives NULL.

use crate::types::{DataType, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%` and `MOD`
    Mod,
}

/// A scalar function, resolved by name at plan time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `LOWER(s)`
    Lower,
    /// `UPPER(s)`
    Upper,
    /// `CHAR_LENGTH(s)`
    CharLength,
    /// `CONCAT(a, b, …)` and `||` (NULL if any argument is NULL)
    Concat,
    /// `SUBSTRING(s, from [, for])`, from 1
    Substring,
    /// `TRIM([BOTH|LEADING|TRAILING] [chars FROM] s)`: `(s, chars)`
    TrimBoth,
    /// `TRIM(LEADING …)`
    TrimLeading,
    /// `TRIM(TRAILING …)`
    TrimTrailing,
    /// `ABS(x)`
    Abs,
    /// `ROUND(x [, digits])`
    Round,
    /// `FLOOR(x)`
    Floor,
    /// `CEIL(x)`
    Ceil,
    /// `TO_TIMESTAMP_LTZ(ms, 3)`: epoch ms to a timestamp
    ToTimestampMs,
    /// `EXTRACT(unit FROM ts)`
    Extract(TimeUnit),
}

/// A field of a timestamp for `EXTRACT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// The year.
    Year,
    /// The month, 1 to 12.
    Month,
    /// The day of the month.
    Day,
    /// The hour, 0 to 23.
    Hour,
    /// The minute.
    Minute,
    /// The second.
    Second,
    /// The millisecond within the second.
    Millisecond,
    /// Seconds since the epoch.
    Epoch,
}

/// A compiled LIKE pattern: literal runs separated by `%`, each run with
/// `_` wildcards. The first run is anchored at the start of the text, the
/// last at its end, and each run between takes its leftmost match, which
/// is optimal for `%`-separated runs: no backtracking.
#[derive(Debug, Clone, PartialEq)]
pub struct LikePattern {
    /// The runs between `%`s; `None` stands for `_`.
    parts: Vec<Vec<Option<char>>>,
}

impl LikePattern {
    /// Compiles `pattern`, with `escape` making the next `%`, `_` or
    /// escape character literal.
    pub fn compile(pattern: &str, escape: Option<char>) -> LikePattern {
        let mut parts = vec![Vec::new()];
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let current = parts.last_mut().expect("one part at least");
            if Some(c) == escape {
                if let Some(n) = chars.next() {
                    current.push(Some(n));
                }
            } else if c == '%' {
                parts.push(Vec::new());
            } else if c == '_' {
                current.push(None);
            } else {
                current.push(Some(c));
            }
        }
        LikePattern { parts }
    }

    fn part_matches_at(part: &[Option<char>], text: &[char], at: usize) -> bool {
        at + part.len() <= text.len()
            && part
                .iter()
                .zip(&text[at..])
                .all(|(p, c)| p.is_none_or(|p| p == *c))
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let n = self.parts.len();
        let first = &self.parts[0];
        if n == 1 {
            return first.len() == text.len() && Self::part_matches_at(first, &text, 0);
        }
        let last = &self.parts[n - 1];
        if first.len() + last.len() > text.len()
            || !Self::part_matches_at(first, &text, 0)
            || !Self::part_matches_at(last, &text, text.len() - last.len())
        {
            return false;
        }
        let end = text.len() - last.len();
        let mut pos = first.len();
        for part in &self.parts[1..n - 1] {
            loop {
                if pos + part.len() > end {
                    return false;
                }
                if Self::part_matches_at(part, &text, pos) {
                    pos += part.len();
                    break;
                }
                pos += 1;
            }
        }
        true
    }
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// The field at this position of the input row.
    Column(usize),
    /// A constant.
    Literal(Value),
    /// `NOT e`
    Not(Box<Expr>),
    /// `a AND b AND …`
    And(Vec<Expr>),
    /// `a OR b OR …`
    Or(Vec<Expr>),
    /// A comparison.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// Arithmetic; the result type picks integer, double or time arithmetic.
    Arith(ArithOp, DataType, Box<Expr>, Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `e IS [NOT] NULL` (`true` for NOT)
    IsNull(Box<Expr>, bool),
    /// `e [NOT] IN (…)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `e [NOT] BETWEEN lo AND hi`
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `e [NOT] LIKE 'constant pattern'`
    Like(Box<Expr>, Arc<LikePattern>, bool),
    /// `e [NOT] LIKE pattern` with a pattern computed per row
    LikeDynamic(Box<Expr>, Box<Expr>, Option<char>, bool),
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`
    Case(Option<Box<Expr>>, Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// `CAST(e AS type)`
    Cast(Box<Expr>, DataType),
    /// `COALESCE(a, b, …)`
    Coalesce(Vec<Expr>),
    /// A scalar function.
    Func(Func, Vec<Expr>),
}

impl Expr {
    /// The value of the expression for `row`.
    pub fn eval(&self, row: &[Value]) -> Value {
        match self {
            Expr::Column(i) => row[*i].clone(),
            Expr::Literal(v) => v.clone(),
            Expr::Not(e) => match e.eval(row) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Expr::And(es) => {
                let mut null = false;
                for e in es {
                    match e.eval(row) {
                        Value::Bool(false) => return Value::Bool(false),
                        Value::Bool(true) => {}
                        _ => null = true,
                    }
                }
                if null {
                    Value::Null
                } else {
                    Value::Bool(true)
                }
            }
            Expr::Or(es) => {
                let mut null = false;
                for e in es {
                    match e.eval(row) {
                        Value::Bool(true) => return Value::Bool(true),
                        Value::Bool(false) => {}
                        _ => null = true,
                    }
                }
                if null {
                    Value::Null
                } else {
                    Value::Bool(false)
                }
            }
            Expr::Cmp(op, a, b) => compare(*op, &a.eval(row), &b.eval(row)),
            Expr::Arith(op, ty, a, b) => arith(*op, *ty, &a.eval(row), &b.eval(row)),
            Expr::Neg(e) => match e.eval(row) {
                Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                Value::Double(d) => Value::Double(-d),
                Value::Interval(i) => i.checked_neg().map_or(Value::Null, Value::Interval),
                _ => Value::Null,
            },
            Expr::IsNull(e, negated) => Value::Bool(e.eval(row).is_null() != *negated),
            Expr::InList(e, list, negated) => {
                let v = e.eval(row);
                if v.is_null() {
                    return Value::Null;
                }
                let mut null = false;
                for item in list {
                    let x = item.eval(row);
                    match v.sql_cmp(&x) {
                        Some(Ordering::Equal) => return Value::Bool(!negated),
                        None if x.is_null() => null = true,
                        _ => {}
                    }
                }
                if null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
            Expr::Between(e, lo, hi, negated) => {
                let v = e.eval(row);
                let ge = compare(CmpOp::GtEq, &v, &lo.eval(row));
                let le = compare(CmpOp::LtEq, &v, &hi.eval(row));
                let both = and2(ge, le);
                if *negated {
                    not(both)
                } else {
                    both
                }
            }
            Expr::Like(e, pattern, negated) => match e.eval(row) {
                Value::Str(s) => Value::Bool(pattern.matches(&s) != *negated),
                _ => Value::Null,
            },
            Expr::LikeDynamic(e, p, escape, negated) => match (e.eval(row), p.eval(row)) {
                (Value::Str(s), Value::Str(p)) => {
                    Value::Bool(LikePattern::compile(&p, *escape).matches(&s) != *negated)
                }
                _ => Value::Null,
            },
            Expr::Case(operand, whens, otherwise) => {
                let subject = operand.as_ref().map(|o| o.eval(row));
                for (when, then) in whens {
                    let hit = match &subject {
                        Some(s) => s.sql_cmp(&when.eval(row)) == Some(Ordering::Equal),
                        None => when.eval(row).as_bool() == Some(true),
                    };
                    if hit {
                        return then.eval(row);
                    }
                }
                otherwise.as_ref().map_or(Value::Null, |e| e.eval(row))
            }
            Expr::Cast(e, ty) => cast(e.eval(row), *ty),
            Expr::Coalesce(es) => es
                .iter()
                .map(|e| e.eval(row))
                .find(|v| !v.is_null())
                .unwrap_or(Value::Null),
            Expr::Func(f, args) => call(*f, args, row),
        }
    }

    /// Whether the condition holds for `row` (NULL counts as false).
    #[inline]
    pub fn test(&self, row: &[Value]) -> bool {
        matches!(self.eval(row), Value::Bool(true))
    }

    /// The constant this expression always evaluates to, if it reads no
    /// column.
    pub fn constant(&self) -> Option<Value> {
        if self.reads_columns() {
            None
        } else {
            Some(self.eval(&[]))
        }
    }

    fn reads_columns(&self) -> bool {
        match self {
            Expr::Column(_) => true,
            Expr::Literal(_) => false,
            Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) | Expr::Cast(e, _) => {
                e.reads_columns()
            }
            Expr::Like(e, _, _) => e.reads_columns(),
            Expr::And(es) | Expr::Or(es) | Expr::Coalesce(es) | Expr::Func(_, es) => {
                es.iter().any(Expr::reads_columns)
            }
            Expr::Cmp(_, a, b) | Expr::Arith(_, _, a, b) | Expr::LikeDynamic(a, b, _, _) => {
                a.reads_columns() || b.reads_columns()
            }
            Expr::InList(e, l, _) => e.reads_columns() || l.iter().any(Expr::reads_columns),
            Expr::Between(a, b, c, _) => {
                a.reads_columns() || b.reads_columns() || c.reads_columns()
            }
            Expr::Case(o, w, e) => {
                o.as_ref().is_some_and(|o| o.reads_columns())
                    || w.iter()
                        .any(|(a, b)| a.reads_columns() || b.reads_columns())
                    || e.as_ref().is_some_and(|e| e.reads_columns())
            }
        }
    }
}

fn not(v: Value) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        _ => Value::Null,
    }
}

fn and2(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
        (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
        _ => Value::Null,
    }
}

/// A comparison under SQL rules: NULL when either side is NULL.
pub fn compare(op: CmpOp, a: &Value, b: &Value) -> Value {
    let Some(ord) = a.sql_cmp(b) else {
        return Value::Null;
    };
    Value::Bool(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::NotEq => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::LtEq => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::GtEq => ord != Ordering::Less,
    })
}

/// Arithmetic whose result has type `ty`; NULL for NULL inputs, overflow
/// and division by zero.
pub fn arith(op: ArithOp, ty: DataType, a: &Value, b: &Value) -> Value {
    if a.is_null() || b.is_null() {
        return Value::Null;
    }
    match ty {
        DataType::Int | DataType::BigInt => {
            let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) else {
                return Value::Null;
            };
            let r = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div => x.checked_div(y),
                ArithOp::Mod => x.checked_rem(y),
            };
            r.map_or(Value::Null, Value::Int)
        }
        DataType::Double => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Value::Null;
            };
            match op {
                ArithOp::Add => Value::Double(x + y),
                ArithOp::Sub => Value::Double(x - y),
                ArithOp::Mul => Value::Double(x * y),
                ArithOp::Div if y == 0.0 => Value::Null,
                ArithOp::Div => Value::Double(x / y),
                ArithOp::Mod if y == 0.0 => Value::Null,
                ArithOp::Mod => Value::Double(x % y),
            }
        }
        DataType::Timestamp | DataType::Interval => {
            let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) else {
                return Value::Null;
            };
            let r = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div => x.checked_div(y),
                ArithOp::Mod => x.checked_rem(y),
            };
            match (r, ty) {
                (None, _) => Value::Null,
                (Some(v), DataType::Timestamp) => Value::Timestamp(v),
                (Some(v), _) => Value::Interval(v),
            }
        }
        _ => Value::Null,
    }
}

/// `CAST(v AS ty)`; NULL when the value does not convert.
pub fn cast(v: Value, ty: DataType) -> Value {
    match (v, ty) {
        (Value::Null, _) => Value::Null,
        (v @ Value::Bool(_), DataType::Boolean) => v,
        (Value::Int(i), DataType::Int | DataType::BigInt) => Value::Int(i),
        (Value::Int(i), DataType::Double) => Value::Double(i as f64),
        (Value::Int(i), DataType::Timestamp) => Value::Timestamp(i),
        (Value::Int(i), DataType::Interval) => Value::Interval(i),
        (Value::Int(i), DataType::Boolean) => Value::Bool(i != 0),
        (Value::Double(d), DataType::Double) => Value::Double(d),
        (Value::Double(d), DataType::Int | DataType::BigInt) => {
            if d.is_finite() && d.abs() < 9.2e18 {
                Value::Int(d.trunc() as i64)
            } else {
                Value::Null
            }
        }
        (Value::Timestamp(t), DataType::Timestamp) => Value::Timestamp(t),
        (Value::Timestamp(t), DataType::Int | DataType::BigInt) => Value::Int(t),
        (Value::Interval(t), DataType::Interval) => Value::Interval(t),
        (Value::Interval(t), DataType::Int | DataType::BigInt) => Value::Int(t),
        (Value::Str(s), DataType::Varchar) => Value::Str(s),
        (v, DataType::Varchar) => Value::str(&v.to_string()),
        (Value::Str(s), DataType::Int | DataType::BigInt) => {
            s.trim().parse().map_or(Value::Null, Value::Int)
        }
        (Value::Str(s), DataType::Double) => s.trim().parse().map_or(Value::Null, Value::Double),
        (Value::Str(s), DataType::Boolean) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => Value::Bool(true),
            "false" | "f" | "0" | "no" => Value::Bool(false),
            _ => Value::Null,
        },
        (Value::Str(s), DataType::Timestamp) => {
            crate::types::parse_timestamp(&s).map_or(Value::Null, Value::Timestamp)
        }
        _ => Value::Null,
    }
}

fn call(f: Func, args: &[Expr], row: &[Value]) -> Value {
    let arg = |i: usize| args.get(i).map_or(Value::Null, |a| a.eval(row));
    match f {
        Func::Lower => match arg(0) {
            Value::Str(s) => Value::str(&s.to_lowercase()),
            _ => Value::Null,
        },
        Func::Upper => match arg(0) {
            Value::Str(s) => Value::str(&s.to_uppercase()),
            _ => Value::Null,
        },
        Func::CharLength => match arg(0) {
            Value::Str(s) => Value::Int(s.chars().count() as i64),
            _ => Value::Null,
        },
        Func::Concat => {
            let mut out = String::new();
            for a in args {
                match a.eval(row) {
                    Value::Null => return Value::Null,
                    Value::Str(s) => out.push_str(&s),
                    v => out.push_str(&v.to_string()),
                }
            }
            Value::str(&out)
        }
        Func::Substring => {
            let (Value::Str(s), Some(from)) = (arg(0), arg(1).as_i64()) else {
                return Value::Null;
            };
            let len = if args.len() > 2 {
                match arg(2).as_i64() {
                    Some(l) if l >= 0 => Some(l),
                    _ => return Value::Null,
                }
            } else {
                None
            };
            // SQL positions count from 1; a start before 1 eats into the length.
            let start = from.max(1);
            let take = match len {
                Some(l) => (from + l - start).max(0) as usize,
                None => usize::MAX,
            };
            let out: String = s.chars().skip((start - 1) as usize).take(take).collect();
            Value::str(&out)
        }
        Func::TrimBoth | Func::TrimLeading | Func::TrimTrailing => {
            let Value::Str(s) = arg(0) else {
                return Value::Null;
            };
            let chars: Vec<char> = if args.len() > 1 {
                match arg(1) {
                    Value::Str(c) => c.chars().collect(),
                    _ => return Value::Null,
                }
            } else {
                vec![' ']
            };
            let t: &str = match f {
                Func::TrimLeading => s.trim_start_matches(&chars[..]),
                Func::TrimTrailing => s.trim_end_matches(&chars[..]),
                _ => s.trim_matches(&chars[..]),
            };
            Value::str(t)
        }
        Func::Abs => match arg(0) {
            Value::Int(i) => i.checked_abs().map_or(Value::Null, Value::Int),
            Value::Double(d) => Value::Double(d.abs()),
            _ => Value::Null,
        },
        Func::Round => {
            let digits = if args.len() > 1 {
                arg(1).as_i64()
            } else {
                Some(0)
            };
            let Some(digits) = digits else {
                return Value::Null;
            };
            match arg(0) {
                Value::Int(i) if digits >= 0 => Value::Int(i),
                Value::Int(i) => {
                    let p = 10i64.checked_pow((-digits).min(18) as u32).unwrap_or(1);
                    let r = (i as f64 / p as f64).round() as i64;
                    r.checked_mul(p).map_or(Value::Null, Value::Int)
                }
                Value::Double(d) => {
                    let p = 10f64.powi(digits.clamp(-300, 300) as i32);
                    Value::Double((d * p).round() / p)
                }
                _ => Value::Null,
            }
        }
        Func::Floor => match arg(0) {
            Value::Int(i) => Value::Int(i),
            Value::Double(d) => Value::Double(d.floor()),
            _ => Value::Null,
        },
        Func::Ceil => match arg(0) {
            Value::Int(i) => Value::Int(i),
            Value::Double(d) => Value::Double(d.ceil()),
            _ => Value::Null,
        },
        Func::Extract(unit) => match arg(0) {
            Value::Timestamp(ms) => {
                let days = ms.div_euclid(86_400_000);
                let rem = ms.rem_euclid(86_400_000);
                let (y, mo, d) = crate::types::civil_from_days(days);
                Value::Int(match unit {
                    TimeUnit::Year => y,
                    TimeUnit::Month => mo,
                    TimeUnit::Day => d,
                    TimeUnit::Hour => rem / 3_600_000,
                    TimeUnit::Minute => rem / 60_000 % 60,
                    TimeUnit::Second => rem / 1000 % 60,
                    TimeUnit::Millisecond => rem % 1000,
                    TimeUnit::Epoch => ms.div_euclid(1000),
                })
            }
            _ => Value::Null,
        },
        Func::ToTimestampMs => match arg(0) {
            Value::Int(i) => Value::Timestamp(i),
            Value::Double(d) if d.is_finite() => Value::Timestamp(d as i64),
            _ => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(p: &str, t: &str) -> bool {
        LikePattern::compile(p, None).matches(t)
    }

    #[test]
    fn when_like_patterns_are_matched_then_sql_semantics_hold() {
        assert!(like("abc", "abc"));
        assert!(!like("abc", "abcd"));
        assert!(like("a%", "abcd"));
        assert!(like("%d", "abcd"));
        assert!(!like("%d", "abcde"));
        assert!(like("%b%d%", "abcde"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "ac"));
        assert!(like("%", ""));
        assert!(like("%%", "x"));
        assert!(like("a%a", "aa"));
        assert!(!like("a%a", "a"));
        assert!(like("%ab%ab", "xabyab"));
        assert!(!like("ab%ba", "aba"));
        assert!(LikePattern::compile("100\\%", Some('\\')).matches("100%"));
    }

    #[test]
    fn when_null_meets_logic_then_three_valued() {
        let t = Expr::Literal(Value::Bool(true));
        let f = Expr::Literal(Value::Bool(false));
        let n = Expr::Literal(Value::Null);
        assert_eq!(
            Expr::And(vec![n.clone(), f.clone()]).eval(&[]),
            Value::Bool(false)
        );
        assert_eq!(Expr::And(vec![n.clone(), t.clone()]).eval(&[]), Value::Null);
        assert_eq!(
            Expr::Or(vec![n.clone(), t.clone()]).eval(&[]),
            Value::Bool(true)
        );
        assert_eq!(Expr::Or(vec![n.clone(), f.clone()]).eval(&[]), Value::Null);
        assert_eq!(Expr::Not(Box::new(n.clone())).eval(&[]), Value::Null);
        let in_list = Expr::InList(
            Box::new(Expr::Literal(Value::Int(1))),
            vec![Expr::Literal(Value::Int(2)), n],
            false,
        );
        assert_eq!(in_list.eval(&[]), Value::Null);
    }

    #[test]
    fn when_integers_overflow_or_divide_by_zero_then_null() {
        let max = Value::Int(i64::MAX);
        assert_eq!(
            arith(ArithOp::Add, DataType::BigInt, &max, &Value::Int(1)),
            Value::Null
        );
        assert_eq!(
            arith(
                ArithOp::Div,
                DataType::BigInt,
                &Value::Int(1),
                &Value::Int(0)
            ),
            Value::Null
        );
        assert_eq!(
            arith(
                ArithOp::Div,
                DataType::BigInt,
                &Value::Int(7),
                &Value::Int(2)
            ),
            Value::Int(3)
        );
    }
}
