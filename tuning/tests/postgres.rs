//! Several worker processes share one study in the real PostgreSQL server that the test
//! harness starts (`VIGIL_TEST_DATABASE_URL`). Each test uses its own schema.
//!
//! The test re-runs its own binary as worker processes (`VIGIL_TUNING_ROLE`).
#![cfg(feature = "postgres")]

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_tuning::{
    Direction, Heartbeat, ParamValue, PostgresStorage, Storage, Study, TrialState, TuningError,
};

const ROLE: &str = "VIGIL_TUNING_ROLE";

/// The value of a service variable, or `None` (printing why) when the harness
/// did not start that service. Panics when services are required.
#[allow(clippy::print_stderr)] // the one line saying a test was skipped
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            if std::env::var("VIGIL_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} is not set but VIGIL_REQUIRE_SERVICES=1: run scripts/test.sh");
            }
            eprintln!("skipped: {var} not set (run scripts/test.sh to start the services)");
            None
        }
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        interval: Duration::from_millis(200),
        grace_period: Duration::from_millis(1000),
    }
}

#[allow(clippy::unwrap_used)]
fn open(url: &str, schema: &str, seed: u64) -> Study {
    let storage = PostgresStorage::connect_with_schema(url, schema).unwrap();
    Study::builder()
        .name("shared")
        .direction(Direction::Minimize)
        .seed(seed)
        .shared_storage(Arc::new(storage))
        .load_if_exists(true)
        .heartbeat(heartbeat())
        .build()
        .unwrap()
}

fn objective(t: &mut vigil_tuning::Trial<'_>) -> vigil_tuning::ObjectiveResult {
    let x = t.suggest_float("x", -5.0, 5.0)?;
    let k = t.suggest_categorical("k", &["a", "b", "c"])?;
    std::thread::sleep(Duration::from_millis(15));
    Ok(x * x + if k == "b" { 0.0 } else { 1.0 })
}

