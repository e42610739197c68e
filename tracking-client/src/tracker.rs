//! [`Tracker`]: the convenient front door over either backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::artifacts;
use crate::config::{TrackingConfig, TrackingUri};
use crate::error::{Result, TrackingError};
use crate::file_store::FileStore;
use crate::model::{MLMODEL_FILE, MlModel};
use crate::rest::{RestStore, join_uri};
use crate::run::{ActiveRun, LoggedModel};
use crate::spool::{self, RunWal, SpoolOwner, SpoolReport};
use crate::store::{REQUEST_ID_TAG, TrackingStore};
use crate::types::{
    CreateModelVersion, CreateRun, Experiment, ModelVersion, Run, RunSearch, Stage, Tag,
};
use crate::validate;

/// Options for a new run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOptions {
    /// The experiment.
    pub experiment_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Parent run (sets `mlflow.parentRunId`).
    pub parent_run_id: Option<String>,
    /// Extra tags.
    pub tags: Vec<Tag>,
}

impl RunOptions {
    /// A run in `experiment_id`.
    pub fn new(experiment_id: impl Into<String>) -> Self {
        RunOptions {
            experiment_id: experiment_id.into(),
            ..Default::default()
        }
    }

    /// Names the run.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Nests it under a parent run.
    pub fn parent(mut self, run_id: impl Into<String>) -> Self {
        self.parent_run_id = Some(run_id.into());
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(Tag::new(key, value));
        self
    }
}

/// A parsed `models:/` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/<name>/<version>`
    Version {
        /// Registered model.
        name: String,
        /// Version number.
        version: String,
    },
    /// `models:/<name>/<stage>` (Staging, Production, Archived, None)
    Stage {
        /// Registered model.
        name: String,
        /// Stage.
        stage: Stage,
    },
    /// `models:/<name>/latest`
    Latest {
        /// Registered model.
        name: String,
    },
    /// `models:/<name>@<alias>`
    Alias {
        /// Registered model.
        name: String,
        /// Alias.
        alias: String,
    },
}

impl ModelUri {
    /// Parses a `models:/` URI.
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |why: &str| TrackingError::invalid("model URI", uri, why.to_string());
        let rest = uri
            .strip_prefix("models:/")
            .ok_or_else(|| bad("must start with models:/"))?
            .trim_start_matches('/');
        if let Some((name, alias)) = rest.split_once('@') {
            validate::model_name(name)?;
            validate::alias(alias).map_err(|_| bad("invalid alias"))?;
            return Ok(ModelUri::Alias {
                name: name.to_string(),
                alias: alias.to_string(),
            });
        }
        let (name, which) = rest.rsplit_once('/').ok_or_else(|| {
            bad("expected models:/<name>/<version|stage|latest> or models:/<name>@<alias>")
        })?;
        validate::model_name(name)?;
        if which.is_empty() {
            return Err(bad("missing version, stage or 'latest'"));
        }
        if which.chars().all(|c| c.is_ascii_digit()) {
            return Ok(ModelUri::Version {
                name: name.into(),
                version: which.into(),
            });
        }
        if which.eq_ignore_ascii_case("latest") {
            return Ok(ModelUri::Latest { name: name.into() });
        }
        match Stage::parse(which) {
            Some(stage) => Ok(ModelUri::Stage {
                name: name.into(),
                stage,
            }),
            None => Err(bad(
                "the part after the name must be a version number, a stage or 'latest'",
            )),
        }
    }
}

/// A `models:/` URI resolved to one version and its files.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    /// The version.
    pub version: ModelVersion,
    /// Where its files are (an artifact root URI).
    pub artifact_uri: String,
}

/// The front door: opens the store named by the configuration and gives the
/// convenient path (experiments by name, runs with batching, models).
#[derive(Debug, Clone)]
pub struct Tracker {
    store: Arc<dyn TrackingStore>,
    config: Arc<TrackingConfig>,
}

impl Tracker {
    /// Opens the store the environment names: `MLFLOW_TRACKING_URI` (a
    /// server), or `./mlruns` when it is unset or a `file:` URI.
    pub fn from_env() -> Result<Self> {
        Self::new(TrackingConfig::from_env()?)
    }

    /// Opens the store a configuration names.
    pub fn new(config: TrackingConfig) -> Result<Self> {
        let store: Arc<dyn TrackingStore> = match &config.uri {
            TrackingUri::Server(_) => Arc::new(RestStore::new(&config)?),
            TrackingUri::Local(dir) => Arc::new(FileStore::open(dir)?),
        };
        Ok(Tracker {
            store,
            config: Arc::new(config),
        })
    }

