//! Eddy SQL: streaming SQL over Kafka topics, grid maps, files and
//! generated data, compiled onto the same pipeline stages the Rust API
//! uses. Nothing executes SQL differently: a statement's path is
//!
//! ```text
//! text ──parser──► AST ──binder──► typed expressions ──planner──► QueryPlan ──lower──► Pipeline ──► Eddy::submit
//! ```
//!
//! - [`parser`]: `sqlparser` plus Flink's DDL forms (`WATERMARK FOR`,
//!   `PRIMARY KEY … NOT ENFORCED`, `WITH (…)`), `CREATE JOB` and window
//!   table functions; errors carry line and column.
//! - [`catalog`]: tables (columns, watermark, key, connector options).
//! - [`types`]: [`Value`], the compact [`Row`] (fields by position), keys.
//! - [`expr`] and [`binder`]: expressions compiled once into a tree that
//!   reads columns by position, with SQL's three-valued logic.
//! - [`plan`] and [`lower`]: the query as stages, and those stages built.
//! - [`connectors`]: `datagen`, `kafka`, `map`, `filesystem`, `blackhole`.
//! - [`Session`]: `execute(&str)` → [`Outcome`].
//!
//! ```
//! use eddy::prelude::*;
//! use eddy_sql::{Outcome, Session};
//! use std::sync::Arc;
//!
//! let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(2)));
//! let mut sql = Session::new(eddy, Grid::new());
//! sql.execute("CREATE TABLE orders (id BIGINT, amount BIGINT, ts TIMESTAMP(3),
//!                WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
//!              WITH ('connector' = 'datagen', 'number-of-rows' = '100',
//!                    'fields.id.kind' = 'sequence', 'fields.amount.max' = '9',
//!                    'fields.ts.step' = '100')").unwrap();
//! let Outcome::Rows { rows, .. } = sql.execute(
//!     "SELECT window_start, COUNT(*) AS n
//!      FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND))
//!      GROUP BY window_start, window_end ORDER BY window_start").unwrap() else { panic!() };
//! assert_eq!(rows.len(), 10); // 100 rows, 100 ms apart: ten 1-second windows
//! assert!(rows.iter().all(|r| r[1] == eddy_sql::Value::Int(10)));
//! ```

#![forbid(unsafe_code)]

pub mod agg;
pub mod binder;
pub mod catalog;
pub mod connectors;
pub mod error;
pub mod expr;
pub mod lower;
pub mod parser;
pub mod plan;
mod session;
pub mod types;

pub use catalog::{Column, Table};
pub use error::{ErrorKind, SqlError};
pub use session::{Outcome, Session, SqlJob};
pub use types::{DataType, Row, Value};
