//! Study behaviour end to end on the in-memory storage.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_tuning::{
    Direction, InMemoryStorage, ObjectiveError, RandomSampler, Storage, Study, TrialState,
    TuningError,
};

#[allow(clippy::unwrap_used)]
fn quadratic(study: &Study, n: usize) {
    study
        .optimize(n, None, |t| {
            let x = t.suggest_float("x", -10.0, 10.0)?;
            let y = t.suggest_float("y", -10.0, 10.0)?;
            Ok((x - 2.0).powi(2) + (y + 1.0).powi(2))
        })
        .unwrap();
}

#[test]
fn failures_do_not_stop_the_study() {
    let study = Study::builder().seed(1).build().unwrap();
    let calls = AtomicUsize::new(0);
    study
        .optimize(8, None, |t| {
            let x = t.suggest_float("x", 0.0, 1.0)?;
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(ObjectiveError::msg("training diverged")),
                1 => Ok(f64::NAN),
                2 => panic!("index out of bounds in the objective"),
                3 => Err(std::io::Error::other("disk full").into()),
                _ => Ok(x),
            }
        })
        .unwrap();
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 8);
    let states: Vec<TrialState> = trials.iter().map(|t| t.state).collect();
    assert_eq!(&states[..4], &[TrialState::Fail; 4]);
    assert!(states[4..].iter().all(|s| *s == TrialState::Complete));
    assert_eq!(trials[0].fail_reason.as_deref(), Some("training diverged"));
    assert!(trials[1].fail_reason.as_deref().unwrap().contains("NaN"));
    assert!(
        trials[2]
            .fail_reason
            .as_deref()
            .unwrap()
            .contains("panicked: index out of bounds")
    );
    assert_eq!(trials[3].fail_reason.as_deref(), Some("disk full"));
    // Failed trials keep their parameters but never become the best.
    assert!(trials[0].param("x").is_some());
    assert_eq!(study.best_trial().unwrap().state, TrialState::Complete);
}

#[test]
fn same_seed_same_trials_and_tpe_beats_random() {
    let a = Study::builder().seed(7).build().unwrap();
    let b = Study::builder().seed(7).build().unwrap();
    quadratic(&a, 40);
    quadratic(&b, 40);
    let pa: Vec<_> = a
        .trials()
        .unwrap()
        .iter()
        .map(|t| t.param_values())
        .collect();
    let pb: Vec<_> = b
        .trials()
        .unwrap()
        .iter()
        .map(|t| t.param_values())
        .collect();
    assert_eq!(pa, pb);

    // On a smooth bowl TPE should beat random search over a few seeds.
    let mut tpe_wins = 0;
    for seed in 0..5 {
        let tpe = Study::builder().seed(seed).build().unwrap();
        let rnd = Study::builder()
            .sampler(RandomSampler::new(seed))
            .build()
            .unwrap();
        quadratic(&tpe, 60);
        quadratic(&rnd, 60);
        if tpe.best_value().unwrap() < rnd.best_value().unwrap() {
            tpe_wins += 1;
        }
    }
    assert!(tpe_wins >= 4, "TPE won only {tpe_wins}/5");
}

#[test]
fn enqueued_trials_run_first_with_their_values() {
    let study = Study::builder()
        .direction(Direction::Maximize)
        .seed(3)
        .build()
        .unwrap();
    study
        .enqueue_trial([("n", 17.into()), ("kind", "b".into())])
        .unwrap();
    study.enqueue_trial([("n", 99_i64.into())]).unwrap();
    study
        .optimize(3, None, |t| {
            let n = t.suggest_int("n", 1, 20)?;
            let kind = t.suggest_categorical("kind", &["a", "b"])?;
            Ok(n as f64 + if kind == "b" { 0.5 } else { 0.0 })
        })
        .unwrap();
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 3);
    assert_eq!(trials[0].value, Some(17.5));
    // 99 is outside [1, 20]: that trial fails with a typed message, the study goes on.
    assert_eq!(trials[1].state, TrialState::Fail);
    assert!(
        trials[1]
            .fail_reason
            .as_deref()
            .unwrap()
            .contains("enqueued value 99")
    );
    assert_eq!(trials[2].state, TrialState::Complete);
    assert_eq!(study.best_value().unwrap(), 17.5);
}

