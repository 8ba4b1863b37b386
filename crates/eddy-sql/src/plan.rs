//! The planner: turns a bound query into a [`QueryPlan`], the logical
//! shape that `lower` maps one to one onto pipeline stages:
//!
//! ```text
//! read_from(source) → with_timestamps (if windowed) → filter (WHERE)
//!   → map (project, or pre-project keys and aggregate arguments)
//!   → grouping_key → window → aggregate      (windowed GROUP BY)
//!   | grouping_key → rolling_aggregate        (GROUP BY on a stream: updating)
//!   | grouping_key → aggregate                (GROUP BY on a bounded query)
//!   → filter (HAVING) → map (SELECT list) → write_to(sink)
//! ```
//!
//! Everything the binder resolved is positional here: no stage looks a
//! name up per row.

use crate::agg::AggSpec;
use crate::binder::{AggKind, Binder, Bound, Grouping, Scope, ScopeColumn};
use crate::catalog::{Catalog, Column, Table};
use crate::error::{Pos, SqlError};
use crate::expr::Expr;
use crate::parser::{span_pos, PARTITION_BY_MARKER};
use crate::types::DataType;
use sqlparser::ast::{
    Expr as AstExpr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, LimitClause,
    OrderByKind, Query, SelectItem, SetExpr, Spanned, TableFactor,
};
use std::fmt::Write as _;

/// A window of a windowed aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLE(…, size)`.
    Tumble {
        /// Size in ms.
        size_ms: i64,
    },
    /// `HOP(…, slide, size)`.
    Hop {
        /// Slide in ms.
        slide_ms: i64,
        /// Size in ms.
        size_ms: i64,
    },
    /// `SESSION(…, gap)`.
    Session {
        /// Gap in ms.
        gap_ms: i64,
    },
}

impl std::fmt::Display for WindowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowKind::Tumble { size_ms } => write!(f, "tumbling {size_ms} ms"),
            WindowKind::Hop { slide_ms, size_ms } => {
                write!(f, "hopping {size_ms} ms every {slide_ms} ms")
            }
            WindowKind::Session { gap_ms } => write!(f, "session, gap {gap_ms} ms"),
        }
    }
}

/// How rows are aggregated.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    /// The window, or `None` for a GROUP BY without one.
    pub window: Option<WindowKind>,
    /// Expressions over the input row making the aggregation's input:
    /// the grouping keys first, then the aggregates' arguments.
    pub pre: Vec<Expr>,
    /// How many of `pre` are keys.
    pub key_count: usize,
    /// The aggregate calls, reading `pre`'s fields.
    pub aggs: Vec<AggSpec>,
    /// The keys and calls as written, for `EXPLAIN`.
    pub key_texts: Vec<String>,
    /// The calls as written.
    pub agg_texts: Vec<String>,
    /// `HAVING`, over the aggregation's output.
    pub having: Option<(Expr, String)>,
}

/// A planned query: one source table, optional filter, optional
/// aggregation, the output columns.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// The table read.
    pub table: Table,
    /// Whether the plan uses the table's event time (windowed).
    pub uses_event_time: bool,
    /// `WHERE`, over the table's rows.
    pub filter: Option<(Expr, String)>,
    /// The aggregation, if the query groups.
    pub aggregate: Option<AggregatePlan>,
    /// The `SELECT` list: over the table's rows, or over the aggregation's
    /// output (window start and end, keys, aggregates).
    pub select: Vec<Expr>,
    /// The output columns.
    pub columns: Vec<Column>,
    /// `ORDER BY`: output column and whether descending (bounded queries).
    pub order_by: Vec<(usize, bool)>,
    /// `LIMIT`.
    pub limit: Option<usize>,
    /// Whether the select list is the table's columns unchanged.
    pub identity: bool,
}

