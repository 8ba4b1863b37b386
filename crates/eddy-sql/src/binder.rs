//! The binder: resolves the names in `sqlparser` expressions against a
//! scope of columns, checks and infers types, and compiles each expression
//! into an [`Expr`] that reads columns by position. Errors name the
//! unknown table, column or function and suggest the nearest known one.
//!
//! In a grouped query, expressions of the `SELECT` list and `HAVING` are
//! bound over the aggregation's output (window bounds, keys, aggregate
//! results): a grouping expression becomes a reference to its key, an
//! aggregate call is registered and becomes a reference to its result,
//! and any other column is an error saying to group or aggregate it.

use crate::catalog::data_type;
use crate::error::{did_you_mean, Pos, SqlError};
use crate::expr::{ArithOp, CmpOp, Expr, Func, LikePattern, TimeUnit};
use crate::parser::span_pos;
use crate::types::{parse_timestamp, DataType, Value};
use sqlparser::ast::{
    BinaryOperator, CastKind, CeilFloorKind, DateTimeField, Expr as AstExpr, Function, FunctionArg,
    FunctionArgExpr, FunctionArguments, Spanned, TrimWhereField, UnaryOperator, Value as AstValue,
};
use std::sync::Arc;

/// Deepest expression the binder descends into (it recurses once per
/// level): a limit far above real queries and far below the stack's end.
pub const EXPR_DEPTH_MAX: usize = 200;

/// One column visible to expressions.
#[derive(Debug, Clone)]
pub struct ScopeColumn {
    /// The table (or alias) it belongs to.
    pub qualifier: Option<String>,
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: DataType,
}

/// The columns expressions may name, in row order.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The columns.
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    fn resolve(
        &self,
        qualifier: Option<&str>,
        name: &str,
        pos: Pos,
    ) -> Result<(usize, DataType), SqlError> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            let q_ok = match qualifier {
                None => true,
                Some(q) => c
                    .qualifier
                    .as_deref()
                    .is_some_and(|cq| cq.eq_ignore_ascii_case(q)),
            };
            if q_ok && c.name.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(SqlError::plan(
                        pos,
                        format!("column '{name}' is ambiguous: qualify it with its table"),
                    ));
                }
                found = Some((i, c.ty));
            }
        }
        found.ok_or_else(|| {
            if ["window_start", "window_end", "window_time"].iter().any(|w| w.eq_ignore_ascii_case(name)) {
                return SqlError::plan(
                    pos,
                    format!("{name} is an output of a window function: it can be used in GROUP BY, SELECT and HAVING of a query FROM TABLE(TUMBLE(…)), TABLE(HOP(…)) or TABLE(SESSION(…)), not before the window"),
                );
            }
            let known = self.columns.iter().map(|c| c.name.as_str());
            let full = match qualifier {
                Some(q) => format!("{q}.{name}"),
                None => name.to_string(),
            };
            SqlError::plan(pos, format!("unknown column '{full}'{}", did_you_mean(name, known)))
        })
    }
}

/// A bound expression and its type.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The compiled expression.
    pub expr: Expr,
    /// Its type.
    pub ty: DataType,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    /// `COUNT(*)`
    CountStar,
    /// `COUNT(x)`: non-NULL values
    Count,
    /// `COUNT(DISTINCT x)`
    CountDistinct,
    /// `SUM(x)`
    Sum,
    /// `AVG(x)` (a DOUBLE)
    Avg,
    /// `MIN(x)`
    Min,
    /// `MAX(x)`
    Max,
}

/// An aggregate call of a grouped query.
#[derive(Debug, Clone)]
pub struct AggCall {
    /// Which function.
    pub kind: AggKind,
    /// Its argument, over the input rows (`None` for `COUNT(*)`).
    pub arg: Option<Bound>,
    /// Its result type.
    pub ty: DataType,
    /// The call as written, for `EXPLAIN`.
    pub text: String,
}

/// What a grouped query's output holds: window bounds (if windowed), then
/// the grouping keys, then the aggregates.
#[derive(Debug)]
pub struct Grouping {
    /// Whether the first two output columns are `window_start` and
    /// `window_end`.
    pub windowed: bool,
    /// The grouping expressions other than the window bounds, as written.
    pub keys: Vec<(AstExpr, Bound)>,
    /// The aggregate calls found so far.
    pub aggs: Vec<AggCall>,
}

impl Grouping {
    fn key_offset(&self) -> usize {
        if self.windowed {
            2
        } else {
            0
        }
    }

    fn agg_offset(&self) -> usize {
        self.key_offset() + self.keys.len()
    }
}

