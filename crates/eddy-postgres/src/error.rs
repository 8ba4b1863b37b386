//! Errors of the PostgreSQL connectors, split into transient (retry) and
//! permanent (fail the job) ones.

use tokio_postgres::error::SqlState;

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection could not be opened or was lost; worth retrying.
    #[error("cannot reach PostgreSQL: {0}; check that the server is up and the connection string (host, port, user, dbname) is right")]
    Connection(String),
    /// The table the connector was pointed at does not exist.
    #[error("table '{table}' does not exist; create it first or fix the table name")]
    UnknownTable {
        /// The table name as given.
        table: String,
    },
    /// A column the connector writes or reads does not exist.
    #[error("column '{column}' does not exist in table '{table}'; existing columns: {existing}")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The missing column.
        column: String,
        /// The table's columns, comma separated.
        existing: String,
    },
    /// A value does not fit the column's type.
    #[error("column '{column}' of table '{table}' rejected a value: {message}; make the field's type match the column's SQL type ({sql_type})")]
    TypeMismatch {
        /// The table.
        table: String,
        /// The column whose values were rejected.
        column: String,
        /// The column's SQL type.
        sql_type: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// Any other error PostgreSQL reported; not retried.
    #[error("PostgreSQL rejected '{context}': {message}")]
    Query {
        /// What the connector was doing.
        context: String,
        /// PostgreSQL's message, with its SQLSTATE.
        message: String,
    },
    /// The connector's configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An item could not be turned into a row, or a row into an item.
    #[error("cannot map a row: {0}")]
    Mapping(String),
}

impl PgError {
    /// Whether retrying the same operation later may succeed (the connection
    /// dropped, the server restarts, a serialization conflict).
    pub fn is_transient(&self) -> bool {
        matches!(self, PgError::Connection(_))
    }

    /// Classifies a driver error that happened while doing `context`.
    pub(crate) fn from_driver(e: &tokio_postgres::Error, context: &str) -> PgError {
        let Some(db) = e.as_db_error() else {
            return if is_network(e) {
                PgError::Connection(e.to_string())
            } else {
                // Client-side: a parameter that does not fit its SQL type, a
                // result column read as the wrong Rust type. Retrying repeats it.
                PgError::Query {
                    context: context.to_string(),
                    message: e.to_string(),
                }
            };
        };
        let code = db.code();
        let transient = code.code().starts_with("08") // connection exception
            || code == &SqlState::ADMIN_SHUTDOWN
            || code == &SqlState::CRASH_SHUTDOWN
            || code == &SqlState::CANNOT_CONNECT_NOW
            || code == &SqlState::T_R_SERIALIZATION_FAILURE
            || code == &SqlState::T_R_DEADLOCK_DETECTED
            || code == &SqlState::TOO_MANY_CONNECTIONS;
        let message = format!("{} (SQLSTATE {})", db.message(), code.code());
        if transient {
            PgError::Connection(message)
        } else {
            PgError::Query {
                context: context.to_string(),
                message,
            }
        }
    }
}

/// Whether a driver error without a server response is the network's fault
/// (closed connection, I/O error, connect timeout) rather than the caller's.
pub(crate) fn is_network(e: &tokio_postgres::Error) -> bool {
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    io || e.is_closed() || e.to_string().starts_with("timeout")
}
