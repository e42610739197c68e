//! The training job: telemetry → features → time-ordered split → Isolation
//! Forest + TPE-tuned Random Forest → evaluation on the test split → tracking
//! and registration.
//!
//! Everything is tracked in one parent run with one child run per tuning
//! trial. A failure at any step ends the parent run as `FAILED` (with the
//! error in the `vigil.error` tag) and registers nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use ndarray::{ArrayView2, Axis};
use serde::Serialize;
use vigil_features::{
    FailureEvent, FeatureSpec, MIN_TRAINING_SAMPLES, QualityConfig, QualityReport, TelemetryFrame,
    TrainingSet, WindowLength, cutoff_at_fraction, events_from_labels,
};
use vigil_forest::{
    Contamination, IsolationForest, IsolationForestParams, RandomForest, RandomForestParams,
};
use vigil_metrics::{AlarmPolicy, ClassificationReport, EventMetrics, EventParams, Smoothing};
use vigil_tracking_client::{ActiveRun, ModelVersion, RunOptions, RunStatus, Tracker};
use vigil_tuning::{FrozenTrial, ParamValue, TrialState};

use crate::alarm::{
    AlarmChoice, ValidationEvents, alarm_event_params, check_smoothing, choose_alarm,
};
use crate::bundle::{BUNDLE_FORMAT_VERSION, BundleMeta, FEATURE_SPEC_FILE, ModelBundle};
use crate::error::PipelineError;
use crate::evaluation::{
    SplitEvaluation, TestScores, evaluate_split, event_metrics, log_event_metrics, named_samples,
    split_failures,
};
use crate::explain::{ShapSummary, shap_summary};
use crate::modes::{
    FailureModeModel, MIN_MODE_EVENTS, ModeEvaluation, ModeFit, ModeReport, evaluate_modes,
    fit_mode_model,
};
use crate::plots;
use crate::source::DataSource;
use crate::tune::{TrialCounts, Tuning, TuningData, TuningSetup, forest_params, param_text, tune};

/// The registered model's name in the reference pipeline.
pub const DEFAULT_MODEL_NAME: &str = "predictive_maintenance_model";
/// The experiment the reference pipeline tracks into.
pub const DEFAULT_EXPERIMENT: &str = "predictive_maintenance";

/// Settings of one training job. `Default` is the reference pipeline.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Tuning trials. Default 20.
    pub n_trials: usize,
    /// Isolation Forest contamination, in (0, 0.5]. Default 0.1.
    pub contamination: f64,
    /// Seed of the tuner and of both forests. Default 42.
    pub seed: u64,
    /// Share of the timeline used for validation (tuning). Default 0.2.
    pub validation_fraction: f64,
    /// Share of the timeline held out for the final test. Default 0.2.
    pub test_fraction: f64,
    /// Rows each tree draws (bootstrap). Telemetry at 10 s is strongly
    /// autocorrelated, so trees on a bounded sample lose little and the
    /// whole search stays fast. `None` draws as many rows as there are.
    /// Default `Some(40_000)`.
    pub max_samples_per_tree: Option<usize>,
    /// Median pruning: each trial is first scored with a quarter of its trees
    /// and stopped there when worse than the median of earlier trials. Default on.
    pub pruning: bool,
    /// Experiment name. Default [`DEFAULT_EXPERIMENT`].
    pub experiment: String,
    /// Registered model name. Default [`DEFAULT_MODEL_NAME`].
    pub model_name: String,
    /// Register the trained model. Default on.
    pub register: bool,
    /// Where reports, plots and the model folder are written. Default `vigil-output`.
    pub output_dir: PathBuf,
    /// The features. Default: the reference 42.
    pub feature_spec: FeatureSpec,
    /// How the alarm threshold is chosen on the validation split (see
    /// [`crate::alarm`]). Default `f1`.
    pub alarm_policy: AlarmPolicy,
    /// Alarm only when k of a machine's last n samples are flagged, in
    /// evaluation and in `serve`. Default off.
    pub alarm_smoothing: Option<Smoothing>,
    /// Test rows (evenly spaced) explained with TreeSHAP for the SHAP summary
    /// plots and `reports/shap_summary.json`; 0 skips them. Default
    /// [`DEFAULT_SHAP_ROWS`](crate::explain::DEFAULT_SHAP_ROWS).
    pub shap_rows: usize,
    /// Where the tuning study lives and how many worker processes share it
    /// ([`crate::tune`]). Default: in memory, this process only.
    pub tuning: TuningSetup,
    /// Set it (e.g. from a SIGTERM handler) to stop the job early: it is checked
    /// before every stage and after every tuning trial. The run then ends as
    /// `KILLED`, nothing is registered, and [`train`] returns
    /// [`PipelineError::Interrupted`]. Default: a flag nobody sets.
    pub stop: Arc<AtomicBool>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            n_trials: 20,
            contamination: 0.1,
            seed: 42,
            validation_fraction: 0.2,
            test_fraction: 0.2,
            max_samples_per_tree: Some(40_000),
            pruning: true,
            experiment: DEFAULT_EXPERIMENT.to_string(),
            model_name: DEFAULT_MODEL_NAME.to_string(),
            register: true,
            output_dir: PathBuf::from("vigil-output"),
            feature_spec: FeatureSpec::default(),
            alarm_policy: AlarmPolicy::F1,
            alarm_smoothing: None,
            shap_rows: crate::explain::DEFAULT_SHAP_ROWS,
            tuning: TuningSetup::default(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl TrainConfig {
    /// Checks the ranges of every setting.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |m: String| Err(PipelineError::Invalid(m));
        if self.n_trials == 0 {
            return bad("n_trials must be at least 1".into());
        }
        self.tuning.validate()?;
        if !(self.contamination > 0.0 && self.contamination <= 0.5) {
            return bad(format!(
                "contamination must be in (0, 0.5], got {}",
                self.contamination
            ));
        }
        let (v, t) = (self.validation_fraction, self.test_fraction);
        if !(v > 0.0 && t > 0.0 && v + t < 0.9) {
            return bad(format!(
                "validation ({v}) and test ({t}) fractions must be positive and leave at least 10% for training"
            ));
        }
        if self.max_samples_per_tree == Some(0) {
            return bad("max_samples_per_tree must be at least 1".into());
        }
        self.feature_spec.validate()?;
        self.alarm_policy.validate()?;
        check_smoothing(self.alarm_smoothing)?;
        Ok(())
    }
}

