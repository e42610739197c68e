//! Tests that start their own `mlflow server` (from `VIGIL_MLFLOW_VENV`):
//! stopping the real server mid-run, basic auth, and a server over a local
//! file store. They run in parallel, so the ~15 s starts overlap.

// Helper fns outside #[test] may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{MlflowServer, python, server_tracker, service, unique};
use vigil_tracking_client::{
    BatchConfig, ColumnType, MlModel, ModelSignature, RetryPolicy, RunOptions, RunSearch,
    RunStatus, Stage, Tracker, TrackingConfig, TrackingError, TrackingStore, ViewType, VigilFlavor,
    sync,
};

fn quick_tracker(uri: &str, spool: &std::path::Path) -> Tracker {
    Tracker::new(
        TrackingConfig::builder()
            .uri(uri)
            .unwrap()
            .spool_dir(spool)
            .user("vigil-test")
            .retry(RetryPolicy {
                max_retries: 1,
                initial_backoff: Duration::from_millis(50),
                ..RetryPolicy::default()
            })
            .batch(BatchConfig {
                max_age: Duration::from_millis(200),
                ..BatchConfig::default()
            })
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn steps_of(store: &dyn TrackingStore, run_id: &str, key: &str) -> Vec<i64> {
    let mut steps: Vec<i64> = store
        .get_metric_history(run_id, key)
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    steps.sort_unstable();
    steps
}

#[test]
fn stopping_the_server_mid_run_loses_nothing_and_duplicates_nothing() {
    let Some(venv) = service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let mut server = MlflowServer::start(&venv, &[], &[]);
    let t = quick_tracker(&server.uri(), spool.path());
    let exp = t.get_or_create_experiment("restart").unwrap();
    // B lives through the outage; A ends while the server is down.
    let b = t
        .start_run(RunOptions::new(&exp.experiment_id).name("b"))
        .unwrap();
    let a = t
        .start_run(RunOptions::new(&exp.experiment_id).name("a"))
        .unwrap();
    for i in 0..50 {
        b.log_param(&format!("p{i}"), i).unwrap();
    }
    for step in 0..3000 {
        b.log_metric_at("loss", step as f64 * 0.5, step).unwrap();
    }
    b.flush().unwrap();

    server.stop();
    for step in 3000..6000 {
        b.log_metric_at("loss", step as f64 * 0.5, step).unwrap();
    }
    b.log_metric_at("loss_nan", f64::NAN, 1).unwrap();
    for i in 50..150 {
        b.log_param(&format!("p{i}"), i).unwrap();
    }
    b.set_tag("phase", "during-outage").unwrap();
    b.log_artifact_bytes("outage/report.txt", b"written while the server was down")
        .unwrap();
    let err = b.flush().unwrap_err();
    let TrackingError::Undelivered {
        spool: spool_file,
        pending,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(*pending >= 3000, "{err}");
    assert!(
        spool_file.is_file(),
        "values are on disk while the server is away"
    );
    for step in 0..1000 {
        a.log_metric_at("acc", step as f64 / 1000.0, step).unwrap();
    }
    a.log_param("only_a", "yes").unwrap();
    let err = a.finish().unwrap_err();
    assert!(matches!(err, TrackingError::Undelivered { .. }), "{err}");

    server.restart();
    for step in 6000..7000 {
        b.log_metric_at("loss", step as f64 * 0.5, step).unwrap();
    }
    let b_id = b.run_id().to_string();
    b.finish().unwrap();
    let a_id = {
        let report = t.replay_spools().unwrap();
        assert_eq!(report.runs_delivered.len(), 1, "{report:?}");
        assert!(report.still_pending.is_empty(), "{report:?}");
        report.runs_delivered[0].clone()
    };

    let s = t.store();
    assert_eq!(
        steps_of(s, &b_id, "loss"),
        (0..7000).collect::<Vec<_>>(),
        "every value exactly once"
    );
    let history = s.get_metric_history(&b_id, "loss").unwrap();
    assert!(history.iter().all(|m| m.value == m.step as f64 * 0.5));
    let run_b = s.get_run(&b_id).unwrap();
    assert_eq!(run_b.data.params.len(), 150);
    assert_eq!(run_b.tag("phase"), Some("during-outage"));
    assert!(run_b.metric("loss_nan").unwrap().is_nan());
    assert_eq!(run_b.info.status, RunStatus::Finished);
    let files = t
        .download_artifacts(&b_id, "outage", &spool.path().join("dl"))
        .unwrap();
    assert_eq!(files.len(), 1);
    let run_a = s.get_run(&a_id).unwrap();
    assert_eq!(run_a.info.status, RunStatus::Finished);
    assert_eq!(run_a.param("only_a"), Some("yes"));
    assert_eq!(steps_of(s, &a_id, "acc"), (0..1000).collect::<Vec<_>>());
    // Nothing left to deliver; a second push does nothing.
    assert_eq!(t.replay_spools().unwrap().operations, 0);
    let runs = t
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()]).view_type(ViewType::All),
        )
        .unwrap();
    assert_eq!(runs.len(), 2, "no run was created twice");
}