/// What an expression is bound against.
enum Mode<'g> {
    /// Columns of the input; aggregates are refused with `clause` named.
    Plain { clause: &'static str },
    /// The output of an aggregation.
    Grouped(&'g mut Grouping),
}

/// Binds expressions against a scope.
pub struct Binder<'a, 'g> {
    scope: &'a Scope,
    mode: Mode<'g>,
    depth: usize,
    fallback: Pos,
}

const AGGREGATES: [&str; 5] = ["COUNT", "SUM", "AVG", "MIN", "MAX"];

const FUNCTIONS: [&str; 21] = [
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "LOWER",
    "UPPER",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "CONCAT",
    "SUBSTRING",
    "TRIM",
    "ABS",
    "ROUND",
    "FLOOR",
    "CEIL",
    "CEILING",
    "MOD",
    "COALESCE",
    "TO_TIMESTAMP_LTZ",
    "EXTRACT",
];

impl<'a, 'g> Binder<'a, 'g> {
    /// A binder of plain expressions over `scope`; `clause` names where
    /// they are ("WHERE") for the error an aggregate gets.
    pub fn plain(scope: &'a Scope, clause: &'static str, fallback: Pos) -> Self {
        Binder {
            scope,
            mode: Mode::Plain { clause },
            depth: 0,
            fallback,
        }
    }

    /// A binder over the output of `grouping`, whose keys and aggregate
    /// arguments read `input`.
    pub fn grouped(input: &'a Scope, grouping: &'g mut Grouping, fallback: Pos) -> Self {
        Binder {
            scope: input,
            mode: Mode::Grouped(grouping),
            depth: 0,
            fallback,
        }
    }

    fn pos(&self, e: &AstExpr) -> Pos {
        span_pos(e.span(), self.fallback)
    }

    /// Binds `e`.
    pub fn bind(&mut self, e: &AstExpr) -> Result<Bound, SqlError> {
        self.depth += 1;
        if self.depth > EXPR_DEPTH_MAX {
            return Err(SqlError::plan(
                self.pos(e),
                format!("the expression nests deeper than {EXPR_DEPTH_MAX} levels; simplify it"),
            ));
        }
        let r = self.bind_inner(e);
        self.depth -= 1;
        r
    }

    /// Binds `e` and requires a BOOLEAN.
    pub fn bind_condition(&mut self, e: &AstExpr, clause: &str) -> Result<Bound, SqlError> {
        let b = self.bind(e)?;
        if !matches!(b.ty, DataType::Boolean | DataType::Null) {
            return Err(SqlError::plan(
                self.pos(e),
                format!("{clause} needs a condition (BOOLEAN), but this is {}", b.ty),
            ));
        }
        Ok(b)
    }

    fn bind_inner(&mut self, e: &AstExpr) -> Result<Bound, SqlError> {
        let pos = self.pos(e);
        if let Mode::Grouped(g) = &self.mode {
            let offset = g.key_offset();
            if let Some(i) = g
                .keys
                .iter()
                .position(|(k, _)| strip_nested(k) == strip_nested(e))
            {
                return Ok(Bound {
                    expr: Expr::Column(offset + i),
                    ty: g.keys[i].1.ty,
                });
            }
            if g.windowed {
                if let Some(name) = simple_name(e) {
                    if name.eq_ignore_ascii_case("window_start") {
                        return Ok(Bound {
                            expr: Expr::Column(0),
                            ty: DataType::Timestamp,
                        });
                    }
                    if name.eq_ignore_ascii_case("window_end") {
                        return Ok(Bound {
                            expr: Expr::Column(1),
                            ty: DataType::Timestamp,
                        });
                    }
                }
            }
        }
        match e {
            AstExpr::Identifier(ident) => self.column(None, &ident.value, pos),
            AstExpr::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, name] => self.column(Some(&q.value), &name.value, pos),
                _ => Err(SqlError::unsupported(
                    pos,
                    format!("the name '{e}' (write column or table.column)"),
                )),
            },
            AstExpr::Value(v) => literal(&v.value, pos),
            AstExpr::TypedString(sqlparser::ast::TypedString {
                data_type: t,
                value,
                ..
            }) => {
                let ty = data_type(t, pos)?;
                let text = match &value.value {
                    AstValue::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                let v = crate::expr::cast(Value::str(&text), ty);
                if v.is_null() {
                    return Err(SqlError::plan(pos, format!("'{text}' is not a valid {ty}")));
                }
                Ok(Bound {
                    expr: Expr::Literal(v),
                    ty,
                })
            }
            AstExpr::Interval(_) => Ok(Bound {
                expr: Expr::Literal(Value::Interval(interval_ms(e, pos)?)),
                ty: DataType::Interval,
            }),
            AstExpr::Nested(inner) => self.bind(inner),
            AstExpr::UnaryOp { op, expr } => {
                let b = self.bind(expr)?;
                match op {
                    UnaryOperator::Not => {
                        self.expect_bool(&b, expr, "NOT")?;
                        Ok(Bound {
                            expr: Expr::Not(Box::new(b.expr)),
                            ty: DataType::Boolean,
                        })
                    }
                    UnaryOperator::Minus => {
                        if !(b.ty.is_numeric()
                            || matches!(b.ty, DataType::Interval | DataType::Null))
                        {
                            return Err(SqlError::plan(pos, format!("cannot negate a {}", b.ty)));
                        }
                        // Fold literals so that -9223372036854775808 stays an integer.
                        if let Expr::Literal(v) = &b.expr {
                            let folded = Expr::Neg(Box::new(Expr::Literal(v.clone()))).eval(&[]);
                            return Ok(Bound {
                                expr: Expr::Literal(folded),
                                ty: b.ty,
                            });
                        }
                        Ok(Bound {
                            expr: Expr::Neg(Box::new(b.expr)),
                            ty: b.ty,
                        })
                    }
                    UnaryOperator::Plus => {
                        if !(b.ty.is_numeric()
                            || matches!(b.ty, DataType::Interval | DataType::Null))
                        {
                            return Err(SqlError::plan(
                                pos,
                                format!("unary + needs a number, not {}", b.ty),
                            ));
                        }
                        Ok(b)
                    }
                    other => Err(SqlError::unsupported(pos, format!("the operator {other}"))),
                }
            }
            AstExpr::BinaryOp { left, op, right } => self.binary(left, op, right, pos),
            AstExpr::IsNull(inner) | AstExpr::IsNotNull(inner) => {
                let b = self.bind(inner)?;
                Ok(Bound {
                    expr: Expr::IsNull(Box::new(b.expr), matches!(e, AstExpr::IsNotNull(_))),
                    ty: DataType::Boolean,
                })
            }
            AstExpr::IsTrue(inner)
            | AstExpr::IsFalse(inner)
            | AstExpr::IsNotTrue(inner)
            | AstExpr::IsNotFalse(inner) => {
                let b = self.bind(inner)?;
                self.expect_bool(&b, inner, "IS TRUE / IS FALSE")?;
                let want = matches!(e, AstExpr::IsTrue(_) | AstExpr::IsNotTrue(_));
                let negated = matches!(e, AstExpr::IsNotTrue(_) | AstExpr::IsNotFalse(_));
                // x IS TRUE: x = TRUE, never NULL.
                let cmp = Expr::Coalesce(vec![
                    Expr::Cmp(
                        CmpOp::Eq,
                        Box::new(b.expr),
                        Box::new(Expr::Literal(Value::Bool(want))),
                    ),
                    Expr::Literal(Value::Bool(false)),
                ]);
                let expr = if negated {
                    Expr::Not(Box::new(cmp))
                } else {
                    cmp
                };
                Ok(Bound {
                    expr,
                    ty: DataType::Boolean,
                })
            }
            AstExpr::InList {
                expr,
                list,
                negated,
            } => {
                let b = self.bind(expr)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let ib = self.bind(item)?;
                    let ib = coerce_for_compare(&b, ib);
                    self.check_comparable(&b, &ib, self.pos(item))?;
                    items.push(ib.expr);
                }
                Ok(Bound {
                    expr: Expr::InList(Box::new(b.expr), items, *negated),
                    ty: DataType::Boolean,
                })
            }
            AstExpr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let b = self.bind(expr)?;
                let lo = coerce_for_compare(&b, self.bind(low)?);
                let hi = coerce_for_compare(&b, self.bind(high)?);
                self.check_comparable(&b, &lo, self.pos(low))?;
                self.check_comparable(&b, &hi, self.pos(high))?;
                Ok(Bound {
                    expr: Expr::Between(
                        Box::new(b.expr),
                        Box::new(lo.expr),
                        Box::new(hi.expr),
                        *negated,
                    ),
                    ty: DataType::Boolean,
                })
            }
            AstExpr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(SqlError::unsupported(pos, "LIKE ANY"));
                }
                let b = self.bind(expr)?;
                let p = self.bind(pattern)?;
                for (x, at) in [(&b, expr), (&p, pattern)] {
                    if !matches!(x.ty, DataType::Varchar | DataType::Null) {
                        return Err(SqlError::plan(
                            self.pos(at),
                            format!(
                                "LIKE compares text, but this is {}; CAST it AS VARCHAR",
                                x.ty
                            ),
                        ));
                    }
                }
                let escape = match escape_char {
                    None => None,
                    Some(AstValue::SingleQuotedString(s)) if s.chars().count() == 1 => {
                        s.chars().next()
                    }
                    Some(other) => {
                        return Err(SqlError::plan(
                            pos,
                            format!("ESCAPE takes one character in quotes, not {other}"),
                        ))
                    }
                };
                let expr = match &p.expr {
                    Expr::Literal(Value::Str(s)) => Expr::Like(
                        Box::new(b.expr),
                        Arc::new(LikePattern::compile(s, escape)),
                        *negated,
                    ),
                    Expr::Literal(Value::Null) => Expr::Literal(Value::Null),
                    _ => Expr::LikeDynamic(Box::new(b.expr), Box::new(p.expr), escape, *negated),
                };
                Ok(Bound {
                    expr,
                    ty: DataType::Boolean,
                })
            }
            AstExpr::ILike { .. } => Err(SqlError::unsupported_hint(
                pos,
                "ILIKE",
                "write LOWER(x) LIKE 'pattern'",
            )),
            AstExpr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let subject = match operand {
                    Some(o) => Some(self.bind(o)?),
                    None => None,
                };
                let mut ty = DataType::Null;
                let mut whens = Vec::with_capacity(conditions.len());
                for cw in conditions {
                    let cond = match &subject {
                        Some(s) => {
                            let w = coerce_for_compare(s, self.bind(&cw.condition)?);
                            self.check_comparable(s, &w, self.pos(&cw.condition))?;
                            w
                        }
                        None => self.bind_condition(&cw.condition, "CASE WHEN")?,
                    };
                    let then = self.bind(&cw.result)?;
                    ty = unify(ty, then.ty).ok_or_else(|| {
                        SqlError::plan(
                            self.pos(&cw.result),
                            format!("CASE branches differ in type: {ty} and {}", then.ty),
                        )
                    })?;
                    whens.push((cond.expr, then.expr));
                }
                let otherwise = match else_result {
                    Some(e2) => {
                        let b = self.bind(e2)?;
                        ty = unify(ty, b.ty).ok_or_else(|| {
                            SqlError::plan(
                                self.pos(e2),
                                format!("CASE branches differ in type: {ty} and {}", b.ty),
                            )
                        })?;
                        Some(Box::new(b.expr))
                    }
                    None => None,
                };
                Ok(Bound {
                    expr: Expr::Case(subject.map(|s| Box::new(s.expr)), whens, otherwise),
                    ty,
                })
            }
            AstExpr::Cast {
                kind,
                expr,
                data_type: t,
                format,
            } => {
                if format.is_some() {
                    return Err(SqlError::unsupported(pos, "CAST … FORMAT"));
                }
                if matches!(kind, CastKind::DoubleColon) {
                    // x::type is Postgres' spelling of the same cast.
                }
                let b = self.bind(expr)?;
                let ty = data_type(t, span_pos(e.span(), pos))?;
                Ok(Bound {
                    expr: Expr::Cast(Box::new(b.expr), ty),
                    ty,
                })
            }
            AstExpr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let s = self.bind(expr)?;
                self.expect_text(&s, expr, "SUBSTRING")?;
                let mut args = vec![s.expr];
                match substring_from {
                    Some(f) => {
                        let b = self.bind(f)?;
                        self.expect_integer(&b, f, "SUBSTRING's start")?;
                        args.push(b.expr);
                    }
                    None => args.push(Expr::Literal(Value::Int(1))),
                }
                if let Some(f) = substring_for {
                    let b = self.bind(f)?;
                    self.expect_integer(&b, f, "SUBSTRING's length")?;
                    args.push(b.expr);
                }
                Ok(Bound {
                    expr: Expr::Func(Func::Substring, args),
                    ty: DataType::Varchar,
                })
            }
            AstExpr::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_characters.is_some() {
                    return Err(SqlError::unsupported(pos, "TRIM with a list of characters"));
                }
                let s = self.bind(expr)?;
                self.expect_text(&s, expr, "TRIM")?;
                let mut args = vec![s.expr];
                if let Some(w) = trim_what {
                    let b = self.bind(w)?;
                    self.expect_text(&b, w, "TRIM's characters")?;
                    args.push(b.expr);
                }
                let f = match trim_where {
                    Some(TrimWhereField::Leading) => Func::TrimLeading,
                    Some(TrimWhereField::Trailing) => Func::TrimTrailing,
                    _ => Func::TrimBoth,
                };
                Ok(Bound {
                    expr: Expr::Func(f, args),
                    ty: DataType::Varchar,
                })
            }
            AstExpr::Ceil { expr, field } | AstExpr::Floor { expr, field } => {
                if !matches!(
                    field,
                    CeilFloorKind::DateTimeField(DateTimeField::NoDateTime)
                ) {
                    return Err(SqlError::unsupported(
                        pos,
                        "CEIL/FLOOR with a unit or scale",
                    ));
                }
                let b = self.bind(expr)?;
                self.expect_number(&b, expr, "CEIL/FLOOR")?;
                let f = if matches!(e, AstExpr::Ceil { .. }) {
                    Func::Ceil
                } else {
                    Func::Floor
                };
                Ok(Bound {
                    expr: Expr::Func(f, vec![b.expr]),
                    ty: b.ty,
                })
            }
            AstExpr::Extract { field, expr, .. } => {
                let unit = match field {
                    DateTimeField::Year => TimeUnit::Year,
                    DateTimeField::Month => TimeUnit::Month,
                    DateTimeField::Day => TimeUnit::Day,
                    DateTimeField::Hour => TimeUnit::Hour,
                    DateTimeField::Minute => TimeUnit::Minute,
                    DateTimeField::Second => TimeUnit::Second,
                    DateTimeField::Millisecond | DateTimeField::Milliseconds => {
                        TimeUnit::Millisecond
                    }
                    DateTimeField::Epoch => TimeUnit::Epoch,
                    other => return Err(SqlError::unsupported(pos, format!("EXTRACT({other} …)"))),
                };
                let b = self.bind(expr)?;
                if !matches!(b.ty, DataType::Timestamp | DataType::Null) {
                    return Err(SqlError::plan(
                        self.pos(expr),
                        format!("EXTRACT needs a TIMESTAMP, not {}", b.ty),
                    ));
                }
                Ok(Bound {
                    expr: Expr::Func(Func::Extract(unit), vec![b.expr]),
                    ty: DataType::BigInt,
                })
            }
            AstExpr::Function(f) => self.function(f, pos),
            AstExpr::Subquery(_) | AstExpr::InSubquery { .. } | AstExpr::Exists { .. } => {
                Err(SqlError::unsupported(pos, "a subquery"))
            }
            other => Err(SqlError::unsupported(
                pos,
                format!("the expression '{other}'"),
            )),
        }
    }

    fn column(&mut self, qualifier: Option<&str>, name: &str, pos: Pos) -> Result<Bound, SqlError> {
        match &self.mode {
            Mode::Plain { .. } => {
                let (i, ty) = self.scope.resolve(qualifier, name, pos)?;
                Ok(Bound {
                    expr: Expr::Column(i),
                    ty,
                })
            }
            Mode::Grouped(g) => {
                // Known in the input but neither grouped nor aggregated?
                self.scope.resolve(qualifier, name, pos)?;
                let hint = if g.windowed {
                    "GROUP BY window_start, window_end, …"
                } else {
                    "GROUP BY"
                };
                Err(SqlError::plan(
                    pos,
                    format!("column '{name}' is neither grouped nor aggregated: add it to {hint} or use it in an aggregate such as MAX({name})"),
                ))
            }
        }
    }

    fn expect_bool(&self, b: &Bound, at: &AstExpr, what: &str) -> Result<(), SqlError> {
        if matches!(b.ty, DataType::Boolean | DataType::Null) {
            Ok(())
        } else {
            Err(SqlError::plan(
                self.pos(at),
                format!("{what} needs a BOOLEAN, but this is {}", b.ty),
            ))
        }
    }

    fn expect_text(&self, b: &Bound, at: &AstExpr, what: &str) -> Result<(), SqlError> {
        if matches!(b.ty, DataType::Varchar | DataType::Null) {
            Ok(())
        } else {
            Err(SqlError::plan(
                self.pos(at),
                format!(
                    "{what} needs VARCHAR, but this is {}; CAST it AS VARCHAR",
                    b.ty
                ),
            ))
        }
    }

    fn expect_number(&self, b: &Bound, at: &AstExpr, what: &str) -> Result<(), SqlError> {
        if b.ty.is_numeric() || b.ty == DataType::Null {
            Ok(())
        } else {
            Err(SqlError::plan(
                self.pos(at),
                format!("{what} needs a number, but this is {}", b.ty),
            ))
        }
    }

    fn expect_integer(&self, b: &Bound, at: &AstExpr, what: &str) -> Result<(), SqlError> {
        if b.ty.is_integer() || b.ty == DataType::Null {
            Ok(())
        } else {
            Err(SqlError::plan(
                self.pos(at),
                format!("{what} must be an integer, but this is {}", b.ty),
            ))
        }
    }

    fn check_comparable(&self, a: &Bound, b: &Bound, pos: Pos) -> Result<(), SqlError> {
        if a.ty.comparable(b.ty) {
            Ok(())
        } else {
            Err(SqlError::plan(
                pos,
                format!(
                    "cannot compare {} with {}; CAST one side to the other's type",
                    a.ty, b.ty
                ),
            ))
        }
    }

    fn binary(
        &mut self,
        left: &AstExpr,
        op: &BinaryOperator,
        right: &AstExpr,
        pos: Pos,
    ) -> Result<Bound, SqlError> {
        use BinaryOperator as B;
        match op {
            B::And | B::Or => {
                let l = self.bind_condition(left, if *op == B::And { "AND" } else { "OR" })?;
                let r = self.bind_condition(right, if *op == B::And { "AND" } else { "OR" })?;
                let mut parts = Vec::new();
                for x in [l.expr, r.expr] {
                    match (op, x) {
                        (B::And, Expr::And(inner)) | (B::Or, Expr::Or(inner)) => {
                            parts.extend(inner)
                        }
                        (_, x) => parts.push(x),
                    }
                }
                let expr = if *op == B::And {
                    Expr::And(parts)
                } else {
                    Expr::Or(parts)
                };
                Ok(Bound {
                    expr,
                    ty: DataType::Boolean,
                })
            }
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                let l = self.bind(left)?;
                let r = coerce_for_compare(&l, self.bind(right)?);
                let l = coerce_for_compare(&r, l);
                self.check_comparable(&l, &r, pos)?;
                let cmp = match op {
                    B::Eq => CmpOp::Eq,
                    B::NotEq => CmpOp::NotEq,
                    B::Lt => CmpOp::Lt,
                    B::LtEq => CmpOp::LtEq,
                    B::Gt => CmpOp::Gt,
                    _ => CmpOp::GtEq,
                };
                Ok(Bound {
                    expr: Expr::Cmp(cmp, Box::new(l.expr), Box::new(r.expr)),
                    ty: DataType::Boolean,
                })
            }
            B::StringConcat => {
                let l = self.bind(left)?;
                let r = self.bind(right)?;
                Ok(Bound {
                    expr: Expr::Func(Func::Concat, vec![l.expr, r.expr]),
                    ty: DataType::Varchar,
                })
            }
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                let l = self.bind(left)?;
                let r = self.bind(right)?;
                let aop = match op {
                    B::Plus => ArithOp::Add,
                    B::Minus => ArithOp::Sub,
                    B::Multiply => ArithOp::Mul,
                    B::Divide => ArithOp::Div,
                    _ => ArithOp::Mod,
                };
                let ty = arith_type(aop, l.ty, r.ty).ok_or_else(|| {
                    SqlError::plan(pos, format!("cannot apply {op} to {} and {}", l.ty, r.ty))
                })?;
                // Interval + timestamp: keep the timestamp on the left.
                let (a, b) = if l.ty == DataType::Interval && r.ty == DataType::Timestamp {
                    (r.expr, l.expr)
                } else {
                    (l.expr, r.expr)
                };
                Ok(Bound {
                    expr: Expr::Arith(aop, ty, Box::new(a), Box::new(b)),
                    ty,
                })
            }
            other => Err(SqlError::unsupported(pos, format!("the operator {other}"))),
        }
    }

    fn function(&mut self, f: &Function, pos: Pos) -> Result<Bound, SqlError> {
        let name = f.name.to_string().to_ascii_uppercase();
        if f.over.is_some() {
            return Err(SqlError::unsupported(
                pos,
                format!("{name}(…) OVER (an OVER window)"),
            ));
        }
        if f.filter.is_some() {
            return Err(SqlError::unsupported(
                pos,
                format!("{name}(…) FILTER (WHERE …)"),
            ));
        }
        let (args, distinct) = match &f.args {
            FunctionArguments::None => (Vec::new(), false),
            FunctionArguments::Subquery(_) => return Err(SqlError::unsupported(pos, "a subquery")),
            FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(SqlError::unsupported(
                        pos,
                        format!("clauses inside {name}(…)"),
                    ));
                }
                let distinct = matches!(
                    list.duplicate_treatment,
                    Some(sqlparser::ast::DuplicateTreatment::Distinct)
                );
                let mut args = Vec::new();
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(Some(e)),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => args.push(None),
                        _ => {
                            return Err(SqlError::unsupported(
                                pos,
                                format!("this kind of argument of {name}"),
                            ))
                        }
                    }
                }
                (args, distinct)
            }
        };
        if AGGREGATES.contains(&name.as_str()) {
            return self.aggregate(&name, &args, distinct, f, pos);
        }
        if distinct {
            return Err(SqlError::plan(
                pos,
                format!("DISTINCT is for aggregates, not {name}"),
            ));
        }
        let mut bound = Vec::with_capacity(args.len());
        for a in &args {
            match a {
                Some(e) => bound.push((self.bind(e)?, *e)),
                None => {
                    return Err(SqlError::plan(
                        pos,
                        format!("{name}(*) is not a thing; * is for COUNT(*)"),
                    ))
                }
            }
        }
        let arity = |min: usize, max: usize| -> Result<(), SqlError> {
            if bound.len() < min || bound.len() > max {
                let want = if min == max {
                    format!("{min}")
                } else {
                    format!("{min} to {max}")
                };
                Err(SqlError::plan(
                    pos,
                    format!("{name} takes {want} argument(s), not {}", bound.len()),
                ))
            } else {
                Ok(())
            }
        };
        let text_fn = |this: &Self,
                       func: Func,
                       ty: DataType,
                       bound: Vec<(Bound, &AstExpr)>|
         -> Result<Bound, SqlError> {
            for (b, e) in &bound {
                this.expect_text(b, e, &name)?;
            }
            Ok(Bound {
                expr: Expr::Func(func, bound.into_iter().map(|(b, _)| b.expr).collect()),
                ty,
            })
        };
        match name.as_str() {
            "LOWER" | "UPPER" => {
                arity(1, 1)?;
                let func = if name == "LOWER" { Func::Lower } else { Func::Upper };
                text_fn(self, func, DataType::Varchar, bound)
            }
            "CHAR_LENGTH" | "CHARACTER_LENGTH" => {
                arity(1, 1)?;
                text_fn(self, Func::CharLength, DataType::Int, bound)
            }
            "CONCAT" => {
                arity(1, 1024)?;
                Ok(Bound {
                    expr: Expr::Func(Func::Concat, bound.into_iter().map(|(b, _)| b.expr).collect()),
                    ty: DataType::Varchar,
                })
            }
            "ABS" => {
                arity(1, 1)?;
                self.expect_number(&bound[0].0, bound[0].1, "ABS")?;
                let ty = bound[0].0.ty;
                Ok(Bound { expr: Expr::Func(Func::Abs, bound.into_iter().map(|(b, _)| b.expr).collect()), ty })
            }
            "ROUND" => {
                arity(1, 2)?;
                self.expect_number(&bound[0].0, bound[0].1, "ROUND")?;
                if let Some((b, e)) = bound.get(1) {
                    self.expect_integer(b, e, "ROUND's digits")?;
                }
                let ty = bound[0].0.ty;
                Ok(Bound { expr: Expr::Func(Func::Round, bound.into_iter().map(|(b, _)| b.expr).collect()), ty })
            }
            "MOD" => {
                arity(2, 2)?;
                let ty = arith_type(ArithOp::Mod, bound[0].0.ty, bound[1].0.ty)
                    .filter(|t| t.is_numeric())
                    .ok_or_else(|| SqlError::plan(pos, format!("MOD needs numbers, not {} and {}", bound[0].0.ty, bound[1].0.ty)))?;
                let mut it = bound.into_iter();
                let a = it.next().expect("arity 2").0.expr;
                let b = it.next().expect("arity 2").0.expr;
                Ok(Bound { expr: Expr::Arith(ArithOp::Mod, ty, Box::new(a), Box::new(b)), ty })
            }
            "COALESCE" => {
                arity(1, 1024)?;
                let mut ty = DataType::Null;
                for (b, e) in &bound {
                    ty = unify(ty, b.ty).ok_or_else(|| {
                        SqlError::plan(self.pos(e), format!("COALESCE's arguments differ in type: {ty} and {}", b.ty))
                    })?;
                }
                Ok(Bound { expr: Expr::Coalesce(bound.into_iter().map(|(b, _)| b.expr).collect()), ty })
            }
            "TO_TIMESTAMP_LTZ" => {
                arity(1, 2)?;
                self.expect_number(&bound[0].0, bound[0].1, "TO_TIMESTAMP_LTZ")?;
                if let Some((b, e)) = bound.get(1) {
                    if !matches!(b.expr, Expr::Literal(Value::Int(3))) {
                        return Err(SqlError::unsupported(self.pos(e), "a precision other than 3 (milliseconds) in TO_TIMESTAMP_LTZ"));
                    }
                }
                Ok(Bound { expr: Expr::Func(Func::ToTimestampMs, vec![bound.into_iter().next().expect("arity").0.expr]), ty: DataType::Timestamp })
            }
            "TUMBLE" | "HOP" | "SESSION" | "CUMULATE" => Err(SqlError::plan(
                pos,
                format!("{name} is a table function: write FROM TABLE({name}(TABLE t, DESCRIPTOR(ts), …))"),
            )),
            "ROW_NUMBER" | "RANK" | "DENSE_RANK" | "LAG" | "LEAD" => {
                Err(SqlError::unsupported(pos, format!("{name} (OVER windows and Top-N)")))
            }
            "CURRENT_TIMESTAMP" | "NOW" | "LOCALTIMESTAMP" | "PROCTIME" => {
                Err(SqlError::unsupported(pos, format!("{name} (processing time)")))
            }
            _ => Err(SqlError::plan(
                pos,
                format!("unknown function '{}'{}", f.name, did_you_mean(&name, FUNCTIONS)),
            )),
        }
    }

    fn aggregate(
        &mut self,
        name: &str,
        args: &[Option<&AstExpr>],
        distinct: bool,
        f: &Function,
        pos: Pos,
    ) -> Result<Bound, SqlError> {
        let grouping = match &mut self.mode {
            Mode::Plain { clause } => {
                let hint = if *clause == "WHERE" {
                    "; filter groups with HAVING, rows with WHERE"
                } else {
                    ""
                };
                return Err(SqlError::plan(
                    pos,
                    format!("aggregate {name} is not allowed in {clause}{hint}"),
                ));
            }
            Mode::Grouped(g) => g,
        };
        let kind = match (name, args, distinct) {
            ("COUNT", [None], false) => AggKind::CountStar,
            ("COUNT", [Some(_)], false) => AggKind::Count,
            ("COUNT", [Some(_)], true) => AggKind::CountDistinct,
            ("COUNT", _, _) => {
                return Err(SqlError::plan(
                    pos,
                    "COUNT takes *, one argument, or DISTINCT and one argument",
                ))
            }
            (_, _, true) => {
                return Err(SqlError::unsupported(
                    pos,
                    format!("{name}(DISTINCT …) (COUNT(DISTINCT …) there is)"),
                ))
            }
            ("SUM", [Some(_)], _) => AggKind::Sum,
            ("AVG", [Some(_)], _) => AggKind::Avg,
            ("MIN", [Some(_)], _) => AggKind::Min,
            ("MAX", [Some(_)], _) => AggKind::Max,
            _ => return Err(SqlError::plan(pos, format!("{name} takes one argument"))),
        };
        let arg = match args {
            [Some(e)] => {
                let mut inner = Binder::plain(self.scope, "an aggregate's argument", self.fallback);
                Some(inner.bind(e)?)
            }
            _ => None,
        };
        let ty = match (kind, &arg) {
            (AggKind::CountStar | AggKind::Count | AggKind::CountDistinct, _) => DataType::BigInt,
            (AggKind::Avg, Some(a)) => {
                if !(a.ty.is_numeric() || a.ty == DataType::Null) {
                    return Err(SqlError::plan(
                        pos,
                        format!("AVG needs a number, not {}", a.ty),
                    ));
                }
                DataType::Double
            }
            (AggKind::Sum, Some(a)) => match a.ty {
                DataType::Int | DataType::BigInt | DataType::Null => DataType::BigInt,
                DataType::Double => DataType::Double,
                DataType::Interval => DataType::Interval,
                other => {
                    return Err(SqlError::plan(
                        pos,
                        format!("SUM needs a number, not {other}"),
                    ))
                }
            },
            (_, Some(a)) => a.ty,
            (_, None) => DataType::Null,
        };
        let call = AggCall {
            kind,
            arg,
            ty,
            text: f.to_string(),
        };
        // The same call twice is computed once.
        let existing = grouping
            .aggs
            .iter()
            .position(|a| a.text.eq_ignore_ascii_case(&call.text));
        let i = match existing {
            Some(i) => i,
            None => {
                grouping.aggs.push(call);
                grouping.aggs.len() - 1
            }
        };
        Ok(Bound {
            expr: Expr::Column(grouping.agg_offset() + i),
            ty,
        })
    }
}