/// What the job reports while it runs (for progress bars and logs).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Progress {
    /// A stage started.
    Stage(&'static str),
    /// A stage finished, with a one-line summary.
    StageDone {
        /// The stage.
        stage: &'static str,
        /// What it produced.
        summary: String,
        /// Seconds it took.
        seconds: f64,
    },
    /// A tuning trial finished.
    Trial {
        /// Trial number (0-based).
        number: u64,
        /// Trials in total.
        of: usize,
        /// COMPLETE, PRUNED or FAIL.
        state: TrialState,
        /// Its validation F1, if it has one.
        value: Option<f64>,
        /// The best validation F1 so far.
        best: Option<f64>,
    },
    /// Trees of a forest fit finished.
    Trees {
        /// Trees done.
        done: usize,
        /// Trees in total.
        of: usize,
    },
}

/// A progress sink; it may be called from worker threads.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// The result of a training job.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The parent run.
    pub run_id: String,
    /// The experiment.
    pub experiment_id: String,
    /// The registered version, when registration is on.
    pub model_version: Option<ModelVersion>,
    /// The trained model.
    pub bundle: ModelBundle,
    /// Best hyper-parameters.
    pub best_params: BTreeMap<String, ParamValue>,
    /// Best validation F1.
    pub best_validation_f1: f64,
    /// How the tuning trials ended.
    pub trial_counts: TrialCounts,
    /// Scores on the test split.
    pub test: TestScores,
    /// Rows in the train / validation / test splits.
    pub split_rows: SplitSizes,
    /// Seconds per stage, in order.
    pub stage_seconds: Vec<(&'static str, f64)>,
    /// Where the plots, reports and model folder were written.
    pub output_dir: PathBuf,
    /// The classification report on the test split.
    pub report: ClassificationReport,
    /// Where the data came from.
    pub data_description: String,
    /// The failure-mode classifier's training events and test scores, or why
    /// none was trained.
    pub failure_modes: ModeReport,
    /// Failures caught, lead times and false alarms on the test split.
    pub events: EventMetrics,
    /// The alarm rule the model ships with, and how it was chosen.
    pub alarm: AlarmChoice,
    /// The failure model explained on a sample of the test split (`None`
    /// with `shap_rows` 0).
    pub shap: Option<ShapSummary>,
}

/// The file, in [`TrainOutcome::output_dir`], that [`TrainOutcome::write_summary`] writes.
pub const RUN_SUMMARY_FILE: &str = "run_summary.json";

impl TrainOutcome {
    /// What a script needs from a finished run, as JSON: run and version, data,
    /// split sizes, best parameters, trial counts, test scores, threshold and
    /// seconds per stage.
    pub fn summary_json(&self) -> serde_json::Value {
        let stages: serde_json::Map<String, serde_json::Value> = self
            .stage_seconds
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
            .collect();
        let total: f64 = self.stage_seconds.iter().map(|s| s.1).sum();
        // Plain JSON values (`13`, `"log2"`), not the tuner's tagged enum.
        let best_params: serde_json::Map<String, serde_json::Value> = self
            .best_params
            .iter()
            .map(|(k, v)| {
                let plain = match (v.as_i64(), v.as_f64(), v.as_str()) {
                    (Some(i), _, _) => serde_json::json!(i),
                    (None, Some(f), _) => serde_json::json!(f),
                    (None, None, Some(s)) => serde_json::json!(s),
                    _ => serde_json::json!(param_text(v)),
                };
                (k.clone(), plain)
            })
            .collect();
        serde_json::json!({
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "model_version": self.model_version.as_ref().map(|v| &v.version),
            "data": self.data_description,
            "rows": self.split_rows,
            "best_params": best_params,
            "best_validation_f1": self.best_validation_f1,
            "trials": self.trial_counts,
            "threshold": self.bundle.meta.threshold,
            "test": self.test,
            "failure_modes": self.failure_modes,
            "events": self.events,
            "alarm": self.alarm,
            "shap": self.shap.as_ref().map(|s| serde_json::json!({
                "rows": s.rows,
                "expected_value": s.expected_value,
                "top_features": s.top(10),
            })),
            "stage_seconds": stages,
            "total_seconds": total,
        })
    }

