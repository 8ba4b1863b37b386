//! The catalog: the tables a session knows, each with its columns and
//! types, its watermark, its primary key and its connector (validated
//! when the table is created, so that a wrong option is reported by
//! `CREATE TABLE`, not by the job that uses the table later).

use crate::binder::interval_ms;
use crate::connectors::Connector;
use crate::error::{did_you_mean, Pos, SqlError};
use crate::parser::CreateTable;
use crate::types::DataType;
use sqlparser::ast::{BinaryOperator, DataType as AstType, Expr as AstExpr};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
}

/// A table's event time: the column and how far watermarks lag behind
/// the highest timestamp seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    /// Position of the (TIMESTAMP) column.
    pub column: usize,
    /// Allowed lateness in ms.
    pub lag_ms: i64,
}

/// A table: a schema over a connector.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its name as created.
    pub name: String,
    /// Its columns.
    pub columns: Arc<[Column]>,
    /// Its event time, if it has one.
    pub watermark: Option<Watermark>,
    /// Positions of the primary key's columns.
    pub primary_key: Vec<usize>,
    /// Where its rows come from and go to.
    pub connector: Connector,
    /// The `WITH` options as written, in order (for catalog listings).
    pub options: Vec<(String, String)>,
    /// The `CREATE TABLE` statement that made it; `None` for a table the
    /// application registered. A node keeps it to re-create the table.
    pub sql: Option<String>,
}

impl Table {
    /// The position of column `name` (case-insensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The columns' names.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

/// The tables of a session, by name (case-insensitive).
#[derive(Debug, Default)]
pub struct Catalog {
    tables: BTreeMap<String, Table>,
}

impl Catalog {
    /// The table `name`, or an error at `pos` that suggests the nearest.
    pub fn table(&self, name: &str, pos: Pos) -> Result<&Table, SqlError> {
        self.tables.get(&name.to_ascii_lowercase()).ok_or_else(|| {
            let known = self.tables.values().map(|t| t.name.as_str());
            SqlError::plan(
                pos,
                format!(
                    "unknown table '{name}'{}; SHOW TABLES lists the tables, CREATE TABLE makes one",
                    did_you_mean(name, known)
                ),
            )
        })
    }

    /// Whether a table `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tables.contains_key(&name.to_ascii_lowercase())
    }

    /// Adds `table`.
    pub fn insert(&mut self, table: Table) {
        self.tables.insert(table.name.to_ascii_lowercase(), table);
    }

    /// Removes table `name`; whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        self.tables.remove(&name.to_ascii_lowercase()).is_some()
    }

    /// All tables, by name.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }
}

/// The SQL type a column type is written as; the error says which types
/// there are.
pub fn data_type(t: &AstType, pos: Pos) -> Result<DataType, SqlError> {
    use AstType as A;
    Ok(match t {
        A::Boolean | A::Bool => DataType::Boolean,
        A::TinyInt(_) | A::SmallInt(_) | A::Int(_) | A::Integer(_) | A::Int4(_) | A::Int2(_) => {
            DataType::Int
        }
        A::BigInt(_) | A::Int8(_) | A::Int64 => DataType::BigInt,
        A::Double(_)
        | A::DoublePrecision
        | A::Float(_)
        | A::Real
        | A::Float4
        | A::Float8
        | A::Float64 => DataType::Double,
        A::Varchar(_)
        | A::CharVarying(_)
        | A::CharacterVarying(_)
        | A::Char(_)
        | A::Character(_)
        | A::String(_)
        | A::Text
        | A::Nvarchar(_) => DataType::Varchar,
        A::Timestamp(_, _) | A::Datetime(_) => DataType::Timestamp,
        A::Interval { .. } => DataType::Interval,
        A::Custom(name, _) if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") => {
            DataType::Timestamp
        }
        A::Custom(name, _) if name.to_string().eq_ignore_ascii_case("STRING") => DataType::Varchar,
        A::Decimal(_) | A::Numeric(_) | A::Dec(_) => {
            return Err(SqlError::unsupported_hint(
                pos,
                "DECIMAL",
                format!("use DOUBLE, or BIGINT in cents, for {t}"),
            ))
        }
        other => {
            return Err(SqlError::unsupported_hint(
                pos,
                format!("the type {other}"),
                "the types are BOOLEAN, INT, BIGINT, DOUBLE, VARCHAR, TIMESTAMP(3), INTERVAL",
            ))
        }
    })
}

