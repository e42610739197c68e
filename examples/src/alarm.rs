//! The alarm rule a model ships with: the threshold its failure probability
//! must reach, chosen on the validation split under an [`AlarmPolicy`], and
//! optional k-of-n [`Smoothing`] of the flags. Evaluation (the pipeline's test
//! split, `evaluate`'s held-out data) and `serve` apply the same rule.
//!
//! Tuning ranks parameters by validation F1 whatever the policy; the policy
//! only moves the threshold of the chosen model. `f1` keeps the best trial's
//! own threshold (sample-level F1 against the labels, as before policies).
//! `false-alarm-budget=B` and `recall=R` refit the best parameters on the
//! training rows (the trial's forest: same seed, same rows) and search the
//! validation split's event metrics with vigil-metrics'
//! [`choose_alarm_threshold`], smoothing included.

use std::time::Duration;

use serde::Serialize;
use vigil_features::TrainingSet;
use vigil_forest::RandomForestParams;
use vigil_metrics::{
    AlarmPolicy, EventMetrics, EventParams, Failure, Smoothing, SmoothingState,
    choose_alarm_threshold,
};

use crate::bundle::failure_probability;
use crate::error::PipelineError;
use crate::evaluation::{delivered_scores, event_params, named_samples};

/// The longest smoothing window: one day of 10-second samples. `serve` keeps
/// this many flags per machine, so the bound is part of its memory bound.
pub const MAX_SMOOTHING_WINDOW: usize = 8_640;

/// Checks a smoothing rule and that its window fits [`MAX_SMOOTHING_WINDOW`].
pub fn check_smoothing(smoothing: Option<Smoothing>) -> Result<(), PipelineError> {
    let Some(s) = smoothing else { return Ok(()) };
    s.validate()?;
    if s.n > MAX_SMOOTHING_WINDOW {
        return Err(PipelineError::Invalid(format!(
            "alarm smoothing {s}: the window of {} samples is longer than the limit of {MAX_SMOOTHING_WINDOW}",
            s.n
        )));
    }
    Ok(())
}

/// The alarm rule chosen for a model, and how it did on validation.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmChoice {
    /// The policy the threshold was chosen under.
    pub policy: AlarmPolicy,
    /// The smoothing applied before episodes are formed.
    pub smoothing: Option<Smoothing>,
    /// Alarm when the failure probability is at least this.
    pub threshold: f64,
    /// Whether the threshold meets the policy's constraint on validation
    /// (a `recall=R` nobody reaches is `false`).
    pub constraint_met: bool,
    /// The event metrics at the threshold on the validation split (not
    /// computed for `f1`, which needs no refit).
    pub validation: Option<EventMetrics>,
}

/// The validation split, the failures it can see, and the label horizon.
#[derive(Debug, Clone, Copy)]
pub struct ValidationEvents<'a> {
    /// The rows the thresholds are tried on.
    pub split: &'a TrainingSet,
    /// Its failures ([`crate::evaluation::split_failures`]).
    pub failures: &'a [Failure],
    /// How far ahead the labels look.
    pub horizon: Duration,
}

/// Chooses the alarm rule: see the module documentation.
/// `f1_threshold` is the best trial's threshold; `train` the rows it was fitted on.
pub fn choose_alarm(
    policy: AlarmPolicy,
    smoothing: Option<Smoothing>,
    f1_threshold: f64,
    (params, train): (&RandomForestParams, &TrainingSet),
    validation: ValidationEvents<'_>,
) -> Result<AlarmChoice, PipelineError> {
    check_smoothing(smoothing)?;
    if policy == AlarmPolicy::F1 {
        return Ok(AlarmChoice {
            policy,
            smoothing,
            threshold: f1_threshold,
            constraint_met: true,
            validation: None,
        });
    }
    let event_rules = alarm_event_params(validation.horizon, smoothing);
    let model = params.fit(named_samples(&train.features)?, &train.failure)?;
    let proba = failure_probability(&model, named_samples(&validation.split.features)?)?;
    let (machine, time, proba) = delivered_scores(&validation.split.features, &proba);
    let chosen = choose_alarm_threshold(
        &machine,
        &time,
        &proba,
        validation.failures,
        &event_rules,
        policy,
    )?;
    if !chosen.threshold.is_finite() {
        return Err(PipelineError::Invalid(format!(
            "alarm policy {policy}: no threshold raises any alarm within it on the validation split \
             (the fewest false alarms any threshold gives is above the budget); raise the budget"
        )));
    }
    Ok(AlarmChoice {
        policy,
        smoothing,
        threshold: chosen.threshold,
        constraint_met: chosen.constraint_met,
        validation: Some(chosen.metrics),
    })
}

