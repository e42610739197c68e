//! The pipeline's hyper-parameter search: TPE over the reference search space
//! of the Random Forest, scored by the best validation F1 over thresholds, with
//! median pruning on a quarter-size forest, and one tracked child run per trial.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;
use vigil_features::TrainingSet;
use vigil_forest::{MaxFeatures, MaxSamples, RandomForestParams};
use vigil_metrics::best_threshold_f1;
use vigil_tracking_client::{ActiveRun, RunStatus};
use vigil_tuning::{
    Direction, FrozenTrial, MedianPruner, ObjectiveError, ParamValue, Study, Trial, TrialState,
    TuningError,
};

use crate::bundle::failure_probability;
use crate::error::PipelineError;
use crate::evaluation::named_samples;
use crate::train::{Progress, ProgressFn, TrainConfig, truncate};

/// How the trials of a study ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TrialCounts {
    /// Trials that ran to the end.
    pub complete: usize,
    /// Trials stopped early by the pruner.
    pub pruned: usize,
    /// Trials whose objective failed.
    pub failed: usize,
}

impl TrialCounts {
    /// Counts the final states of `trials`.
    pub fn of(trials: &[Arc<FrozenTrial>]) -> TrialCounts {
        let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
        TrialCounts {
            complete: count(TrialState::Complete),
            pruned: count(TrialState::Pruned),
            failed: count(TrialState::Fail),
        }
    }

    /// All trials that finished, in any state.
    pub fn total(&self) -> usize {
        self.complete + self.pruned + self.failed
    }
}

/// What tuning found.
#[derive(Debug)]
pub struct Tuning {
    /// Best parameters.
    pub best_params: BTreeMap<String, ParamValue>,
    /// Best validation F1.
    pub best_value: f64,
    /// The threshold maximising validation F1 for the best parameters.
    pub best_threshold: f64,
    /// How the trials ended.
    pub counts: TrialCounts,
    /// Every trial.
    pub trials: Vec<Arc<FrozenTrial>>,
}

/// The training and validation rows a study scores its trials on.
#[derive(Debug, Clone, Copy)]
pub struct TuningData<'a> {
    /// Rows the trial forests are fitted on.
    pub train: &'a TrainingSet,
    /// Rows the trial forests are scored on.
    pub validation: &'a TrainingSet,
}

/// Suggests the reference search space.
fn suggest(trial: &mut Trial<'_>) -> Result<(), TuningError> {
    trial.suggest_int("n_estimators", 50, 300)?;
    trial.suggest_int("max_depth", 3, 20)?;
    trial.suggest_int("min_samples_split", 2, 20)?;
    trial.suggest_int("min_samples_leaf", 1, 10)?;
    trial.suggest_categorical("max_features", &["sqrt", "log2"])?;
    Ok(())
}

/// Turns the tuned parameters into forest parameters.
pub fn forest_params(
    params: &BTreeMap<String, ParamValue>,
    config: &TrainConfig,
) -> Result<RandomForestParams, PipelineError> {
    let int = |name: &str| -> Result<usize, PipelineError> {
        params
            .get(name)
            .and_then(|v| v.as_i64())
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| PipelineError::Invalid(format!("tuned parameter {name} is missing")))
    };
    let max_features = match params.get("max_features").and_then(|v| v.as_str()) {
        Some("log2") => MaxFeatures::Log2,
        Some("sqrt") => MaxFeatures::Sqrt,
        other => {
            return Err(PipelineError::Invalid(format!(
                "tuned parameter max_features is {other:?}"
            )));
        }
    };
    let params = RandomForestParams {
        n_estimators: int("n_estimators")?,
        max_depth: Some(int("max_depth")?),
        min_samples_split: int("min_samples_split")?,
        min_samples_leaf: int("min_samples_leaf")?,
        max_features,
        max_samples: config.max_samples_per_tree.map(MaxSamples::Count),
        seed: config.seed,
        ..Default::default()
    };
    params.validate()?;
    Ok(params)
}

/// Builds the study the pipeline runs: TPE seeded from the config, maximising
/// validation F1, with median pruning when the config asks for it.
fn new_study(config: &TrainConfig) -> Result<Study, PipelineError> {
    let mut builder = Study::builder()
        .name("random_forest_f1")
        .direction(Direction::Maximize)
        .seed(config.seed);
    if config.pruning {
        builder = builder.pruner(MedianPruner {
            n_startup_trials: 5,
            n_warmup_steps: 0,
            ..Default::default()
        });
    }
    Ok(builder.build()?)
}

/// Reports each finished trial and stops the study when the job is asked to stop.
fn watch_trials(study: &Study, config: &TrainConfig, progress: &ProgressFn) {
    let p = Arc::clone(progress);
    let stop = Arc::clone(&config.stop);
    let n_trials = config.n_trials;
    study.add_callback(move |study, trial| {
        if stop.load(Ordering::SeqCst) {
            study.stop();
        }
        p(Progress::Trial {
            number: trial.number,
            of: n_trials,
            state: trial.state,
            value: trial.value,
            best: study.best_value().ok(),
        })
    });
}

/// Runs the study: `config.n_trials` trials, each tracked as a child of `parent`.
pub fn tune(
    config: &TrainConfig,
    data: TuningData<'_>,
    parent: &ActiveRun,
    progress: &ProgressFn,
) -> Result<Tuning, PipelineError> {
    tune_scored(config, parent, progress, &|params| {
        fit_and_score(params, data)
    })
}

