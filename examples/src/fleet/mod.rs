//! Training on a fleet larger than memory, from PostgreSQL / TimescaleDB.
//!
//! [`train_streamed`] reads the table machine by machine
//! ([`TelemetryStore::for_each_machine`]), computes each machine's features,
//! splits them by the fleet's time cut-offs and keeps only what training and
//! evaluation need: 1-byte bin codes (fixed from the first machines' training
//! rows, at least [`StreamConfig::edge_rows`]), labels, sample weights, and per
//! test row its anomaly score, machine and time. The raw table and the `f64`
//! feature matrix never exist as a whole: memory grows by about 52 bytes per
//! training or validation row (codes, label, weight, failure mode) and 64 per
//! test row, plus a second copy of the codes during the final fits, instead of
//! about 1.4 KB per row loaded whole (1,000 machines × 7 days, 55M rows:
//! 5.8 GiB peak RSS, `benches/RESULTS.md`, "Fleet scaling").
//!
//! The forests are fitted on the codes ([`RandomForestParams::fit_binned`]);
//! validation and test rows are scored from the codes' representatives, which
//! a forest fitted on these edges scores exactly as the raw rows. With
//! [`StreamConfig::downsample`] below 1, training rows more than one label
//! horizon from any failure row are kept with that probability and weight
//! `1 / downsample` (validation and test rows are never downsampled).
//!
//! Compared with [`train`](crate::train::train) it chooses the alarm threshold
//! by validation F1 only (no alarm policy or smoothing), computes no SHAP
//! summary and draws no plots; the failure-mode classifier is fitted on the
//! same codes (train and validation rows, the binary parameters with balanced
//! class weights, as in memory) and scored on the test codes. It tracks the
//! parameters, metrics and trials, saves the model folder (with a drift
//! reference from a seeded, bounded sample of the training rows, taken before
//! downsampling) and registers it.
//! A stream that fails (a lost connection, a missing column) ends the run as
//! `FAILED` before anything is fitted or registered.

mod ingest;
mod sample;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use ndarray::Array2;
use vigil_features::{
    FailureMode, LoadQuery, PgConfig, StreamOptions, TelemetryStore, WindowLength,
};
use vigil_forest::{BinnedSamples, MaxSamples, RandomForest, RandomForestParams};
use vigil_metrics::{AlarmPolicy, EventMetrics, Failure, best_threshold_f1, evaluate_scores};
use vigil_tracking_client::{ActiveRun, ModelVersion, RunOptions, Tracker};
use vigil_tuning::ParamValue;

use crate::bundle::{BUNDLE_FORMAT_VERSION, BundleMeta, FEATURE_SPEC_FILE, ModelBundle};
use crate::error::PipelineError;
use crate::evaluation::{TestScores, event_params, log_event_metrics, score_split};
use crate::modes::{ModeEvaluation, ModeReport, evaluate_mode_probabilities, fit_mode_model_with};
use crate::train::{
    FittedModes, Progress, ProgressFn, TrainConfig, end_job_run, log_modes, log_scores,
    settle_modes,
};
use crate::tune::{
    Fnv64, JoinOutcome, TrialCounts, TrialRows, forest_params, join_study_rows, param_text,
    tune_rows,
};
use ingest::{CodedSplit, Cuts, Fleet, IngestRules};

/// The label horizon of database telemetry (the reference's 30 minutes).
const HORIZON_MINUTES: i64 = 30;
/// Rows scored per prediction chunk (bounded memory: 65,536 × 42 × 8 bytes).
const SCORE_CHUNK: usize = 1 << 16;

/// How the streamed job reads and samples. `Default` is the pipeline's.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Share of far-from-failure training rows kept, in (0, 1]; 1 keeps all.
    /// Default 1.
    pub downsample: f64,
    /// Training rows gathered from the first machines before the bin edges are
    /// fixed (and the Isolation Forest is fitted on them). Default 262,144.
    pub edge_rows: usize,
    /// Rows per fetch from the server. Default 10,000.
    pub fetch_rows: usize,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            downsample: 1.0,
            edge_rows: 1 << 18,
            fetch_rows: StreamOptions::default().fetch_rows,
        }
    }
}

