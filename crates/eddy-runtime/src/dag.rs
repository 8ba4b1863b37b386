//! The DAG of a job: vertices (processor suppliers) and typed edges.
//!
//! The DAG lives in the runtime rather than in `eddy-core` because turning a
//! vertex into tasklets needs its concrete processor type, and the tasklet
//! is the runtime's; `VertexRef`s keep edges type-checked at compile time.

use crate::metrics::{InstanceMetrics, VertexMetricsSource};
use crate::queue::{BatchQueue, QueueGauge, QueueLimits};
use crate::routing::{Routing, RoutingKind};
use crate::snapshot::{LoadedSnapshot, SnapshotShared};
use crate::tasklet::{
    InputQueue, OutputEdge, ProcessorTasklet, SnapshotRole, Tasklet, TaskletOutbox,
};
use eddy_core::{EddyError, Guarantee, Processor, ProcessorContext};
use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

/// A typed handle to a vertex: `I` is what it consumes, `O` what it emits.
pub struct VertexRef<I, O> {
    id: usize,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for VertexRef<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, O> Copy for VertexRef<I, O> {}

impl<I, O> VertexRef<I, O> {
    /// The vertex's index in the DAG.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The same vertex, for use only as the source of edges: its input type
    /// is forgotten, its output type kept.
    pub fn erase_input(self) -> VertexRef<AnyInput, O> {
        VertexRef {
            id: self.id,
            _types: PhantomData,
        }
    }
}

/// The input type of a [`VertexRef`] obtained by
/// [`erase_input`](VertexRef::erase_input); it has no values.
pub enum AnyInput {}

type Endpoints = Vec<Box<dyn Any + Send>>;

/// Builds the tasklets of one vertex from its typed endpoints.
trait VertexFactory: Send + Sync {
    fn build(
        &self,
        context: ProcessorContext,
        inputs: Endpoints,
        outputs: Endpoints,
        batch_items_max: usize,
        metrics: Arc<InstanceMetrics>,
        snapshots: Option<SnapshotRole>,
    ) -> Result<Box<dyn Tasklet>, EddyError>;
}

struct TypedVertex<P, F> {
    supplier: F,
    _p: PhantomData<fn() -> P>,
}

/// Input endpoint of one consumer instance on one edge.
struct InputEndpoint<T> {
    queues: Vec<Arc<BatchQueue<T>>>,
    ordinal: usize,
    priority: i32,
}

impl<P, F> VertexFactory for TypedVertex<P, F>
where
    P: Processor,
    F: Fn(&ProcessorContext) -> P + Send + Sync,
{
    fn build(
        &self,
        context: ProcessorContext,
        inputs: Endpoints,
        outputs: Endpoints,
        batch_items_max: usize,
        metrics: Arc<InstanceMetrics>,
        snapshots: Option<SnapshotRole>,
    ) -> Result<Box<dyn Tasklet>, EddyError> {
        let type_error = |what: &str| {
            EddyError::InvalidJob(format!(
                "vertex '{}': an {what} edge carries another item type than the processor takes",
                context.vertex_name
            ))
        };
        let mut queues = Vec::new();
        for endpoint in inputs {
            let e = endpoint
                .downcast::<InputEndpoint<P::In>>()
                .map_err(|_| type_error("input"))?;
            for q in e.queues {
                queues.push(InputQueue::new(q, e.ordinal, e.priority));
            }
        }
        let mut edges = Vec::new();
        for endpoint in outputs {
            let e = endpoint
                .downcast::<OutputEdge<P::Out>>()
                .map_err(|_| type_error("output"))?;
            edges.push(*e);
        }
        let processor = (self.supplier)(&context);
        processor.validate(&context).map_err(|e| {
            EddyError::InvalidJob(format!("stage '{}': {}", context.vertex_name, e.message))
        })?;
        let outbox = TaskletOutbox::new(edges, batch_items_max, metrics.clone());
        Ok(Box::new(ProcessorTasklet::new(
            processor, context, queues, outbox, metrics, snapshots,
        )))
    }
}

/// Creates the queues of one edge.
trait EdgeFactory: Send + Sync {
    /// Returns one `OutputEdge<T>` per producer instance, one
    /// `InputEndpoint<T>` per consumer instance, and gauges of all queues.
    fn build(
        &self,
        producers: usize,
        consumers: usize,
        ordinal: usize,
        priority: i32,
        limits: &QueueLimits,
    ) -> (Endpoints, Endpoints, Vec<Vec<Arc<dyn QueueGauge>>>);
}

struct TypedEdge<T> {
    routing: Routing<T>,
}

impl<T: Send + 'static> EdgeFactory for TypedEdge<T> {
    fn build(
        &self,
        producers: usize,
        consumers: usize,
        ordinal: usize,
        priority: i32,
        limits: &QueueLimits,
    ) -> (Endpoints, Endpoints, Vec<Vec<Arc<dyn QueueGauge>>>) {
        let isolated = self.routing.kind == RoutingKind::Isolated;
        // queues[p][c]: producer p to consumer c. An isolated edge connects
        // only p to p.
        let queues: Vec<Vec<Option<Arc<BatchQueue<T>>>>> = (0..producers)
            .map(|p| {
                (0..consumers)
                    .map(|c| (!isolated || p == c).then(|| Arc::new(BatchQueue::new(limits))))
                    .collect()
            })
            .collect();
        let outputs = (0..producers)
            .map(|p| {
                let row: Vec<_> = queues[p].iter().flatten().cloned().collect();
                let router = (self.routing.factory)(if isolated { 0 } else { p }, row.len());
                Box::new(OutputEdge::new(row, router)) as Box<dyn Any + Send>
            })
            .collect();
        let mut gauges = Vec::new();
        let inputs = (0..consumers)
            .map(|c| {
                let column: Vec<_> = (0..producers)
                    .filter_map(|p| queues[p][c].clone())
                    .collect();
                gauges.push(
                    column
                        .iter()
                        .map(|q| q.clone() as Arc<dyn QueueGauge>)
                        .collect(),
                );
                Box::new(InputEndpoint {
                    queues: column,
                    ordinal,
                    priority,
                }) as Box<dyn Any + Send>
            })
            .collect();
        (outputs, inputs, gauges)
    }
}