impl QueryPlan {
    /// The plan as stages, one per line, for `EXPLAIN`.
    pub fn describe(&self, out: &mut String) {
        let t = &self.table;
        let _ = writeln!(
            out,
            "  read_from        {} ({})",
            t.name,
            t.connector.describe()
        );
        if self.uses_event_time {
            if let Some(w) = &t.watermark {
                let _ = writeln!(
                    out,
                    "  with_timestamps  {} (watermark lag {} ms)",
                    t.columns[w.column].name, w.lag_ms
                );
            }
        }
        if let Some((_, text)) = &self.filter {
            let _ = writeln!(out, "  filter           {text}");
        }
        match &self.aggregate {
            None => {
                if !self.identity {
                    let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                    let _ = writeln!(out, "  map              project {}", names.join(", "));
                }
            }
            Some(a) => {
                let _ = writeln!(
                    out,
                    "  map              keys and arguments ({} fields)",
                    a.pre.len()
                );
                let keys = if a.key_texts.is_empty() {
                    "(none: one group)".to_string()
                } else {
                    a.key_texts.join(", ")
                };
                let _ = writeln!(out, "  grouping_key     {keys}");
                match a.window {
                    Some(w) => {
                        let _ = writeln!(out, "  window           {w}");
                        let _ = writeln!(out, "  aggregate        {}", a.agg_texts.join(", "));
                    }
                    None if t.connector.is_bounded() => {
                        let _ = writeln!(
                            out,
                            "  aggregate        {} (at the end of the input)",
                            a.agg_texts.join(", ")
                        );
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "  rolling_aggregate {} (an update per row)",
                            a.agg_texts.join(", ")
                        );
                    }
                }
                if let Some((_, text)) = &a.having {
                    let _ = writeln!(out, "  filter           HAVING {text}");
                }
                let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                let _ = writeln!(out, "  map              project {}", names.join(", "));
            }
        }
    }
}

/// What a query's `FROM` holds.
struct From<'c> {
    table: &'c Table,
    qualifier: String,
    window: Option<(WindowKind, Vec<AstExpr>, Pos)>,
}

fn pos_of(e: &impl Spanned, fallback: Pos) -> Pos {
    span_pos(e.span(), fallback)
}

