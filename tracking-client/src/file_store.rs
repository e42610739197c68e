//! [`TrackingStore`] over a local directory in MLflow's file-store layout
//! (wire reference §12), readable by `MLFLOW_ALLOW_FILE_STORE=true mlflow
//! server --backend-store-uri ./mlruns` and by MLflow's Python client.
//!
//! ```text
//! mlruns/<exp_id>/meta.yaml
//! mlruns/<exp_id>/<run_id>/meta.yaml
//! mlruns/<exp_id>/<run_id>/{metrics,params,tags}/<key>
//! mlruns/<exp_id>/<run_id>/artifacts/...
//! mlruns/models/<name>/{meta.yaml,tags/<key>,aliases/<alias>}
//! mlruns/models/<name>/version-<n>/{meta.yaml,tags/<key>}
//! ```
//! ±Inf metric values are clamped to ±1.7976931348623157e308 as MLflow's SQL
//! store does (an `inf` line breaks the MLflow UI's run page).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrackingError};
use crate::filter::{self, Clause, Value as FValue};
use crate::local_artifacts;
use crate::rest::join_uri;
use crate::store::{REQUEST_ID_TAG, TrackingStore};
use crate::types::{
    CLAMPED_INFINITY, CreateModelVersion, CreateRun, Experiment, FileInfo, LifecycleStage, Metric,
    ModelAlias, ModelVersion, Page, Param, RegisteredModel, Run, RunData, RunInfo, RunSearch,
    RunStatus, Stage, Tag, ViewType, now_millis, parse_metric_value,
};
use crate::validate;
use crate::yaml::{self, Doc, Yaml};

/// The default experiment every store has.
pub const DEFAULT_EXPERIMENT_ID: &str = "0";

/// A local `mlruns` directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

fn read_to_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| TrackingError::io(path, e))
}

/// Writes a file atomically and durably, so a reader (or a restart after a
/// crash or power loss) sees the old contents or the new, never half.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_durably(path, |f| f.write_all(contents))
}

/// Writes `path` through a temp file beside it: `fill` writes the contents,
/// then the file is fsynced, renamed over `path`, and the directory fsynced
/// so the rename itself survives a crash.
pub(crate) fn write_durably(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
    let tmp = temp_path(path);
    let written = fs::File::create(&tmp).and_then(|mut f| {
        fill(&mut f)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(TrackingError::io(&tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| TrackingError::io(path, e))?;
    sync_dir(parent)
}

/// Fsyncs a directory, making renames and new entries in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TrackingError::io(dir, e))
}

fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        uuid::Uuid::new_v4().simple()
    ))
}

fn read_yaml(path: &Path) -> Result<Doc> {
    let text = read_to_string(path)?;
    yaml::parse(&text).map_err(|reason| TrackingError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })
}

fn get_str(doc: &Doc, key: &str) -> String {
    match doc.get(key) {
        Some(Yaml::Str(s)) => s.clone(),
        Some(Yaml::Int(i)) => i.to_string(),
        _ => String::new(),
    }
}

fn get_opt_str(doc: &Doc, key: &str) -> Option<String> {
    match doc.get(key) {
        Some(Yaml::Str(s)) => Some(s.clone()),
        Some(Yaml::Int(i)) => Some(i.to_string()),
        _ => None,
    }
}

fn get_i64(doc: &Doc, key: &str) -> Option<i64> {
    doc.get(key).and_then(Yaml::as_i64)
}

/// Key/value files under `dir` (keys with `/` are subdirectories).
fn read_kv_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if dir.is_dir() {
        walk_files(dir, "", &mut |key, path| {
            out.push((key.to_string(), read_to_string(path)?));
            Ok(())
        })?;
    }
    out.sort();
    Ok(out)
}

fn walk_files(
    dir: &Path,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Path) -> Result<()>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| TrackingError::io(dir, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            continue;
        }
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            walk_files(&path, &key, f)?;
        } else {
            f(&key, &path)?;
        }
    }
    Ok(())
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else {
        // Clamp as MLflow's SQL store does: the UI cannot show `inf`.
        let clamped = if v.is_infinite() {
            if v > 0.0 {
                CLAMPED_INFINITY
            } else {
                -CLAMPED_INFINITY
            }
        } else {
            v
        };
        // `{:?}` is the shortest round-trip form (`0.5`, `1e-7`,
        // `1.7976931348623157e308`), which Python's float() parses.
        format!("{clamped:?}")
    }
}

fn parse_metric_line(key: &str, line: &str, path: &Path) -> Result<Metric> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let corrupt = || TrackingError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("bad metric line {line:?}"),
    };
    if parts.len() < 2 {
        return Err(corrupt());
    }
    Ok(Metric {
        key: key.to_string(),
        timestamp: parts[0].parse().map_err(|_| corrupt())?,
        value: parse_metric_value(parts[1]).ok_or_else(corrupt)?,
        step: match parts.get(2) {
            Some(s) => s.parse().map_err(|_| corrupt())?,
            None => 0,
        },
    })
}

fn offset_token(token: Option<&str>) -> Result<usize> {
    match token {
        None => Ok(0),
        Some(t) => t
            .parse()
            .map_err(|_| TrackingError::invalid("page token", t, "not a token this store issued")),
    }
}

fn paginate<T>(items: Vec<T>, offset: usize, max: usize) -> Page<T> {
    let total = items.len();
    let max = max.max(1);
    let end = (offset + max).min(total);
    let next = if end < total {
        Some(end.to_string())
    } else {
        None
    };
    Page {
        items: items.into_iter().skip(offset).take(max).collect(),
        next_page_token: next,
    }
}

