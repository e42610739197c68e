//! Chaos: the pipeline against the real MLflow server, SIGKILLed at 10 seeded
//! points across its stages (tuning, final fit, evaluation, tracking), each
//! time followed by the next pipeline, whose start replays what the killed
//! one left. Afterwards: no run is RUNNING, every killed run is FAILED with
//! its reason, every value that reached a spool before a kill is on the
//! server exactly once, and no model version was registered twice.

// Helper fns outside #[test] may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::service;
use vigil_tracking_client::{
    FAILURE_REASON_TAG, RunSearch, RunStatus, SpoolContents, Tracker, TrackingConfig, ViewType,
    read_spool,
};

const KILLS: usize = 10;
const SEED: u64 = 20_261_203;

/// A reproducible stream of fractions in [0, 1) (SplitMix64).
struct Fractions(u64);

impl Iterator for Fractions {
    type Item = f64;
    fn next(&mut self) -> Option<f64> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Some((z ^ (z >> 31)) as f64 / u64::MAX as f64)
    }
}

struct Chaos {
    dir: PathBuf,
    mlflow: String,
    spool: PathBuf,
    args: Vec<String>,
    /// The pipelines' store, with their spool dir: for reading spools and runs.
    tracker: Tracker,
}

impl Chaos {
    fn pipeline(&self, log: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        cmd.args(&self.args)
            .env("MLFLOW_TRACKING_URI", &self.mlflow)
            .env("VIGIL_TRACKING_SPOOL_DIR", &self.spool)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        cmd
    }

    /// Runs the pipeline to the end, noting when each progress line (one that
    /// starts with `[stage]`) appeared.
    fn run_through(&self, name: &str) -> Timeline {
        let log = self.dir.join(format!("{name}.log"));
        let mut child = self.pipeline(&log).spawn().unwrap();
        let started = Instant::now();
        let mut lines = Vec::new();
        let status = loop {
            let exited = child.try_wait().unwrap();
            let seen = progress_lines(&log).len();
            lines.resize(seen.max(lines.len()), started.elapsed());
            if let Some(status) = exited {
                break status;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert!(
            status.success(),
            "{name}: {status}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let text = progress_lines(&log);
        Timeline {
            lines: text.into_iter().zip(lines).collect(),
        }
    }

    /// Starts the pipeline and SIGKILLs it `after` its progress line number
    /// `anchor` appeared; the line it was at (its last line) and the spools
    /// it left, read before any replay.
    fn kill(&self, i: usize, anchor: usize, after: Duration) -> (String, Vec<SpoolContents>) {
        let log = self.dir.join(format!("kill-{i}.log"));
        let mut child = self.pipeline(&log).spawn().unwrap();
        while child.try_wait().unwrap().is_none() && progress_lines(&log).len() <= anchor {
            std::thread::sleep(Duration::from_millis(1));
        }
        let deadline = Instant::now() + after;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let stage = if finished_first {
            "(finished before the kill)".to_string()
        } else {
            text.lines()
                .last()
                .unwrap_or("(before any output)")
                .to_string()
        };
        (stage, spools(&self.tracker))
    }
}

/// The progress lines of a pipeline's log (a replay's lines come first and
/// do not start with `[`).
fn progress_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with('['))
        .map(str::to_string)
        .collect()
}

/// The reference run's progress lines, each with when it appeared.
struct Timeline {
    lines: Vec<(String, Duration)>,
}

impl Timeline {
    /// A kill point a fraction `f` of the way through the run, as (the line
    /// it follows, how long after it): anchored to the line so that a faster
    /// or slower run is still killed in the same stretch of work. Never after
    /// the last line (the pipeline exits right after it).
    fn at_fraction(&self, f: f64) -> (usize, Duration) {
        let last = self.lines.len() - 1;
        let at = self.lines[last].1.mul_f64(f);
        let anchor = self.lines[..last]
            .iter()
            .rposition(|(_, t)| *t <= at)
            .unwrap_or(0);
        (anchor, at.saturating_sub(self.lines[anchor].1))
    }