/// Builds the table a `CREATE TABLE` statement describes, checking its
/// columns, watermark, key and connector options.
pub fn create_table(stmt: &CreateTable) -> Result<Table, SqlError> {
    let mut columns: Vec<Column> = Vec::new();
    for def in &stmt.columns {
        if columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&def.name.value))
        {
            return Err(SqlError::plan(
                def.name.pos,
                format!("column '{}' is defined twice", def.name.value),
            ));
        }
        columns.push(Column {
            name: def.name.value.clone(),
            data_type: data_type(&def.data_type, def.type_pos)?,
        });
    }
    if columns.is_empty() {
        return Err(SqlError::plan(
            stmt.name.pos,
            "a table needs at least one column",
        ));
    }
    let find = |name: &crate::parser::Name| -> Result<usize, SqlError> {
        columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(&name.value))
            .ok_or_else(|| {
                SqlError::plan(
                    name.pos,
                    format!(
                        "unknown column '{}'{}",
                        name.value,
                        did_you_mean(&name.value, columns.iter().map(|c| c.name.as_str()))
                    ),
                )
            })
    };
    let watermark = match &stmt.watermark {
        None => None,
        Some((name, expr)) => {
            let column = find(name)?;
            if columns[column].data_type != DataType::Timestamp {
                return Err(SqlError::plan(
                    name.pos,
                    format!(
                        "the watermark column '{}' is {}, not TIMESTAMP(3); event time needs a timestamp (TO_TIMESTAMP_LTZ(ms, 3) makes one from epoch milliseconds)",
                        name.value, columns[column].data_type
                    ),
                ));
            }
            let lag_ms = watermark_lag(expr, &columns[column].name, name.pos)?;
            Some(Watermark { column, lag_ms })
        }
    };
    let primary_key = stmt
        .primary_key
        .iter()
        .map(find)
        .collect::<Result<Vec<_>, _>>()?;
    let connector = Connector::from_options(&stmt.options, &columns, stmt.name.pos)?;
    Ok(Table {
        name: stmt.name.value.clone(),
        columns: columns.into(),
        watermark,
        primary_key,
        connector,
        options: stmt
            .options
            .iter()
            .map(|o| (o.key.clone(), o.value.clone()))
            .collect(),
        sql: None,
    })
}

/// The lag of `WATERMARK FOR ts AS ts [- INTERVAL …]`.
fn watermark_lag(expr: &AstExpr, column: &str, pos: Pos) -> Result<i64, SqlError> {
    let is_column =
        |e: &AstExpr| matches!(e, AstExpr::Identifier(i) if i.value.eq_ignore_ascii_case(column));
    match expr {
        e if is_column(e) => Ok(0),
        AstExpr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if is_column(left) => {
            let rpos = crate::parser::span_pos(sqlparser::ast::Spanned::span(right.as_ref()), pos);
            let lag = interval_ms(right, rpos)?;
            if lag < 0 {
                return Err(SqlError::plan(
                    rpos,
                    "the watermark's interval must not be negative",
                ));
            }
            Ok(lag)
        }
        _ => Err(SqlError::unsupported_hint(
            crate::parser::span_pos(sqlparser::ast::Spanned::span(expr), pos),
            "this watermark expression",
            format!("write WATERMARK FOR {column} AS {column} - INTERVAL '5' SECOND"),
        )),
    }
}