    /// Uses an already-built store.
    pub fn with_store(store: Arc<dyn TrackingStore>, config: TrackingConfig) -> Self {
        Tracker {
            store,
            config: Arc::new(config),
        }
    }

    /// The store, for the low-level API.
    pub fn store(&self) -> &dyn TrackingStore {
        self.store.as_ref()
    }

    pub(crate) fn store_arc(&self) -> Arc<dyn TrackingStore> {
        Arc::clone(&self.store)
    }

    /// The configuration.
    pub fn config(&self) -> &TrackingConfig {
        &self.config
    }

    /// True for the local `mlruns` store.
    pub fn is_local(&self) -> bool {
        matches!(self.config.uri, TrackingUri::Local(_))
    }

    /// The experiment named `name`, created if missing (and restored if deleted).
    pub fn get_or_create_experiment(&self, name: &str) -> Result<Experiment> {
        if let Some(e) = self.store.get_experiment_by_name(name)? {
            if e.lifecycle_stage == crate::types::LifecycleStage::Deleted {
                self.store.restore_experiment(&e.experiment_id)?;
                return self.store.get_experiment(&e.experiment_id);
            }
            return Ok(e);
        }
        match self.store.create_experiment(name, &[]) {
            Ok(id) => self.store.get_experiment(&id),
            // Someone else created it in between.
            Err(e) if e.is_already_exists() => self.store.get_experiment_by_name(name)?.ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// Starts a run with the tags MLflow's Python client sets
    /// (`mlflow.user`, `mlflow.source.name`, `mlflow.source.type`,
    /// `mlflow.runName`, `mlflow.parentRunId`).
    pub fn start_run(&self, options: RunOptions) -> Result<ActiveRun> {
        let mut tags = vec![
            Tag::new("mlflow.user", &self.config.user),
            Tag::new("mlflow.source.name", &self.config.source_name),
            Tag::new("mlflow.source.type", "LOCAL"),
        ];
        if let Some(parent) = &options.parent_run_id {
            tags.push(Tag::new("mlflow.parentRunId", parent));
        }
        for t in options.tags {
            tags.retain(|old| old.key != t.key);
            tags.push(t);
        }
        let request_id = match tags.iter().find(|t| t.key == REQUEST_ID_TAG) {
            Some(t) => t.value.clone(),
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                tags.push(Tag::new(REQUEST_ID_TAG, &id));
                id
            }
        };
        // The spool exists before the run does: a process killed inside
        // `runs/create` leaves the key a replay finds the run by.
        let mut wal = self.open_spool(&options.experiment_id, &request_id)?;
        let created = self.store.create_run(&CreateRun {
            experiment_id: options.experiment_id,
            run_name: options.name,
            start_time: None,
            tags,
        });
        let run = match created {
            Ok(run) => run,
            // Refused: no run exists, nothing to keep.
            Err(e) if !e.is_transient() => {
                let _ = wal.remove();
                return Err(e);
            }
            // Maybe created: the spool stays for a replay to settle.
            Err(e) => return Err(e),
        };
        wal.created(&run.info.run_id)?;
        Ok(self.start_handle(run, wal))
    }

    /// Wraps an existing run (e.g. to resume logging) in a handle with a
    /// spool of its own.
    pub fn attach(&self, run: Run) -> Result<ActiveRun> {
        let key = uuid::Uuid::new_v4().simple().to_string();
        let mut wal = self.open_spool(&run.info.experiment_id, &key)?;
        wal.created(&run.info.run_id)?;
        Ok(self.start_handle(run, wal))
    }

    fn open_spool(&self, experiment_id: &str, request_id: &str) -> Result<RunWal> {
        RunWal::create(
            &self.spool_dir(),
            SpoolOwner::this_process(experiment_id, request_id),
            self.config.batch.spool_sync,
        )
    }

    fn start_handle(&self, run: Run, wal: RunWal) -> ActiveRun {
        let mut batch = self.config.batch.clone();
        if self.is_local() {
            // Appends to local files gain nothing from concurrency.
            batch.max_in_flight = 1;
        }
        ActiveRun::start(self.clone(), run, batch, wal)
    }

    /// This store's spool folder (under the configured spool dir, one per store).
    fn spool_dir(&self) -> PathBuf {
        spool::store_dir(&self.config.spool_dir, &self.store.uri())
    }

    /// The spool files of this store's runs, live or left behind, sorted:
    /// one `*.wal` per run not yet fully delivered ([`crate::read_spool`]
    /// shows what one holds).
    pub fn spool_files(&self) -> Result<Vec<PathBuf>> {
        spool::wal_files(&self.spool_dir())
    }

    /// Every run a search matches, following pages.
    pub fn search_all_runs(&self, mut search: RunSearch) -> Result<Vec<Run>> {
        let mut out = Vec::new();
        loop {
            let page = self.store.search_runs(&search)?;
            out.extend(page.items);
            match page.next_page_token {
                Some(t) => search.page_token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Downloads a run's artifacts under `rel_dir` into `dest`.
    pub fn download_artifacts(
        &self,
        run_id: &str,
        rel_dir: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>> {
        let run = self.store.get_run(run_id)?;
        artifacts::download_dir(self.store.as_ref(), &run.info.artifact_uri, rel_dir, dest)
    }

    /// Registers a logged model as a new version of `name` (creating the
    /// registered model if needed). The version's source is the model's
    /// folder in the run's artifacts, with the run's id.
    pub fn register_model(&self, name: &str, model: &LoggedModel) -> Result<ModelVersion> {
        self.register_source(name, &model.source, Some(&model.run_id))
    }

    /// Registers any source URI as a new version of `name`.
    pub fn register_source(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
    ) -> Result<ModelVersion> {
        validate::model_name(name)?;
        match self.store.get_registered_model(name) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => match self.store.create_registered_model(name, None, &[])
            {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
        self.store.create_model_version(&CreateModelVersion {
            name: name.to_string(),
            source: source.to_string(),
            run_id: run_id.map(str::to_string),
            description: None,
            tags: Vec::new(),
        })
    }

    /// Moves a version to a stage, archiving the stage's previous holders.
    pub fn promote(&self, name: &str, version: &str, stage: Stage) -> Result<ModelVersion> {
        self.store.transition_stage(name, version, stage, true)
    }

    /// Resolves `models:/<name>/<version>`, `models:/<name>/<stage>`,
    /// `models:/<name>/latest` or `models:/<name>@<alias>`.
    pub fn resolve_model(&self, uri: &str) -> Result<ResolvedModel> {
        let version = match ModelUri::parse(uri)? {
            ModelUri::Version { name, version } => self.store.get_model_version(&name, &version)?,
            ModelUri::Alias { name, alias } => {
                self.store.get_model_version_by_alias(&name, &alias)?
            }
            ModelUri::Stage { name, stage } => self
                .store
                .get_latest_versions(&name, &[stage])?
                .into_iter()
                .max_by_key(ModelVersion::number)
                .ok_or_else(|| TrackingError::NotFound {
                    what: "model version",
                    name: format!("{name} in stage {stage}"),
                })?,
            ModelUri::Latest { name } => self
                .store
                .get_latest_versions(&name, &[])?
                .into_iter()
                .max_by_key(ModelVersion::number)
                .ok_or_else(|| TrackingError::NotFound {
                    what: "model version",
                    name: format!("{name} (no versions)"),
                })?,
        };
        let mut artifact_uri = self
            .store
            .get_model_version_download_uri(&version.name, &version.version)?;
        if let Some(rest) = artifact_uri.strip_prefix("runs:/") {
            let (run_id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.store.get_run(run_id)?;
            artifact_uri = join_uri(&run.info.artifact_uri, sub.trim_matches('/'));
        }
        Ok(ResolvedModel {
            version,
            artifact_uri,
        })
    }

    /// Resolves a `models:/` URI and downloads the model folder into `dest`.
    /// Returns the version and the parsed `MLmodel`.
    pub fn download_model(&self, uri: &str, dest: &Path) -> Result<(ResolvedModel, MlModel)> {
        let resolved = self.resolve_model(uri)?;
        artifacts::download_dir(self.store.as_ref(), &resolved.artifact_uri, "", dest)?;
        if !dest.join(MLMODEL_FILE).is_file() {
            return Err(TrackingError::NotFound {
                what: "MLmodel file",
                name: format!("{uri} ({})", resolved.artifact_uri),
            });
        }
        let mlmodel = MlModel::read(dest)?;
        Ok((resolved, mlmodel))
    }

    /// Replays the spools no live process owns: delivers what their runs
    /// logged and the server never acknowledged (each operation once), and
    /// ends `FAILED` — tagged [`crate::FAILURE_REASON_TAG`] with whose process
    /// died — every run its process left unended. Binaries call this first.
    /// What cannot be delivered yet stays spooled and is reported.
    pub fn replay_spools(&self) -> Result<SpoolReport> {
        spool::replay_all(self.store.as_ref(), &self.spool_dir())
    }
}
