//! Everything against the real MLflow 3.17.2 server the harness started
//! (`VIGIL_TEST_MLFLOW_URI`), read back by both this client and MLflow's own
//! Python client (`VIGIL_MLFLOW_VENV`).

// Helper fns outside #[test] may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{python, server_tracker, service, unique};
use vigil_tracking_client::{
    ColumnType, MlModel, ModelSignature, RunOptions, RunSearch, RunStatus, Stage, Tracker,
    TrackingConfig, TrackingError, ViewType, VigilFlavor,
};

fn tracker(spool: &std::path::Path) -> Option<Tracker> {
    let uri = service("VIGIL_TEST_MLFLOW_URI")?;
    Some(server_tracker(&uri, spool))
}

#[test]
fn experiments_create_get_search_and_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = tracker(tmp.path()) else { return };
    let s = t.store();
    let name = unique("exp");
    let e = t.get_or_create_experiment(&name).unwrap();
    assert_eq!(e.name, name);
    assert!(e.artifact_location.starts_with("mlflow-artifacts:/"));
    // get-or-create is idempotent
    assert_eq!(
        t.get_or_create_experiment(&name).unwrap().experiment_id,
        e.experiment_id
    );
    let err = s.create_experiment(&name, &[]).unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    assert_eq!(err.status(), Some(400));
    s.set_experiment_tag(&e.experiment_id, "team", "maintenance")
        .unwrap();
    let got = s.get_experiment(&e.experiment_id).unwrap();
    assert_eq!(
        got.tags.iter().find(|t| t.key == "team").unwrap().value,
        "maintenance"
    );
    let found = s
        .search_experiments(
            Some(&format!("name = '{name}'")),
            10,
            None,
            ViewType::ActiveOnly,
        )
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert!(
        s.get_experiment_by_name(&unique("missing"))
            .unwrap()
            .is_none()
    );
    let err = s.get_experiment("999999999").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    // delete / restore
    s.delete_experiment(&e.experiment_id).unwrap();
    let restored = t.get_or_create_experiment(&name).unwrap();
    assert_eq!(restored.experiment_id, e.experiment_id);
}