/// Plans `query` over the tables of `catalog`.
pub fn plan_query(query: &Query, catalog: &Catalog, start: Pos) -> Result<QueryPlan, SqlError> {
    let qpos = pos_of(query, start);
    if query.with.is_some() {
        return Err(SqlError::unsupported(
            qpos,
            "WITH (common table expressions)",
        ));
    }
    if query.fetch.is_some() || !query.locks.is_empty() {
        return Err(SqlError::unsupported(qpos, "FETCH / FOR UPDATE"));
    }
    let select = match query.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::Query(_) => return Err(SqlError::unsupported(qpos, "a parenthesized query")),
        SetExpr::SetOperation { op, .. } => {
            return Err(SqlError::unsupported(qpos, format!("{op} of queries")))
        }
        SetExpr::Values(_) => {
            return Err(SqlError::unsupported(
                qpos,
                "VALUES as a query (read a table)",
            ))
        }
        other => {
            return Err(SqlError::unsupported(
                qpos,
                format!("the query form '{other}'"),
            ))
        }
    };
    let spos = pos_of(select.as_ref(), qpos);
    if select.distinct.is_some() {
        return Err(SqlError::unsupported(
            spos,
            "SELECT DISTINCT (use GROUP BY)",
        ));
    }
    if select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || select.connect_by.is_some()
    {
        return Err(SqlError::unsupported(spos, "this clause of SELECT"));
    }
    let from = match select.from.as_slice() {
        [] => return Err(SqlError::unsupported(spos, "a SELECT without FROM")),
        [one] => {
            if let Some(j) = one.joins.first() {
                return Err(SqlError::unsupported(pos_of(&j.relation, spos), "JOIN"));
            }
            resolve_from(&one.relation, catalog, spos)?
        }
        [_, second, ..] => {
            return Err(SqlError::unsupported(
                pos_of(&second.relation, spos),
                "reading several tables (joins)",
            ))
        }
    };
    let table = from.table;
    let scope = Scope {
        columns: table
            .columns
            .iter()
            .map(|c| ScopeColumn {
                qualifier: Some(from.qualifier.clone()),
                name: c.name.clone(),
                ty: c.data_type,
            })
            .collect(),
    };
    let filter = match &select.selection {
        None => None,
        Some(w) => {
            let b = Binder::plain(&scope, "WHERE", spos).bind_condition(w, "WHERE")?;
            Some((b.expr, w.to_string()))
        }
    };
    let group_exprs: Vec<AstExpr> = match &select.group_by {
        GroupByExpr::All(_) => return Err(SqlError::unsupported(spos, "GROUP BY ALL")),
        GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(SqlError::unsupported(
                    spos,
                    "GROUP BY modifiers (ROLLUP, CUBE, GROUPING SETS)",
                ));
            }
            exprs.clone()
        }
    };
    let has_aggregates = select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            contains_aggregate(e)
        }
        _ => false,
    });
    let grouped = !group_exprs.is_empty()
        || has_aggregates
        || select.having.is_some()
        || from.window.is_some();
    let mut plan = QueryPlan {
        table: table.clone(),
        uses_event_time: from.window.is_some(),
        filter,
        aggregate: None,
        select: Vec::new(),
        columns: Vec::new(),
        order_by: Vec::new(),
        limit: None,
        identity: false,
    };
    let mut names: Vec<String> = Vec::new();
    if !grouped {
        let mut binder = Binder::plain(&scope, "SELECT", spos);
        for item in &select.projection {
            match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    for (i, c) in table.columns.iter().enumerate() {
                        plan.select.push(Expr::Column(i));
                        plan.columns.push(Column {
                            name: c.name.clone(),
                            data_type: c.data_type,
                        });
                    }
                }
                SelectItem::UnnamedExpr(e) => {
                    let b = binder.bind(e)?;
                    plan.columns.push(Column {
                        name: output_name(e),
                        data_type: b.ty,
                    });
                    plan.select.push(b.expr);
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    let b = binder.bind(expr)?;
                    plan.columns.push(Column {
                        name: alias.value.clone(),
                        data_type: b.ty,
                    });
                    plan.select.push(b.expr);
                }
            }
        }
        plan.identity = plan.select.len() == table.columns.len()
            && plan
                .select
                .iter()
                .enumerate()
                .all(|(i, e)| matches!(e, Expr::Column(c) if *c == i));
    } else {
        plan_grouped(&mut plan, select, &scope, &from, &group_exprs, spos)?;
    }
    for c in &plan.columns {
        names.push(c.name.clone());
    }
    dedupe_names(&mut plan.columns);
    // ORDER BY and LIMIT (only bounded queries use them; the session checks).
    if let Some(order) = &query.order_by {
        let OrderByKind::Expressions(items) = &order.kind else {
            return Err(SqlError::unsupported(qpos, "ORDER BY ALL"));
        };
        for item in items {
            let ipos = pos_of(&item.expr, qpos);
            let col = match &item.expr {
                AstExpr::Value(v) => match &v.value {
                    sqlparser::ast::Value::Number(n, _) => n
                        .parse::<usize>()
                        .ok()
                        .filter(|i| (1..=plan.columns.len()).contains(i))
                        .map(|i| i - 1),
                    _ => None,
                },
                AstExpr::Identifier(i) => plan
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(&i.value)),
                _ => None,
            };
            let Some(col) = col else {
                return Err(SqlError::unsupported(
                    ipos,
                    format!(
                        "ORDER BY {} (order by an output column's name or position)",
                        item.expr
                    ),
                ));
            };
            plan.order_by.push((col, item.options.asc == Some(false)));
        }
    }
    if let Some(limit) = &query.limit_clause {
        let expr = match limit {
            LimitClause::LimitOffset {
                limit: Some(l),
                offset: None,
                limit_by,
            } if limit_by.is_empty() => l,
            _ => return Err(SqlError::unsupported(qpos, "OFFSET (LIMIT n there is)")),
        };
        let lpos = pos_of(expr, qpos);
        let n = match expr {
            AstExpr::Value(v) => match &v.value {
                sqlparser::ast::Value::Number(n, _) => n.parse::<usize>().ok(),
                _ => None,
            },
            _ => None,
        };
        plan.limit = Some(n.ok_or_else(|| {
            SqlError::plan(lpos, format!("LIMIT takes a whole number, not {expr}"))
        })?);
    }
    Ok(plan)
}