    /// Writes [`Self::summary_json`] to `output_dir/run_summary.json` and returns the path.
    pub fn write_summary(&self) -> Result<PathBuf, PipelineError> {
        let path = self.output_dir.join(RUN_SUMMARY_FILE);
        write_json(&path, &self.summary_json())?;
        Ok(path)
    }
}

/// Runs the training job against `tracker`.
pub fn train(
    source: &DataSource,
    config: &TrainConfig,
    tracker: &Tracker,
    progress: ProgressFn,
) -> Result<TrainOutcome, PipelineError> {
    config.validate()?;
    let experiment = tracker.get_or_create_experiment(&config.experiment)?;
    let run_name = format!("train-{}", Utc::now().format("%Y%m%d-%H%M%S"));
    let parent = tracker.start_run(
        RunOptions::new(&experiment.experiment_id)
            .name(&run_name)
            .tag("vigil.job", "train")
            .tag("vigil.data_source", source.kind()),
    )?;
    let result = train_in_run(source, config, tracker, &parent, &progress);
    end_job_run(parent, result)
}

/// Ends a job's parent run by how the job went: FINISHED, or KILLED when it
/// was interrupted and FAILED otherwise, with the error as `vigil.error`.
pub(crate) fn end_job_run<T>(
    parent: ActiveRun,
    result: Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    match result {
        Ok(outcome) => {
            parent.finish()?;
            Ok(outcome)
        }
        Err(e) => {
            // Best effort: the run must not stay RUNNING, whatever failed.
            let _ = parent.set_tag("vigil.error", truncate(&e.to_string(), 4000));
            let status = match e {
                PipelineError::Interrupted { .. } => RunStatus::Killed,
                _ => RunStatus::Failed,
            };
            let _ = parent.end(status);
            Err(e)
        }
    }
}

/// The rows a tuning worker that joins another pipeline's study fits and
/// scores trials on ([`crate::tune::join_study`]): `source` loaded, its
/// features computed and split exactly as [`train`] does.
pub fn tuning_splits(
    source: &DataSource,
    config: &TrainConfig,
    progress: &ProgressFn,
) -> Result<Splits, PipelineError> {
    let mut stages = Stages::new(config, progress);
    let loaded = stages.load(source)?;
    let set = stages.run("features", || build_features(&loaded.frame, config))?;
    Splits::by_time(&set, config, label_horizon_minutes(source))
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

struct Stages {
    seconds: Vec<(&'static str, f64)>,
    progress: ProgressFn,
    stop: Arc<AtomicBool>,
}

impl Stages {
    fn new(config: &TrainConfig, progress: &ProgressFn) -> Self {
        Stages {
            seconds: Vec::new(),
            progress: Arc::clone(progress),
            stop: Arc::clone(&config.stop),
        }
    }

    /// The "load" stage: `source` read whole.
    fn load(&mut self, source: &DataSource) -> Result<crate::source::Loaded, PipelineError> {
        self.run("load", || {
            let loaded = source.load()?;
            let summary = loaded.description.clone();
            Ok((loaded, summary))
        })
    }

    fn run<T>(
        &mut self,
        stage: &'static str,
        f: impl FnOnce() -> Result<(T, String), PipelineError>,
    ) -> Result<T, PipelineError> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(PipelineError::Interrupted { stage });
        }
        (self.progress)(Progress::Stage(stage));
        let started = Instant::now();
        let (value, summary) = f()?;
        let seconds = started.elapsed().as_secs_f64();
        self.seconds.push((stage, seconds));
        (self.progress)(Progress::StageDone {
            stage,
            summary,
            seconds,
        });
        Ok(value)
    }
}

/// Rows in each split of the time-ordered split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SplitSizes {
    /// Rows the trial forests are fitted on.
    pub train: usize,
    /// Rows tuning scores trials on.
    pub validation: usize,
    /// Rows held out for the final evaluation.
    pub test: usize,
}

/// The time-ordered split: train | validation | test, each separated from the
/// next by an embargo of one label horizon, so that no label looks into a later split.
#[derive(Debug)]
pub struct Splits {
    /// The oldest rows.
    pub train: TrainingSet,
    /// The rows after the training rows.
    pub validation: TrainingSet,
    /// Train and validation together (the final model's rows); it ends one
    /// embargo before the test split.
    pub train_validation: TrainingSet,
    /// The newest rows.
    pub test: TrainingSet,
}

