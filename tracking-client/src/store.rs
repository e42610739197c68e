//! The one interface both backends implement: a tracking server
//! ([`crate::RestStore`]) and a local `./mlruns` directory ([`crate::FileStore`]).

use std::fmt;
use std::path::Path;

use crate::error::Result;
use crate::types::{
    CreateModelVersion, CreateRun, Experiment, FileInfo, Metric, ModelVersion, Page, Param,
    RegisteredModel, Run, RunSearch, RunStatus, Stage, Tag, ViewType,
};

/// Tag holding a client-generated key on created runs and model versions, so a
/// retried creation finds the first attempt instead of making a duplicate.
pub const REQUEST_ID_TAG: &str = "vigil.client_request_id";
/// Tag a `sync` puts on the server copy of a local run or version: the local id.
pub const SYNCED_FROM_TAG: &str = "vigil.synced_from";

/// MLflow's experiment, run, artifact and registry operations.
///
/// Methods are low level and map one-to-one onto MLflow's API; [`crate::Tracker`]
/// and [`crate::ActiveRun`] build the convenient path on top. Artifact methods
/// take an artifact *root* URI (a run's `artifact_uri`, a model version's
/// download URI) and a path relative to it.
pub trait TrackingStore: Send + Sync + fmt::Debug {
    /// Where this store points (no credentials).
    fn uri(&self) -> String;

    // ---- experiments ----

    /// Creates an experiment; returns its id.
    fn create_experiment(&self, name: &str, tags: &[Tag]) -> Result<String>;
    /// An experiment by id.
    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment>;
    /// An experiment by name (deleted ones included, as the server does).
    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>>;
    /// Searches experiments (`name LIKE 'x%'`, `tags.k = 'v'`).
    fn search_experiments(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
        view: ViewType,
    ) -> Result<Page<Experiment>>;
    /// Sets an experiment tag.
    fn set_experiment_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()>;
    /// Soft-deletes an experiment.
    fn delete_experiment(&self, experiment_id: &str) -> Result<()>;
    /// Restores a deleted experiment.
    fn restore_experiment(&self, experiment_id: &str) -> Result<()>;

    // ---- runs ----

    /// Creates a run.
    fn create_run(&self, request: &CreateRun) -> Result<Run>;
    /// A run with its params, tags and latest metrics.
    fn get_run(&self, run_id: &str) -> Result<Run>;
    /// Sets status and end time.
    fn update_run(&self, run_id: &str, status: RunStatus, end_time: Option<i64>) -> Result<()>;
    /// Soft-deletes a run.
    fn delete_run(&self, run_id: &str) -> Result<()>;
    /// Restores a deleted run.
    fn restore_run(&self, run_id: &str) -> Result<()>;
    /// Searches runs.
    fn search_runs(&self, search: &RunSearch) -> Result<Page<Run>>;
    /// Logs metrics, params and tags. Any sizes: the store splits them to its limits.
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()>;
    /// Sets (overwrites) a run tag.
    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()>;
    /// Removes a run tag.
    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()>;
    /// Every point of a metric, in logging order.
    fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>>;

    // ---- artifacts ----

    /// Uploads a local file to `root/rel_path`.
    fn upload_artifact(&self, root: &str, rel_path: &str, local: &Path) -> Result<()>;
    /// Uploads bytes to `root/rel_path`.
    fn upload_artifact_bytes(&self, root: &str, rel_path: &str, bytes: &[u8]) -> Result<()>;
    /// Lists one directory level under `root/rel_path` (`""` for the root).
    /// Paths in the answer are relative to `root`.
    fn list_artifacts(&self, root: &str, rel_path: &str) -> Result<Vec<FileInfo>>;
    /// Downloads one file to `dest`.
    fn download_artifact(
        &self,
        root: &str,
        rel_path: &str,
        dest: &Path,
        size_hint: Option<u64>,
    ) -> Result<()>;

    // ---- model registry ----

    /// Creates a registered model.
    fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<RegisteredModel>;
    /// A registered model (with latest versions per stage and aliases).
    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel>;
    /// Searches registered models (`name LIKE 'x%'`).
    fn search_registered_models(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>>;
    /// Deletes a registered model and its versions.
    fn delete_registered_model(&self, name: &str) -> Result<()>;
    /// Sets a registered-model tag.
    fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()>;
    /// Creates a model version (never twice for one request, even when retried).
    fn create_model_version(&self, request: &CreateModelVersion) -> Result<ModelVersion>;
    /// A model version.
    fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion>;
    /// Searches versions (`name = 'm'`, `run_id = 'r'`).
    fn search_model_versions(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>>;
    /// The newest version in each of `stages` (all stages when empty).
    fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>>;
    /// Moves a version to a stage, optionally archiving the stage's other versions.
    fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion>;
    /// Deletes a version.
    fn delete_model_version(&self, name: &str, version: &str) -> Result<()>;
    /// Sets a version tag.
    fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()>;
    /// Points an alias at a version (moving it if it pointed elsewhere).
    fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()>;
    /// Removes an alias.
    fn delete_alias(&self, name: &str, alias: &str) -> Result<()>;
    /// The version an alias points at.
    fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion>;
    /// Where a version's files are (an artifact root URI, or `runs:/…`).
    fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String>;
}