/// The server SIGKILLed while the client is sending (a logging thread keeps
/// the flusher busy, so requests are in flight), three times: after a restart
/// every value is on the server exactly once and the run finishes.
#[test]
fn killing_the_server_mid_request_loses_nothing_and_duplicates_nothing() {
    let Some(venv) = service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let mut server = MlflowServer::start(&venv, &[], &[]);
    let t = quick_tracker(&server.uri(), spool.path());
    let exp = t.get_or_create_experiment("kill-mid-request").unwrap();
    let run = t
        .start_run(RunOptions::new(&exp.experiment_id).name("busy"))
        .unwrap();
    let run_id = run.run_id().to_string();
    const STEPS: i64 = 30_000;
    let logged = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for step in 0..STEPS {
                run.log_metric_at("loss", step as f64 * 0.25, step).unwrap();
                logged.store(step + 1, std::sync::atomic::Ordering::SeqCst);
                if step % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        for kill_at in [STEPS / 4, STEPS / 2, 3 * STEPS / 4] {
            while logged.load(std::sync::atomic::Ordering::SeqCst) < kill_at {
                std::thread::sleep(Duration::from_millis(5));
            }
            server.restart(); // SIGKILL to the process group, then start again
        }
    });
    run.finish().unwrap();
    let report = t.replay_spools().unwrap();
    assert!(report.still_pending.is_empty(), "{report:?}");
    let s = t.store();
    assert_eq!(
        steps_of(s, &run_id, "loss"),
        (0..STEPS).collect::<Vec<_>>(),
        "every value exactly once"
    );
    assert_eq!(s.get_run(&run_id).unwrap().info.status, RunStatus::Finished);
    let runs = t
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()]).view_type(ViewType::All),
        )
        .unwrap();
    assert_eq!(runs.len(), 1, "no run was created twice");
}

#[test]
fn basic_auth_server_answers_401_without_credentials_and_works_with_them() {
    let Some(venv) = service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let password = "Adm1n-vigil-pass!";
    let server = MlflowServer::start(
        &venv,
        &["--app-name", "basic-auth"],
        &[
            ("MLFLOW_AUTH_ADMIN_PASSWORD", password),
            ("MLFLOW_FLASK_SERVER_SECRET_KEY", "vigil-test-secret"),
        ],
    );
    let anonymous = server_tracker(&server.uri(), spool.path());
    let err = anonymous.get_or_create_experiment("auth").unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(
        matches!(err, TrackingError::Http { .. }),
        "a text body, not JSON: {err:?}"
    );
    assert!(!err.is_transient());

    let wrong = Tracker::new(
        TrackingConfig::builder()
            .uri(&server.uri())
            .unwrap()
            .basic_auth("admin", "not-the-password")
            .spool_dir(spool.path())
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = wrong.get_or_create_experiment("auth").unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.to_string().contains("not-the-password"));

    // Credentials from the same variables MLflow's client reads.
    let vars = [
        ("MLFLOW_TRACKING_URI", server.uri()),
        ("MLFLOW_TRACKING_USERNAME", "admin".to_string()),
        ("MLFLOW_TRACKING_PASSWORD", password.to_string()),
        (
            "VIGIL_TRACKING_SPOOL_DIR",
            spool.path().display().to_string(),
        ),
    ];
    let config =
        TrackingConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    assert!(!format!("{config:?}").contains(password));
    let t = Tracker::new(config).unwrap();
    let exp = t.get_or_create_experiment("auth").unwrap();
    let run = t.start_run(RunOptions::new(&exp.experiment_id)).unwrap();
    run.log_metric_at("f1", 0.9, 1).unwrap();
    run.log_artifact_bytes("model/MLmodel", b"flavors: {}\n")
        .unwrap();
    let id = run.run_id().to_string();
    run.finish().unwrap();
    let got = t.store().get_run(&id).unwrap();
    assert_eq!(got.metric("f1"), Some(0.9));
    assert_eq!(got.info.status, RunStatus::Finished);
    let v = t
        .register_source(
            "auth_model",
            &format!("{}/model", got.info.artifact_uri),
            Some(&id),
        )
        .unwrap();
    assert_eq!(
        t.resolve_model("models:/auth_model/1")
            .unwrap()
            .version
            .version,
        v.version
    );
}

