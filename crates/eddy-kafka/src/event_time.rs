//! Per-partition event time of a source instance: a watermark per Kafka
//! partition, idle partitions, and their coalesced watermark.
//!
//! Each partition's watermark is the highest timestamp read from it minus
//! the allowed lag. The instance emits the minimum over its partitions that
//! are not idle, so a partition that lags behind holds the watermark back
//! instead of making its records late. A partition that delivered nothing
//! for the idle timeout stops counting until it delivers again; when all are
//! idle (or the instance owns no partition) the instance is idle and says so
//! downstream. Law: the emitted watermark never goes back, also across a
//! restore from a snapshot: the highest timestamps and the emitted watermark
//! are saved with the offsets, so that records replayed after a restore are
//! late exactly when they were late the first time.

use eddy_core::Watermark;

/// What the coalesced event time of an instance did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// The watermark advanced to this value.
    Advance(Watermark),
    /// Every partition is idle: downstream should not wait for this instance.
    Idle,
}

/// The event-time state of one partition.
#[derive(Debug, Clone, Copy)]
struct PartitionTime {
    /// Highest timestamp read, or `i64::MIN` before the first record.
    top_ts: i64,
    /// Wall-clock time (ms) of the last record, or of the assignment.
    last_record_wall_ms: i64,
}

/// The event-time state of one source instance.
#[derive(Debug)]
pub(crate) struct PartitionWatermarks {
    lag_ms: i64,
    idle_timeout_ms: Option<i64>,
    partitions: Vec<PartitionTime>,
    emitted: i64,
    idle_emitted: bool,
    /// Whether the poller has reported the instance's first assignment.
    /// Before that, an instance with no partition is not idle but waiting:
    /// declaring it idle would let the others' watermarks run ahead of the
    /// partitions it is about to read.
    assignment_known: bool,
}

impl PartitionWatermarks {
    pub(crate) fn new(lag_ms: i64, idle_timeout_ms: Option<i64>) -> Self {
        PartitionWatermarks {
            lag_ms,
            idle_timeout_ms,
            partitions: Vec::new(),
            emitted: i64::MIN,
            idle_emitted: false,
            assignment_known: false,
        }
    }

    /// Records that the poller reported the instance's assignment (perhaps
    /// empty).
    pub(crate) fn assignment_known(&mut self) {
        self.assignment_known = true;
    }

    /// Adds a partition (the next slot), assigned at `now_ms`, whose
    /// highest timestamp read so far is `top_ts` (`i64::MIN` for none;
    /// another value for a partition restored from a snapshot).
    pub(crate) fn add_partition(&mut self, now_ms: i64, top_ts: i64) {
        self.partitions.push(PartitionTime {
            top_ts,
            last_record_wall_ms: now_ms,
        });
    }

    /// The highest timestamp read from partition `slot`, or `i64::MIN`.
    pub(crate) fn top_ts(&self, slot: usize) -> i64 {
        self.partitions[slot].top_ts
    }

    /// The last watermark emitted, or `i64::MIN`.
    pub(crate) fn emitted(&self) -> i64 {
        self.emitted
    }

    /// Takes the watermark a restored snapshot says was emitted, and returns
    /// it to be emitted again: downstream processors start afresh after a
    /// restore and learn it only this way.
    pub(crate) fn restore_emitted(&mut self, watermark: i64) -> Option<Signal> {
        if watermark == i64::MIN || watermark <= self.emitted {
            return None;
        }
        self.emitted = watermark;
        Some(Signal::Advance(Watermark(watermark)))
    }

    /// Records an event with timestamp `ts` read from partition `slot`.
    #[inline]
    pub(crate) fn on_event(&mut self, slot: usize, ts: i64, now_ms: i64) {
        let p = &mut self.partitions[slot];
        p.top_ts = p.top_ts.max(ts);
        p.last_record_wall_ms = now_ms;
    }

    fn is_idle(&self, p: &PartitionTime, now_ms: i64) -> bool {
        self.idle_timeout_ms
            .is_some_and(|timeout| now_ms - p.last_record_wall_ms >= timeout)
    }

