//! The scoring core on simulated telemetry: replay against the batch path,
//! the time policy, all-or-nothing batches, machine limits, model swaps and
//! warm restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
mod fixtures;

use fixtures::ModelSize;
use vigil_examples::bundle::failure_probability;
use vigil_examples::evaluation::first_deliveries;
use vigil_examples::modes::{ModeFit, fit_mode_model};
use vigil_examples::scoring::{
    LoadedModel, Sample, ScoringCore, ScoringError, ScoringPolicy, recent_history,
};
use vigil_features::{FeatureSpec, Simulation, TrainingSet};
use vigil_forest::RandomForestParams;
use vigil_metrics::{AlarmEpisode, EventParams, Smoothing, alarm_episodes, smooth_flags};

/// A small model trained on `sim` (the first day of three machines).
fn model_for(sim: &Simulation, spec: &FeatureSpec) -> LoadedModel {
    let size = ModelSize {
        rf_trees: 12,
        rf_depth: 10,
        if_trees: 25,
        seed: 3,
        threshold: 0.3,
    };
    let mut model = fixtures::model_for(sim, spec, size);
    model.version = "1".into();
    model
}

fn simulation(days: f64) -> Simulation {
    fixtures::simulation(3, days, 11)
}

/// Every row of the frame as a sample, in time order across machines (a
/// machine's duplicates keep their order).
fn samples_in_time_order(sim: &Simulation) -> Vec<(usize, Sample)> {
    let frame = &sim.frame;
    let machine_of = |r: usize| frame.machine_id_of(r).to_string();
    let mut rows: Vec<usize> = (0..frame.len()).collect();
    rows.sort_by_key(|&r| frame.time()[r]);
    let n_sensors = frame.sensor_names().len();
    rows.into_iter()
        .map(|r| {
            let sample = Sample {
                machine_id: machine_of(r),
                time: frame.time()[r],
                values: (0..n_sensors).map(|c| frame.sensor(c)[r]).collect(),
            };
            (r, sample)
        })
        .collect()
}

fn far_future() -> i64 {
    i64::MAX / 2
}

#[test]
fn replay_in_time_order_equals_the_batch_path_on_every_row() {
    let sim = simulation(2.0);
    let spec = FeatureSpec::default();
    let mut model = model_for(&sim, &spec);
    let set = TrainingSet::build(&sim.frame, &spec).unwrap();
    assert_eq!(set.len(), sim.frame.len());
    // With a failure-mode classifier: its probabilities are replayed too.
    let mode_params = RandomForestParams {
        n_estimators: 8,
        max_depth: Some(8),
        seed: 3,
        ..Default::default()
    };
    let ModeFit::Trained { model: modes, .. } = fit_mode_model(&mode_params, &set).unwrap() else {
        panic!("the simulation has failure modes")
    };
    let batch_modes = modes.forest.predict_proba(&set.features.values).unwrap();
    model.bundle.meta.failure_modes = modes.modes.clone();
    model.bundle.failure_modes = Some(*modes);
    model.bundle.check_consistent().unwrap();
    let batch = failure_probability(&model.bundle.random_forest, &set.features.values).unwrap();
    let iso = &model.bundle.isolation_forest;
    let batch_scores = iso.score_samples(&set.features.values).unwrap();
    let batch_flags = iso.is_anomaly(&set.features.values).unwrap();
    assert!(batch_flags.iter().any(|&f| f) && batch_flags.iter().any(|&f| !f));
    let missing_rows = (0..sim.frame.len())
        .filter(|&r| (0..4).any(|c| sim.frame.sensor(c)[r].is_nan()))
        .count();
    assert!(missing_rows > 0, "the simulation should have dropouts");

    let core = ScoringCore::new(model, ScoringPolicy::default()).unwrap();
    let samples = samples_in_time_order(&sim);
    let mut compared = 0;
    let mut named_modes = 0;
    // Batches of 1, 5 and 97 samples: the one-row and the batch paths.
    let mut rest = samples.as_slice();
    let mut sizes = [1, 5, 97].into_iter().cycle();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(sizes.next().unwrap().min(rest.len()));
        rest = tail;
        let batch_samples: Vec<Sample> = chunk.iter().map(|(_, s)| s.clone()).collect();
        let scored = core.score(&batch_samples, far_future()).unwrap();
        for ((row, sample), answer) in chunk.iter().zip(&scored.predictions) {
            let want = batch[*row];
            assert_eq!(
                answer.failure_probability.to_bits(),
                want.to_bits(),
                "row {row} ({} at {}): online {} vs batch {want}",
                sample.machine_id,
                sample.time,
                answer.failure_probability
            );
            assert_eq!(answer.anomaly_score, -batch_scores[*row], "row {row}");
            assert_eq!(answer.is_anomaly, batch_flags[*row], "row {row}");
            let online_modes = answer.failure_mode_probabilities.as_ref().unwrap();
            let bits = |v: &mut dyn Iterator<Item = f64>| v.map(f64::to_bits).collect::<Vec<_>>();
            assert_eq!(
                bits(&mut online_modes.iter().copied()),
                bits(&mut batch_modes.row(*row).iter().copied()),
                "row {row}: mode probabilities"
            );
            assert_eq!(answer.failure_mode.is_some(), answer.failure, "row {row}");
            named_modes += usize::from(answer.failure_mode.is_some());
            compared += 1;
        }
    }
    assert_eq!(compared, sim.frame.len());
    assert!(named_modes > 0, "no flagged sample named its mode");
}