fn stage_value(s: &str) -> FValue {
    FValue::Str(s.to_string())
}

impl FileStore {
    /// Opens (creating if needed) a store at `root`, with the `Default`
    /// experiment `0` that MLflow expects.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(|e| TrackingError::io(root, e))?;
        let root = fs::canonicalize(root).map_err(|e| TrackingError::io(root, e))?;
        let store = FileStore { root };
        fs::create_dir_all(store.root.join(".trash"))
            .map_err(|e| TrackingError::io(store.root.join(".trash"), e))?;
        let default_meta = store.root.join(DEFAULT_EXPERIMENT_ID).join("meta.yaml");
        if !default_meta.exists()
            && !store
                .root
                .join(".trash")
                .join(DEFAULT_EXPERIMENT_ID)
                .exists()
        {
            store.write_experiment_meta(&Experiment {
                experiment_id: DEFAULT_EXPERIMENT_ID.into(),
                name: "Default".into(),
                artifact_location: local_artifacts::path_to_file_uri(
                    &store.root.join(DEFAULT_EXPERIMENT_ID),
                ),
                lifecycle_stage: LifecycleStage::Active,
                last_update_time: Some(now_millis()),
                creation_time: Some(now_millis()),
                tags: Vec::new(),
            })?;
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn experiment_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for base in [self.root.clone(), self.root.join(".trash")] {
            if !base.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&base).map_err(|e| TrackingError::io(&base, e))? {
                let entry = entry.map_err(|e| TrackingError::io(&base, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_digit())
                    && entry.path().join("meta.yaml").is_file()
                {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn experiment_dir(&self, id: &str) -> Result<PathBuf> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(TrackingError::invalid(
                "experiment id",
                id,
                "must be an integer",
            ));
        }
        for base in [self.root.clone(), self.root.join(".trash")] {
            let d = base.join(id);
            if d.join("meta.yaml").is_file() {
                return Ok(d);
            }
        }
        Err(TrackingError::NotFound {
            what: "experiment",
            name: id.to_string(),
        })
    }

    fn read_experiment(&self, dir: &Path) -> Result<Experiment> {
        let doc = read_yaml(&dir.join("meta.yaml"))?;
        let tags = read_kv_dir(&dir.join("tags"))?
            .into_iter()
            .map(|(k, v)| Tag::new(k, v))
            .collect();
        Ok(Experiment {
            experiment_id: get_str(&doc, "experiment_id"),
            name: get_str(&doc, "name"),
            artifact_location: get_str(&doc, "artifact_location"),
            lifecycle_stage: if get_str(&doc, "lifecycle_stage") == "deleted" {
                LifecycleStage::Deleted
            } else {
                LifecycleStage::Active
            },
            last_update_time: get_i64(&doc, "last_update_time"),
            creation_time: get_i64(&doc, "creation_time"),
            tags,
        })
    }

    fn write_experiment_meta(&self, e: &Experiment) -> Result<()> {
        let mut doc = Doc::new();
        doc.insert(
            "artifact_location".into(),
            Yaml::Str(e.artifact_location.clone()),
        );
        doc.insert(
            "creation_time".into(),
            e.creation_time.map_or(Yaml::Null, Yaml::Int),
        );
        doc.insert("experiment_id".into(), Yaml::Str(e.experiment_id.clone()));
        doc.insert(
            "last_update_time".into(),
            e.last_update_time.map_or(Yaml::Null, Yaml::Int),
        );
        doc.insert(
            "lifecycle_stage".into(),
            Yaml::Str(e.lifecycle_stage.as_str().into()),
        );
        doc.insert("name".into(), Yaml::Str(e.name.clone()));
        let base = if e.lifecycle_stage == LifecycleStage::Deleted {
            self.root.join(".trash")
        } else {
            self.root.clone()
        };
        write_atomic(
            &base.join(&e.experiment_id).join("meta.yaml"),
            yaml::to_string(&doc).as_bytes(),
        )
    }

    fn all_experiments(&self) -> Result<Vec<Experiment>> {
        self.experiment_dirs()?
            .iter()
            .map(|d| self.read_experiment(d))
            .collect()
    }

    /// The directory of a run, searched across experiments.
    fn run_dir(&self, run_id: &str) -> Result<PathBuf> {
        if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(TrackingError::invalid(
                "run id",
                run_id,
                "must be alphanumeric",
            ));
        }
        for dir in self.experiment_dirs()? {
            let d = dir.join(run_id);
            if d.join("meta.yaml").is_file() {
                return Ok(d);
            }
        }
        Err(TrackingError::NotFound {
            what: "run",
            name: run_id.to_string(),
        })
    }

    fn read_run_info(&self, dir: &Path) -> Result<RunInfo> {
        let doc = read_yaml(&dir.join("meta.yaml"))?;
        let status = match doc.get("status") {
            Some(Yaml::Int(n)) => RunStatus::from_number(*n),
            Some(Yaml::Str(s)) => RunStatus::parse(s),
            _ => None,
        }
        .unwrap_or(RunStatus::Running);
        let run_id = get_opt_str(&doc, "run_id").unwrap_or_else(|| get_str(&doc, "run_uuid"));
        let mut run_name = get_str(&doc, "run_name");
        if run_name.is_empty()
            && let Ok(n) = fs::read_to_string(dir.join("tags").join("mlflow.runName"))
        {
            run_name = n;
        }
        Ok(RunInfo {
            run_id,
            experiment_id: get_str(&doc, "experiment_id"),
            run_name,
            user_id: get_str(&doc, "user_id"),
            status,
            start_time: get_i64(&doc, "start_time").unwrap_or(0),
            end_time: get_i64(&doc, "end_time"),
            artifact_uri: get_str(&doc, "artifact_uri"),
            lifecycle_stage: if get_str(&doc, "lifecycle_stage") == "deleted" {
                LifecycleStage::Deleted
            } else {
                LifecycleStage::Active
            },
        })
    }

    fn write_run_meta(&self, dir: &Path, info: &RunInfo) -> Result<()> {
        let mut doc = Doc::new();
        doc.insert("artifact_uri".into(), Yaml::Str(info.artifact_uri.clone()));
        doc.insert(
            "end_time".into(),
            info.end_time.map_or(Yaml::Null, Yaml::Int),
        );
        doc.insert("entry_point_name".into(), Yaml::Str(String::new()));
        doc.insert(
            "experiment_id".into(),
            Yaml::Str(info.experiment_id.clone()),
        );
        doc.insert(
            "lifecycle_stage".into(),
            Yaml::Str(info.lifecycle_stage.as_str().into()),
        );
        doc.insert("run_id".into(), Yaml::Str(info.run_id.clone()));
        doc.insert("run_name".into(), Yaml::Str(info.run_name.clone()));
        doc.insert("source_name".into(), Yaml::Str(String::new()));
        doc.insert("source_type".into(), Yaml::Int(4));
        doc.insert("source_version".into(), Yaml::Str(String::new()));
        doc.insert("start_time".into(), Yaml::Int(info.start_time));
        doc.insert("status".into(), Yaml::Int(info.status.to_number()));
        doc.insert("tags".into(), Yaml::List);
        doc.insert("user_id".into(), Yaml::Str(info.user_id.clone()));
        write_atomic(&dir.join("meta.yaml"), yaml::to_string(&doc).as_bytes())
    }

    fn read_metric_file(&self, key: &str, path: &Path) -> Result<Vec<Metric>> {
        let text = read_to_string(path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_metric_line(key, l, path))
            .collect()
    }

    fn read_run(&self, dir: &Path) -> Result<Run> {
        let info = self.read_run_info(dir)?;
        let params = read_kv_dir(&dir.join("params"))?
            .into_iter()
            .map(|(key, value)| Param { key, value })
            .collect();
        let tags = read_kv_dir(&dir.join("tags"))?
            .into_iter()
            .map(|(k, v)| Tag::new(k, v))
            .collect();
        let mut metrics = Vec::new();
        let mdir = dir.join("metrics");
        if mdir.is_dir() {
            walk_files(&mdir, "", &mut |key, path| {
                let history = self.read_metric_file(key, path)?;
                // The latest point: highest step, then timestamp (as MLflow).
                if let Some(latest) = history.into_iter().reduce(|best, m| {
                    if (m.step, m.timestamp) >= (best.step, best.timestamp) {
                        m
                    } else {
                        best
                    }
                }) {
                    metrics.push(latest);
                }
                Ok(())
            })?;
        }
        Ok(Run {
            info,
            data: RunData {
                metrics,
                params,
                tags,
            },
        })
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf> {
        validate::model_name(name)?;
        Ok(self.root.join("models").join(name))
    }

    fn existing_model_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.model_dir(name)?;
        if dir.join("meta.yaml").is_file() {
            Ok(dir)
        } else {
            Err(TrackingError::NotFound {
                what: "registered model",
                name: name.to_string(),
            })
        }
    }

    fn version_dir(&self, name: &str, version: &str) -> Result<PathBuf> {
        validate::version(version)?;
        let dir = self
            .existing_model_dir(name)?
            .join(format!("version-{version}"));
        if dir.join("meta.yaml").is_file() {
            Ok(dir)
        } else {
            Err(TrackingError::NotFound {
                what: "model version",
                name: format!("{name}/{version}"),
            })
        }
    }

    fn read_aliases(&self, model_dir: &Path) -> Result<Vec<ModelAlias>> {
        Ok(read_kv_dir(&model_dir.join("aliases"))?
            .into_iter()
            .map(|(alias, version)| ModelAlias {
                alias,
                version: version.trim().to_string(),
            })
            .collect())
    }

    fn read_version(&self, dir: &Path, aliases: &[ModelAlias]) -> Result<ModelVersion> {
        let doc = read_yaml(&dir.join("meta.yaml"))?;
        let version = get_str(&doc, "version");
        Ok(ModelVersion {
            name: get_str(&doc, "name"),
            creation_timestamp: get_i64(&doc, "creation_timestamp"),
            last_updated_timestamp: get_i64(&doc, "last_updated_timestamp"),
            current_stage: get_opt_str(&doc, "current_stage").unwrap_or_else(|| "None".into()),
            description: get_opt_str(&doc, "description"),
            source: get_str(&doc, "source"),
            run_id: get_str(&doc, "run_id"),
            status: get_opt_str(&doc, "status").unwrap_or_else(|| "READY".into()),
            tags: read_kv_dir(&dir.join("tags"))?
                .into_iter()
                .map(|(k, v)| Tag::new(k, v))
                .collect(),
            aliases: aliases
                .iter()
                .filter(|a| a.version == version)
                .map(|a| a.alias.clone())
                .collect(),
            version,
        })
    }

    fn write_version_meta(&self, dir: &Path, v: &ModelVersion) -> Result<()> {
        let opt = |s: &Option<String>| s.clone().map_or(Yaml::Null, Yaml::Str);
        let mut doc = Doc::new();
        doc.insert(
            "creation_timestamp".into(),
            v.creation_timestamp.map_or(Yaml::Null, Yaml::Int),
        );
        doc.insert("current_stage".into(), Yaml::Str(v.current_stage.clone()));
        doc.insert("description".into(), opt(&v.description));
        doc.insert(
            "last_updated_timestamp".into(),
            v.last_updated_timestamp.map_or(Yaml::Null, Yaml::Int),
        );
        doc.insert("name".into(), Yaml::Str(v.name.clone()));
        doc.insert("run_id".into(), Yaml::Str(v.run_id.clone()));
        doc.insert("run_link".into(), Yaml::Null);
        doc.insert("source".into(), Yaml::Str(v.source.clone()));
        doc.insert("status".into(), Yaml::Str(v.status.clone()));
        doc.insert("status_message".into(), Yaml::Null);
        doc.insert("storage_location".into(), Yaml::Str(v.source.clone()));
        doc.insert("user_id".into(), Yaml::Null);
        doc.insert("version".into(), Yaml::Int(v.number() as i64));
        write_atomic(&dir.join("meta.yaml"), yaml::to_string(&doc).as_bytes())
    }

    fn read_registered_model(&self, dir: &Path, with_latest: bool) -> Result<RegisteredModel> {
        let doc = read_yaml(&dir.join("meta.yaml"))?;
        let aliases = self.read_aliases(dir)?;
        let latest_versions = if with_latest {
            let versions = self.versions_of(dir, &aliases)?;
            latest_per_stage(&versions, &[])
        } else {
            Vec::new()
        };
        Ok(RegisteredModel {
            name: get_str(&doc, "name"),
            creation_timestamp: get_i64(&doc, "creation_timestamp"),
            last_updated_timestamp: get_i64(&doc, "last_updated_timestamp"),
            description: get_opt_str(&doc, "description"),
            latest_versions,
            tags: read_kv_dir(&dir.join("tags"))?
                .into_iter()
                .map(|(k, v)| Tag::new(k, v))
                .collect(),
            aliases,
        })
    }

    fn write_model_meta(&self, dir: &Path, m: &RegisteredModel) -> Result<()> {
        let mut doc = Doc::new();
        doc.insert(
            "creation_timestamp".into(),
            m.creation_timestamp.map_or(Yaml::Null, Yaml::Int),
        );
        doc.insert(
            "description".into(),
            m.description.clone().map_or(Yaml::Null, Yaml::Str),
        );
        doc.insert(
            "last_updated_timestamp".into(),
            m.last_updated_timestamp.map_or(Yaml::Null, Yaml::Int),
        );
        doc.insert("name".into(), Yaml::Str(m.name.clone()));
        write_atomic(&dir.join("meta.yaml"), yaml::to_string(&doc).as_bytes())
    }

    fn versions_of(&self, model_dir: &Path, aliases: &[ModelAlias]) -> Result<Vec<ModelVersion>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(model_dir).map_err(|e| TrackingError::io(model_dir, e))? {
            let entry = entry.map_err(|e| TrackingError::io(model_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("version-") && entry.path().join("meta.yaml").is_file() {
                out.push(self.read_version(&entry.path(), aliases)?);
            }
        }
        out.sort_by_key(ModelVersion::number);
        Ok(out)
    }

    fn all_models(&self) -> Result<Vec<PathBuf>> {
        let base = self.root.join("models");
        let mut out = Vec::new();
        if base.is_dir() {
            for entry in fs::read_dir(&base).map_err(|e| TrackingError::io(&base, e))? {
                let entry = entry.map_err(|e| TrackingError::io(&base, e))?;
                if entry.path().join("meta.yaml").is_file() {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn touch_model(&self, name: &str) -> Result<()> {
        let dir = self.existing_model_dir(name)?;
        let mut m = self.read_registered_model(&dir, false)?;
        m.last_updated_timestamp = Some(now_millis());
        self.write_model_meta(&dir, &m)
    }

    /// Resolves a local artifact root (`file:`, or `runs:/` into this store).
    fn artifact_dir(&self, root: &str) -> Result<PathBuf> {
        if let Some(p) = local_artifacts::file_uri_to_path(root) {
            return Ok(p);
        }
        if let Some(rest) = root.strip_prefix("runs:/") {
            let (run_id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let info = self.read_run_info(&self.run_dir(run_id)?)?;
            return self.artifact_dir(&join_uri(&info.artifact_uri, sub.trim_matches('/')));
        }
        if root.starts_with('/') {
            return Ok(PathBuf::from(root));
        }
        Err(TrackingError::Config(format!(
            "artifact root {root:?} is not a local path; a local store reads file: and runs:/ roots"
        )))
    }
}

fn latest_per_stage(versions: &[ModelVersion], stages: &[Stage]) -> Vec<ModelVersion> {
    let mut best: BTreeMap<String, ModelVersion> = BTreeMap::new();
    for v in versions {
        if !stages.is_empty() && !stages.contains(&v.stage()) {
            continue;
        }
        let key = v.stage().as_str().to_string();
        if best.get(&key).is_none_or(|b| v.number() > b.number()) {
            best.insert(key, v.clone());
        }
    }
    let mut out: Vec<ModelVersion> = best.into_values().collect();
    out.sort_by_key(ModelVersion::number);
    out
}

/// The value of `entity.key` on a run, for filters and ordering.
fn run_field(run: &Run, entity: &str, key: &str) -> Option<FValue> {
    match entity {
        "metrics" => run.metric(key).map(FValue::Num),
        "params" => run.param(key).map(|v| FValue::Str(v.to_string())),
        "tags" => run.tag(key).map(|v| FValue::Str(v.to_string())),
        _ => {
            let i = &run.info;
            Some(match key {
                "status" => FValue::Str(i.status.as_str().into()),
                "run_name" | "runName" => FValue::Str(i.run_name.clone()),
                "run_id" | "run_uuid" => FValue::Str(i.run_id.clone()),
                "user_id" => FValue::Str(i.user_id.clone()),
                "artifact_uri" => FValue::Str(i.artifact_uri.clone()),
                "lifecycle_stage" => FValue::Str(i.lifecycle_stage.as_str().into()),
                "start_time" | "created" | "Created" => FValue::Num(i.start_time as f64),
                "end_time" => FValue::Num(i.end_time? as f64),
                "experiment_id" => FValue::Str(i.experiment_id.clone()),
                _ => return None,
            })
        }
    }
}

fn check_entities(clauses: &[Clause], allowed: &[&str], filter: &str) -> Result<()> {
    for c in clauses {
        if !allowed.contains(&c.entity.as_str()) {
            return Err(TrackingError::invalid(
                "search filter",
                filter,
                format!("cannot filter on {}.{} here", c.entity, c.key),
            ));
        }
    }
    Ok(())
}

impl TrackingStore for FileStore {
    fn uri(&self) -> String {
        local_artifacts::path_to_file_uri(&self.root)
    }

    fn create_experiment(&self, name: &str, tags: &[Tag]) -> Result<String> {
        validate::experiment_name(name)?;
        if self.get_experiment_by_name(name)?.is_some() {
            return Err(TrackingError::Api {
                status: 400,
                error_code: "RESOURCE_ALREADY_EXISTS".into(),
                message: format!("Experiment(name={name}) already exists."),
                endpoint: "file store".into(),
            });
        }
        // Random ids like MLflow's file store: concurrent creators never collide.
        let id = loop {
            let candidate = (uuid::Uuid::new_v4().as_u128() % 900_000_000_000_000_000
                + 100_000_000_000_000_000)
                .to_string();
            let dir = self.root.join(&candidate);
            if fs::create_dir(&dir).is_ok() {
                break candidate;
            }
        };
        let now = now_millis();
        self.write_experiment_meta(&Experiment {
            experiment_id: id.clone(),
            name: name.to_string(),
            artifact_location: local_artifacts::path_to_file_uri(&self.root.join(&id)),
            lifecycle_stage: LifecycleStage::Active,
            last_update_time: Some(now),
            creation_time: Some(now),
            tags: Vec::new(),
        })?;
        for t in tags {
            self.set_experiment_tag(&id, &t.key, &t.value)?;
        }
        Ok(id)
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        self.read_experiment(&self.experiment_dir(experiment_id)?)
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        Ok(self.all_experiments()?.into_iter().find(|e| e.name == name))
    }

    fn search_experiments(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
        view: ViewType,
    ) -> Result<Page<Experiment>> {
        let clauses = match filter {
            Some(f) if !f.trim().is_empty() => {
                let c = filter::parse(f)?;
                check_entities(&c, &["", "attributes", "tags"], f)?;
                c
            }
            _ => Vec::new(),
        };
        let mut exps: Vec<Experiment> = self
            .all_experiments()?
            .into_iter()
            .filter(|e| match view {
                ViewType::ActiveOnly => e.lifecycle_stage == LifecycleStage::Active,
                ViewType::DeletedOnly => e.lifecycle_stage == LifecycleStage::Deleted,
                ViewType::All => true,
            })
            .filter(|e| {
                clauses.iter().all(|c| {
                    let field = match c.entity.as_str() {
                        "tags" => e
                            .tags
                            .iter()
                            .find(|t| t.key == c.key)
                            .map(|t| stage_value(&t.value)),
                        _ => match c.key.as_str() {
                            "name" => Some(stage_value(&e.name)),
                            "creation_time" => e.creation_time.map(|t| FValue::Num(t as f64)),
                            "last_update_time" => e.last_update_time.map(|t| FValue::Num(t as f64)),
                            _ => None,
                        },
                    };
                    c.matches(field.as_ref())
                })
            })
            .collect();
        // Newest first, as the server orders by default.
        exps.sort_by(|a, b| {
            b.creation_time
                .cmp(&a.creation_time)
                .then(a.experiment_id.cmp(&b.experiment_id))
        });
        Ok(paginate(
            exps,
            offset_token(page_token)?,
            max_results as usize,
        ))
    }

    fn set_experiment_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()> {
        validate::key("experiment tag key", key)?;
        let dir = self.experiment_dir(experiment_id)?;
        write_atomic(&dir.join("tags").join(key), value.as_bytes())
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        if experiment_id == DEFAULT_EXPERIMENT_ID {
            return Err(TrackingError::invalid(
                "experiment id",
                experiment_id,
                "the Default experiment cannot be deleted",
            ));
        }
        let dir = self.experiment_dir(experiment_id)?;
        let mut e = self.read_experiment(&dir)?;
        if e.lifecycle_stage == LifecycleStage::Deleted {
            return Ok(());
        }
        e.lifecycle_stage = LifecycleStage::Deleted;
        e.last_update_time = Some(now_millis());
        let target = self.root.join(".trash").join(experiment_id);
        fs::rename(&dir, &target).map_err(|err| TrackingError::io(&dir, err))?;
        self.write_experiment_meta(&e)
    }

    fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        let dir = self.experiment_dir(experiment_id)?;
        let mut e = self.read_experiment(&dir)?;
        if e.lifecycle_stage == LifecycleStage::Active {
            return Ok(());
        }
        e.lifecycle_stage = LifecycleStage::Active;
        e.last_update_time = Some(now_millis());
        let target = self.root.join(experiment_id);
        fs::rename(&dir, &target).map_err(|err| TrackingError::io(&dir, err))?;
        self.write_experiment_meta(&e)
    }

    fn create_run(&self, request: &CreateRun) -> Result<Run> {
        let exp = self.get_experiment(&request.experiment_id)?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(TrackingError::invalid(
                "experiment id",
                &request.experiment_id,
                "the experiment must be in the 'active' state",
            ));
        }
        for t in &request.tags {
            validate::key("tag key", &t.key)?;
            validate::tag_value(&t.key, &t.value)?;
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let exp_dir = self.experiment_dir(&request.experiment_id)?;
        let dir = exp_dir.join(&run_id);
        let artifact_dir = dir.join("artifacts");
        fs::create_dir_all(&artifact_dir).map_err(|e| TrackingError::io(&artifact_dir, e))?;
        let run_name = request
            .run_name
            .clone()
            .or_else(|| {
                request
                    .tags
                    .iter()
                    .find(|t| t.key == "mlflow.runName")
                    .map(|t| t.value.clone())
            })
            .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
        let user = request
            .tags
            .iter()
            .find(|t| t.key == "mlflow.user")
            .map(|t| t.value.clone())
            .unwrap_or_else(|| "unknown".into());
        let info = RunInfo {
            run_id: run_id.clone(),
            experiment_id: request.experiment_id.clone(),
            run_name: run_name.clone(),
            user_id: user,
            status: RunStatus::Running,
            start_time: request.start_time.unwrap_or_else(now_millis),
            end_time: None,
            artifact_uri: local_artifacts::path_to_file_uri(&artifact_dir),
            lifecycle_stage: LifecycleStage::Active,
        };
        self.write_run_meta(&dir, &info)?;
        let mut tags: Vec<Tag> = request
            .tags
            .iter()
            .filter(|t| t.key != "mlflow.runName" && t.key != REQUEST_ID_TAG)
            .cloned()
            .collect();
        tags.push(Tag::new("mlflow.runName", run_name));
        for t in &tags {
            write_atomic(&dir.join("tags").join(&t.key), t.value.as_bytes())?;
        }
        self.read_run(&dir)
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        self.read_run(&self.run_dir(run_id)?)
    }

    fn update_run(&self, run_id: &str, status: RunStatus, end_time: Option<i64>) -> Result<()> {
        let dir = self.run_dir(run_id)?;
        let mut info = self.read_run_info(&dir)?;
        info.status = status;
        if end_time.is_some() {
            info.end_time = end_time;
        }
        self.write_run_meta(&dir, &info)
    }

    fn delete_run(&self, run_id: &str) -> Result<()> {
        let dir = self.run_dir(run_id)?;
        let mut info = self.read_run_info(&dir)?;
        info.lifecycle_stage = LifecycleStage::Deleted;
        self.write_run_meta(&dir, &info)
    }

    fn restore_run(&self, run_id: &str) -> Result<()> {
        let dir = self.run_dir(run_id)?;
        let mut info = self.read_run_info(&dir)?;
        info.lifecycle_stage = LifecycleStage::Active;
        self.write_run_meta(&dir, &info)
    }

    fn search_runs(&self, search: &RunSearch) -> Result<Page<Run>> {
        let clauses = match &search.filter {
            Some(f) if !f.trim().is_empty() => {
                let c = filter::parse(f)?;
                check_entities(&c, &["metrics", "params", "tags", "attributes", ""], f)?;
                c
            }
            _ => Vec::new(),
        };
        let orders = search
            .order_by
            .iter()
            .map(|o| filter::parse_order_by(o))
            .collect::<Result<Vec<_>>>()?;
        let mut runs = Vec::new();
        for exp_id in &search.experiment_ids {
            let dir = self.experiment_dir(exp_id)?;
            for entry in fs::read_dir(&dir).map_err(|e| TrackingError::io(&dir, e))? {
                let entry = entry.map_err(|e| TrackingError::io(&dir, e))?;
                if !entry.path().join("meta.yaml").is_file() {
                    continue;
                }
                let run = self.read_run(&entry.path())?;
                let visible = match search.view_type {
                    ViewType::ActiveOnly => run.info.lifecycle_stage == LifecycleStage::Active,
                    ViewType::DeletedOnly => run.info.lifecycle_stage == LifecycleStage::Deleted,
                    ViewType::All => true,
                };
                let entity = |c: &Clause| {
                    if c.entity.is_empty() {
                        "attributes".to_string()
                    } else {
                        c.entity.clone()
                    }
                };
                if visible
                    && clauses
                        .iter()
                        .all(|c| c.matches(run_field(&run, &entity(c), &c.key).as_ref()))
                {
                    runs.push(run);
                }
            }
        }
        runs.sort_by(|a, b| {
            for o in &orders {
                let (fa, fb) = (
                    run_field(a, &o.entity, &o.key),
                    run_field(b, &o.entity, &o.key),
                );
                let ord = match (&fa, &fb) {
                    // Missing values sort last either way, as MLflow does.
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => {
                        let ord = filter::compare(x, y).unwrap_or(std::cmp::Ordering::Equal);
                        if o.ascending { ord } else { ord.reverse() }
                    }
                };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            b.info
                .start_time
                .cmp(&a.info.start_time)
                .then_with(|| a.info.run_id.cmp(&b.info.run_id))
        });
        let max = search.max_results.unwrap_or(1000) as usize;
        Ok(paginate(
            runs,
            offset_token(search.page_token.as_deref())?,
            max,
        ))
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        let dir = self.run_dir(run_id)?;
        let info = self.read_run_info(&dir)?;
        if info.lifecycle_stage != LifecycleStage::Active {
            return Err(TrackingError::invalid(
                "run id",
                run_id,
                "the run must be in the 'active' state",
            ));
        }
        for p in params {
            validate::key("param key", &p.key)?;
            validate::param_value(&p.key, &p.value)?;
            let path = dir.join("params").join(&p.key);
            match fs::read_to_string(&path) {
                Ok(old) if old != p.value => {
                    return Err(TrackingError::Api {
                        status: 400,
                        error_code: "INVALID_PARAMETER_VALUE".into(),
                        message: format!(
                            "Changing param values is not allowed. Param with key='{}' was already logged with value='{old}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                            p.key, p.value
                        ),
                        endpoint: "file store".into(),
                    });
                }
                Ok(_) => {}
                Err(_) => write_atomic(&path, p.value.as_bytes())?,
            }
        }
        for t in tags {
            validate::key("tag key", &t.key)?;
            write_atomic(&dir.join("tags").join(&t.key), t.value.as_bytes())?;
        }
        // One append per key; a repeated identical point is stored once, as the server does.
        let mut by_key: BTreeMap<&str, Vec<&Metric>> = BTreeMap::new();
        for m in metrics {
            validate::key("metric key", &m.key)?;
            by_key.entry(&m.key).or_default().push(m);
        }
        for (key, points) in by_key {
            let path = dir.join("metrics").join(key);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
            }
            let existing: std::collections::HashSet<String> = if path.is_file() {
                read_to_string(&path)?.lines().map(str::to_string).collect()
            } else {
                Default::default()
            };
            let mut text = String::new();
            let mut seen = std::collections::HashSet::new();
            for m in points {
                let line = format!("{} {} {}", m.timestamp, format_value(m.value), m.step);
                if !existing.contains(&line) && seen.insert(line.clone()) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            if text.is_empty() {
                continue;
            }
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| TrackingError::io(&path, e))?;
            // Appended and fsynced: an acknowledged metric survives a crash.
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(|e| TrackingError::io(&path, e))?;
        }
        Ok(())
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        validate::key("tag key", key)?;
        validate::tag_value(key, value)?;
        let dir = self.run_dir(run_id)?;
        if key == "mlflow.runName" {
            let mut info = self.read_run_info(&dir)?;
            info.run_name = value.to_string();
            self.write_run_meta(&dir, &info)?;
        }
        write_atomic(&dir.join("tags").join(key), value.as_bytes())
    }

    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        validate::key("tag key", key)?;
        let path = self.run_dir(run_id)?.join("tags").join(key);
        fs::remove_file(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TrackingError::NotFound {
                what: "tag",
                name: key.to_string(),
            },
            _ => TrackingError::io(&path, e),
        })
    }

    fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        validate::key("metric key", key)?;
        let path = self.run_dir(run_id)?.join("metrics").join(key);
        if !path.is_file() {
            return Ok(Vec::new());
        }
        self.read_metric_file(key, &path)
    }

    fn upload_artifact(&self, root: &str, rel_path: &str, local: &Path) -> Result<()> {
        local_artifacts::upload(&self.artifact_dir(root)?, rel_path, local)
    }

    fn upload_artifact_bytes(&self, root: &str, rel_path: &str, bytes: &[u8]) -> Result<()> {
        local_artifacts::upload_bytes(&self.artifact_dir(root)?, rel_path, bytes)
    }

    fn list_artifacts(&self, root: &str, rel_path: &str) -> Result<Vec<FileInfo>> {
        local_artifacts::list(&self.artifact_dir(root)?, rel_path)
    }

    fn download_artifact(
        &self,
        root: &str,
        rel_path: &str,
        dest: &Path,
        _size_hint: Option<u64>,
    ) -> Result<()> {
        local_artifacts::download(&self.artifact_dir(root)?, rel_path, dest)
    }

    fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<RegisteredModel> {
        let dir = self.model_dir(name)?;
        fs::create_dir_all(dir.parent().unwrap_or(&self.root))
            .map_err(|e| TrackingError::io(&dir, e))?;
        if fs::create_dir(&dir).is_err() && dir.join("meta.yaml").is_file() {
            return Err(TrackingError::Api {
                status: 400,
                error_code: "RESOURCE_ALREADY_EXISTS".into(),
                message: format!("Registered Model (name={name}) already exists."),
                endpoint: "file store".into(),
            });
        }
        let now = now_millis();
        self.write_model_meta(
            &dir,
            &RegisteredModel {
                name: name.to_string(),
                creation_timestamp: Some(now),
                last_updated_timestamp: Some(now),
                description: description.map(str::to_string),
                ..Default::default()
            },
        )?;
        for t in tags {
            self.set_registered_model_tag(name, &t.key, &t.value)?;
        }
        self.get_registered_model(name)
    }

    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.read_registered_model(&self.existing_model_dir(name)?, true)
    }

    fn search_registered_models(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>> {
        let clauses = match filter {
            Some(f) if !f.trim().is_empty() => {
                let c = filter::parse(f)?;
                check_entities(&c, &["", "attributes", "tags"], f)?;
                c
            }
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for dir in self.all_models()? {
            let m = self.read_registered_model(&dir, true)?;
            let ok = clauses.iter().all(|c| {
                let field = match c.entity.as_str() {
                    "tags" => m
                        .tags
                        .iter()
                        .find(|t| t.key == c.key)
                        .map(|t| stage_value(&t.value)),
                    _ if c.key == "name" => Some(stage_value(&m.name)),
                    _ => None,
                };
                c.matches(field.as_ref())
            });
            if ok {
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(paginate(
            out,
            offset_token(page_token)?,
            max_results as usize,
        ))
    }

    fn delete_registered_model(&self, name: &str) -> Result<()> {
        let dir = self.existing_model_dir(name)?;
        fs::remove_dir_all(&dir).map_err(|e| TrackingError::io(&dir, e))
    }

    fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        validate::key("registered model tag key", key)?;
        let dir = self.existing_model_dir(name)?;
        write_atomic(&dir.join("tags").join(key), value.as_bytes())
    }

    fn create_model_version(&self, request: &CreateModelVersion) -> Result<ModelVersion> {
        let dir = self.existing_model_dir(&request.name)?;
        // Claim the next number by creating its directory (atomic).
        let mut n = self
            .versions_of(&dir, &[])?
            .last()
            .map_or(1, |v| v.number() + 1);
        let vdir = loop {
            let candidate = dir.join(format!("version-{n}"));
            match fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(TrackingError::io(&candidate, e)),
            }
        };
        let now = now_millis();
        let v = ModelVersion {
            name: request.name.clone(),
            version: n.to_string(),
            creation_timestamp: Some(now),
            last_updated_timestamp: Some(now),
            current_stage: "None".into(),
            description: request.description.clone(),
            source: request.source.clone(),
            run_id: request.run_id.clone().unwrap_or_default(),
            status: "READY".into(),
            tags: Vec::new(),
            aliases: Vec::new(),
        };
        self.write_version_meta(&vdir, &v)?;
        for t in &request.tags {
            validate::key("model version tag key", &t.key)?;
            write_atomic(&vdir.join("tags").join(&t.key), t.value.as_bytes())?;
        }
        self.touch_model(&request.name)?;
        self.get_model_version(&request.name, &v.version)
    }

    fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let vdir = self.version_dir(name, version)?;
        let aliases = self.read_aliases(&self.existing_model_dir(name)?)?;
        self.read_version(&vdir, &aliases)
    }

    fn search_model_versions(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let clauses = match filter {
            Some(f) if !f.trim().is_empty() => {
                let c = filter::parse(f)?;
                check_entities(&c, &["", "attributes", "tags"], f)?;
                c
            }
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for dir in self.all_models()? {
            let aliases = self.read_aliases(&dir)?;
            for v in self.versions_of(&dir, &aliases)? {
                let ok = clauses.iter().all(|c| {
                    let field = match (c.entity.as_str(), c.key.as_str()) {
                        ("tags", k) => v.tag(k).map(stage_value),
                        (_, "name") => Some(stage_value(&v.name)),
                        (_, "run_id") => Some(stage_value(&v.run_id)),
                        (_, "source_path") | (_, "source") => Some(stage_value(&v.source)),
                        (_, "version_number") => Some(FValue::Num(v.number() as f64)),
                        (_, "current_stage") => Some(stage_value(&v.current_stage)),
                        _ => None,
                    };
                    c.matches(field.as_ref())
                });
                if ok {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(b.number().cmp(&a.number())));
        Ok(paginate(
            out,
            offset_token(page_token)?,
            max_results as usize,
        ))
    }

    fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>> {
        let dir = self.existing_model_dir(name)?;
        let aliases = self.read_aliases(&dir)?;
        Ok(latest_per_stage(&self.versions_of(&dir, &aliases)?, stages))
    }

    fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        let vdir = self.version_dir(name, version)?;
        let now = now_millis();
        if archive_existing && matches!(stage, Stage::Staging | Stage::Production) {
            let dir = self.existing_model_dir(name)?;
            for other in self.versions_of(&dir, &[])? {
                if other.version != version && other.stage() == stage {
                    let mut o = other.clone();
                    o.current_stage = Stage::Archived.as_str().into();
                    o.last_updated_timestamp = Some(now);
                    self.write_version_meta(&dir.join(format!("version-{}", o.version)), &o)?;
                }
            }
        }
        let mut v = self.read_version(&vdir, &[])?;
        v.current_stage = stage.as_str().into();
        v.last_updated_timestamp = Some(now);
        self.write_version_meta(&vdir, &v)?;
        self.touch_model(name)?;
        self.get_model_version(name, version)
    }

    fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        let vdir = self.version_dir(name, version)?;
        let dir = self.existing_model_dir(name)?;
        for a in self.read_aliases(&dir)? {
            if a.version == version {
                let _ = fs::remove_file(dir.join("aliases").join(&a.alias));
            }
        }
        fs::remove_dir_all(&vdir).map_err(|e| TrackingError::io(&vdir, e))
    }

    fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        validate::key("model version tag key", key)?;
        let vdir = self.version_dir(name, version)?;
        write_atomic(&vdir.join("tags").join(key), value.as_bytes())
    }

    fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        validate::alias(alias)?;
        self.version_dir(name, version)?;
        let dir = self.existing_model_dir(name)?;
        write_atomic(&dir.join("aliases").join(alias), version.as_bytes())
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        validate::alias(alias)?;
        let path = self.existing_model_dir(name)?.join("aliases").join(alias);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TrackingError::io(&path, e)),
        }
    }

    fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        validate::alias(alias)?;
        let path = self.existing_model_dir(name)?.join("aliases").join(alias);
        let version = fs::read_to_string(&path).map_err(|_| TrackingError::NotFound {
            what: "model alias",
            name: format!("{name}@{alias}"),
        })?;
        self.get_model_version(name, version.trim())
    }

    fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String> {
        Ok(self.get_model_version(name, version)?.source)
    }
}
