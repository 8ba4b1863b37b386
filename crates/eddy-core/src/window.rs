//! Window definitions and window results.

use std::time::Duration;

/// How to group events into windows by event time.
///
/// Windows are half-open, `[start, end)`, in milliseconds. A window is emitted
/// when the watermark reaches its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowDefinition {
    /// The kind and size of the windows.
    pub kind: WindowKind,
    /// When set, windows that are still open emit their current result this
    /// often (in wall-clock time), marked as early.
    pub early_results_period_ms: Option<u64>,
}

/// The kinds of windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Windows of `size_ms`, each starting where the previous ended.
    Tumbling {
        /// Window length.
        size_ms: i64,
    },
    /// Windows of `size_ms`, one starting every `slide_ms`; `size_ms` is a
    /// multiple of `slide_ms`. Kept as frames of `slide_ms`.
    Sliding {
        /// Window length.
        size_ms: i64,
        /// Distance between window starts.
        slide_ms: i64,
    },
    /// Per key, events closer than `gap_ms` to each other form one session;
    /// a session ends `gap_ms` after its last event.
    Session {
        /// Inactivity that closes a session.
        gap_ms: i64,
    },
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl WindowDefinition {
    /// Tumbling windows of the given size.
    pub fn tumbling(size: Duration) -> Self {
        WindowDefinition {
            kind: WindowKind::Tumbling {
                size_ms: millis(size),
            },
            early_results_period_ms: None,
        }
    }

    /// Sliding windows of `size`, sliding by `slide`.
    pub fn sliding(size: Duration, slide: Duration) -> Self {
        WindowDefinition {
            kind: WindowKind::Sliding {
                size_ms: millis(size),
                slide_ms: millis(slide),
            },
            early_results_period_ms: None,
        }
    }

    /// Session windows closed by `gap` of inactivity.
    pub fn session(gap: Duration) -> Self {
        WindowDefinition {
            kind: WindowKind::Session {
                gap_ms: millis(gap),
            },
            early_results_period_ms: None,
        }
    }

    /// Emit the current result of open windows every `period` of wall time.
    pub fn with_early_results(mut self, period: Duration) -> Self {
        self.early_results_period_ms = Some(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Checks the definition; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind {
            WindowKind::Tumbling { size_ms } if size_ms <= 0 => {
                Err("tumbling window size must be at least 1 ms".into())
            }
            WindowKind::Sliding { size_ms, slide_ms } if slide_ms <= 0 || size_ms <= 0 => {
                Err("sliding window size and slide must be at least 1 ms".into())
            }
            WindowKind::Sliding { size_ms, slide_ms } if size_ms % slide_ms != 0 => Err(format!(
                "sliding window size ({size_ms} ms) must be a multiple of the slide ({slide_ms} ms)"
            )),
            WindowKind::Session { gap_ms } if gap_ms <= 0 => {
                Err("session window gap must be at least 1 ms".into())
            }
            _ => Ok(()),
        }
    }

    /// Frame length and window length for frame-based windows (tumbling and
    /// sliding); `None` for session windows.
    pub fn frames(&self) -> Option<(i64, i64)> {
        match self.kind {
            WindowKind::Tumbling { size_ms } => Some((size_ms, size_ms)),
            WindowKind::Sliding { size_ms, slide_ms } => Some((slide_ms, size_ms)),
            WindowKind::Session { .. } => None,
        }
    }
}

/// The end of the frame holding `ts`: frames are `[end - frame_ms, end)`,
/// aligned to multiples of `frame_ms` since the epoch.
#[inline]
pub fn frame_end(ts: i64, frame_ms: i64) -> i64 {
    ts.div_euclid(frame_ms) * frame_ms + frame_ms
}

/// The result of a window for one key.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct WindowResult<K, R> {
    /// Window start (inclusive), ms.
    pub start: i64,
    /// Window end (exclusive), ms.
    pub end: i64,
    /// The grouping key.
    pub key: K,
    /// The aggregate result.
    pub value: R,
    /// True for an early (partial) result of a window still open.
    pub is_early: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_ts_negative_then_frame_end_still_above_ts() {
        assert_eq!(frame_end(-1, 10), 0);
        assert_eq!(frame_end(0, 10), 10);
        assert_eq!(frame_end(9, 10), 10);
        assert_eq!(frame_end(10, 10), 20);
    }

    #[test]
    fn when_size_not_multiple_of_slide_then_validation_names_both() {
        let err = WindowDefinition::sliding(Duration::from_millis(10), Duration::from_millis(3))
            .validate()
            .unwrap_err();
        assert!(err.contains("10 ms") && err.contains("3 ms"), "{err}");
    }
}
