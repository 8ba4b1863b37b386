//! Eddy's typed pipeline API, in Hazelcast Jet's vocabulary.
//!
//! A [`Pipeline`] is built from stages (`read_from`, `map`, `filter`,
//! `grouping_key`, `window`, `aggregate`, `map_stateful`, `hash_join`,
//! `write_to`, …) and compiled into an `eddy_runtime::Dag` when submitted.
//! Stateless stages are fused into the processor before them; keyed stages
//! get a partitioned edge so that each key has one owner instance. This
//! crate builds DAGs; `eddy-runtime` runs them.
//!
//! Every stateful stage, source and sink saves its state into the job's
//! snapshots and restores it, at the same or another parallelism (keyed
//! state follows its key's partition); under exactly-once the sinks commit
//! in two phases ([`sinks`]). Hence state is serializable: grouping keys
//! are [`StateKey`](eddy_core::StateKey), and accumulators, `map_stateful`
//! state, join side items, windowed join items, `flat_map` output and
//! collected items are [`State`](eddy_core::State) (serde).
//!
//! ```
//! use eddy_pipeline::{agg, Pipeline, Sinks, Sources, WindowDefinition};
//! use eddy_runtime::{Eddy, EddyConfig, JobConfig};
//! use std::time::Duration;
//!
//! // Readings (sensor, time in ms, value): count per sensor per second.
//! let readings: Vec<(u32, i64, f64)> =
//!     (0..1000).map(|i| (i % 4, i as i64 * 10, 1.0)).collect();
//! let p = Pipeline::new();
//! let (sink, results) = Sinks::collect();
//! p.read_from(Sources::items(readings))
//!     .with_timestamps(|r| r.1, Duration::from_millis(100))
//!     .grouping_key(|r| r.0)
//!     .window(WindowDefinition::tumbling(Duration::from_secs(1)))
//!     .aggregate(agg::count())
//!     .filter(|w| w.value > 0)
//!     .write_to(sink);
//!
//! let eddy = Eddy::new(EddyConfig::default());
//! eddy.submit(p, JobConfig::default()).unwrap().join().unwrap();
//! let windows = results.take();
//! assert_eq!(windows.len(), 40); // 10 seconds × 4 sensors
//! assert!(windows.iter().all(|w| w.value == 25));
//! ```

#![forbid(unsafe_code)]

mod fallible;
pub mod grid;
pub mod processors;
pub mod sinks;
mod source_builder;
pub mod sources;
pub mod stage;
pub mod transform;

pub use eddy_core::{agg, AggregateOperation, Either, Event, WindowDefinition, WindowResult};
pub use sinks::{Collected, Sink, Sinks};
pub use sources::{Bounded, Boundedness, Source, SourceBuilder, Sources, Unbounded};
pub use stage::{KeyedStage, Shared, StreamStage, WindowStage};
pub use transform::EventTimePolicy;

use eddy_core::EddyError;
use eddy_runtime::{Dag, IntoDag};
use std::cell::RefCell;
use std::rc::Rc;

/// The state of a pipeline being built: the DAG so far and any errors.
struct PipelineState {
    dag: Dag,
    errors: Vec<EddyError>,
    sinks: usize,
    names: hashbrown::HashMap<String, usize>,
}

impl PipelineState {
    fn empty() -> Self {
        PipelineState {
            dag: Dag::new(),
            errors: Vec::new(),
            sinks: 0,
            names: hashbrown::HashMap::new(),
        }
    }

    /// `base`, or `base-2`, `base-3`… if taken: vertex names stay unique.
    fn unique_name(&mut self, base: &str) -> String {
        let n = self.names.entry(base.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        }
    }
}

/// A pipeline under construction; stages hold a handle to it.
///
/// Not thread-safe (`Rc`): build a pipeline on one thread, then submit it.
#[derive(Clone)]
pub struct Pipeline {
    state: Rc<RefCell<PipelineState>>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Pipeline {
            state: Rc::new(RefCell::new(PipelineState::empty())),
        }
    }

    /// Starts a stage reading from `source`.
    pub fn read_from<S: Source>(&self, source: S) -> stage::SourceStage<S> {
        stage::source_stage(self.clone(), source)
    }
}

impl IntoDag for Pipeline {
    fn into_dag(self) -> Result<Dag, EddyError> {
        // Stages still held elsewhere (a `Shared`) keep an empty pipeline.
        let mut state = self.state.replace(PipelineState::empty());
        if let Some(e) = state.errors.drain(..).next() {
            return Err(e);
        }
        if state.sinks == 0 {
            return Err(EddyError::InvalidJob(
                "the pipeline has no sink: add write_to(...) to a stage".into(),
            ));
        }
        Ok(state.dag)
    }
}
