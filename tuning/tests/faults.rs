//! A failed heartbeat or a failed `tell` is retried and finally surfaces as a typed
//! error, never as a silently dropped result. A wrapper around the real in-memory
//! storage injects the faults a healthy storage cannot produce on demand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use vigil_tuning::{
    Direction, FrozenTrial, Heartbeat, InMemoryStorage, Param, ParamValue, Result, RetryPolicy,
    Storage, Study, TrialList, TrialState, TuningError,
};

/// How the wrapped storage misbehaves.
#[derive(Debug, Default)]
struct Faults {
    /// `finish_trial` calls that fail before reaching the storage.
    finish_fails_before: AtomicU32,
    /// `finish_trial` calls that reach the storage, then lose their answer.
    finish_fails_after: AtomicU32,
    /// Every heartbeat fails.
    heartbeat_fails: bool,
    finish_calls: AtomicU32,
    heartbeat_calls: AtomicU32,
}

#[derive(Debug)]
struct Faulty {
    inner: InMemoryStorage,
    faults: Faults,
}

fn io_error() -> TuningError {
    TuningError::Io {
        path: "injected".into(),
        source: std::io::Error::other("injected fault"),
    }
}

/// Take one from `counter` if it is positive.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Storage for Faulty {
    fn create_study(&self, name: &str, direction: Direction) -> Result<u64> {
        self.inner.create_study(name, direction)
    }
    fn find_study(&self, name: &str) -> Result<Option<(u64, Direction)>> {
        self.inner.find_study(name)
    }
    fn enqueue_trial(&self, study_id: u64, fixed: &BTreeMap<String, ParamValue>) -> Result<u64> {
        self.inner.enqueue_trial(study_id, fixed)
    }
    fn start_trial(&self, study_id: u64) -> Result<FrozenTrial> {
        self.inner.start_trial(study_id)
    }
    fn start_trial_capped(&self, study_id: u64, max_trials: u64) -> Result<Option<FrozenTrial>> {
        self.inner.start_trial_capped(study_id, max_trials)
    }
    fn set_param(&self, trial_id: u64, name: &str, param: &Param) -> Result<()> {
        self.inner.set_param(trial_id, name, param)
    }
    fn set_pending_params(&self, trial_id: u64, params: &BTreeMap<String, f64>) -> Result<()> {
        self.inner.set_pending_params(trial_id, params)
    }
    fn set_intermediate(&self, trial_id: u64, step: u64, value: f64) -> Result<()> {
        self.inner.set_intermediate(trial_id, step, value)
    }
    fn set_user_attr(&self, trial_id: u64, key: &str, value: serde_json::Value) -> Result<()> {
        self.inner.set_user_attr(trial_id, key, value)
    }
    fn finish_trial(
        &self,
        trial_id: u64,
        state: TrialState,
        value: Option<f64>,
        fail_reason: Option<&str>,
    ) -> Result<()> {
        self.faults.finish_calls.fetch_add(1, Ordering::SeqCst);
        if take(&self.faults.finish_fails_before) {
            return Err(io_error());
        }
        self.inner
            .finish_trial(trial_id, state, value, fail_reason)?;
        if take(&self.faults.finish_fails_after) {
            return Err(io_error());
        }
        Ok(())
    }
    fn trials(&self, study_id: u64) -> Result<TrialList> {
        self.inner.trials(study_id)
    }
    fn trial(&self, trial_id: u64) -> Result<Arc<FrozenTrial>> {
        self.inner.trial(trial_id)
    }
    fn heartbeat(&self, trial_id: u64) -> Result<()> {
        self.faults.heartbeat_calls.fetch_add(1, Ordering::SeqCst);
        if self.faults.heartbeat_fails {
            return Err(io_error());
        }
        self.inner.heartbeat(trial_id)
    }
    fn fail_stale_trials(&self, study_id: u64, grace: Duration) -> Result<Vec<u64>> {
        self.inner.fail_stale_trials(study_id, grace)
    }
}

fn quick_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2.0,
    }
}

