//! The pipeline's hyper-parameter search: TPE over the reference search space
//! of the Random Forest, scored by the best validation F1 over thresholds, with
//! median pruning on a quarter-size forest, and one tracked child run per trial.
//!
//! # Spread over processes and machines
//!
//! By default the study lives in memory and this process runs every trial. With
//! [`StudyStorage::Postgres`] it lives in vigil-tuning's PostgreSQL storage and
//! any number of worker processes share it: the leader ([`tune`], inside
//! `pipeline --tuning-storage postgres --workers N`) creates the study, starts
//! `N - 1` workers of its own ([`TuningSetup::worker_command`], e.g. its own
//! binary with `--join-study NAME`), and other hosts may join with
//! `pipeline --join-study NAME` ([`join_study`]). Every worker runs trials
//! until the study holds its `n_trials` (the storage caps the count
//! atomically: never more, no trial twice), each trial a child run of the
//! leader's one parent run, with the worker's host and pid as trial user
//! attributes (`worker_host`, `worker_pid`) and run tags. A worker that dies
//! loses only its running trial: its heartbeat stops and another worker (or
//! the leader, while it waits) fails it after the grace period (the leader's,
//! which joiners read from its parent run), and the leader ends that trial's
//! run as FAILED; a failed trial counts toward `n_trials`. The leader waits
//! until every trial is COMPLETE, PRUNED or FAIL, then does the final fit,
//! evaluation and registration once; the parent run finishes with it. A
//! joiner stops after its current trial once the parent run has ended.
//!
//! **Comparable trials.** Each worker loads the same source and computes the
//! same features itself (the features are deterministic), so every trial is
//! fitted and scored on the same rows. A joining worker checks that: the
//! leader records a fingerprint of its training and validation rows and trial
//! settings (seed, rows per tree, pruning) on the parent run
//! (`vigil.tuning_fingerprint`), and a worker whose own differs refuses to
//! run (so run joiners with the leader's `--source`, `--table`, `--seed`,
//! `--max-samples-per-tree` and pruning flags, against the same data).
//!
//! **Reproducibility.** One worker (in memory or on PostgreSQL) runs its
//! trials one after another and is reproducible from the seed. With several,
//! each trial's random stream is still fixed by the seed and the trial
//! number, and a given parameter set always fits the same forest and gets the
//! same F1 (the forests are seeded from the config). TPE's startup trials
//! (those started while fewer than 10 trials have finished) are random draws
//! from that stream, so they propose the same parameters with any number of
//! workers (`tests/tuning_workers.rs` checks it: 6 trials on 3 workers
//! propose those of a one-worker run). What depends on timing: which
//! finished trials TPE sees when it proposes a later trial, which ones the
//! median pruner compares a trial with, and which worker runs which trial;
//! so beyond the startup trials the proposals, the pruning, the best trial
//! and hence the final model can differ from run to run, as in Optuna.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use vigil_features::TrainingSet;
use vigil_forest::{MaxFeatures, MaxSamples, RandomForestParams};
use vigil_metrics::best_threshold_f1;
use vigil_tracking_client::{ActiveRun, RunOptions, RunSearch, RunStatus, Tracker, ViewType};
use vigil_tuning::{
    Direction, FrozenTrial, Heartbeat, MedianPruner, ObjectiveError, ParamValue, PostgresStorage,
    Study, Trial, TrialState, TuningError,
};

mod shared;

pub use shared::{
    DEFAULT_STUDY_SCHEMA, JOIN_WAIT, JoinOutcome, STUDY_HEARTBEAT, StudyStorage, TuningSetup,
    WorkerCommand, WorkerExit, check_study_name, join_study,
};
pub(crate) use shared::{Fnv64, join_study_rows};
use shared::{Workers, announce_study, check_stop, end_orphaned_trial_runs, wait_for_trials};

use crate::bundle::failure_probability;
use crate::error::PipelineError;
use crate::evaluation::named_samples;
use crate::train::{Progress, ProgressFn, Splits, TrainConfig, truncate};

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
    /// How the worker processes this one started ended (empty for one worker).
    pub workers: Vec<WorkerExit>,
}

