//! [`PostgresMapStore`]: a grid map persisted in a table of JSON keys and
//! values.

use crate::conn::{Backoff, Conn};
use crate::sql::{check_columns, table_columns};
use crate::PgError;
use eddy_grid::{MapStore, StoreError};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::marker::PhantomData;
use std::time::Duration;

/// Retries of one store call: a few quick ones ride out a dropped
/// connection; a longer outage is the map's business (write-behind keeps
/// the batch queued and retries it on its next round), so a call must not
/// block the caller for long.
const STORE_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_millis(200),
    attempts: 3,
};

/// A [`MapStore`] on a PostgreSQL table with a `key jsonb PRIMARY KEY` and a
/// `value jsonb` column (see [`create_table`](PostgresMapStore::create_table)).
///
/// Keys and values are stored as their serde JSON form, so any grid key and
/// value type fits and the table stays queryable (`value->>'balance'`).
///
/// Thread safety: one connection behind a mutex; calls from several threads
/// take turns.
pub struct PostgresMapStore<K, V> {
    conn: Mutex<Conn>,
    table: String,
    _kv: PhantomData<fn(K, V)>,
}

impl<K, V> PostgresMapStore<K, V> {
    /// A store on `table`, which must exist with `key` and `value` columns.
    pub fn new(url: &str, table: &str) -> Result<Self, PgError> {
        let mut conn = Conn::new(url)?;
        let existing = table_columns(&mut conn, Backoff::default(), table)?;
        let types = check_columns(table, &existing, &["key".into(), "value".into()])?;
        for (column, ty) in ["key", "value"].into_iter().zip(types) {
            if ty != "jsonb" && ty != "json" {
                return Err(PgError::Config(format!(
                    "column '{column}' of table '{table}' has type ({ty}), but the map store keeps keys and values as JSON; change it to jsonb (see PostgresMapStore::create_table)"
                )));
            }
        }
        Ok(PostgresMapStore {
            conn: Mutex::new(conn),
            table: table.to_string(),
            _kv: PhantomData,
        })
    }

    /// Creates `table` with the layout the store expects, if it is missing.
    pub fn create_table(url: &str, table: &str) -> Result<(), PgError> {
        execute(
            url,
            &format!(
                "CREATE TABLE IF NOT EXISTS {table} (key jsonb PRIMARY KEY, value jsonb NOT NULL)"
            ),
        )
    }

    /// Runs one statement with `params`, returning its rows.
    fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.conn
            .lock()
            .run_retrying(STORE_BACKOFF, |client| async move {
                let r = client.query(sql, params).await;
                (client, r.map_err(|e| PgError::from_driver(&e, sql)))
            })
            .map_err(|e| StoreError(format!("table '{}': {e}", self.table)))
    }
}

fn to_json<T: Serialize>(t: &T) -> Result<Value, StoreError> {
    serde_json::to_value(t).map_err(|e| StoreError(format!("cannot serialise to JSON: {e}")))
}

fn from_json<T: DeserializeOwned>(
    row: &tokio_postgres::Row,
    index: usize,
    table: &str,
    column: &str,
) -> Result<T, StoreError> {
    let v: Value = row.try_get(index).map_err(|e| {
        StoreError(format!(
            "column '{column}' of table '{table}' is not JSON: {e}; use json or jsonb"
        ))
    })?;
    serde_json::from_value(v).map_err(|e| {
        StoreError(format!(
            "a '{column}' of table '{table}' does not fit the map's type: {e}; fix the row or the map's type"
        ))
    })
}

impl<K, V> MapStore<K, V> for PostgresMapStore<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn load(&self, key: &K) -> Result<Option<V>, StoreError> {
        let sql = format!("SELECT value FROM {} WHERE key = $1", self.table);
        let rows = self.query(&sql, &[&to_json(key)?])?;
        rows.into_iter()
            .next()
            .map(|r| from_json(&r, 0, &self.table, "value"))
            .transpose()
    }

    fn load_all(&self, keys: &[K]) -> Result<Vec<(K, V)>, StoreError> {
        let keys: Vec<Value> = keys.iter().map(to_json).collect::<Result<_, _>>()?;
        let sql = format!("SELECT key, value FROM {} WHERE key = ANY($1)", self.table);
        let rows = self.query(&sql, &[&keys])?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    from_json(&r, 0, &self.table, "key")?,
                    from_json(&r, 1, &self.table, "value")?,
                ))
            })
            .collect()
    }

    fn load_all_keys(&self) -> Result<Vec<K>, StoreError> {
        let sql = format!("SELECT key FROM {}", self.table);
        let rows = self.query(&sql, &[])?;
        rows.into_iter()
            .map(|r| from_json(&r, 0, &self.table, "key"))
            .collect()
    }

    fn store_all(&self, entries: &[(K, V)]) -> Result<(), StoreError> {
        let mut keys = Vec::with_capacity(entries.len());
        let mut values = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            keys.push(to_json(k)?);
            values.push(to_json(v)?);
        }
        let sql = format!(
            "INSERT INTO {} (key, value) SELECT * FROM unnest($1::jsonb[], $2::jsonb[]) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            self.table
        );
        self.query(&sql, &[&keys, &values]).map(|_| ())
    }

    fn delete_all(&self, keys: &[K]) -> Result<(), StoreError> {
        let keys: Vec<Value> = keys.iter().map(to_json).collect::<Result<_, _>>()?;
        let sql = format!("DELETE FROM {} WHERE key = ANY($1)", self.table);
        self.query(&sql, &[&keys]).map(|_| ())
    }
}

/// Runs `sql` (one or more statements without parameters, such as DDL) on
/// the database at `url`, retrying while the connection fails.
pub fn execute(url: &str, sql: &str) -> Result<(), PgError> {
    Conn::new(url)?.run_retrying(Backoff::default(), |client| async move {
        let r = client.batch_execute(sql).await;
        (client, r.map_err(|e| PgError::from_driver(&e, sql)))
    })
}
