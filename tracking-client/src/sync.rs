//! Pushing a local store to a tracking server, exactly once.
//!
//! Each local run gets one server run, found again on later syncs by the
//! `vigil.synced_from` tag (so a re-run or an interrupted sync never makes a
//! second copy). Metric points keep their timestamps, and the server stores
//! an identical point once, so re-sending a run's history adds nothing.
//! Registered versions are matched the same way (`vigil.synced_from` =
//! `<name>/<version>`), with their source rewritten to the server run's
//! artifacts; stages and aliases follow.

use std::collections::HashMap;

use crate::artifacts;
use crate::error::Result;
use crate::rest::join_uri;
use crate::store::{REQUEST_ID_TAG, SYNCED_FROM_TAG, TrackingStore};
use crate::types::{CreateModelVersion, CreateRun, Metric, Run, RunSearch, Stage, Tag, ViewType};

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Experiments seen.
    pub experiments: usize,
    /// Runs created on the server.
    pub runs_created: usize,
    /// Runs that already had a server copy (updated in place).
    pub runs_existing: usize,
    /// Metric points sent.
    pub metric_points: usize,
    /// Artifact files uploaded.
    pub artifacts: usize,
    /// Model versions created on the server.
    pub versions_created: usize,
    /// Model versions that already had a server copy.
    pub versions_existing: usize,
    /// Local run id → server run id.
    pub run_map: Vec<(String, String)>,
}

fn all_runs(
    store: &dyn TrackingStore,
    experiment_id: &str,
    filter: Option<String>,
) -> Result<Vec<Run>> {
    let mut search = RunSearch::in_experiments([experiment_id]).view_type(ViewType::All);
    search.filter = filter;
    let mut out = Vec::new();
    loop {
        let page = store.search_runs(&search)?;
        out.extend(page.items);
        match page.next_page_token {
            Some(t) => search.page_token = Some(t),
            None => return Ok(out),
        }
    }
}

/// Pushes every experiment, run and registered model of `local` to `remote`.
pub fn sync(local: &dyn TrackingStore, remote: &dyn TrackingStore) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let mut run_map: HashMap<String, (String, String)> = HashMap::new(); // local → (remote id, remote artifact uri)
    let mut token: Option<String> = None;
    let mut experiments = Vec::new();
    loop {
        let page = local.search_experiments(None, 1000, token.as_deref(), ViewType::ActiveOnly)?;
        experiments.extend(page.items);
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    for exp in experiments {
        let mut runs = all_runs(local, &exp.experiment_id, None)?;
        if runs.is_empty() {
            continue;
        }
        report.experiments += 1;
        let remote_exp = match remote.get_experiment_by_name(&exp.name)? {
            Some(e) => e.experiment_id,
            None => match remote.create_experiment(&exp.name, &exp.tags) {
                Ok(id) => id,
                Err(e) if e.is_already_exists() => remote
                    .get_experiment_by_name(&exp.name)?
                    .map(|e| e.experiment_id)
                    .ok_or(e)?,
                Err(e) => return Err(e),
            },
        };
        // Parents first, so children can point at their server copy.
        runs.sort_by_key(|r| (r.tag("mlflow.parentRunId").is_some(), r.info.start_time));
        for run in runs {
            let local_id = run.info.run_id.clone();
            let existing = all_runs(
                remote,
                &remote_exp,
                Some(format!("tags.`{SYNCED_FROM_TAG}` = '{local_id}'")),
            )?;
            let remote_run = match existing.into_iter().next() {
                Some(r) => {
                    report.runs_existing += 1;
                    r
                }
                None => {
                    let mut tags: Vec<Tag> = run
                        .data
                        .tags
                        .iter()
                        .filter(|t| t.key != "mlflow.parentRunId" && t.key != REQUEST_ID_TAG)
                        .cloned()
                        .collect();
                    tags.push(Tag::new(SYNCED_FROM_TAG, &local_id));
                    report.runs_created += 1;
                    remote.create_run(&CreateRun {
                        experiment_id: remote_exp.clone(),
                        run_name: Some(run.info.run_name.clone()).filter(|n| !n.is_empty()),
                        start_time: Some(run.info.start_time),
                        tags,
                    })?
                }
            };
            let remote_id = remote_run.info.run_id.clone();
            // Full metric histories.
            let mut metrics: Vec<Metric> = Vec::new();
            for latest in &run.data.metrics {
                metrics.extend(local.get_metric_history(&local_id, &latest.key)?);
            }
            report.metric_points += metrics.len();
            let mut tags: Vec<Tag> = run
                .data
                .tags
                .iter()
                .filter(|t| t.key != "mlflow.parentRunId" && t.key != REQUEST_ID_TAG)
                .cloned()
                .collect();
            if let Some(parent) = run.tag("mlflow.parentRunId")
                && let Some((remote_parent, _)) = run_map.get(parent)
            {
                tags.push(Tag::new("mlflow.parentRunId", remote_parent));
            }
            remote.log_batch(&remote_id, &metrics, &run.data.params, &tags)?;
            // Artifacts: overwriting is idempotent.
            let files = artifacts::list_recursive(local, &run.info.artifact_uri, "")?;
            for f in &files {
                let tmp = tempfile_path(&f.path);
                local.download_artifact(&run.info.artifact_uri, &f.path, &tmp, f.file_size)?;
                let uploaded = remote.upload_artifact(&remote_run.info.artifact_uri, &f.path, &tmp);
                let _ = std::fs::remove_file(&tmp);
                uploaded?;
            }
            report.artifacts += files.len();
            if run.info.status.is_terminal() {
                remote.update_run(&remote_id, run.info.status, run.info.end_time)?;
            }
            if run.info.lifecycle_stage == crate::types::LifecycleStage::Deleted {
                remote.delete_run(&remote_id)?;
            }
            report.run_map.push((local_id.clone(), remote_id.clone()));
            run_map.insert(local_id, (remote_id, remote_run.info.artifact_uri.clone()));
        }
    }
    sync_registry(local, remote, &run_map, &mut report)?;
    Ok(report)
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    let safe = crate::spool::safe_file_name(name);
    std::env::temp_dir().join(format!(
        "vigil-sync-{}-{safe}",
        uuid::Uuid::new_v4().simple()
    ))
}

