//! [`PostgresSource`]: the rows of a query as a batch source.

use crate::conn::{Backoff, Conn};
use crate::PgError;
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError};
use eddy_pipeline::Source;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio_postgres::Row;

/// A batch source that runs one query and emits each row mapped by a
/// function, then finishes.
///
/// Meant for reference data (accounts, rates) to load into a map or use as
/// a hash-join side input: the whole result is read into memory before it is
/// emitted, so keep it to what fits. It runs as one non-cooperative
/// instance; a transient failure before the result arrives is retried with
/// [`Backoff`], and a row the function rejects fails the job with its error.
pub struct PostgresSource<T, F> {
    url: String,
    query: String,
    map: Arc<F>,
    backoff: Backoff,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T, F> PostgresSource<T, F>
where
    F: Fn(&Row) -> Result<T, String> + Send + Sync + 'static,
{
    /// Runs `query` against `url`, emitting `map(row)` for each row. `map`
    /// reads columns with [`Row::try_get`] and returns a message naming the
    /// column when a row does not fit.
    pub fn new(url: &str, query: &str, map: F) -> Self {
        PostgresSource {
            url: url.to_string(),
            query: query.to_string(),
            map: Arc::new(map),
            backoff: Backoff::default(),
            _t: std::marker::PhantomData,
        }
    }

    /// Retry policy for transient errors.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

impl<T, F> Source for PostgresSource<T, F>
where
    T: Clone + Send + 'static,
    F: Fn(&Row) -> Result<T, String> + Send + Sync + 'static,
{
    type Out = T;
    type Bound = eddy_pipeline::Bounded;
    type Processor = PostgresSourceP<T, F>;
    fn name(&self) -> String {
        "postgres-query".into()
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> PostgresSourceP<T, F> {
        PostgresSourceP {
            url: self.url.clone(),
            query: self.query.clone(),
            map: self.map.clone(),
            backoff: self.backoff,
            rows: None,
        }
    }
}

/// The processor of [`PostgresSource`].
pub struct PostgresSourceP<T, F> {
    url: String,
    query: String,
    map: Arc<F>,
    backoff: Backoff,
    /// The mapped result, once the query ran.
    rows: Option<VecDeque<T>>,
}

impl<T, F> PostgresSourceP<T, F>
where
    F: Fn(&Row) -> Result<T, String>,
{
    fn fetch(&self) -> Result<VecDeque<T>, PgError> {
        let mut conn = Conn::new(&self.url)?;
        let query = self.query.as_str();
        let rows = conn.run_retrying(self.backoff, |client| async move {
            let r = client.query(query, &[]).await;
            (client, r.map_err(|e| PgError::from_driver(&e, query)))
        })?;
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                (self.map)(row).map_err(|e| PgError::Mapping(format!("row {i} of '{query}': {e}")))
            })
            .collect()
    }
}

impl<T, F> Processor for PostgresSourceP<T, F>
where
    T: Clone + Send + 'static,
    F: Fn(&Row) -> Result<T, String> + Send + Sync + 'static,
{
    type In = ();
    type Out = Event<T>;

    fn is_cooperative(&self) -> bool {
        false
    }

    fn process<O: Outbox<Event<T>>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    fn complete<O: Outbox<Event<T>>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        if self.rows.is_none() {
            let rows = self
                .fetch()
                .map_err(|e| ProcessorError::new(e.to_string()))?;
            self.rows = Some(rows);
        }
        let Some(rows) = self.rows.as_mut() else {
            return Ok(true);
        };
        while let Some(item) = rows.pop_front() {
            if let Err(Event { value, .. }) = outbox.offer(Event::untimed(item)) {
                rows.push_front(value);
                return Ok(false);
            }
        }
        Ok(true)
    }
}
