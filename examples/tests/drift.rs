//! Drift where the model runs, as processes: the `pipeline` binary saves the
//! train split's reference with the model; `evaluate` writes
//! `drift_report.json` and logs `drift_share` / `drift_<feature>`; `serve`
//! reports the shifted features on `GET /drift` and `/metrics` with a bounded
//! window; `scheduler --retrain-on-drift` starts one job for a drift that
//! persists, not one per check.
//!
//! One model is trained (2 machines, 3 simulated days, CSV) and promoted once
//! for all tests; the "current" data is the same fleet's next day with every
//! temperature reading 5 °C higher (a recalibrated probe).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_examples::drift::DRIFT_REFERENCE_FILE;
use vigil_examples::evaluate::DRIFT_REPORT_FILE;
use vigil_features::{FrameBuilder, SimulatorConfig, TelemetryFrame, format_timestamp, simulate};
use vigil_tracking_client::{RunSearch, Tracker, TrackingConfig};

const DAY: i64 = 86_400_000_000;
const TRAIN_DAYS: i64 = 3;
const MODEL: &str = "predictive_maintenance_model";
/// The temperature features a +5 °C probe must move.
const SHIFTED: [&str; 3] = ["temperature", "temperature_mean_5m", "temperature_mean_30m"];

struct Trained {
    /// Keeps the folder alive for the whole test binary.
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
    /// The training days and the next day, temperature +5 °C on the next day.
    shifted_csv: PathBuf,
    /// The next day's samples, temperature +5 °C.
    next_day: TelemetryFrame,
    evaluate_out: PathBuf,
}

fn sim_config(days: f64) -> SimulatorConfig {
    SimulatorConfig {
        machines: 2,
        days,
        seed: 42,
        ..SimulatorConfig::default()
    }
}

/// `frame` with `delta` added to every temperature from `from` on.
fn hotter(frame: &TelemetryFrame, from: i64, delta: f64) -> TelemetryFrame {
    let names = frame.sensor_names().to_vec();
    let t = frame.sensor_index("temperature").unwrap();
    let mut b = FrameBuilder::new(names.clone(), true, true);
    let mut values = vec![0.0; names.len()];
    for row in 0..frame.len() {
        for (k, v) in values.iter_mut().enumerate() {
            *v = frame.sensor(k)[row]
                + if k == t && frame.time()[row] >= from {
                    delta
                } else {
                    0.0
                };
        }
        b.push(
            frame.machine_id_of(row),
            frame.time()[row],
            &values,
            frame.failure().map(|f| f[row]),
            frame.failure_mode().map(|m| m[row]),
        );
    }
    b.finish()
}

fn run(bin: &str, args: &[&str], store: &Path, cwd: &Path) -> String {
    let out = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env("MLFLOW_TRACKING_URI", store)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{bin} {args:?} failed:\n{text}");
    text
}

/// Trains version 1 on the CSV of 3 days and promotes it with `evaluate`.
fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let store = root.join("mlruns");
        let start = sim_config(1.0).start;
        let train = simulate(&sim_config(TRAIN_DAYS as f64)).unwrap().frame;
        let train_csv = root.join("train.csv");
        vigil_features::write_csv(&train, &train_csv).unwrap();
        let four = simulate(&sim_config(TRAIN_DAYS as f64 + 1.0))
            .unwrap()
            .frame;
        let next_from = start + TRAIN_DAYS * DAY;
        let shifted = hotter(&four, next_from, 5.0);
        let shifted_csv = root.join("shifted.csv");
        vigil_features::write_csv(&shifted, &shifted_csv).unwrap();
        let rows: Vec<usize> = (0..shifted.len())
            .filter(|&i| shifted.time()[i] >= next_from)
            .collect();
        let next_day = shifted.select_rows(&rows);
        let csv = train_csv.to_str().unwrap();
        let out = root.join("out");
        run(
            env!("CARGO_BIN_EXE_pipeline"),
            &[
                "--source",
                "csv",
                "--input",
                csv,
                "--trials",
                "1",
                "--max-samples-per-tree",
                "3000",
                "--output-dir",
                out.to_str().unwrap(),
            ],
            &store,
            &root,
        );
        let evaluate_out = root.join("evaluate");
        run(
            env!("CARGO_BIN_EXE_evaluate"),
            &[
                "--promote",
                "--source",
                "csv",
                "--input",
                csv,
                "--shap-rows",
                "0",
                "--output-dir",
                evaluate_out.to_str().unwrap(),
            ],
            &store,
            &root,
        );
        Trained {
            _dir: dir,
            root,
            store,
            shifted_csv,
            next_day,
            evaluate_out,
        }
    })
}