impl Splits {
    /// The rows tuning fits and scores its trials on.
    pub fn tuning_data(&self) -> TuningData<'_> {
        TuningData {
            train: &self.train,
            validation: &self.validation,
        }
    }

    /// Splits `set` at the configured fractions of its timeline.
    pub fn by_time(
        set: &TrainingSet,
        config: &TrainConfig,
        horizon_minutes: f64,
    ) -> Result<Splits, PipelineError> {
        let embargo = WindowLength::seconds((horizon_minutes * 60.0).round() as i64);
        let time = &set.features.time;
        let test_cut = cutoff_at_fraction(time, 1.0 - config.test_fraction)?;
        let val_cut = cutoff_at_fraction(
            time,
            1.0 - config.test_fraction - config.validation_fraction,
        )?;
        let (train_validation, test) = set.split_at(test_cut, embargo);
        let (train, validation) = train_validation.split_at(val_cut, embargo);
        let splits = Splits {
            train,
            validation,
            train_validation,
            test,
        };
        splits.ensure_both_classes()?;
        Ok(splits)
    }

    fn ensure_both_classes(&self) -> Result<(), PipelineError> {
        let parts = [
            ("training", &self.train),
            ("validation", &self.validation),
            ("test", &self.test),
        ];
        for (name, part) in parts {
            let positives = count_failures(part);
            if positives == 0 || positives == part.len() {
                return Err(PipelineError::Invalid(format!(
                    "the {name} split ({} rows) has {positives} failure rows: both classes are needed; \
                     use more data (more machines or days)",
                    part.len()
                )));
            }
        }
        Ok(())
    }

    /// Rows in each split.
    pub fn sizes(&self) -> SplitSizes {
        SplitSizes {
            train: self.train.len(),
            validation: self.validation.len(),
            test: self.test.len(),
        }
    }
}

fn count_failures(set: &TrainingSet) -> usize {
    set.failure.iter().filter(|&&y| y == 1).count()
}

/// The run's output folder and its `plots/` and `reports/` sub-folders.
struct OutputDirs {
    root: PathBuf,
    plots: PathBuf,
    reports: PathBuf,
}

impl OutputDirs {
    fn create(output_dir: &Path, run_id: &str) -> Result<OutputDirs, PipelineError> {
        let root = output_dir.join(run_id);
        let dirs = OutputDirs {
            plots: root.join("plots"),
            reports: root.join("reports"),
            root,
        };
        for dir in [&dirs.plots, &dirs.reports] {
            std::fs::create_dir_all(dir).map_err(|e| PipelineError::Io {
                path: dir.clone(),
                source: e,
            })?;
        }
        Ok(dirs)
    }
}

/// The two fitted forests and how the Random Forest's parameters were chosen.
struct FittedModels {
    isolation_forest: IsolationForest,
    random_forest: RandomForest,
    tuning: Tuning,
    modes: FittedModes,
}

/// The failure-mode classifier (when there were modes to learn) and its report.
pub(crate) struct FittedModes {
    pub(crate) model: Option<FailureModeModel>,
    pub(crate) test: Option<ModeEvaluation>,
    pub(crate) report: ModeReport,
}