/// With alarm smoothing, serve's per-machine alarms and episodes are the ones
/// evaluation computes from the batch path's flags (vigil-metrics'
/// `smooth_flags` and `alarm_episodes` on the rows serve scores as new).
#[test]
fn replayed_alarms_and_episodes_equal_the_evaluation_of_the_batch_path() {
    let sim = simulation(2.0);
    let spec = FeatureSpec::default();
    let mut model = model_for(&sim, &spec);
    let smoothing = Smoothing { k: 2, n: 4 };
    model.bundle.meta.alarm_smoothing = Some(smoothing);
    let set = TrainingSet::build(&sim.frame, &spec).unwrap();
    let batch = failure_probability(&model.bundle.random_forest, &set.features.values).unwrap();
    let threshold = model.bundle.meta.threshold;
    let rows = first_deliveries(&set.features);
    assert!(
        rows.len() < set.len(),
        "the simulation should deliver some samples twice"
    );
    let machine: Vec<u32> = rows.iter().map(|&r| set.features.machine[r]).collect();
    let time: Vec<i64> = rows.iter().map(|&r| set.features.time[r]).collect();
    let flags: Vec<bool> = rows.iter().map(|&r| batch[r] >= threshold).collect();
    let want_alarms = smooth_flags(&machine, &flags, smoothing).unwrap();
    let rules = EventParams {
        smoothing: Some(smoothing),
        ..EventParams::default()
    };
    let want_episodes = alarm_episodes(&machine, &time, &flags, &rules).unwrap();
    assert!(want_episodes.len() > 3, "{} episodes", want_episodes.len());
    let alarm_of: HashMap<(u32, i64), bool> = machine
        .iter()
        .zip(&time)
        .zip(&want_alarms)
        .map(|((&m, &t), &a)| ((m, t), a))
        .collect();

    let core = ScoringCore::new(model, ScoringPolicy::default()).unwrap();
    let ids = sim.frame.machine_ids().to_vec();
    let mut episodes: Vec<AlarmEpisode> = Vec::new();
    let mut open: HashMap<u32, usize> = HashMap::new();
    let samples = samples_in_time_order(&sim);
    let mut rest = samples.as_slice();
    let mut sizes = [1, 7, 64].into_iter().cycle();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(sizes.next().unwrap().min(rest.len()));
        rest = tail;
        let batch_samples: Vec<Sample> = chunk.iter().map(|(_, s)| s.clone()).collect();
        for answer in core
            .score(&batch_samples, far_future())
            .unwrap()
            .predictions
        {
            let m = ids.iter().position(|id| *id == answer.machine_id).unwrap() as u32;
            let status = answer.alarm.expect("a model with smoothing tracks alarms");
            assert_eq!(
                status.alarm,
                alarm_of[&(m, answer.time)],
                "{m} at {}",
                answer.time
            );
            if answer.retry {
                continue;
            }
            match status.episode {
                Some(e) if status.rang => {
                    assert_eq!((e.started, e.alarmed_samples), (answer.time, 1));
                    open.insert(m, episodes.len());
                    episodes.push(AlarmEpisode {
                        machine: m,
                        start: e.started,
                        end: e.last_alarm,
                        n_flagged: 1,
                    });
                }
                Some(e) => {
                    let ep = &mut episodes[open[&m]];
                    assert_eq!(ep.start, e.started);
                    ep.end = e.last_alarm;
                    ep.n_flagged = e.alarmed_samples as usize;
                }
                None => assert!(!status.alarm),
            }
        }
    }
    episodes.sort_by_key(|e| (e.machine, e.start));
    assert_eq!(episodes, want_episodes);
}

