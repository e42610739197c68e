//! Choosing an alarm threshold on a validation split under a policy.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::params::EventParams;
use super::result::EventMetrics;
use super::timeline::Timeline;
use super::{Failure, check_scores};
use crate::error::{MetricsError, Result};
use crate::ranking::best_threshold_f1;
use crate::sort::{key, radix_sort, unkey};

/// How to choose the alarm threshold. Parses from and prints as `f1`,
/// `false-alarm-budget=<B>` and `recall=<R>` (JSON stores that string).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum AlarmPolicy {
    /// The threshold maximising sample-level F1 against horizon labels
    /// derived from the failures ([`best_threshold_f1`]). The default.
    #[default]
    F1,
    /// At most this many false alarms per machine-day (`>= 0`): among the
    /// thresholds meeting it, the one catching the most failures, the lowest
    /// on ties. Always met: a threshold of +∞ raises no alarm.
    FalseAlarmBudget(f64),
    /// Catch at least this share of the observed failures (in `[0, 1]`): the
    /// highest threshold that does; when none does, the one catching the most
    /// (the highest on ties), with `constraint_met = false`.
    Recall(f64),
}

impl AlarmPolicy {
    /// Checks the budget is finite and `>= 0`, the recall in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|reason| MetricsError::InvalidAlarmPolicy {
                input: self.to_string(),
                reason: reason.into(),
            })
    }

    fn check(&self) -> std::result::Result<(), &'static str> {
        match *self {
            Self::FalseAlarmBudget(b) if !(b.is_finite() && b >= 0.0) => {
                Err("the false-alarm budget must be a finite number >= 0")
            }
            Self::Recall(r) if !(0.0..=1.0).contains(&r) => Err("the recall must lie in [0, 1]"),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for AlarmPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F1 => f.write_str("f1"),
            Self::FalseAlarmBudget(b) => write!(f, "false-alarm-budget={b}"),
            Self::Recall(r) => write!(f, "recall={r}"),
        }
    }
}

impl FromStr for AlarmPolicy {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self> {
        let err = |reason: String| MetricsError::InvalidAlarmPolicy {
            input: s.to_owned(),
            reason,
        };
        let (name, value) = match s.trim().split_once('=') {
            None => (s.trim(), None),
            Some((n, v)) => (n.trim(), Some(v.trim())),
        };
        let number = |v: Option<&str>| {
            let v = v.ok_or_else(|| err(format!("{name} needs a value: {name}=<number>")))?;
            v.parse::<f64>()
                .map_err(|e| err(format!("{v:?} is not a number: {e}")))
        };
        let policy = match name {
            "f1" if value.is_none() => Self::F1,
            "f1" => return Err(err("f1 takes no value".into())),
            "false-alarm-budget" => Self::FalseAlarmBudget(number(value)?),
            "recall" => Self::Recall(number(value)?),
            other => {
                return Err(err(format!(
                    "unknown policy {other:?}; expected f1, false-alarm-budget=<B> or recall=<R>"
                )));
            }
        };
        policy.check().map_err(|reason| err(reason.into()))?;
        Ok(policy)
    }
}

impl From<AlarmPolicy> for String {
    fn from(p: AlarmPolicy) -> Self {
        p.to_string()
    }
}

impl TryFrom<String> for AlarmPolicy {
    type Error = MetricsError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// A threshold chosen under a policy, and the event metrics at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmThreshold {
    /// The policy.
    pub policy: AlarmPolicy,
    /// Alarm when `score >= threshold`; +∞ (`"inf"` in JSON) raises none.
    #[serde(with = "crate::serde_f64")]
    pub threshold: f64,
    /// Whether the threshold meets the policy's constraint (always for `f1`
    /// and the budget).
    pub constraint_met: bool,
    /// Thresholds evaluated (1 for `f1`).
    pub candidates: usize,
    /// The event metrics at `threshold`.
    pub metrics: EventMetrics,
}

/// Chooses the alarm threshold under `policy` on validation samples (see
/// [`evaluate_scores`](super::evaluate_scores) for the inputs).
///
/// The budget and recall policies try candidate thresholds: every distinct
/// score when there are fewer than [`EventParams::max_candidates`], else at
/// most that many minus one distinct scores, half evenly spaced by rank
/// (lowest and highest included) and half crowding the highest scores
/// (rank offsets from the top halving 20 times), plus +∞. The search is
/// deterministic; with more distinct scores than candidates the result is
/// the best *candidate*, not necessarily the best of all scores. Samples are sorted once; each candidate costs one
/// O(n) pass, run in parallel, so the cost is O(n log n + n·candidates) and
/// the result does not depend on the thread count.
///
/// # Errors
/// As [`evaluate_scores`](super::evaluate_scores); an invalid policy
/// ([`MetricsError::InvalidAlarmPolicy`]); for `recall=<R>` without any
/// observed failure, [`MetricsError::NoObservedFailures`]; for `f1` without
/// any sample in a failure's horizon, [`MetricsError::SingleClass`].
pub fn choose_alarm_threshold(
    machine: &[u32],
    time: &[i64],
    score: &[f64],
    failures: &[Failure],
    params: &EventParams,
    policy: AlarmPolicy,
) -> Result<AlarmThreshold> {
    policy.validate()?;
    check_scores(time, score, 0.0)?;
    let t = Timeline::new(machine, time, failures, params)?;
    let (threshold, constraint_met, candidates, metrics) = match policy {
        AlarmPolicy::F1 => {
            let sorted: Vec<f64> = t.order.iter().map(|&i| score[i]).collect();
            let th = best_threshold_f1(&t.horizon_labels(), &sorted)?.threshold;
            (th, true, 1, t.evaluate(&t.flags_at(score, th), params))
        }
        AlarmPolicy::FalseAlarmBudget(b) => {
            let tried = try_candidates(&t, score, params);
            let n = tried.len();
            let (th, m) = pick_budget(tried, b);
            (th, true, n, m)
        }
        AlarmPolicy::Recall(r) => {
            let tried = try_candidates(&t, score, params);
            let n = tried.len();
            let (th, met, m) = pick_recall(tried, r)?;
            (th, met, n, m)
        }
    };
    Ok(AlarmThreshold {
        policy,
        threshold,
        constraint_met,
        candidates,
        metrics,
    })
}

