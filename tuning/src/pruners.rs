//! Pruners decide from intermediate values whether a trial should stop early.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::Direction;
use crate::error::{Result, TuningError};
use crate::trial::{FrozenTrial, TrialState};

/// Decides whether a running trial should stop, from its intermediate values and the
/// study's history.
pub trait Pruner: Send + Sync + fmt::Debug {
    /// True to prune. `intermediate` holds the current trial's reported values by step.
    fn prune(
        &self,
        direction: Direction,
        trials: &[Arc<FrozenTrial>],
        intermediate: &BTreeMap<u64, f64>,
    ) -> bool;
}

/// Never prunes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NopPruner;

impl Pruner for NopPruner {
    fn prune(&self, _: Direction, _: &[Arc<FrozenTrial>], _: &BTreeMap<u64, f64>) -> bool {
        false
    }
}

/// Prunes a trial whose best intermediate value so far is worse than the median of the
/// completed trials' values at the same step — Optuna's `MedianPruner`, decision for
/// decision.
#[derive(Debug, Clone, PartialEq)]
pub struct MedianPruner {
    /// Completed trials needed before anything is pruned. Default 5.
    pub n_startup_trials: usize,
    /// Steps reported before pruning may start (a step `< n_warmup_steps` never prunes). Default 0.
    pub n_warmup_steps: u64,
    /// Prune only at the first report in each window of this many steps. Default 1.
    pub interval_steps: u64,
    /// Completed trials that must have reported the step for it to count. Default 1.
    pub n_min_trials: usize,
}

impl Default for MedianPruner {
    fn default() -> Self {
        MedianPruner {
            n_startup_trials: 5,
            n_warmup_steps: 0,
            interval_steps: 1,
            n_min_trials: 1,
        }
    }
}

impl MedianPruner {
    /// Check the settings (`interval_steps >= 1`, `n_min_trials >= 1`).
    pub fn validate(&self) -> Result<()> {
        if self.interval_steps < 1 {
            return Err(TuningError::InvalidSetting {
                name: "interval_steps",
                reason: "must be at least 1".into(),
            });
        }
        if self.n_min_trials < 1 {
            return Err(TuningError::InvalidSetting {
                name: "n_min_trials",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// `np.nanpercentile(values, q)` with linear interpolation; NaN when no value is a number.
pub(crate) fn nan_percentile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = (v.len() - 1) as f64 * q / 100.0;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    if lo == hi {
        v[lo]
    } else {
        // numpy's _lerp: a + (b - a) * t, switching form for t >= 0.5.
        let (a, b) = (v[lo], v[hi]);
        let diff = b - a;
        if frac >= 0.5 {
            b - diff * (1.0 - frac)
        } else {
            a + diff * frac
        }
    }
}

impl Pruner for MedianPruner {
    fn prune(
        &self,
        direction: Direction,
        trials: &[Arc<FrozenTrial>],
        intermediate: &BTreeMap<u64, f64>,
    ) -> bool {
        let completed: Vec<&FrozenTrial> = trials
            .iter()
            .map(Arc::as_ref)
            .filter(|t| t.state == TrialState::Complete)
            .collect();
        if completed.is_empty() || completed.len() < self.n_startup_trials {
            return false;
        }
        let Some(&step) = intermediate.keys().next_back() else {
            return false;
        };
        if step < self.n_warmup_steps {
            return false;
        }
        let interval = self.interval_steps.max(1);
        let nearest_lower =
            (step - self.n_warmup_steps) / interval * interval + self.n_warmup_steps;
        let second_last = intermediate.keys().rev().nth(1).map_or(-1, |&s| s as i128);
        if second_last >= nearest_lower as i128 {
            return false;
        }
        let values = intermediate.values().copied().filter(|v| !v.is_nan());
        let best = match direction {
            Direction::Minimize => values.fold(f64::NAN, f64::min),
            Direction::Maximize => values.fold(f64::NAN, f64::max),
        };
        if best.is_nan() {
            return true;
        }
        let at_step: Vec<f64> = completed
            .iter()
            .filter_map(|t| t.intermediate_values.get(&step).copied())
            .collect();
        if at_step.len() < self.n_min_trials.max(1) {
            return false;
        }
        let p = nan_percentile(&at_step, 50.0);
        if p.is_nan() {
            return false;
        }
        match direction {
            Direction::Maximize => best < p,
            Direction::Minimize => best > p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        assert_eq!(nan_percentile(&[1.0, 3.0, f64::NAN, 2.0, 4.0], 50.0), 2.5);
        assert_eq!(nan_percentile(&[5.0], 50.0), 5.0);
        assert!(nan_percentile(&[f64::NAN], 50.0).is_nan());
    }
}