#[test]
fn ask_tell_and_typed_errors() {
    let study = Study::builder().seed(5).build().unwrap();
    let mut t = study.ask().unwrap();
    let x = t.suggest_float("x", 0.0, 1.0).unwrap();
    // Same name, same distribution: same value.
    assert_eq!(t.suggest_float("x", 0.0, 1.0).unwrap(), x);
    assert!(matches!(
        t.suggest_float("x", 0.0, 2.0),
        Err(TuningError::IncompatibleDistribution { .. })
    ));
    assert!(matches!(
        t.suggest_int("x", 0, 2),
        Err(TuningError::IncompatibleDistribution { .. })
    ));
    assert!(matches!(
        t.suggest_int("n", 5, 1),
        Err(TuningError::LowAboveHigh { .. })
    ));
    assert!(matches!(
        t.suggest_float_log("lr", 0.0, 1.0),
        Err(TuningError::LogNonPositive { .. })
    ));
    assert!(matches!(
        t.suggest_int_step("k", 0, 10, 4),
        Err(TuningError::StepDoesNotDivide { .. })
    ));
    assert!(matches!(
        t.suggest_categorical::<&str>("c", &[]),
        Err(TuningError::EmptyCategorical { .. })
    ));
    let id = t.id();
    let done = study.tell(t, Ok(x)).unwrap();
    assert_eq!(done.state, TrialState::Complete);
    // Finished trials are immutable.
    assert!(matches!(
        study.tell_by_id(id, Ok(0.0)),
        Err(TuningError::TrialFinished { .. })
    ));
    assert!(matches!(
        study.tell_by_id(12345, Ok(0.0)),
        Err(TuningError::UnknownTrial(12345))
    ));
    // Across trials a name keeps its kind.
    let mut t2 = study.ask().unwrap();
    assert!(matches!(
        t2.suggest_categorical("x", &["a"]),
        Err(TuningError::IncompatibleDistribution { .. })
    ));
    // A numeric range may change between trials (as in Optuna).
    assert!(t2.suggest_float("x", 0.0, 5.0).is_ok());
    study.tell(t2, Err(ObjectiveError::Pruned)).unwrap();

    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    assert!(matches!(
        Study::load("nope", storage.clone()),
        Err(TuningError::StudyNotFound(n)) if n == "nope"
    ));
    let _s = Study::builder()
        .name("taken")
        .shared_storage(storage.clone())
        .build()
        .unwrap();
    assert!(matches!(
        Study::builder()
            .name("taken")
            .shared_storage(storage.clone())
            .build(),
        Err(TuningError::StudyExists(_))
    ));
    assert!(matches!(
        Study::builder()
            .name("taken")
            .direction(Direction::Maximize)
            .shared_storage(storage)
            .load_if_exists(true)
            .build(),
        Err(TuningError::DirectionMismatch { .. })
    ));
    let empty = Study::builder().build().unwrap();
    assert!(matches!(
        empty.best_trial(),
        Err(TuningError::NoCompletedTrial)
    ));
}

#[test]
fn callbacks_see_every_trial_and_can_stop() {
    let study = Study::builder().seed(2).build().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    study.add_callback(move |study, trial| {
        seen2.lock().unwrap().push((trial.number, trial.state));
        if trial.number == 6 {
            study.stop();
        }
    });
    quadratic(&study, 50);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[6], (6, TrialState::Complete));
}

#[test]
fn pruned_trials_take_their_last_value() {
    let study = Study::builder().seed(4).build().unwrap();
    study
        .optimize(12, None, |t| {
            let x = t.suggest_float("x", 0.0, 1.0)?;
            for step in 0..4 {
                t.report(step, x + step as f64)?;
                if t.should_prune()? {
                    return Err(ObjectiveError::Pruned);
                }
            }
            Ok(x + 3.0)
        })
        .unwrap();
    let trials = study.trials().unwrap();
    let pruned: Vec<_> = trials
        .iter()
        .filter(|t| t.state == TrialState::Pruned)
        .collect();
    assert!(
        !pruned.is_empty(),
        "MedianPruner should prune some of 12 trials"
    );
    for t in pruned {
        let last = *t.intermediate_values.values().last().unwrap();
        assert_eq!(t.value, Some(last));
    }
}

