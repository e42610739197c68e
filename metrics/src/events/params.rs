//! The knobs of the event-level evaluation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::smoothing::Smoothing;
use crate::error::{MetricsError, Result};

/// Parameters of the event-level evaluation. Durations are converted to the
/// microseconds the sample times are given in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventParams {
    /// How long before a failure an alarm must start to catch it; also how
    /// long after an alarm starts a failure must come for the alarm to be a
    /// true one. Default 30 minutes (the label horizon). Must be positive.
    pub horizon: Duration,
    /// Flagged samples of one machine at most this far apart belong to the same
    /// alarm episode, even with unflagged samples between them. Default 2 minutes.
    pub merge_gap: Duration,
    /// An interval between consecutive samples of a machine counts as
    /// monitored time when it is at most this long; longer ones are telemetry
    /// gaps, left out of the false-alarm denominator. Default 10 minutes.
    /// Must be positive.
    pub max_monitoring_gap: Duration,
    /// Optional k-of-n smoothing of the flags before episodes are formed.
    /// Default `None` (every flagged sample counts).
    pub smoothing: Option<Smoothing>,
    /// Number of equal-width lead-time histogram bins over `[0, horizon]`.
    /// Default 6 (5-minute bins for the default horizon). 1 to 10 000.
    pub histogram_bins: usize,
    /// The most thresholds an [`AlarmPolicy`](super::AlarmPolicy) search
    /// evaluates, +∞ included: all distinct scores when there are fewer, else
    /// a deterministic subset (see
    /// [`choose_alarm_threshold`](super::choose_alarm_threshold)). Default 256.
    /// At least 2.
    pub max_candidates: usize,
}

impl Default for EventParams {
    fn default() -> Self {
        Self {
            horizon: Duration::from_secs(30 * 60),
            merge_gap: Duration::from_secs(2 * 60),
            max_monitoring_gap: Duration::from_secs(10 * 60),
            smoothing: None,
            histogram_bins: 6,
            max_candidates: 256,
        }
    }
}

/// More bins than this is a mistake, not a histogram.
const MAX_BINS: usize = 10_000;

/// The parameters in microseconds, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Micros {
    pub(crate) horizon: i64,
    pub(crate) merge_gap: i64,
    pub(crate) max_monitoring_gap: i64,
}

fn micros(name: &'static str, d: Duration, positive: bool) -> Result<i64> {
    let us = i64::try_from(d.as_micros()).map_err(|_| MetricsError::InvalidParameter {
        name,
        reason: format!("{d:?} does not fit in i64 microseconds"),
    })?;
    if positive && us <= 0 {
        return Err(MetricsError::InvalidParameter {
            name,
            reason: format!("must be at least 1 microsecond, got {d:?}"),
        });
    }
    Ok(us)
}

impl EventParams {
    /// Checks every field is in its domain (see the field docs).
    pub fn validate(&self) -> Result<()> {
        self.micros().map(|_| ())
    }

    pub(crate) fn micros(&self) -> Result<Micros> {
        let m = Micros {
            horizon: micros("horizon", self.horizon, true)?,
            merge_gap: micros("merge_gap", self.merge_gap, false)?,
            max_monitoring_gap: micros("max_monitoring_gap", self.max_monitoring_gap, true)?,
        };
        if let Some(s) = self.smoothing {
            s.validate()?;
        }
        if !(1..=MAX_BINS).contains(&self.histogram_bins) {
            return Err(MetricsError::InvalidParameter {
                name: "histogram_bins",
                reason: format!("needs 1 to {MAX_BINS} bins, got {}", self.histogram_bins),
            });
        }
        if self.max_candidates < 2 {
            return Err(MetricsError::InvalidParameter {
                name: "max_candidates",
                reason: format!("needs at least 2, got {}", self.max_candidates),
            });
        }
        Ok(m)
    }
}