fn sample(machine: &str, t_seconds: i64, temperature: f64) -> Sample {
    Sample {
        machine_id: machine.to_string(),
        time: 1_767_225_600_000_000 + t_seconds * 1_000_000,
        values: vec![temperature, 0.5, 1500.0, 12.0],
    }
}

fn small_core(policy: ScoringPolicy) -> (ScoringCore, String) {
    let sim = simulation(1.0);
    let model = model_for(&sim, &FeatureSpec::default());
    let machine = model.bundle.meta.machines[0].clone();
    (ScoringCore::new(model, policy).unwrap(), machine)
}

#[test]
fn time_policy_retry_future_too_close_and_older() {
    let (core, m) = small_core(ScoringPolicy::default());
    let now = sample(&m, 3600, 0.0).time;
    let first = core
        .score(&[sample(&m, 0, 70.0), sample(&m, 10, 71.0)], now)
        .unwrap();
    // Same time again: a retry, same answer, state unchanged.
    let retry = core.score(&[sample(&m, 10, 99.0)], now).unwrap();
    assert!(retry.predictions[0].retry);
    assert_eq!(
        retry.predictions[0].failure_probability,
        first.predictions[1].failure_probability
    );
    let after = core.score(&[sample(&m, 20, 72.0)], now).unwrap();
    let fresh = small_core(ScoringPolicy::default()).0;
    let expected = fresh
        .score(
            &[
                sample(&m, 0, 70.0),
                sample(&m, 10, 71.0),
                sample(&m, 20, 72.0),
            ],
            now,
        )
        .unwrap();
    assert_eq!(after.predictions[0], expected.predictions[2]);

    let future = core
        .score(&[sample(&m, 3600 + 301, 70.0)], now)
        .unwrap_err();
    assert!(matches!(future, ScoringError::InFuture { .. }), "{future}");
    let mut half_second_later = sample(&m, 20, 70.0);
    half_second_later.time += 500_000;
    let close = core
        .score(&[sample(&m, 20, 70.0), half_second_later], now)
        .map(|_| ());
    assert!(
        matches!(close, Err(ScoringError::TooClose { .. })),
        "{close:?}"
    );
    let older = core.score(&[sample(&m, 5, 70.0)], now).unwrap_err();
    assert!(matches!(older, ScoringError::OutOfOrder { .. }), "{older}");
    assert!(older.to_string().contains("older"), "{older}");
}