impl StreamConfig {
    /// `downsample` in (0, 1], `edge_rows` and `fetch_rows` at least 1.
    pub fn validate(&self) -> Result<(), PipelineError> {
        if !(self.downsample > 0.0 && self.downsample <= 1.0) {
            return Err(PipelineError::Invalid(format!(
                "downsample must be in (0, 1], got {}",
                self.downsample
            )));
        }
        if self.edge_rows == 0 {
            return Err(PipelineError::Invalid(
                "edge_rows must be at least 1".into(),
            ));
        }
        StreamOptions {
            fetch_rows: self.fetch_rows,
        }
        .validate()?;
        Ok(())
    }
}

/// The table the streamed job reads.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// Connection settings.
    pub config: PgConfig,
    /// The table.
    pub table: String,
    /// Time range and machines.
    pub query: LoadQuery,
}

/// How a PostgreSQL table is read for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Ingestion {
    /// Streamed when the query selects more than a threshold of rows
    /// ([`DEFAULT_STREAM_ABOVE_ROWS`] in `pipeline`), loaded otherwise.
    #[default]
    Auto,
    /// Loaded whole ([`train`](crate::train::train)): every plot, SHAP and
    /// the alarm policies; about 1.4 KB of memory per row.
    Memory,
    /// Streamed machine by machine into bin codes ([`train_streamed`]).
    Streamed,
}

/// Rows above which [`Ingestion::Auto`] streams: about 2 GiB if loaded.
pub const DEFAULT_STREAM_ABOVE_ROWS: u64 = 2_000_000;

impl StreamSource {
    /// Whether `ingestion` streams this source: for [`Ingestion::Auto`], whether
    /// the query selects more than `above_rows` rows (counted in the
    /// database), which is returned too.
    pub fn streams(
        &self,
        ingestion: Ingestion,
        above_rows: u64,
    ) -> Result<(bool, Option<u64>), PipelineError> {
        match ingestion {
            Ingestion::Memory => Ok((false, None)),
            Ingestion::Streamed => Ok((true, None)),
            Ingestion::Auto => {
                let mut store = TelemetryStore::connect(&self.config, &self.table)?;
                let rows = store.count_rows(&self.query)?;
                Ok((rows > above_rows, Some(rows)))
            }
        }
    }
}

/// Progress of the stream, for the binary to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamProgress {
    /// Rows read from the server so far.
    pub rows_read: u64,
    /// Machines done so far.
    pub machines_done: usize,
}

