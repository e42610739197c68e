//! The `scheduler` and `simulate --follow` binaries driven the way an operator
//! drives them: child processes, exit codes, lock files and signals.
//!
//! Most scheduler tests give it a small shell script as the training job, so
//! they can make a job fail, hang or take its time on purpose; one test runs the
//! real `pipeline` binary through the scheduler.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, one per test.
fn temp_dir(name: &str) -> PathBuf {
    // Test names are unique within this process; the pid separates runs.
    let dir = std::env::temp_dir().join(format!("vigil-scheduler-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an executable `/bin/sh` script and returns its path.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn scheduler(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits for `child` up to `limit`; kills it and fails the test if it is still running.
fn wait_for(child: &mut Child, limit: Duration) -> (ExitStatus, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, out + &err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `path` has at least `n` lines (polling), up to `limit`.
fn wait_lines(path: &Path, n: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} of {n} lines after {limit:?}: {lines:?}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failing_job_is_retried_with_backoff_and_the_scheduler_keeps_going() {
    let dir = temp_dir("retry");
    let runs = dir.join("runs");
    let job = script(
        &dir,
        "job.sh",
        &format!("date +%s.%N >> '{}'; exit 3", runs.display()),
    );
    let mut child = scheduler(
        &dir,
        &[
            "--every",
            "4s",
            "--retries",
            "2",
            "--retry-delay",
            "1s",
            "--retry-max",
            "1s",
            "--pipeline-bin",
            job.to_str().unwrap(),
        ],
    );
    // Slot 1: the first attempt and two retries. Slot 2: a new first attempt.
    let times: Vec<f64> = wait_lines(&runs, 4, Duration::from_secs(40))
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the scheduler died with its job"
    );
    sigterm(&child);
    let (status, log) = wait_for(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}: {log}");
    for line in [
        "job failed: training job exited with exit status: 3",
        "retry 1/2 in 1s",
        "retry 2/2 in 1s",
        "giving up after 3 attempt(s); waiting for the next slot",
        "stopped cleanly",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
    }
    // Retries come after the back-off delay, the next slot after the interval.
    assert!(times[1] - times[0] >= 0.9, "{times:?}");
    assert!(times[2] - times[1] >= 0.9, "{times:?}");
    assert!(times[3] - times[2] >= 1.5, "{times:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_the_running_job_and_then_the_scheduler() {
    let dir = temp_dir("sigterm");
    let log_path = dir.join("job.log");
    let log = log_path.display();
    // The job records that it started, then waits; on SIGTERM it records that too
    // (and ends its `sleep`, which would otherwise hold the output pipes open).
    let job = script(
        &dir,
        "job.sh",
        &format!(
            "trap 'kill $! 2>/dev/null; echo stopped >> \"{log}\"; exit 143' TERM\necho started >> \"{log}\"\nsleep 60 &\nwait"
        ),
    );
    let mut child = scheduler(&dir, &["--once", "--pipeline-bin", job.to_str().unwrap()]);
    wait_lines(&log_path, 1, Duration::from_secs(20));
    sigterm(&child);
    let (status, out) = wait_for(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("asking training job"), "{out}");
    assert_eq!(
        wait_lines(&log_path, 2, Duration::from_secs(5)),
        ["started", "stopped"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_schedulers_never_run_two_jobs_at_once() {
    let dir = temp_dir("lock");
    let log_path = dir.join("job.log");
    let log = log_path.display();
    let job = script(
        &dir,
        "job.sh",
        &format!("echo start >> \"{log}\"; sleep 3; echo end >> \"{log}\""),
    );
    let lock = dir.join("shared.lock");
    let args = [
        "--once",
        "--lock-file",
        lock.to_str().unwrap(),
        "--pipeline-bin",
        job.to_str().unwrap(),
    ];
    let mut first = scheduler(&dir, &args);
    wait_lines(&log_path, 1, Duration::from_secs(20));
    // The second process finds the lock held: it skips the slot (EX_TEMPFAIL), runs nothing.
    let mut second = scheduler(&dir, &args);
    let (status, out) = wait_for(&mut second, Duration::from_secs(10));
    assert_eq!(status.code(), Some(75), "{out}");
    assert!(out.contains("another job holds the lock"), "{out}");
    let (status, out) = wait_for(&mut first, Duration::from_secs(20));
    assert!(status.success(), "{out}");
    assert_eq!(
        std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        ["start", "end"]
    );
    // The lock is released with the process: a third run goes ahead.
    let mut third = scheduler(&dir, &args);
    let (status, out) = wait_for(&mut third, Duration::from_secs(20));
    assert!(status.success(), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn once_with_promote_trains_then_evaluates_with_the_given_arguments() {
    let dir = temp_dir("promote");
    let log_path = dir.join("calls.log");
    let log = log_path.display();
    let train = script(&dir, "train.sh", &format!("echo \"train $*\" >> \"{log}\""));
    let evaluate = script(
        &dir,
        "eval.sh",
        &format!("echo \"evaluate $*\" >> \"{log}\""),
    );
    let mut child = scheduler(
        &dir,
        &[
            "--once",
            "--promote",
            "--pipeline-bin",
            train.to_str().unwrap(),
            "--evaluate-bin",
            evaluate.to_str().unwrap(),
            "--",
            "--source",
            "csv",
            "--input",
            "telemetry.csv",
        ],
    );
    let (status, out) = wait_for(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{out}");
    assert_eq!(
        std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        [
            "train --source csv --input telemetry.csv",
            "evaluate --promote"
        ]
    );

    // A failed training job promotes nothing and fails the run.
    std::fs::remove_file(&log_path).unwrap();
    let failing = script(&dir, "fail.sh", &format!("echo fail >> \"{log}\"; exit 1"));
    let mut child = scheduler(
        &dir,
        &[
            "--once",
            "--promote",
            "--retries",
            "0",
            "--pipeline-bin",
            failing.to_str().unwrap(),
            "--evaluate-bin",
            evaluate.to_str().unwrap(),
        ],
    );
    let (status, out) = wait_for(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{out}");
    assert_eq!(std::fs::read_to_string(&log_path).unwrap(), "fail\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn once_runs_the_real_pipeline_into_the_local_store() {
    let dir = temp_dir("pipeline");
    let mut child = Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .args([
            "--once",
            "--pipeline-bin",
            env!("CARGO_BIN_EXE_pipeline"),
            "--",
            "--machines",
            "2",
            "--days",
            "2",
            "--trials",
            "2",
            "--max-samples-per-tree",
            "2000",
            "--no-progress",
        ])
        .current_dir(&dir)
        .env_remove("MLFLOW_TRACKING_URI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, out) = wait_for(&mut child, Duration::from_secs(600));
    assert!(status.success(), "{out}");
    assert!(out.contains("job finished in"), "{out}");
    assert!(out.contains("registered"), "{out}");
    assert!(
        dir.join("mlruns").is_dir(),
        "no local store in {}",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulate_follow_streams_rows_in_real_time_until_stopped() {
    let dir = temp_dir("follow");
    let csv = dir.join("live.csv");
    let started = chrono::Utc::now().timestamp_micros();
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args([
            "--to",
            "csv",
            "--output",
            csv.to_str().unwrap(),
            "--follow",
            "--machines",
            "2",
            "--days",
            "1",
            "--speed",
            "300",
            "--flush-every",
            "1s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Rows arrive batch by batch while the process runs.
    let early = wait_lines(&csv, 10, Duration::from_secs(30)).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(child.try_wait().unwrap().is_none(), "simulate exited early");
    let later = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert!(later > early, "no new rows: {early} then {later}");
    sigterm(&child);
    let (status, out) = wait_for(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}: {out}");
    let stopped = chrono::Utc::now().timestamp_micros();

    // A well-formed CSV (one header, then rows; read back by vigil-features)
    // whose timestamps start at the start of the run and advance at no more than
    // 300 simulated seconds per wall-clock second.
    let text = std::fs::read_to_string(&csv).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        text.lines().filter(|l| *l == header).count(),
        1,
        "header repeated"
    );
    let (frame, report) = vigil_features::read_csv(&csv, &vigil_features::CsvOptions::default())
        .expect("simulate --follow writes a readable CSV");
    assert_eq!(report.rows, text.lines().count() - 1);
    assert_eq!(frame.len(), report.rows);
    let first = *frame.time().iter().min().unwrap();
    let last = *frame.time().iter().max().unwrap();
    assert!(
        first >= started - 1_000_000,
        "rows start before the run: {first} < {started}"
    );
    let budget = (stopped - started) * 300 + 1_000_000;
    assert!(
        last - started <= budget,
        "rows run ahead of real time x300: {last}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run folders in a local store (`mlruns/<experiment>/<run>/meta.yaml`).
fn local_runs(mlruns: &Path) -> usize {
    let Ok(experiments) = std::fs::read_dir(mlruns) else {
        return 0;
    };
    experiments
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path()).ok())
        .flat_map(|runs| runs.flatten())
        .filter(|r| r.path().join("meta.yaml").is_file())
        .count()
}

#[test]
fn sigterm_ends_a_pipeline_run_as_killed_and_registers_nothing() {
    use vigil_tracking_client::{RunSearch, RunStatus, Tracker, TrackingConfig};

    let dir = temp_dir("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args([
            "--machines",
            "2",
            "--days",
            "2",
            "--trials",
            "200",
            "--max-samples-per-tree",
            "2000",
            "--no-progress",
        ])
        .current_dir(&dir)
        .env_remove("MLFLOW_TRACKING_URI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until tuning has started (the parent run and a first trial run exist).
    let mlruns = dir.join("mlruns");
    let deadline = Instant::now() + Duration::from_secs(300);
    while local_runs(&mlruns) < 2 {
        assert!(Instant::now() < deadline, "tuning never started");
        assert!(child.try_wait().unwrap().is_none(), "pipeline ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&child);
    let (status, out) = wait_for(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("interrupted at the tuning stage"), "{out}");

    let uri = mlruns.to_str().unwrap().to_string();
    let config =
        TrackingConfig::from_lookup(|k| (k == "MLFLOW_TRACKING_URI").then(|| uri.clone())).unwrap();
    let tracker = Tracker::new(config).unwrap();
    let experiment = tracker
        .store()
        .get_experiment_by_name("predictive_maintenance")
        .unwrap()
        .expect("the experiment exists");
    let runs = tracker
        .search_all_runs(RunSearch {
            experiment_ids: vec![experiment.experiment_id.clone()],
            ..Default::default()
        })
        .unwrap();
    let parent = runs
        .iter()
        .find(|r| r.info.run_name.starts_with("train-"))
        .expect("the parent run");
    assert_eq!(parent.info.status, RunStatus::Killed);
    assert!(
        runs.iter().all(|r| r.info.status != RunStatus::Running),
        "a run was left RUNNING"
    );
    assert!(
        tracker
            .store()
            .get_registered_model("predictive_maintenance_model")
            .is_err(),
        "an interrupted run registered a model"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scheduler SIGKILLed during a job leaves the job running (orphaned); the
/// job holds the lock itself, so a new scheduler starts nothing until it exits.
#[test]
fn a_killed_schedulers_orphaned_job_keeps_the_next_job_from_starting() {
    let dir = temp_dir("orphan");
    let log_path = dir.join("job.log");
    let log = log_path.display();
    let job = script(
        &dir,
        "job.sh",
        &format!("echo start >> \"{log}\"; sleep 4; echo end >> \"{log}\""),
    );
    let lock = dir.join("shared.lock");
    let args = [
        "--once",
        "--lock-file",
        lock.to_str().unwrap(),
        "--pipeline-bin",
        job.to_str().unwrap(),
    ];
    let mut first = scheduler(&dir, &args);
    wait_lines(&log_path, 1, Duration::from_secs(20));
    first.kill().unwrap(); // SIGKILL: no clean-up, the job lives on
    first.wait().unwrap();
    let mut second = scheduler(&dir, &args);
    let (status, out) = wait_for(&mut second, Duration::from_secs(10));
    assert_eq!(status.code(), Some(75), "{out}");
    assert!(out.contains("another job holds the lock"), "{out}");
    // The orphan finishes; then the lock is free and the next job runs.
    let lines = wait_lines(&log_path, 2, Duration::from_secs(20));
    assert_eq!(lines, ["start", "end"]);
    let mut third = scheduler(&dir, &args);
    let (status, out) = wait_for(&mut third, Duration::from_secs(20));
    assert!(status.success(), "{out}");
    assert_eq!(wait_lines(&log_path, 4, Duration::from_secs(5)).len(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A job over `--job-timeout` gets SIGTERM; one that ignores it gets SIGKILL
/// after `--kill-grace`. Either way the attempt failed.
#[test]
fn a_job_over_its_timeout_gets_sigterm_then_sigkill() {
    let dir = temp_dir("timeout");
    let log_path = dir.join("job.log");
    let log = log_path.display();
    let polite = script(
        &dir,
        "polite.sh",
        &format!(
            "trap 'echo term >> \"{log}\"; exit 0' TERM; echo start >> \"{log}\"; while true; do sleep 0.1; done"
        ),
    );
    // An ignored signal stays ignored across exec: sleep ignores SIGTERM.
    let stubborn = script(
        &dir,
        "stubborn.sh",
        &format!("trap '' TERM; echo start >> \"{log}\"; exec sleep 60"),
    );
    for (job, says, lines) in [
        (&polite, "SIGTERM", vec!["start", "term"]),
        (&stubborn, "SIGKILL after the grace", vec!["start"]),
    ] {
        let _ = std::fs::remove_file(&log_path);
        let lock = dir.join("timeout.lock");
        let mut child = scheduler(
            &dir,
            &[
                "--once",
                "--retries",
                "0",
                "--job-timeout",
                "1s",
                "--kill-grace",
                "1s",
                "--lock-file",
                lock.to_str().unwrap(),
                "--pipeline-bin",
                job.to_str().unwrap(),
            ],
        );
        let (status, out) = wait_for(&mut child, Duration::from_secs(30));
        assert_eq!(status.code(), Some(1), "{out}");
        assert!(out.contains("ran over the job timeout of 1s"), "{out}");
        assert!(out.contains(says), "{out}");
        let logged: Vec<String> = std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(logged, lines, "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