fn simple_name(e: &AstExpr) -> Option<&str> {
    match e {
        AstExpr::Identifier(i) => Some(&i.value),
        AstExpr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        AstExpr::Nested(inner) => simple_name(inner),
        _ => None,
    }
}

fn strip_nested(e: &AstExpr) -> &AstExpr {
    match e {
        AstExpr::Nested(inner) => strip_nested(inner),
        other => other,
    }
}

/// A literal's value and type.
fn literal(v: &AstValue, pos: Pos) -> Result<Bound, SqlError> {
    Ok(match v {
        AstValue::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Bound {
                expr: Expr::Literal(Value::Int(i)),
                ty: if i32::try_from(i).is_ok() {
                    DataType::Int
                } else {
                    DataType::BigInt
                },
            },
            Err(_) => match n.parse::<f64>() {
                Ok(d) if d.is_finite() => Bound {
                    expr: Expr::Literal(Value::Double(d)),
                    ty: DataType::Double,
                },
                _ => {
                    return Err(SqlError::plan(
                        pos,
                        format!("the number {n} is out of range"),
                    ))
                }
            },
        },
        AstValue::SingleQuotedString(s) | AstValue::DoubleQuotedString(s) => Bound {
            expr: Expr::Literal(Value::str(s)),
            ty: DataType::Varchar,
        },
        AstValue::Boolean(b) => Bound {
            expr: Expr::Literal(Value::Bool(*b)),
            ty: DataType::Boolean,
        },
        AstValue::Null => Bound {
            expr: Expr::Literal(Value::Null),
            ty: DataType::Null,
        },
        other => return Err(SqlError::unsupported(pos, format!("the literal {other}"))),
    })
}