/// How an execution takes snapshots: given to [`Dag::build`].
pub(crate) struct SnapshotSetup {
    pub(crate) guarantee: Guarantee,
    pub(crate) interval: std::time::Duration,
    pub(crate) requester: eddy_core::SnapshotRequester,
    pub(crate) shared: Option<Arc<SnapshotShared>>,
    pub(crate) restore: Option<Arc<LoadedSnapshot>>,
}

/// What the job's fallible stages do with items they cannot process:
/// given to [`Dag::build`].
pub(crate) struct ItemFailures {
    pub(crate) dead_letters: eddy_core::DeadLetters,
    pub(crate) policy: eddy_core::ErrorPolicy,
}

/// What a DAG becomes for execution.
pub(crate) struct BuiltDag {
    /// One tasklet per processor instance.
    pub(crate) tasklets: Vec<Box<dyn Tasklet>>,
    /// The metrics sources of each vertex.
    pub(crate) metrics: Vec<VertexMetricsSource>,
}

struct VertexDef {
    name: String,
    parallelism: Option<usize>,
    factory: Box<dyn VertexFactory>,
}

struct EdgeDef {
    from: usize,
    to: usize,
    to_ordinal: usize,
    priority: i32,
    kind: RoutingKind,
    factory: Box<dyn EdgeFactory>,
}

/// A job's directed acyclic graph of vertices and edges.
#[derive(Default)]
pub struct Dag {
    vertices: Vec<VertexDef>,
    edges: Vec<EdgeDef>,
}