/// What a streamed job produced.
#[derive(Debug)]
pub struct StreamedOutcome {
    /// The parent run.
    pub run_id: String,
    /// The registered version, when registration is on.
    pub model_version: Option<ModelVersion>,
    /// Machines read.
    pub machines: usize,
    /// Machines the query named that had no row in its window.
    pub machines_without_rows: Vec<String>,
    /// Rows read (every split).
    pub rows: usize,
    /// Rows in the train / validation / test splits as fitted and scored
    /// (train after downsampling).
    pub split_rows: [usize; 3],
    /// Training rows downsampling left out.
    pub dropped_rows: usize,
    /// Bytes of bin codes held for the final fit.
    pub code_bytes: usize,
    /// Best validation F1 and its parameters.
    pub best_validation_f1: f64,
    /// Best parameters.
    pub best_params: BTreeMap<String, ParamValue>,
    /// How the trials ended.
    pub trial_counts: TrialCounts,
    /// The alarm threshold (best validation F1).
    pub threshold: f64,
    /// Scores on the test split.
    pub test: TestScores,
    /// Failures caught, lead times and false alarms on the test split.
    pub events: EventMetrics,
    /// The failure-mode classifier: trained or why not, and its test scores.
    pub failure_modes: ModeReport,
    /// Seconds per stage, in order.
    pub stage_seconds: Vec<(&'static str, f64)>,
    /// Where the summary and model folder were written.
    pub output_dir: PathBuf,
}

impl StreamedOutcome {
    /// The outcome as JSON (what `run_summary.json` holds).
    pub fn summary_json(&self) -> serde_json::Value {
        let stages: serde_json::Map<String, serde_json::Value> = self
            .stage_seconds
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
            .collect();
        let params: serde_json::Map<String, serde_json::Value> = self
            .best_params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(param_text(v))))
            .collect();
        serde_json::json!({
            "run_id": self.run_id,
            "model_version": self.model_version.as_ref().map(|v| &v.version),
            "machines": self.machines,
            "machines_without_rows": self.machines_without_rows,
            "rows_read": self.rows,
            "rows": {"train": self.split_rows[0], "validation": self.split_rows[1], "test": self.split_rows[2]},
            "dropped_rows": self.dropped_rows,
            "code_bytes": self.code_bytes,
            "best_validation_f1": self.best_validation_f1,
            "best_params": params,
            "trials": self.trial_counts,
            "threshold": self.threshold,
            "test": self.test,
            "events": self.events,
            "failure_modes": self.failure_modes,
            "stage_seconds": stages,
            "total_seconds": self.stage_seconds.iter().map(|s| s.1).sum::<f64>(),
        })
    }

    /// Writes [`Self::summary_json`] to `output_dir/run_summary.json`.
    pub fn write_summary(&self) -> Result<PathBuf, PipelineError> {
        let path = self.output_dir.join(crate::train::RUN_SUMMARY_FILE);
        let text = serde_json::to_vec_pretty(&self.summary_json())
            .map_err(|e| PipelineError::Invalid(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| PipelineError::Io {
            path: path.clone(),
            source: e,
        })?;
        Ok(path)
    }
}

/// Runs the streamed training job against `tracker`; `stream_progress` hears
/// of every fetch and machine.
pub fn train_streamed(
    source: &StreamSource,
    config: &TrainConfig,
    stream: &StreamConfig,
    tracker: &Tracker,
    progress: ProgressFn,
    stream_progress: &mut dyn FnMut(StreamProgress),
) -> Result<StreamedOutcome, PipelineError> {
    config.validate()?;
    stream.validate()?;
    if config.alarm_policy != AlarmPolicy::F1 || config.alarm_smoothing.is_some() {
        return Err(PipelineError::Invalid(
            "the streamed (PostgreSQL) pipeline chooses the threshold by validation F1 only: \
             drop --alarm-policy / --alarm-smoothing"
                .into(),
        ));
    }
    let experiment = tracker.get_or_create_experiment(&config.experiment)?;
    let parent = tracker.start_run(
        RunOptions::new(&experiment.experiment_id)
            .name(format!("train-{}", Utc::now().format("%Y%m%d-%H%M%S")))
            .tag("vigil.job", "train")
            .tag("vigil.data_source", "postgres")
            .tag("vigil.ingestion", "streamed"),
    )?;
    let job = Job {
        source,
        config,
        stream,
        tracker,
        parent: &parent,
        progress,
        seconds: Vec::new(),
    };
    let result = job.run(stream_progress);
    end_job_run(parent, result)
}

/// `pipeline --source postgres --join-study NAME`: streams and codes the table
/// as the leader did ([`train_streamed`] with PostgreSQL study storage), then
/// runs trials of its study ([`join_study`](crate::tune::join_study)); the
/// final fit and registration are the leader's.
pub fn join_streamed(
    name: &str,
    source: &StreamSource,
    config: &TrainConfig,
    stream: &StreamConfig,
    tracker: &Tracker,
    progress: ProgressFn,
    stream_progress: &mut dyn FnMut(StreamProgress),
) -> Result<JoinOutcome, PipelineError> {
    stream.validate()?;
    let load = || {
        let (cuts, _) = plan(source, config)?;
        let ((coded, _, _), _) = ingest(source, config, stream, cuts, stream_progress)?;
        let splits = [coded.train, coded.validation, coded.test];
        Splits::of(splits, stream.downsample < 1.0)
    };
    join_study_rows(name, config, tracker, load, &progress)
}

