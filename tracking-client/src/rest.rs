//! [`TrackingStore`] over MLflow's REST API (measured against MLflow 3.17.2).

use std::cell::Cell;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::{TrackingConfig, TrackingUri};
use crate::error::{Result, TrackingError};
use crate::http::{Http, Method, encode_path};
use crate::local_artifacts;
use crate::store::{REQUEST_ID_TAG, TrackingStore};
use crate::types::{
    CreateModelVersion, CreateRun, Experiment, FileInfo, Metric, ModelVersion, Page, Param,
    RegisteredModel, Run, RunSearch, RunStatus, Stage, Tag, ViewType, now_millis,
};
use crate::validate;

/// Most metrics in one `log-batch` request.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params in one `log-batch` request.
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// Most tags in one `log-batch` request.
pub const MAX_TAGS_PER_BATCH: usize = 100;
/// Most items of all kinds in one `log-batch` request.
pub const MAX_ITEMS_PER_BATCH: usize = 1000;

const API: &str = "/api/2.0/mlflow";
const ARTIFACTS_API: &str = "/api/2.0/mlflow-artifacts/artifacts";

/// A tracking server.
#[derive(Debug, Clone)]
pub struct RestStore {
    http: Http,
}

impl RestStore {
    /// Connects lazily (nothing is sent until the first call).
    pub fn new(config: &TrackingConfig) -> Result<Self> {
        match &config.uri {
            TrackingUri::Server(base) => Ok(RestStore {
                http: Http::new(base, config)?,
            }),
            TrackingUri::Local(p) => Err(TrackingError::Config(format!(
                "RestStore needs an http(s) tracking URI, got local path {}",
                p.display()
            ))),
        }
    }

