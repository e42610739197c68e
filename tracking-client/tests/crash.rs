//! A process SIGKILLed while logging: the next `replay_spools` delivers every
//! value it had logged exactly once and ends its run FAILED with the reason,
//! against the real MLflow server and the local file store.
//!
//! The child is this test binary run again with `VIGIL_CRASH_CHILD` set: it
//! logs, says so on stdout, and waits to be killed.

// Helper fns outside #[test] may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{server_tracker, service, unique};
use vigil_tracking_client::{
    BatchConfig, FAILURE_REASON_TAG, RunOptions, RunSearch, RunStatus, SpoolContents, Tracker,
    TrackingConfig, ViewType, read_spool,
};

const CHILD_VAR: &str = "VIGIL_CRASH_CHILD";
const STEPS: i64 = 3000;

/// The child's tracker: the store URI and spool dir it was given. Nothing is
/// sent before an explicit flush, so at the kill the first half of the
/// values has landed (and is acked) and the second half is only in the spool.
fn child_tracker(uri: &str, spool: &Path) -> Tracker {
    Tracker::new(
        TrackingConfig::builder()
            .uri(uri)
            .unwrap()
            .spool_dir(spool)
            .batch(BatchConfig {
                max_items: 1_000_000,
                max_age: Duration::from_secs(3600),
                ..BatchConfig::default()
            })
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// In the child: logs a parent run and a child run, then waits for SIGKILL.
fn child_main(spec: &str) -> ! {
    let (uri, rest) = spec.split_once('|').unwrap();
    let (spool, experiment) = rest.split_once('|').unwrap();
    let t = child_tracker(uri, Path::new(spool));
    let exp = t.get_or_create_experiment(experiment).unwrap();
    let run = t
        .start_run(RunOptions::new(&exp.experiment_id).name("killed"))
        .unwrap();
    let child = run.start_child("trial-0").unwrap();
    for i in 0..40 {
        run.log_param(&format!("p{i}"), i * 3).unwrap();
    }
    run.set_tag("phase", "tuning").unwrap();
    for step in 0..STEPS {
        run.log_metric_at("loss", step as f64 * 0.25, step).unwrap();
        child
            .log_metric_at("score", 1.0 / (step + 1) as f64, step)
            .unwrap();
        if step == STEPS / 2 {
            run.flush().unwrap(); // half is delivered and acked
            child.flush().unwrap();
            run.set_tag("phase", "final-fit").unwrap();
        }
    }
    println!("logged {} {}", run.run_id(), child.run_id());
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Runs the child for `uri`, kills it once it has logged, returns the spools
/// it left (read before any replay) and its pid.
fn kill_a_logging_child(
    t: &Tracker,
    uri: &str,
    spool: &Path,
    experiment: &str,
) -> (Vec<SpoolContents>, u32) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_process_is_replayed_exactly_once_on_a_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, format!("{uri}|{}|{experiment}", spool.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let logged = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("logged "));
    let pid = child.id();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(logged, "the child did not get to log");
    (spools_of(t), pid)
}

fn spools_of(t: &Tracker) -> Vec<SpoolContents> {
    t.spool_files()
        .unwrap()
        .iter()
        .map(|p| read_spool(p).unwrap())
        .collect()
}

/// What the killed process logged is on the store exactly once, both runs
/// are FAILED with the reason, and nothing is left to replay.
fn check_replay(t: &Tracker, spools: &[SpoolContents], pid: u32, experiment: &str) {
    assert_eq!(spools.len(), 2, "one spool per run");
    for s in spools {
        // Some values landed before the kill, the rest only reached the spool.
        assert!(s.unacknowledged > 0 && s.metrics.len() == STEPS as usize);
    }
    let report = t.replay_spools().unwrap();
    assert!(report.still_pending.is_empty(), "{report:?}");
    assert_eq!(report.runs_failed.len(), 2, "{report:?}");
    assert!(t.spool_files().unwrap().is_empty(), "spools are gone");
    let store = t.store();
    for spool in spools {
        let run_id = spool.run_id.as_deref().unwrap();
        let run = store.get_run(run_id).unwrap();
        assert_eq!(run.info.status, RunStatus::Failed, "{run_id}");
        let reason = run.tag(FAILURE_REASON_TAG).unwrap();
        assert!(reason.contains(&format!("process {pid} ")), "{reason}");
        assert!(spool.started_ms > 0);
        let opened = format!("spool opened at {} ms", spool.started_ms);
        assert!(reason.contains(&opened), "{reason}");
        let mut by_key: HashMap<&str, Vec<(i64, i64, u64)>> = HashMap::new();
        for m in &spool.metrics {
            by_key
                .entry(&m.key)
                .or_default()
                .push((m.step, m.timestamp, m.value.to_bits()));
        }
        for (key, mut logged) in by_key {
            let mut stored: Vec<(i64, i64, u64)> = store
                .get_metric_history(run_id, key)
                .unwrap()
                .iter()
                .map(|m| (m.step, m.timestamp, m.value.to_bits()))
                .collect();
            logged.sort_unstable();
            stored.sort_unstable();
            assert_eq!(
                stored, logged,
                "{key} of {run_id}: every value exactly once"
            );
            assert_eq!(stored.len(), STEPS as usize);
        }
        for p in &spool.params {
            assert_eq!(run.param(&p.key), Some(p.value.as_str()));
        }
        if !spool.params.is_empty() {
            assert_eq!(run.data.params.len(), 40);
            assert_eq!(run.tag("phase"), Some("final-fit"), "the last value wins");
        }
    }
    let again = t.replay_spools().unwrap();
    assert_eq!(again.operations, 0, "{again:?}");
    let exp = t.get_or_create_experiment(experiment).unwrap();
    let runs = t
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()]).view_type(ViewType::All),
        )
        .unwrap();
    assert_eq!(runs.len(), 2, "no run was created twice");
    assert!(runs.iter().all(|r| r.info.status == RunStatus::Failed));
}

