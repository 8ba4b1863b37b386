//! Queries over map entries: predicates, their textual syntax, indexes and aggregations.
//!
//! Predicates look at attributes of an entry by path: `a.b.c` walks the JSON
//! form of the value (or whatever a user attribute extractor returns for
//! `a`), `__key.x` walks the key, `this` is the whole value. A value without
//! the attribute does not match any comparison (as SQL's NULL), but
//! `not (...)` of such a comparison does.

mod aggregate;
mod index;
mod parser;
mod predicate;
mod value;

pub(crate) use aggregate::Accumulator;
pub use aggregate::Aggregation;
pub use index::IndexType;
pub(crate) use index::{plan, PartIndex};
pub use parser::{parse_predicate, ParseError};
pub use predicate::{
    AttrPath, Attributes, CompareOp, LikePattern, Predicate, KEY_ATTRIBUTE, THIS_ATTRIBUTE,
};
pub use value::json_total_cmp;
pub(crate) use value::Scalar;
