//! The reference loop against the harness's real services:
//! `simulate` into PostgreSQL → `pipeline --source postgres` tracked on the
//! MLflow server → `evaluate --promote` → `serve` loads the Production version
//! and answers; a second training run is promoted and `serve` switches to it
//! without a restart; MLflow's own Python client resolves the same versions.
//!
//! Skipped (with a message) without the services; a failure when
//! `VIGIL_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

mod common;
mod fixtures;
use common::service;
use fixtures::pyfunc::{agreement_on_example, agreement_on_rows, loaded_folder, pyfunc_predict};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_examples::bundle::ModelBundle;
use vigil_features::{FeatureSpec, SimulatorConfig, TrainingSet};

/// The harness's database URL as the reference POSTGRES_* variables.
fn postgres_env(url: &str) -> Vec<(String, String)> {
    // postgres://user:password@host:port/db
    let rest = url.trim_start_matches("postgres://");
    let (creds, rest) = rest.split_once('@').unwrap();
    let (user, password) = creds.split_once(':').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    [
        ("POSTGRES_HOST", host),
        ("POSTGRES_PORT", port),
        ("POSTGRES_USER", user),
        ("POSTGRES_PASSWORD", password),
        ("POSTGRES_DB", db),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

struct Env {
    pg: Vec<(String, String)>,
    mlflow: String,
    dir: tempfile::TempDir,
}

impl Env {
    fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(bin);
        cmd.envs(self.pg.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("MLFLOW_TRACKING_URI", &self.mlflow)
            .current_dir(self.dir.path());
        cmd
    }

    fn run(&self, bin: &str, args: &[&str]) -> Output {
        let out = self.command(bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{bin} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn mlflow_get(uri: &str, path: &str) -> Value {
    ureq::get(format!("{uri}/api/2.0/mlflow/{path}"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

fn mlflow_post(uri: &str, path: &str, body: &Value) -> Value {
    ureq::post(format!("{uri}/api/2.0/mlflow/{path}"))
        .send_json(body)
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(env: &Env, model_uri: &str) -> Server {
    start_server_with(env, model_uri, &[])
}

fn start_server_with(env: &Env, model_uri: &str, extra: &[&str]) -> Server {
    let mut child = env
        .command(env!("CARGO_BIN_EXE_serve"))
        .args([
            "--model-uri",
            model_uri,
            "--port",
            "0",
            "--poll-interval",
            "1s",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

fn post_json(url: &str, body: &str) -> (u16, Value) {
    let response = ureq::post(url)
        .config()
        .http_status_as_error(false)
        .build()
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let value = body.read_json().unwrap_or(Value::Null);
    (status, value)
}

fn get_json(url: &str) -> Value {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

#[test]
fn simulate_train_promote_serve_against_real_services() {
    let (Some(db), Some(mlflow)) = (
        service("VIGIL_TEST_DATABASE_URL"),
        service("VIGIL_TEST_MLFLOW_URI"),
    ) else {
        return;
    };
    let env = Env {
        pg: postgres_env(&db),
        mlflow: mlflow.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let suffix = format!(
        "{}_{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let table = format!("telemetry_e2e_{suffix}");
    let experiment = format!("e2e-{suffix}");
    let model = format!("e2e_model_{suffix}");

    // 1. Simulated telemetry into PostgreSQL.
    let out = env.run(
        env!("CARGO_BIN_EXE_simulate"),
        &[
            "--to",
            "postgres",
            "--table",
            &table,
            "--machines",
            "3",
            "--days",
            "3",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote"));

    // 2. Train from PostgreSQL, tracked on the server.
    let train_args = [
        "--source",
        "postgres",
        "--table",
        &table,
        "--trials",
        "4",
        "--max-samples-per-tree",
        "5000",
        "--experiment",
        &experiment,
        "--model-name",
        &model,
        "--no-progress",
    ];
    let out = env.run(env!("CARGO_BIN_EXE_pipeline"), &train_args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("registered"), "{stdout}");
    // A small table is loaded whole (`--ingestion auto`): the full pipeline.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingestion: loaded whole ("), "{stderr}");

    // The run on the server: finished, with metrics, params, children and artifacts.
    let exp = mlflow_get(
        &mlflow,
        &format!("experiments/get-by-name?experiment_name={experiment}"),
    );
    let exp_id = exp["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = mlflow_post(
        &mlflow,
        "runs/search",
        &json!({"experiment_ids": [exp_id], "filter": "tags.`vigil.job` = 'train'"}),
    );
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["info"]["status"], "FINISHED");
    let run_id = run["info"]["run_id"].as_str().unwrap().to_string();
    let metric = |name: &str| {
        run["data"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == name)
            .map(|m| m["value"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("metric {name} missing"))
    };
    for name in [
        "test_f1",
        "test_precision",
        "test_recall",
        "test_roc_auc",
        "test_pr_auc",
    ] {
        let v = metric(name);
        assert!((0.0..=1.0).contains(&v), "{name} = {v}");
    }
    assert!(metric("test_roc_auc") > 0.6, "the model learned nothing");
    assert_eq!(metric("n_features"), 42.0);
    // As a maintenance planner reads it: failures caught, false alarms.
    let total = metric("test_failures_total");
    assert!(total >= 1.0, "no failure in the test split");
    assert!((0.0..=total).contains(&metric("test_failures_caught")));
    assert!(metric("test_false_alarms_per_machine_day") >= 0.0);
    assert!((0.0..=1.0).contains(&metric("test_event_precision")));
    // Which failure: the mode classifier's per-mode scores.
    assert!((0.0..=1.0).contains(&metric("test_mode_f1_macro")));
    assert!((0.0..=1.0).contains(&metric("test_f1_none")));
    let children = mlflow_post(
        &mlflow,
        "runs/search",
        &json!({"experiment_ids": [exp_id], "filter": format!("tags.mlflow.parentRunId = '{run_id}'")}),
    );
    assert_eq!(
        children["runs"].as_array().unwrap().len(),
        4,
        "one child run per trial"
    );
    let artifacts = mlflow_get(
        &mlflow,
        &format!("artifacts/list?run_id={run_id}&path=plots"),
    );
    let plots: Vec<&str> = artifacts["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for p in [
        "plots/confusion_matrix.png",
        "plots/roc_curve.png",
        "plots/pr_curve.png",
        "plots/feature_importance.png",
        "plots/optimization_history.png",
        "plots/alarm_timeline.png",
        "plots/lead_time_histogram.png",
        "plots/failure_mode_confusion_matrix.png",
        "plots/shap_importance.png",
        "plots/shap_beeswarm.png",
    ] {
        assert!(plots.contains(&p), "{p} not in {plots:?}");
    }
    let model_files = mlflow_get(
        &mlflow,
        &format!("artifacts/list?run_id={run_id}&path=model"),
    );
    let model_files: Vec<&str> = model_files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(model_files.contains(&"model/MLmodel"), "{model_files:?}");
    assert!(
        model_files.contains(&"model/failure_mode_forest.postcard"),
        "{model_files:?}"
    );

    // 3. evaluate promotes the first version (no champion yet).
    let eval_args = [
        "--promote",
        "--source",
        "postgres",
        "--table",
        &table,
        "--experiment",
        &experiment,
        "--model-name",
        &model,
        "--min-improvement",
        "-1",
    ];
    let out = env.run(env!("CARGO_BIN_EXE_evaluate"), &eval_args);
    assert!(String::from_utf8_lossy(&out.stdout).contains("promoted"));
    let v1 = mlflow_get(
        &mlflow,
        &format!("registered-models/alias?name={model}&alias=champion"),
    );
    assert_eq!(v1["model_version"]["version"], "1");
    assert_eq!(v1["model_version"]["current_stage"], "Production");

    // 4. serve loads Production and answers.
    let server = start_server(&env, &format!("models:/{model}/Production"));
    let health = get_json(&format!("{}/health", server.base));
    assert_eq!(health["status"], "ok");
    assert_eq!(health["model_version"], "1");
    let info = get_json(&format!("{}/model", server.base));
    assert_eq!(info["run_id"], run_id.as_str());
    assert!(info["metrics"]["test_f1"].is_number());
    let modes = info["failure_modes"].as_array().unwrap();
    assert_eq!(modes[0], "none", "{info}");
    assert!(modes.len() >= 2, "{info}");
    // Samples of the last hours: serve refuses times past its clock plus the skew.
    let hour = (chrono::Utc::now() - chrono::Duration::hours(3)).format("%Y-%m-%dT%H");
    let at = |minute: u32| format!("{hour}:{minute:02}:00Z");
    let sample = |minute: u32, machine: &str| {
        json!({
            "machine_id": machine, "time": at(minute),
            "temperature": 70.0 + minute as f64, "vibration": 0.4, "spindle_speed": 1500.0,
            "power_consumption": 11.5
        })
    };
    let body = json!({"samples": [sample(0, "M01"), sample(1, "M01"), sample(1, "M02")]});
    let (status, answer) = post_json(&format!("{}/predict", server.base), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 3);
    for p in predictions {
        let prob = p["failure_probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&prob));
        let score = p["anomaly_score"].as_f64().unwrap();
        assert!(score > 0.0 && score <= 1.0);
        assert_eq!(
            p["failure"].as_bool().unwrap(),
            prob >= p["threshold"].as_f64().unwrap()
        );
    }

    // Why: every feature's TreeSHAP contribution, adding up to the probability
    // (the registered model was trained with node covers).
    let n_features = info["features"].as_u64().unwrap() as usize;
    let body = json!({"samples": [sample(2, "M01")], "explain": n_features});
    let (status, answer) = post_json(&format!("{}/predict", server.base), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    let p = &answer["predictions"][0];
    let x = &p["explanation"];
    let contributions = x["contributions"].as_array().unwrap();
    assert_eq!(contributions.len(), n_features, "{x}");
    let total = x["base_value"].as_f64().unwrap()
        + contributions
            .iter()
            .map(|c| c["contribution"].as_f64().unwrap())
            .sum::<f64>();
    let probability = p["failure_probability"].as_f64().unwrap();
    assert!(
        (total - probability).abs() < 1e-9,
        "{total} vs {probability}"
    );

    // Bad requests: 4xx with a message, and the server keeps answering.
    let t = at(30);
    let bad = [
        ("{not json".to_string(), 400),
        (r#"{"samples": []}"#.to_string(), 422),
        (
            format!(r#"{{"explain":0,"samples":[{{"machine_id":"M01","time":"{t}","temperature":70,"vibration":0.4,"spindle_speed":1500,"power_consumption":1}}]}}"#),
            422,
        ),
        (
            format!(r#"{{"samples":[{{"machine_id":"M01","time":"{t}","temprature":70,"vibration":0.4,"spindle_speed":1500}}]}}"#),
            422,
        ),
        (
            format!(r#"{{"samples":[{{"machine_id":"M01","time":"{t}","temperature":"NaN","vibration":0.4,"spindle_speed":1500,"power_consumption":1}}]}}"#),
            422,
        ),
        (
            format!(r#"{{"samples":[{{"machine_id":"no-such-machine","time":"{t}","temperature":70,"vibration":0.4,"spindle_speed":1500,"power_consumption":1}}]}}"#),
            404,
        ),
        (
            r#"{"samples":[{"machine_id":"M01","time":"yesterday","temperature":70,"vibration":0.4,"spindle_speed":1500,"power_consumption":1}]}"#.to_string(),
            422,
        ),
        (
            r#"{"samples":[{"machine_id":"M01","time":"9999-01-01T00:00:00Z","temperature":70,"vibration":0.4,"spindle_speed":1500,"power_consumption":1}]}"#.to_string(),
            422,
        ),
    ];
    for (body, want) in &bad {
        let (body, want) = (body.as_str(), *want);
        let (status, answer) = post_json(&format!("{}/predict", server.base), body);
        assert_eq!(status, want, "{body} → {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    assert_eq!(get_json(&format!("{}/health", server.base))["status"], "ok");

    // 4b. A restart with --warm-from postgres scores like a server that never stopped.
    warm_restart_matches(&env, &server, &db, &table, &model);

    // 5. A second training run, promoted: serve switches without a restart.
    env.run(env!("CARGO_BIN_EXE_pipeline"), &train_args);
    let out = env.run(env!("CARGO_BIN_EXE_evaluate"), &eval_args);
    assert!(String::from_utf8_lossy(&out.stdout).contains("promoted"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = get_json(&format!("{}/model", server.base));
        if v["version"] == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not pick up version 2: {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let old = mlflow_get(
        &mlflow,
        &format!("model-versions/get?name={model}&version=1"),
    );
    assert_eq!(old["model_version"]["current_stage"], "Archived");

    // 6. MLflow's own Python client sees the same registry and reads the run.
    if let Ok(venv) = std::env::var("VIGIL_MLFLOW_VENV") {
        let python = Path::new(&venv).join("bin/python");
        let script = format!(
            r#"
import mlflow, os
from mlflow import MlflowClient
mlflow.set_tracking_uri("{mlflow}")
mlflow.set_registry_uri("{mlflow}")
c = MlflowClient("{mlflow}", registry_uri="{mlflow}")
prod = c.get_latest_versions("{model}", stages=["Production"])[0].version
champ = c.get_model_version_by_alias("{model}", "champion").version
run = c.get_run("{run_id}")
path = mlflow.artifacts.download_artifacts("models:/{model}/Production")
print(prod, champ, run.info.status, "test_f1" in run.data.metrics, sorted(os.listdir(path)))
"#
        );
        let out = Command::new(python).arg("-c").arg(script).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.starts_with("2 2 FINISHED True"), "{text}");
        assert!(
            text.contains("MLmodel") && text.contains("random_forest.postcard"),
            "{text}"
        );
        // 7. The reference's Python "AI service" loads the Production version.
        python_service_matches_vigil(&venv, &mlflow, &model);
    }
    drop(server);
}

/// MLflow's client loads `models:/{model}/Production` from the server as a
/// pyfunc model and predicts what Vigil predicts on the rows the runs trained
/// and tested on (the simulation of step 1, rebuilt here with the same seed).
#[allow(clippy::print_stderr)] // the measured differences, in the test's log
fn python_service_matches_vigil(venv: &str, mlflow: &str, model: &str) {
    let sim = fixtures::simulation(3, 3.0, SimulatorConfig::default().seed);
    let set = TrainingSet::build(&sim.frame, &FeatureSpec::default()).unwrap();
    let uri = format!("models:/{model}/Production");
    let names = &set.features.names;
    let got = pyfunc_predict(venv, Some(mlflow), &uri, names, &set.features.values);
    let registered = ModelBundle::load(&loaded_folder(&got)).unwrap();
    assert_eq!(&registered.meta.feature_names, names);

    let seen = agreement_on_rows(&registered, &set.features.values, &got);
    eprintln!("MLflow server, {uri}: {seen:?}");
    seen.assert_matches(10_000);
    agreement_on_example(&registered, &got).assert_example_matches();
}

/// One machine's whole history from the table goes through the running server;
/// a second server warms its windows from the same table; both then score the
/// same new samples, and every answer is identical.
fn warm_restart_matches(env: &Env, running: &Server, db: &str, table: &str, model: &str) {
    use vigil_features::{LoadQuery, PgConfig, TelemetryStore, format_timestamp};
    let machine = "M03"; // untouched by the requests above
    let config = PgConfig::from_url(db).unwrap();
    let mut store = TelemetryStore::connect(&config, table).unwrap();
    let frame = store
        .load(&LoadQuery {
            machines: Some(vec![machine.to_string()]),
            ..LoadQuery::default()
        })
        .unwrap();
    assert!(frame.len() > 1000, "{} rows of {machine}", frame.len());
    let sensors = frame.sensor_names().to_vec();
    let row_json = |time: i64, values: &[f64]| {
        let mut sample = serde_json::Map::new();
        sample.insert("machine_id".into(), json!(machine));
        sample.insert("time".into(), json!(format_timestamp(time)));
        for (name, v) in sensors.iter().zip(values) {
            sample.insert(
                name.clone(),
                if v.is_finite() { json!(v) } else { Value::Null },
            );
        }
        Value::Object(sample)
    };
    let rows: Vec<Value> = (0..frame.len())
        .map(|r| {
            let values: Vec<f64> = (0..sensors.len()).map(|c| frame.sensor(c)[r]).collect();
            row_json(frame.time()[r], &values)
        })
        .collect();
    for chunk in rows.chunks(1000) {
        let (status, answer) = post_json(
            &format!("{}/predict", running.base),
            &json!({ "samples": chunk }).to_string(),
        );
        assert_eq!(status, 200, "{answer}");
    }
    let restarted = start_server_with(
        env,
        &format!("models:/{model}/Production"),
        &[
            "--warm-from",
            "postgres",
            "--warm-table",
            table,
            "--warm-lookback",
            "3650d",
        ],
    );
    let last = frame.time().iter().copied().max().unwrap();
    let next: Vec<Value> = (1..=30)
        .map(|i| {
            let t = last + i * 10_000_000;
            row_json(t, &[70.0 + i as f64 * 0.1, 0.5, 1500.0 - i as f64, 12.0])
        })
        .collect();
    let body = json!({ "samples": next }).to_string();
    let (status_a, a) = post_json(&format!("{}/predict", running.base), &body);
    let (status_b, b) = post_json(&format!("{}/predict", restarted.base), &body);
    assert_eq!((status_a, status_b), (200, 200), "{a}\n{b}");
    let (pa, pb) = (&a["predictions"], &b["predictions"]);
    assert_eq!(pa.as_array().unwrap().len(), 30);
    for (x, y) in pa.as_array().unwrap().iter().zip(pb.as_array().unwrap()) {
        assert_eq!(
            x["failure_probability"], y["failure_probability"],
            "{x} vs {y}"
        );
        assert_eq!(x["anomaly_score"], y["anomaly_score"], "{x} vs {y}");
        assert_eq!(x["warm"], true);
        assert_eq!(y["warm"], true);
    }
}