#[test]
fn parallel_trials_have_distinct_parameters() {
    let study = Study::builder().seed(11).build().unwrap();
    study
        .optimize_parallel(40, None, 4, |t| {
            let x = t.suggest_float("x", -5.0, 5.0)?;
            let n = t.suggest_int("n", 0, 1000)?;
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(x * x + (n as f64 - 500.0).abs() / 100.0)
        })
        .unwrap();
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 40);
    assert!(trials.iter().all(|t| t.state == TrialState::Complete));
    let numbers: HashSet<u64> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers.len(), 40);
    let xs: HashSet<u64> = trials
        .iter()
        .map(|t| t.param("x").unwrap().as_f64().unwrap().to_bits())
        .collect();
    assert_eq!(xs.len(), 40, "duplicate suggestions across parallel trials");
}

#[test]
fn exports_csv_and_json() {
    let study = Study::builder().name("export").seed(9).build().unwrap();
    study
        .optimize(3, None, |t| {
            let lr = t.suggest_float_log("lr", 1e-4, 1.0)?;
            let k = t.suggest_categorical("kernel", &["rbf", "linear"])?;
            if t.number() == 1 {
                return Err(ObjectiveError::msg("bad, with a comma"));
            }
            Ok(lr + if k == "rbf" { 1.0 } else { 0.0 })
        })
        .unwrap();
    let mut csv = Vec::new();
    study.write_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "number,state,value,datetime_start,datetime_complete,duration_secs,params_kernel,params_lr,fail_reason"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[1].starts_with("1,FAIL,,"));
    assert!(rows[1].ends_with("\"bad, with a comma\""));
    let mut json = Vec::new();
    study.write_json(&mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["study_name"], "export");
    assert_eq!(v["trials"].as_array().unwrap().len(), 3);
    assert_eq!(v["trials"][1]["state"], "Fail");
    let back: Vec<vigil_tuning::FrozenTrial> = serde_json::from_value(v["trials"].clone()).unwrap();
    assert_eq!(back[0].params, study.trials().unwrap()[0].params);
}

/// Two handles on one storage (two workers) run trials until the study holds
/// the cap: together exactly that many, numbered without gaps; an enqueued
/// trial counts toward the cap and is still run.
#[test]
#[allow(clippy::unwrap_used)]
fn workers_sharing_a_storage_stop_at_the_study_cap() {
    let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
    let open = || {
        Study::builder()
            .name("capped")
            .seed(3)
            .shared_storage(Arc::clone(&storage))
            .load_if_exists(true)
            .build()
            .unwrap()
    };
    let (a, b) = (open(), open());
    a.enqueue_trial([("x", 0.5.into())]).unwrap();
    let objective = |t: &mut vigil_tuning::Trial<'_>| -> vigil_tuning::ObjectiveResult {
        std::thread::sleep(std::time::Duration::from_millis(2));
        Ok(t.suggest_float("x", 0.0, 1.0)?)
    };
    let ran = std::thread::scope(|s| {
        let ha = s.spawn(|| a.optimize_until(7, None, objective).unwrap());
        let hb = s.spawn(|| b.optimize_until(7, None, objective).unwrap());
        ha.join().unwrap() + hb.join().unwrap()
    });
    assert_eq!(ran, 7);
    let trials = a.trials().unwrap();
    let numbers: Vec<u64> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..7).collect::<Vec<_>>());
    assert!(trials.iter().all(|t| t.state == TrialState::Complete));
    assert_eq!(trials[0].value, Some(0.5));
    // Full: nothing more starts, also for a larger enqueued backlog's absence.
    assert_eq!(a.optimize_until(7, None, objective).unwrap(), 0);
    assert!(a.ask_within(7).unwrap().is_none());
    // Enqueued trials beyond the cap are already counted and still claimed.
    b.enqueue_trial([("x", 0.25.into())]).unwrap();
    assert_eq!(b.optimize_until(7, None, objective).unwrap(), 1);
    assert_eq!(b.trials().unwrap().len(), 8);
}
