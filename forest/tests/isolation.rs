//! Isolation Forest behaviour: scikit-learn's conventions, anomaly detection,
//! constant features, errors and determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Lcg;
use ndarray::{Array2, array};
use vigil_forest::{
    Contamination, ForestError, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples,
    Samples,
};

/// Gaussian-ish blob of inliers with a few far outliers at the end.
fn blob(rows: usize, features: usize, outliers: usize, seed: u64) -> Array2<f64> {
    let mut rng = Lcg(seed);
    Array2::from_shape_fn((rows + outliers, features), |(r, _)| {
        let v = (0..4).map(|_| rng.next_f64()).sum::<f64>() - 2.0;
        if r >= rows { 6.0 + v } else { v }
    })
}

/// A forest for the scoring-path tests. With the default ψ = 256 its trees are at
/// most 8 deep and are scored in heap order (rows up to 64 wide); 1000 samples
/// grow deeper trees, scored by walking nodes.
fn scoring_forest(
    x: &Array2<f64>,
    n_estimators: usize,
    max_samples: Option<MaxSamples>,
    seed: u64,
) -> IsolationForest {
    IsolationForestParams {
        n_estimators,
        max_samples,
        seed,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap()
}

/// `iso`'s batch scores of `x`, after checking each against the one-row path bit
/// for bit.
fn batch_scores_as_one_row_scores(
    iso: &IsolationForest,
    x: &Array2<f64>,
    context: &str,
) -> Vec<f64> {
    let s = iso.score_samples(x.view()).unwrap();
    for (r, row) in x.rows().into_iter().enumerate() {
        let one = iso.score_row(row.as_slice().unwrap()).unwrap();
        assert_eq!(s[r].to_bits(), one.to_bits(), "{context}, row {r}");
    }
    s.to_vec()
}

#[test]
fn outliers_score_lower_and_are_flagged() {
    let x = blob(2000, 5, 20, 1);
    let iso = IsolationForestParams {
        seed: 1,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap();
    let s = iso.score_samples(x.view()).unwrap();
    assert!(s.iter().all(|&v| (-1.0..0.0).contains(&v)));
    let inlier_mean = s.iter().take(2000).sum::<f64>() / 2000.0;
    let outlier_max = s.iter().skip(2000).copied().fold(f64::MIN, f64::max);
    assert!(
        outlier_max < inlier_mean - 0.15,
        "outliers {outlier_max}, inliers {inlier_mean}"
    );
    // 'auto': offset -0.5, decision = score + 0.5, predict -1 below 0.
    assert_eq!(iso.offset(), -0.5);
    let d = iso.decision_function(x.view()).unwrap();
    assert!(d.iter().zip(&s).all(|(d, s)| (d - (s + 0.5)).abs() < 1e-15));
    let p = iso.predict(x.view()).unwrap();
    assert!(
        p.iter()
            .zip(&d)
            .all(|(&p, &d)| p == if d < 0.0 { -1 } else { 1 })
    );
    assert!(p.iter().skip(2000).all(|&v| v == -1));
    assert_eq!(
        iso.is_anomaly(x.view())
            .unwrap()
            .iter()
            .filter(|a| **a)
            .count(),
        p.iter().filter(|&&v| v == -1).count()
    );
    assert_eq!(iso.score_row(x.row(5).as_slice().unwrap()).unwrap(), s[5]);
}

#[test]
fn contamination_fraction_flags_that_share_of_training_rows() {
    let x = blob(3000, 4, 0, 2);
    let iso = IsolationForestParams {
        contamination: Contamination::Fraction(0.1),
        seed: 2,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap();
    let flagged = iso
        .predict(x.view())
        .unwrap()
        .iter()
        .filter(|&&v| v == -1)
        .count();
    assert!((295..=305).contains(&flagged), "{flagged}");
}

#[test]
fn trees_respect_the_depth_limit_and_sample_size() {
    let x = blob(5000, 3, 0, 3);
    let iso = IsolationForestParams {
        max_samples: Some(MaxSamples::Count(64)),
        seed: 3,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap();
    assert_eq!(iso.max_samples(), 64);
    // With ψ = 64, paths are at most ceil(log2 64) = 6 plus c(leaf size); score bounds follow.
    let s = iso.score_samples(x.view()).unwrap();
    assert!(s.iter().all(|&v| v > -1.0 && v < -0.2));
    let small = blob(10, 2, 0, 4);
    assert_eq!(
        IsolationForestParams::default()
            .fit(small.view())
            .unwrap()
            .max_samples(),
        10
    );
}

#[test]
fn constant_features_do_not_blunt_detection() {
    // One informative column among 40 constant ones: splits must all use it.
    let mut x = Array2::from_elem((1000, 41), 3.0);
    let mut rng = Lcg(5);
    for r in 0..1000 {
        x[[r, 0]] = rng.next_f64();
    }
    x[[999, 0]] = 50.0;
    let iso = IsolationForestParams {
        seed: 5,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap();
    let s = iso.score_samples(x.view()).unwrap();
    let only = x.column(0).to_owned().insert_axis(ndarray::Axis(1));
    let reference = IsolationForestParams {
        seed: 5,
        ..Default::default()
    }
    .fit(only.view())
    .unwrap()
    .score_samples(only.view())
    .unwrap();
    // Same quality as on the informative column alone.
    assert!(
        (s[999] - reference[999]).abs() < 0.05,
        "{} vs {}",
        s[999],
        reference[999]
    );
    assert!(s[999] < -0.7);
}

#[test]
fn missing_values_are_scored() {
    let mut x = blob(500, 3, 0, 6);
    for r in (0..500).step_by(5) {
        x[[r, 1]] = f64::NAN;
    }
    let iso = IsolationForestParams {
        seed: 6,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap();
    let s = iso.score_samples(x.view()).unwrap();
    assert!(s.iter().all(|v| v.is_finite() && (-1.0..0.0).contains(v)));
    assert!(
        iso.score_row(&[f64::NAN, f64::NAN, f64::NAN])
            .unwrap()
            .is_finite()
    );
}

#[test]
fn same_seed_same_model_on_one_and_two_threads() {
    let x = blob(3000, 6, 10, 7);
    let params = IsolationForestParams {
        n_estimators: 40,
        max_features: MaxFeatures::Fraction(0.5),
        bootstrap: true,
        seed: 9,
        ..Default::default()
    };
    let fit_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let m = params.fit(x.view()).unwrap();
            (m.to_bytes(), m.score_samples(x.view()).unwrap())
        })
    };
    assert_eq!(fit_on(1), fit_on(2));
}

#[test]
fn bad_input_gives_typed_errors() {
    let x = array![[1.0, 2.0], [3.0, 4.0]];
    let bad = [
        (
            "n_estimators",
            IsolationForestParams {
                n_estimators: 0,
                ..Default::default()
            },
        ),
        (
            "contamination",
            IsolationForestParams {
                contamination: Contamination::Fraction(0.0),
                ..Default::default()
            },
        ),
        (
            "contamination",
            IsolationForestParams {
                contamination: Contamination::Fraction(0.6),
                ..Default::default()
            },
        ),
        (
            "contamination",
            IsolationForestParams {
                contamination: Contamination::Fraction(f64::NAN),
                ..Default::default()
            },
        ),
        (
            "max_features",
            IsolationForestParams {
                max_features: MaxFeatures::Count(0),
                ..Default::default()
            },
        ),
        (
            "max_samples",
            IsolationForestParams {
                max_samples: Some(MaxSamples::Count(0)),
                ..Default::default()
            },
        ),
        (
            "max_samples",
            IsolationForestParams {
                max_samples: Some(MaxSamples::Fraction(2.0)),
                ..Default::default()
            },
        ),
    ];
    for (name, params) in bad {
        match params.fit(x.view()) {
            Err(ForestError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let p = IsolationForestParams::default();
    assert!(matches!(
        p.fit(Array2::<f64>::zeros((0, 3)).view()),
        Err(ForestError::EmptyData { .. })
    ));
    let inf = array![[1.0, f64::INFINITY]];
    assert!(matches!(
        p.fit(inf.view()),
        Err(ForestError::NonFiniteFeature {
            row: 0,
            column: 1,
            ..
        })
    ));
    let iso = p.fit(x.view()).unwrap();
    assert!(matches!(
        iso.score_samples(array![[1.0]].view()),
        Err(ForestError::FeatureCountMismatch {
            expected: 2,
            found: 1
        })
    ));
    assert!(matches!(
        iso.score_row(&[1.0, 2.0, 3.0]),
        Err(ForestError::FeatureCountMismatch { .. })
    ));
}

#[test]
fn infinities_at_scoring_are_named_on_every_scoring_path() {
    // The heap walk finds infinities while scoring, the node walk before it; both
    // must name the first one, wherever it is in a large batch, in contiguous and
    // strided inputs, and whatever the NaN around it.
    for max_samples in [None, Some(MaxSamples::Count(1000))] {
        let x = blob(1500, 5, 10, 7);
        let iso = scoring_forest(&x, 10, max_samples, 1);
        let mut big = blob(20_000, 5, 10, 9);
        big.iter_mut().step_by(17).for_each(|v| *v = f64::NAN);
        for (row, column, value) in [
            (0, 0, f64::INFINITY),
            (19_999, 2, f64::NEG_INFINITY),
            (12_345, 2, f64::INFINITY),
        ] {
            let mut bad = big.clone();
            bad[[row, column]] = value;
            // A later infinity too: the first one is named.
            bad[[19_999, 3]] = f64::INFINITY;
            let want_named = |r: Result<_, ForestError>, name: Option<&str>| match r {
                Err(ForestError::NonFiniteFeature {
                    row: r,
                    column: c,
                    feature,
                    value: v,
                }) => assert!(
                    (r, c) == (row, column) && v == value && feature.as_deref() == name,
                    "{max_samples:?}: got ({r}, {c}, {feature:?}, {v}), want ({row}, {column}, {name:?}, {value})"
                ),
                other => panic!("{max_samples:?}: {:?}", other.map(|_| ())),
            };
            let want = |r: Result<_, ForestError>| want_named(r, None);
            want(iso.score_samples(bad.view()).map(|_| ()));
            want(iso.decision_function(bad.view()).map(|_| ()));
            want(iso.predict(bad.view()).map(|_| ()));
            want(iso.is_anomaly(&bad).map(|_| ()));
            // Column-major: the rows are copied per task, the error is the same.
            let fortran = bad.t().as_standard_layout().into_owned().reversed_axes();
            assert!(!fortran.is_standard_layout());
            want(iso.score_samples(fortran.view()).map(|_| ()));
            // With names, the error names the feature.
            let names: Vec<String> = (0..5).map(|f| format!("sensor_{f}")).collect();
            let name = Some(names[column].as_str());
            let named = Samples::named(&bad, &names).unwrap();
            want_named(iso.score_samples(named).map(|_| ()), name);
            want_named(iso.is_anomaly(named).map(|_| ()), name);
            let named = Samples::named(fortran.view(), &names).unwrap();
            want_named(iso.decision_function(named).map(|_| ()), name);
        }
    }
}

#[test]
fn empty_and_all_missing_batches_score_on_every_scoring_path() {
    // 64 features is the widest row the heap walk takes; 65 goes to the node walk.
    for (features, max_samples) in [(64, None), (65, None), (3, Some(MaxSamples::Count(1000)))] {
        let x = blob(1200, features, 10, 5);
        let iso = scoring_forest(&x, 8, max_samples, 2);
        let none = iso
            .score_samples(Array2::<f64>::zeros((0, features)).view())
            .unwrap();
        assert!(none.is_empty());
        // Rows with every value missing, between ordinary rows.
        let mut batch = x.select(ndarray::Axis(0), &(0..40).collect::<Vec<_>>());
        batch.row_mut(7).fill(f64::NAN);
        batch.row_mut(39).fill(f64::NAN);
        let s = batch_scores_as_one_row_scores(&iso, &batch, &format!("{features} features"));
        assert!(s.iter().all(|v| (-1.0..0.0).contains(v)), "{s:?}");
    }
}

#[test]
fn batch_scores_match_one_row_scores_on_every_scoring_path() {
    // Default forests (trees at most 8 deep, rows at most 64 wide) are scored in
    // heap order; deeper trees (more samples) and wider rows by walking nodes.
    // Each path must give the one-row path's bits, with and without NaN.
    let cases = [
        (5, None),
        (5, Some(MaxSamples::Count(1000))),
        (70, None),
        (70, Some(MaxSamples::Count(1000))),
    ];
    for (features, max_samples) in cases {
        let mut x = blob(1500, features, 10, 7);
        for nan in [false, true] {
            if nan {
                x.iter_mut().step_by(13).for_each(|v| *v = f64::NAN);
            }
            let iso = scoring_forest(&x, 20, max_samples, 3);
            batch_scores_as_one_row_scores(
                &iso,
                &x,
                &format!("{features} features, {max_samples:?}"),
            );
        }
    }
}

#[test]
fn anomaly_flags_per_row_are_those_of_predict() {
    // Both scoring paths, an offset from the contamination (so some rows are
    // flagged and some are not), and the one-row variants.
    for max_samples in [None, Some(MaxSamples::Count(1000))] {
        let mut x = blob(1500, 4, 30, 11);
        x.iter_mut().step_by(29).for_each(|v| *v = f64::NAN);
        let iso = IsolationForestParams {
            n_estimators: 20,
            max_samples,
            contamination: Contamination::Fraction(0.05),
            seed: 5,
            ..Default::default()
        }
        .fit(&x)
        .unwrap();
        let predicted = iso.predict(&x).unwrap();
        let flags = iso.is_anomaly(x.view()).unwrap();
        let decision = iso.decision_function(&x).unwrap();
        let n_flagged = flags.iter().filter(|&&f| f).count();
        assert!((60..=90).contains(&n_flagged), "{n_flagged}");
        for (r, row) in x.rows().into_iter().enumerate() {
            let row = row.as_slice().unwrap();
            assert_eq!(flags[r], predicted[r] == -1, "row {r}");
            assert_eq!(iso.is_anomaly_row(row).unwrap(), flags[r], "row {r}");
            assert_eq!(
                iso.decision_row(row).unwrap().to_bits(),
                decision[r].to_bits()
            );
        }
    }
    let iso = scoring_forest(&blob(300, 3, 0, 1), 5, None, 1);
    assert!(matches!(
        iso.is_anomaly_row(&[0.0, f64::NEG_INFINITY, 0.0]),
        Err(ForestError::NonFiniteFeature { column: 1, .. })
    ));
    assert!(matches!(
        iso.decision_row(&[0.0]),
        Err(ForestError::FeatureCountMismatch {
            expected: 3,
            found: 1
        })
    ));
}