fn plan_grouped(
    plan: &mut QueryPlan,
    select: &sqlparser::ast::Select,
    scope: &Scope,
    from: &From<'_>,
    group_exprs: &[AstExpr],
    spos: Pos,
) -> Result<(), SqlError> {
    let windowed = from.window.is_some();
    let is_named = |e: &AstExpr, n: &str| {
        matches!(e, AstExpr::Identifier(i) if i.value.eq_ignore_ascii_case(n))
            || matches!(e, AstExpr::CompoundIdentifier(p) if p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(n)))
    };
    let mut keys: Vec<(AstExpr, Bound)> = Vec::new();
    let (mut has_start, mut has_end) = (false, false);
    for g in group_exprs {
        let gpos = pos_of(g, spos);
        if windowed && is_named(g, "window_start") {
            has_start = true;
            continue;
        }
        if windowed && is_named(g, "window_end") {
            has_end = true;
            continue;
        }
        if is_named(g, "window_time") {
            return Err(SqlError::unsupported(gpos, "GROUP BY window_time"));
        }
        if let AstExpr::Value(_) = g {
            return Err(SqlError::unsupported(
                gpos,
                "GROUP BY a position or constant (name the expression)",
            ));
        }
        let b = Binder::plain(scope, "GROUP BY", spos).bind(g)?;
        keys.push((g.clone(), b));
    }
    if windowed && !(has_start && has_end) {
        let wpos = from.window.as_ref().map_or(spos, |w| w.2);
        return Err(SqlError::plan(
            if group_exprs.is_empty() { wpos } else { pos_of(&group_exprs[0], spos) },
            "a window table function needs GROUP BY window_start, window_end (and any keys): a window's rows are aggregated when it closes",
        ));
    }
    let window = match &from.window {
        None => None,
        Some((WindowKind::Session { gap_ms }, partition, wpos)) => {
            // The engine computes sessions per grouping key: PARTITION BY
            // and the keys of GROUP BY must be the same columns.
            let same = partition.len() == keys.len()
                && partition.iter().all(|p| keys.iter().any(|(k, _)| k == p));
            if !same {
                return Err(SqlError::unsupported(
                    *wpos,
                    "a SESSION window whose PARTITION BY differs from the keys of GROUP BY (group by exactly the partition columns)",
                ));
            }
            Some(WindowKind::Session { gap_ms: *gap_ms })
        }
        Some((w, _, _)) => Some(*w),
    };
    let mut grouping = Grouping {
        windowed,
        keys,
        aggs: Vec::new(),
    };
    let mut columns = Vec::new();
    let mut select_exprs = Vec::new();
    {
        let mut binder = Binder::grouped(scope, &mut grouping, spos);
        for item in &select.projection {
            let (e, name) = match item {
                SelectItem::UnnamedExpr(e) => (e, output_name(e)),
                SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value.clone()),
                SelectItem::Wildcard(w) => {
                    return Err(SqlError::plan(
                        span_pos(w.span(), spos),
                        "SELECT * in a grouped query: list the keys and aggregates",
                    ))
                }
                SelectItem::QualifiedWildcard(..) => {
                    return Err(SqlError::plan(
                        spos,
                        "SELECT t.* in a grouped query: list the keys and aggregates",
                    ))
                }
            };
            let b = binder.bind(e)?;
            columns.push(Column {
                name,
                data_type: b.ty,
            });
            select_exprs.push(b.expr);
        }
    }
    let having = match &select.having {
        None => None,
        Some(h) => {
            let mut binder = Binder::grouped(scope, &mut grouping, spos);
            let b = binder.bind_condition(h, "HAVING")?;
            Some((b.expr, h.to_string()))
        }
    };
    let key_count = grouping.keys.len();
    let mut pre: Vec<Expr> = grouping.keys.iter().map(|(_, b)| b.expr.clone()).collect();
    let key_texts = grouping.keys.iter().map(|(e, _)| e.to_string()).collect();
    let mut aggs = Vec::new();
    let mut agg_texts = Vec::new();
    for call in grouping.aggs {
        let (column, arg_type) = match call.arg {
            Some(b) => {
                pre.push(b.expr);
                (pre.len() - 1, b.ty)
            }
            None => (0, DataType::Null),
        };
        if matches!(call.kind, AggKind::Min | AggKind::Max) && arg_type == DataType::Boolean {
            // Booleans order false < true: fine.
        }
        aggs.push(AggSpec {
            kind: call.kind,
            column,
            arg_type,
        });
        agg_texts.push(call.text);
    }
    plan.aggregate = Some(AggregatePlan {
        window,
        pre,
        key_count,
        aggs,
        key_texts,
        agg_texts,
        having,
    });
    plan.select = select_exprs;
    plan.columns = columns;
    Ok(())
}