/// A text literal compared with a timestamp becomes a timestamp literal.
fn coerce_for_compare(other: &Bound, b: Bound) -> Bound {
    if other.ty == DataType::Timestamp {
        if let Expr::Literal(Value::Str(s)) = &b.expr {
            if let Some(ms) = parse_timestamp(s) {
                return Bound {
                    expr: Expr::Literal(Value::Timestamp(ms)),
                    ty: DataType::Timestamp,
                };
            }
        }
    }
    b
}

/// The type of `a op b`, if the operation is defined.
pub fn arith_type(op: ArithOp, a: DataType, b: DataType) -> Option<DataType> {
    use DataType as T;
    Some(match (a, b) {
        (T::Null, T::Null) => T::Null,
        (T::Null, x) | (x, T::Null)
            if x.is_numeric() || matches!(x, T::Interval | T::Timestamp) =>
        {
            x
        }
        (T::Int, T::Int) => T::Int,
        (x, y) if x.is_integer() && y.is_integer() => T::BigInt,
        (x, y) if x.is_numeric() && y.is_numeric() => T::Double,
        (T::Timestamp, T::Interval) if matches!(op, ArithOp::Add | ArithOp::Sub) => T::Timestamp,
        (T::Interval, T::Timestamp) if op == ArithOp::Add => T::Timestamp,
        (T::Timestamp, T::Timestamp) if op == ArithOp::Sub => T::Interval,
        (T::Interval, T::Interval) if matches!(op, ArithOp::Add | ArithOp::Sub) => T::Interval,
        (T::Interval, x) if x.is_integer() && matches!(op, ArithOp::Mul | ArithOp::Div) => {
            T::Interval
        }
        _ => return None,
    })
}

