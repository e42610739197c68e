//! Tuning spread over processes, against the harness's real PostgreSQL and
//! MLflow: `pipeline --tuning-storage postgres --workers 3` (the pipeline
//! starts two workers of its own), and a second `pipeline --join-study NAME`
//! joining a running pipeline's study (and one with other data refused).
//!
//! Skipped (with a message) without the services; a failure when
//! `VIGIL_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

mod common;
use common::service;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

/// A small simulation with few trials: a few seconds per trial.
const SMALL: [&str; 12] = [
    "--machines",
    "2",
    "--days",
    "1.5",
    "--max-samples-per-tree",
    "1500",
    "--shap-rows",
    "0",
    "--contamination",
    "0.1",
    "--no-progress",
    "--tuning-storage",
];

struct Env {
    db: String,
    mlflow: String,
    dir: tempfile::TempDir,
    /// Unique per test: schema, study, experiment and model names.
    tag: String,
}

impl Env {
    fn new(db: String, mlflow: String, what: &str) -> Env {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Env {
            db,
            mlflow,
            dir: tempfile::tempdir().unwrap(),
            tag: format!("{what}_{}_{nanos}", std::process::id()),
        }
    }

    fn schema(&self) -> String {
        format!("tw_{}", self.tag)
    }

    /// A leader of a 6-trial study named for this test, with a short grace
    /// period so that a trial whose worker is lost is failed quickly.
    fn leader_losing_a_trial(&self) -> (String, Child) {
        let study = format!("study_{}", self.tag);
        let leader = self
            .pipeline(&[
                "--trials",
                "6",
                "--study-name",
                &study,
                "--heartbeat-grace",
                "2",
            ])
            .spawn()
            .unwrap();
        (study, leader)
    }

    /// The pipeline with the small run's flags, this test's names, and `extra`.
    fn pipeline(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        cmd.current_dir(self.dir.path())
            .env("MLFLOW_TRACKING_URI", &self.mlflow)
            .env("VIGIL_TUNING_DATABASE_URL", &self.db)
            .args(SMALL)
            .arg("postgres")
            .args(["--tuning-schema", &self.schema()])
            .args(["--experiment", &format!("exp_{}", self.tag)])
            .args(["--model-name", &format!("model_{}", self.tag)])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn mlflow_post(&self, path: &str, body: &Value) -> Value {
        ureq::post(format!("{}/api/2.0/mlflow/{path}", self.mlflow))
            .send_json(body)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }

    fn mlflow_get(&self, path: &str) -> Value {
        ureq::get(format!("{}/api/2.0/mlflow/{path}", self.mlflow))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }

    /// The study's trials in PostgreSQL: number → (state, worker pid).
    fn trials(&self, study: &str) -> BTreeMap<i64, (String, String)> {
        self.try_trials(study).unwrap()
    }

    /// [`Env::trials`], or the error (e.g. before the tables exist).
    fn try_trials(&self, study: &str) -> Result<BTreeMap<i64, (String, String)>, postgres::Error> {
        let mut c = postgres::Client::connect(&self.db, postgres::NoTls)?;
        let rows = c.query(
            &format!(
                "SELECT t.number, t.state, t.user_attrs->>'worker_pid'
                 FROM \"{0}\".trials t JOIN \"{0}\".studies s USING (study_id)
                 WHERE s.name = $1",
                self.schema()
            ),
            &[&study],
        )?;
        let mut out = BTreeMap::new();
        for row in rows {
            let number: i64 = row.get(0);
            let pid: Option<String> = row.get(2);
            let previous = out.insert(number, (row.get(1), pid.unwrap_or_default()));
            assert!(previous.is_none(), "trial number {number} twice");
        }
        Ok(out)
    }

    /// The experiment's runs: (parent runs, child runs).
    fn runs(&self) -> (Vec<Value>, Vec<Value>) {
        let exp = self.mlflow_get(&format!(
            "experiments/get-by-name?experiment_name=exp_{}",
            self.tag
        ));
        let id = exp["experiment"]["experiment_id"].as_str().unwrap();
        let runs = self.mlflow_post(
            "runs/search",
            &json!({"experiment_ids": [id], "max_results": 1000}),
        );
        let runs = runs["runs"].as_array().cloned().unwrap_or_default();
        runs.into_iter()
            .partition(|r| tag(r, "mlflow.parentRunId").is_none())
    }

    /// Registered versions of this test's model.
    fn versions(&self) -> usize {
        let found: Value = ureq::get(format!(
            "{}/api/2.0/mlflow/model-versions/search",
            self.mlflow
        ))
        .query("filter", format!("name = 'model_{}'", self.tag))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
        found["model_versions"].as_array().map_or(0, Vec::len)
    }

    /// The study's trial parameters (as stored, JSON text) by trial number.
    fn params(&self, study: &str) -> BTreeMap<i64, String> {
        let mut c = postgres::Client::connect(&self.db, postgres::NoTls).unwrap();
        let rows = c
            .query(
                &format!(
                    "SELECT t.number, t.params::text
                     FROM \"{0}\".trials t JOIN \"{0}\".studies s USING (study_id)
                     WHERE s.name = $1",
                    self.schema()
                ),
                &[&study],
            )
            .unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }

    fn drop_schema(&self) {
        let mut c = postgres::Client::connect(&self.db, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema()))
            .unwrap();
    }
}

fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits for a child on a thread of its own, so no child blocks on a full pipe
/// while the test waits for another.
fn finish(child: Child) -> std::thread::JoinHandle<Output> {
    std::thread::spawn(move || child.wait_with_output().unwrap())
}

/// The study is done once: all trials finished, numbered 0..n without
/// repeats; one parent run FINISHED with one FINISHED child run per trial,
/// each tagged with the pid that the study's trial names; one new version.
/// Returns the distinct worker pids.
fn assert_one_finished_study(env: &Env, study: &str, n_trials: usize) -> BTreeSet<String> {
    assert_study_with_lost_trial(env, study, n_trials, None)
}

/// [`assert_one_finished_study`], where trial `lost` (if any) lost its worker:
/// it is FAIL in the study and its run FAILED with the reason.
fn assert_study_with_lost_trial(
    env: &Env,
    study: &str,
    n_trials: usize,
    lost: Option<i64>,
) -> BTreeSet<String> {
    let trials = env.trials(study);
    let numbers: Vec<i64> = trials.keys().copied().collect();
    assert_eq!(numbers, (0..n_trials as i64).collect::<Vec<_>>());
    for (number, (state, pid)) in &trials {
        if Some(*number) == lost {
            assert_eq!(state, "FAIL", "trial {number} lost its worker");
        } else {
            assert!(
                matches!(state.as_str(), "COMPLETE" | "PRUNED"),
                "trial {number} ended {state}"
            );
        }
        assert!(
            pid.parse::<u32>().is_ok(),
            "trial {number} has no worker pid"
        );
    }
    let (parents, children) = env.runs();
    assert_eq!(parents.len(), 1, "one parent run: {parents:?}");
    let parent = &parents[0];
    assert_eq!(parent["info"]["status"], "FINISHED");
    assert_eq!(tag(parent, "vigil.tuning_study"), Some(study));
    let parent_id = parent["info"]["run_id"].as_str().unwrap();
    assert_eq!(children.len(), n_trials, "one child run per trial");
    let mut pids_by_number = BTreeMap::new();
    for child in &children {
        assert_eq!(tag(child, "mlflow.parentRunId"), Some(parent_id));
        let number: i64 = child["info"]["run_name"]
            .as_str()
            .and_then(|n| n.strip_prefix("trial-"))
            .unwrap()
            .parse()
            .unwrap();
        if Some(number) == lost {
            assert_eq!(child["info"]["status"], "FAILED");
            // Ended by the leader once the trial's heartbeats stopped (or
            // created by it, when the worker died before creating the run),
            // or first by another pipeline's start replaying the dead
            // worker's spool (tests here run side by side and share it).
            let by_leader = tag(child, "vigil.error").is_some_and(|e| {
                e.contains("heartbeats") || e.contains("before it created the trial's run")
            });
            let pid = tag(child, "vigil.worker_pid").unwrap_or_default();
            let by_replay = tag(child, "vigil.failure_reason")
                .is_some_and(|r| r.starts_with(&format!("process {pid} on ")));
            assert!(by_leader || by_replay, "lost trial {number}: {child}");
        } else {
            assert_eq!(child["info"]["status"], "FINISHED");
            assert_eq!(
                tag(child, "vigil.trial_number"),
                Some(number.to_string().as_str())
            );
        }
        let pid = tag(child, "vigil.worker_pid").unwrap().to_string();
        assert!(
            pids_by_number.insert(number, pid).is_none(),
            "trial {number} tracked twice"
        );
    }
    let study_pids: BTreeMap<i64, String> =
        trials.into_iter().map(|(n, (_, pid))| (n, pid)).collect();
    assert_eq!(
        pids_by_number, study_pids,
        "MLflow and the study disagree on who ran what"
    );
    assert_eq!(env.versions(), 1, "exactly one registered version");
    study_pids.into_values().collect()
}