/// One streamed job in its run.
struct Job<'a> {
    source: &'a StreamSource,
    config: &'a TrainConfig,
    stream: &'a StreamConfig,
    tracker: &'a Tracker,
    parent: &'a ActiveRun,
    progress: ProgressFn,
    seconds: Vec<(&'static str, f64)>,
}

/// What the stream stage gives: the coded fleet, what else it learnt, and the
/// machines the query named that had no rows.
type Streamed = (ingest::Coded, ingest::FleetFacts, Vec<String>);

/// The coded splits, ready to fit on.
struct Splits {
    train: (BinnedSamples, Vec<u8>, Vec<f64>),
    validation: (BinnedSamples, Vec<u8>),
    test: (BinnedSamples, Vec<u8>),
    /// Failure modes of the train, validation and test rows.
    modes: [Vec<FailureMode>; 3],
    /// Whether the training rows' weights apply (they were downsampled).
    weighted: bool,
}

/// Train and validation rows joined: what the final fits learn from.
struct Joined {
    x: BinnedSamples,
    /// Sample weights, when the training rows were downsampled.
    weights: Option<Vec<f64>>,
    modes: Vec<FailureMode>,
}

impl Splits {
    /// The coded splits, refused unless each holds both classes.
    fn of(
        [train, validation, test]: [CodedSplit; 3],
        weighted: bool,
    ) -> Result<Splits, PipelineError> {
        let ((tx, ty, tw), train_modes) = ingest::finish(train);
        let ((vx, vy, _), validation_modes) = ingest::finish(validation);
        let ((sx, sy, _), test_modes) = ingest::finish(test);
        let splits = Splits {
            train: (tx, ty, tw),
            validation: (vx, vy),
            test: (sx, sy),
            modes: [train_modes, validation_modes, test_modes],
            weighted,
        };
        for (name, y) in [
            ("train", &splits.train.1),
            ("validation", &splits.validation.1),
            ("test", &splits.test.1),
        ] {
            let positives = y.iter().filter(|&&l| l == 1).count();
            if positives == 0 || positives == y.len() {
                return Err(PipelineError::Invalid(format!(
                    "the {name} split ({} rows) has {positives} failure rows: both classes are needed",
                    y.len()
                )));
            }
        }
        Ok(splits)
    }
}

/// Trials fit on the training codes (weighted when downsampled) and are
/// scored on the validation codes' representatives.
impl TrialRows for Splits {
    fn fingerprint(&self, config: &TrainConfig) -> String {
        let mut h = Fnv64::of_trial_settings(config);
        let (tx, ty, tw) = &self.train;
        let (vx, vy) = &self.validation;
        for (x, y) in [(tx, ty), (vx, vy)] {
            h.write(&(x.n_rows() as u64).to_le_bytes());
            for f in 0..x.n_features() {
                h.write(x.column(f).unwrap_or_default());
            }
            h.write(y);
        }
        if self.weighted {
            for w in tw {
                h.write(&w.to_bits().to_le_bytes());
            }
        }
        h.hex()
    }

    fn score(&self, params: &RandomForestParams) -> Result<(f64, f64), PipelineError> {
        let (tx, ty, tw) = &self.train;
        let (vx, vy) = &self.validation;
        let weights = self.weighted.then_some(tw.as_slice());
        let model = capped(params, tx.n_rows()).fit_binned(tx, ty, weights, &|_, _| {})?;
        let proba = score(&model, vx)?;
        let choice = best_threshold_f1(vy, &proba)?;
        Ok((choice.f_score, choice.threshold))
    }
}

