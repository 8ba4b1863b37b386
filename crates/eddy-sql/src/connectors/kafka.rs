//! The `kafka` connector: a topic of JSON records. The source reads with
//! per-partition watermarks when the table has a watermark; records that
//! do not decode go to the dead-letter topic (`'dead-letter.topic'`, by
//! default `<topic>.dlq`) with the reason, and the job goes on. The sink
//! writes one JSON record per row, keyed by the primary key when the
//! table has one; under an exactly-once job it writes in transactions.

use super::json::{check_format, RowDecoder, RowEncoder, TimestampFormat};
use super::{parse_duration, Options};
use crate::catalog::{Column, Watermark};
use crate::error::{Pos, SqlError};
use crate::types::{Row, Value};
use eddy::kafka::{DeadLetter, Encoder, KafkaSink, KafkaSource, StartPosition};
use eddy::{EventTimePolicy, Sink, Source};
use std::sync::Arc;
use std::time::Duration;

/// A `kafka` table's options.
#[derive(Debug, Clone)]
pub struct KafkaTable {
    /// `'topic'`.
    pub topic: String,
    /// `'properties.bootstrap.servers'`.
    pub bootstrap: String,
    /// Other `'properties.*'`: client properties, passed through.
    pub properties: Vec<(String, String)>,
    /// `'scan.startup.mode'`.
    pub start: StartPosition,
    /// `'scan.bounded.mode' = 'latest-offset'`: read to the end offsets
    /// the partitions have when the job starts, then finish.
    pub bounded: bool,
    /// `'dead-letter.topic'`.
    pub dead_letter: Option<String>,
    /// `'json.timestamp-format'`.
    pub timestamps: TimestampFormat,
    /// `'scan.watermark.idle-timeout'`: a partition without records for
    /// this long stops holding watermarks back.
    pub idle_timeout: Option<Duration>,
}

impl KafkaTable {
    pub(crate) fn from_options(opts: &mut Options, pos: Pos) -> Result<KafkaTable, SqlError> {
        let Some((topic, _)) = opts.take("topic") else {
            return Err(SqlError::plan(pos, "connector 'kafka' needs 'topic' = '…'"));
        };
        let Some((bootstrap, _)) = opts.take("properties.bootstrap.servers") else {
            return Err(SqlError::plan(
                pos,
                "connector 'kafka' needs 'properties.bootstrap.servers' = 'host:port'",
            ));
        };
        check_format(opts, "kafka")?;
        let start = match opts.take("scan.startup.mode") {
            None => StartPosition::Earliest,
            Some((mode, mpos)) => match mode.as_str() {
                "earliest-offset" => StartPosition::Earliest,
                "latest-offset" => StartPosition::Latest,
                "group-offsets" => StartPosition::Committed,
                "timestamp" => match opts.take_parsed::<i64>("scan.startup.timestamp-millis", "epoch milliseconds")? {
                    Some(ms) => StartPosition::Timestamp(ms),
                    None => {
                        return Err(SqlError::plan(
                            mpos,
                            "'scan.startup.mode' = 'timestamp' needs 'scan.startup.timestamp-millis'",
                        ))
                    }
                },
                other => {
                    return Err(SqlError::plan(
                        mpos,
                        format!("'scan.startup.mode' = '{other}' is not one of earliest-offset, latest-offset, group-offsets, timestamp"),
                    ))
                }
            },
        };
        let bounded = match opts.take("scan.bounded.mode") {
            None => false,
            Some((mode, mpos)) => match mode.as_str() {
                "latest-offset" => true,
                "unbounded" => false,
                other => {
                    return Err(SqlError::unsupported(
                        mpos,
                        format!("'scan.bounded.mode' = '{other}' (there are 'latest-offset' and 'unbounded')"),
                    ))
                }
            },
        };
        let timestamps = match opts.take("json.timestamp-format") {
            None => TimestampFormat::Rfc3339,
            Some((f, fpos)) => match f.as_str() {
                "rfc3339" | "RFC3339" | "ISO-8601" | "iso-8601" => TimestampFormat::Rfc3339,
                "epoch-millis" => TimestampFormat::EpochMillis,
                other => {
                    return Err(SqlError::plan(
                        fpos,
                        format!(
                        "'json.timestamp-format' = '{other}' is not 'rfc3339' or 'epoch-millis'"
                    ),
                    ))
                }
            },
        };
        let idle_timeout = match opts.take("scan.watermark.idle-timeout") {
            None => None,
            Some((d, dpos)) => Some(parse_duration(&d, "scan.watermark.idle-timeout", dpos)?),
        };
        let dead_letter = opts.take("dead-letter.topic").map(|(v, _)| v);
        let properties = opts
            .take_prefixed("properties.")
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect();
        Ok(KafkaTable {
            topic,
            bootstrap,
            properties,
            start,
            bounded,
            dead_letter,
            timestamps,
            idle_timeout,
        })
    }

    /// One line for `DESCRIBE` and `EXPLAIN`.
    pub fn describe(&self) -> String {
        format!(
            "kafka topic '{}' at {} (JSON{})",
            self.topic,
            self.bootstrap,
            if self.bounded {
                ", bounded at the end offsets"
            } else {
                ""
            }
        )
    }

    /// The source of rows of `columns`, with event time from `watermark`.
    pub fn source(
        &self,
        columns: Arc<[Column]>,
        watermark: Option<&Watermark>,
    ) -> impl Source<Out = Row> {
        let mut source = KafkaSource::topic(self.topic.clone())
            .bootstrap(self.bootstrap.clone())
            .start(self.start);
        for (k, v) in &self.properties {
            source = source.property(k.clone(), v.clone());
        }
        if self.bounded {
            source = source.stop_at_end();
        }
        if let Some(topic) = &self.dead_letter {
            source = source.dead_letter(DeadLetter::Topic(topic.clone()));
        }
        let mut source = source.value_decoder(RowDecoder::new(columns));
        if let Some(w) = watermark {
            let mut policy = EventTimePolicy::lag(Duration::from_millis(w.lag_ms as u64));
            if let Some(idle) = self.idle_timeout {
                policy = policy.idle_timeout(idle);
            }
            let column = w.column;
            source = source
                .event_time(policy)
                .timestamp_fn(move |row: &Row| match row[column] {
                    Value::Timestamp(ms) => ms,
                    // A row without event time is late for every window.
                    _ => i64::MIN,
                });
        }
        source
    }

    fn configure<KE: Encoder, VE: Encoder, M>(
        &self,
        mut sink: KafkaSink<KE, VE, M>,
    ) -> KafkaSink<KE, VE, M> {
        sink = sink.bootstrap(self.bootstrap.clone());
        for (k, v) in &self.properties {
            sink = sink.property(k.clone(), v.clone());
        }
        sink
    }

    /// A sink writing rows with these column names, without keys.
    pub fn sink(&self, names: Arc<[String]>) -> impl Sink<Row> {
        self.configure(KafkaSink::topic(self.topic.clone()))
            .value_encoder(RowEncoder::new(names, self.timestamps))
    }

    /// A sink writing rows keyed by the columns `key` (as the map
    /// connector writes keys: text, or a JSON array for several columns).
    pub fn keyed_sink(&self, names: Arc<[String]>, key: Vec<usize>) -> impl Sink<Row> {
        self.configure(KafkaSink::topic(self.topic.clone()))
            .value_encoder(RowEncoder::new(names, self.timestamps))
            .key_string_by(move |row: &Row| super::map::key_of(row, &key))
    }
}