#[test]
fn the_model_folder_carries_a_bounded_reference_and_evaluate_reports_drift() {
    let t = trained();
    // The reference went into the logged model folder.
    let logged: Vec<PathBuf> = walk(&t.store)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == DRIFT_REFERENCE_FILE))
        .collect();
    assert!(!logged.is_empty(), "no {DRIFT_REFERENCE_FILE} in the store");
    let bytes = std::fs::metadata(&logged[0]).unwrap().len() as usize;
    assert!(
        bytes <= vigil_examples::drift::reference_byte_bound(42),
        "{bytes} bytes"
    );

    // The folder loads with its reference, and without it (a folder from
    // before drift references): drift then has nothing to compare with.
    let folder = logged[0].parent().unwrap();
    let with = vigil_examples::bundle::ModelBundle::load(folder).unwrap();
    assert_eq!(with.drift_reference.as_ref().unwrap().columns().len(), 42);
    let old = t.root.join("old-model-folder");
    std::fs::create_dir_all(&old).unwrap();
    for f in std::fs::read_dir(folder).unwrap().flatten() {
        if f.path().is_file() && f.file_name() != DRIFT_REFERENCE_FILE {
            std::fs::copy(f.path(), old.join(f.file_name())).unwrap();
        }
    }
    let without = vigil_examples::bundle::ModelBundle::load(&old).unwrap();
    assert!(without.drift_reference.is_none());

    let report: Value =
        serde_json::from_slice(&std::fs::read(t.evaluate_out.join(DRIFT_REPORT_FILE)).unwrap())
            .unwrap();
    assert!(report["dataset_drift"].is_boolean(), "{report}");
    let share = report["share_drifted"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share));
    let features = report["features"].as_array().unwrap();
    assert_eq!(features.len(), 42);
    for f in features {
        assert!(f["name"].is_string() && f["drifted"].is_boolean(), "{f}");
        assert_eq!(f["method"], "wasserstein");
        assert!(f["statistic"].as_f64().unwrap() >= 0.0);
        assert_eq!(
            f["threshold"].as_f64(),
            Some(vigil_examples::drift::WASSERSTEIN_THRESHOLD)
        );
    }
    let drifted = features.iter().filter(|f| f["drifted"] == true).count();
    assert!((share - drifted as f64 / 42.0).abs() < 1e-12);
    assert!(t.evaluate_out.join("drift.png").exists());

    // drift_share and drift_<feature> on the evaluate run.
    let tracker = Tracker::new(
        TrackingConfig::builder()
            .local_dir(&t.store)
            .build()
            .unwrap(),
    )
    .unwrap();
    let exp = tracker
        .store()
        .get_experiment_by_name(vigil_examples::train::DEFAULT_EXPERIMENT)
        .unwrap()
        .unwrap();
    let runs = tracker
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id]).filter("tags.`vigil.job` = 'evaluate'"),
        )
        .unwrap();
    assert_eq!(runs.len(), 1);
    let metric = |key: &str| {
        runs[0]
            .data
            .metrics
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value)
    };
    assert_eq!(metric("drift_share"), Some(share));
    for f in features {
        let name = f["name"].as_str().unwrap();
        assert_eq!(
            metric(&format!("drift_{name}")),
            f["statistic"].as_f64(),
            "{name}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_serve(t: &Trained, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--port", "0", "--model-uri", &format!("models:/{MODEL}/1")])
        .arg("--scratch-dir")
        .arg(t.root.join("serve-scratch"))
        .args(extra)
        .env("MLFLOW_TRACKING_URI", &t.store)
        .env_remove("VIGIL_SERVE_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

fn samples_json(frame: &TelemetryFrame, rows: std::ops::Range<usize>) -> String {
    let names = frame.sensor_names();
    let samples: Vec<Value> = rows
        .map(|i| {
            let mut s = serde_json::Map::new();
            s.insert("machine_id".into(), frame.machine_id_of(i).into());
            s.insert("time".into(), format_timestamp(frame.time()[i]).into());
            for (k, name) in names.iter().enumerate() {
                let v = frame.sensor(k)[i];
                s.insert(
                    name.clone(),
                    if v.is_finite() { v.into() } else { Value::Null },
                );
            }
            Value::Object(s)
        })
        .collect();
    serde_json::json!({ "samples": samples }).to_string()
}

/// The next day's samples, in time order across machines, in batches.
fn feed(server: &Server, token: &str, frame: &TelemetryFrame) -> usize {
    let mut order: Vec<usize> = (0..frame.len()).collect();
    order.sort_by_key(|&i| frame.time()[i]);
    let sorted = frame.select_rows(&order);
    let mut sent = 0;
    for from in (0..sorted.len()).step_by(1000) {
        let to = (from + 1000).min(sorted.len());
        let (status, body) = http(
            &server.addr,
            "POST",
            "/predict",
            Some(token),
            &samples_json(&sorted, from..to),
        );
        assert_eq!(status, 200, "{body}");
        sent += to - from;
    }
    sent
}

#[test]
fn serve_reports_the_shifted_features_with_a_bounded_window() {
    let t = trained();
    let token = "drift-test-token";
    let server = start_serve(
        t,
        &[
            "--token",
            token,
            "--drift-window",
            "3000",
            "--drift-window-age",
            "off",
            "--drift-min-samples",
            "500",
            "--drift-interval",
            "1s",
        ],
    );
    let (_, model) = http(&server.addr, "GET", "/model", Some(token), "");
    assert!(model.contains("\"drift_reference\":true"), "{model}");
    // The route is guarded like the others.
    assert_eq!(http(&server.addr, "GET", "/drift", None, "").0, 401);
    let (status, body) = http(&server.addr, "GET", "/drift", Some(token), "");
    assert_eq!(status, 503, "{body}");
    let early: Value = serde_json::from_str(&body).unwrap();
    assert!(early["error"].is_string(), "{early}");

    let sent = feed(&server, token, &t.next_day);
    assert!(sent > 3000 * 2, "{sent} samples fed");
    let deadline = Instant::now() + Duration::from_secs(60);
    let drift = loop {
        let (status, body) = http(&server.addr, "GET", "/drift", Some(token), "");
        let v: Value = serde_json::from_str(&body).unwrap();
        if status == 200 && v["window_size"] == 3000 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no drift verdict on a full window: {status} {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    // Bounded: more than N fed, N kept.
    assert_eq!(drift["window_size"], 3000, "{drift}");
    assert_eq!(drift["status"], "computed");
    assert_eq!(drift["model_version"], "1");
    assert!(drift["computed_at"].is_string());
    assert_eq!(drift["dataset_drift"], true, "{drift}");
    let features = drift["features"].as_array().unwrap();
    for name in SHIFTED {
        let f = features.iter().find(|f| f["name"] == name).unwrap();
        assert_eq!(f["drifted"], true, "{f}");
        assert_eq!(f["method"], "wasserstein");
        assert!(f["statistic"].as_f64().unwrap() >= f["threshold"].as_f64().unwrap());
    }

    let (status, metrics) = http(&server.addr, "GET", "/metrics", Some(token), "");
    assert_eq!(status, 200);
    assert!(
        metrics.lines().any(|l| l == "vigil_serve_dataset_drift 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "vigil_serve_drift_window_samples 3000"),
        "{metrics}"
    );
    let temperature = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "vigil_serve_drift_statistic{feature=\"temperature\",method=\"wasserstein\"}",
            )
        })
        .unwrap_or_else(|| panic!("no temperature drift gauge in\n{metrics}"));
    let value: f64 = temperature.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        value >= vigil_examples::drift::WASSERSTEIN_THRESHOLD,
        "{temperature}"
    );
}