impl Job<'_> {
    fn stage<T>(
        &mut self,
        stage: &'static str,
        f: impl FnOnce(&Self) -> Result<(T, String), PipelineError>,
    ) -> Result<T, PipelineError> {
        if self.config.stop.load(Ordering::SeqCst) {
            return Err(PipelineError::Interrupted { stage });
        }
        (self.progress)(Progress::Stage(stage));
        let started = Instant::now();
        let (value, summary) = f(self)?;
        let seconds = started.elapsed().as_secs_f64();
        self.seconds.push((stage, seconds));
        (self.progress)(Progress::StageDone {
            stage,
            summary,
            seconds,
        });
        Ok(value)
    }

    fn run(
        mut self,
        stream_progress: &mut dyn FnMut(StreamProgress),
    ) -> Result<StreamedOutcome, PipelineError> {
        let cuts = self.stage("plan", |job| job.plan())?;
        let (coded, facts, machines_without_rows) =
            self.stage("stream", |job| job.ingest(cuts, stream_progress))?;
        let ingest::Coded {
            isolation_forest,
            train,
            validation,
            test,
            test_facts,
            ..
        } = coded;
        let splits = Splits::of([train, validation, test], self.stream.downsample < 1.0)?;
        let split_rows = [
            splits.train.1.len(),
            splits.validation.1.len(),
            splits.test.1.len(),
        ];
        self.log_data(&facts, split_rows)?;
        let tuning = self.stage("tuning", |job| job.tune(&splits))?;
        let best = forest_params(&tuning.best_params, self.config)?;
        let Splits {
            train,
            validation,
            test,
            modes: [train_modes, validation_modes, test_modes],
            ..
        } = splits;
        let (model, joined) = self.stage("final_fit", |job| {
            job.final_fit(&best, train, (validation, [train_modes, validation_modes]))
        })?;
        let code_bytes = joined.x.code_bytes();
        let modes = self.stage("failure_modes", |job| {
            job.fit_modes(&best, joined, (&test.0, &test_modes))
        })?;
        let threshold = tuning.best_threshold;
        let (evaluation, events) = self.stage("evaluation", |_| {
            let proba = score(&model, &test.0)?;
            let failures = test_failures(&facts, &test_facts);
            let horizon = Duration::from_secs(60 * HORIZON_MINUTES as u64);
            let (machine, time, delivered) = first_deliveries(&test_facts, &proba);
            let events = evaluate_scores(
                &machine,
                &time,
                &delivered,
                threshold,
                &failures,
                &event_params(horizon),
            )?;
            let e = score_split(
                test.1,
                proba,
                &test_facts.anomaly,
                test_facts.flagged,
                threshold,
            )?;
            let summary = format!(
                "test F1 {:.4}, ROC-AUC {:.4}; {} of {} failures caught",
                e.scores.f1, e.scores.roc_auc, events.failures_caught, events.failures_total
            );
            Ok(((e, events), summary))
        })?;
        let bundle = ModelBundle {
            random_forest: model,
            isolation_forest,
            feature_spec: self.config.feature_spec.clone(),
            meta: BundleMeta {
                format_version: BUNDLE_FORMAT_VERSION,
                feature_names: facts.feature_names.clone(),
                sensors: self.config.feature_spec.sensors.clone(),
                machines: facts.machine_ids.clone(),
                threshold,
                alarm_policy: AlarmPolicy::F1,
                alarm_smoothing: None,
                label_horizon_minutes: HORIZON_MINUTES as f64,
                trained_rows: split_rows[0] + split_rows[1],
                trained_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                failure_modes: modes
                    .model
                    .as_ref()
                    .map(|m| m.modes.clone())
                    .unwrap_or_default(),
            },
            failure_modes: modes.model,
            drift_reference: Some(facts.drift_sample.reference(&facts.feature_names)?),
        };
        let example = test_facts
            .example
            .unwrap_or_else(|| Array2::zeros((0, facts.feature_names.len())));
        let output_dir = self.config.output_dir.join(self.parent.run_id());
        let model_version = self.stage("tracking", |job| {
            job.track(
                &bundle,
                &example,
                (
                    &evaluation.scores,
                    &events,
                    (&modes.report, modes.test.as_ref()),
                ),
                &tuning,
                &output_dir,
            )
        })?;
        Ok(StreamedOutcome {
            run_id: self.parent.run_id().to_string(),
            model_version,
            machines: facts.machine_ids.len(),
            machines_without_rows,
            rows: facts.rows,
            split_rows,
            dropped_rows: facts.dropped,
            code_bytes,
            best_validation_f1: tuning.best_value,
            best_params: tuning.best_params,
            trial_counts: tuning.counts,
            threshold,
            test: evaluation.scores,
            events,
            failure_modes: modes.report,
            stage_seconds: self.seconds,
            output_dir,
        })
    }

    fn plan(&self) -> Result<(Cuts, String), PipelineError> {
        plan(self.source, self.config)
    }

    fn ingest(
        &self,
        cuts: Cuts,
        stream_progress: &mut dyn FnMut(StreamProgress),
    ) -> Result<(Streamed, String), PipelineError> {
        ingest(self.source, self.config, self.stream, cuts, stream_progress)
    }

    fn log_data(&self, facts: &ingest::FleetFacts, rows: [usize; 3]) -> Result<(), PipelineError> {
        let c = self.config;
        self.parent.log_params([
            ("data_source".to_string(), "postgres".to_string()),
            ("ingestion".to_string(), "streamed".to_string()),
            ("table".to_string(), self.source.table.clone()),
            ("downsample".to_string(), self.stream.downsample.to_string()),
            (
                "bin_edge_rows".to_string(),
                self.stream.edge_rows.to_string(),
            ),
            ("seed".to_string(), c.seed.to_string()),
            ("n_trials".to_string(), c.n_trials.to_string()),
            ("contamination".to_string(), c.contamination.to_string()),
            (
                "label_horizon_minutes".to_string(),
                HORIZON_MINUTES.to_string(),
            ),
        ])?;
        self.parent.log_metrics(
            [
                ("n_machines", facts.machine_ids.len() as f64),
                ("n_rows_read", facts.rows as f64),
                ("n_samples_train", rows[0] as f64),
                ("n_samples_validation", rows[1] as f64),
                ("n_samples_test", rows[2] as f64),
                ("n_rows_downsampled_out", facts.dropped as f64),
            ],
            0,
        )?;
        Ok(())
    }

    fn tune(&self, s: &Splits) -> Result<(crate::tune::Tuning, String), PipelineError> {
        let t = tune_rows(self.config, s, self.parent, &self.progress)?;
        let c = t.counts;
        let summary = format!(
            "best validation F1 {:.4} ({} complete, {} pruned, {} failed)",
            t.best_value, c.complete, c.pruned, c.failed
        );
        Ok((t, summary))
    }

    /// The best parameters on train and validation rows together.
    fn final_fit(
        &self,
        params: &RandomForestParams,
        train: (BinnedSamples, Vec<u8>, Vec<f64>),
        (validation, [train_modes, validation_modes]): (
            (BinnedSamples, Vec<u8>),
            [Vec<FailureMode>; 2],
        ),
    ) -> Result<((RandomForest, Joined), String), PipelineError> {
        let (tx, mut y, mut w) = train;
        let (vx, vy) = validation;
        w.extend(std::iter::repeat_n(1.0, vy.len()));
        y.extend(vy);
        let x = tx.concat(vx)?;
        let weights = (self.stream.downsample < 1.0).then_some(w);
        let model =
            capped(params, x.n_rows()).fit_binned(&x, &y, weights.as_deref(), &self.trees())?;
        let summary = format!(
            "{} trees on {} rows ({} MB of codes)",
            params.n_estimators,
            x.n_rows(),
            x.code_bytes() >> 20
        );
        let mut modes = train_modes;
        modes.extend(validation_modes);
        Ok(((model, Joined { x, weights, modes }), summary))
    }

    /// The failure-mode classifier on the final fit's rows (the binary
    /// parameters, balanced class weights), scored on the test codes;
    /// skipped, saying why, when the table has no modes.
    fn fit_modes(
        &self,
        params: &RandomForestParams,
        joined: Joined,
        (test, test_modes): (&BinnedSamples, &[FailureMode]),
    ) -> Result<(FittedModes, String), PipelineError> {
        let fit = fit_mode_model_with(params, &joined.modes, |p, labels| {
            let x = &joined.x;
            let weights = joined.weights.as_deref();
            Ok(capped(p, x.n_rows()).fit_binned(x, labels, weights, &self.trees())?)
        })?;
        drop(joined);
        settle_modes(fit, |model| {
            let proba = class_probabilities(&model.forest, test)?;
            evaluate_mode_probabilities(model, proba.view(), test_modes)
        })
    }

    /// Progress of a fit, tree by tree.
    fn trees(&self) -> impl Fn(usize, usize) + Sync + use<> {
        let p = Arc::clone(&self.progress);
        move |done: usize, of: usize| p(Progress::Trees { done, of })
    }

    fn track(
        &self,
        bundle: &ModelBundle,
        example: &Array2<f64>,
        (test, events, modes): (
            &TestScores,
            &EventMetrics,
            (&ModeReport, Option<&ModeEvaluation>),
        ),
        tuning: &crate::tune::Tuning,
        output_dir: &std::path::Path,
    ) -> Result<(Option<ModelVersion>, String), PipelineError> {
        let parent = self.parent;
        let model_dir = output_dir.join("model");
        std::fs::create_dir_all(&model_dir).map_err(|e| PipelineError::Io {
            path: model_dir.clone(),
            source: e,
        })?;
        bundle.save(&model_dir, example.view())?;
        log_scores(parent, tuning, test, bundle.meta.threshold, &self.seconds)?;
        log_event_metrics(parent, "test_", events)?;
        log_modes(parent, modes)?;
        parent.log_artifact_as(&model_dir.join(FEATURE_SPEC_FILE), FEATURE_SPEC_FILE)?;
        let logged = parent.log_model("model", &model_dir, &bundle.mlmodel())?;
        parent.flush()?;
        if !self.config.register {
            return Ok((None, "logged (registration off)".to_string()));
        }
        let version = self
            .tracker
            .register_model(&self.config.model_name, &logged)?;
        let summary = format!(
            "registered {} version {}",
            self.config.model_name, version.version
        );
        Ok((Some(version), summary))
    }
}

