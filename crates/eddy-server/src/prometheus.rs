//! The `/metrics` page in the Prometheus text exposition format (0.0.4),
//! written by hand: the node's numbers are already aggregated, so a metrics
//! library would only copy them.

use crate::node::Node;
use crate::registry::Metric;
use std::fmt::Write;
use std::time::UNIX_EPOCH;

/// Samples of one metric family, written together under one HELP and TYPE.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn family(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        samples: Vec::new(),
    }
}

fn write_family(out: &mut String, f: &Family) {
    if f.samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
    for (labels, v) in &f.samples {
        let _ = writeln!(out, "{}{} {}", f.name, labels, number(*v));
    }
}

/// The exposition of everything the node measures.
pub fn render(node: &Node) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut job_status = family(
        "eddy_job_status",
        "gauge",
        "1 for the job's current status (running, suspended, completed, failed, cancelled).",
    );
    let mut job_uptime = family(
        "eddy_job_uptime_seconds",
        "gauge",
        "Time since the job was submitted.",
    );
    let mut dead = family(
        "eddy_job_dead_letters_total",
        "counter",
        "Items the job's fallible stages could not process and sent to its dead letters.",
    );
    let mut snap_done = family(
        "eddy_job_snapshots_completed_total",
        "counter",
        "Snapshots the job completed (jobs with a guarantee that takes snapshots).",
    );
    let mut snap_failed = family(
        "eddy_job_snapshots_failed_total",
        "counter",
        "Snapshots that failed (retried at the next interval; too many in a row fail the job).",
    );
    let mut snap_duration = family(
        "eddy_job_snapshot_last_duration_seconds",
        "gauge",
        "Time from the request of the latest snapshot to its durable file.",
    );
    let mut snap_bytes = family(
        "eddy_job_snapshot_last_bytes",
        "gauge",
        "Size of the latest snapshot's file.",
    );
    let mut snap_entries = family(
        "eddy_job_snapshot_last_entries",
        "gauge",
        "State entries in the latest snapshot.",
    );
    let mut snap_at = family(
        "eddy_job_snapshot_last_completed_timestamp_seconds",
        "gauge",
        "When the latest snapshot became durable, in seconds since the epoch: alert on time() minus this.",
    );
    let mut par = family(
        "eddy_vertex_parallelism",
        "gauge",
        "Instances of the vertex.",
    );
    let mut items_in = family(
        "eddy_vertex_items_in_total",
        "counter",
        "Items the vertex received.",
    );
    let mut items_out = family(
        "eddy_vertex_items_out_total",
        "counter",
        "Items the vertex emitted.",
    );
    let mut q_items = family(
        "eddy_vertex_queue_items",
        "gauge",
        "Items waiting in the vertex's input queues.",
    );
    let mut q_cap = family(
        "eddy_vertex_queue_capacity_items",
        "gauge",
        "Capacity of the vertex's input queues.",
    );
    let mut q_fill = family(
        "eddy_vertex_queue_fill_ratio",
        "gauge",
        "Input queue fill, 0 to 1: near 1 means the vertex is the bottleneck (backpressure).",
    );
    let mut wm = family(
        "eddy_vertex_watermark_seconds",
        "gauge",
        "Lowest watermark of the vertex's instances, in seconds since the epoch.",
    );
    let mut wm_lag = family(
        "eddy_vertex_watermark_lag_seconds",
        "gauge",
        "How far the watermark is behind the wall clock.",
    );
    let mut late = family(
        "eddy_vertex_late_events_total",
        "counter",
        "Events that arrived behind the watermark and were dropped.",
    );
    for job in node.eddy.jobs() {
        let id = job.id().to_string();
        let name = job.name().to_owned();
        let status = crate::api::jobs::status_name(job.status());
        job_status.samples.push((
            labels(&[("job", &name), ("job_id", &id), ("status", status)]),
            1.0,
        ));
        job_uptime.samples.push((
            labels(&[("job", &name), ("job_id", &id)]),
            job.uptime().as_secs_f64(),
        ));
        dead.samples.push((
            labels(&[("job", &name), ("job_id", &id)]),
            job.dead_letters() as f64,
        ));
        if job.guarantee().takes_snapshots() {
            let stats = job.snapshot_stats();
            let l = labels(&[("job", &name), ("job_id", &id)]);
            snap_done.samples.push((l.clone(), stats.completed as f64));
            snap_failed.samples.push((l.clone(), stats.failed as f64));
            if stats.completed > 0 {
                snap_duration
                    .samples
                    .push((l.clone(), stats.last_duration.as_secs_f64()));
                snap_bytes
                    .samples
                    .push((l.clone(), stats.last_bytes as f64));
                snap_entries
                    .samples
                    .push((l.clone(), stats.last_entries as f64));
            }
            if let Some(at) = stats.last_completed_at {
                let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
                snap_at.samples.push((l, since_epoch.as_secs_f64()));
            }
        }
        for m in job.metrics() {
            let l = labels(&[("job", &name), ("job_id", &id), ("vertex", &m.name)]);
            par.samples.push((l.clone(), m.parallelism as f64));
            items_in.samples.push((l.clone(), m.items_in as f64));
            items_out.samples.push((l.clone(), m.items_out as f64));
            q_items.samples.push((l.clone(), m.queue_items as f64));
            q_cap.samples.push((l.clone(), m.queue_capacity as f64));
            q_fill.samples.push((l.clone(), m.queue_fill()));
            if let Some(w) = m.watermark_ms {
                wm.samples.push((l.clone(), w as f64 / 1000.0));
            }
            if let Some(lag) = m.watermark_lag_ms {
                wm_lag.samples.push((l.clone(), lag as f64 / 1000.0));
            }
            late.samples.push((l, m.late_events as f64));
        }
    }
    for f in [
        &job_status,
        &job_uptime,
        &dead,
        &snap_done,
        &snap_failed,
        &snap_duration,
        &snap_bytes,
        &snap_entries,
        &snap_at,
        &par,
        &items_in,
        &items_out,
        &q_items,
        &q_cap,
        &q_fill,
        &wm,
        &wm_lag,
        &late,
    ] {
        write_family(&mut out, f);
    }

    let mut entries = family("eddy_map_entries", "gauge", "Entries in the map.");
    let mut bytes = family(
        "eddy_map_bytes",
        "gauge",
        "Estimated bytes of the map's entries.",
    );
    let mut alloc = family(
        "eddy_map_allocated_bytes",
        "gauge",
        "Bytes the map's tables have allocated.",
    );
    let mut gets = family("eddy_map_gets_total", "counter", "Reads of the map.");
    let mut hits = family(
        "eddy_map_hits_total",
        "counter",
        "Reads that found an entry.",
    );
    let mut misses = family(
        "eddy_map_misses_total",
        "counter",
        "Reads that found nothing.",
    );
    let mut puts = family(
        "eddy_map_puts_total",
        "counter",
        "Writes that stored a value.",
    );
    let mut removals = family("eddy_map_removals_total", "counter", "Entries removed.");
    let mut evictions = family(
        "eddy_map_evictions_total",
        "counter",
        "Entries evicted for size.",
    );
    let mut expirations = family(
        "eddy_map_expirations_total",
        "counter",
        "Entries that expired.",
    );
    let mut dropped = family(
        "eddy_map_listener_events_dropped_total",
        "counter",
        "Listener events dropped because a listener buffer was full.",
    );
    for s in node.grid.stats() {
        let l = labels(&[("map", &s.name)]);
        entries.samples.push((l.clone(), s.entries as f64));
        bytes.samples.push((l.clone(), s.bytes as f64));
        alloc.samples.push((l.clone(), s.allocated_bytes as f64));
        gets.samples.push((l.clone(), s.gets as f64));
        hits.samples.push((l.clone(), s.hits as f64));
        misses.samples.push((l.clone(), s.misses as f64));
        puts.samples.push((l.clone(), s.puts as f64));
        removals.samples.push((l.clone(), s.removals as f64));
        evictions.samples.push((l.clone(), s.evictions as f64));
        expirations.samples.push((l.clone(), s.expirations as f64));
        dropped.samples.push((l, s.listener_events_dropped as f64));
    }
    for f in [
        &entries,
        &bytes,
        &alloc,
        &gets,
        &hits,
        &misses,
        &puts,
        &removals,
        &evictions,
        &expirations,
        &dropped,
    ] {
        write_family(&mut out, f);
    }

    for r in node.metrics().all() {
        let help = r.help.replace('\\', "\\\\").replace('\n', "\\n");
        match &r.metric {
            Metric::Gauge(g) => {
                let _ = writeln!(
                    out,
                    "# HELP {} {help}\n# TYPE {} gauge\n{} {}",
                    r.name,
                    r.name,
                    r.name,
                    g.get()
                );
            }
            Metric::Counter(c) => {
                let _ = writeln!(
                    out,
                    "# HELP {} {help}\n# TYPE {} counter\n{} {}",
                    r.name,
                    r.name,
                    r.name,
                    c.get()
                );
            }
            Metric::Histogram(h) => {
                let s = h.snapshot();
                let _ = writeln!(out, "# HELP {} {help}\n# TYPE {} histogram", r.name, r.name);
                let mut cumulative = 0;
                for (bound, count) in s.bounds_s.iter().zip(&s.counts) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "{}_bucket{{le=\"{}\"}} {cumulative}",
                        r.name,
                        number(*bound)
                    );
                }
                let total = s.count();
                let _ = writeln!(out, "{}_bucket{{le=\"+Inf\"}} {total}", r.name);
                let _ = writeln!(out, "{}_sum {}", r.name, number(s.sum_s));
                let _ = writeln!(out, "{}_count {total}", r.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_label_has_quotes_and_newlines_then_they_are_escaped() {
        assert_eq!(labels(&[("job", "a\"b\nc\\")]), "{job=\"a\\\"b\\nc\\\\\"}");
    }
}