    /// A kill point a fraction `f` into `stage` (from its `started` line to
    /// the next line).
    fn within_stage(&self, stage: &str, f: f64) -> (usize, Duration) {
        let line = format!("[{stage}] started");
        let anchor = self
            .lines
            .iter()
            .position(|(l, _)| *l == line)
            .unwrap_or_else(|| panic!("the reference run has no `{line}`"));
        let took = self.lines[anchor + 1].1 - self.lines[anchor].1;
        (anchor, took.mul_f64(f))
    }
}

fn spools(tracker: &Tracker) -> Vec<SpoolContents> {
    tracker
        .spool_files()
        .unwrap()
        .iter()
        .filter_map(|p| read_spool(p).ok())
        .collect()
}

/// Everything the spools of one run recorded, over all snapshots (a spool
/// replayed halfway by a pipeline that was killed in turn shows up twice).
#[derive(Default)]
struct Logged {
    metrics: HashSet<(String, i64, i64, u64)>,
    params: BTreeMap<String, String>,
    ended: Option<RunStatus>,
}

#[test]
fn a_pipeline_killed_at_ten_points_loses_nothing_duplicates_nothing_leaves_nothing_running() {
    let Some(mlflow) = service("VIGIL_TEST_MLFLOW_URI") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let csv = dir.join("telemetry.csv");
    let sim = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(["--to", "csv", "--machines", "3", "--days", "2", "--output"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(sim.status.success(), "{sim:?}");
    let suffix = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (experiment, model) = (format!("chaos-{suffix}"), format!("chaos_model_{suffix}"));
    let args: Vec<String> = [
        "--source",
        "csv",
        "--input",
        &csv.display().to_string(),
        "--trials",
        "6",
        "--max-samples-per-tree",
        "3000",
        "--shap-rows",
        "50",
        "--experiment",
        &experiment,
        "--model-name",
        &model,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let spool = dir.join("spool");
    let tracker = Tracker::new(
        TrackingConfig::builder()
            .uri(&mlflow)
            .unwrap()
            .spool_dir(&spool)
            .build()
            .unwrap(),
    )
    .unwrap();
    let chaos = Chaos {
        spool,
        dir,
        mlflow: mlflow.clone(),
        args,
        tracker,
    };

    let reference = chaos.run_through("reference");
    let mut logged: HashMap<String, Logged> = HashMap::new();
    let mut stages = Vec::new();
    // Half the kills at a seeded fraction of the run; half a seeded fraction
    // into one of the stages after tuning (which takes most of a run's time).
    const LATE_STAGES: [&str; 5] = [
        "final_fit",
        "failure_modes",
        "evaluation",
        "explanations",
        "tracking",
    ];
    let mut draws = Fractions(SEED);
    let mut killed = 0;
    for i in 0..KILLS {
        let f = draws.next().unwrap();
        let (anchor, delay) = if i % 2 == 0 {
            reference.at_fraction(0.05 + 0.9 * f)
        } else {
            let which = (draws.next().unwrap() * LATE_STAGES.len() as f64) as usize;
            reference.within_stage(LATE_STAGES[which.min(LATE_STAGES.len() - 1)], f)
        };
        let (last_line, snapshot) = chaos.kill(i, anchor, delay);
        killed += usize::from(!last_line.starts_with("(finished"));
        stages.push(format!(
            "`{}` + {} ms: {last_line}",
            reference.lines[anchor].0,
            delay.as_millis()
        ));
        for spool in snapshot {
            let Some(run_id) = spool.run_id.clone() else {
                continue; // killed inside runs/create: checked through RUNNING below
            };
            let entry = logged.entry(run_id).or_default();
            for m in spool.metrics {
                entry
                    .metrics
                    .insert((m.key, m.step, m.timestamp, m.value.to_bits()));
            }
            entry
                .params
                .extend(spool.params.into_iter().map(|p| (p.key, p.value)));
            entry.ended = entry.ended.or(spool.end_status);
        }
    }
    chaos.run_through("after-the-kills"); // its start replays the last kill's spools
    let tracker = &chaos.tracker;
    assert!(
        tracker.spool_files().unwrap().is_empty(),
        "every spool was replayed"
    );
    let store = tracker.store();
    let (mut values, mut failed_by_replay) = (0, 0);
    for (run_id, spool) in &logged {
        let run = store.get_run(run_id).unwrap();
        match spool.ended {
            None => {
                assert_eq!(run.info.status, RunStatus::Failed, "{run_id}");
                assert!(run.tag(FAILURE_REASON_TAG).is_some(), "{run_id}");
                failed_by_replay += 1;
            }
            Some(status) => assert_eq!(run.info.status, status, "{run_id}"),
        }
        let mut by_key: HashMap<&str, Vec<(i64, i64, u64)>> = HashMap::new();
        for (key, step, ts, bits) in &spool.metrics {
            by_key.entry(key).or_default().push((*step, *ts, *bits));
        }
        for (key, mut want) in by_key {
            let mut got: Vec<(i64, i64, u64)> = store
                .get_metric_history(run_id, key)
                .unwrap()
                .iter()
                .map(|m| (m.step, m.timestamp, m.value.to_bits()))
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(
                got, want,
                "{key} of {run_id}: each spooled value exactly once"
            );
            values += want.len();
        }
        for (key, value) in &spool.params {
            assert_eq!(run.param(key), Some(value.as_str()), "{key} of {run_id}");
            values += 1;
        }
    }
    let exp = tracker.get_or_create_experiment(&experiment).unwrap();
    let runs = tracker
        .search_all_runs(
            RunSearch::in_experiments([exp.experiment_id.as_str()]).view_type(ViewType::All),
        )
        .unwrap();
    let running: Vec<&str> = runs
        .iter()
        .filter(|r| r.info.status == RunStatus::Running)
        .map(|r| r.info.run_id.as_str())
        .collect();
    assert!(running.is_empty(), "runs left RUNNING: {running:?}");
    let versions = tracker
        .store()
        .search_model_versions(Some(&format!("name = '{model}'")), 1000, None)
        .unwrap()
        .items;
    let sources: HashSet<&str> = versions.iter().map(|v| v.run_id.as_str()).collect();
    assert_eq!(sources.len(), versions.len(), "a run registered twice");
    assert!(versions.len() >= 2, "the two full runs registered");
    assert!(
        failed_by_replay >= 1,
        "no kill left a run for the replay to end"
    );
    assert!(
        killed >= KILLS - 2,
        "only {killed} of {KILLS} pipelines were still running at their kill"
    );
    eprintln!(
        "chaos: {killed} of {KILLS} pipelines SIGKILLed mid-run; {} runs, {failed_by_replay} ended FAILED by a replay; \
         {values} spooled values checked, 0 lost, 0 duplicated; 0 RUNNING; {} versions, 0 duplicates",
        runs.len(),
        versions.len()
    );
    for s in stages {
        eprintln!("chaos: killed at {s}");
    }
}
