//! A study resumes from its journal after the process running it is killed mid-trial:
//! no finished trial is lost, the killed trial is failed once its heartbeat goes stale,
//! and numbering continues.
//!
//! The test re-runs its own binary as the child process (`VIGIL_TUNING_ROLE`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tuning::{Direction, Heartbeat, JournalStorage, Storage, Study, TrialState, TuningError};

const ROLE: &str = "VIGIL_TUNING_ROLE";

fn heartbeat() -> Heartbeat {
    Heartbeat {
        interval: Duration::from_millis(100),
        grace_period: Duration::from_millis(400),
    }
}

#[allow(clippy::unwrap_used)]
fn open(path: &str) -> Study {
    Study::builder()
        .name("crash")
        .direction(Direction::Minimize)
        .seed(1)
        .storage(JournalStorage::open(path).unwrap())
        .load_if_exists(true)
        .heartbeat(heartbeat())
        .build()
        .unwrap()
}

/// The child: runs trials until trial 5, which hangs until the parent kills it.
#[test]
fn journal_child_entry() {
    if std::env::var(ROLE).as_deref() != Ok("journal-child") {
        return;
    }
    let path = std::env::var("VIGIL_TUNING_JOURNAL").unwrap();
    let study = open(&path);
    study
        .optimize(100, None, |t| {
            let x = t.suggest_float("x", -1.0, 1.0)?;
            let n = t.suggest_int("n", 1, 8)?;
            if t.number() == 5 {
                std::thread::sleep(Duration::from_secs(120));
            }
            Ok((x - 0.3).powi(2) + n as f64)
        })
        .unwrap();
}

#[test]
fn resumes_after_the_process_is_killed_mid_trial() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study.journal");
    let path_s = path.to_str().unwrap().to_owned();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "journal_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "journal-child")
        .env("VIGIL_TUNING_JOURNAL", &path_s)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Wait until the child is inside trial 5 with five trials finished.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        assert!(Instant::now() < deadline, "child never reached trial 5");
        std::thread::sleep(Duration::from_millis(50));
        let Ok(j) = JournalStorage::open(&path) else {
            continue;
        };
        let Some((sid, _)) = j.find_study("crash").unwrap() else {
            continue;
        };
        let trials = j.trials(sid).unwrap();
        if trials.len() == 6
            && trials[5].state == TrialState::Running
            && trials[5].params.len() == 2
        {
            break trials;
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // Let the dead worker's heartbeat go stale.
    std::thread::sleep(Duration::from_millis(600));

    let study = open(&path_s);
    study
        .optimize(5, None, |t| {
            let x = t.suggest_float("x", -1.0, 1.0)?;
            let n = t.suggest_int("n", 1, 8)?;
            Ok((x - 0.3).powi(2) + n as f64)
        })
        .unwrap();
    let after = study.trials().unwrap();
    assert_eq!(after.len(), 11);
    for i in 0..5 {
        assert_eq!(after[i].state, TrialState::Complete);
        assert_eq!(after[i].value, before[i].value, "trial {i} changed");
        assert_eq!(after[i].params, before[i].params);
    }
    assert_eq!(after[5].state, TrialState::Fail);
    assert!(
        after[5]
            .fail_reason
            .as_deref()
            .unwrap()
            .contains("heartbeat")
    );
    assert!(after[6..].iter().all(|t| t.state == TrialState::Complete));
    let numbers: Vec<u64> = after.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..11).collect::<Vec<_>>());
}

/// Build a journal whose last record finishes trial 2; return its bytes and where
/// that last record starts.
#[allow(clippy::unwrap_used)]
fn journal_bytes(path: &std::path::Path) -> (Vec<u8>, usize) {
    let j = JournalStorage::open(path).unwrap();
    let s = j.create_study("cut", Direction::Minimize).unwrap();
    for i in 0..3 {
        let t = j.start_trial(s).unwrap();
        j.heartbeat(t.trial_id).unwrap();
        j.finish_trial(t.trial_id, TrialState::Complete, Some(f64::from(i)), None)
            .unwrap();
    }
    drop(j);
    let bytes = std::fs::read(path).unwrap();
    let body = &bytes[..bytes.len() - 1];
    let last_start = body.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    (bytes, last_start)
}

#[test]
fn a_journal_cut_at_any_byte_of_its_last_record_resumes_at_the_last_good_record() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.journal");
    let (bytes, last_start) = journal_bytes(&full);
    for cut in last_start..bytes.len() {
        let path = dir.path().join(format!("cut-{cut}.journal"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let j = JournalStorage::open(&path).unwrap();
        let (sid, _) = j.find_study("cut").unwrap().unwrap();
        let trials = j.trials(sid).unwrap();
        assert_eq!(trials.len(), 3, "cut at {cut}");
        assert!(trials[..2].iter().all(|t| t.state == TrialState::Complete));
        // The last record (finishing trial 2) is gone, and only it.
        assert_eq!(trials[2].state, TrialState::Running, "cut at {cut}");
        // Writing goes on from the last good record.
        j.finish_trial(trials[2].trial_id, TrialState::Complete, Some(9.0), None)
            .unwrap();
        let again = JournalStorage::open(&path).unwrap();
        let trials = again.trials(sid).unwrap();
        assert_eq!(trials[2].value, Some(9.0), "cut at {cut}");
    }
}

#[test]
fn a_corrupt_record_is_an_error_naming_its_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.journal");
    let (mut bytes, last_start) = journal_bytes(&path);
    bytes[last_start] = b'#';
    std::fs::write(&path, &bytes).unwrap();
    match JournalStorage::open(&path) {
        Err(TuningError::CorruptJournal { offset, .. }) => {
            assert_eq!(offset, last_start as u64);
        }
        other => panic!("expected CorruptJournal, got {other:?}"),
    }
}

#[test]
fn a_journal_shrunk_under_an_open_storage_is_an_error_not_an_underflow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrunk.journal");
    let (_, last_start) = journal_bytes(&path);
    let j = JournalStorage::open(&path).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(last_start as u64).unwrap();
    match j.trials(0) {
        Err(TuningError::CorruptJournal { offset, .. }) => {
            assert_eq!(offset, last_start as u64);
        }
        other => panic!("expected CorruptJournal, got {other:?}"),
    }
}
