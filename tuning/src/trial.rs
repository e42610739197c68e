//! Trial records ([`FrozenTrial`]), their states, and the live [`Trial`] an objective receives.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::distributions::{Choice, Distribution, ParamValue};
use crate::error::{Result, TuningError};
use crate::samplers::TrialRng;
use crate::study::Study;

/// Where a trial is in its life. Finished states (`Complete`, `Pruned`, `Fail`) are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrialState {
    /// Being evaluated.
    Running,
    /// Finished with a value.
    Complete,
    /// Stopped early by the pruner (its value is the last reported intermediate value).
    Pruned,
    /// The objective returned an error, NaN, or panicked; or its worker died.
    Fail,
    /// Enqueued, not yet claimed by a worker.
    Waiting,
}

impl TrialState {
    /// True for `Complete`, `Pruned` and `Fail`.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TrialState::Complete | TrialState::Pruned | TrialState::Fail
        )
    }

    /// Upper-case name, as exports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Running => "RUNNING",
            TrialState::Complete => "COMPLETE",
            TrialState::Pruned => "PRUNED",
            TrialState::Fail => "FAIL",
            TrialState::Waiting => "WAITING",
        }
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" => TrialState::Running,
            "COMPLETE" => TrialState::Complete,
            "PRUNED" => TrialState::Pruned,
            "FAIL" => TrialState::Fail,
            "WAITING" => TrialState::Waiting,
            _ => return None,
        })
    }
}

/// One suggested parameter: its value, the sampler's internal value, its distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The value the objective received.
    pub value: ParamValue,
    /// Internal representation (the value, or the choice index).
    pub internal: f64,
    /// The distribution it was drawn from.
    pub distribution: Distribution,
}

/// A snapshot of a trial as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrozenTrial {
    /// Storage-wide id.
    pub trial_id: u64,
    /// 0-based position in its study.
    pub number: u64,
    /// Current state.
    pub state: TrialState,
    /// Objective value (set for `Complete`, and for `Pruned` when a finite-or-inf value was reported).
    #[serde(with = "crate::serde_f64::opt")]
    pub value: Option<f64>,
    /// Suggested parameters by name.
    pub params: BTreeMap<String, Param>,
    /// Values reported with [`Trial::report`], by step.
    #[serde(with = "crate::serde_f64::map")]
    pub intermediate_values: BTreeMap<u64, f64>,
    /// Free-form attributes set with [`Trial::set_user_attr`].
    pub user_attrs: BTreeMap<String, serde_json::Value>,
    /// Values fixed by [`Study::enqueue_trial`].
    pub fixed_params: BTreeMap<String, ParamValue>,
    /// The sampler's joint proposal for a running trial (internal values), shown to
    /// other workers so that the constant liar can count it.
    pub pending_params: BTreeMap<String, f64>,
    /// Why the trial failed.
    pub fail_reason: Option<String>,
    /// Unix time (seconds) when it started running.
    pub datetime_start: Option<f64>,
    /// Unix time (seconds) when it finished.
    pub datetime_complete: Option<f64>,
}

impl FrozenTrial {
    pub(crate) fn new(trial_id: u64, number: u64, state: TrialState) -> Self {
        FrozenTrial {
            trial_id,
            number,
            state,
            value: None,
            params: BTreeMap::new(),
            intermediate_values: BTreeMap::new(),
            user_attrs: BTreeMap::new(),
            fixed_params: BTreeMap::new(),
            pending_params: BTreeMap::new(),
            fail_reason: None,
            datetime_start: None,
            datetime_complete: None,
        }
    }

    /// The value of parameter `name`, if suggested.
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        self.params.get(name).map(|p| &p.value)
    }

    /// Parameter values by name.
    pub fn param_values(&self) -> BTreeMap<String, ParamValue> {
        self.params
            .iter()
            .map(|(k, p)| (k.clone(), p.value.clone()))
            .collect()
    }

    /// The largest reported step.
    pub fn last_step(&self) -> Option<u64> {
        self.intermediate_values.keys().next_back().copied()
    }

    /// Seconds between start and finish, when both are known.
    pub fn duration_secs(&self) -> Option<f64> {
        Some(self.datetime_complete? - self.datetime_start?)
    }
}

pub(crate) fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What an objective returns when it does not return a value: pruned, or failed.
///
/// Any `std::error::Error` converts into it with `?` (as a failure), so objectives can
/// propagate their own errors; [`ObjectiveError::msg`] makes one from a message.
#[derive(Debug)]
pub enum ObjectiveError {
    /// The trial was pruned ([`Trial::should_prune`] said so). Its value becomes the
    /// last reported intermediate value.
    Pruned,
    /// The objective failed; the trial is marked `Fail` with this reason.
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

impl ObjectiveError {
    /// A failure with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        ObjectiveError::Failed(message.into().into())
    }
}

impl std::fmt::Display for ObjectiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectiveError::Pruned => write!(f, "trial pruned"),
            ObjectiveError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ObjectiveError {
    fn from(e: E) -> Self {
        ObjectiveError::Failed(Box::new(e))
    }
}

/// What an objective returns: a value, or why there is none.
pub type ObjectiveResult = std::result::Result<f64, ObjectiveError>;

