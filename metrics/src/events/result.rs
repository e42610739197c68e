//! What the event-level evaluation reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::params::EventParams;
use super::stats::{Histogram, LeadTimeStats};

const US_PER_DAY: f64 = 86_400e6;

/// Counts gathered while matching alarms and failures.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) total: usize,
    pub(crate) unobserved: usize,
    pub(crate) lead_minutes: Vec<f64>,
    pub(crate) episodes: usize,
    pub(crate) true_alarms: usize,
}

impl Tally {
    pub(crate) fn add_failure(&mut self, lead_minutes: Option<f64>) {
        self.total += 1;
        self.lead_minutes.extend(lead_minutes);
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

/// Event-level results: failures caught, lead times, false alarms.
///
/// Ratios with a zero denominator (recall without observed failures,
/// precision without episodes) are NaN, written `"NaN"` in JSON.
///
/// # Inputs and definitions
///
/// Samples are three parallel slices: `machine` (`u32` ids, e.g. the
/// machine index column of vigil-features' `TelemetryFrame`), `time` (`i64`
/// **microseconds** since the epoch, like that frame's time column) and
/// either `flags` or `score` plus a threshold (a sample is flagged when
/// `score >= threshold`, as in [`ThresholdChoice`](crate::ThresholdChoice)).
/// Samples may come in any order: they are sorted by (machine, time)
/// internally. Duplicate timestamps are kept (input order breaks ties), each
/// counts as a sample, and their zero-length interval adds no monitored time.
///
/// * **Episode**: the flagged samples of one machine, in time order, merged
///   while each is at most [`EventParams::merge_gap`] after the previous
///   flagged one (unflagged samples in between do not split it). It rings at
///   its first sample (`start`). With [`EventParams::smoothing`], the smoothed
///   flags are merged instead.
/// * **Caught failure**: an episode of its machine starts in
///   `[time - horizon, time)`; the lead time is `time - start` of the first
///   such episode. An episode that started before `time - horizon` and is
///   still ringing does not catch it (otherwise one endless alarm would catch
///   every failure); an episode starting in the horizon and lasting past the
///   failure does.
/// * **Observed failure**: its machine has a sample in `[time - horizon,
///   time)`. Only observed failures count in `failures_total`; the others
///   (before or after the data, in a telemetry gap, machines absent from the
///   samples) are counted in `failures_unobserved`, never as missed.
/// * **True / false alarm**: an episode is true when a failure of its machine
///   comes in `(start, start + horizon]` (the mirror of "caught"), false
///   otherwise. Two episodes in one failure's horizon are both true; the lead
///   time comes from the first. Episodes near the end of the data with no
///   failure after them are false alarms.
/// * **Monitored time**: per machine, the sum of the intervals between
///   consecutive samples that are at most [`EventParams::max_monitoring_gap`]
///   long; false alarms per machine-day divide by it.
///
/// Percentiles are NumPy's linear ones; see [`LeadTimeStats`] and [`Histogram`].
///
/// # Bad input
///
/// Never a panic; a typed [`MetricsError`](crate::MetricsError) or the
/// documented handling:
///
/// | Input | Result |
/// |---|---|
/// | `machine`, `time`, `flags` / `score` of different lengths | `LengthMismatch` |
/// | no samples | `EmptyInput` |
/// | a NaN or infinite score | `NonFinite` (with its index) |
/// | a NaN threshold | `InvalidParameter { name: "threshold" }` |
/// | a zero horizon or monitoring gap, a duration beyond `i64` µs, k > n smoothing | `InvalidParameter` (see [`EventParams::validate`]) |
/// | a negative budget, a recall outside `[0, 1]`, an unknown policy | `InvalidAlarmPolicy` |
/// | unsorted samples | sorted by (machine, time) internally |
/// | duplicate timestamps | kept, in input order; zero monitored time between them |
/// | a failure with no sample in its horizon, or of a machine without samples | counted in `failures_unobserved`, not in `failures_total` |
/// | a recall target when no failure is observed | `NoObservedFailures` |
/// | the `f1` policy when no sample is in any failure's horizon | `SingleClass` (from [`best_threshold_f1`](crate::best_threshold_f1)) |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMetrics {
    /// Failures with at least one sample of their machine in
    /// `[time - horizon, time)`: those an alarm could have caught.
    pub failures_total: usize,
    /// Of those, failures with an alarm episode starting in `[time - horizon, time)`.
    pub failures_caught: usize,
    /// Failures left out of `failures_total`: no sample of their machine in
    /// the horizon before them (outside the data, a telemetry gap, or a
    /// machine absent from the samples).
    pub failures_unobserved: usize,
    /// `failures_caught / failures_total`.
    #[serde(with = "crate::serde_f64")]
    pub recall: f64,
    /// Lead times (failure time − start of the first alarm episode in its
    /// horizon) of the caught failures, minutes.
    pub lead_time_minutes: LeadTimeStats,
    /// Their histogram over `[0, horizon]`, minutes.
    pub lead_time_histogram: Histogram,
    /// Alarm episodes.
    pub episodes: usize,
    /// Episodes followed by a failure of their machine within the horizon
    /// after their start.
    pub true_alarms: usize,
    /// The other episodes.
    pub false_alarms: usize,
    /// `true_alarms / episodes`.
    #[serde(with = "crate::serde_f64")]
    pub precision: f64,
    /// Monitored time summed over machines, days (see
    /// [`EventParams::max_monitoring_gap`]).
    pub monitored_machine_days: f64,
    /// `false_alarms / monitored_machine_days`; 0 when both are 0, +∞ when
    /// only the monitored time is.
    #[serde(with = "crate::serde_f64")]
    pub false_alarms_per_machine_day: f64,
    /// The same per failure mode, by mode name; empty when no failure has one.
    pub per_mode: Vec<ModeMetrics>,
}

/// Event-level results restricted to failures of one mode.
///
/// Episodes are not attributed to modes in advance, so `true_alarms` counts
/// the episodes followed (within the horizon) by a failure of this mode and
/// `precision` divides it by all episodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeMetrics {
    /// The failure mode.
    pub mode: String,
    /// Observed failures of this mode.
    pub failures_total: usize,
    /// Of those, caught.
    pub failures_caught: usize,
    /// Unobserved failures of this mode.
    pub failures_unobserved: usize,
    /// `failures_caught / failures_total`.
    #[serde(with = "crate::serde_f64")]
    pub recall: f64,
    /// Lead times of the caught failures of this mode, minutes.
    pub lead_time_minutes: LeadTimeStats,
    /// Episodes followed by a failure of this mode within the horizon.
    pub true_alarms: usize,
    /// `true_alarms / episodes` (all episodes).
    #[serde(with = "crate::serde_f64")]
    pub precision: f64,
}