fn train_in_run(
    source: &DataSource,
    config: &TrainConfig,
    tracker: &Tracker,
    parent: &ActiveRun,
    progress: &ProgressFn,
) -> Result<TrainOutcome, PipelineError> {
    let dirs = OutputDirs::create(&config.output_dir, parent.run_id())?;
    let mut stages = Stages::new(config, progress);
    let loaded = stages.load(source)?;
    let quality = check_quality(&loaded.frame, &dirs.reports)?;
    let set = stages.run("features", || build_features(&loaded.frame, config))?;
    let horizon_minutes = label_horizon_minutes(source);
    let splits = Splits::by_time(&set, config, horizon_minutes)?;
    let data_facts = DataFacts {
        source,
        set: &set,
        splits: &splits,
        machine_ids: loaded.frame.machine_ids(),
        machines: quality.machines,
        horizon_minutes,
    };
    log_data(parent, config, &data_facts)?;
    let FittedModels {
        isolation_forest,
        random_forest,
        tuning,
        modes,
    } = fit_models(&mut stages, config, &splits, parent, progress)?;
    let failure_events = events_from_labels(&loaded.frame);
    let horizon = horizon_duration(horizon_minutes)?;
    let alarm = stages.run("alarm_threshold", || {
        choose_threshold(config, &tuning, &splits, &failure_events, horizon)
    })?;
    let threshold = alarm.threshold;
    let evaluation = stages.run("evaluation", || {
        evaluate_test(&random_forest, &isolation_forest, &splits.test, threshold)
    })?;
    let shap = stages.run("explanations", || {
        let summary = shap_summary(&random_forest, &splits.test.features, config.shap_rows)?;
        let words = summary.as_ref().map_or("skipped".to_string(), |s| {
            format!("{} test rows explained", s.rows)
        });
        Ok((summary, words))
    })?;
    let event_rules = alarm_event_params(horizon, alarm.smoothing);
    let events = test_events(
        &splits.test,
        &evaluation,
        &failure_events,
        threshold,
        &event_rules,
    )?;
    let forests = (random_forest, isolation_forest);
    let mut bundle = assemble_bundle(forests, config, &data_facts, &alarm);
    bundle.drift_reference = Some(crate::drift::train_reference(&splits.train.features)?);
    if let Some(model) = modes.model {
        bundle.meta.failure_modes = model.modes.clone();
        bundle.failure_modes = Some(model);
    }
    let seconds_so_far = stages.seconds.clone();
    let test_rows = &splits.test.features.values;
    let tracked = Tracked {
        input_example: test_rows
            .view()
            .split_at(Axis(0), test_rows.nrows().min(INPUT_EXAMPLE_ROWS))
            .0,
        dirs: &dirs,
        evaluation: &evaluation,
        tuning: &tuning,
        modes: (&modes.report, modes.test.as_ref()),
        events: &events,
        alarm: &alarm,
        test: &splits.test,
        shap: shap.as_ref(),
        bundle: &bundle,
        stage_seconds: &seconds_so_far,
    };
    let model_version = stages.run("tracking", || {
        track_and_register(tracker, parent, config, &tracked)
    })?;
    parent.log_metric(
        "time_tracking_seconds",
        stages.seconds.last().map_or(0.0, |s| s.1),
    )?;
    Ok(TrainOutcome {
        run_id: parent.run_id().to_string(),
        experiment_id: parent.experiment_id().to_string(),
        model_version,
        best_params: tuning.best_params,
        best_validation_f1: tuning.best_value,
        trial_counts: tuning.counts,
        test: evaluation.scores,
        report: evaluation.report,
        split_rows: splits.sizes(),
        stage_seconds: stages.seconds,
        output_dir: dirs.root,
        bundle,
        data_description: loaded.description,
        failure_modes: modes.report,
        events: events.metrics,
        alarm,
        shap,
    })
}

/// The test split as a maintenance planner reads it: the failures of the
/// frame (`failure_events`, recovered from its labels, so each is placed just
/// after its last labelled row), and which of them the alarms at `threshold`
/// caught, how early, and how many alarms rang for nothing.
fn test_events(
    test: &TrainingSet,
    evaluation: &SplitEvaluation,
    failure_events: &[FailureEvent],
    threshold: f64,
    rules: &EventParams,
) -> Result<TestEvents, PipelineError> {
    let failures = split_failures(test, failure_events, rules.horizon);
    let metrics = event_metrics(test, &evaluation.proba, threshold, &failures, rules)?;
    Ok(TestEvents {
        metrics,
        failures,
        rules: rules.clone(),
    })
}

/// [`test_events`]' result, with what its plots need.
struct TestEvents {
    metrics: EventMetrics,
    failures: Vec<vigil_metrics::Failure>,
    rules: EventParams,
}

fn horizon_duration(horizon_minutes: f64) -> Result<Duration, PipelineError> {
    Duration::try_from_secs_f64(horizon_minutes * 60.0).map_err(|e| {
        PipelineError::Invalid(format!("label horizon {horizon_minutes} minutes: {e}"))
    })
}

/// The alarm rule under the configured policy ([`crate::alarm`]), on the
/// validation split with the best trial's parameters.
fn choose_threshold(
    config: &TrainConfig,
    tuning: &Tuning,
    splits: &Splits,
    failure_events: &[FailureEvent],
    horizon: Duration,
) -> Result<(AlarmChoice, String), PipelineError> {
    let params = forest_params(&tuning.best_params, config)?;
    let failures = split_failures(&splits.validation, failure_events, horizon);
    let validation = ValidationEvents {
        split: &splits.validation,
        failures: &failures,
        horizon,
    };
    let choice = choose_alarm(
        config.alarm_policy,
        config.alarm_smoothing,
        tuning.best_threshold,
        (&params, &splits.train),
        validation,
    )?;
    let mut summary = format!("{}: threshold {:.4}", choice.policy, choice.threshold);
    if let Some(v) = &choice.validation {
        summary.push_str(&format!(
            " (validation: {} of {} failures caught, {:.2} false alarms per machine-day{})",
            v.failures_caught,
            v.failures_total,
            v.false_alarms_per_machine_day,
            if choice.constraint_met {
                ""
            } else {
                "; constraint not met"
            }
        ));
    }
    Ok((choice, summary))
}