fn sync_registry(
    local: &dyn TrackingStore,
    remote: &dyn TrackingStore,
    run_map: &HashMap<String, (String, String)>,
    report: &mut SyncReport,
) -> Result<()> {
    let mut token: Option<String> = None;
    loop {
        let page = local.search_registered_models(None, 1000, token.as_deref())?;
        for model in &page.items {
            match remote.get_registered_model(&model.name) {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    match remote.create_registered_model(
                        &model.name,
                        model.description.as_deref(),
                        &model.tags,
                    ) {
                        Ok(_) => {}
                        Err(e) if e.is_already_exists() => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
            // Remote versions already synced, by their local key.
            let mut synced: HashMap<String, String> = HashMap::new();
            let mut vtoken: Option<String> = None;
            loop {
                let filter = format!("name = '{}'", model.name.replace('\'', "\\'"));
                let p = remote.search_model_versions(Some(&filter), 10_000, vtoken.as_deref())?;
                for v in p.items {
                    if let Some(from) = v.tag(SYNCED_FROM_TAG) {
                        synced.insert(from.to_string(), v.version.clone());
                    }
                }
                match p.next_page_token {
                    Some(t) => vtoken = Some(t),
                    None => break,
                }
            }
            let mut versions = Vec::new();
            let mut vtoken: Option<String> = None;
            loop {
                let filter = format!("name = '{}'", model.name.replace('\'', "\\'"));
                let p = local.search_model_versions(Some(&filter), 10_000, vtoken.as_deref())?;
                versions.extend(p.items);
                match p.next_page_token {
                    Some(t) => vtoken = Some(t),
                    None => break,
                }
            }
            versions.sort_by_key(|v| v.number());
            let mut remote_of: HashMap<String, String> = HashMap::new();
            for v in &versions {
                let key = format!("{}/{}", v.name, v.version);
                let remote_version = match synced.get(&key) {
                    Some(rv) => {
                        report.versions_existing += 1;
                        rv.clone()
                    }
                    None => {
                        let (run_id, source) = match run_map.get(&v.run_id) {
                            Some((remote_run, remote_root)) => {
                                let local_root = local.get_run(&v.run_id)?.info.artifact_uri;
                                let sub = v
                                    .source
                                    .strip_prefix(&local_root)
                                    .map(|s| s.trim_matches('/').to_string())
                                    .or_else(|| {
                                        v.source
                                            .strip_prefix(&format!("runs:/{}", v.run_id))
                                            .map(|s| s.trim_matches('/').to_string())
                                    })
                                    .unwrap_or_default();
                                (Some(remote_run.clone()), join_uri(remote_root, &sub))
                            }
                            None => (None, v.source.clone()),
                        };
                        let mut tags: Vec<Tag> = v
                            .tags
                            .iter()
                            .filter(|t| t.key != REQUEST_ID_TAG)
                            .cloned()
                            .collect();
                        tags.push(Tag::new(SYNCED_FROM_TAG, &key));
                        report.versions_created += 1;
                        remote
                            .create_model_version(&CreateModelVersion {
                                name: v.name.clone(),
                                source,
                                run_id,
                                description: v.description.clone(),
                                tags,
                            })?
                            .version
                    }
                };
                if v.stage() != Stage::None {
                    remote.transition_stage(&v.name, &remote_version, v.stage(), false)?;
                }
                remote_of.insert(v.version.clone(), remote_version);
            }
            for alias in &model.aliases {
                if let Some(rv) = remote_of.get(&alias.version) {
                    remote.set_alias(&model.name, &alias.alias, rv)?;
                }
            }
        }
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => return Ok(()),
        }
    }
}