#[test]
fn runs_log_search_delete_restore_and_history() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = tracker(tmp.path()) else { return };
    let s = t.store();
    let exp = t.get_or_create_experiment(&unique("runs")).unwrap();
    let parent = t
        .start_run(RunOptions::new(&exp.experiment_id).name("parent-run"))
        .unwrap();
    let run = s.get_run(parent.run_id()).unwrap();
    assert_eq!(run.info.status, RunStatus::Running);
    assert!(
        run.info.start_time > 1_700_000_000_000,
        "start_time is sent"
    );
    assert_eq!(run.info.run_name, "parent-run");
    assert_eq!(run.info.user_id, "vigil-test");
    assert_eq!(run.tag("mlflow.user"), Some("vigil-test"));
    assert_eq!(run.tag("mlflow.source.name"), Some("tracking-client-tests"));
    assert_eq!(run.tag("mlflow.runName"), Some("parent-run"));

    // Children: f1 = 0.70, 0.75, ... ; one of them dropped unfinished.
    let mut child_ids = Vec::new();
    for i in 0..4 {
        let c = parent.start_child(&format!("trial-{i}")).unwrap();
        c.log_param("max_depth", 3 + i).unwrap();
        c.log_metric("f1", 0.70 + 0.05 * i as f64).unwrap();
        child_ids.push(c.run_id().to_string());
        if i == 3 {
            drop(c); // never finished: must end FAILED
        } else {
            c.finish().unwrap();
        }
    }
    // A panic inside a run's scope also ends it FAILED.
    let panicked_id = std::sync::Mutex::new(String::new());
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let c = parent.start_child("panics").unwrap();
        *panicked_id.lock().unwrap() = c.run_id().to_string();
        c.log_metric("f1", 0.1).unwrap();
        panic!("trial blew up");
    }));
    let panicked = s.get_run(&panicked_id.lock().unwrap()).unwrap();
    assert_eq!(panicked.info.status, RunStatus::Failed);
    assert_eq!(
        panicked.metric("f1"),
        Some(0.1),
        "buffered values still delivered"
    );
    let dropped = s.get_run(&child_ids[3]).unwrap();
    assert_eq!(dropped.info.status, RunStatus::Failed);
    assert!(dropped.info.end_time.is_some());
    assert_eq!(dropped.tag("mlflow.parentRunId"), Some(parent.run_id()));

    // Params, metrics (NaN, ±Inf), tags, a long history through the batcher.
    parent.log_param("model", "random_forest").unwrap();
    parent.log_param("model", "random_forest").unwrap(); // same value: fine
    let err = parent.log_param("model", "isolation_forest").unwrap_err();
    assert!(matches!(err, TrackingError::InvalidInput { .. }), "{err}");
    for step in 0..2500 {
        parent
            .log_metric_at("loss", 1.0 / (step + 1) as f64, step)
            .unwrap();
    }
    parent.log_metric("nan_metric", f64::NAN).unwrap();
    parent.log_metric("pos_inf", f64::INFINITY).unwrap();
    parent.log_metric("neg_inf", f64::NEG_INFINITY).unwrap();
    parent.set_tag("stage", "dev").unwrap();
    parent.set_tag("stage", "prod").unwrap();
    assert!(
        parent.log_metric("../escape", 1.0).is_err(),
        "bad keys fail at the call"
    );
    assert!(parent.log_param(&"k".repeat(251), 1).is_err());
    parent.flush().unwrap();
    let run = s.get_run(parent.run_id()).unwrap();
    assert_eq!(run.param("model"), Some("random_forest"));
    assert_eq!(run.tag("stage"), Some("prod"));
    assert!(run.metric("nan_metric").unwrap().is_nan());
    assert_eq!(
        run.metric("pos_inf"),
        Some(f64::MAX),
        "the SQL store clamps +Inf"
    );
    assert_eq!(run.metric("neg_inf"), Some(-f64::MAX));
    let history = s.get_metric_history(parent.run_id(), "loss").unwrap();
    assert_eq!(history.len(), 2500);
    let mut steps: Vec<i64> = history.iter().map(|m| m.step).collect();
    steps.sort_unstable();
    assert_eq!(steps, (0..2500).collect::<Vec<_>>());
    assert!(
        s.get_metric_history(parent.run_id(), "never-logged")
            .unwrap()
            .is_empty()
    );

    // Search: filter, order, pagination.
    let search = RunSearch::in_experiments([exp.experiment_id.as_str()])
        .filter("metrics.f1 >= 0.75 and attributes.status = 'FINISHED'")
        .order_by("metrics.f1 DESC")
        .max_results(1);
    let first = s.search_runs(&search).unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].info.run_id, child_ids[2]);
    let second = s
        .search_runs(
            &search
                .clone()
                .page_token(first.next_page_token.clone().unwrap()),
        )
        .unwrap();
    assert_eq!(second.items[0].info.run_id, child_ids[1]);
    assert!(second.next_page_token.is_none());
    let all = t
        .search_all_runs(RunSearch::in_experiments([exp.experiment_id.as_str()]).max_results(2))
        .unwrap();
    assert_eq!(all.len(), 6);
    let err = s
        .search_runs(
            &RunSearch::in_experiments([exp.experiment_id.as_str()]).filter("metrics.f1 >> 2"),
        )
        .unwrap_err();
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"));

    // Delete / restore.
    s.delete_run(&child_ids[0]).unwrap();
    let active = t
        .search_all_runs(RunSearch::in_experiments([exp.experiment_id.as_str()]))
        .unwrap();
    assert_eq!(active.len(), 5);
    let deleted = t
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()])
                .view_type(ViewType::DeletedOnly),
        )
        .unwrap();
    assert_eq!(deleted.len(), 1);
    s.restore_run(&child_ids[0]).unwrap();
    parent.finish().unwrap();
    let run = s.get_run(&run.info.run_id).unwrap();
    assert_eq!(run.info.status, RunStatus::Finished);
    assert!(run.info.end_time.unwrap() >= run.info.start_time);
}

