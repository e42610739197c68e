//! The reference predictive-maintenance pipeline, as a library another Rust
//! service can embed: it composes the Vigil crates (`vigil-features`,
//! `vigil-forest`, `vigil-tuning`, `vigil-metrics`, `vigil-tracking-client`)
//! into training, evaluation and scoring. The binaries in `src/bin/` are thin
//! command-line fronts to these modules.
//!
//! # A guided tour
//!
//! The path a model takes, in the order the pipeline walks it:
//!
//! 1. **Telemetry** — [`source::DataSource`]: the simulator (the default), a CSV
//!    file, or a PostgreSQL / TimescaleDB table.
//! 2. **Training** — [`train::train`] with a [`train::TrainConfig`]: the 42
//!    features ([`vigil_features::TrainingSet`]), a time-ordered split with an
//!    embargo ([`train::Splits`]), the Isolation Forest, the TPE search over the
//!    Random Forest ([`tune::tune`]; in this process, or on PostgreSQL shared
//!    with worker processes that [`tune::join_study`]), the final fit, one evaluation on the test
//!    split ([`evaluation::evaluate_split`]), the failure-mode classifier and
//!    its per-mode scores ([`modes::fit_mode_model`], [`modes::evaluate_modes`]),
//!    TreeSHAP explanations of the test split ([`explain::shap_summary`]),
//!    and tracking: one parent run, a
//!    child run per trial, reports, plots ([`plots`]) and a registered version.
//!    It returns a [`train::TrainOutcome`] (scores, sizes, the model).
//!    From a PostgreSQL table too large to load ([`fleet::Ingestion`]),
//!    [`fleet::train_streamed`] runs the same job with bounded memory: the
//!    table streamed machine by machine, features kept as bin codes, optional
//!    negative downsampling, and workers that join with
//!    [`fleet::join_streamed`].
//! 3. **The model folder** — [`bundle::ModelBundle`]: both forests (and the
//!    failure-mode forest), the exact feature spec and the decision threshold; what the pipeline logs and
//!    every consumer loads ([`bundle::ModelBundle::download`] from the registry).
//! 4. **Champion / challenger** — [`evaluate::evaluate`] re-scores the
//!    Production version and the best newer one on the same recent data and
//!    promotes the better one.
//! 5. **Retraining** — [`schedule`]: a cron-like schedule, one job at a time
//!    (a file lock), retries with back-off.
//! 6. **Scoring** — [`serve`]: the HTTP service that computes features online,
//!    one sample at a time per machine, with the model's own spec.
//! 7. **Drift** — [`drift`]: the train split's reference saved with the model
//!    ([`drift::train_reference`]), the rule serve, evaluate and the
//!    scheduler apply ([`drift::drift_params`], and why it is not
//!    evidently's default), serve's bounded window ([`drift::FeatureWindow`])
//!    and the scheduler's check ([`drift::check_production`]).
//!
//! | binary | module | what it does |
//! | --- | --- | --- |
//! | `pipeline` | [`train`] | telemetry → features → split → Isolation Forest + TPE-tuned Random Forest → test evaluation → tracking → registration |
//! | `evaluate` | [`evaluate`] | compares runs, re-scores champion and challenger on the same recent data, promotes the better one |
//! | `scheduler` | [`schedule`] | runs the training job on a cron schedule (and, with `--retrain-on-drift`, when the data drifts), one at a time, with retries |
//! | `simulate` | [`source`] | writes simulated telemetry to PostgreSQL or CSV, at once or in real time |
//! | `serve` | [`serve`] | HTTP scoring service for the Production model, with online features |
//!
//! Errors of every crate, and what the pipeline checks itself, arrive as one
//! [`PipelineError`] with an [exit code](PipelineError::exit_code) for scripts.
//!
//! # Example
//!
//! Train on a small simulated fleet into a local tracking store, then score
//! the rows of the newest day with the trained bundle, as a service would:
//!
//! ```
//! use std::sync::Arc;
//! use vigil_examples::bundle::failure_probability;
//! use vigil_examples::source::DataSource;
//! use vigil_examples::train::{TrainConfig, train};
//! use vigil_features::{SimulatorConfig, TrainingSet};
//! use vigil_tracking_client::{Tracker, TrackingConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let tracker = Tracker::new(TrackingConfig::builder().local_dir(dir.path().join("mlruns")).build()?)?;
//! let source = DataSource::Simulated(SimulatorConfig { machines: 3, days: 3.0, ..Default::default() });
//! let config = TrainConfig {
//!     n_trials: 2,
//!     max_samples_per_tree: Some(5_000),
//!     output_dir: dir.path().join("out"),
//!     ..Default::default()
//! };
//! let outcome = train(&source, &config, &tracker, Arc::new(|_progress| {}))?;
//! assert!(outcome.test.roc_auc > 0.7, "test ROC-AUC {}", outcome.test.roc_auc);
//! assert_eq!(outcome.model_version.as_ref().map(|v| v.version.as_str()), Some("1"));
//!
//! // The bundle computes its own features from raw telemetry and scores them.
//! let bundle = &outcome.bundle;
//! let frame = source.load()?.frame;
//! let set = TrainingSet::build(&frame, &bundle.feature_spec)?;
//! let p = failure_probability(&bundle.random_forest, &set.features.values)?;
//! assert_eq!(p.len(), set.len());
//! assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod alarm;
pub mod bundle;
pub mod cli;
pub mod drift;
pub mod error;
pub mod evaluate;
pub mod evaluation;
pub mod explain;
pub mod fleet;
pub mod modes;
pub mod plots;
pub mod schedule;
pub mod scoring;
pub mod serve;
pub mod source;
pub mod train;
pub mod tune;

pub use error::PipelineError;

use vigil_tracking_client::{SpoolReport, Tracker, TrackingUri};

/// Opens the tracking store the environment names: `MLFLOW_TRACKING_URI` (a
/// server, or a `file:` URI), or `./mlruns` when it is unset.
pub fn open_tracker() -> Result<Tracker, PipelineError> {
    Ok(Tracker::from_env()?)
}

/// Replays the tracking spools earlier processes left
/// ([`Tracker::replay_spools`]): delivers what they logged and the server never
/// took, and ends `FAILED` every run whose process died without ending it.
/// Returns one line per thing done or wrong, for the binary to print. It
/// never fails: a damaged spool or an unreachable server must not keep a job
/// from running (what could not be delivered stays spooled for the next try).
pub fn replay_spools(tracker: &Tracker) -> Vec<String> {
    match tracker.replay_spools() {
        Ok(report) => describe_replay(&report),
        Err(e) => vec![format!(
            "warning: leftover tracking spools were not replayed: {e}"
        )],
    }
}

fn describe_replay(report: &SpoolReport) -> Vec<String> {
    let mut lines = Vec::new();
    if report.operations > 0 {
        lines.push(format!(
            "tracking: delivered {} spooled operation(s) left by earlier processes",
            report.operations
        ));
    }
    for (run_id, reason) in &report.runs_failed {
        lines.push(format!("tracking: ended run {run_id} FAILED: {reason}"));
    }
    for (what, reason) in &report.still_pending {
        lines.push(format!(
            "warning: tracking spool {what} not delivered yet: {reason}"
        ));
    }
    lines
}

/// Where a tracker writes, for log lines.
pub fn describe_tracker(tracker: &Tracker) -> String {
    match &tracker.config().uri {
        TrackingUri::Server(url) => format!("MLflow server at {url}"),
        TrackingUri::Local(dir) => format!("local store {}", dir.display()),
    }
}