/// Candidate thresholds, ascending, +∞ last, with their metrics.
fn try_candidates(
    t: &Timeline<'_>,
    score: &[f64],
    params: &EventParams,
) -> Vec<(f64, EventMetrics)> {
    let mut keys: Vec<u64> = score.iter().map(|&s| key(s)).collect();
    radix_sort(&mut keys);
    keys.dedup();
    let mut thresholds: Vec<f64> = candidate_ranks(keys.len(), params.max_candidates - 1)
        .into_iter()
        .map(|r| unkey(keys[r]))
        .collect();
    thresholds.push(f64::INFINITY);
    // In (machine, time) order once, so each pass reads scores sequentially.
    let sorted: Vec<f64> = t.order.iter().map(|&i| score[i]).collect();
    thresholds
        .into_par_iter()
        .map(|th| {
            let flags: Vec<bool> = sorted.iter().map(|&s| s >= th).collect();
            (th, t.evaluate(&flags, params))
        })
        .collect()
}

/// At most `room` ranks of `len` sorted distinct scores: all when they fit,
/// else half evenly spaced (lowest and highest included) and half crowding
/// the top, `last - last / 2^(20 j / m)` for `j < m`: alarm thresholds
/// usually sit among the highest scores, where even spacing is coarse.
fn candidate_ranks(len: usize, room: usize) -> Vec<usize> {
    if len <= room {
        return (0..len).collect();
    }
    let last = len - 1;
    let even = room / 2;
    let top = room - even;
    let mut ranks: Vec<usize> = (0..even).map(|i| i * last / (even - 1).max(1)).collect();
    ranks.extend((0..top).map(|j| {
        let offset = last as f64 * 0.5f64.powf(1.0 + 20.0 * j as f64 / top as f64);
        last - (offset.round() as usize).min(last)
    }));
    ranks.sort_unstable();
    ranks.dedup();
    ranks
}

/// `tried` ends with +∞, which raises no alarm and so meets any budget.
fn pick_budget(mut tried: Vec<(f64, EventMetrics)>, budget: f64) -> (f64, EventMetrics) {
    let mut best: Option<usize> = None;
    for (i, (_, m)) in tried.iter().enumerate() {
        let better = best.is_none_or(|b| m.failures_caught > tried[b].1.failures_caught);
        if m.false_alarms_per_machine_day <= budget && better {
            best = Some(i);
        }
    }
    let i = best.unwrap_or(tried.len() - 1);
    tried.swap_remove(i)
}

/// `tried` is ascending and not empty.
fn pick_recall(
    mut tried: Vec<(f64, EventMetrics)>,
    recall: f64,
) -> Result<(f64, bool, EventMetrics)> {
    let last = tried.len() - 1;
    if tried[last].1.failures_total == 0 {
        let unobserved = tried[last].1.failures_unobserved;
        return Err(MetricsError::NoObservedFailures { unobserved });
    }
    let mut most = last;
    for i in (0..=last).rev() {
        let m = &tried[i].1;
        if m.recall >= recall {
            let (th, m) = tried.swap_remove(i);
            return Ok((th, true, m));
        }
        if m.failures_caught > tried[most].1.failures_caught {
            most = i;
        }
    }
    let (th, m) = tried.swap_remove(most);
    Ok((th, false, m))
}

#[cfg(test)]
mod tests {
    use super::candidate_ranks;

    #[test]
    fn candidate_ranks_are_bounded_and_crowd_the_top() {
        assert_eq!(candidate_ranks(5, 255), vec![0, 1, 2, 3, 4]);
        for (len, room) in [(1_000_000, 255), (300, 255), (10_000, 9), (50, 1)] {
            let r = candidate_ranks(len, room);
            assert!(
                !r.is_empty() && r.len() <= room,
                "{len} {room}: {}",
                r.len()
            );
            assert!(r.windows(2).all(|w| w[0] < w[1]));
            assert!(*r.last().unwrap_or(&len) < len);
            if room >= 4 {
                assert_eq!((r[0], r[r.len() - 1]), (0, len - 1));
            }
        }
        let r = candidate_ranks(1_000_000, 255);
        assert_eq!(r[0], 0);
        // The top 1% of ranks gets far more than 1% of the candidates.
        let top = r.iter().filter(|&&x| x >= 990_000).count();
        assert!(top > 50, "{top}");
    }
}
