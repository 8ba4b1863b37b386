//! A SQL session: the catalog of tables, the jobs its statements started,
//! and `execute`, which takes a statement from text to its outcome.

use crate::catalog::{create_table, Catalog, Column, Table};
use crate::connectors::{parse_duration, Connector, Options};
use crate::error::{did_you_mean, ErrorKind, Pos, SqlError};
use crate::lower::{lower, Target};
use crate::parser::{parse_statement, split_statements, Insert, Name, SqlOption, Statement};
use crate::plan::{plan_query, QueryPlan};
use crate::types::{DataType, Row, Value};
use eddy::grid::Grid;
use eddy::{Eddy, Guarantee, Job, JobConfig, JobStatus};
use std::sync::Arc;
use std::time::Duration;

/// What a statement did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Rows: of a bounded query, or a listing (`SHOW`, `DESCRIBE`).
    Rows {
        /// The columns.
        columns: Vec<Column>,
        /// The rows.
        rows: Vec<Row>,
    },
    /// A job started.
    Job {
        /// Its name.
        name: String,
        /// Its id in the node.
        id: u64,
    },
    /// A definition applied; the message says what changed.
    Ddl(String),
    /// `EXPLAIN`: the plan as stages.
    Plan(String),
}

/// A job a session started.
#[derive(Clone)]
pub struct SqlJob {
    /// Its name.
    pub name: String,
    /// The handle.
    pub job: Job,
    /// Whether all its sources end (it completes by itself).
    pub bounded: bool,
    /// The statement that started it.
    pub sql: String,
}

/// How long a bounded query with a `LIMIT` over an unbounded table checks
/// for enough rows: often enough to answer promptly, rarely enough to cost
/// nothing.
const LIMIT_POLL: Duration = Duration::from_millis(10);

/// A SQL session over a node's engine and grid.
///
/// Thread safety: a session is used by one thread at a time (`&mut self`);
/// the jobs it starts run on the engine's workers.
pub struct Session {
    eddy: Arc<Eddy>,
    grid: Grid,
    catalog: Catalog,
    jobs: Vec<SqlJob>,
    unnamed: u64,
}