    /// What to emit now, if anything.
    pub(crate) fn poll(&mut self, now_ms: i64) -> Option<Signal> {
        if !self.assignment_known {
            return None;
        }
        let mut min: Option<i64> = None;
        for p in &self.partitions {
            if self.is_idle(p, now_ms) {
                continue;
            }
            // A live partition that has read nothing yet holds everything
            // back: its first record may be the oldest of all.
            let wm = p.top_ts.saturating_sub(self.lag_ms);
            min = Some(min.map_or(wm, |m| m.min(wm)));
        }
        match min {
            None => {
                // Going idle: first hand on what the partitions that had
                // data promise for themselves, so that their windows do
                // not wait on a race between idle timeouts (a partition
                // that never delivered goes idle counted from its
                // assignment, the others from their last record).
                let flushed = self
                    .partitions
                    .iter()
                    .filter(|p| p.top_ts != i64::MIN)
                    .map(|p| p.top_ts.saturating_sub(self.lag_ms))
                    .min();
                if let Some(wm) = flushed.filter(|wm| *wm > self.emitted) {
                    self.emitted = wm;
                    return Some(Signal::Advance(Watermark(wm)));
                }
                let all_idle = self.idle_timeout_ms.is_some() || self.partitions.is_empty();
                if all_idle && !self.idle_emitted {
                    self.idle_emitted = true;
                    return Some(Signal::Idle);
                }
                None
            }
            Some(wm) if wm > self.emitted && wm != i64::MIN => {
                self.emitted = wm;
                self.idle_emitted = false;
                Some(Signal::Advance(Watermark(wm)))
            }
            Some(_) => {
                // Data flows again but the watermark stays: the idle marker
                // is cleared by the next watermark, or by the data itself.
                self.idle_emitted = false;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_partitions_advance_then_watermark_is_min_minus_lag() {
        let mut w = PartitionWatermarks::new(10, None);
        w.assignment_known();
        w.add_partition(0, i64::MIN);
        w.add_partition(0, i64::MIN);
        w.on_event(0, 100, 0);
        assert_eq!(w.poll(0), None, "partition 1 has read nothing yet");
        w.on_event(1, 50, 0);
        assert_eq!(w.poll(0), Some(Signal::Advance(Watermark(40))));
        w.on_event(1, 200, 0);
        assert_eq!(w.poll(0), Some(Signal::Advance(Watermark(90))));
        assert_eq!(w.poll(0), None, "no advance, nothing to emit");
    }

    #[test]
    fn when_one_partition_idle_then_watermark_follows_the_others() {
        let mut w = PartitionWatermarks::new(0, Some(1_000));
        w.assignment_known();
        w.add_partition(0, i64::MIN);
        w.add_partition(0, i64::MIN);
        w.on_event(0, 100, 500);
        assert_eq!(w.poll(500), None);
        // Partition 1 never delivered: idle after the timeout.
        assert_eq!(w.poll(1_000), Some(Signal::Advance(Watermark(100))));
        w.on_event(0, 300, 1_200);
        assert_eq!(w.poll(1_200), Some(Signal::Advance(Watermark(300))));
        // Both idle now.
        assert_eq!(w.poll(2_200), Some(Signal::Idle));
        assert_eq!(w.poll(2_300), None, "idle is said once");
    }

    #[test]
    fn when_an_idle_partition_returns_behind_then_watermark_never_goes_back() {
        let mut w = PartitionWatermarks::new(0, Some(100));
        w.assignment_known();
        w.add_partition(0, i64::MIN);
        w.add_partition(0, i64::MIN);
        w.on_event(0, 1_000, 150);
        assert_eq!(w.poll(150), Some(Signal::Advance(Watermark(1_000))));
        w.on_event(1, 10, 160);
        assert_eq!(w.poll(160), None);
        w.on_event(1, 2_000, 170);
        w.on_event(0, 3_000, 170);
        assert_eq!(w.poll(170), Some(Signal::Advance(Watermark(2_000))));
    }

    #[test]
    fn when_all_partitions_go_idle_at_once_then_their_watermark_comes_first() {
        let mut w = PartitionWatermarks::new(0, Some(100));
        w.assignment_known();
        w.add_partition(0, i64::MIN);
        w.add_partition(0, i64::MIN);
        w.add_partition(0, i64::MIN);
        // Partitions 0 and 1 deliver at once; partition 2 never does.
        w.on_event(0, 9_900, 0);
        w.on_event(1, 4_900, 0);
        assert_eq!(w.poll(0), None, "partition 2 holds everything back");
        // All three time out together.
        assert_eq!(w.poll(100), Some(Signal::Advance(Watermark(4_900))));
        assert_eq!(w.poll(100), Some(Signal::Idle));
    }

    #[test]
    fn when_instance_owns_no_partition_then_it_is_idle() {
        let mut w = PartitionWatermarks::new(0, None);
        assert_eq!(w.poll(0), None, "not idle before the assignment is known");
        w.assignment_known();
        assert_eq!(w.poll(0), Some(Signal::Idle));
        assert_eq!(w.poll(1), None);
    }

    #[test]
    fn when_restored_then_watermark_resumes_without_going_back() {
        let mut w = PartitionWatermarks::new(10, None);
        assert_eq!(
            w.restore_emitted(490),
            Some(Signal::Advance(Watermark(490)))
        );
        w.assignment_known();
        w.add_partition(0, 500);
        w.add_partition(0, 600);
        assert_eq!(w.poll(0), None, "490 was emitted before the snapshot");
        // A replayed record below the restored highest timestamp does not
        // move the partition back.
        w.on_event(0, 450, 0);
        assert_eq!(w.top_ts(0), 500);
        w.on_event(0, 700, 0);
        assert_eq!(w.poll(0), Some(Signal::Advance(Watermark(590))));
        assert_eq!(w.emitted(), 590);
        assert_eq!(w.restore_emitted(i64::MIN), None);
    }
}