    /// Checks the server answers `/health`.
    pub fn health(&self) -> Result<()> {
        // /health is plain text: any 2xx is fine.
        match self.http.json(Method::Get, "/health", &[], None) {
            Ok(_) => Ok(()),
            Err(TrackingError::Decode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn get<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &[(&str, String)],
        field: &str,
    ) -> Result<T> {
        let v = self
            .http
            .json(Method::Get, &format!("{API}/{endpoint}"), query, None)?;
        take(v, field, endpoint)
    }

    fn call(&self, method: Method, endpoint: &str, body: Value) -> Result<Value> {
        self.http
            .json(method, &format!("{API}/{endpoint}"), &[], Some(&body))
    }

    /// Finds a run created with a given client request id (after a lost response).
    fn find_run_by_request_id(
        &self,
        experiment_id: &str,
        request_id: &str,
    ) -> Result<Option<Value>> {
        let body = json!({
            "experiment_ids": [experiment_id],
            "filter": format!("tags.`{REQUEST_ID_TAG}` = '{request_id}'"),
            "run_view_type": "ALL",
            "max_results": 2,
        });
        let v = self.http.json(
            Method::Post,
            &format!("{API}/runs/search"),
            &[],
            Some(&body),
        )?;
        Ok(v.get("runs")
            .and_then(Value::as_array)
            .and_then(|runs| runs.first().cloned())
            .map(|run| json!({ "run": run })))
    }

    fn find_version_by_request_id(&self, name: &str, request_id: &str) -> Result<Option<Value>> {
        let mut token: Option<String> = None;
        loop {
            let page = self.search_model_versions(
                Some(&format!("name = '{}'", escape_quote(name))),
                10_000,
                token.as_deref(),
            )?;
            if let Some(v) = page
                .items
                .iter()
                .find(|v| v.tag(REQUEST_ID_TAG) == Some(request_id))
            {
                // Fetch it properly: search results may omit fields.
                let full = self.get_model_version(name, &v.version)?;
                return Ok(Some(json!({ "model_version": full })));
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => return Ok(None),
            }
        }
    }

    /// The artifact-API path for `root/rel`, or the local directory for a `file:` root.
    fn artifact_target(&self, root: &str, rel: &str) -> Result<ArtifactTarget> {
        validate::artifact_path(rel)?;
        if let Some(rest) = root.strip_prefix("mlflow-artifacts:") {
            // mlflow-artifacts:/1/R/artifacts or mlflow-artifacts://host:port/1/R/artifacts
            let rest = match rest.strip_prefix("//") {
                Some(with_host) => with_host.find('/').map(|i| &with_host[i..]).unwrap_or(""),
                None => rest,
            };
            let base = rest.trim_matches('/');
            let full = match (base.is_empty(), rel.is_empty()) {
                (true, _) => rel.to_string(),
                (false, true) => base.to_string(),
                (false, false) => format!("{base}/{rel}"),
            };
            return Ok(ArtifactTarget::Proxied(full));
        }
        if let Some(dir) = local_artifacts::file_uri_to_path(root) {
            return Ok(ArtifactTarget::Local(dir));
        }
        if let Some(rest) = root.strip_prefix("runs:/") {
            let (run_id, sub) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.get_run(run_id)?;
            let joined = join_uri(&run.info.artifact_uri, sub.trim_matches('/'));
            return self.artifact_target(&joined, rel);
        }
        Err(TrackingError::Config(format!(
            "artifact root {root:?} is not reachable through the tracking server (only mlflow-artifacts:, runs:/ and file: roots are supported)"
        )))
    }
}

enum ArtifactTarget {
    /// A path under `/api/2.0/mlflow-artifacts/artifacts/`.
    Proxied(String),
    /// A directory on this machine (a server without artifact proxying).
    Local(std::path::PathBuf),
}

/// `root/sub`, without doubling slashes.
pub(crate) fn join_uri(root: &str, sub: &str) -> String {
    if sub.is_empty() {
        root.to_string()
    } else {
        format!(
            "{}/{}",
            root.trim_end_matches('/'),
            sub.trim_start_matches('/')
        )
    }
}

fn escape_quote(s: &str) -> String {
    s.replace('\'', "\\'")
}

/// Pulls `field` out of a response and decodes it; a missing field decodes
/// from `null` (so `#[serde(default)]` types and `Vec`s come out empty).
fn take<T: DeserializeOwned>(mut v: Value, field: &str, endpoint: &str) -> Result<T> {
    let inner = v.get_mut(field).map(Value::take).unwrap_or(Value::Null);
    let inner = if inner.is_null() {
        // Empty lists and messages are omitted by the server.
        Value::Array(Vec::new())
    } else {
        inner
    };
    match serde_json::from_value::<T>(inner.clone()) {
        Ok(t) => Ok(t),
        Err(_) if inner == Value::Array(Vec::new()) => {
            serde_json::from_value::<T>(json!({})).map_err(|e| decode_error(endpoint, field, e))
        }
        Err(e) => Err(decode_error(endpoint, field, e)),
    }
}

fn decode_error(endpoint: &str, field: &str, e: serde_json::Error) -> TrackingError {
    TrackingError::Decode {
        endpoint: endpoint.to_string(),
        reason: format!("field {field:?}: {e}"),
    }
}

fn page<T: DeserializeOwned>(v: Value, field: &str, endpoint: &str) -> Result<Page<T>> {
    let token = v
        .get("next_page_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(Page {
        items: take(v, field, endpoint)?,
        next_page_token: token,
    })
}

fn tags_json(tags: &[Tag]) -> Value {
    serde_json::to_value(tags).unwrap_or(Value::Array(Vec::new()))
}

/// Splits a batch so no request exceeds the server's limits.
pub(crate) fn split_batch<'a>(
    metrics: &'a [Metric],
    params: &'a [Param],
    tags: &'a [Tag],
) -> Vec<(&'a [Metric], &'a [Param], &'a [Tag])> {
    let mut out = Vec::new();
    let (mut m, mut p, mut t) = (metrics, params, tags);
    while !m.is_empty() || !p.is_empty() || !t.is_empty() {
        let np = p.len().min(MAX_PARAMS_PER_BATCH);
        let nt = t
            .len()
            .min(MAX_TAGS_PER_BATCH)
            .min(MAX_ITEMS_PER_BATCH - np);
        let nm = m
            .len()
            .min(MAX_METRICS_PER_BATCH)
            .min(MAX_ITEMS_PER_BATCH - np - nt);
        out.push((&m[..nm], &p[..np], &t[..nt]));
        m = &m[nm..];
        p = &p[np..];
        t = &t[nt..];
    }
    out
}