/// The episode rules with a model's horizon and smoothing.
pub fn alarm_event_params(horizon: Duration, smoothing: Option<Smoothing>) -> EventParams {
    EventParams {
        smoothing,
        ..event_params(horizon)
    }
}

/// One alarm episode as `serve` reports it (times in µs since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpenEpisode {
    /// When the alarm rang: the episode's first alarmed sample.
    pub started: i64,
    /// The episode's latest alarmed sample.
    pub last_alarm: i64,
    /// Alarmed samples in the episode so far.
    pub alarmed_samples: u64,
}

/// What one sample did to its machine's alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmStatus {
    /// The smoothed flag: k of the machine's last n flags are set.
    pub alarm: bool,
    /// The episode open at the sample: its last alarm at most the merge gap
    /// before the sample (the episodes of [`vigil_metrics::alarm_episodes`]).
    pub episode: Option<OpenEpisode>,
    /// Whether this sample started the episode (the alarm rings now).
    pub rang: bool,
}

/// One machine's alarm as `serve` keeps it: the k-of-n window of its flags
/// and its latest episode. Fed the machine's flags in time order, it gives the
/// same alarms as [`vigil_metrics::smooth_flags`] and the same episodes as
/// [`vigil_metrics::alarm_episodes`] under the same rules.
#[derive(Debug, Clone)]
pub struct MachineAlarm {
    window: SmoothingState,
    merge_gap_micros: i64,
    episode: Option<OpenEpisode>,
    last: Option<AlarmStatus>,
}

impl MachineAlarm {
    /// A machine that has sent nothing yet.
    pub fn new(smoothing: Smoothing, merge_gap: Duration) -> Result<MachineAlarm, PipelineError> {
        check_smoothing(Some(smoothing))?;
        Ok(MachineAlarm {
            window: SmoothingState::new(smoothing)?,
            merge_gap_micros: i64::try_from(merge_gap.as_micros()).unwrap_or(i64::MAX),
            episode: None,
            last: None,
        })
    }

    /// The upper bound of one machine's alarm state in bytes, for a window of `n`.
    pub fn max_bytes(n: usize) -> usize {
        std::mem::size_of::<MachineAlarm>() + n
    }

    /// Takes the machine's next flag (raw: `probability >= threshold`) at `time`.
    pub fn push(&mut self, time: i64, flag: bool) -> AlarmStatus {
        let alarm = self.window.push(flag);
        let open = |e: &OpenEpisode| time.saturating_sub(e.last_alarm) <= self.merge_gap_micros;
        let mut rang = false;
        if alarm {
            match self.episode.as_mut().filter(|e| open(e)) {
                Some(e) => {
                    e.last_alarm = time;
                    e.alarmed_samples += 1;
                }
                None => {
                    rang = true;
                    self.episode = Some(OpenEpisode {
                        started: time,
                        last_alarm: time,
                        alarmed_samples: 1,
                    });
                }
            }
        }
        let status = AlarmStatus {
            alarm,
            episode: self.episode.filter(|e| open(e)),
            rang,
        };
        self.last = Some(status);
        status
    }

    /// The status of the latest sample (what a retry of it is answered with).
    pub fn latest(&self) -> Option<AlarmStatus> {
        self.last
    }
}