#[allow(clippy::unwrap_used)]
fn study(storage: Arc<Faulty>, retry: RetryPolicy, heartbeat: Option<Heartbeat>) -> Study {
    let mut b = Study::builder()
        .name("faults")
        .seed(3)
        .shared_storage(storage)
        .retry(retry);
    if let Some(hb) = heartbeat {
        b = b.heartbeat(hb);
    }
    b.build().unwrap()
}

fn faulty(faults: Faults) -> Arc<Faulty> {
    Arc::new(Faulty {
        inner: InMemoryStorage::new(),
        faults,
    })
}

#[test]
fn a_failing_tell_is_retried_until_it_lands() {
    let storage = faulty(Faults {
        finish_fails_before: AtomicU32::new(3),
        ..Faults::default()
    });
    let s = study(storage.clone(), quick_retry(5), None);
    s.optimize(1, None, |t| Ok(t.suggest_float("x", 0.0, 1.0)?))
        .unwrap();
    let trials = s.trials().unwrap();
    assert_eq!(trials.len(), 1);
    assert_eq!(trials[0].state, TrialState::Complete);
    assert_eq!(storage.faults.finish_calls.load(Ordering::SeqCst), 4);
}

#[test]
fn a_tell_whose_answer_was_lost_is_not_an_error() {
    // The first finish reaches the storage but its answer is lost; the retry finds the
    // trial already finished with this very result.
    let storage = faulty(Faults {
        finish_fails_after: AtomicU32::new(1),
        ..Faults::default()
    });
    let s = study(storage.clone(), quick_retry(3), None);
    let t = s.ask().unwrap();
    let done = s.tell(t, Ok(2.5)).unwrap();
    assert_eq!(done.state, TrialState::Complete);
    assert_eq!(done.value, Some(2.5));
    assert_eq!(storage.faults.finish_calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_tell_that_keeps_failing_is_a_typed_error() {
    let storage = faulty(Faults {
        finish_fails_before: AtomicU32::new(u32::MAX),
        ..Faults::default()
    });
    let s = study(storage.clone(), quick_retry(4), None);
    let err = s
        .optimize(3, None, |t| Ok(t.suggest_float("x", 0.0, 1.0)?))
        .unwrap_err();
    match err {
        TuningError::TellFailed {
            attempts, source, ..
        } => {
            assert_eq!(attempts, 4);
            assert!(matches!(*source, TuningError::Io { .. }));
        }
        other => panic!("expected TellFailed, got {other}"),
    }
    // The study stopped at the first lost result instead of running on.
    assert_eq!(storage.faults.finish_calls.load(Ordering::SeqCst), 4);
    assert_eq!(s.trials().unwrap().len(), 1);
}

#[test]
fn a_result_rejected_after_failed_heartbeats_is_reported_not_dropped() {
    let storage = faulty(Faults {
        heartbeat_fails: true,
        ..Faults::default()
    });
    let hb = Heartbeat {
        interval: Duration::from_millis(20),
        grace_period: Duration::from_millis(50),
    };
    let s = study(storage.clone(), quick_retry(3), Some(hb));
    let sweeper = storage.clone();
    let err = s
        .optimize(1, None, |t| {
            let x = t.suggest_float("x", 0.0, 1.0)?;
            // Our heartbeats never land, so another worker's sweep fails the trial.
            std::thread::sleep(Duration::from_millis(150));
            let swept = sweeper.fail_stale_trials(0, hb.grace_period).unwrap();
            assert_eq!(swept, vec![t.id()]);
            Ok(x)
        })
        .unwrap_err();
    match err {
        TuningError::TrialReaped {
            state,
            result,
            heartbeat_error,
            ..
        } => {
            assert_eq!(state, TrialState::Fail);
            assert!(result.starts_with("value "), "{result}");
            assert!(heartbeat_error.unwrap().contains("injected fault"));
        }
        other => panic!("expected TrialReaped, got {other}"),
    }
    // Failed beats were retried, not given up after the first.
    assert!(storage.faults.heartbeat_calls.load(Ordering::SeqCst) > 1);
}

#[test]
fn a_bad_retry_policy_is_refused() {
    let err = Study::builder()
        .retry(RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        TuningError::InvalidSetting { name: "retry", .. }
    ));
}