impl EventMetrics {
    pub(crate) fn from_tallies(
        all: Tally,
        per_mode: BTreeMap<&str, Tally>,
        monitored_us: i128,
        params: &EventParams,
    ) -> Self {
        let days = monitored_us as f64 / US_PER_DAY;
        let false_alarms = all.episodes - all.true_alarms;
        let fa_per_day = match (false_alarms, days > 0.0) {
            (_, true) => false_alarms as f64 / days,
            (0, false) => 0.0,
            (_, false) => f64::INFINITY,
        };
        let horizon_minutes = params.horizon.as_secs_f64() / 60.0;
        let per_mode = per_mode
            .into_iter()
            .map(|(mode, t)| ModeMetrics {
                mode: mode.to_owned(),
                failures_total: t.total,
                failures_caught: t.lead_minutes.len(),
                failures_unobserved: t.unobserved,
                recall: ratio(t.lead_minutes.len(), t.total),
                lead_time_minutes: LeadTimeStats::of(&t.lead_minutes),
                true_alarms: t.true_alarms,
                precision: ratio(t.true_alarms, all.episodes),
            })
            .collect();
        Self {
            failures_total: all.total,
            failures_caught: all.lead_minutes.len(),
            failures_unobserved: all.unobserved,
            recall: ratio(all.lead_minutes.len(), all.total),
            lead_time_minutes: LeadTimeStats::of(&all.lead_minutes),
            lead_time_histogram: Histogram::of(
                &all.lead_minutes,
                params.histogram_bins,
                horizon_minutes,
            ),
            episodes: all.episodes,
            true_alarms: all.true_alarms,
            false_alarms,
            precision: ratio(all.true_alarms, all.episodes),
            monitored_machine_days: days,
            false_alarms_per_machine_day: fa_per_day,
            per_mode,
        }
    }

    /// The headline numbers as MLflow metrics, each name prefixed with
    /// `prefix` (`"test_"` gives `test_failures_caught`, `test_failures_total`,
    /// `test_lead_time_median_minutes`, `test_false_alarms_per_machine_day`,
    /// `test_event_precision`). NaN values are included as they are.
    pub fn mlflow_metrics(&self, prefix: &str) -> Vec<(String, f64)> {
        [
            ("failures_caught", self.failures_caught as f64),
            ("failures_total", self.failures_total as f64),
            ("lead_time_median_minutes", self.lead_time_minutes.median),
            (
                "false_alarms_per_machine_day",
                self.false_alarms_per_machine_day,
            ),
            ("event_precision", self.precision),
        ]
        .into_iter()
        .map(|(name, v)| (format!("{prefix}{name}"), v))
        .collect()
    }
}
