//! Warm starts are exact: a state rebuilt from the last
//! `FeatureSpec::warmup_span` of a machine's stored telemetry gives, bit for
//! bit, the rows (and admissions and warm flags) of a state that saw the
//! whole history; and no state outgrows `FeaturePlan::max_state_bytes`.

use std::sync::Arc;

use proptest::prelude::*;
use vigil_features::{
    Aggregation, FeaturePlan, FeatureSpec, FeaturesError, MachineFeatureState, OnlineFeatures,
    Pushed, TelemetryFrame, WindowLength,
};

const MS: i64 = 1_000;

fn spec() -> FeatureSpec {
    let (short, mid, long) = (
        WindowLength::seconds(3),
        WindowLength::seconds(7),
        WindowLength::seconds(20),
    );
    FeatureSpec::new(["a", "b"])
        .with_raw("a")
        .with_rolling("a", Aggregation::Mean, short)
        .with_rolling("a", Aggregation::Std, short)
        .with_rolling("a", Aggregation::Min, mid)
        .with_rolling("a", Aggregation::Max, mid)
        .with_rolling("a", Aggregation::Sum, long)
        .with_rolling("b", Aggregation::Count, mid)
        .with_rolling("b", Aggregation::Var, long)
        .with_zscore("b", long)
        .with_diff("a")
        .with_pct_change("b")
}

/// Gaps (µs): retries, too close, ordinary, and outages longer than every window.
fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(0i64),
        1 => 1i64..1_000 * MS,
        8 => (1_000i64..3_000).prop_map(|ms| ms * MS),
        1 => (25_000i64..70_000).prop_map(|ms| ms * MS),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e3f64..1e3,
        1 => Just(f64::NAN),
        2 => Just(7.25f64),
        1 => Just(0.0f64),
        1 => Just(-0.0f64),
        1 => 1e6f64..1e6 + 1.0,
        1 => Just(f64::INFINITY),
    ]
}

/// `(time, [a, b])` samples of one machine from a start time and gaps.
fn stream() -> impl Strategy<Value = Vec<(i64, [f64; 2])>> {
    (
        -100_000_000i64..100_000_000,
        proptest::collection::vec((gap(), value(), value()), 2..500),
    )
        .prop_map(|(start, steps)| {
            let mut t = start;
            steps
                .into_iter()
                .map(|(dt, a, b)| {
                    t += dt;
                    (t, [a, b])
                })
                .collect()
        })
}

/// A push's outcome in comparable form: the admission and warm flag with the
/// row's bits, or the error's kind.
fn outcome(result: Result<Pushed, FeaturesError>, row: &[f64]) -> String {
    match result {
        Ok(p) => format!(
            "{p:?} {:?}",
            row.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        ),
        Err(e) => format!("error {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn a_warm_start_from_the_last_span_is_exact(samples in stream(), split in 0.05f64..0.95) {
        let plan = Arc::new(FeaturePlan::compile(&spec()).unwrap());
        let bound = plan.max_state_bytes();
        let k = ((samples.len() as f64 * split) as usize).clamp(1, samples.len() - 1);
        let (history, next) = samples.split_at(k);

        // The service that never stopped; it stores what it accepted.
        let mut full = MachineFeatureState::new(Arc::clone(&plan));
        let mut row = vec![0.0; plan.n_features()];
        let mut stored = Vec::new();
        for (t, v) in history {
            if full.push("m", *t, v, &mut row).is_ok() {
                stored.push((*t, *v));
            }
            prop_assert!(full.memory_bytes() <= bound);
        }
        // What a warm start replays: the samples after the cut and the last
        // admitted one at or before it (the first of its time).
        let last = full.last_time().unwrap();
        let cut = last - spec().warmup_span().as_micros();
        let before = stored.iter().rev().map(|(t, _)| *t).find(|t| *t <= cut);
        let recent: Vec<(i64, &[f64])> = stored
            .iter()
            .filter(|(t, _)| *t > cut || Some(*t) == before)
            .map(|(t, v)| (*t, &v[..]))
            .collect();
        let mut restored =
            MachineFeatureState::restore(Arc::clone(&plan), "m", full.first_time(), recent).unwrap();
        prop_assert_eq!(restored.last_row().map(|r| r.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
            full.last_row().map(|r| r.iter().map(|v| v.to_bits()).collect::<Vec<_>>()));

        // The frame path: everything stored, cut to the span inside.
        let frame = TelemetryFrame::new(
            &vec!["m"; stored.len()],
            stored.iter().map(|(t, _)| *t).collect(),
            vec![
                ("a".into(), stored.iter().map(|(_, v)| v[0]).collect()),
                ("b".into(), stored.iter().map(|(_, v)| v[1]).collect()),
            ],
            None,
            None,
        )
        .unwrap();
        let mut online = OnlineFeatures::from_plan(Arc::clone(&plan));
        prop_assert_eq!(online.restore_from(&frame).unwrap(), 1);

        let mut other = vec![0.0; plan.n_features()];
        for (i, (t, v)) in next.iter().enumerate() {
            let expected = outcome(full.push("m", *t, v, &mut row), &row);
            let got = outcome(restored.push("m", *t, v, &mut other), &other);
            prop_assert_eq!(&got, &expected, "sample {} after the restart (restore)", i);
            let got = outcome(online.push_into("m", *t, v, &mut other), &other);
            prop_assert_eq!(&got, &expected, "sample {} after the restart (restore_from)", i);
            prop_assert!(full.memory_bytes() <= bound);
        }
    }
}

#[test]
fn after_an_outage_the_replay_needs_the_sample_before_the_span() {
    // The last sample comes after an outage longer than the span: its row's
    // diff needs the sample before. Without it a retry of the last sample would
    // get another answer than from a service that never stopped.
    let plan = Arc::new(FeaturePlan::compile(&spec()).unwrap());
    let outage = spec().warmup_span().as_micros() + 1;
    let samples = [(0, [1.0, 2.0]), (outage, [4.0, 8.0])];
    let mut full = MachineFeatureState::new(Arc::clone(&plan));
    let mut row = vec![0.0; plan.n_features()];
    for (t, v) in &samples {
        full.push("m", *t, v, &mut row).unwrap();
    }
    let replay = |from: usize| {
        let samples = samples[from..].iter().map(|(t, v)| (*t, &v[..]));
        let mut state =
            MachineFeatureState::restore(Arc::clone(&plan), "m", Some(0), samples).unwrap();
        let mut again = vec![0.0; plan.n_features()];
        outcome(state.push("m", outage, &[4.0, 8.0], &mut again), &again)
    };
    let expected = outcome(full.push("m", outage, &[4.0, 8.0], &mut row), &row);
    assert_eq!(replay(0), expected);
    assert_ne!(replay(1), expected);
    // restore_from picks the sample before the span by itself.
    let frame = TelemetryFrame::new(
        &["m", "m"],
        vec![0, outage],
        vec![("a".into(), vec![1.0, 4.0]), ("b".into(), vec![2.0, 8.0])],
        None,
        None,
    )
    .unwrap();
    let mut online = OnlineFeatures::from_plan(Arc::clone(&plan));
    online.restore_from(&frame).unwrap();
    let bits = |r: &[f64]| r.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let restored = online.machine("m").unwrap().last_row().map(bits);
    assert_eq!(restored, Some(bits(&row)));
}
