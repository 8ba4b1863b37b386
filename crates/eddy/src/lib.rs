//! Eddy: a stream processor and in-memory data grid in one library, built
//! around Apache Kafka.
//!
//! This crate is the front door: it re-exports what a user of Eddy writes
//! against, and holds no logic of its own. `use eddy::prelude::*;` brings in
//! everything a pipeline needs; the modules below hold the rest.
//!
//! - The pipeline API ([`Pipeline`], [`Sources`], [`Sinks`], stages,
//!   [`agg`], [`WindowDefinition`]) compiles to a DAG that [`Eddy`] runs on
//!   cooperative worker threads connected by bounded queues.
//! - [`JobConfig`] names a job and sets its [`Guarantee`], snapshots and
//!   restarts; [`Job`] is the handle of a running job.
//! - [`grid`]: named maps for state, reference data and queryable results.
//! - [`kafka`] (feature `kafka`, on by default): Kafka sources and sinks,
//!   exactly-once with transactions.
//! - [`postgres`] (feature `postgres`, on by default): PostgreSQL sinks,
//!   sources and map stores.
//! - [`source`]: [`SourceBuilder`](source::SourceBuilder), a source from a
//!   fill function; [`processor`]: the `Processor` contract, for stages of
//!   one's own.
//!
//! ```
//! use eddy::prelude::*;
//!
//! // Readings (sensor, time in ms, value): count per sensor per second.
//! let readings: Vec<(u32, i64, f64)> = (0..1000).map(|i| (i % 4, i as i64 * 10, 1.0)).collect();
//! let p = Pipeline::new();
//! let (sink, results) = Sinks::collect();
//! p.read_from(Sources::items(readings))
//!     .with_timestamps(|r| r.1, Duration::from_millis(100))
//!     .grouping_key(|r| r.0)
//!     .window(WindowDefinition::tumbling(Duration::from_secs(1)))
//!     .aggregate(agg::count().and(agg::sum_f64(|r: &(u32, i64, f64)| r.2)))
//!     .write_to(sink);
//!
//! let eddy = Eddy::new(EddyConfig::default());
//! eddy.submit(p, JobConfig::default().name("readings"))?.join()?;
//! assert_eq!(results.len(), 40); // 10 seconds × 4 sensors
//! assert!(results.items().iter().all(|w| w.value == (25, 25.0)));
//! # Ok::<(), EddyError>(())
//! ```

#![forbid(unsafe_code)]

pub use eddy_core::{
    agg, AggregateOperation, DeadLetter, DeadLetters, EddyError, Either, ErrorPolicy, Event,
    ProcessorError, WindowDefinition, WindowResult,
};
pub use eddy_pipeline::{
    Collected, EventTimePolicy, KeyedStage, Pipeline, Shared, Sink, Sinks, Source, Sources,
    StreamStage, WindowStage,
};
pub use eddy_runtime::{
    Eddy, EddyConfig, Guarantee, Job, JobConfig, JobStatus, SnapshotStats, VertexMetrics,
};

/// The data grid: named, partitioned maps with TTL, eviction, listeners, an
/// event journal, indexed queries and entry processors.
pub mod grid {
    pub use eddy_grid::query::CompareOp;
    pub use eddy_grid::{
        Aggregation, EntryEvent, EntryEventKind, EntryMut, EventFilter, EvictionConfig,
        EvictionPolicy, Expiry, Grid, GridConfig, GridError, GridKey, GridValue, IndexType,
        InitialLoad, JournalBatch, JournalEvent, JournalStart, ListenerId, Map, MapConfig,
        MapEvent, MapStats, MapStore, Page, Predicate, QueryPlan, StoreConfig, StoreError,
        StoreStats, StoredMap, WriteMode,
    };
    pub use eddy_pipeline::grid::dead_letters_to_map;
    pub use eddy_pipeline::grid::MapChange;
}

/// Kafka sources and sinks over librdkafka: per-partition event time, dead
/// letters for undecodable records, exactly-once with transactions.
#[cfg(feature = "kafka")]
pub mod kafka {
    /// Formats of keys and values: implement [`Decoder`] or [`Encoder`]
    /// for a format of one's own.
    pub use eddy_kafka::format::{Decoder, Encoder};
    pub use eddy_kafka::{
        create_topic, dead_letter_topic, end_offsets, partition_count, Acks, DeadLetter,
        DeadLetterRecord, KafkaError, KafkaRecord, KafkaSink, KafkaSource, ProducerRecord,
        Properties, StartPosition,
    };
}

/// PostgreSQL: a batched insert or upsert sink (exactly-once under an
/// exactly-once job), a query source, and a store behind grid maps.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use eddy_postgres::{
        execute, PgError, PostgresMapStore, PostgresSink, PostgresSource, Row,
    };
}

/// Sources of one's own: [`SourceBuilder`] turns a fill function into a
/// source, and the built-in sources' types are here for naming them.
pub mod source {
    pub use eddy_pipeline::sources::{
        Bounded, Boundedness, FileSource, GeneratorSource, ItemsSource, SourceBuffer,
        SourceBuilder, Unbounded,
    };
}

/// The traits that stage types are generic over, for functions that take or
/// return a stage: `fn clean<U: Upstream, C: Transform<U::Out>>(s:
/// StreamStage<U, C>) -> …`. A side input of a hash join is a stage over a
/// [`BoundedUpstream`](stage::BoundedUpstream).
pub mod stage {
    pub use eddy_pipeline::stage::{BoundedUpstream, SourceStage, Upstream};
    pub use eddy_pipeline::transform::Transform;
}

/// The processor contract, for stages of one's own: a [`Processor`] reads an
/// [`Inbox`] and offers to a bounded [`Outbox`], never blocking. Most
/// pipelines need none of this.
pub mod processor {
    pub use eddy_core::{Inbox, Outbox, Processor, ProcessorContext, SnapshotRequester, VecOutbox};
}

/// The README's examples, compiled and run as doctests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// Everything a pipeline needs: `use eddy::prelude::*;`.
pub mod prelude {
    pub use crate::grid::{Grid, Map};
    #[cfg(feature = "kafka")]
    pub use crate::kafka::{KafkaSink, KafkaSource, StartPosition};
    #[cfg(feature = "postgres")]
    pub use crate::postgres::{PostgresSink, PostgresSource};
    pub use crate::source::SourceBuilder;
    pub use crate::{
        agg, AggregateOperation, DeadLetters, Eddy, EddyConfig, EddyError, ErrorPolicy, Event,
        EventTimePolicy, Guarantee, Job, JobConfig, JobStatus, Pipeline, Sinks, Sources,
        WindowDefinition, WindowResult,
    };
    pub use std::time::Duration;
}