/// A vertex and an edge as shown to users (the DAG view of the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagView {
    /// `(name, parallelism)` of each vertex.
    pub vertices: Vec<(String, usize)>,
    /// `(from, to, routing)` of each edge, by vertex index.
    pub edges: Vec<(usize, usize, RoutingKind)>,
}

impl Dag {
    /// An empty DAG.
    pub fn new() -> Self {
        Dag::default()
    }

    /// Adds a vertex whose instances `supplier` creates. Parallelism defaults
    /// to the job's.
    pub fn vertex<P, F>(&mut self, name: impl Into<String>, supplier: F) -> VertexRef<P::In, P::Out>
    where
        P: Processor,
        F: Fn(&ProcessorContext) -> P + Send + Sync + 'static,
    {
        let id = self.vertices.len();
        self.vertices.push(VertexDef {
            name: name.into(),
            parallelism: None,
            factory: Box::new(TypedVertex {
                supplier,
                _p: PhantomData,
            }),
        });
        VertexRef {
            id,
            _types: PhantomData,
        }
    }

    /// Fixes the number of instances of a vertex.
    pub fn set_parallelism<I, O>(&mut self, vertex: VertexRef<I, O>, parallelism: usize) {
        self.vertices[vertex.id].parallelism = Some(parallelism);
    }