impl TrackingStore for RestStore {
    fn uri(&self) -> String {
        self.http.base().to_string()
    }

    fn create_experiment(&self, name: &str, tags: &[Tag]) -> Result<String> {
        validate::experiment_name(name)?;
        let retried = Cell::new(false);
        let body = json!({ "name": name, "tags": tags_json(tags) });
        let result = self.http.json_idempotent(
            Method::Post,
            &format!("{API}/experiments/create"),
            &body,
            || {
                retried.set(true);
                Ok(None)
            },
        );
        match result {
            Ok(v) => take(v, "experiment_id", "experiments/create"),
            // The first attempt landed but its answer was lost.
            Err(e) if e.is_already_exists() && retried.get() => self
                .get_experiment_by_name(name)?
                .map(|e| e.experiment_id)
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        self.get(
            "experiments/get",
            &[("experiment_id", experiment_id.to_string())],
            "experiment",
        )
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        validate::experiment_name(name)?;
        match self.get(
            "experiments/get-by-name",
            &[("experiment_name", name.to_string())],
            "experiment",
        ) {
            Ok(e) => Ok(Some(e)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn search_experiments(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
        view: ViewType,
    ) -> Result<Page<Experiment>> {
        let mut body = json!({ "max_results": max_results.max(1), "view_type": view });
        if let Some(f) = filter {
            body["filter"] = json!(f);
        }
        if let Some(t) = page_token {
            body["page_token"] = json!(t);
        }
        page(
            self.call(Method::Post, "experiments/search", body)?,
            "experiments",
            "experiments/search",
        )
    }

    fn set_experiment_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()> {
        validate::key("experiment tag key", key)?;
        self.call(
            Method::Post,
            "experiments/set-experiment-tag",
            json!({ "experiment_id": experiment_id, "key": key, "value": value }),
        )
        .map(drop)
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        self.call(
            Method::Post,
            "experiments/delete",
            json!({ "experiment_id": experiment_id }),
        )
        .map(drop)
    }

    fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        self.call(
            Method::Post,
            "experiments/restore",
            json!({ "experiment_id": experiment_id }),
        )
        .map(drop)
    }

    fn create_run(&self, request: &CreateRun) -> Result<Run> {
        let mut tags = request.tags.clone();
        for t in &tags {
            validate::key("tag key", &t.key)?;
            validate::tag_value(&t.key, &t.value)?;
        }
        // A client-generated key: a retry after a lost response finds the run
        // the first attempt created instead of creating a second one.
        let request_id = match tags.iter().find(|t| t.key == REQUEST_ID_TAG) {
            Some(t) => t.value.clone(),
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                tags.push(Tag::new(REQUEST_ID_TAG, &id));
                id
            }
        };
        if let Some(name) = &request.run_name {
            tags.retain(|t| t.key != "mlflow.runName");
            tags.push(Tag::new("mlflow.runName", name));
        }
        let user = tags
            .iter()
            .find(|t| t.key == "mlflow.user")
            .map(|t| t.value.clone())
            .unwrap_or_else(|| "unknown".to_string());
        let mut body = json!({
            "experiment_id": request.experiment_id,
            "start_time": request.start_time.unwrap_or_else(now_millis),
            "user_id": user,
            "tags": tags_json(&tags),
        });
        if let Some(name) = &request.run_name {
            body["run_name"] = json!(name);
        }
        let v = self.http.json_idempotent(
            Method::Post,
            &format!("{API}/runs/create"),
            &body,
            || self.find_run_by_request_id(&request.experiment_id, &request_id),
        )?;
        take(v, "run", "runs/create")
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        self.get("runs/get", &[("run_id", run_id.to_string())], "run")
    }

    fn update_run(&self, run_id: &str, status: RunStatus, end_time: Option<i64>) -> Result<()> {
        let mut body = json!({ "run_id": run_id, "run_uuid": run_id, "status": status.as_str() });
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        self.call(Method::Post, "runs/update", body).map(drop)
    }

    fn delete_run(&self, run_id: &str) -> Result<()> {
        self.call(Method::Post, "runs/delete", json!({ "run_id": run_id }))
            .map(drop)
    }

    fn restore_run(&self, run_id: &str) -> Result<()> {
        self.call(Method::Post, "runs/restore", json!({ "run_id": run_id }))
            .map(drop)
    }

    fn search_runs(&self, search: &RunSearch) -> Result<Page<Run>> {
        let mut body = json!({
            "experiment_ids": search.experiment_ids,
            "run_view_type": search.view_type,
            "max_results": search.max_results.unwrap_or(1000),
        });
        if let Some(f) = &search.filter {
            body["filter"] = json!(f);
        }
        if !search.order_by.is_empty() {
            body["order_by"] = json!(search.order_by);
        }
        if let Some(t) = &search.page_token {
            body["page_token"] = json!(t);
        }
        page(
            self.call(Method::Post, "runs/search", body)?,
            "runs",
            "runs/search",
        )
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        for (m, p, t) in split_batch(metrics, params, tags) {
            let body = json!({
                "run_id": run_id,
                "metrics": m,
                "params": p,
                "tags": t,
            });
            self.call(Method::Post, "runs/log-batch", body)?;
        }
        Ok(())
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        validate::key("tag key", key)?;
        validate::tag_value(key, value)?;
        self.call(
            Method::Post,
            "runs/set-tag",
            json!({ "run_id": run_id, "run_uuid": run_id, "key": key, "value": value }),
        )
        .map(drop)
    }

    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.call(
            Method::Post,
            "runs/delete-tag",
            json!({ "run_id": run_id, "key": key }),
        )
        .map(drop)
    }

    fn get_metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("run_id", run_id.to_string()),
                ("metric_key", key.to_string()),
                ("max_results", "25000".to_string()),
            ];
            if let Some(t) = &token {
                q.push(("page_token", t.clone()));
            }
            let v = self
                .http
                .json(Method::Get, &format!("{API}/metrics/get-history"), &q, None)?;
            let p: Page<Metric> = page(v, "metrics", "metrics/get-history")?;
            out.extend(p.items);
            match p.next_page_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    fn upload_artifact(&self, root: &str, rel_path: &str, local: &Path) -> Result<()> {
        match self.artifact_target(root, rel_path)? {
            ArtifactTarget::Proxied(p) => self
                .http
                .put_file(&format!("{ARTIFACTS_API}/{}", encode_path(&p)), local),
            ArtifactTarget::Local(dir) => local_artifacts::upload(&dir, rel_path, local),
        }
    }

