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
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use ndarray::ArrayView2;
use serde::Serialize;
use vigil_features::{
    FeatureSpec, MIN_TRAINING_SAMPLES, QualityConfig, QualityReport, TrainingSet, WindowLength,
    cutoff_at_fraction,
};
use vigil_forest::{
    Contamination, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples, RandomForest,
    RandomForestParams,
};
use vigil_metrics::{
    Average, ClassificationReport, ConfusionMatrix, PrfParams, ReportParams,
    average_precision_score, best_threshold_f1, classification_report, confusion_matrix,
    precision_recall_fscore, roc_auc_score,
};
use vigil_tracking_client::{ActiveRun, ModelVersion, RunOptions, RunStatus, Tracker};
use vigil_tuning::{
    Direction, FrozenTrial, MedianPruner, ObjectiveError, ParamValue, Study, Trial, TrialState,
};

use crate::bundle::{BUNDLE_FORMAT_VERSION, BundleMeta, FEATURE_SPEC_FILE, ModelBundle};
use crate::error::PipelineError;
use crate::plots;
use crate::source::DataSource;

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

/// Test-split scores of the final model.
#[derive(Debug, Clone, Serialize)]
pub struct TestScores {
    /// F1 at the chosen threshold.
    pub f1: f64,
    /// Precision at the chosen threshold.
    pub precision: f64,
    /// Recall at the chosen threshold.
    pub recall: f64,
    /// ROC-AUC of the failure probability.
    pub roc_auc: f64,
    /// Average precision (area under the PR curve).
    pub pr_auc: f64,
    /// ROC-AUC of the Isolation Forest's anomaly score against the failure label.
    pub anomaly_roc_auc: f64,
    /// Share of test rows the Isolation Forest flags.
    pub anomaly_rate: f64,
    /// `[[tn, fp], [fn, tp]]`.
    pub confusion: [[u64; 2]; 2],
}

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
    /// Trials completed / pruned / failed.
    pub trial_counts: (usize, usize, usize),
    /// Scores on the test split.
    pub test: TestScores,
    /// Rows in the train / validation / test splits.
    pub split_rows: (usize, usize, usize),
    /// Seconds per stage, in order.
    pub stage_seconds: Vec<(&'static str, f64)>,
    /// Where the plots, reports and model folder were written.
    pub output_dir: PathBuf,
    /// The classification report on the test split.
    pub report: ClassificationReport,
    /// Where the data came from.
    pub data_description: String,
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
            "rows": {
                "train": self.split_rows.0,
                "validation": self.split_rows.1,
                "test": self.split_rows.2,
            },
            "best_params": best_params,
            "best_validation_f1": self.best_validation_f1,
            "trials": {
                "complete": self.trial_counts.0,
                "pruned": self.trial_counts.1,
                "failed": self.trial_counts.2,
            },
            "threshold": self.bundle.meta.threshold,
            "test": self.test,
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
    match train_in_run(source, config, tracker, &parent, &progress) {
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

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

struct Stages {
    seconds: Vec<(&'static str, f64)>,
    progress: ProgressFn,
    stop: Arc<AtomicBool>,
}

impl Stages {
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

fn train_in_run(
    source: &DataSource,
    config: &TrainConfig,
    tracker: &Tracker,
    parent: &ActiveRun,
    progress: &ProgressFn,
) -> Result<TrainOutcome, PipelineError> {
    let out = config.output_dir.join(parent.run_id());
    let plots_dir = out.join("plots");
    let reports_dir = out.join("reports");
    for dir in [&plots_dir, &reports_dir] {
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::Io {
            path: dir.clone(),
            source: e,
        })?;
    }
    let mut stages = Stages {
        seconds: Vec::new(),
        progress: Arc::clone(progress),
        stop: Arc::clone(&config.stop),
    };

    // 1. Data.
    let loaded = stages.run("load", || {
        let loaded = source.load()?;
        let summary = loaded.description.clone();
        Ok((loaded, summary))
    })?;
    let frame = &loaded.frame;
    let quality = QualityReport::of(frame, &QualityConfig::default());
    write_json(&reports_dir.join("data_quality.json"), &quality)?;
    quality.ensure_min_samples(MIN_TRAINING_SAMPLES)?;

    // 2. Features and labels.
    let spec = &config.feature_spec;
    let set = stages.run("features", || {
        let set = TrainingSet::build(frame, spec)?;
        let summary = format!(
            "{} rows × {} features",
            set.len(),
            set.features.values.ncols()
        );
        Ok((set, summary))
    })?;

    // 3. Time-ordered split: train | validation | test, with the label horizon
    //    as an embargo so no training label looks into a later split.
    let horizon_minutes = label_horizon_minutes(source);
    let embargo = WindowLength::seconds((horizon_minutes * 60.0).round() as i64);
    let time = &set.features.time;
    let test_cut = cutoff_at_fraction(time, 1.0 - config.test_fraction)?;
    let val_cut = cutoff_at_fraction(
        time,
        1.0 - config.test_fraction - config.validation_fraction,
    )?;
    let (train_val, test) = set.split_at(test_cut, embargo);
    let (train, val) = train_val.split_at(val_cut, embargo);
    for (name, part) in [("training", &train), ("validation", &val), ("test", &test)] {
        let positives = part.failure.iter().filter(|&&y| y == 1).count();
        if positives == 0 || positives == part.len() {
            return Err(PipelineError::Invalid(format!(
                "the {name} split ({} rows) has {positives} failure rows: both classes are needed; \
                 use more data (more machines or days)",
                part.len()
            )));
        }
    }
    let split_rows = (train.len(), val.len(), test.len());

    parent.log_params([
        ("data_source", source.kind().to_string()),
        ("n_trials", config.n_trials.to_string()),
        ("seed", config.seed.to_string()),
        ("contamination", config.contamination.to_string()),
        (
            "max_samples_per_tree",
            format!("{:?}", config.max_samples_per_tree),
        ),
        ("pruning", config.pruning.to_string()),
        ("label_horizon_minutes", horizon_minutes.to_string()),
        ("n_features", set.features.values.ncols().to_string()),
        (
            "validation_fraction",
            config.validation_fraction.to_string(),
        ),
        ("test_fraction", config.test_fraction.to_string()),
    ])?;
    parent.log_metrics(
        [
            ("n_samples", set.len() as f64),
            ("n_samples_train", train.len() as f64),
            ("n_samples_validation", val.len() as f64),
            ("n_samples_test", test.len() as f64),
            ("n_features", set.features.values.ncols() as f64),
            ("n_machines", quality.machines as f64),
            (
                "positive_rate_train",
                train.failure.iter().filter(|&&y| y == 1).count() as f64 / train.len() as f64,
            ),
        ],
        0,
    )?;

    // 4. Isolation Forest on the training rows (no labels).
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
        let model = iso_params.fit_with_progress(train.features.values.view(), &trees_progress)?;
        Ok((model, format!("{} trees", iso_params.n_estimators)))
    })?;

    // 5. TPE tuning of the Random Forest on validation F1.
    let tuning = stages.run("tuning", || {
        let t = tune(config, &train, &val, parent, progress)?;
        let summary = format!(
            "best validation F1 {:.4} ({} complete, {} pruned, {} failed)",
            t.best_value, t.counts.0, t.counts.1, t.counts.2
        );
        Ok((t, summary))
    })?;

    // 6. The final model on train + validation with the best parameters; the
    //    threshold is the one that maximised F1 on validation for those parameters.
    let rf_params = forest_params(&tuning.best_params, config)?;
    // `train_val` already ends one embargo before the test split.
    let fit_rows = &train_val;
    let random_forest = stages.run("final_fit", || {
        let model = rf_params.fit_with_progress(
            fit_rows.features.values.view(),
            &labels_usize(&fit_rows.failure),
            &trees_progress,
        )?;
        Ok((
            model,
            format!(
                "{} trees on {} rows",
                rf_params.n_estimators,
                fit_rows.len()
            ),
        ))
    })?;

    // 7. Evaluation on the test split, once.
    let threshold = tuning.best_threshold;
    let evaluation = stages.run("evaluation", || {
        let e = evaluate_split(&random_forest, &isolation_forest, &test, threshold)?;
        let summary = format!(
            "test F1 {:.4}, precision {:.4}, recall {:.4}, ROC-AUC {:.4}",
            e.scores.f1, e.scores.precision, e.scores.recall, e.scores.roc_auc
        );
        Ok((e, summary))
    })?;

    // 8. Reports, plots, the model folder; tracking and registration.
    let bundle = ModelBundle {
        random_forest,
        isolation_forest,
        feature_spec: spec.clone(),
        meta: BundleMeta {
            format_version: BUNDLE_FORMAT_VERSION,
            feature_names: set.features.names.clone(),
            sensors: spec.sensors.clone(),
            machines: frame.machine_ids().to_vec(),
            threshold,
            label_horizon_minutes: horizon_minutes,
            trained_rows: fit_rows.len(),
            trained_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        },
    };
    let seconds_so_far = stages.seconds.clone();
    let model_version = stages.run("tracking", || {
        write_reports(&reports_dir, &evaluation, &tuning)?;
        plots::training_plots(
            &plots_dir,
            &evaluation,
            &bundle.meta.feature_names,
            bundle.random_forest.feature_importances(),
            &tuning.trials,
        )?;
        let model_dir = out.join("model");
        bundle.save(&model_dir)?;

        parent.log_params(
            tuning
                .best_params
                .iter()
                .map(|(k, v)| (k.clone(), param_text(v))),
        )?;
        parent.log_metrics(
            [
                ("test_f1", evaluation.scores.f1),
                ("test_precision", evaluation.scores.precision),
                ("test_recall", evaluation.scores.recall),
                ("test_roc_auc", evaluation.scores.roc_auc),
                ("test_pr_auc", evaluation.scores.pr_auc),
                ("test_anomaly_roc_auc", evaluation.scores.anomaly_roc_auc),
                ("test_anomaly_rate", evaluation.scores.anomaly_rate),
                ("threshold", threshold),
                ("best_validation_f1", tuning.best_value),
            ],
            0,
        )?;
        for (stage, seconds) in &seconds_so_far {
            parent.log_metric(&format!("time_{stage}_seconds"), *seconds)?;
        }
        parent.log_artifacts(&reports_dir, Some("reports"))?;
        parent.log_artifacts(&plots_dir, Some("plots"))?;
        parent.log_artifact_as(&model_dir.join(FEATURE_SPEC_FILE), FEATURE_SPEC_FILE)?;
        let logged = parent.log_model("model", &model_dir, &bundle.mlmodel())?;
        parent.flush()?;
        let version = if config.register {
            Some(tracker.register_model(&config.model_name, &logged)?)
        } else {
            None
        };
        let summary = match &version {
            Some(v) => format!("registered {} version {}", config.model_name, v.version),
            None => "logged (registration off)".to_string(),
        };
        Ok((version, summary))
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
        split_rows,
        stage_seconds: stages.seconds,
        output_dir: out,
        bundle,
        data_description: loaded.description,
    })
}

fn label_horizon_minutes(source: &DataSource) -> f64 {
    match source {
        DataSource::Simulated(config) => config.label_horizon_minutes,
        // CSV and database telemetry carry labels made with the reference horizon.
        _ => 30.0,
    }
}

fn labels_usize(y: &[u8]) -> Vec<usize> {
    y.iter().map(|&v| usize::from(v)).collect()
}

fn param_text(v: &ParamValue) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    }
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

