//! Eddy's core contracts, the bottom layer of the architecture.
//!
//! Everything here is pure data and logic: no threads, no I/O, no connectors.
//! The layers above build on it:
//!
//! * `eddy-runtime` executes [`Processor`]s in tasklets on cooperative worker
//!   threads, connected by bounded queues that carry [`Msg`]s.
//! * `eddy-pipeline` compiles the typed user API into processors, using the
//!   [`AggregateOperation`]s and [`WindowDefinition`]s defined here.
//!
//! ```
//! use eddy_core::{agg, AggregateOperation};
//!
//! // Aggregate operations compose: count and sum in one pass.
//! let op = agg::count().and(agg::sum_i64(|x: &i64| *x));
//! let mut acc = op.create();
//! for x in [3, 4, 5] {
//!     op.accumulate(&mut acc, &x);
//! }
//! assert_eq!(op.finish(acc), (3, 12));
//! ```

#![forbid(unsafe_code)]

pub mod agg;
mod aggregate;
pub mod dead_letter;
mod error;
mod item;
pub mod partition;
mod processor;
pub mod snapshot;
mod window;

pub use aggregate::AggregateOperation;
pub use dead_letter::{DeadLetter, DeadLetters, ErrorPolicy};
pub use error::{EddyError, ProcessorError};
pub use item::{Either, Event, Msg, SnapshotBarrier, Watermark, NO_TIMESTAMP};
pub use processor::{
    Inbox, Outbox, Processor, ProcessorContext, SnapshotRequester, VecOutbox, Waker,
};
pub use snapshot::{
    Guarantee, PendingEpochs, SealedEpoch, SnapshotEntry, SnapshotWriter, State, StateKey,
};
pub use window::{frame_end, WindowDefinition, WindowKind, WindowResult};