/// The training and validation rows a study scores its trials on.
#[derive(Debug, Clone, Copy)]
pub struct TuningData<'a> {
    /// Rows the trial forests are fitted on.
    pub train: &'a TrainingSet,
    /// Rows the trial forests are scored on.
    pub validation: &'a TrainingSet,
}

/// What a study's trials are fitted and scored on. Every worker of a shared
/// study must see the same: a worker whose fingerprint differs from the
/// leader's is refused.
pub(crate) trait TrialRows: Sync {
    /// A digest of the rows and of the trial settings in `config`.
    fn fingerprint(&self, config: &TrainConfig) -> String;
    /// Fits a forest with `params` on the training rows; returns the best
    /// validation F1 over thresholds and that threshold.
    fn score(&self, params: &RandomForestParams) -> Result<(f64, f64), PipelineError>;
}

impl TrialRows for TuningData<'_> {
    fn fingerprint(&self, config: &TrainConfig) -> String {
        shared::fingerprint(config, *self)
    }

    fn score(&self, params: &RandomForestParams) -> Result<(f64, f64), PipelineError> {
        fit_and_score(params, *self)
    }
}

impl TrialRows for Splits {
    fn fingerprint(&self, config: &TrainConfig) -> String {
        self.tuning_data().fingerprint(config)
    }