#[test]
fn local_store_is_read_by_python_and_mlflow_server_and_syncs_exactly_once() {
    let Some(venv) = service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mlruns = tmp.path().join("mlruns");
    let t = Tracker::new(
        TrackingConfig::builder()
            .local_dir(&mlruns)
            .user("vigil-test")
            .spool_dir(tmp.path().join("spool"))
            .build()
            .unwrap(),
    )
    .unwrap();
    let exp_name = unique("local");
    let model_name = unique("local_model");
    let exp = t.get_or_create_experiment(&exp_name).unwrap();
    let parent = t
        .start_run(RunOptions::new(&exp.experiment_id).name("tuning"))
        .unwrap();
    let child = parent.start_child("trial-0").unwrap();
    child.log_param("max_depth", 6).unwrap();
    child.log_metric("f1", 0.81).unwrap();
    let child_id = child.run_id().to_string();
    child.finish().unwrap();
    for step in 0..20 {
        parent
            .log_metric_at("auc", 0.5 + step as f64 / 100.0, step)
            .unwrap();
    }
    parent.log_metric("pos_inf", f64::INFINITY).unwrap();
    parent.log_metric("nan_metric", f64::NAN).unwrap();
    parent.log_param("n_trials", 1).unwrap();
    parent.log_param("a/b", "nested key").unwrap();
    parent.set_tag("pipeline", "reference").unwrap();
    parent
        .log_artifact_bytes("reports/summary.json", br#"{"ok":true}"#)
        .unwrap();
    let model_dir = tmp.path().join("model_src");
    std::fs::create_dir_all(&model_dir).unwrap();
    std::fs::write(model_dir.join("model.bin"), b"forest").unwrap();
    let logged = parent
        .log_model(
            "model",
            &model_dir,
            &MlModel::new(
                VigilFlavor::new("random_forest", "postcard", 1, "model.bin"),
                Some(ModelSignature::doubles(
                    ["temperature_mean_1h"],
                    ColumnType::Long,
                )),
            ),
        )
        .unwrap();
    let v = t.register_model(&model_name, &logged).unwrap();
    t.store()
        .set_alias(&model_name, "champion", &v.version)
        .unwrap();
    t.promote(&model_name, &v.version, Stage::Production)
        .unwrap();
    let parent_id = parent.run_id().to_string();
    parent.finish().unwrap();
    // +Inf is clamped as the SQL store does.
    let raw = std::fs::read_to_string(
        mlruns
            .join(&exp.experiment_id)
            .join(&parent_id)
            .join("metrics/pos_inf"),
    )
    .unwrap();
    assert!(raw.contains(" 1.7976931348623157e308 "), "{raw}");

    // MLflow's Python client reads the local store.
    let file_uri = format!(
        "file://{}",
        std::fs::canonicalize(&mlruns).unwrap().display()
    );
    let out = python(
        &venv,
        "read_run.py",
        &[&parent_id, &model_name, "auc"],
        &[
            ("MLFLOW_TRACKING_URI", &file_uri),
            ("MLFLOW_ALLOW_FILE_STORE", "true"),
        ],
    );
    let py: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(py["status"], "FINISHED");
    assert_eq!(py["run_name"], "tuning");
    assert_eq!(py["params"]["n_trials"], "1");
    assert_eq!(py["params"]["a/b"], "nested key");
    assert_eq!(py["tags"]["pipeline"], "reference");
    assert_eq!(py["latest"]["pos_inf"].as_f64(), Some(f64::MAX));
    assert_eq!(py["latest"]["nan_metric"], "NaN");
    assert_eq!(py["history"]["auc"].as_array().unwrap().len(), 20);
    assert_eq!(py["artifacts"], serde_json::json!(["model", "reports"]));
    // (the Python file store reports versions as numbers)
    assert_eq!(py["production_version"].to_string().trim_matches('"'), "1");
    assert_eq!(py["champion_version"].to_string().trim_matches('"'), "1");
    assert_eq!(py["flavors"], serde_json::json!(["vigil"]));
    assert_eq!(
        py["signature_inputs"],
        serde_json::json!(["temperature_mean_1h"])
    );

    // `MLFLOW_ALLOW_FILE_STORE=true mlflow server --backend-store-uri ./mlruns` serves it.
    let server = MlflowServer::start_file_store(&venv, &mlruns);
    let remote_view = server_tracker(&server.uri(), &tmp.path().join("spool2"));
    let s = remote_view.store();
    let run = s.get_run(&parent_id).unwrap();
    assert_eq!(run.info.status, RunStatus::Finished);
    assert_eq!(run.metric("pos_inf"), Some(f64::MAX));
    assert_eq!(s.get_metric_history(&parent_id, "auc").unwrap().len(), 20);
    let child_run = s.get_run(&child_id).unwrap();
    assert_eq!(
        child_run.tag("mlflow.parentRunId"),
        Some(parent_id.as_str())
    );
    let found = s
        .search_runs(
            &RunSearch::in_experiments([exp.experiment_id.as_str()]).filter("metrics.f1 > 0.8"),
        )
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(
        s.get_model_version_by_alias(&model_name, "champion")
            .unwrap()
            .version,
        "1"
    );
    let listing: serde_json::Value = ureq::get(&format!(
        "{}/api/2.0/mlflow/artifacts/list?run_id={parent_id}&path=model",
        server.uri()
    ))
    .call()
    .unwrap()
    .body_mut()
    .read_json()
    .unwrap();
    let paths: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["model/MLmodel", "model/model.bin"]);
    drop(server);

    // sync pushes it to a tracking server, exactly once even when run twice.
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let remote = server_tracker(&uri, &tmp.path().join("spool3"));
    let first = sync(t.store(), remote.store()).unwrap();
    assert_eq!(first.runs_created, 2, "{first:?}");
    assert_eq!(first.versions_created, 1);
    let second = sync(t.store(), remote.store()).unwrap();
    assert_eq!(second.runs_created, 0, "{second:?}");
    assert_eq!(second.runs_existing, 2);
    assert_eq!(second.versions_created, 0);
    let r = remote.store();
    let remote_exp = r.get_experiment_by_name(&exp_name).unwrap().unwrap();
    let runs = remote
        .search_all_runs(RunSearch::in_experiments([remote_exp
            .experiment_id
            .as_str()]))
        .unwrap();
    assert_eq!(runs.len(), 2);
    let remote_parent = runs.iter().find(|r| r.info.run_name == "tuning").unwrap();
    let remote_child = runs.iter().find(|r| r.info.run_name == "trial-0").unwrap();
    assert_eq!(
        remote_child.tag("mlflow.parentRunId"),
        Some(remote_parent.id())
    );
    assert_eq!(remote_parent.info.status, RunStatus::Finished);
    assert_eq!(
        r.get_metric_history(remote_parent.id(), "auc")
            .unwrap()
            .len(),
        20,
        "not doubled"
    );
    assert_eq!(remote_parent.param("a/b"), Some("nested key"));
    let resolved = remote
        .resolve_model(&format!("models:/{model_name}/Production"))
        .unwrap();
    assert_eq!(resolved.version.run_id, remote_parent.id());
    assert_eq!(
        remote
            .resolve_model(&format!("models:/{model_name}@champion"))
            .unwrap()
            .version
            .version,
        "1"
    );
    let dest = tmp.path().join("synced_model");
    let (_, mlmodel) = remote
        .download_model(&format!("models:/{model_name}/Production"), &dest)
        .unwrap();
    assert_eq!(
        mlmodel.run_id, parent_id,
        "MLmodel keeps the run it was logged in"
    );
    assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), b"forest");
}