/// Writes the data-quality report and refuses too little data.
fn check_quality(
    frame: &TelemetryFrame,
    reports_dir: &Path,
) -> Result<QualityReport, PipelineError> {
    let quality = QualityReport::of(frame, &QualityConfig::default());
    write_json(&reports_dir.join("data_quality.json"), &quality)?;
    quality.ensure_min_samples(MIN_TRAINING_SAMPLES)?;
    Ok(quality)
}

fn build_features(
    frame: &TelemetryFrame,
    config: &TrainConfig,
) -> Result<(TrainingSet, String), PipelineError> {
    let set = TrainingSet::build(frame, &config.feature_spec)?;
    let summary = format!(
        "{} rows × {} features",
        set.len(),
        set.features.values.ncols()
    );
    Ok((set, summary))
}

/// What the run records about its data.
struct DataFacts<'a> {
    source: &'a DataSource,
    set: &'a TrainingSet,
    splits: &'a Splits,
    machine_ids: &'a [String],
    machines: usize,
    horizon_minutes: f64,
}

fn log_data(
    parent: &ActiveRun,
    config: &TrainConfig,
    facts: &DataFacts<'_>,
) -> Result<(), PipelineError> {
    let n_features = facts.set.features.values.ncols();
    parent.log_params([
        ("data_source", facts.source.kind().to_string()),
        ("n_trials", config.n_trials.to_string()),
        ("seed", config.seed.to_string()),
        ("contamination", config.contamination.to_string()),
        (
            "max_samples_per_tree",
            format!("{:?}", config.max_samples_per_tree),
        ),
        ("pruning", config.pruning.to_string()),
        ("label_horizon_minutes", facts.horizon_minutes.to_string()),
        ("n_features", n_features.to_string()),
        (
            "validation_fraction",
            config.validation_fraction.to_string(),
        ),
        ("test_fraction", config.test_fraction.to_string()),
    ])?;
    let train = &facts.splits.train;
    parent.log_metrics(
        [
            ("n_samples", facts.set.len() as f64),
            ("n_samples_train", train.len() as f64),
            ("n_samples_validation", facts.splits.validation.len() as f64),
            ("n_samples_test", facts.splits.test.len() as f64),
            ("n_features", n_features as f64),
            ("n_machines", facts.machines as f64),
            (
                "positive_rate_train",
                count_failures(train) as f64 / train.len() as f64,
            ),
        ],
        0,
    )?;
    Ok(())
}

/// The Isolation Forest on the training rows (no labels), TPE tuning of the
/// Random Forest on validation F1, and the final Random Forest on train +
/// validation with the best parameters.
fn fit_models(
    stages: &mut Stages,
    config: &TrainConfig,
    splits: &Splits,
    parent: &ActiveRun,
    progress: &ProgressFn,
) -> Result<FittedModels, PipelineError> {
    let trees_progress = {
        let p = Arc::clone(progress);
        move |done: usize, of: usize| p(Progress::Trees { done, of })
    };
    let iso_params = IsolationForestParams {
        contamination: Contamination::Fraction(config.contamination),
        seed: config.seed,
        ..Default::default()
    };
    let isolation_forest = stages.run("isolation_forest", || {
        let model = iso_params
            .fit_with_progress(named_samples(&splits.train.features)?, &trees_progress)?;
        Ok((model, format!("{} trees", iso_params.n_estimators)))
    })?;
    let tuning = stages.run("tuning", || {
        let t = tune(config, splits.tuning_data(), parent, progress)?;
        let c = t.counts;
        let summary = format!(
            "best validation F1 {:.4} ({} complete, {} pruned, {} failed)",
            t.best_value, c.complete, c.pruned, c.failed
        );
        Ok((t, summary))
    })?;
    let rf_params = forest_params(&tuning.best_params, config)?;
    let fit_rows = &splits.train_validation;
    let random_forest = stages.run("final_fit", || {
        let model = rf_params.fit_with_progress(
            named_samples(&fit_rows.features)?,
            &fit_rows.failure,
            &trees_progress,
        )?;
        let summary = format!(
            "{} trees on {} rows",
            rf_params.n_estimators,
            fit_rows.len()
        );
        Ok((model, summary))
    })?;
    let modes = stages.run("failure_modes", || fit_modes(&rf_params, splits))?;
    Ok(FittedModels {
        isolation_forest,
        random_forest,
        tuning,
        modes,
    })
}

/// The failure-mode classifier on the final fit's rows, scored on the test
/// split; skipped (with the reason as the stage's summary) without modes.
fn fit_modes(
    binary_params: &RandomForestParams,
    splits: &Splits,
) -> Result<(FittedModes, String), PipelineError> {
    let fit = fit_mode_model(binary_params, &splits.train_validation)?;
    settle_modes(fit, |model| evaluate_modes(model, &splits.test))
}