    fn score(&self, params: &RandomForestParams) -> Result<(f64, f64), PipelineError> {
        self.tuning_data().score(params)
    }
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
/// validation F1, with median pruning when the config asks for it; in
/// `storage` (with heartbeats) when one is given, opening it if `join`.
fn new_study(
    config: &TrainConfig,
    name: &str,
    storage: Option<(Arc<PostgresStorage>, Heartbeat)>,
    join: bool,
) -> Result<Study, PipelineError> {
    let mut builder = Study::builder()
        .name(name)
        .direction(Direction::Maximize)
        .seed(config.seed);
    if let Some((storage, heartbeat)) = storage {
        builder = builder
            .shared_storage(storage)
            .load_if_exists(join)
            .heartbeat(heartbeat);
    }
    if config.pruning {
        builder = builder.pruner(MedianPruner {
            n_startup_trials: 5,
            n_warmup_steps: 0,
            ..Default::default()
        });
    }
    Ok(builder.build()?)
}

/// Reports finished trials once each, in any worker: after each trial of
/// this process, every trial of the study that finished since (so a leader
/// also shows its workers' trials); stops the study when the job is asked to
/// stop.
fn watch_trials(
    study: &Study,
    n_trials: usize,
    stop: &Arc<AtomicBool>,
    progress: &ProgressFn,
) -> TrialReporter {
    let reporter = TrialReporter {
        reported: Arc::new(Mutex::new(BTreeSet::new())),
        n_trials,
        progress: Arc::clone(progress),
    };
    let (r, stop) = (reporter.clone(), Arc::clone(stop));
    study.add_callback(move |study, _| {
        if stop.load(Ordering::SeqCst) {
            study.stop();
        }
        r.report_new(study);
    });
    reporter
}

/// Like [`watch_trials`], reporting only the trials this process ran (a
/// joining worker: the leader reports the whole study).
fn watch_own_trials(study: &Study, n_trials: usize, stop: &Arc<AtomicBool>, progress: &ProgressFn) {
    let (p, stop) = (Arc::clone(progress), Arc::clone(stop));
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

/// [`watch_trials`]' memory of which trial numbers were reported.
#[derive(Clone)]
struct TrialReporter {
    reported: Arc<Mutex<BTreeSet<u64>>>,
    n_trials: usize,
    progress: ProgressFn,
}

impl TrialReporter {
    fn report_new(&self, study: &Study) {
        // Progress is best effort: a failed read skips a report, not a trial.
        let Ok(trials) = study.trials() else { return };
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let mut best: Option<f64> = None;
        for trial in trials.iter() {
            if trial.state == TrialState::Complete
                && let Some(v) = trial.value
            {
                best = Some(best.map_or(v, |b| b.max(v)));
            }
            if trial.state.is_finished() && reported.insert(trial.number) {
                (self.progress)(Progress::Trial {
                    number: trial.number,
                    of: self.n_trials,
                    state: trial.state,
                    value: trial.value,
                    best,
                });
            }
        }
    }
}

/// Runs the study: `config.n_trials` trials, each tracked as a child of
/// `parent`; in this process, or shared with worker processes as
/// `config.tuning` says (see the module docs).
pub fn tune(
    config: &TrainConfig,
    data: TuningData<'_>,
    parent: &ActiveRun,
    progress: &ProgressFn,
) -> Result<Tuning, PipelineError> {
    tune_rows(config, &data, parent, progress)
}

/// [`tune`] on any [`TrialRows`]: the streamed fleet path fits on bin codes.
pub(crate) fn tune_rows(
    config: &TrainConfig,
    data: &dyn TrialRows,
    parent: &ActiveRun,
    progress: &ProgressFn,
) -> Result<Tuning, PipelineError> {
    config.tuning.validate()?;
    let runs = TrialRuns::of(parent);
    let objective = |trial: &mut Trial<'_>| {
        suggest(trial)?;
        tracked_trial(trial, config, data, &runs)
    };
    let Some(storage) = config.tuning.storage.open()? else {
        let study = new_study(config, "random_forest_f1", None, false)?;
        watch_trials(&study, config.n_trials, &config.stop, progress);
        study.optimize(config.n_trials, None, objective)?;
        check_stop(config)?;
        return best_of(&study, Vec::new());
    };
    let name = config
        .tuning
        .study_name
        .clone()
        .unwrap_or_else(|| format!("random_forest_f1-{}", parent.run_id()));
    let heartbeat = config.tuning.heartbeat;
    let study = new_study(config, &name, Some((storage, heartbeat)), false)?;
    let reporter = watch_trials(&study, config.n_trials, &config.stop, progress);
    announce_study(parent, config, data, &name)?;
    let mut workers = Workers::start(&config.tuning, &name)?;
    let done = study
        .optimize_until(config.n_trials, None, objective)
        .map_err(PipelineError::from)
        .and_then(|_| wait_for_trials(&study, config, &reporter));
    if let Err(e) = done {
        // Stopped or failed: no worker of ours may go on, nor leave a trial
        // run RUNNING.
        drop(workers);
        let _ = end_orphaned_trial_runs(
            &runs,
            "the leader stopped (or failed) and killed its workers",
        );
        return Err(e);
    }
    let exits = workers.wait(config.tuning.worker_exit_timeout);
    end_orphaned_trial_runs(
        &runs,
        "its worker stopped sending heartbeats (it died or lost the database); \
         the trial was failed",
    )?;
    runs.record_runless_trials(&study.trials()?)?;
    let failed: Vec<String> = exits
        .iter()
        .filter(|w| !w.success)
        .map(|w| format!("pid {}: {}", w.pid, w.status))
        .collect();
    if !failed.is_empty() {
        let _ = parent.set_tag("vigil.tuning_worker_failures", failed.join("; "));
    }
    best_of(&study, exits)
}

/// Where trial runs go: children of one parent run (this process's, or the
/// leader's when joining).
struct TrialRuns<'a> {
    tracker: &'a Tracker,
    experiment_id: String,
    parent_run_id: String,
}

impl<'a> TrialRuns<'a> {
    fn of(parent: &'a ActiveRun) -> Self {
        TrialRuns {
            tracker: parent.tracker(),
            experiment_id: parent.experiment_id().to_string(),
            parent_run_id: parent.run_id().to_string(),
        }
    }