    /// Connects `from` to `to` as the next input ordinal of `to`.
    pub fn edge<A, T: Send + 'static, B>(
        &mut self,
        from: VertexRef<A, T>,
        to: VertexRef<T, B>,
        routing: Routing<T>,
    ) {
        self.edge_with_priority(from, to, routing, 0);
    }

    /// Like [`edge`](Dag::edge), with a priority: a consumer reads its inputs
    /// of lower priority value to the end before any of higher value (a hash
    /// join reads its side input first).
    pub fn edge_with_priority<A, T: Send + 'static, B>(
        &mut self,
        from: VertexRef<A, T>,
        to: VertexRef<T, B>,
        routing: Routing<T>,
        priority: i32,
    ) {
        let to_ordinal = self.edges.iter().filter(|e| e.to == to.id).count();
        self.edges.push(EdgeDef {
            from: from.id,
            to: to.id,
            to_ordinal,
            priority,
            kind: routing.kind,
            factory: Box::new(TypedEdge { routing }),
        });
    }

    /// Name of a vertex.
    pub fn vertex_name(&self, id: usize) -> &str {
        &self.vertices[id].name
    }

    /// Number of vertices.
    pub fn vertex_count(&self) -> usize {
        self.vertices.len()
    }

    pub(crate) fn resolve_parallelism(&self, default: usize) -> Result<Vec<usize>, EddyError> {
        let par: Vec<usize> = self
            .vertices
            .iter()
            .map(|v| v.parallelism.unwrap_or(default).max(1))
            .collect();
        for e in &self.edges {
            if e.kind == RoutingKind::Isolated && par[e.from] != par[e.to] {
                return Err(EddyError::InvalidJob(format!(
                    "isolated edge '{}' -> '{}' joins vertices of parallelism {} and {}: give them equal parallelism or use another routing",
                    self.vertices[e.from].name, self.vertices[e.to].name, par[e.from], par[e.to]
                )));
            }
            if e.from >= e.to {
                return Err(EddyError::InvalidJob(format!(
                    "edge '{}' -> '{}' goes backwards: add vertices in the order data flows (a DAG has no cycles)",
                    self.vertices[e.from].name, self.vertices[e.to].name
                )));
            }
        }
        Ok(par)
    }

    /// Number of tasklets (processor instances) at a default parallelism.
    pub(crate) fn tasklet_count(&self, default_parallelism: usize) -> Result<usize, EddyError> {
        Ok(self.resolve_parallelism(default_parallelism)?.iter().sum())
    }

    /// Names of the vertices, in order.
    pub(crate) fn vertex_names(&self) -> impl Iterator<Item = &str> {
        self.vertices.iter().map(|v| v.name.as_str())
    }

    /// Snapshots match state to vertices by name, so names must be unique.
    pub(crate) fn check_unique_names(&self) -> Result<(), EddyError> {
        let mut seen = std::collections::HashSet::new();
        for v in &self.vertices {
            if !seen.insert(v.name.as_str()) {
                return Err(EddyError::InvalidJob(format!(
                    "two stages are named '{}': snapshots match state to stages by name, so give each stage its own name",
                    v.name
                )));
            }
        }
        Ok(())
    }

    /// A printable view of the DAG at a default parallelism.
    pub fn view(&self, default_parallelism: usize) -> DagView {
        DagView {
            vertices: self
                .vertices
                .iter()
                .map(|v| {
                    (
                        v.name.clone(),
                        v.parallelism.unwrap_or(default_parallelism).max(1),
                    )
                })
                .collect(),
            edges: self.edges.iter().map(|e| (e.from, e.to, e.kind)).collect(),
        }
    }

    /// Builds the tasklets of all instances and the metrics sources.
    pub(crate) fn build(
        &self,
        job_name: &str,
        default_parallelism: usize,
        limits: &QueueLimits,
        snapshots: &SnapshotSetup,
        failures: &ItemFailures,
    ) -> Result<BuiltDag, EddyError> {
        let par = self.resolve_parallelism(default_parallelism)?;
        let n = self.vertices.len();
        let mut inputs: Vec<Vec<Endpoints>> = par
            .iter()
            .map(|&p| (0..p).map(|_| Vec::new()).collect())
            .collect();
        let mut outputs: Vec<Vec<Endpoints>> = inputs
            .iter()
            .map(|v| v.iter().map(|_| Vec::new()).collect())
            .collect();
        let mut gauges: Vec<Vec<Arc<dyn QueueGauge>>> = (0..n).map(|_| Vec::new()).collect();
        for e in &self.edges {
            let (outs, ins, g) =
                e.factory
                    .build(par[e.from], par[e.to], e.to_ordinal, e.priority, limits);
            for (i, o) in outs.into_iter().enumerate() {
                outputs[e.from][i].push(o);
            }
            for (i, inp) in ins.into_iter().enumerate() {
                inputs[e.to][i].push(inp);
            }
            gauges[e.to].extend(g.into_iter().flatten());
        }
        let mut tasklets = Vec::new();
        let mut sources = Vec::new();
        for (v, ((def, ins), outs)) in self.vertices.iter().zip(inputs).zip(outputs).enumerate() {
            let mut instances = Vec::new();
            for (i, (inp, out)) in ins.into_iter().zip(outs).enumerate() {
                let metrics = Arc::new(InstanceMetrics::new());
                let context = ProcessorContext {
                    vertex_name: def.name.clone(),
                    instance: i,
                    parallelism: par[v],
                    job_name: job_name.to_string(),
                    late_events: metrics.late_events.clone(),
                    guarantee: snapshots.guarantee,
                    snapshot_interval: snapshots.shared.as_ref().map(|_| snapshots.interval),
                    snapshot_requester: snapshots.requester.clone(),
                    waker: eddy_core::Waker::default(),
                    dead_letters: failures.dead_letters.clone(),
                    error_policy: failures.policy,
                };
                let role = snapshots.shared.as_ref().map(|shared| SnapshotRole {
                    index: tasklets.len(),
                    shared: shared.clone(),
                    restore: snapshots.restore.clone(),
                });
                let t = def.factory.build(
                    context,
                    inp,
                    out,
                    limits.batch_items_max,
                    metrics.clone(),
                    role,
                )?;
                tasklets.push(t);
                instances.push(metrics);
            }
            sources.push(VertexMetricsSource {
                name: def.name.clone(),
                instances,
                input_queues: std::mem::take(&mut gauges[v]),
            });
        }
        Ok(BuiltDag {
            tasklets,
            metrics: sources,
        })
    }
}
