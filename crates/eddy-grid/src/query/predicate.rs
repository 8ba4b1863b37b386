//! The predicate tree, attribute paths, and how a predicate is evaluated on one entry.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use super::value::Scalar;
use crate::GridError;

/// A dot-separated path to an attribute: `amount`, `address.city`,
/// `items.0.price` (a number indexes an array), `__key` or `__key.id` (the
/// key), `this` (the whole value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    raw: String,
    segments: Vec<String>,
}

/// The name of the key in attribute paths.
pub const KEY_ATTRIBUTE: &str = "__key";
/// The name of the whole value in attribute paths.
pub const THIS_ATTRIBUTE: &str = "this";

impl AttrPath {
    /// Parses a path; fails on an empty path or an empty segment (`a..b`).
    pub fn parse(path: &str) -> Result<AttrPath, GridError> {
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(GridError::InvalidPath {
                path: path.to_owned(),
            });
        }
        Ok(AttrPath {
            raw: path.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The first segment: `__key`, `this`, an extractor name or a field.
    pub fn head(&self) -> &str {
        &self.segments[0]
    }

    /// The segments after the first.
    pub fn tail(&self) -> &[String] {
        &self.segments[1..]
    }

    /// All segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Walks `segments` into `root`; `None` where an attribute is missing.
    pub fn walk<'v>(root: &'v Value, segments: &[String]) -> Option<&'v Value> {
        let mut at = root;
        for s in segments {
            at = match at {
                Value::Object(m) => m.get(s)?,
                Value::Array(a) => a.get(s.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// What a predicate reads attributes from: one entry of a map.
pub trait Attributes {
    /// The attribute at `path`, or `None` if the entry has none there.
    fn attribute(&self, path: &AttrPath) -> Option<Cow<'_, Value>>;
}

/// A plain JSON key and value, with paths resolved as for any map entry
/// (no extractors).
impl Attributes for (&Value, &Value) {
    fn attribute(&self, path: &AttrPath) -> Option<Cow<'_, Value>> {
        let root = match path.head() {
            KEY_ATTRIBUTE => self.0,
            THIS_ATTRIBUTE => self.1,
            _ => return AttrPath::walk(self.1, path.segments()).map(Cow::Borrowed),
        };
        AttrPath::walk(root, path.tail()).map(Cow::Borrowed)
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=` (also written `<>`)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A compiled SQL `like` pattern: `%` matches any run of characters, `_`
/// exactly one, `\` escapes the next character. Matches the whole string,
/// case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    source: String,
    parts: Vec<LikePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LikePart {
    Char(char),
    One,
    Many,
}

impl LikePattern {
    /// Compiles a pattern; every string is a valid pattern (a trailing `\`
    /// stands for itself).
    pub fn new(pattern: &str) -> LikePattern {
        let mut parts = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            parts.push(match c {
                '%' => LikePart::Many,
                '_' => LikePart::One,
                '\\' => LikePart::Char(chars.next().unwrap_or('\\')),
                c => LikePart::Char(c),
            });
        }
        LikePattern {
            source: pattern.to_owned(),
            parts,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        // Greedy matching with one backtrack point for the last `%`: linear
        // for typical patterns, O(n*m) at worst, never exponential.
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.parts.get(p) {
                Some(LikePart::Many) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(LikePart::One) => {
                    p += 1;
                    t += 1;
                }
                Some(LikePart::Char(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.parts[p..].iter().all(|x| *x == LikePart::Many)
    }
}

/// A condition on map entries.
///
/// Build one with the constructors ([`Predicate::eq`], [`Predicate::and`],
/// ...) or parse the textual form with [`Predicate::parse`]. Comparisons
/// compare within one kind of JSON value (numbers with numbers, strings with
/// strings, ...): `x > 5` does not match `x = "7"`. A missing attribute
/// matches no comparison, `like` or `regex`.
#[derive(Debug, Clone)]
pub enum Predicate {
    /// Matches every entry.
    True,
    /// `path op value`.
    Compare {
        /// Attribute compared.
        path: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The literal compared with.
        value: Value,
    },
    /// `path between low and high`, both ends included.
    Between {
        /// Attribute compared.
        path: AttrPath,
        /// Lower bound, included.
        low: Value,
        /// Upper bound, included.
        high: Value,
    },
    /// `path in (v1, v2, ...)`.
    In {
        /// Attribute compared.
        path: AttrPath,
        /// The accepted values.
        values: Vec<Value>,
    },
    /// `path like 'pattern'` on string attributes.
    Like {
        /// Attribute compared.
        path: AttrPath,
        /// The pattern.
        pattern: LikePattern,
    },
    /// `path regex 'pattern'`: the whole string must match.
    Regex {
        /// Attribute compared.
        path: AttrPath,
        /// The compiled pattern, anchored at both ends.
        regex: regex::Regex,
    },
    /// All of the predicates.
    And(Vec<Predicate>),
    /// Any of the predicates.
    Or(Vec<Predicate>),
    /// The negation.
    Not(Box<Predicate>),
}

fn path(p: &str) -> Result<AttrPath, GridError> {
    AttrPath::parse(p)
}

impl Predicate {
    /// Parses the textual syntax, e.g. `amount > 100 and country = 'DE'`;
    /// see [`parse_predicate`](super::parse_predicate).
    pub fn parse(text: &str) -> Result<Predicate, GridError> {
        Ok(super::parse_predicate(text)?)
    }

    /// `path op value`.
    pub fn compare(
        p: &str,
        op: CompareOp,
        value: impl Into<Value>,
    ) -> Result<Predicate, GridError> {
        Ok(Predicate::Compare {
            path: path(p)?,
            op,
            value: value.into(),
        })
    }

    /// `path = value`.
    pub fn eq(p: &str, value: impl Into<Value>) -> Result<Predicate, GridError> {
        Self::compare(p, CompareOp::Eq, value)
    }

    /// `path between low and high`.
    pub fn between(
        p: &str,
        low: impl Into<Value>,
        high: impl Into<Value>,
    ) -> Result<Predicate, GridError> {
        Ok(Predicate::Between {
            path: path(p)?,
            low: low.into(),
            high: high.into(),
        })
    }

    /// `path in (values...)`.
    pub fn is_in(p: &str, values: Vec<Value>) -> Result<Predicate, GridError> {
        Ok(Predicate::In {
            path: path(p)?,
            values,
        })
    }

    /// `path like pattern`.
    pub fn like(p: &str, pattern: &str) -> Result<Predicate, GridError> {
        Ok(Predicate::Like {
            path: path(p)?,
            pattern: LikePattern::new(pattern),
        })
    }

    /// `self and other`.
    pub fn and(self, other: Predicate) -> Predicate {
        match self {
            Predicate::And(mut v) => {
                v.push(other);
                Predicate::And(v)
            }
            p => Predicate::And(vec![p, other]),
        }
    }

    /// `self or other`.
    pub fn or(self, other: Predicate) -> Predicate {
        match self {
            Predicate::Or(mut v) => {
                v.push(other);
                Predicate::Or(v)
            }
            p => Predicate::Or(vec![p, other]),
        }
    }

    /// `not self`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Predicate {
        Predicate::Not(Box::new(self))
    }

    /// Whether the entry whose attributes `attrs` gives matches.
    pub fn matches(&self, attrs: &dyn Attributes) -> bool {
        match self {
            Predicate::True => true,
            Predicate::Compare { path, op, value } => match attrs.attribute(path) {
                Some(a) => compare(&a, *op, value),
                None => false,
            },
            Predicate::Between { path, low, high } => match attrs.attribute(path) {
                Some(a) => compare(&a, CompareOp::Ge, low) && compare(&a, CompareOp::Le, high),
                None => false,
            },
            Predicate::In { path, values } => match attrs.attribute(path) {
                Some(a) => values.iter().any(|v| compare(&a, CompareOp::Eq, v)),
                None => false,
            },
            Predicate::Like { path, pattern } => match attrs.attribute(path).as_deref() {
                Some(Value::String(s)) => pattern.matches(s),
                _ => false,
            },
            Predicate::Regex { path, regex } => match attrs.attribute(path).as_deref() {
                Some(Value::String(s)) => regex.is_match(s),
                _ => false,
            },
            Predicate::And(ps) => ps.iter().all(|p| p.matches(attrs)),
            Predicate::Or(ps) => ps.iter().any(|p| p.matches(attrs)),
            Predicate::Not(p) => !p.matches(attrs),
        }
    }

    /// Every attribute path the predicate reads.
    pub fn paths(&self) -> Vec<&AttrPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a AttrPath>) {
        match self {
            Predicate::True => {}
            Predicate::Compare { path, .. }
            | Predicate::Between { path, .. }
            | Predicate::In { path, .. }
            | Predicate::Like { path, .. }
            | Predicate::Regex { path, .. } => out.push(path),
            Predicate::And(ps) | Predicate::Or(ps) => ps.iter().for_each(|p| p.collect_paths(out)),
            Predicate::Not(p) => p.collect_paths(out),
        }
    }
}

/// `attr op literal` with the semantics in [`Predicate`]'s docs.
pub(crate) fn compare(attr: &Value, op: CompareOp, literal: &Value) -> bool {
    let ord = match (Scalar::from_json(attr), Scalar::from_json(literal)) {
        (Some(a), Some(l)) if a.same_kind(&l) => Some(a.cmp(&l)),
        (Some(_), Some(_)) => None,
        // Arrays and objects are only ever equal or not.
        _ => (attr == literal).then_some(Ordering::Equal),
    };
    match (op, ord) {
        (CompareOp::Eq, o) => o == Some(Ordering::Equal),
        (CompareOp::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

fn literal(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
        other => write!(f, "{other}"),
    }
}

/// The textual syntax, which [`Predicate::parse`] reads back.
impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::True => f.write_str("true"),
            Predicate::Compare { path, op, value } => {
                write!(f, "{path} {} ", op.symbol())?;
                literal(f, value)
            }
            Predicate::Between { path, low, high } => {
                write!(f, "{path} between ")?;
                literal(f, low)?;
                f.write_str(" and ")?;
                literal(f, high)
            }
            Predicate::In { path, values } => {
                write!(f, "{path} in (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    literal(f, v)?;
                }
                f.write_str(")")
            }
            Predicate::Like { path, pattern } => {
                write!(f, "{path} like ")?;
                literal(f, &Value::String(pattern.as_str().to_owned()))
            }
            Predicate::Regex { path, regex } => {
                let anchored = regex.as_str();
                let inner = &anchored[4..anchored.len() - 2];
                write!(f, "{path} regex ")?;
                literal(f, &Value::String(inner.to_owned()))
            }
            Predicate::And(ps) | Predicate::Or(ps) => {
                let sep = if matches!(self, Predicate::And(_)) {
                    " and "
                } else {
                    " or "
                };
                for (i, p) in ps.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "({p})")?;
                }
                Ok(())
            }
            Predicate::Not(p) => write!(f, "not ({p})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn when_like_has_wildcards_then_whole_string_is_matched() {
        let p = LikePattern::new("A%b_");
        assert!(!p.matches("Abcd"));
        assert!(p.matches("Axxbz"));
        assert!(p.matches("Abz"));
        assert!(!p.matches("abz"));
        assert!(LikePattern::new("%").matches(""));
        assert!(LikePattern::new("50\\%").matches("50%"));
        assert!(!LikePattern::new("50\\%").matches("500"));
        assert!(LikePattern::new("%a%a%").matches("banana"));
    }

    #[test]
    fn when_attribute_is_missing_then_comparison_does_not_match_but_not_does() {
        let key = json!(1);
        let value = json!({"a": 1});
        let attrs = (&key, &value);
        let p = Predicate::eq("b", 1).unwrap();
        assert!(!p.matches(&attrs));
        assert!(!Predicate::compare("b", CompareOp::Ne, 1)
            .unwrap()
            .matches(&attrs));
        assert!(p.not().matches(&attrs));
        assert!(Predicate::eq("__key", 1).unwrap().matches(&attrs));
    }

    #[test]
    fn when_kinds_differ_then_ordering_comparisons_fail() {
        assert!(!compare(&json!("7"), CompareOp::Gt, &json!(5)));
        assert!(compare(&json!(7), CompareOp::Gt, &json!(5.5)));
        assert!(compare(&json!("7"), CompareOp::Ne, &json!(7)));
    }
}