/// What tuning found.
#[derive(Debug)]
pub struct Tuning {
    /// Best parameters.
    pub best_params: BTreeMap<String, ParamValue>,
    /// Best validation F1.
    pub best_value: f64,
    /// The threshold maximising validation F1 for the best parameters.
    pub best_threshold: f64,
    /// (complete, pruned, failed).
    pub counts: (usize, usize, usize),
    /// Every trial.
    pub trials: Vec<Arc<FrozenTrial>>,
}

/// Suggests the reference search space.
fn suggest(trial: &mut Trial<'_>) -> Result<(), vigil_tuning::TuningError> {
    trial.suggest_int("n_estimators", 50, 300)?;
    trial.suggest_int("max_depth", 3, 20)?;
    trial.suggest_int("min_samples_split", 2, 20)?;
    trial.suggest_int("min_samples_leaf", 1, 10)?;
    trial.suggest_categorical("max_features", &["sqrt", "log2"])?;
    Ok(())
}

fn tune(
    config: &TrainConfig,
    train: &TrainingSet,
    val: &TrainingSet,
    parent: &ActiveRun,
    progress: &ProgressFn,
) -> Result<Tuning, PipelineError> {
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
    let study = builder.build()?;
    let x_train = train.features.values.view();
    let y_train = labels_usize(&train.failure);
    let x_val = val.features.values.view();
    let n_trials = config.n_trials;
    {
        let p = Arc::clone(progress);
        let stop = Arc::clone(&config.stop);
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
    study.optimize(n_trials, None, |trial| {
        suggest(trial)?;
        let params = trial.params();
        let child = parent
            .start_child(&format!("trial-{}", trial.number()))
            .map_err(|e| ObjectiveError::msg(e.to_string()))?;
        let result = run_trial(
            trial,
            &params,
            config,
            x_train,
            &y_train,
            x_val,
            &val.failure,
        );
        log_trial(&child, &params, trial, &result);
        let status = match &result {
            Ok(_) | Err(ObjectiveError::Pruned) => RunStatus::Finished,
            Err(_) => RunStatus::Failed,
        };
        child
            .end(status)
            .map_err(|e| ObjectiveError::msg(e.to_string()))?;
        result
    })?;
    if config.stop.load(Ordering::SeqCst) {
        return Err(PipelineError::Interrupted { stage: "tuning" });
    }

    let trials: Vec<Arc<FrozenTrial>> = study.trials()?.iter().cloned().collect();
    let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
    let counts = (
        count(TrialState::Complete),
        count(TrialState::Pruned),
        count(TrialState::Fail),
    );
    let best = study.best_trial().map_err(|_| {
        PipelineError::Invalid(format!(
            "no tuning trial completed ({} pruned, {} failed)",
            counts.1, counts.2
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
    x_train: ArrayView2<'_, f64>,
    y_train: &[usize],
    x_val: ArrayView2<'_, f64>,
    y_val: &[u8],
) -> Result<f64, ObjectiveError> {
    let to_obj = |e: PipelineError| ObjectiveError::msg(e.to_string());
    let full = forest_params(params, config).map_err(to_obj)?;
    if config.pruning {
        let quick = RandomForestParams {
            n_estimators: (full.n_estimators / 4).max(10),
            ..full.clone()
        };
        let (f1, _) = fit_and_score(&quick, x_train, y_train, x_val, y_val).map_err(to_obj)?;
        trial.report(0, f1)?;
        if trial.should_prune()? {
            return Err(ObjectiveError::Pruned);
        }
    }
    let (f1, threshold) = fit_and_score(&full, x_train, y_train, x_val, y_val).map_err(to_obj)?;
    if config.pruning {
        trial.report(1, f1)?;
    }
    trial.set_user_attr("threshold", serde_json::json!(threshold))?;
    Ok(f1)
}

fn fit_and_score(
    params: &RandomForestParams,
    x_train: ArrayView2<'_, f64>,
    y_train: &[usize],
    x_val: ArrayView2<'_, f64>,
    y_val: &[u8],
) -> Result<(f64, f64), PipelineError> {
    let model = params.fit(x_train, y_train)?;
    let proba = positive_proba(&model, x_val)?;
    let choice = best_threshold_f1(y_val, &proba)?;
    Ok((choice.f_score, choice.threshold))
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

/// P(failure) for every row.
pub fn positive_proba(
    model: &RandomForest,
    x: ArrayView2<'_, f64>,
) -> Result<Vec<f64>, PipelineError> {
    let proba = model.predict_proba(x)?;
    let column = model.classes().iter().position(|&c| c == 1);
    Ok(match column {
        Some(c) => proba.column(c).to_vec(),
        // Trained on one class only: nothing ever looks like a failure.
        None => vec![0.0; x.nrows()],
    })
}

/// Scores, curves and reports of a model on one labelled split.
#[derive(Debug)]
pub struct SplitEvaluation {
    /// The headline numbers.
    pub scores: TestScores,
    /// P(failure) per row.
    pub proba: Vec<f64>,
    /// True labels.
    pub y_true: Vec<u8>,
    /// Predictions at the threshold.
    pub y_pred: Vec<u8>,
    /// The confusion matrix.
    pub confusion: ConfusionMatrix<u8>,
    /// The classification report.
    pub report: ClassificationReport,
}

/// Evaluates both forests on a labelled split at `threshold`.
pub fn evaluate_split(
    random_forest: &RandomForest,
    isolation_forest: &IsolationForest,
    split: &TrainingSet,
    threshold: f64,
) -> Result<SplitEvaluation, PipelineError> {
    let x = split.features.values.view();
    let y_true = split.failure.clone();
    let proba = positive_proba(random_forest, x)?;
    let y_pred: Vec<u8> = proba.iter().map(|&p| u8::from(p >= threshold)).collect();
    let labels = [0u8, 1u8];
    let prf = precision_recall_fscore(
        &y_true,
        &y_pred,
        Average::binary(),
        &PrfParams {
            labels: Some(labels.to_vec()),
            ..Default::default()
        },
    )?;
    let confusion = confusion_matrix(&y_true, &y_pred, Some(&labels))?;
    let rows = confusion.rows();
    let cell =
        |r: usize, c: usize| rows.get(r).and_then(|row| row.get(c)).copied().unwrap_or(0) as u64;
    let anomaly: Vec<f64> = isolation_forest
        .score_samples(x)?
        .iter()
        .map(|s| -s)
        .collect();
    let flagged = isolation_forest
        .predict(x)?
        .iter()
        .filter(|&&p| p == -1)
        .count();
    let report = classification_report(
        &y_true,
        &y_pred,
        &ReportParams {
            labels: Some(labels.to_vec()),
            target_names: Some(vec!["no failure".into(), "failure".into()]),
            digits: 4,
            ..Default::default()
        },
    )?;
    Ok(SplitEvaluation {
        scores: TestScores {
            f1: prf.f_score,
            precision: prf.precision,
            recall: prf.recall,
            roc_auc: roc_auc_score(&y_true, &proba)?,
            pr_auc: average_precision_score(&y_true, &proba)?,
            anomaly_roc_auc: roc_auc_score(&y_true, &anomaly)?,
            anomaly_rate: flagged as f64 / y_true.len().max(1) as f64,
            confusion: [[cell(0, 0), cell(0, 1)], [cell(1, 0), cell(1, 1)]],
        },
        proba,
        y_true,
        y_pred,
        confusion,
        report,
    })
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