/// The fleet's time span, and the cut-offs at the configured fractions of it.
fn plan(source: &StreamSource, config: &TrainConfig) -> Result<(Cuts, String), PipelineError> {
    let mut store = TelemetryStore::connect(&source.config, &source.table)?;
    let (first, last) = store.time_span(&source.query)?.ok_or_else(|| {
        PipelineError::Invalid(format!(
            "table {} has no rows in the query's window",
            source.table
        ))
    })?;
    let span = (last - first) as f64;
    let at = |fraction: f64| first + (span * fraction) as i64;
    let c = config;
    let cuts = Cuts {
        validation: at(1.0 - c.test_fraction - c.validation_fraction),
        test: at(1.0 - c.test_fraction),
        embargo: WindowLength::minutes(HORIZON_MINUTES),
    };
    let hours = span / 3.6e9;
    Ok((cuts, format!("{hours:.1} h of telemetry")))
}

/// Streams every machine into the coded fleet.
fn ingest(
    source: &StreamSource,
    config: &TrainConfig,
    stream: &StreamConfig,
    cuts: Cuts,
    stream_progress: &mut dyn FnMut(StreamProgress),
) -> Result<(Streamed, String), PipelineError> {
    let mut store = TelemetryStore::connect(&source.config, &source.table)?;
    let mut fleet = Fleet::new(IngestRules {
        spec: config.feature_spec.clone(),
        cuts,
        downsample: stream.downsample,
        edge_rows: stream.edge_rows,
        seed: config.seed,
        contamination: config.contamination,
    });
    let mut failed: Option<PipelineError> = None;
    let stop = Arc::clone(&config.stop);
    let options = StreamOptions {
        fetch_rows: stream.fetch_rows,
    };
    let streamed = store.for_each_machine(
        &source.query,
        &options,
        &mut |p| {
            stream_progress(StreamProgress {
                rows_read: p.rows_read,
                machines_done: p.machines_done,
            })
        },
        &mut |frame| {
            if stop.load(Ordering::SeqCst) {
                failed = Some(PipelineError::Interrupted { stage: "stream" });
            } else if let Err(e) = fleet.push_machine(&frame) {
                failed = Some(e);
            }
            match failed {
                // Stop the stream: the error itself is `failed`.
                Some(_) => Err(vigil_features::FeaturesError::InvalidParameter {
                    name: "machine",
                    reason: "ingestion failed".into(),
                }),
                None => Ok(()),
            }
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    let summary = streamed?;
    let (coded, facts) = fleet.finish()?;
    let mut words = format!(
        "{} machines, {} rows streamed, {} kept for training",
        facts.machine_ids.len(),
        summary.progress.rows_read,
        coded.train.y.len()
    );
    if !summary.machines_without_rows.is_empty() {
        words.push_str(&format!(
            "; no rows for {}",
            summary.machines_without_rows.join(", ")
        ));
    }
    Ok(((coded, facts, summary.machines_without_rows), words))
}

/// `params` with its per-tree sample capped at the rows there are
/// (downsampling can leave fewer than the configured count).
fn capped(params: &RandomForestParams, rows: usize) -> RandomForestParams {
    let mut p = params.clone();
    if let Some(MaxSamples::Count(c)) = p.max_samples {
        p.max_samples = Some(MaxSamples::Count(c.min(rows.max(1))));
    }
    p
}

/// P(failure) of every row of `x`, a chunk of representatives at a time.
fn score(model: &RandomForest, x: &BinnedSamples) -> Result<Vec<f64>, PipelineError> {
    let mut proba = Vec::with_capacity(x.n_rows());
    for chunk in representative_chunks(x) {
        proba.extend(crate::bundle::failure_probability(model, &chunk)?);
    }
    Ok(proba)
}

/// The rows of `x` as their representatives, [`SCORE_CHUNK`] rows at a time.
fn representative_chunks(x: &BinnedSamples) -> impl Iterator<Item = Array2<f64>> + '_ {
    (0..x.n_rows())
        .step_by(SCORE_CHUNK)
        .map(move |start| x.representatives(start..start + SCORE_CHUNK))
}

/// Every class's probability for every row of `x` (rows × the forest's
/// classes), a chunk of representatives at a time.
fn class_probabilities(
    model: &RandomForest,
    x: &BinnedSamples,
) -> Result<Array2<f64>, PipelineError> {
    let mut proba = Array2::zeros((0, model.classes().len()));
    for chunk in representative_chunks(x) {
        let part = model.predict_proba(&chunk)?;
        proba
            .append(ndarray::Axis(0), part.view())
            .map_err(|e| PipelineError::Model(format!("class probabilities: {e}")))?;
    }
    Ok(proba)
}

/// Machine, time and score of the test rows that are first deliveries (a
/// repeated timestamp of a machine is a retry, scored once, as `serve` does).
fn first_deliveries(facts: &ingest::TestFacts, proba: &[f64]) -> (Vec<u32>, Vec<i64>, Vec<f64>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    let mut last: Option<(u32, i64)> = None;
    for (i, (&m, &t)) in facts.machine.iter().zip(&facts.time).enumerate() {
        if last == Some((m, t)) {
            continue;
        }
        last = Some((m, t));
        out.0.push(m);
        out.1.push(t);
        out.2.push(proba.get(i).copied().unwrap_or(f64::NAN));
    }
    out
}

/// The failures the test rows can see: events from the first test time to one
/// horizon after the last.
fn test_failures(facts: &ingest::FleetFacts, test: &ingest::TestFacts) -> Vec<Failure> {
    let (Some(&first), Some(&last)) = (test.time.iter().min(), test.time.iter().max()) else {
        return Vec::new();
    };
    let until = last.saturating_add(HORIZON_MINUTES * 60_000_000);
    facts
        .failure_events
        .iter()
        .filter(|e| e.time >= first && e.time <= until)
        .filter_map(|e| {
            let machine = facts.machine_ids.iter().position(|id| *id == e.machine)?;
            Some(Failure {
                machine: u32::try_from(machine).ok()?,
                time: e.time,
                mode: (e.mode != FailureMode::None).then(|| e.mode.as_str().to_string()),
            })
        })
        .collect()
}