/// Whether `e` calls an aggregate function anywhere (outside subqueries).
fn contains_aggregate(e: &AstExpr) -> bool {
    use AstExpr as E;
    match e {
        E::Function(f) => {
            let n = f.name.to_string().to_ascii_uppercase();
            ["COUNT", "SUM", "AVG", "MIN", "MAX"].contains(&n.as_str())
                || match &f.args {
                    FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => contains_aggregate(x),
                        _ => false,
                    }),
                    _ => false,
                }
        }
        E::BinaryOp { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        E::UnaryOp { expr, .. }
        | E::Nested(expr)
        | E::IsNull(expr)
        | E::IsNotNull(expr)
        | E::Cast { expr, .. }
        | E::Ceil { expr, .. }
        | E::Floor { expr, .. }
        | E::Extract { expr, .. } => contains_aggregate(expr),
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(contains_aggregate)
                || conditions
                    .iter()
                    .any(|c| contains_aggregate(&c.condition) || contains_aggregate(&c.result))
                || else_result.as_deref().is_some_and(contains_aggregate)
        }
        E::InList { expr, list, .. } => {
            contains_aggregate(expr) || list.iter().any(contains_aggregate)
        }
        E::Between {
            expr, low, high, ..
        } => contains_aggregate(expr) || contains_aggregate(low) || contains_aggregate(high),
        E::Like { expr, pattern, .. } => contains_aggregate(expr) || contains_aggregate(pattern),
        E::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            contains_aggregate(expr)
                || substring_from.as_deref().is_some_and(contains_aggregate)
                || substring_for.as_deref().is_some_and(contains_aggregate)
        }
        _ => false,
    }
}

/// The name of an unaliased output column: the column's name, or the
/// expression as written.
fn output_name(e: &AstExpr) -> String {
    match e {
        AstExpr::Identifier(i) => i.value.clone(),
        AstExpr::CompoundIdentifier(p) => {
            p.last().map_or_else(|| e.to_string(), |i| i.value.clone())
        }
        other => other.to_string(),
    }
}

fn dedupe_names(columns: &mut [Column]) {
    for i in 1..columns.len() {
        let mut n = 1;
        let base = columns[i].name.clone();
        while columns[..i]
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&columns[i].name))
        {
            n += 1;
            columns[i].name = format!("{base}_{n}");
        }
    }
}

