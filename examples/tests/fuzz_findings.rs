//! What examples/fuzz found in the scoring core (see examples/fuzz/README.md),
//! kept as minimal reproductions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use fixtures::ModelSize;
use vigil_examples::scoring::{LoadedModel, Sample, ScoringCore, ScoringError, ScoringPolicy};
use vigil_features::{FeatureSpec, WindowLength};

fn model_of(spec: FeatureSpec) -> LoadedModel {
    let sim = fixtures::simulation(2, 0.5, 5);
    fixtures::model_for(&sim, &spec, ModelSize::TINY)
}

fn sample(machine: &str, time: i64) -> Sample {
    Sample {
        machine_id: machine.into(),
        time,
        values: vec![70.0, 0.5, 1500.0, 12.0],
    }
}

const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

/// Finding 1 (fixed by 5a312a5): two samples of one machine more than 2^63 µs
/// apart (any i64 time is a valid `Sample::time`; `now` = i64::MAX lets both
/// in) overflowed the warm flag's time difference.
#[test]
fn samples_far_apart_give_a_warm_flag_not_an_overflow() {
    let policy = ScoringPolicy {
        allow_new_machines: true,
        ..ScoringPolicy::default()
    };
    let core = ScoringCore::new(model_of(FeatureSpec::default()), policy).unwrap();
    let first = core
        .score(&[sample("a", i64::MIN / 2 - 1)], i64::MAX)
        .unwrap();
    assert!(!first.predictions[0].warm);
    let later = core
        .score(&[sample("a", i64::MAX / 2 + 1)], i64::MAX)
        .unwrap();
    assert!(later.predictions[0].warm);
    assert_eq!(core.machine_counts(), (1, 1));
}

/// Finding 2 (fixed by f41663d): a sample closer than the model's spec allows
/// is a typed refusal with nothing applied.
#[test]
fn a_sample_closer_than_the_specs_spacing_is_refused_before_anything_applies() {
    let spec = FeatureSpec::default().with_min_spacing(WindowLength::seconds(5));
    let policy = ScoringPolicy {
        max_machines: 2,
        allow_new_machines: true,
        ..ScoringPolicy::default()
    };
    let core = ScoringCore::new(model_of(spec), policy).unwrap();
    let now = T0 + 3_600_000_000;
    let refused = core.score(
        &[
            sample("a", T0),
            sample("a", T0 + 2_000_000),
            sample("b", T0),
        ],
        now,
    );
    let error = refused.map(|_| ()).unwrap_err();
    assert!(
        matches!(error, ScoringError::TooClose { index: 1, .. }),
        "refused with {error:?}"
    );
    assert_eq!(core.machine_counts().0, 0);
    core.score(&[sample("c", T0), sample("d", T0)], now)
        .unwrap();
}
