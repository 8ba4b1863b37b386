//! SQL text helpers: identifier quoting and the table's column catalogue.

use crate::{conn::Backoff, conn::Conn, PgError};

/// Quotes a column name so that it is taken literally (case, spaces,
/// keywords), doubling embedded quotes.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of `table` with their SQL types, in table order. `table` is
/// parsed as PostgreSQL parses it in SQL text (unquoted names fold to lower
/// case, `schema.table` is allowed).
pub(crate) fn table_columns(
    conn: &mut Conn,
    backoff: Backoff,
    table: &str,
) -> Result<Vec<(String, String)>, PgError> {
    let sql = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
               FROM pg_attribute a WHERE a.attrelid = to_regclass($1) \
               AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
    let exists_sql = "SELECT to_regclass($1) IS NOT NULL";
    let (exists, rows) = conn.run_retrying(backoff, |client| async move {
        let r = async {
            let exists: bool = client.query_one(exists_sql, &[&table]).await?.try_get(0)?;
            let rows = client.query(sql, &[&table]).await?;
            Ok::<_, tokio_postgres::Error>((exists, rows))
        }
        .await
        .map_err(|e| PgError::from_driver(&e, "reading the table's columns"));
        (client, r)
    })?;
    if !exists {
        return Err(PgError::UnknownTable {
            table: table.to_string(),
        });
    }
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(|e| PgError::from_driver(&e, &format!("reading the columns of table '{table}'")))
}

/// Checks that every one of `wanted` is a column of `table`, returning the
/// SQL type of each.
pub(crate) fn check_columns(
    table: &str,
    existing: &[(String, String)],
    wanted: &[String],
) -> Result<Vec<String>, PgError> {
    wanted
        .iter()
        .map(|w| {
            existing
                .iter()
                .find(|(name, _)| name == w)
                .map(|(_, ty)| ty.clone())
                .ok_or_else(|| PgError::UnknownColumn {
                    table: table.to_string(),
                    column: w.clone(),
                    existing: existing
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}