/// A worker process: runs trials, printing which trial ids it ran.
#[test]
fn pg_worker_entry() {
    let role = std::env::var(ROLE).unwrap_or_default();
    if !matches!(role.as_str(), "pg-worker" | "pg-crasher" | "pg-claimer") {
        return;
    }
    let url = std::env::var("VIGIL_TEST_DATABASE_URL").unwrap();
    let schema = std::env::var("VIGIL_TUNING_SCHEMA").unwrap();
    let seed: u64 = std::env::var("VIGIL_TUNING_SEED").unwrap().parse().unwrap();
    if role == "pg-claimer" {
        // Claims a trial the way `ask` does and stops before its first heartbeat,
        // until killed: a worker dying between claim and heartbeat.
        let storage = PostgresStorage::connect_with_schema(&url, &schema).unwrap();
        let (sid, _) = storage.find_study("shared").unwrap().unwrap();
        let t = storage.start_trial(sid).unwrap();
        println!("CLAIMED {}", t.trial_id);
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let study = open(&url, &schema, seed);
    if role == "pg-crasher" {
        // Starts a trial and hangs in it until killed.
        study
            .optimize(1, None, |t| {
                t.suggest_float("x", -5.0, 5.0)?;
                t.suggest_categorical("k", &["a", "b", "c"])?;
                std::thread::sleep(Duration::from_secs(120));
                Ok(0.0)
            })
            .unwrap();
        return;
    }
    // Extra time per trial, so that a test can act while the workers run.
    let extra_ms: u64 = std::env::var("VIGIL_TUNING_TRIAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    study
        .optimize(8, None, |t| {
            std::thread::sleep(Duration::from_millis(extra_ms));
            let r = objective(t);
            println!("RAN {}", t.id());
            r
        })
        .unwrap();
}

#[allow(clippy::unwrap_used)]
fn spawn(role: &str, url: &str, schema: &str, seed: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pg_worker_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env("VIGIL_TEST_DATABASE_URL", url)
        .env("VIGIL_TUNING_SCHEMA", schema)
        .env("VIGIL_TUNING_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[allow(clippy::unwrap_used)]
fn unique_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("tuning_{tag}_{}_{nanos}", std::process::id())
}

#[test]
fn many_processes_share_one_study() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let schema = unique_schema("share");
    let study = open(&url, &schema, 0);

    // A worker that dies mid-trial.
    let mut crasher = spawn("pg-crasher", &url, &schema, 99);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "crasher never started its trial");
        let trials = study.trials().unwrap();
        if trials.len() == 1 && trials[0].params.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    crasher.kill().unwrap();
    crasher.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1200));

    // Known-good settings to try first: each must run exactly once.
    let fixed_x = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5];
    for x in fixed_x {
        study
            .enqueue_trial([("x", ParamValue::Float(x)), ("k", "b".into())])
            .unwrap();
    }

    let workers: Vec<_> = (0..3)
        .map(|i| spawn("pg-worker", &url, &schema, i))
        .collect();
    let mut ran: Vec<u64> = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // The harness prints "test pg_worker_entry ... " before the first line.
            if let Some((_, id)) = line.split_once("RAN ") {
                ran.push(id.trim().parse().unwrap());
            }
        }
    }
    assert_eq!(ran.len(), 24);
    let unique: HashSet<u64> = ran.iter().copied().collect();
    assert_eq!(unique.len(), 24, "a trial ran in two workers");

    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 25);
    let numbers: Vec<u64> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..25).collect::<Vec<_>>());
    assert_eq!(trials[0].state, TrialState::Fail);
    assert!(
        trials[0]
            .fail_reason
            .as_deref()
            .unwrap()
            .contains("heartbeat")
    );
    assert!(trials[1..].iter().all(|t| t.state == TrialState::Complete));
    // Every enqueued setting ran once, in the trials created for it.
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for t in &trials[1..=6] {
        let x = t.param("x").unwrap().as_f64().unwrap();
        *seen.entry(x.to_bits()).or_default() += 1;
        assert_eq!(t.param("k").unwrap().as_str(), Some("b"));
    }
    for x in fixed_x {
        assert_eq!(seen.get(&x.to_bits()), Some(&1), "enqueued x = {x}");
    }
    // No duplicate suggestions among the sampled trials.
    let xs: HashSet<u64> = trials[7..]
        .iter()
        .map(|t| t.param("x").unwrap().as_f64().unwrap().to_bits())
        .collect();
    assert_eq!(xs.len(), 18);

    // Finished trials are immutable.
    let storage = PostgresStorage::connect_with_schema(&url, &schema).unwrap();
    let done = &trials[3];
    assert!(matches!(
        storage.finish_trial(done.trial_id, TrialState::Fail, None, None),
        Err(TuningError::TrialFinished { .. })
    ));
    assert!(matches!(
        storage.set_intermediate(done.trial_id, 0, 1.0),
        Err(TuningError::TrialFinished { .. })
    ));
    assert!(matches!(
        storage.trial(u64::MAX >> 2),
        Err(TuningError::UnknownTrial(_))
    ));
    assert!(matches!(
        Study::load("no-such-study", Arc::new(storage)),
        Err(TuningError::StudyNotFound(_))
    ));
    drop_schema(&url, &schema);
}

