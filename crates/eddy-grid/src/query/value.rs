//! Comparison of JSON attribute values, shared by predicates, indexes and sorting.
//!
//! Scans and indexes must agree on what "equal" and "less" mean, or an
//! indexed query would return other entries than a full scan; both use
//! [`Scalar`], a canonical, totally ordered form of a JSON scalar.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use serde_json::Value;

/// A JSON scalar in canonical form: integral floats become integers, so
/// `1` and `1.0` are the same key, and the order is total.
///
/// Order across kinds: null < booleans < numbers < strings; comparisons in
/// predicates only ever compare within one kind.
#[derive(Debug, Clone)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The canonical scalar of a JSON value; `None` for arrays and objects.
    pub(crate) fn from_json(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::String(s) => Scalar::Str(s.clone()),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Scalar::Int(i as i128)
                } else if let Some(u) = n.as_u64() {
                    Scalar::Int(u as i128)
                } else {
                    Self::from_f64(n.as_f64().unwrap_or(0.0))
                }
            }
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    pub(crate) fn from_f64(f: f64) -> Scalar {
        // 1.7e38 is below i128::MAX, so integral floats under it convert exactly.
        if f.fract() == 0.0 && f.abs() < 1.7e38 {
            Scalar::Int(f as i128)
        } else {
            Scalar::Float(f)
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Scalar::Null => 0,
            Scalar::Bool(_) => 1,
            Scalar::Int(_) | Scalar::Float(_) => 2,
            Scalar::Str(_) => 3,
        }
    }

    /// Whether both are of one kind (null, boolean, number, string).
    pub(crate) fn same_kind(&self, other: &Scalar) -> bool {
        self.rank() == other.rank()
    }

    /// The lowest scalar of this one's kind, where a range scan of a sorted
    /// index starts.
    pub(crate) fn kind_min(&self) -> Scalar {
        match self {
            Scalar::Null => Scalar::Null,
            Scalar::Bool(_) => Scalar::Bool(false),
            Scalar::Int(_) | Scalar::Float(_) => Scalar::Float(f64::NEG_INFINITY),
            Scalar::Str(_) => Scalar::Str(String::new()),
        }
    }
}

fn cmp_int_float(i: i128, f: f64) -> Ordering {
    if f.fract() == 0.0 && f.abs() < 1.7e38 {
        i.cmp(&(f as i128))
    } else {
        // Non-integral or huge: any integer this close is exactly
        // representable, and any integer that is not is farther away.
        (i as f64).partial_cmp(&f).unwrap_or(Ordering::Equal)
    }
}

impl Ord for Scalar {
    fn cmp(&self, other: &Self) -> Ordering {
        use Scalar::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Int(a), Float(b)) => cmp_int_float(*a, *b),
            (Float(a), Int(b)) => cmp_int_float(*b, *a).reverse(),
            (Str(a), Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Scalar {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scalar {}

impl Hash for Scalar {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Canonical form makes equal scalars structurally equal, except a
        // Float never equals an Int (integral floats are stored as Int).
        match self {
            Scalar::Null => 0u8.hash(state),
            Scalar::Bool(b) => (1u8, b).hash(state),
            Scalar::Int(i) => (2u8, i).hash(state),
            Scalar::Float(f) => (3u8, f.to_bits()).hash(state),
            Scalar::Str(s) => (4u8, s).hash(state),
        }
    }
}

fn json_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A total order over JSON values, used for stable paging and for min, max
/// and distinct: null < booleans < numbers < strings < arrays < objects;
/// numbers by value, strings by bytes, arrays and objects element-wise
/// (objects by their sorted fields).
pub fn json_total_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = json_total_cmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((ka, va), (kb, vb)) in xs.iter().zip(&ys) {
                let o = ka.cmp(kb).then_with(|| json_total_cmp(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => match (Scalar::from_json(a), Scalar::from_json(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => json_rank(a).cmp(&json_rank(b)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn when_int_and_float_are_equal_then_scalars_are_equal() {
        let a = Scalar::from_json(&json!(1)).unwrap();
        let b = Scalar::from_json(&json!(1.0)).unwrap();
        assert_eq!(a, b);
        assert!(Scalar::from_json(&json!(1.5)).unwrap() > a);
        assert!(
            Scalar::from_json(&json!(u64::MAX)).unwrap() > Scalar::from_json(&json!(1e3)).unwrap()
        );
    }

    #[test]
    fn when_kinds_differ_then_order_is_by_kind() {
        assert_eq!(json_total_cmp(&json!(null), &json!(false)), Ordering::Less);
        assert_eq!(json_total_cmp(&json!("a"), &json!(5)), Ordering::Greater);
        assert_eq!(
            json_total_cmp(&json!([1, 2]), &json!([1, 3])),
            Ordering::Less
        );
    }
}