#[test]
fn a_refused_batch_changes_nothing() {
    let (core, m) = small_core(ScoringPolicy::default());
    let (twin, _) = small_core(ScoringPolicy::default());
    let now = sample(&m, 3600, 0.0).time;
    core.score(&[sample(&m, 0, 70.0)], now).unwrap();
    twin.score(&[sample(&m, 0, 70.0)], now).unwrap();
    // The last sample is older than the first of the same batch: nothing applies.
    let refused = core.score(
        &[
            sample(&m, 10, 80.0),
            sample(&m, 20, 81.0),
            sample(&m, 15, 82.0),
        ],
        now,
    );
    assert!(
        matches!(refused, Err(ScoringError::OutOfOrder { index: 2, .. })),
        "{refused:?}"
    );
    let a = core.score(&[sample(&m, 10, 75.0)], now).unwrap();
    let b = twin.score(&[sample(&m, 10, 75.0)], now).unwrap();
    assert_eq!(a.predictions, b.predictions);
}

#[test]
fn machines_are_bounded_and_can_be_reset() {
    let policy = ScoringPolicy {
        allow_new_machines: true,
        max_machines: 3,
        ..ScoringPolicy::default()
    };
    let (core, _) = small_core(policy);
    let now = sample("x", 3600, 0.0).time;
    for id in ["a", "b", "c"] {
        core.score(&[sample(id, 0, 70.0)], now).unwrap();
    }
    let full = core.score(&[sample("d", 0, 70.0)], now).unwrap_err();
    assert!(
        matches!(full, ScoringError::TooManyMachines { limit: 3, .. }),
        "{full}"
    );
    assert_eq!(core.machine_counts().0, 3);
    assert!(core.reset_machine("b"));
    assert!(!core.reset_machine("b"));
    core.score(&[sample("d", 0, 70.0)], now).unwrap();
    // A reset machine starts afresh: an older time is accepted again.
    core.score(&[sample("b", -100, 70.0)], now).unwrap_err(); // full again
    assert!(core.reset_machine("d"));
    core.score(&[sample("b", -100, 70.0)], now).unwrap();

    let (strict, known) = small_core(ScoringPolicy::default());
    let unknown = strict.score(&[sample("nope", 0, 70.0)], now).unwrap_err();
    assert!(
        matches!(unknown, ScoringError::UnknownMachine { .. }),
        "{unknown}"
    );
    strict.score(&[sample(&known, 0, 70.0)], now).unwrap();
}

#[test]
fn bad_shapes_are_refused() {
    let (core, m) = small_core(ScoringPolicy {
        max_batch_samples: 2,
        ..ScoringPolicy::default()
    });
    let now = sample(&m, 3600, 0.0).time;
    assert!(matches!(
        core.score(&[], now),
        Err(ScoringError::EmptyBatch)
    ));
    let three = [sample(&m, 0, 1.0), sample(&m, 10, 1.0), sample(&m, 20, 1.0)];
    assert!(matches!(
        core.score(&three, now),
        Err(ScoringError::TooManySamples { .. })
    ));
    let mut narrow = sample(&m, 0, 1.0);
    narrow.values.pop();
    assert!(matches!(
        core.score(&[narrow], now),
        Err(ScoringError::WrongWidth { .. })
    ));
}

#[test]
fn a_model_swap_keeps_state_for_the_same_spec_and_resets_it_otherwise() {
    let sim = simulation(1.0);
    let spec = FeatureSpec::default();
    let core = ScoringCore::new(model_for(&sim, &spec), ScoringPolicy::default()).unwrap();
    let m = sim.frame.machine_ids()[0].clone();
    let now = sample(&m, 3600, 0.0).time;
    core.score(&[sample(&m, 0, 70.0)], now).unwrap();
    let mut same = model_for(&sim, &spec);
    same.version = "2".into();
    assert!(!core.replace_model(same).unwrap());
    assert_eq!(core.machine_counts().0, 1);
    let answer = core.score(&[sample(&m, 10, 70.0)], now).unwrap();
    assert_eq!(answer.model.version, "2");

    let mut other_spec = spec.clone();
    other_spec.features.truncate(10);
    let mut other = model_for(&sim, &other_spec);
    other.version = "3".into();
    assert!(core.replace_model(other).unwrap());
    assert_eq!(core.machine_counts().0, 0);
    // Older than the state before the swap: fine, the state was reset.
    let answer = core.score(&[sample(&m, 5, 70.0)], now).unwrap();
    assert_eq!(answer.model.version, "3");
    assert!(!answer.predictions[0].warm);
}