/// The common type of two branches, if there is one.
pub fn unify(a: DataType, b: DataType) -> Option<DataType> {
    use DataType as T;
    Some(match (a, b) {
        (x, y) if x == y => x,
        (T::Null, x) | (x, T::Null) => x,
        (x, y) if x.is_integer() && y.is_integer() => T::BigInt,
        (x, y) if x.is_numeric() && y.is_numeric() => T::Double,
        _ => return None,
    })
}

/// The length in ms of an `INTERVAL` literal: `INTERVAL '10' SECOND`,
/// `INTERVAL '1.5' MINUTE`, `INTERVAL '10 seconds'`.
pub fn interval_ms(e: &AstExpr, pos: Pos) -> Result<i64, SqlError> {
    let AstExpr::Interval(iv) = e else {
        return Err(SqlError::plan(
            pos,
            format!("expected an INTERVAL like INTERVAL '10' SECOND, found {e}"),
        ));
    };
    if iv.last_field.is_some() {
        return Err(SqlError::unsupported(
            pos,
            "an interval with a range of units (… TO …)",
        ));
    }
    let text = match iv.value.as_ref() {
        AstExpr::Value(v) => match &v.value {
            AstValue::SingleQuotedString(s) => s.clone(),
            AstValue::Number(n, _) => n.clone(),
            other => {
                return Err(SqlError::plan(
                    pos,
                    format!("an interval's value is a number in quotes, not {other}"),
                ))
            }
        },
        other => {
            return Err(SqlError::plan(
                pos,
                format!("an interval's value is a number in quotes, not {other}"),
            ))
        }
    };
    let (number, unit_text) = match &iv.leading_field {
        Some(f) => (text.trim().to_string(), f.to_string()),
        None => {
            let t = text.trim();
            let split = t.find(char::is_whitespace).ok_or_else(|| {
                SqlError::plan(
                    pos,
                    format!("INTERVAL '{t}' needs a unit: write INTERVAL '{t}' SECOND"),
                )
            })?;
            (t[..split].to_string(), t[split..].trim().to_string())
        }
    };
    let ms_per: f64 = match unit_text.to_ascii_uppercase().trim_end_matches('S') {
        "MILLISECOND" => 1.0,
        "SECOND" => 1000.0,
        "MINUTE" => 60_000.0,
        "HOUR" => 3_600_000.0,
        "DAY" => 86_400_000.0,
        other => {
            return Err(SqlError::unsupported(
                pos,
                format!(
                    "the interval unit {other} (units are MILLISECOND, SECOND, MINUTE, HOUR, DAY)"
                ),
            ))
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| SqlError::plan(pos, format!("'{number}' is not a number of {unit_text}")))?;
    let ms = n * ms_per;
    if !ms.is_finite() || ms.abs() > 1e17 {
        return Err(SqlError::plan(pos, "the interval is out of range"));
    }
    Ok(ms.round() as i64)
}