#[test]
fn three_worker_processes_share_one_study_and_one_parent_run() {
    let (Some(db), Some(mlflow)) = (
        service("VIGIL_TEST_DATABASE_URL"),
        service("VIGIL_TEST_MLFLOW_URI"),
    ) else {
        return;
    };
    let env = Env::new(db, mlflow, "three");
    let study = format!("study_{}", env.tag);
    let out = env
        .pipeline(&["--workers", "3", "--trials", "6", "--study-name", &study])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tuning            6 trials"), "{stdout}");
    // The leader reports every trial once, whichever worker ran it (the
    // workers' own lines, on the same stderr, start with `[worker PID]`).
    let stderr = String::from_utf8_lossy(&out.stderr);
    for k in 1..=6 {
        let line = format!("[tuning] trial {k}/6: ");
        let count = stderr.lines().filter(|l| l.starts_with(&line)).count();
        assert_eq!(count, 1, "{line}\n{stderr}");
    }
    assert!(
        stderr.lines().any(|l| l.starts_with("[worker ")),
        "{stderr}"
    );
    let pids = assert_one_finished_study(&env, &study, 6);
    assert_eq!(
        pids.len(),
        3,
        "trials by {pids:?}: expected 3 worker processes"
    );
    // Six trials are all TPE startup trials: random draws fixed by the seed and
    // the trial number, so one worker proposes the very same parameters.
    let alone = format!("alone_{}", env.tag);
    let out = env
        .pipeline(&["--trials", "6", "--study-name", &alone, "--no-register"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (shared, single) = (env.params(&study), env.params(&alone));
    assert_eq!(shared.len(), 6);
    assert_eq!(shared, single, "3 workers proposed other parameters than 1");
    env.drop_schema();
}

#[test]
fn a_second_invocation_joins_a_running_study_and_other_data_is_refused() {
    let (Some(db), Some(mlflow)) = (
        service("VIGIL_TEST_DATABASE_URL"),
        service("VIGIL_TEST_MLFLOW_URI"),
    ) else {
        return;
    };
    let env = Env::new(db, mlflow, "join");
    let study = format!("study_{}", env.tag);
    // Started together: the joiners wait for the leader's study and parent run.
    let leader = env
        .pipeline(&["--trials", "5", "--study-name", &study])
        .spawn()
        .unwrap();
    let joiner = env.pipeline(&["--join-study", &study]).spawn().unwrap();
    // Other data (another simulator seed): its trials would not be comparable.
    let stranger = env
        .pipeline(&["--join-study", &study, "--seed", "7"])
        .spawn()
        .unwrap();
    let leader_pid = leader.id().to_string();
    let joiner_pid = joiner.id().to_string();
    let (leader, joiner, stranger) = (finish(leader), finish(joiner), finish(stranger));
    let (leader, joiner, stranger) = (
        leader.join().unwrap(),
        joiner.join().unwrap(),
        stranger.join().unwrap(),
    );
    assert!(leader.status.success(), "leader: {}", text(&leader));
    assert!(joiner.status.success(), "joiner: {}", text(&joiner));
    assert_eq!(
        stranger.status.code(),
        Some(2),
        "stranger: {}",
        text(&stranger)
    );
    assert!(
        String::from_utf8_lossy(&stranger.stderr).contains("differ from the leader's"),
        "{}",
        text(&stranger)
    );
    let joined = String::from_utf8_lossy(&joiner.stdout);
    assert!(
        joined.contains(&format!("joined study {study}: ran ")),
        "{joined}"
    );
    let pids = assert_one_finished_study(&env, &study, 5);
    let expected: BTreeSet<String> = [leader_pid, joiner_pid].into();
    assert_eq!(pids, expected, "both the leader and the joiner ran trials");
    env.drop_schema();
}

#[test]
fn a_killed_workers_trial_is_failed_and_the_study_still_finishes() {
    let (Some(db), Some(mlflow)) = (
        service("VIGIL_TEST_DATABASE_URL"),
        service("VIGIL_TEST_MLFLOW_URI"),
    ) else {
        return;
    };
    let env = Env::new(db, mlflow, "kill");
    let (study, leader) = env.leader_losing_a_trial();
    let mut joiner = env.pipeline(&["--join-study", &study]).spawn().unwrap();
    let joiner_pid = joiner.id().to_string();
    // SIGKILL the joiner in the middle of its first trial.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let lost = loop {
        let running = env.try_trials(&study).unwrap_or_default();
        let mine = running
            .iter()
            .find(|(_, (state, pid))| state == "RUNNING" && *pid == joiner_pid);
        if let Some((number, _)) = mine {
            break *number;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the joiner ran no trial: {running:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    joiner.kill().unwrap();
    joiner.wait().unwrap();
    let leader = finish(leader).join().unwrap();
    assert!(leader.status.success(), "leader: {}", text(&leader));
    let pids = assert_study_with_lost_trial(&env, &study, 6, Some(lost));
    assert!(pids.contains(&joiner_pid), "{pids:?}");
    env.drop_schema();
}

#[test]
fn a_trial_whose_worker_died_before_creating_its_run_gets_a_failed_run() {
    let (Some(db), Some(mlflow)) = (
        service("VIGIL_TEST_DATABASE_URL"),
        service("VIGIL_TEST_MLFLOW_URI"),
    ) else {
        return;
    };
    let env = Env::new(db, mlflow, "runless");
    let (study, leader) = env.leader_losing_a_trial();
    // A "worker" that claims a trial, names itself, and dies at once: no
    // heartbeat, no run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let storage = loop {
        let ready = env.try_trials(&study).is_ok_and(|t| !t.is_empty());
        if ready {
            let storage =
                vigil_tuning::PostgresStorage::connect_with_schema(&env.db, &env.schema()).unwrap();
            break std::sync::Arc::new(storage);
        }
        assert!(std::time::Instant::now() < deadline, "no study appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let loaded = vigil_tuning::Study::load(&study, storage).unwrap();
    let mut claimed = loaded
        .ask_within(6)
        .unwrap()
        .expect("a trial left to claim");
    let lost = claimed.number() as i64;
    let pid = std::process::id();
    claimed.set_user_attr("worker_pid", json!(pid)).unwrap();
    claimed.set_user_attr("worker_host", json!("gone")).unwrap();
    drop(claimed);
    let leader = finish(leader).join().unwrap();
    assert!(leader.status.success(), "leader: {}", text(&leader));
    assert_study_with_lost_trial(&env, &study, 6, Some(lost));
    let (_, children) = env.runs();
    let run = children
        .iter()
        .find(|c| c["info"]["run_name"] == format!("trial-{lost}"))
        .unwrap();
    let error = tag(run, "vigil.error").unwrap();
    assert!(
        error.contains(&format!("(pid {pid} on gone) was lost before it created")),
        "{error}"
    );
    env.drop_schema();
}

/// Settings that cannot work are refused before anything runs (exit 2).
#[test]
fn impossible_tuning_flags_exit_2_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--workers", "3"], "--tuning-storage postgres"),
        (&["--join-study", "it's"], "study name"),
        (
            &["--tuning-storage", "postgres", "--heartbeat-grace", "0"],
            "--heartbeat-grace",
        ),
    ];
    for (args, words) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .current_dir(dir.path())
            .env("MLFLOW_TRACKING_URI", dir.path().join("mlruns"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

/// SIGTERM to the leader mid-study: it exits 130, its workers go with it, the
/// parent run is KILLED, no trial run stays RUNNING, nothing is registered.
#[cfg(unix)]
#[test]
fn a_stopped_leader_takes_its_workers_and_their_runs_down() {
    let (Some(db), Some(mlflow)) = (
        service("VIGIL_TEST_DATABASE_URL"),
        service("VIGIL_TEST_MLFLOW_URI"),
    ) else {
        return;
    };
    let env = Env::new(db, mlflow, "stop");
    let study = format!("study_{}", env.tag);
    let leader = env
        .pipeline(&["--workers", "3", "--trials", "30", "--study-name", &study])
        .spawn()
        .unwrap();
    let leader_pid = leader.id().to_string();
    // Wait until a worker of the leader runs a trial.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let worker_pids = loop {
        let trials = env.try_trials(&study).unwrap_or_default();
        let workers: BTreeSet<String> = trials
            .values()
            .map(|(_, pid)| pid.clone())
            .filter(|pid| !pid.is_empty() && *pid != leader_pid)
            .collect();
        if trials
            .values()
            .any(|(state, pid)| state == "RUNNING" && *pid != leader_pid)
            && !workers.is_empty()
        {
            break workers;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no worker ran: {trials:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let term = Command::new("kill")
        .args(["-TERM", &leader_pid])
        .status()
        .unwrap();
    assert!(term.success());
    let leader = finish(leader).join().unwrap();
    assert_eq!(leader.status.code(), Some(130), "{}", text(&leader));
    for pid in &worker_pids {
        let alive = Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!alive.success(), "worker {pid} outlived its leader");
    }
    let (parents, children) = env.runs();
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0]["info"]["status"], "KILLED");
    assert!(!children.is_empty());
    for child in &children {
        assert_ne!(child["info"]["status"], "RUNNING", "{child}");
    }
    assert_eq!(env.versions(), 0, "a stopped run registers nothing");
    env.drop_schema();
}

/// A table of 3 simulated machines × 2 days in the harness's database (the
/// one the `POSTGRES_*` variables name), named for the test.
fn fleet_table(db: &str, tag: &str) -> String {
    use vigil_features::{PgConfig, SimulatorConfig, TelemetryStore, simulate};
    let table = format!("fleet_{tag}");
    let frame = simulate(&SimulatorConfig {
        machines: 3,
        days: 2.0,
        failures_per_day: 3.0,
        seed: 5,
        ..Default::default()
    })
    .unwrap()
    .frame;
    let mut store = TelemetryStore::connect(&PgConfig::from_url(db).unwrap(), &table).unwrap();
    store.create_schema().unwrap();
    store.insert(&frame).unwrap();
    table
}

#[test]
fn three_workers_share_a_study_over_a_streamed_postgres_table() {
    let (Some(db), Some(mlflow)) = (
        service("VIGIL_TEST_DATABASE_URL"),
        service("VIGIL_TEST_MLFLOW_URI"),
    ) else {
        return;
    };
    let env = Env::new(db.clone(), mlflow, "streamed");
    let table = fleet_table(&db, &env.tag);
    let study = format!("study_{}", env.tag);
    let out = env
        .pipeline(&[
            "--source",
            "postgres",
            "--table",
            &table,
            "--stream-above-rows",
            "1000",
            "--workers",
            "3",
            "--trials",
            "6",
            "--study-name",
            &study,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("streamed from PostgreSQL"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let chosen = stderr
        .lines()
        .find(|l| l.starts_with("ingestion: "))
        .unwrap_or_default();
    assert!(chosen.starts_with("ingestion: streamed ("), "{stderr}");
    assert!(
        chosen.ends_with("rows; --stream-above-rows 1000)"),
        "{stderr}"
    );
    assert!(stdout.contains("tuning            6 trials"), "{stdout}");
    // Every worker streamed the table itself and matched the leader's codes.
    assert!(!stderr.contains("differ from the leader"), "{stderr}");
    let pids = assert_one_finished_study(&env, &study, 6);
    assert_eq!(pids.len(), 3, "trials by {pids:?}: expected 3 workers");
    let mut client = postgres::Client::connect(&db, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .unwrap();
    env.drop_schema();
}
