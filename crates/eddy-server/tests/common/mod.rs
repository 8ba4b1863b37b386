//! Shared test fixtures: a node with maps and a running streaming job.

use eddy_grid::Grid;
use eddy_pipeline::{Pipeline, Sinks, Sources};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use eddy_server::{Node, Panel};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An alert as the demo writes them: a JSON object with a `rule`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// The rule that fired.
    pub rule: String,
    /// The card it fired for.
    pub card: u64,
    /// The transaction amount.
    pub amount: u64,
}

/// The rules the generated alerts cycle through.
pub const RULES: [&str; 4] = ["velocity", "amount", "travel", "blacklist"];

/// A node whose job "alerts-generator" writes `rate_per_sec` alerts a
/// second into the watched map "alerts" (keys `alert-<n mod 2000>`, a
/// dashboard panel of alerts per rule), with
/// a registered latency histogram fed by the job, and a map "counts" with
/// integer keys.
pub fn node_with_job(rate_per_sec: f64) -> Arc<Node> {
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(1)));
    let grid = Grid::new();
    let node = Node::new(eddy, grid);
    let alerts = node.grid.map::<String, Alert>("alerts").unwrap();
    node.watch_map(&alerts);
    node.add_panel(Panel::grouped("Alerts per rule", "alerts", "rule"));
    let counts = node.grid.map::<u64, u64>("counts").unwrap();
    for i in 0..10 {
        counts.put(i, i * i);
    }
    let latency = node
        .metrics()
        .histogram("eddy_test_latency_seconds", "Time from generation to sink")
        .unwrap();
    let p = Pipeline::new();
    p.read_from(Sources::generator(|n| n).rate(rate_per_sec))
        .map(move |n| {
            // A made-up latency that varies, so percentiles have a spread.
            latency.record_ms(0.2 + (n % 50) as f64 * 0.1);
            let alert = Alert {
                rule: RULES[(n % 4) as usize].to_owned(),
                card: n % 97,
                amount: 100 + n % 900,
            };
            (format!("alert-{}", n % 2000), alert)
        })
        .write_to(Sinks::map(alerts));
    node.eddy
        .submit(p, JobConfig::default().name("alerts-generator"))
        .unwrap();
    node
}