#[test]
fn artifacts_upload_list_download_files_and_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = tracker(tmp.path()) else { return };
    let exp = t.get_or_create_experiment(&unique("artifacts")).unwrap();
    let run = t.start_run(RunOptions::new(&exp.experiment_id)).unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("plots/roc")).unwrap();
    std::fs::write(src.join("report.json"), br#"{"f1":0.9}"#).unwrap();
    std::fs::write(
        src.join("plots/roc/curve.png"),
        [0x89u8, b'P', b'N', b'G', 0, 1, 2],
    )
    .unwrap();
    std::fs::write(src.join("plots/my file.txt"), b"spaces ok").unwrap();
    // 6 MB of pseudo-random bytes: streamed, size-aware timeout.
    let big: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    run.log_artifacts(&src, Some("bundle")).unwrap();
    run.log_artifact(&src.join("report.json"), None).unwrap();
    run.log_artifact_bytes("notes/readme.md", b"# hi").unwrap();
    let s = t.store();
    let top = s.list_artifacts(run.artifact_uri(), "").unwrap();
    let names: Vec<(&str, bool)> = top.iter().map(|f| (f.path.as_str(), f.is_dir)).collect();
    assert_eq!(
        names,
        [("bundle", true), ("notes", true), ("report.json", false)]
    );
    let plots = s
        .list_artifacts(run.artifact_uri(), "bundle/plots")
        .unwrap();
    let plot_names: Vec<&str> = plots.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(plot_names, ["bundle/plots/my file.txt", "bundle/plots/roc"]);
    let dest = tmp.path().join("dest");
    let files = t.download_artifacts(run.run_id(), "bundle", &dest).unwrap();
    assert_eq!(files.len(), 4);
    assert_eq!(std::fs::read(dest.join("big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read(dest.join("plots/my file.txt")).unwrap(),
        b"spaces ok"
    );
    assert_eq!(
        std::fs::read(dest.join("plots/roc/curve.png")).unwrap(),
        [0x89u8, b'P', b'N', b'G', 0, 1, 2]
    );
    let err = s
        .download_artifact(run.artifact_uri(), "nope.txt", &tmp.path().join("x"), None)
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert!(
        !tmp.path().join("x").exists(),
        "no partial file left behind"
    );
    assert!(
        s.upload_artifact_bytes(run.artifact_uri(), "../escape", b"x")
            .is_err()
    );
    run.finish().unwrap();
}

#[test]
fn registry_stages_aliases_and_python_reads_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = tracker(tmp.path()) else { return };
    let s = t.store();
    let model_name = unique("pm_model");
    let exp = t.get_or_create_experiment(&unique("registry")).unwrap();
    let features = [
        "temperature_mean_1h",
        "vibration_std_30m",
        "spindle_speed_max_1h",
    ];
    let mut versions = Vec::new();
    let mut last_run = String::new();
    for i in 0..3 {
        let run = t
            .start_run(RunOptions::new(&exp.experiment_id).name(format!("train-{i}")))
            .unwrap();
        run.log_param("n_estimators", 100 * (i + 1)).unwrap();
        for step in 0..5 {
            run.log_metric_at("auc", 0.8 + 0.01 * step as f64, step)
                .unwrap();
        }
        run.log_metric("nan_metric", f64::NAN).unwrap();
        let model_dir = tmp.path().join(format!("model-{i}"));
        std::fs::create_dir_all(&model_dir).unwrap();
        std::fs::write(model_dir.join("model.bin"), format!("forest {i}")).unwrap();
        std::fs::write(model_dir.join("feature_spec.json"), r#"{"window":"1h"}"#).unwrap();
        let mlmodel = MlModel::new(
            VigilFlavor::new("random_forest", "postcard", 1, "model.bin"),
            Some(ModelSignature::doubles(features, ColumnType::Long)),
        );
        let logged = run.log_model("model", &model_dir, &mlmodel).unwrap();
        assert_eq!(logged.source, format!("{}/model", run.artifact_uri()));
        let v = t.register_model(&model_name, &logged).unwrap();
        assert_eq!(v.version, (i + 1).to_string());
        assert_eq!(v.run_id, run.run_id());
        assert_eq!(v.source, logged.source);
        assert_eq!(v.status, "READY");
        versions.push(v);
        last_run = run.run_id().to_string();
        run.finish().unwrap();
    }
    // Stages with archive_existing: v1 → Production, then v2 → Production archives v1.
    t.promote(&model_name, "1", Stage::Production).unwrap();
    t.promote(&model_name, "2", Stage::Production).unwrap();
    s.transition_stage(&model_name, "3", Stage::Staging, false)
        .unwrap();
    assert_eq!(
        s.get_model_version(&model_name, "1").unwrap().stage(),
        Stage::Archived
    );
    assert_eq!(
        s.get_model_version(&model_name, "2").unwrap().stage(),
        Stage::Production
    );
    let latest = s
        .get_latest_versions(&model_name, &[Stage::Production])
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].version, "2");
    // Aliases.
    s.set_alias(&model_name, "champion", "3").unwrap();
    s.set_alias(&model_name, "champion", "2").unwrap(); // moves
    s.set_alias(&model_name, "challenger", "3").unwrap();
    assert_eq!(
        s.get_model_version_by_alias(&model_name, "champion")
            .unwrap()
            .version,
        "2"
    );
    s.delete_alias(&model_name, "challenger").unwrap();
    let err = s
        .get_model_version_by_alias(&model_name, "challenger")
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        s.set_alias(&model_name, "latest", "1").is_err(),
        "reserved alias rejected locally"
    );
    let rm = s.get_registered_model(&model_name).unwrap();
    assert_eq!(rm.aliases.len(), 1);
    // Resolution, all four forms.
    assert_eq!(
        t.resolve_model(&format!("models:/{model_name}/1"))
            .unwrap()
            .version
            .version,
        "1"
    );
    assert_eq!(
        t.resolve_model(&format!("models:/{model_name}/Production"))
            .unwrap()
            .version
            .version,
        "2"
    );
    assert_eq!(
        t.resolve_model(&format!("models:/{model_name}/staging"))
            .unwrap()
            .version
            .version,
        "3"
    );
    assert_eq!(
        t.resolve_model(&format!("models:/{model_name}@champion"))
            .unwrap()
            .version
            .version,
        "2"
    );
    assert_eq!(
        t.resolve_model(&format!("models:/{model_name}/latest"))
            .unwrap()
            .version
            .version,
        "3"
    );
    let err = t
        .resolve_model(&format!("models:/{}/Production", unique("nope")))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(t.resolve_model("models:/bad/uri/x@").is_err());
    // Download.
    let dest = tmp.path().join("serving");
    let (resolved, mlmodel) = t
        .download_model(&format!("models:/{model_name}/Production"), &dest)
        .unwrap();
    assert_eq!(resolved.version.version, "2");
    assert_eq!(
        std::fs::read_to_string(dest.join("model.bin")).unwrap(),
        "forest 1"
    );
    assert_eq!(mlmodel.signature.unwrap().feature_names(), features);
    assert_eq!(mlmodel.vigil.unwrap().format, "postcard");
    // Search.
    let page = s
        .search_model_versions(Some(&format!("name = '{model_name}'")), 2, None)
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.next_page_token.is_some());

    // MLflow's Python client sees the same thing.
    let Some(venv) = service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let uri = std::env::var("VIGIL_TEST_MLFLOW_URI").unwrap();
    let out = python(
        &venv,
        "read_run.py",
        &[&last_run, &model_name, "auc"],
        &[("MLFLOW_TRACKING_URI", uri.as_str())],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["status"], "FINISHED");
    assert_eq!(v["run_name"], "train-2");
    assert_eq!(v["params"]["n_estimators"], "300");
    assert_eq!(v["tags"]["mlflow.user"], "vigil-test");
    assert_eq!(v["latest"]["nan_metric"], "NaN");
    let steps: Vec<i64> = v["history"]["auc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_i64().unwrap())
        .collect();
    assert_eq!(steps, [0, 1, 2, 3, 4]);
    assert_eq!(
        v["history"]["auc"][4][1].as_f64().unwrap(),
        0.8 + 0.01 * 4.0
    );
    assert_eq!(v["artifacts"], serde_json::json!(["model"]));
    assert_eq!(
        v["model_artifacts"],
        serde_json::json!([
            "model/MLmodel",
            "model/feature_spec.json",
            "model/model.bin"
        ])
    );
    // Python resolves Production and @champion to the version Rust resolves.
    assert_eq!(v["production_version"], "2");
    assert_eq!(v["champion_version"], "2");
    // (the Python client adds its own `registered_model_meta` file when downloading)
    assert_eq!(
        v["production_files"],
        serde_json::json!([
            "MLmodel",
            "feature_spec.json",
            "model.bin",
            "registered_model_meta"
        ])
    );
    assert_eq!(v["champion_files"], v["production_files"]);
    assert_eq!(v["flavors"], serde_json::json!(["vigil"]));
    assert_eq!(v["signature_inputs"], serde_json::json!(features));
    // Clean up the registry entry (names are unique anyway).
    s.delete_model_version(&model_name, "1").unwrap();
    s.delete_registered_model(&model_name).unwrap();
    assert!(
        s.get_registered_model(&model_name)
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn works_from_inside_a_tokio_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = tracker(tmp.path()) else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run_id = rt.block_on(async move {
        // Called directly on a runtime worker thread, as a service handler would.
        let exp = t.get_or_create_experiment(&unique("tokio")).unwrap();
        let run = t.start_run(RunOptions::new(&exp.experiment_id)).unwrap();
        run.log_metric("latency_ms", 12.5).unwrap();
        let id = run.run_id().to_string();
        run.finish().unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        let got = t.store().get_run(&id).unwrap();
        assert_eq!(got.metric("latency_ms"), Some(12.5));
        id
    });
    assert_eq!(run_id.len(), 32);
}

#[test]
fn errors_are_typed_and_never_show_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    // Nothing listens on this port.
    let port = common::free_port();
    let down = Tracker::new(
        TrackingConfig::builder()
            .uri(&format!("http://alice:hunter2-secret@127.0.0.1:{port}"))
            .unwrap()
            .retry(vigil_tracking_client::RetryPolicy::none())
            .spool_dir(tmp.path())
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = down.get_or_create_experiment("x").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "Cannot connect to MLflow server at http://127.0.0.1:{port}"
        )),
        "{msg}"
    );
    assert!(
        !msg.contains("hunter2") && !format!("{err:?}").contains("hunter2"),
        "{msg}"
    );
    assert!(!format!("{down:?}").contains("hunter2"));
    assert!(err.is_transient());

    // Non-JSON error bodies: a 404 HTML page for an unknown route.
    let t = server_tracker(&uri, tmp.path());
    let err = t
        .store()
        .get_model_version_download_uri(&unique("nope"), "1")
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = t
        .store()
        .get_run("0123456789abcdef0123456789abcdef")
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    let resp = ureq::get(&format!("{uri}/api/2.0/mlflow/no-such-route"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        404,
        "unknown routes answer 404 HTML"
    );
    // Invalid input never reaches the server.
    let err = t.store().create_experiment("", &[]).unwrap_err();
    assert!(matches!(err, TrackingError::InvalidInput { .. }));
    let err = t
        .store()
        .create_registered_model("a/b", None, &[])
        .unwrap_err();
    assert!(matches!(err, TrackingError::InvalidInput { .. }));
    let mut params = BTreeMap::new();
    params.insert("p", "x".repeat(6001));
    let exp = t.get_or_create_experiment(&unique("errors")).unwrap();
    let run = t.start_run(RunOptions::new(&exp.experiment_id)).unwrap();
    assert!(
        run.log_params(params).is_err(),
        "over-long param refused, not truncated"
    );
    run.finish().unwrap();
}