    /// Gives every failed trial without a run (its worker died between
    /// claiming it and creating the run) a FAILED run with the study's
    /// reason, so the experiment shows one run per trial.
    fn record_runless_trials(&self, trials: &[Arc<FrozenTrial>]) -> Result<(), PipelineError> {
        let search = RunSearch::in_experiments([self.experiment_id.clone()])
            .filter(format!(
                "tags.mlflow.parentRunId = '{}'",
                self.parent_run_id
            ))
            .view_type(ViewType::All);
        let named: BTreeSet<String> = self
            .tracker
            .search_all_runs(search)?
            .into_iter()
            .map(|r| r.info.run_name)
            .collect();
        let runless = trials
            .iter()
            .filter(|t| t.state == TrialState::Fail && !named.contains(&trial_run_name(t.number)));
        for trial in runless {
            let attr = |key: &str| match trial.user_attrs.get(key) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "unknown".to_string(),
            };
            let why = format!(
                "its worker (pid {} on {}) was lost before it created the trial's run: {}",
                attr("worker_pid"),
                attr("worker_host"),
                trial.fail_reason.as_deref().unwrap_or("failed")
            );
            let run = self.tracker.start_run(
                RunOptions::new(&self.experiment_id)
                    .name(trial_run_name(trial.number))
                    .parent(&self.parent_run_id)
                    .tag("vigil.worker_host", attr("worker_host"))
                    .tag("vigil.worker_pid", attr("worker_pid"))
                    .tag("vigil.trial_number", trial.number.to_string())
                    .tag("vigil.trial_state", "FAIL")
                    .tag("vigil.error", truncate(&why, 4000)),
            )?;
            run.end(RunStatus::Failed)?;
        }
        Ok(())
    }

    fn start(&self, number: u64, worker: &Worker) -> Result<ActiveRun, PipelineError> {
        Ok(self.tracker.start_run(
            RunOptions::new(&self.experiment_id)
                .name(trial_run_name(number))
                .parent(&self.parent_run_id)
                .tag("vigil.worker_host", &worker.host)
                .tag("vigil.worker_pid", worker.pid.to_string()),
        )?)
    }
}

/// A trial's run name in MLflow.
fn trial_run_name(number: u64) -> String {
    format!("trial-{number}")
}

/// The process running a trial.
struct Worker {
    host: String,
    pid: u32,
}

impl Worker {
    fn this() -> Worker {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_string());
        Worker {
            host,
            pid: std::process::id(),
        }
    }
}

/// One trial as a child run: its parameters, value and final state are
/// logged; the worker's host and pid are trial user attributes.
fn tracked_trial(
    trial: &mut Trial<'_>,
    config: &TrainConfig,
    data: &dyn TrialRows,
    runs: &TrialRuns<'_>,
) -> Result<f64, ObjectiveError> {
    let worker = Worker::this();
    trial.set_user_attr("worker_host", serde_json::json!(worker.host))?;
    trial.set_user_attr("worker_pid", serde_json::json!(worker.pid))?;
    let params = trial.params();
    let child = runs
        .start(trial.number(), &worker)
        .map_err(|e| ObjectiveError::msg(e.to_string()))?;
    let result = run_trial(trial, &params, config, data);
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
fn best_of(study: &Study, workers: Vec<WorkerExit>) -> Result<Tuning, PipelineError> {
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
        workers,
    })
}

/// One trial: with pruning on, a quarter of the trees first (step 0), then
/// the whole forest (step 1). The value is the best F1 on validation over
/// thresholds; that threshold is kept as a user attribute.
fn run_trial(
    trial: &mut Trial<'_>,
    params: &BTreeMap<String, ParamValue>,
    config: &TrainConfig,
    data: &dyn TrialRows,
) -> Result<f64, ObjectiveError> {
    let to_obj = |e: PipelineError| ObjectiveError::msg(e.to_string());
    let full = forest_params(params, config).map_err(to_obj)?;
    if config.pruning {
        let quick = RandomForestParams {
            n_estimators: (full.n_estimators / 4).max(10),
            ..full.clone()
        };
        let (f1, _) = data.score(&quick).map_err(to_obj)?;
        trial.report(0, f1)?;
        if trial.should_prune()? {
            return Err(ObjectiveError::Pruned);
        }
    }
    let (f1, threshold) = data.score(&full).map_err(to_obj)?;
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