#[test]
fn concurrent_batches_during_swaps_each_see_one_version() {
    let sim = simulation(1.0);
    let spec = FeatureSpec::default();
    let mut short_spec = spec.clone();
    short_spec.features.truncate(10);
    // Alternate between two specs: each swap resets the machines' state, and a
    // batch must never see one version's forests with the other's features
    // (an internal error, which the workers' unwrap() turns into a failure).
    let versions: Vec<LoadedModel> = (2..20)
        .map(|v| {
            let mut next = model_for(&sim, if v % 2 == 0 { &short_spec } else { &spec });
            next.version = v.to_string();
            next
        })
        .collect();
    let policy = ScoringPolicy {
        allow_new_machines: true,
        ..ScoringPolicy::default()
    };
    let core = Arc::new(ScoringCore::new(model_for(&sim, &spec), policy).unwrap());
    let swapping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let now = Utc::now().timestamp_micros();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (core, swapping) = (Arc::clone(&core), Arc::clone(&swapping));
            std::thread::spawn(move || {
                let mut batches = 0;
                let mut seen = std::collections::BTreeSet::new();
                while swapping.load(std::sync::atomic::Ordering::SeqCst) {
                    let s = Sample {
                        machine_id: format!("w{w}"),
                        time: now - 10_000_000_000 + batches * 10_000_000,
                        values: vec![70.0, 0.5, 1500.0, 12.0],
                    };
                    let next = Sample {
                        time: s.time + 5_000_000,
                        ..s.clone()
                    };
                    let batch = core.score(&[s, next], far_future()).unwrap();
                    assert_eq!(batch.predictions.len(), 2);
                    seen.insert(batch.model.version.clone());
                    batches += 1;
                }
                seen.len()
            })
        })
        .collect();
    for next in versions {
        core.replace_model(next).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    swapping.store(false, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        let versions_seen = w.join().unwrap();
        assert!(
            versions_seen >= 2,
            "a worker saw {versions_seen} version(s) while swapping"
        );
    }
}

#[test]
fn a_warm_start_from_recorded_telemetry_equals_a_service_that_never_stopped() {
    let sim = simulation(2.0);
    let spec = FeatureSpec::default();
    let samples = samples_in_time_order(&sim);
    let (history, live) = samples.split_at(samples.len() * 3 / 4);
    let never_stopped = ScoringCore::new(model_for(&sim, &spec), ScoringPolicy::default()).unwrap();
    for chunk in history.chunks(500) {
        let chunk: Vec<Sample> = chunk.iter().map(|(_, s)| s.clone()).collect();
        never_stopped.score(&chunk, far_future()).unwrap();
    }
    // The restarted service reads back only the recent history it needs.
    let restarted = ScoringCore::new(model_for(&sim, &spec), ScoringPolicy::default()).unwrap();
    let mut seen: Vec<usize> = history.iter().map(|(r, _)| *r).collect();
    seen.sort_unstable(); // the frame's own (machine, time) order
    let stored = sim.frame.select_rows(&seen);
    let recent = recent_history(&stored, spec.warmup_span().as_micros());
    let taken = restarted.warm_from(&recent).unwrap();
    assert!(taken > 0 && taken < history.len());
    for chunk in live.chunks(50) {
        let chunk: Vec<Sample> = chunk.iter().map(|(_, s)| s.clone()).collect();
        let a = never_stopped.score(&chunk, far_future()).unwrap();
        let b = restarted.score(&chunk, far_future()).unwrap();
        for (x, y) in a.predictions.iter().zip(&b.predictions) {
            assert_eq!(
                x.failure_probability.to_bits(),
                y.failure_probability.to_bits(),
                "{x:?} vs {y:?}"
            );
            assert_eq!(x.anomaly_score.to_bits(), y.anomaly_score.to_bits());
            assert_eq!(x.warm, y.warm);
        }
    }
}