#[test]
fn a_killed_process_is_replayed_exactly_once_on_a_server() {
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        child_main(&spec);
    }
    let Some(uri) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let experiment = unique("crash");
    let t = server_tracker(&uri, &spool);
    let (spools, pid) = kill_a_logging_child(&t, &uri, &spool, &experiment);
    check_replay(&t, &spools, pid, &experiment);
}

#[test]
fn a_killed_process_is_replayed_exactly_once_in_a_local_store() {
    let tmp = tempfile::tempdir().unwrap();
    let mlruns = tmp.path().join("mlruns");
    let spool = tmp.path().join("spool");
    let uri = format!("file://{}", mlruns.display());
    let t = child_tracker(&uri, &spool);
    let (spools, pid) = kill_a_logging_child(&t, &uri, &spool, "crash-local");
    check_replay(&t, &spools, pid, "crash-local");
}

#[test]
fn a_live_run_is_not_replayed_and_a_finished_one_leaves_no_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let t = child_tracker(
        &format!("file://{}", tmp.path().join("mlruns").display()),
        &tmp.path().join("spool"),
    );
    let exp = t.get_or_create_experiment("live").unwrap();
    let run = t.start_run(RunOptions::new(&exp.experiment_id)).unwrap();
    run.log_metric("a", 1.0).unwrap();
    let report = t.replay_spools().unwrap();
    assert_eq!(report.in_use, 1, "{report:?}");
    assert!(report.runs_failed.is_empty(), "{report:?}");
    let id = run.run_id().to_string();
    assert_eq!(
        t.store().get_run(&id).unwrap().info.status,
        RunStatus::Running
    );
    run.finish().unwrap();
    assert!(t.spool_files().unwrap().is_empty());
    assert_eq!(
        t.store().get_run(&id).unwrap().info.status,
        RunStatus::Finished
    );
}