/// A running trial: ask it for parameters (define-by-run), report intermediate values,
/// ask whether to prune.
///
/// Obtained from [`Study::optimize`] (passed to the objective) or [`Study::ask`].
#[derive(Debug)]
pub struct Trial<'s> {
    pub(crate) study: &'s Study,
    pub(crate) trial_id: u64,
    pub(crate) number: u64,
    pub(crate) rng: TrialRng,
    pub(crate) fixed: BTreeMap<String, ParamValue>,
    pub(crate) params: BTreeMap<String, Param>,
    pub(crate) intermediate: BTreeMap<u64, f64>,
    /// History seen by the sampler, fetched once per trial on the first sampled parameter.
    pub(crate) history: Option<Arc<[Arc<FrozenTrial>]>>,
    /// Joint proposal of the sampler (computed lazily) and the space it covers.
    pub(crate) relative: Option<(BTreeMap<String, Distribution>, BTreeMap<String, f64>)>,
}

impl<'s> Trial<'s> {
    /// 0-based number of this trial in its study.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Storage-wide id (what [`Study::tell_by_id`] takes).
    pub fn id(&self) -> u64 {
        self.trial_id
    }

    /// The study this trial belongs to.
    pub fn study(&self) -> &'s Study {
        self.study
    }

    /// Parameters suggested so far.
    pub fn params(&self) -> BTreeMap<String, ParamValue> {
        self.params
            .iter()
            .map(|(k, p)| (k.clone(), p.value.clone()))
            .collect()
    }

    /// A float in `[low, high]`.
    pub fn suggest_float(&mut self, name: &str, low: f64, high: f64) -> Result<f64> {
        let d = Distribution::float(name, low, high)?;
        self.suggest_f64(name, d)
    }

    /// A float in `[low, high]`, sampled and modelled on a log scale (`low > 0`).
    pub fn suggest_float_log(&mut self, name: &str, low: f64, high: f64) -> Result<f64> {
        let d = Distribution::float_log(name, low, high)?;
        self.suggest_f64(name, d)
    }

    /// A float on the grid `low, low + step, …, high` (`step` must divide `high - low`).
    pub fn suggest_float_step(
        &mut self,
        name: &str,
        low: f64,
        high: f64,
        step: f64,
    ) -> Result<f64> {
        let d = Distribution::float_step(name, low, high, step)?;
        self.suggest_f64(name, d)
    }

    /// An int in `[low, high]`.
    pub fn suggest_int(&mut self, name: &str, low: i64, high: i64) -> Result<i64> {
        let d = Distribution::int(name, low, high)?;
        Ok(self.suggest_f64(name, d)?.round() as i64)
    }

    /// An int in `[low, high]` on a log scale (`low > 0`).
    pub fn suggest_int_log(&mut self, name: &str, low: i64, high: i64) -> Result<i64> {
        let d = Distribution::int_log(name, low, high)?;
        Ok(self.suggest_f64(name, d)?.round() as i64)
    }

    /// An int on the grid `low, low + step, …, high`.
    pub fn suggest_int_step(&mut self, name: &str, low: i64, high: i64, step: i64) -> Result<i64> {
        let d = Distribution::int_step(name, low, high, step)?;
        Ok(self.suggest_f64(name, d)?.round() as i64)
    }

    /// One of `choices`, returned as the caller's own type.
    ///
    /// ```
    /// # use vigil_tuning::{Study, Direction};
    /// # let study = Study::builder().direction(Direction::Maximize).build().unwrap();
    /// # let mut trial = study.ask().unwrap();
    /// let max_features: &str = trial.suggest_categorical("max_features", &["sqrt", "log2"])?;
    /// assert!(max_features == "sqrt" || max_features == "log2");
    /// # Ok::<(), vigil_tuning::TuningError>(())
    /// ```
    pub fn suggest_categorical<T>(&mut self, name: &str, choices: &[T]) -> Result<T>
    where
        T: Clone + Into<Choice>,
    {
        let converted: Vec<Choice> = choices.iter().cloned().map(Into::into).collect();
        let d = Distribution::categorical(name, converted)?;
        let index = self.suggest_f64(name, d)? as usize;
        choices.get(index).cloned().ok_or_else(|| {
            TuningError::CorruptStorage(format!("choice index {index} for `{name}`"))
        })
    }

    /// Suggest any distribution; returns the internal value (the value, or the choice index).
    pub fn suggest(&mut self, name: &str, distribution: Distribution) -> Result<ParamValue> {
        let internal = self.suggest_f64(name, distribution.clone())?;
        Ok(distribution.to_external(internal))
    }

    fn suggest_f64(&mut self, name: &str, distribution: Distribution) -> Result<f64> {
        crate::study::suggest(self, name, distribution)
    }

    /// Report an intermediate objective value at `step` (e.g. after a CV fold).
    /// Reporting the same step twice is an error (Optuna ignores it with a warning).
    pub fn report(&mut self, step: u64, value: f64) -> Result<()> {
        if self.intermediate.contains_key(&step) {
            return Err(TuningError::StepReportedTwice {
                trial_id: self.trial_id,
                step,
            });
        }
        self.study
            .storage()
            .set_intermediate(self.trial_id, step, value)?;
        self.intermediate.insert(step, value);
        Ok(())
    }

    /// Whether the study's pruner says to stop this trial now. When it does, return
    /// `Err(ObjectiveError::Pruned)` from the objective.
    pub fn should_prune(&self) -> Result<bool> {
        let trials = self.study.storage().trials(self.study.id())?;
        Ok(self
            .study
            .pruner()
            .prune(self.study.direction(), &trials, &self.intermediate))
    }

    /// Attach a JSON-serialisable attribute (stored with the trial, exported).
    pub fn set_user_attr(&mut self, key: &str, value: serde_json::Value) -> Result<()> {
        self.study
            .storage()
            .set_user_attr(self.trial_id, key, value)
    }
}