/// `"explain"`: base value plus every contribution is the served failure
/// probability; the top k are the first k of the full list; explaining
/// changes no answer, and a refused explanation request applies nothing
/// (the explaining service answers as one that never saw it).
#[test]
fn explanations_add_up_to_the_served_probability_and_refusals_change_nothing() {
    let sim = simulation(1.0);
    let spec = FeatureSpec::default();
    let model = model_for(&sim, &spec);
    let n_features = model.bundle.meta.feature_names.len();
    let policy = ScoringPolicy {
        max_explained_samples: 40,
        ..ScoringPolicy::default()
    };
    let core = ScoringCore::new(model, policy.clone()).unwrap();
    let twin = ScoringCore::new(model_for(&sim, &spec), ScoringPolicy::default()).unwrap();
    let top3 = ScoringCore::new(model_for(&sim, &spec), policy).unwrap();
    let samples: Vec<Sample> = samples_in_time_order(&sim)
        .into_iter()
        .map(|(_, s)| s)
        .take(600)
        .collect();
    for (k, count) in [(0, 1), (n_features + 1, 1), (3, 41)] {
        let refused = core.score_explained(&samples[..count], far_future(), Some(k));
        assert!(
            matches!(
                refused,
                Err(ScoringError::ExplainCount { .. } | ScoringError::TooManyExplained { .. })
            ),
            "explain {k} over {count} samples: {refused:?}"
        );
    }
    let mut explained_rows = 0;
    let mut offset = 0;
    // Chunks of 40 (the forests' batch path) and 3 (the one-row path).
    for size in [40, 3].into_iter().cycle() {
        let chunk = &samples[offset..(offset + size).min(samples.len())];
        offset += chunk.len();
        let full = core
            .score_explained(chunk, far_future(), Some(n_features))
            .unwrap();
        let plain = twin.score(chunk, far_future()).unwrap();
        for (e, p) in full.predictions.iter().zip(&plain.predictions) {
            assert_eq!(
                e.failure_probability.to_bits(),
                p.failure_probability.to_bits()
            );
            assert!(p.explanation.is_none());
            let x = e.explanation.as_ref().unwrap();
            assert_eq!(x.contributions.len(), n_features);
            let total: f64 =
                x.base_value + x.contributions.iter().map(|c| c.contribution).sum::<f64>();
            assert!(
                (total - e.failure_probability).abs() < 1e-9,
                "{} at {}: {total} vs {}",
                e.machine_id,
                e.time,
                e.failure_probability
            );
            let magnitudes: Vec<f64> = x
                .contributions
                .iter()
                .map(|c| c.contribution.abs())
                .collect();
            assert!(magnitudes.windows(2).all(|w| w[0] >= w[1]));
            explained_rows += 1;
        }
        // A third service asked for the top 3 only: the first 3 of the full list.
        let top = top3.score_explained(chunk, far_future(), Some(3)).unwrap();
        for (t, f) in top.predictions.iter().zip(&full.predictions) {
            let (t, f) = (
                t.explanation.as_ref().unwrap(),
                f.explanation.as_ref().unwrap(),
            );
            assert_eq!(t.contributions[..], f.contributions[..3]);
            assert_eq!(t.base_value, f.base_value);
        }
        if offset == samples.len() {
            break;
        }
    }
    assert_eq!(explained_rows, samples.len());
}
