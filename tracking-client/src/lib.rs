//! Vigil tracking client: MLflow experiment tracking and model registry, over
//! a real MLflow server or a local `./mlruns` directory.
//!
//! # The main path
//!
//! A [`Tracker`] opens the store the environment names (`MLFLOW_TRACKING_URI`
//! for a server, `./mlruns` when unset); the code is the same for both.
//! Runs are [`ActiveRun`] handles: every log call is appended to the run's
//! write-ahead spool before it returns, then sent in batches in the
//! background; a dropped handle ends its run as `FAILED`. What a process did
//! not deliver — the server was away, or the process was killed — is
//! delivered exactly once by the next [`Tracker::replay_spools`], which also
//! ends `FAILED` (tagged [`FAILURE_REASON_TAG`]) the runs of processes that
//! died. [`SpoolSync`] bounds what a power loss can take (200 ms by default).
//!
//! ```
//! use vigil_tracking_client::{
//!     ColumnType, MlModel, ModelSignature, RunOptions, Stage, Tracker, TrackingConfig, VigilFlavor,
//! };
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let mlruns = tmp.path().join("mlruns");
//! // Tracker::from_env() in a real program; here a local store in a temp dir.
//! let tracker = Tracker::new(TrackingConfig::builder().local_dir(&mlruns).build()?)?;
//! let experiment = tracker.get_or_create_experiment("predictive-maintenance")?;
//!
//! // A parent run with one child run per tuning trial.
//! let parent = tracker.start_run(RunOptions::new(&experiment.experiment_id).name("tuning"))?;
//! parent.log_param("n_trials", 2)?;
//! for trial in 0..2 {
//!     let child = parent.start_child(&format!("trial-{trial}"))?;
//!     child.log_param("max_depth", 4 + trial)?;
//!     for step in 0..10 {
//!         child.log_metric_at("oob_error", 0.5 / (step + 1) as f64, step)?;
//!     }
//!     child.log_metric("f1", 0.80 + 0.05 * trial as f64)?;
//!     child.finish()?;
//! }
//!
//! // Reports, plots and the model folder (with an MLmodel file).
//! parent.log_artifact_bytes("reports/metrics.json", br#"{"f1": 0.85}"#)?;
//! let model_dir = tmp.path().join("model");
//! std::fs::create_dir_all(&model_dir)?;
//! std::fs::write(model_dir.join("model.bin"), b"serialised forest")?;
//! let mlmodel = MlModel::new(
//!     VigilFlavor::new("random_forest", "postcard", 1, "model.bin"),
//!     Some(ModelSignature::doubles(["temperature_mean_1h", "vibration_std_30m"], ColumnType::Long)),
//! );
//! let logged = parent.log_model("model", &model_dir, &mlmodel)?;
//! let version = tracker.register_model("predictive_maintenance_model", &logged)?;
//! parent.finish()?;
//!
//! // `evaluate`: promote. `serve`: resolve and download.
//! tracker.store().set_alias("predictive_maintenance_model", "champion", &version.version)?;
//! tracker.promote("predictive_maintenance_model", &version.version, Stage::Production)?;
//! let dest = tmp.path().join("serving");
//! let (resolved, model) =
//!     tracker.download_model("models:/predictive_maintenance_model/Production", &dest)?;
//! assert_eq!(resolved.version.version, version.version);
//! assert_eq!(model.vigil.unwrap().model_file, "model.bin");
//! assert_eq!(std::fs::read(dest.join("model.bin"))?, b"serialised forest");
//! let champion = tracker.resolve_model("models:/predictive_maintenance_model@champion")?;
//! assert_eq!(champion.version.version, version.version);
//! # Ok(())
//! # }
//! ```
//!
//! # Where things are
//!
//! Everything is at the crate root except the [`validate`] checks.
//!
//! - [`TrackingStore`]: the one trait; [`RestStore`] (MLflow REST API) and
//!   [`FileStore`] (MLflow's file-store layout) implement it.
//! - [`Tracker`], [`ActiveRun`], [`RunOptions`]: the convenient path.
//! - [`MlModel`], [`VigilFlavor`], [`ModelSignature`]: the `MLmodel` file.
//! - MLflow's entities, shaped like its REST JSON: [`Experiment`], [`Run`] ([`RunInfo`],
//!   [`RunData`]), [`Metric`], [`Param`], [`Tag`], [`RegisteredModel`],
//!   [`ModelVersion`] and its [`Stage`].
//! - [`TrackingConfig`]: environment variables and builder; [`RetryPolicy`], [`BatchConfig`].
//!   Durations are bounded: [`MAX_TIMEOUT`] for configured ones (more is a
//!   config error), [`MAX_RETRY_AFTER`] for a server's `Retry-After` (more is
//!   not waited on: the call fails and its values stay spooled).
//! - The write-ahead spool: [`SpoolSync`] (fsync cadence, [`MAX_SPOOL_SYNC_INTERVAL`]),
//!   [`Tracker::replay_spools`] and its [`SpoolReport`], [`read_spool`] /
//!   [`SpoolContents`] to inspect a spool file, [`FAILURE_REASON_TAG`].
//! - [`sync()`]: push a local store to a server, exactly once.
//! - [`validate`]: the name and key rules applied before anything is sent.
//! - [`TrackingError`]: the one error type.
#![deny(missing_docs)]

mod artifacts;
mod config;
mod error;
mod file_store;
mod filter;
mod http;
mod local_artifacts;
mod model;
mod rest;
mod run;
mod spool;
mod store;
mod sync;
mod tracker;
mod types;
// A namespace of check functions (`validate::key`, `validate::alias`, ...): their
// names only read well behind the module's, so nothing in it is re-exported.
pub mod validate;
mod yaml;

pub use artifacts::{download_dir, list_recursive, upload_dir};
pub use config::{
    BatchConfig, Credentials, MAX_RETRY_AFTER, MAX_SPOOL_SYNC_INTERVAL, MAX_TIMEOUT, RetryPolicy,
    Secret, SpoolSync, TrackingConfig, TrackingConfigBuilder, TrackingUri,
};
pub use error::{Result, TrackingError};
pub use file_store::{DEFAULT_EXPERIMENT_ID, FileStore};
pub use model::{
    ColumnSpec, ColumnType, InputExampleInfo, MLMODEL_FILE, MlModel, ModelSignature, ONNX_FLAVOR,
    OnnxFlavor, PYFUNC_FLAVOR, PyFuncFlavor, PythonEnv, VIGIL_FLAVOR, VigilFlavor,
};
pub use rest::{
    MAX_ITEMS_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH, MAX_TAGS_PER_BATCH, RestStore,
};
pub use run::{ActiveRun, LoggedModel};
pub use spool::{FAILURE_REASON_TAG, SpoolContents, SpoolReport, read_spool};
pub use store::{REQUEST_ID_TAG, SYNCED_FROM_TAG, TrackingStore};
pub use sync::{SyncReport, sync};
pub use tracker::{ModelUri, ResolvedModel, RunOptions, Tracker};
pub use types::{
    CLAMPED_INFINITY, CreateModelVersion, CreateRun, Experiment, FileInfo, LifecycleStage, Metric,
    ModelAlias, ModelVersion, Page, Param, RegisteredModel, Run, RunData, RunInfo, RunSearch,
    RunStatus, Stage, Tag, ViewType, now_millis,
};