/// A mode fit with its test evaluation (`evaluate`, when a model was
/// trained), its report and the stage's summary line (both training paths).
pub(crate) fn settle_modes(
    fit: ModeFit,
    evaluate: impl FnOnce(&FailureModeModel) -> Result<ModeEvaluation, PipelineError>,
) -> Result<(FittedModes, String), PipelineError> {
    let test = match &fit {
        ModeFit::Trained { model, .. } => Some(evaluate(model)?),
        ModeFit::Skipped { .. } => None,
    };
    let report = ModeReport::new(&fit, test.as_ref());
    let summary = match (&fit, &test) {
        (ModeFit::Trained { model, rare, .. }, Some(t)) => {
            let rare = if rare.is_empty() {
                String::new()
            } else {
                format!(
                    "; fewer than {MIN_MODE_EVENTS} training events: {}",
                    rare.join(", ")
                )
            };
            format!(
                "{} ({}), test macro F1 {:.4}{rare}",
                model.modes.len(),
                model.modes.join(", "),
                t.macro_f1
            )
        }
        (ModeFit::Skipped { reason }, _) => format!("skipped: {reason}"),
        (ModeFit::Trained { .. }, None) => String::new(),
    };
    let model = match fit {
        ModeFit::Trained { model, .. } => Some(*model),
        ModeFit::Skipped { .. } => None,
    };
    Ok((
        FittedModes {
            model,
            test,
            report,
        },
        summary,
    ))
}

/// Both forests on the test split, once, at the threshold tuning chose.
fn evaluate_test(
    random_forest: &RandomForest,
    isolation_forest: &IsolationForest,
    test: &TrainingSet,
    threshold: f64,
) -> Result<(SplitEvaluation, String), PipelineError> {
    let e = evaluate_split(random_forest, isolation_forest, test, threshold)?;
    let summary = format!(
        "test F1 {:.4}, precision {:.4}, recall {:.4}, ROC-AUC {:.4}",
        e.scores.f1, e.scores.precision, e.scores.recall, e.scores.roc_auc
    );
    Ok((e, summary))
}

fn assemble_bundle(
    (random_forest, isolation_forest): (RandomForest, IsolationForest),
    config: &TrainConfig,
    facts: &DataFacts<'_>,
    alarm: &AlarmChoice,
) -> ModelBundle {
    let spec = &config.feature_spec;
    ModelBundle {
        random_forest,
        isolation_forest,
        feature_spec: spec.clone(),
        meta: BundleMeta {
            format_version: BUNDLE_FORMAT_VERSION,
            feature_names: facts.set.features.names.clone(),
            sensors: spec.sensors.clone(),
            machines: facts.machine_ids.to_vec(),
            threshold: alarm.threshold,
            alarm_policy: alarm.policy,
            alarm_smoothing: alarm.smoothing,
            label_horizon_minutes: facts.horizon_minutes,
            trained_rows: facts.splits.train_validation.len(),
            trained_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            failure_modes: Vec::new(),
        },
        failure_modes: None,
        drift_reference: None,
    }
}

/// Test-split rows saved as the model's MLflow input example.
const INPUT_EXAMPLE_ROWS: usize = 5;

/// What the tracking stage writes, logs and registers.
struct Tracked<'a> {
    /// The first test rows, for `input_example.json`.
    input_example: ArrayView2<'a, f64>,
    dirs: &'a OutputDirs,
    evaluation: &'a SplitEvaluation,
    tuning: &'a Tuning,
    /// The failure-mode report and, when a model was trained, its test evaluation.
    modes: (&'a ModeReport, Option<&'a ModeEvaluation>),
    /// Failures caught, lead times and false alarms on the test split.
    events: &'a TestEvents,
    /// The alarm rule and how it was chosen.
    alarm: &'a AlarmChoice,
    /// The test split (for the timeline plot).
    test: &'a TrainingSet,
    /// The failure model explained on test rows, when asked for.
    shap: Option<&'a ShapSummary>,
    bundle: &'a ModelBundle,
    stage_seconds: &'a [(&'static str, f64)],
}

/// Reports, plots and the model folder; their tracking; the registration.
fn track_and_register(
    tracker: &Tracker,
    parent: &ActiveRun,
    config: &TrainConfig,
    t: &Tracked<'_>,
) -> Result<(Option<ModelVersion>, String), PipelineError> {
    write_reports(&t.dirs.reports, t.evaluation, t.tuning)?;
    write_json(&t.dirs.reports.join("failure_modes.json"), t.modes.0)?;
    write_json(&t.dirs.reports.join("events.json"), &t.events.metrics)?;
    write_json(&t.dirs.reports.join("alarm.json"), t.alarm)?;
    plots::event_plots(
        &t.dirs.plots,
        t.test,
        &t.evaluation.proba,
        t.bundle.meta.threshold,
        (&t.events.failures, &t.events.rules),
        &t.events.metrics,
    )?;
    if let Some(test) = t.modes.1 {
        plots::mode_confusion_plot(&t.dirs.plots, test)?;
    }
    if let Some(shap) = t.shap {
        write_json(&t.dirs.reports.join("shap_summary.json"), shap)?;
        plots::shap_plots(&t.dirs.plots, shap)?;
    }
    plots::training_plots(
        &t.dirs.plots,
        t.evaluation,
        &t.bundle.meta.feature_names,
        t.bundle.random_forest.feature_importances(),
        &t.tuning.trials,
    )?;
    let model_dir = t.dirs.root.join("model");
    t.bundle.save(&model_dir, t.input_example)?;
    log_results(parent, t)?;
    parent.log_artifacts(&t.dirs.reports, Some("reports"))?;
    parent.log_artifacts(&t.dirs.plots, Some("plots"))?;
    parent.log_artifact_as(&model_dir.join(FEATURE_SPEC_FILE), FEATURE_SPEC_FILE)?;
    let logged = parent.log_model("model", &model_dir, &t.bundle.mlmodel())?;
    parent.flush()?;
    if !config.register {
        return Ok((None, "logged (registration off)".to_string()));
    }
    let version = tracker.register_model(&config.model_name, &logged)?;
    let summary = format!(
        "registered {} version {}",
        config.model_name, version.version
    );
    Ok((Some(version), summary))
}