    fn upload_artifact_bytes(&self, root: &str, rel_path: &str, bytes: &[u8]) -> Result<()> {
        match self.artifact_target(root, rel_path)? {
            ArtifactTarget::Proxied(p) => self
                .http
                .put_bytes(&format!("{ARTIFACTS_API}/{}", encode_path(&p)), bytes),
            ArtifactTarget::Local(dir) => local_artifacts::upload_bytes(&dir, rel_path, bytes),
        }
    }

    fn list_artifacts(&self, root: &str, rel_path: &str) -> Result<Vec<FileInfo>> {
        match self.artifact_target(root, rel_path)? {
            ArtifactTarget::Proxied(p) => {
                let v = self
                    .http
                    .json(Method::Get, ARTIFACTS_API, &[("path", p)], None)?;
                let files: Vec<FileInfo> = take(v, "files", "mlflow-artifacts/artifacts")?;
                // The proxied listing names entries relative to the listed
                // directory; make them relative to the root.
                let mut out: Vec<FileInfo> = files
                    .into_iter()
                    .map(|f| {
                        let name = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
                        FileInfo {
                            path: join_uri(rel_path, &name)
                                .trim_start_matches('/')
                                .to_string(),
                            ..f
                        }
                    })
                    .collect();
                out.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(out)
            }
            ArtifactTarget::Local(dir) => local_artifacts::list(&dir, rel_path),
        }
    }

    fn download_artifact(
        &self,
        root: &str,
        rel_path: &str,
        dest: &Path,
        size_hint: Option<u64>,
    ) -> Result<()> {
        match self.artifact_target(root, rel_path)? {
            ArtifactTarget::Proxied(p) => self
                .http
                .get_to_file(
                    &format!("{ARTIFACTS_API}/{}", encode_path(&p)),
                    dest,
                    size_hint,
                )
                .map(drop),
            ArtifactTarget::Local(dir) => local_artifacts::download(&dir, rel_path, dest),
        }
    }

    fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> Result<RegisteredModel> {
        validate::model_name(name)?;
        let mut body = json!({ "name": name, "tags": tags_json(tags) });
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        let retried = Cell::new(false);
        let result = self.http.json_idempotent(
            Method::Post,
            &format!("{API}/registered-models/create"),
            &body,
            || {
                retried.set(true);
                Ok(None)
            },
        );
        match result {
            Ok(v) => take(v, "registered_model", "registered-models/create"),
            Err(e) if e.is_already_exists() && retried.get() => self.get_registered_model(name),
            Err(e) => Err(e),
        }
    }

    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        validate::model_name(name)?;
        self.get(
            "registered-models/get",
            &[("name", name.to_string())],
            "registered_model",
        )
    }

    fn search_registered_models(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>> {
        let mut q = vec![("max_results", max_results.clamp(1, 1000).to_string())];
        if let Some(f) = filter {
            q.push(("filter", f.to_string()));
        }
        if let Some(t) = page_token {
            q.push(("page_token", t.to_string()));
        }
        let v = self.http.json(
            Method::Get,
            &format!("{API}/registered-models/search"),
            &q,
            None,
        )?;
        page(v, "registered_models", "registered-models/search")
    }

    fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.call(
            Method::Delete,
            "registered-models/delete",
            json!({ "name": name }),
        )
        .map(drop)
    }

    fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        validate::key("registered model tag key", key)?;
        self.call(
            Method::Post,
            "registered-models/set-tag",
            json!({ "name": name, "key": key, "value": value }),
        )
        .map(drop)
    }

    fn create_model_version(&self, request: &CreateModelVersion) -> Result<ModelVersion> {
        validate::model_name(&request.name)?;
        let mut tags = request.tags.clone();
        let request_id = match tags.iter().find(|t| t.key == REQUEST_ID_TAG) {
            Some(t) => t.value.clone(),
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                tags.push(Tag::new(REQUEST_ID_TAG, &id));
                id
            }
        };
        let mut body = json!({
            "name": request.name,
            "source": request.source,
            "tags": tags_json(&tags),
        });
        if let Some(r) = &request.run_id {
            body["run_id"] = json!(r);
        }
        if let Some(d) = &request.description {
            body["description"] = json!(d);
        }
        let v = self.http.json_idempotent(
            Method::Post,
            &format!("{API}/model-versions/create"),
            &body,
            || self.find_version_by_request_id(&request.name, &request_id),
        )?;
        take(v, "model_version", "model-versions/create")
    }

    fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        validate::version(version)?;
        self.get(
            "model-versions/get",
            &[("name", name.to_string()), ("version", version.to_string())],
            "model_version",
        )
    }

    fn search_model_versions(
        &self,
        filter: Option<&str>,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let mut q = vec![("max_results", max_results.clamp(1, 200_000).to_string())];
        if let Some(f) = filter {
            q.push(("filter", f.to_string()));
        }
        if let Some(t) = page_token {
            q.push(("page_token", t.to_string()));
        }
        let v = self.http.json(
            Method::Get,
            &format!("{API}/model-versions/search"),
            &q,
            None,
        )?;
        page(v, "model_versions", "model-versions/search")
    }

    fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>> {
        let stages: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
        let v = self.call(
            Method::Post,
            "registered-models/get-latest-versions",
            json!({ "name": name, "stages": stages }),
        )?;
        take(v, "model_versions", "registered-models/get-latest-versions")
    }

    fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        validate::version(version)?;
        let v = self.call(
            Method::Post,
            "model-versions/transition-stage",
            json!({
                "name": name,
                "version": version,
                "stage": stage.as_str(),
                "archive_existing_versions": archive_existing,
            }),
        )?;
        take(v, "model_version", "model-versions/transition-stage")
    }

    fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        validate::version(version)?;
        self.call(
            Method::Delete,
            "model-versions/delete",
            json!({ "name": name, "version": version }),
        )
        .map(drop)
    }

    fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        validate::version(version)?;
        validate::key("model version tag key", key)?;
        self.call(
            Method::Post,
            "model-versions/set-tag",
            json!({ "name": name, "version": version, "key": key, "value": value }),
        )
        .map(drop)
    }

    /// MLflow creates a new alias with a plain INSERT, so two first-time
    /// `set_alias` calls at once fail one of them on the unique constraint
    /// (HTTP 400, seen with MLflow 3.17 on sqlite); the retry finds the alias
    /// and updates it. Setting an alias is idempotent, so retrying is safe.
    fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        validate::alias(alias)?;
        validate::version(version)?;
        const ATTEMPTS: u64 = 5;
        let body = json!({ "name": name, "alias": alias, "version": version });
        let mut attempt = 0;
        loop {
            match self.call(Method::Post, "registered-models/alias", body.clone()) {
                Err(TrackingError::Api {
                    status: 400,
                    message,
                    ..
                }) if attempt + 1 < ATTEMPTS && message.to_lowercase().contains("unique") => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
                }
                other => return other.map(drop),
            }
        }
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        validate::alias(alias)?;
        self.call(
            Method::Delete,
            "registered-models/alias",
            json!({ "name": name, "alias": alias }),
        )
        .map(drop)
    }

    fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        validate::alias(alias)?;
        match self.get(
            "registered-models/alias",
            &[("name", name.to_string()), ("alias", alias.to_string())],
            "model_version",
        ) {
            // The server answers 400 for an unknown alias; say "not found".
            Err(TrackingError::Api { message, .. })
                if message.contains("alias") && message.contains("not found") =>
            {
                Err(TrackingError::NotFound {
                    what: "model alias",
                    name: format!("{name}@{alias}"),
                })
            }
            other => other,
        }
    }

    fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String> {
        validate::version(version)?;
        self.get(
            "model-versions/get-download-uri",
            &[("name", name.to_string()), ("version", version.to_string())],
            "artifact_uri",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(n: usize) -> Vec<Metric> {
        (0..n)
            .map(|i| Metric::new("m", i as f64, i as i64))
            .collect()
    }

    #[test]
    fn batches_respect_every_server_limit() {
        let params: Vec<Param> = (0..250)
            .map(|i| Param {
                key: format!("p{i}"),
                value: "v".into(),
            })
            .collect();
        let tags: Vec<Tag> = (0..130).map(|i| Tag::new(format!("t{i}"), "v")).collect();
        let ms = metrics(2500);
        let chunks = split_batch(&ms, &params, &tags);
        let (mut nm, mut np, mut nt) = (0, 0, 0);
        for (m, p, t) in &chunks {
            assert!(m.len() <= 1000 && p.len() <= 100 && t.len() <= 100);
            assert!(m.len() + p.len() + t.len() <= 1000);
            nm += m.len();
            np += p.len();
            nt += t.len();
        }
        assert_eq!((nm, np, nt), (2500, 250, 130));
        assert!(split_batch(&[], &[], &[]).is_empty());
        assert_eq!(split_batch(&metrics(1000), &[], &[]).len(), 1);
    }

    #[test]
    fn artifact_roots_map_to_the_proxy_api() {
        let store = RestStore::new(
            &TrackingConfig::builder()
                .uri("http://127.0.0.1:1")
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap();
        let p = |root: &str, rel: &str| match store.artifact_target(root, rel).unwrap() {
            ArtifactTarget::Proxied(p) => p,
            ArtifactTarget::Local(d) => d.display().to_string(),
        };
        assert_eq!(
            p("mlflow-artifacts:/1/abc/artifacts", "model/MLmodel"),
            "1/abc/artifacts/model/MLmodel"
        );
        assert_eq!(
            p("mlflow-artifacts://h:5000/1/abc/artifacts", ""),
            "1/abc/artifacts"
        );
        assert_eq!(p("file:///tmp/x", "a"), "/tmp/x");
        assert!(
            store
                .artifact_target("mlflow-artifacts:/1", "../etc")
                .is_err()
        );
        assert!(store.artifact_target("s3://bucket/x", "a").is_err());
    }
}