impl Session {
    /// A session running jobs on `eddy`, with maps in `grid`.
    pub fn new(eddy: Arc<Eddy>, grid: Grid) -> Session {
        Session {
            eddy,
            grid,
            catalog: Catalog::default(),
            jobs: Vec::new(),
            unnamed: 0,
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The jobs started by this session and not dropped.
    pub fn jobs(&self) -> &[SqlJob] {
        &self.jobs
    }

    /// Registers a table whose row `n` is `row(n)`, for `rows` rows (or
    /// endless), with event time in column `watermark.0` lagging
    /// `watermark.1` ms: a generator of the application's own as a table.
    pub fn create_generated_table(
        &mut self,
        name: &str,
        columns: Vec<Column>,
        watermark: Option<(&str, i64)>,
        rows: Option<u64>,
        row: impl Fn(u64) -> Row + Send + Sync + 'static,
    ) -> Result<(), SqlError> {
        if self.catalog.contains(name) {
            return Err(SqlError::plan(
                Pos::START,
                format!("table '{name}' exists already"),
            ));
        }
        let watermark = match watermark {
            None => None,
            Some((column, lag_ms)) => {
                let i = columns
                    .iter()
                    .position(|c| {
                        c.name.eq_ignore_ascii_case(column) && c.data_type == DataType::Timestamp
                    })
                    .ok_or_else(|| {
                        SqlError::plan(
                            Pos::START,
                            format!("no TIMESTAMP(3) column '{column}' for the watermark"),
                        )
                    })?;
                Some(crate::catalog::Watermark { column: i, lag_ms })
            }
        };
        self.catalog.insert(Table {
            name: name.to_string(),
            columns: columns.into(),
            watermark,
            primary_key: Vec::new(),
            connector: Connector::Generated(crate::connectors::GeneratedTable {
                rows,
                row: Arc::new(row),
            }),
            options: Vec::new(),
            sql: None,
        });
        Ok(())
    }

    /// Executes one statement (a trailing `;` is fine).
    pub fn execute(&mut self, sql: &str) -> Result<Outcome, SqlError> {
        let pieces = split_statements(sql);
        match pieces.as_slice() {
            [] => Err(SqlError::new(
                ErrorKind::Syntax,
                Pos::START,
                "empty statement",
            )),
            [one] => {
                let (text, base) = (one.text, one.base);
                self.execute_one(text).map_err(|e| e.shifted(base))
            }
            [_, second, ..] => Err(SqlError::new(
                ErrorKind::Syntax,
                second.base,
                "execute takes one statement; run several with execute_script",
            )),
        }
    }

    /// Executes the statements of a script in order, stopping at the first
    /// error; positions in errors are positions in the script.
    pub fn execute_script(
        &mut self,
        script: &str,
        mut each: impl FnMut(&Outcome),
    ) -> Result<Vec<Outcome>, SqlError> {
        let mut outcomes = Vec::new();
        for piece in split_statements(script) {
            let outcome = self
                .execute_one(piece.text)
                .map_err(|e| e.shifted(piece.base))?;
            each(&outcome);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Waits until every bounded job of the session has finished; the
    /// error names a job that failed.
    pub fn wait_for_bounded_jobs(&self) -> Result<(), SqlError> {
        for j in self.jobs.iter().filter(|j| j.bounded) {
            j.job.join().map_err(|e| {
                SqlError::new(
                    ErrorKind::Execution,
                    Pos::START,
                    format!("job '{}' failed: {e}", j.name),
                )
            })?;
        }
        Ok(())
    }

    fn execute_one(&mut self, sql: &str) -> Result<Outcome, SqlError> {
        let statement = parse_statement(sql)?;
        self.run(statement, sql)
    }

    fn run(&mut self, statement: Statement, sql: &str) -> Result<Outcome, SqlError> {
        match statement {
            Statement::CreateTable(ct) => {
                let mut table = create_table(&ct)?;
                table.sql = Some(sql.trim().to_string());
                if self.catalog.contains(&table.name) {
                    if ct.if_not_exists {
                        return Ok(Outcome::Ddl(format!(
                            "table '{}' exists already",
                            table.name
                        )));
                    }
                    return Err(SqlError::plan(
                        ct.name.pos,
                        format!("table '{}' exists already: DROP TABLE it first, or write CREATE TABLE IF NOT EXISTS", table.name),
                    ));
                }
                let msg = format!(
                    "created table '{}' ({})",
                    table.name,
                    table.connector.describe()
                );
                self.catalog.insert(table);
                Ok(Outcome::Ddl(msg))
            }
            Statement::DropTable { name, if_exists } => {
                if self.catalog.remove(&name.value) {
                    Ok(Outcome::Ddl(format!("dropped table '{}'", name.value)))
                } else if if_exists {
                    Ok(Outcome::Ddl(format!("no table '{}' to drop", name.value)))
                } else {
                    self.catalog
                        .table(&name.value, name.pos)
                        .map(|_| Outcome::Ddl(String::new()))
                }
            }
            Statement::ShowTables => {
                let rows = self
                    .catalog
                    .tables()
                    .map(|t| {
                        Row::new(vec![
                            Value::str(&t.name),
                            Value::str(t.connector.name()),
                            Value::Bool(t.connector.is_bounded()),
                        ])
                    })
                    .collect();
                Ok(Outcome::Rows {
                    columns: columns(&[
                        ("name", DataType::Varchar),
                        ("connector", DataType::Varchar),
                        ("bounded", DataType::Boolean),
                    ]),
                    rows,
                })
            }
            Statement::Describe(name) => {
                let t = self.catalog.table(&name.value, name.pos)?;
                let rows = t
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let wm = t.watermark.as_ref().filter(|w| w.column == i).map(|w| {
                            format!(
                                "{} - INTERVAL '{}' SECOND",
                                c.name,
                                w.lag_ms as f64 / 1000.0
                            )
                        });
                        Row::new(vec![
                            Value::str(&c.name),
                            Value::str(&c.data_type.to_string()),
                            Value::Bool(t.primary_key.contains(&i)),
                            wm.map_or(Value::Null, |w| Value::str(&w)),
                        ])
                    })
                    .collect();
                Ok(Outcome::Rows {
                    columns: columns(&[
                        ("name", DataType::Varchar),
                        ("type", DataType::Varchar),
                        ("key", DataType::Boolean),
                        ("watermark", DataType::Varchar),
                    ]),
                    rows,
                })
            }
            Statement::ShowJobs => {
                let rows = self
                    .jobs
                    .iter()
                    .map(|j| {
                        Row::new(vec![
                            Value::str(&j.name),
                            Value::Int(j.job.id() as i64),
                            Value::str(&format!("{:?}", j.job.status()).to_ascii_uppercase()),
                            Value::str(j.sql.trim()),
                        ])
                    })
                    .collect();
                Ok(Outcome::Rows {
                    columns: columns(&[
                        ("name", DataType::Varchar),
                        ("id", DataType::BigInt),
                        ("status", DataType::Varchar),
                        ("sql", DataType::Varchar),
                    ]),
                    rows,
                })
            }
            Statement::DropJob { name, if_exists } => match self.job_index(&name) {
                Ok(i) => {
                    let j = self.jobs.remove(i);
                    j.job.cancel();
                    Ok(Outcome::Ddl(format!("cancelled job '{}'", j.name)))
                }
                Err(_) if if_exists => Ok(Outcome::Ddl(format!("no job '{}' to drop", name.value))),
                Err(e) => Err(e),
            },
            Statement::SuspendJob(name) => {
                let i = self.job_index(&name)?;
                self.jobs[i].job.suspend();
                Ok(Outcome::Ddl(format!("suspending job '{}'", name.value)))
            }
            Statement::ResumeJob(name) => {
                let i = self.job_index(&name)?;
                self.jobs[i].job.resume();
                Ok(Outcome::Ddl(format!("resuming job '{}'", name.value)))
            }
            Statement::Query(q) => {
                let plan = plan_query(&q, &self.catalog, Pos::START)?;
                self.run_select(plan)
            }
            Statement::Insert(insert) => {
                self.unnamed += 1;
                let name = format!("insert-into-{}-{}", insert.target.value, self.unnamed);
                self.start_job(name, &[], &insert, sql)
            }
            Statement::CreateJob {
                name,
                options,
                insert,
            } => {
                if self.jobs.iter().any(|j| {
                    j.name.eq_ignore_ascii_case(&name.value) && !j.job.status().is_terminal()
                }) {
                    return Err(SqlError::plan(
                        name.pos,
                        format!("job '{}' is running already: DROP JOB it first", name.value),
                    ));
                }
                self.start_job(name.value.clone(), &options, &insert, sql)
            }
            Statement::Explain(inner) => self.explain(*inner),
        }
    }

    fn job_index(&self, name: &Name) -> Result<usize, SqlError> {
        self.jobs
            .iter()
            .position(|j| j.name.eq_ignore_ascii_case(&name.value))
            .ok_or_else(|| {
                SqlError::plan(
                    name.pos,
                    format!(
                        "unknown job '{}'{}; SHOW JOBS lists them",
                        name.value,
                        did_you_mean(&name.value, self.jobs.iter().map(|j| j.name.as_str()))
                    ),
                )
            })
    }

    fn explain(&mut self, statement: Statement) -> Result<Outcome, SqlError> {
        let mut out = String::new();
        match statement {
            Statement::Query(q) => {
                let plan = plan_query(&q, &self.catalog, Pos::START)?;
                out.push_str("bounded query\n");
                plan.describe(&mut out);
                out.push_str("  write_to         the caller (rows)\n");
            }
            Statement::Insert(insert) | Statement::CreateJob { insert, .. } => {
                let (plan, sink) = self.plan_insert(&insert)?;
                out.push_str(&format!("job: INSERT INTO {}\n", sink.name));
                plan.describe(&mut out);
                out.push_str(&format!(
                    "  write_to         {} ({})\n",
                    sink.name,
                    sink.connector.describe()
                ));
            }
            _ => return Err(SqlError::unsupported(
                Pos::START,
                "EXPLAIN of this statement (EXPLAIN SELECT … and EXPLAIN INSERT INTO … there are)",
            )),
        }
        Ok(Outcome::Plan(out))
    }

    /// Plans an `INSERT`: the query, checked against the sink's columns.
    fn plan_insert(&self, insert: &Insert) -> Result<(QueryPlan, Table), SqlError> {
        let sink = self
            .catalog
            .table(&insert.target.value, insert.target.pos)?
            .clone();
        let plan = plan_query(&insert.query, &self.catalog, Pos::START)?;
        let qpos = crate::parser::span_pos(
            sqlparser::ast::Spanned::span(insert.query.as_ref()),
            insert.target.pos,
        );
        if plan.columns.len() != sink.columns.len() {
            return Err(SqlError::plan(
                qpos,
                format!(
                    "the query gives {} columns, but table '{}' has {} ({}): select them in its order",
                    plan.columns.len(),
                    sink.name,
                    sink.columns.len(),
                    sink.column_names().join(", ")
                ),
            ));
        }
        for (q, s) in plan.columns.iter().zip(sink.columns.iter()) {
            if !q.data_type.assignable_to(s.data_type) {
                return Err(SqlError::plan(
                    qpos,
                    format!(
                        "column {} of the query ('{}') is {}, but column '{}' of '{}' is {}: CAST it",
                        plan.columns.iter().position(|c| std::ptr::eq(c, q)).unwrap_or(0) + 1,
                        q.name,
                        q.data_type,
                        s.name,
                        sink.name,
                        s.data_type
                    ),
                ));
            }
        }
        if let Connector::Datagen(_) | Connector::Generated(_) = sink.connector {
            return Err(SqlError::plan(
                insert.target.pos,
                format!(
                    "table '{}' is a {} table: it can be read, not written",
                    sink.name,
                    sink.connector.name()
                ),
            ));
        }
        if plan.limit.is_some() || !plan.order_by.is_empty() {
            return Err(SqlError::unsupported(
                qpos,
                "ORDER BY or LIMIT in INSERT INTO (they are for bounded SELECT)",
            ));
        }
        if let Some(a) = &plan.aggregate {
            if a.window.is_none() && !plan.table.connector.is_bounded() {
                // An updating aggregate: one upsert per change.
                if sink.primary_key.is_empty() || matches!(sink.connector, Connector::Filesystem(_))
                {
                    return Err(SqlError::plan(
                        qpos,
                        format!(
                            "GROUP BY without a window over the unbounded table '{}' updates its results with every row: write it to a table with a PRIMARY KEY (a map, or a Kafka topic keyed by it), or group by a window (TABLE(TUMBLE(…)))",
                            plan.table.name
                        ),
                    ));
                }
                if a.having.is_some() {
                    return Err(SqlError::unsupported(
                        qpos,
                        "HAVING on a GROUP BY without a window (an updating aggregate)",
                    ));
                }
            }
        }
        Ok((plan, sink))
    }

    fn start_job(
        &mut self,
        name: String,
        options: &[SqlOption],
        insert: &Insert,
        sql: &str,
    ) -> Result<Outcome, SqlError> {
        let config = job_config(&name, options)?;
        let (plan, sink) = self.plan_insert(insert)?;
        let bounded = plan.table.connector.is_bounded();
        let lowered = lower(&plan, Target::Table(&sink), &self.grid, insert.target.pos)?;
        let job = self.eddy.submit(lowered.pipeline, config).map_err(|e| {
            SqlError::new(
                ErrorKind::Execution,
                insert.target.pos,
                format!("job '{name}' could not start: {e}"),
            )
        })?;
        let id = job.id();
        self.jobs.push(SqlJob {
            name: name.clone(),
            job,
            bounded,
            sql: sql.to_string(),
        });
        Ok(Outcome::Job { name, id })
    }

    fn run_select(&mut self, plan: QueryPlan) -> Result<Outcome, SqlError> {
        let bounded = plan.table.connector.is_bounded();
        if !bounded && plan.limit.is_none() {
            return Err(SqlError::plan(
                Pos::START,
                format!(
                    "SELECT from the unbounded table '{}' would never end: add LIMIT n, or write the rows to a table with INSERT INTO",
                    plan.table.name
                ),
            ));
        }
        if !bounded && !plan.order_by.is_empty() {
            return Err(SqlError::unsupported(
                Pos::START,
                "ORDER BY over an unbounded table",
            ));
        }
        let lowered = lower(&plan, Target::Collect, &self.grid, Pos::START)?;
        let collected = lowered.collected.expect("a collecting target collects");
        let config = JobConfig::default().name(format!("select-{}", self.eddy.jobs().len() + 1));
        let job = self.eddy.submit(lowered.pipeline, config).map_err(|e| {
            SqlError::new(
                ErrorKind::Execution,
                Pos::START,
                format!("the query could not start: {e}"),
            )
        })?;
        if bounded {
            job.join().map_err(|e| {
                SqlError::new(
                    ErrorKind::Execution,
                    Pos::START,
                    format!("the query failed: {e}"),
                )
            })?;
        } else {
            let limit = plan.limit.unwrap_or(usize::MAX);
            while collected.len() < limit && !job.status().is_terminal() {
                std::thread::sleep(LIMIT_POLL);
            }
            job.cancel();
            if job.status() == JobStatus::Failed {
                if let Err(e) = job.join() {
                    return Err(SqlError::new(
                        ErrorKind::Execution,
                        Pos::START,
                        format!("the query failed: {e}"),
                    ));
                }
            }
        }
        let mut rows = collected.take();
        if !plan.order_by.is_empty() {
            rows.sort_by(|a, b| {
                for &(col, desc) in &plan.order_by {
                    let o = a[col].total_cmp(&b[col]);
                    let o = if desc { o.reverse() } else { o };
                    if o.is_ne() {
                        return o;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        if let Some(n) = plan.limit {
            rows.truncate(n);
        }
        Ok(Outcome::Rows {
            columns: plan.columns,
            rows,
        })
    }
}

fn columns(spec: &[(&str, DataType)]) -> Vec<Column> {
    spec.iter()
        .map(|(n, t)| Column {
            name: n.to_string(),
            data_type: *t,
        })
        .collect()
}

/// The job's configuration from `CREATE JOB … WITH (…)`.
fn job_config(name: &str, options: &[SqlOption]) -> Result<JobConfig, SqlError> {
    let mut opts = Options::new(options)?;
    let mut config = JobConfig::default().name(name);
    if let Some((g, pos)) = opts.take("guarantee") {
        let guarantee = Guarantee::parse(&g).map_err(|e| SqlError::plan(pos, e))?;
        config = config.guarantee(guarantee);
    }
    if let Some((d, pos)) = opts.take("snapshot.interval") {
        config = config.snapshot_interval(parse_duration(&d, "snapshot.interval", pos)?);
    }
    if let Some((dir, _)) = opts.take("snapshot.dir") {
        config = config.snapshot_dir(dir);
    }
    if let Some(n) = opts.take_parsed::<usize>("parallelism", "a whole number")? {
        config = config.parallelism(n.max(1));
    }
    opts.finish("CREATE JOB").map_err(|mut e| {
        e.message = e
            .message
            .replace("for connector 'CREATE JOB'", "of CREATE JOB");
        e
    })?;
    Ok(config)
}