#[test]
fn a_persisting_drift_starts_one_job_not_one_per_check() {
    let t = trained();
    let dir = t.root.join("scheduler");
    std::fs::create_dir_all(&dir).unwrap();
    let jobs = dir.join("jobs.txt");
    let job = dir.join("job.sh");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            &job,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", jobs.display()),
        )
        .unwrap();
        std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .args([
            "--every",
            "1d",
            "--retrain-on-drift",
            "--drift-check-interval",
            "1s",
            "--min-drift-retrain-interval",
            "1h",
            "--lock-file",
        ])
        .arg(dir.join("job.lock"))
        .arg("--pipeline-bin")
        .arg(&job)
        .arg("--drift-scratch-dir")
        .arg(dir.join("scratch"))
        .args(["--", "--source", "csv", "--input"])
        .arg(&t.shifted_csv)
        .current_dir(&dir)
        .env("MLFLOW_TRACKING_URI", &t.store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = String::new();
    let mut drift_checks = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while drift_checks < 4 {
        assert!(Instant::now() < deadline, "too few drift checks:\n{log}");
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("drift check: dataset drift") {
            drift_checks += 1;
        }
        log.push_str(&line);
        log.push('\n');
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(drift_checks, 4, "{log}");
    let ran = std::fs::read_to_string(&jobs).unwrap_or_default();
    assert_eq!(
        ran.lines().count(),
        1,
        "one drift-triggered job expected:\n{ran}\n{log}"
    );
    assert!(
        ran.contains("--source csv"),
        "the job gets the pipeline arguments: {ran}"
    );
    assert!(
        log.contains("drifted: ") && log.contains("temperature_mean_30m"),
        "{log}"
    );
    assert!(log.contains("drift-triggered job skipped"), "{log}");
}
