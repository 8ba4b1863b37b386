//! The NEXMark benchmark for Eddy: generator, queries and harness.
//!
//! NEXMark models an online auction (people register, open auctions, place
//! bids) and is the benchmark stream processors publish. This crate sits
//! above `eddy-pipeline` and `eddy-runtime` and below the `eddy bench
//! nexmark` command; nothing else depends on it.
//!
//! * [`generator`]: the faithful event generator after Beam's
//!   `NexmarkGenerator`, deterministic by seed.
//! * [`jet`]: the simpler per-query events of Hazelcast's nexmark-jet, so
//!   that Jet's published figures can be compared.
//! * [`queries`]: Q0–Q5, Q7, Q8 and Q13 on the pipeline API.
//! * [`harness`]: [`run`] one query and get a [`Report`]: throughput, events
//!   per CPU-second, latency percentiles and peak memory.
//!
//! ```
//! use eddy_nexmark::{run, NexmarkOptions, Query, Variant};
//!
//! let report = run(&NexmarkOptions {
//!     query: Query::Q5,
//!     variant: Variant::Faithful,
//!     events: 20_000,
//!     parallelism: 2,
//!     ..NexmarkOptions::default()
//! })
//! .unwrap();
//! assert_eq!(report.events, 20_000);
//! assert!(report.outputs > 0);
//! ```

#![forbid(unsafe_code)]

pub mod generator;
pub mod harness;
pub mod jet;
pub mod model;
mod proc_stats;
pub mod queries;

pub use generator::GeneratorConfig;
pub use harness::{run, LatencyReport, NexmarkError, NexmarkOptions, Report};
pub use jet::JetConfig;
pub use model::{Auction, Bid, Event, Person};
pub use proc_stats::process_cpu_secs;

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The queries implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Query {
    /// Pass-through of bids.
    Q0,
    /// Bid prices in euros.
    Q1,
    /// Bids on every 123rd auction.
    Q2,
    /// Local item suggestion: person–auction incremental join.
    Q3,
    /// Average winning price per category.
    Q4,
    /// Hot items: the auctions with the most bids per sliding window.
    Q5,
    /// Highest bid per tumbling window.
    Q7,
    /// New users: persons who opened an auction in the same window.
    Q8,
    /// Bounded side-input join.
    Q13,
    /// Q13 with the side table in a grid map, looked up with
    /// `map_using_map`.
    Q13Map,
}

impl Query {
    /// Every query, in order.
    pub const ALL: [Query; 10] = [
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q3,
        Query::Q4,
        Query::Q5,
        Query::Q7,
        Query::Q8,
        Query::Q13,
        Query::Q13Map,
    ];

    /// Whether the results are window results: their latency counts from
    /// the window end, otherwise from the event time of the input event.
    pub fn is_windowed(self) -> bool {
        matches!(self, Query::Q5 | Query::Q7 | Query::Q8)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
            Query::Q13 => "q13",
            Query::Q13Map => "q13-map",
        };
        f.write_str(name)
    }
}

impl FromStr for Query {
    type Err = NexmarkError;

    /// Parses `q5`, `Q5` or `5`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.strip_prefix('q').unwrap_or(&lower);
        Query::ALL
            .into_iter()
            .find(|q| q.to_string()[1..] == *name)
            .ok_or_else(|| {
                NexmarkError::InvalidOption(format!(
                    "unknown query '{s}': use one of q0, q1, q2, q3, q4, q5, q7, q8, q13, q13-map"
                ))
            })
    }
}

/// Which event stream to run a query on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Variant {
    /// The NEXMark generator ([`generator`]).
    Faithful,
    /// nexmark-jet's simple events ([`jet`]).
    Jet,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Faithful => "faithful",
            Variant::Jet => "jet",
        })
    }
}

impl FromStr for Variant {
    type Err = NexmarkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "faithful" => Ok(Variant::Faithful),
            "jet" => Ok(Variant::Jet),
            _ => Err(NexmarkError::InvalidOption(format!(
                "unknown variant '{s}': use 'faithful' or 'jet'"
            ))),
        }
    }
}