#[test]
fn concurrent_claims_of_enqueued_trials_are_exclusive() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let schema = unique_schema("claim");
    let a = PostgresStorage::connect_with_schema(&url, &schema).unwrap();
    let sid = a.create_study("claims", Direction::Maximize).unwrap();
    for i in 0..40 {
        a.enqueue_trial(sid, &[("i".to_owned(), ParamValue::Int(i))].into())
            .unwrap();
    }
    // Four connections claim at once, threads of one process.
    let claimed: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                let schema = schema.clone();
                s.spawn(move || {
                    let st = PostgresStorage::connect_with_schema(&url, &schema).unwrap();
                    (0..10)
                        .map(|_| st.start_trial(sid).unwrap().trial_id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: HashSet<u64> = claimed.iter().flatten().copied().collect();
    assert_eq!(all.len(), 40, "an enqueued trial was claimed twice");
    let trials = a.trials(sid).unwrap();
    assert_eq!(trials.len(), 40);
    assert!(trials.iter().all(|t| t.state == TrialState::Running));
    drop_schema(&url, &schema);
}

/// Four connections run trials until the study holds 12: exactly 12 are
/// created (the cap is checked under the study row's lock), numbered 0..12.
#[test]
fn workers_on_separate_connections_stop_at_the_study_cap() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let schema = unique_schema("cap");
    let ran: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|seed| {
                let (url, schema) = (url.clone(), schema.clone());
                s.spawn(move || {
                    open(&url, &schema, seed)
                        .optimize_until(12, None, objective)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(ran, 12);
    let study = open(&url, &schema, 9);
    let trials = study.trials().unwrap();
    let numbers: Vec<u64> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..12).collect::<Vec<_>>());
    assert!(trials.iter().all(|t| t.state == TrialState::Complete));
    assert!(study.ask_within(12).unwrap().is_none());
    drop_schema(&url, &schema);
}

#[allow(clippy::unwrap_used)]
fn drop_schema(url: &str, schema: &str) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .unwrap();
}

#[test]
fn refused_connection_is_reported_without_the_password() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The password is a word of the driver's own message ("Connection refused"),
    // so the message shows it unless the connect path scrubs it.
    let url = format!("postgres://vigil:refused@127.0.0.1:{port}/db");
    let err = PostgresStorage::connect(&url).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            &err,
            TuningError::Postgres {
                operation: "connect",
                code: None,
                ..
            }
        ),
        "{text}"
    );
    assert!(!text.contains("refused"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn schema_names_follow_the_shared_identifier_rules() {
    // Rejected before any connection is tried (the URL points nowhere).
    for bad in [
        "",
        "1abc",
        "a.b",
        "a;DROP SCHEMA public",
        "t\"x",
        &"s".repeat(64),
    ] {
        let err =
            PostgresStorage::connect_with_schema("postgres://u@127.0.0.1:1/db", bad).unwrap_err();
        assert!(
            matches!(err, TuningError::InvalidSetting { name: "schema", .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn mixed_case_schema_keeps_its_case() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let schema = format!("Tuning_Case_{}", std::process::id());
    let storage = PostgresStorage::connect_with_schema(&url, &schema).unwrap();
    assert_eq!(storage.schema(), schema);
    storage.create_study("s", Direction::Minimize).unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let row = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2, "studies and trials in {schema}");
    drop_schema(&url, &schema);
}

#[test]
fn a_trial_claimed_but_never_heartbeated_is_failed_after_the_grace_period() {
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let schema = unique_schema("reap");
    let storage = PostgresStorage::connect_with_schema(&url, &schema).unwrap();
    let sid = storage.create_study("reap", Direction::Minimize).unwrap();
    storage
        .enqueue_trial(sid, &[("x".to_owned(), ParamValue::Float(1.0))].into())
        .unwrap();
    // One enqueued trial claimed, one new trial started; neither ever heartbeats.
    let claimed = storage.start_trial(sid).unwrap();
    let fresh = storage.start_trial(sid).unwrap();
    let grace = Duration::from_millis(300);
    std::thread::sleep(Duration::from_millis(500));
    let beating = storage.start_trial(sid).unwrap();
    storage.heartbeat(beating.trial_id).unwrap();
    let mut failed = storage.fail_stale_trials(sid, grace).unwrap();
    failed.sort_unstable();
    assert_eq!(failed, vec![claimed.trial_id, fresh.trial_id]);
    let trials = storage.trials(sid).unwrap();
    for t in &trials[..2] {
        assert_eq!(t.state, TrialState::Fail);
        assert!(t.fail_reason.as_deref().unwrap().contains("heartbeat"));
    }
    assert_eq!(trials[2].state, TrialState::Running);
    drop_schema(&url, &schema);
}

/// A PostgreSQL server of this test's own (never the shared one), started the way
/// scripts/services.sh starts one, so that the test may restart it.
struct OwnServer {
    bindir: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

#[allow(clippy::unwrap_used)]
impl OwnServer {
    fn as_pg(&self, program: &str) -> Command {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let exe = self.bindir.join(program);
        if root {
            let mut c = Command::new("runuser");
            // The postgres user may not enter the checkout (a 0700 temp dir).
            c.args(["-u", "postgres", "--"]).arg(exe).current_dir("/");
            c
        } else {
            Command::new(exe)
        }
    }

    fn start() -> Option<Self> {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = OwnServer { bindir, dir, port };
        std::fs::write(server.dir.path().join("pw"), "vigil\n").unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(server.dir.path())
            .status();
        let st = server
            .as_pg("initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-U", "vigil", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        server.pg_ctl("start");
        Some(server)
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut c = self.as_pg("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "60", "-m", "immediate"]);
        c.arg("-l").arg(self.dir.path().join("log"));
        if action != "stop" {
            c.args(["-o", &opts]);
        }
        let st = c.arg(action).stdout(Stdio::null()).status().unwrap();
        assert!(st.success(), "pg_ctl {action} failed");
    }

    fn url(&self) -> String {
        format!("postgres://vigil@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self
            .as_pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn workers_reconnect_after_the_server_restarts_mid_study() {
    if service("VIGIL_TEST_DATABASE_URL").is_none() {
        return;
    }
    let server = OwnServer::start().expect("PostgreSQL server binaries");
    let url = server.url();
    let schema = "restart";
    let study = open(&url, schema, 0);
    // Three worker processes, 8 trials each, slow enough to be caught mid-study.
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args([
                "--exact",
                "pg_worker_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, "pg-worker")
            .env("VIGIL_TEST_DATABASE_URL", &url)
            .env("VIGIL_TUNING_SCHEMA", schema)
            .env("VIGIL_TUNING_SEED", i.to_string())
            .env("VIGIL_TUNING_TRIAL_MS", "100")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while study.trials().unwrap().len() < 4 {
        assert!(Instant::now() < deadline, "the study never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every connection is cut (immediate stop) while trials are running.
    server.pg_ctl("restart");
    let mut ran: Vec<u64> = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((_, id)) = line.split_once("RAN ") {
                ran.push(id.trim().parse().unwrap());
            }
        }
    }
    let unique: HashSet<u64> = ran.iter().copied().collect();
    assert_eq!(ran.len(), 24, "every worker finished its 8 trials");
    assert_eq!(unique.len(), 24, "a trial ran in two workers");
    // A claim whose answer was lost in the restart is reaped after the grace period.
    std::thread::sleep(heartbeat().grace_period + Duration::from_millis(200));
    let storage = PostgresStorage::connect_with_schema(&url, schema).unwrap();
    storage
        .fail_stale_trials(study.id(), heartbeat().grace_period)
        .unwrap();
    let trials = study.trials().unwrap();
    let numbers: Vec<u64> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    for t in trials.iter().filter(|t| unique.contains(&t.trial_id)) {
        assert_eq!(t.state, TrialState::Complete, "trial {}", t.number);
    }
    assert!(trials.iter().all(|t| t.state != TrialState::Running));
}

#[test]
fn a_worker_killed_between_claim_and_first_heartbeat_loses_no_trial() {
    use std::io::BufRead;
    let Some(url) = service("VIGIL_TEST_DATABASE_URL") else {
        return;
    };
    let schema = unique_schema("claimkill");
    let study = open(&url, &schema, 0);
    for x in [0.25, -0.25] {
        study
            .enqueue_trial([("x", ParamValue::Float(x)), ("k", "b".into())])
            .unwrap();
    }
    // Worker 1 of 4 claims the first enqueued trial and is SIGKILLed before any beat.
    let mut claimer = spawn("pg-claimer", &url, &schema, 7);
    let stdout = claimer.stdout.take().unwrap();
    let claimed: u64 = std::io::BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
        .find_map(|l| {
            l.split_once("CLAIMED ")
                .map(|(_, id)| id.trim().parse().unwrap())
        })
        .expect("the claimer never claimed");
    claimer.kill().unwrap();
    claimer.wait().unwrap();
    let grace = heartbeat().grace_period;
    std::thread::sleep(grace + Duration::from_millis(200));

    // The other three run 8 trials each; the first `ask` reaps the dead claim.
    let workers: Vec<_> = (0..3)
        .map(|i| spawn("pg-worker", &url, &schema, i))
        .collect();
    let mut ran: Vec<u64> = Vec::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((_, id)) = line.split_once("RAN ") {
                ran.push(id.trim().parse().unwrap());
            }
        }
    }
    let unique: HashSet<u64> = ran.iter().copied().collect();
    assert_eq!(ran.len(), 24);
    assert_eq!(unique.len(), 24, "a trial ran in two workers");
    assert!(
        !unique.contains(&claimed),
        "the dead worker's trial ran again"
    );

    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 25, "no trial lost, none extra");
    let numbers: Vec<u64> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..25).collect::<Vec<_>>());
    let dead = trials.iter().find(|t| t.trial_id == claimed).unwrap();
    assert_eq!(dead.state, TrialState::Fail);
    assert!(dead.fail_reason.as_deref().unwrap().contains("heartbeat"));
    let ran_ids: HashSet<u64> = trials
        .iter()
        .filter(|t| t.trial_id != claimed)
        .map(|t| {
            assert_eq!(t.state, TrialState::Complete, "trial {}", t.number);
            t.trial_id
        })
        .collect();
    assert_eq!(ran_ids, unique, "every other trial ran exactly once");
    // The second enqueued setting was claimed by a live worker, not lost with the first.
    let second = &trials[1];
    assert_eq!(second.param("x").unwrap().as_f64(), Some(-0.25));
    drop_schema(&url, &schema);
}
