//! Event-level evaluation of alarms against failures: alarm episodes,
//! failures caught and their lead times, false alarms per machine-day,
//! event precision, k-of-n smoothing and threshold policies.
//!
//! The definitions are documented on [`EventMetrics`], where users look
//! for what the numbers mean.

mod params;
mod policy;
mod result;
mod smoothing;
mod stats;
mod timeline;

use serde::{Deserialize, Serialize};

pub use params::EventParams;
pub use policy::{AlarmPolicy, AlarmThreshold, choose_alarm_threshold};
pub use result::{EventMetrics, ModeMetrics};
pub use smoothing::{Smoothing, SmoothingState, smooth_flags};
pub use stats::{Histogram, LeadTimeStats};

use crate::error::{MetricsError, Result};
use crate::validate::{check_finite, check_same_len};
use timeline::Timeline;

/// One failure of one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Machine id, as in the samples' `machine`.
    pub machine: u32,
    /// When it failed, µs since the epoch.
    pub time: i64,
    /// How it failed, if known (per-mode results use it).
    pub mode: Option<String>,
}

/// One alarm episode of one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmEpisode {
    /// Machine id.
    pub machine: u32,
    /// Time of its first flagged sample: when the alarm rings (µs).
    pub start: i64,
    /// Time of its last flagged sample (µs).
    pub end: i64,
    /// Flagged samples in it.
    pub n_flagged: usize,
}

/// Event metrics of per-sample flags (see [`EventMetrics`] for the definitions).
///
/// # Errors
/// See "Bad input" on [`EventMetrics`]: mismatched lengths, no samples,
/// invalid [`EventParams`].
pub fn evaluate_alarms(
    machine: &[u32],
    time: &[i64],
    flags: &[bool],
    failures: &[Failure],
    params: &EventParams,
) -> Result<EventMetrics> {
    check_same_len("time", time.len(), "flags", flags.len())?;
    let t = Timeline::new(machine, time, failures, params)?;
    let sorted: Vec<bool> = t.order.iter().map(|&i| flags[i]).collect();
    Ok(t.evaluate(&sorted, params))
}

/// Event metrics of scores at a threshold: flagged when `score >= threshold`.
///
/// # Errors
/// See "Bad input" on [`EventMetrics`]: mismatched lengths, no samples,
/// invalid [`EventParams`], non-finite scores, a NaN threshold.
pub fn evaluate_scores(
    machine: &[u32],
    time: &[i64],
    score: &[f64],
    threshold: f64,
    failures: &[Failure],
    params: &EventParams,
) -> Result<EventMetrics> {
    check_scores(time, score, threshold)?;
    let t = Timeline::new(machine, time, failures, params)?;
    Ok(t.evaluate(&t.flags_at(score, threshold), params))
}

/// The alarm episodes of per-sample flags, by machine then start (smoothed
/// first when [`EventParams::smoothing`] is set).
///
/// # Errors
/// See "Bad input" on [`EventMetrics`]: mismatched lengths, no samples,
/// invalid [`EventParams`].
pub fn alarm_episodes(
    machine: &[u32],
    time: &[i64],
    flags: &[bool],
    params: &EventParams,
) -> Result<Vec<AlarmEpisode>> {
    check_same_len("time", time.len(), "flags", flags.len())?;
    let t = Timeline::new(machine, time, &[], params)?;
    let sorted: Vec<bool> = t.order.iter().map(|&i| flags[i]).collect();
    Ok(t.episodes(&sorted, params).into_iter().flatten().collect())
}

pub(crate) fn check_scores(time: &[i64], score: &[f64], threshold: f64) -> Result<()> {
    check_same_len("time", time.len(), "score", score.len())?;
    check_finite("score", score)?;
    if threshold.is_nan() {
        return Err(MetricsError::InvalidParameter {
            name: "threshold",
            reason: "is NaN".into(),
        });
    }
    Ok(())
}