fn resolve_from<'c>(
    relation: &TableFactor,
    catalog: &'c Catalog,
    spos: Pos,
) -> Result<From<'c>, SqlError> {
    let rpos = pos_of(relation, spos);
    match relation {
        TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            partitions,
            ..
        } => {
            if args.is_some()
                || !with_hints.is_empty()
                || version.is_some()
                || !partitions.is_empty()
            {
                return Err(SqlError::unsupported(
                    rpos,
                    "table arguments, hints or versions",
                ));
            }
            let table_name = object_name(name, rpos)?;
            let table = catalog.table(&table_name, rpos)?;
            let qualifier = alias
                .as_ref()
                .map_or(table.name.clone(), |a| a.name.value.clone());
            Ok(From {
                table,
                qualifier,
                window: None,
            })
        }
        TableFactor::TableFunction { expr, alias } => {
            let AstExpr::Function(f) = expr else {
                return Err(SqlError::unsupported(rpos, format!("TABLE({expr})")));
            };
            let fname = f.name.to_string().to_ascii_uppercase();
            let fpos = pos_of(expr, rpos);
            let FunctionArguments::List(list) = &f.args else {
                return Err(SqlError::plan(
                    fpos,
                    format!("{fname} needs arguments: (TABLE t, DESCRIPTOR(ts), …)"),
                ));
            };
            let mut args: Vec<&AstExpr> = Vec::new();
            for a in &list.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                    _ => {
                        return Err(SqlError::unsupported(
                            fpos,
                            format!("this kind of argument of {fname}"),
                        ))
                    }
                }
            }
            let usage = match fname.as_str() {
                "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
                "HOP" => "HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND) (slide, then size)",
                "SESSION" => "SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '30' SECOND)",
                "CUMULATE" => return Err(SqlError::unsupported(fpos, "CUMULATE windows")),
                _ => {
                    return Err(SqlError::plan(
                        fpos,
                        format!("unknown table function '{}'{}; the window functions are TUMBLE, HOP and SESSION", f.name, crate::error::did_you_mean(&fname, ["TUMBLE", "HOP", "SESSION"])),
                    ))
                }
            };
            let mut partition: Vec<AstExpr> = Vec::new();
            if fname == "SESSION" {
                if let Some(i) = args.iter().position(|a| matches!(a, AstExpr::Function(pf) if pf.name.to_string().eq_ignore_ascii_case(PARTITION_BY_MARKER))) {
                    let AstExpr::Function(pf) = args.remove(i) else { unreachable!("matched above") };
                    if let FunctionArguments::List(l) = &pf.args {
                        for a in &l.args {
                            if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = a {
                                match e {
                                    AstExpr::Tuple(items) => partition.extend(items.iter().cloned()),
                                    AstExpr::Nested(inner) => partition.push((**inner).clone()),
                                    other => partition.push(other.clone()),
                                }
                            }
                        }
                    }
                }
            }
            let wrong = || SqlError::plan(fpos, format!("expected {usage}"));
            let want = if fname == "HOP" { 4 } else { 3 };
            if args.len() != want {
                return Err(wrong());
            }
            let table_name = match args[0] {
                AstExpr::Identifier(i) => i.value.clone(),
                AstExpr::CompoundIdentifier(p) => {
                    p.last().map(|i| i.value.clone()).unwrap_or_default()
                }
                _ => {
                    return Err(SqlError::plan(
                        pos_of(args[0], fpos),
                        format!("the first argument is TABLE name: {usage}"),
                    ))
                }
            };
            let tpos = pos_of(args[0], fpos);
            let table = catalog.table(&table_name, tpos)?;
            let ts_col = match args[1] {
                AstExpr::Function(d) if d.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") => {
                    match &d.args {
                        FunctionArguments::List(l) if l.args.len() == 1 => match &l.args[0] {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(AstExpr::Identifier(i))) => {
                                i.clone()
                            }
                            _ => return Err(wrong()),
                        },
                        _ => return Err(wrong()),
                    }
                }
                other => {
                    return Err(SqlError::plan(
                        pos_of(other, fpos),
                        format!("the second argument is DESCRIPTOR(time column): {usage}"),
                    ))
                }
            };
            let dpos = span_pos(ts_col.span, fpos);
            let Some(col) = table.column_index(&ts_col.value) else {
                return Err(SqlError::plan(
                    dpos,
                    format!(
                        "unknown column '{}'{}",
                        ts_col.value,
                        crate::error::did_you_mean(
                            &ts_col.value,
                            table.columns.iter().map(|c| c.name.as_str())
                        )
                    ),
                ));
            };
            match &table.watermark {
                None => {
                    return Err(SqlError::plan(
                        dpos,
                        format!(
                            "table '{}' has no watermark, and windows run on event time: add WATERMARK FOR {} AS {} - INTERVAL '5' SECOND to its CREATE TABLE",
                            table.name, ts_col.value, ts_col.value
                        ),
                    ))
                }
                Some(w) if w.column != col => {
                    return Err(SqlError::plan(
                        dpos,
                        format!(
                            "table '{}' keeps event time in '{}' (its WATERMARK), not '{}': write DESCRIPTOR({})",
                            table.name, table.columns[w.column].name, ts_col.value, table.columns[w.column].name
                        ),
                    ))
                }
                Some(_) => {}
            }
            let ms = |e: &AstExpr, what: &str| -> Result<i64, SqlError> {
                let p = pos_of(e, fpos);
                let v = crate::binder::interval_ms(e, p)?;
                if v <= 0 {
                    return Err(SqlError::plan(
                        p,
                        format!("the window's {what} must be positive"),
                    ));
                }
                Ok(v)
            };
            let kind = match fname.as_str() {
                "TUMBLE" => WindowKind::Tumble {
                    size_ms: ms(args[2], "size")?,
                },
                "HOP" => {
                    let slide_ms = ms(args[2], "slide")?;
                    let size_ms = ms(args[3], "size")?;
                    if size_ms % slide_ms != 0 {
                        return Err(SqlError::plan(
                            pos_of(args[3], fpos),
                            format!("a HOP window's size ({size_ms} ms) must be a multiple of its slide ({slide_ms} ms)"),
                        ));
                    }
                    WindowKind::Hop { slide_ms, size_ms }
                }
                _ => WindowKind::Session {
                    gap_ms: ms(args[2], "gap")?,
                },
            };
            let qualifier = alias
                .as_ref()
                .map_or(table.name.clone(), |a| a.name.value.clone());
            Ok(From {
                table,
                qualifier,
                window: Some((kind, partition, fpos)),
            })
        }
        TableFactor::Derived { .. } => Err(SqlError::unsupported(rpos, "a subquery in FROM")),
        other => Err(SqlError::unsupported(rpos, format!("FROM {other}"))),
    }
}

/// A one-part table name.
pub fn object_name(name: &sqlparser::ast::ObjectName, pos: Pos) -> Result<String, SqlError> {
    match name.0.as_slice() {
        [one] => match one.as_ident() {
            Some(i) => Ok(i.value.clone()),
            None => Err(SqlError::unsupported(pos, format!("the table name {name}"))),
        },
        _ => Err(SqlError::unsupported(
            pos,
            format!("a qualified table name ({name}); catalogs and databases"),
        )),
    }
}