/// How a trial's forest parameters are scored: the best validation F1 over
/// thresholds and that threshold.
pub(crate) type ScoreFn<'a> =
    &'a (dyn Fn(&RandomForestParams) -> Result<(f64, f64), PipelineError> + Sync);

/// [`tune`] with the fit-and-score step given: the streamed fleet path fits
/// on bin codes instead of a [`TrainingSet`].
pub(crate) fn tune_scored(
    config: &TrainConfig,
    parent: &ActiveRun,
    progress: &ProgressFn,
    score: ScoreFn<'_>,
) -> Result<Tuning, PipelineError> {
    let study = new_study(config)?;
    watch_trials(&study, config, progress);
    study.optimize(config.n_trials, None, |trial| {
        suggest(trial)?;
        tracked_trial(trial, config, score, parent)
    })?;
    if config.stop.load(Ordering::SeqCst) {
        return Err(PipelineError::Interrupted { stage: "tuning" });
    }
    best_of(&study)
}

/// One trial as a child run: its parameters, value and final state are logged.
fn tracked_trial(
    trial: &mut Trial<'_>,
    config: &TrainConfig,
    score: ScoreFn<'_>,
    parent: &ActiveRun,
) -> Result<f64, ObjectiveError> {
    let params = trial.params();
    let child = parent
        .start_child(&format!("trial-{}", trial.number()))
        .map_err(|e| ObjectiveError::msg(e.to_string()))?;
    let result = run_trial(trial, &params, config, score);
    log_trial(&child, &params, trial, &result);
    let status = match &result {
        Ok(_) | Err(ObjectiveError::Pruned) => RunStatus::Finished,
        Err(_) => RunStatus::Failed,
    };
    child
        .end(status)
        .map_err(|e| ObjectiveError::msg(e.to_string()))?;
    result
}

/// The best trial's parameters, value and threshold, and how all trials ended.
fn best_of(study: &Study) -> Result<Tuning, PipelineError> {
    let trials: Vec<Arc<FrozenTrial>> = study.trials()?.iter().cloned().collect();
    let counts = TrialCounts::of(&trials);
    let best = study.best_trial().map_err(|_| {
        PipelineError::Invalid(format!(
            "no tuning trial completed ({} pruned, {} failed)",
            counts.pruned, counts.failed
        ))
    })?;
    let best_threshold = best
        .user_attrs
        .get("threshold")
        .and_then(|v| v.as_f64())
        .ok_or_else(|| PipelineError::Invalid("best trial has no threshold".into()))?;
    Ok(Tuning {
        best_params: best.param_values(),
        best_value: best.value.unwrap_or(f64::NAN),
        best_threshold,
        counts,
        trials,
    })
}

/// One trial: with pruning on, a quarter of the trees first (step 0), then
/// the whole forest (step 1). The value is the best F1 on validation over
/// thresholds; that threshold is kept as a user attribute.
fn run_trial(
    trial: &mut Trial<'_>,
    params: &BTreeMap<String, ParamValue>,
    config: &TrainConfig,
    score: ScoreFn<'_>,
) -> Result<f64, ObjectiveError> {
    let to_obj = |e: PipelineError| ObjectiveError::msg(e.to_string());
    let full = forest_params(params, config).map_err(to_obj)?;
    if config.pruning {
        let quick = RandomForestParams {
            n_estimators: (full.n_estimators / 4).max(10),
            ..full.clone()
        };
        let (f1, _) = score(&quick).map_err(to_obj)?;
        trial.report(0, f1)?;
        if trial.should_prune()? {
            return Err(ObjectiveError::Pruned);
        }
    }
    let (f1, threshold) = score(&full).map_err(to_obj)?;
    if config.pruning {
        trial.report(1, f1)?;
    }
    trial.set_user_attr("threshold", serde_json::json!(threshold))?;
    Ok(f1)
}

/// Fits on the training rows; returns the best validation F1 and its threshold.
fn fit_and_score(
    params: &RandomForestParams,
    data: TuningData<'_>,
) -> Result<(f64, f64), PipelineError> {
    let x_train = named_samples(&data.train.features)?;
    let x_val = named_samples(&data.validation.features)?;
    let model = params.fit(x_train, &data.train.failure)?;
    let proba = failure_probability(&model, x_val)?;
    let choice = best_threshold_f1(&data.validation.failure, &proba)?;
    Ok((choice.f_score, choice.threshold))
}

/// A parameter value as MLflow shows it (`13`, `log2`).
pub(crate) fn param_text(v: &ParamValue) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    }
}

fn log_trial(
    child: &ActiveRun,
    params: &BTreeMap<String, ParamValue>,
    trial: &Trial<'_>,
    result: &Result<f64, ObjectiveError>,
) {
    // Tracking a trial is best effort: a lost child-run metric must not fail tuning
    // (the client spools what the server could not take).
    let _ = child.log_params(params.iter().map(|(k, v)| (k.clone(), param_text(v))));
    let _ = child.set_tag("vigil.trial_number", trial.number().to_string());
    match result {
        Ok(f1) => {
            let _ = child.log_metric("validation_f1", *f1);
            let _ = child.set_tag("vigil.trial_state", "COMPLETE");
        }
        Err(ObjectiveError::Pruned) => {
            let _ = child.set_tag("vigil.trial_state", "PRUNED");
        }
        Err(e) => {
            let _ = child.set_tag("vigil.trial_state", "FAIL");
            let _ = child.set_tag("vigil.error", truncate(&e.to_string(), 4000));
        }
    }
}