fn log_results(parent: &ActiveRun, t: &Tracked<'_>) -> Result<(), PipelineError> {
    log_scores(
        parent,
        t.tuning,
        &t.evaluation.scores,
        t.bundle.meta.threshold,
        t.stage_seconds,
    )?;
    log_alarm(parent, t.alarm)?;
    log_event_metrics(parent, "test_", &t.events.metrics)?;
    log_modes(parent, t.modes)
}

/// The mode model's test metrics, or why there is none, on the parent run
/// (both training paths).
pub(crate) fn log_modes(
    parent: &ActiveRun,
    modes: (&ModeReport, Option<&ModeEvaluation>),
) -> Result<(), PipelineError> {
    match modes {
        (_, Some(test)) => {
            let metrics = test.metrics("test_");
            parent.log_metrics(metrics.iter().map(|(k, v)| (k.as_str(), *v)), 0)?;
        }
        (report, None) => parent.set_tag(
            "vigil.failure_modes",
            format!(
                "skipped: {}",
                report.skipped_reason.as_deref().unwrap_or("no mode model")
            ),
        )?,
    }
    Ok(())
}

/// The tuned hyper-parameters, the test scores, the alarm threshold and the
/// time of each stage, on the job's parent run (both training paths).
pub(crate) fn log_scores(
    parent: &ActiveRun,
    tuning: &Tuning,
    scores: &TestScores,
    threshold: f64,
    stage_seconds: &[(&'static str, f64)],
) -> Result<(), PipelineError> {
    parent.log_params(
        tuning
            .best_params
            .iter()
            .map(|(k, v)| (k.clone(), param_text(v))),
    )?;
    parent.log_metrics(
        [
            ("test_f1", scores.f1),
            ("test_precision", scores.precision),
            ("test_recall", scores.recall),
            ("test_roc_auc", scores.roc_auc),
            ("test_pr_auc", scores.pr_auc),
            ("test_anomaly_roc_auc", scores.anomaly_roc_auc),
            ("test_anomaly_rate", scores.anomaly_rate),
            ("threshold", threshold),
            ("best_validation_f1", tuning.best_value),
        ],
        0,
    )?;
    for (stage, seconds) in stage_seconds {
        parent.log_metric(&format!("time_{stage}_seconds"), *seconds)?;
    }
    Ok(())
}

/// The alarm rule as params, and its validation event metrics when computed.
fn log_alarm(parent: &ActiveRun, alarm: &AlarmChoice) -> Result<(), PipelineError> {
    let smoothing = alarm.smoothing.map_or("off".to_string(), |s| s.to_string());
    parent.log_params([
        ("alarm_policy", alarm.policy.to_string()),
        ("alarm_smoothing", smoothing),
        ("alarm_constraint_met", alarm.constraint_met.to_string()),
    ])?;
    if let Some(v) = &alarm.validation {
        log_event_metrics(parent, "validation_", v)?;
    }
    Ok(())
}

fn label_horizon_minutes(source: &DataSource) -> f64 {
    match source {
        DataSource::Simulated(config) => config.label_horizon_minutes,
        // CSV and database telemetry carry labels made with the reference horizon.
        _ => 30.0,
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PipelineError> {
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|e| PipelineError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn write_reports(
    dir: &Path,
    evaluation: &SplitEvaluation,
    tuning: &Tuning,
) -> Result<(), PipelineError> {
    let text_path = dir.join("classification_report.txt");
    std::fs::write(&text_path, evaluation.report.to_string()).map_err(|e| PipelineError::Io {
        path: text_path.clone(),
        source: e,
    })?;
    write_json(&dir.join("classification_report.json"), &evaluation.report)?;
    write_json(&dir.join("test_scores.json"), &evaluation.scores)?;
    let trials: Vec<&FrozenTrial> = tuning.trials.iter().map(|t| t.as_ref()).collect();
    write_json(&dir.join("tuning_trials.json"), &trials)?;
    Ok(())
}
