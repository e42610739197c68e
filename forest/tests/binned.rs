//! Fitting on bin codes built a chunk at a time: the same forest whatever the
//! chunking and thread count, exact predictions on representatives, sample
//! weights and their errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::two_class;
use ndarray::{Array2, ArrayView2, Axis, Slice};
use proptest::prelude::*;
use vigil_forest::{BinEdges, BinnedBuilder, BinnedSamples, ForestError, RandomForestParams};

fn params() -> RandomForestParams {
    RandomForestParams {
        n_estimators: 16,
        seed: 11,
        ..Default::default()
    }
}

fn rows(x: &Array2<f64>, start: usize, end: usize) -> ArrayView2<'_, f64> {
    x.slice_axis(Axis(0), Slice::from(start..end))
}

fn chunked(x: &Array2<f64>, edges: &BinEdges, cuts: &[usize]) -> BinnedSamples {
    let mut builder = BinnedBuilder::new(edges.clone());
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&x.nrows())) {
        let end = cut.clamp(start, x.nrows());
        builder.push_rows(rows(x, start, end)).unwrap();
        start = end;
    }
    builder.finish()
}

#[test]
fn chunks_give_the_forest_of_the_whole_matrix_on_any_thread_count() {
    let (x, y) = two_class(5000, 6, 3);
    let edges = BinEdges::from_sample(&x, 11).unwrap();
    let whole = BinnedSamples::from_matrix(&x, edges.clone()).unwrap();
    let parts = chunked(&x, &edges, &[1, 700, 701, 3000]);
    let fit = |b: &BinnedSamples, threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| params().fit_binned(b, &y, None, &|_, _| {}).unwrap())
    };
    let reference = fit(&whole, 1);
    assert_eq!(fit(&parts, 1).to_bytes(), reference.to_bytes());
    assert_eq!(fit(&parts, 4).to_bytes(), reference.to_bytes());
    // Trained on bins, the forest predicts on raw rows as on their representatives.
    let raw = reference.predict_proba(&x).unwrap();
    let reps = reference
        .predict_proba(&whole.representatives(0..x.nrows()))
        .unwrap();
    assert_eq!(raw, reps);
    assert!(reference.score(&x, &y).unwrap() > 0.9);
}

#[test]
fn concat_is_the_rows_of_both() {
    let (x, _) = two_class(900, 4, 5);
    let edges = BinEdges::from_sample(&x, 1).unwrap();
    let a = BinnedSamples::from_matrix(rows(&x, 0, 400), edges.clone()).unwrap();
    let b = BinnedSamples::from_matrix(rows(&x, 400, 900), edges.clone()).unwrap();
    let both = a.concat(b).unwrap();
    let whole = BinnedSamples::from_matrix(&x, edges).unwrap();
    assert_eq!(both.n_rows(), 900);
    for (i, f) in [(0, 0), (399, 3), (400, 1), (899, 2)] {
        assert_eq!(both.code(i, f), whole.code(i, f));
    }
    assert_eq!(both.code(900, 0), None);
    for f in 0..4 {
        let column = both.column(f).unwrap();
        assert_eq!(column.len(), 900);
        assert!((0..900).all(|i| both.code(i, f) == Some(column[i])));
    }
    assert_eq!(both.column(4), None);
    let other = BinEdges::from_sample(rows(&x, 0, 10), 1).unwrap();
    let c = BinnedSamples::from_matrix(&x, other).unwrap();
    assert!(matches!(
        whole.concat(c),
        Err(ForestError::InvalidParameter { name: "other", .. })
    ));
}

/// Downsampled negatives weighted by 1 / fraction keep the mean probability
/// near the full data's positive rate; unweighted they inflate it.
#[test]
fn weights_keep_downsampled_probabilities_calibrated() {
    let (x, y) = two_class(20_000, 4, 9);
    // Make positives rare: keep a fifth of them.
    let keep: Vec<usize> = (0..x.nrows())
        .filter(|&i| y[i] == 0 || i % 5 == 0)
        .collect();
    let x = x.select(Axis(0), &keep);
    let y: Vec<usize> = keep.iter().map(|&i| y[i]).collect();
    let rate = y.iter().sum::<usize>() as f64 / y.len() as f64;
    // Keep every positive and a tenth of the negatives.
    let kept: Vec<usize> = (0..y.len()).filter(|&i| y[i] == 1 || i % 10 == 0).collect();
    let xs = x.select(Axis(0), &kept);
    let ys: Vec<usize> = kept.iter().map(|&i| y[i]).collect();
    let weights: Vec<f64> = ys
        .iter()
        .map(|&c| if c == 1 { 1.0 } else { 10.0 })
        .collect();
    let edges = BinEdges::from_sample(&xs, 2).unwrap();
    let codes = BinnedSamples::from_matrix(&xs, edges).unwrap();
    let p = RandomForestParams {
        n_estimators: 40,
        min_samples_leaf: 20,
        seed: 2,
        ..Default::default()
    };
    let mean = |m: &vigil_forest::RandomForest| {
        let pr = m.predict_proba_of(&x, 1).unwrap();
        pr.sum() / pr.len() as f64
    };
    let weighted = mean(
        &p.fit_binned(&codes, &ys, Some(&weights), &|_, _| {})
            .unwrap(),
    );
    let unweighted = mean(&p.fit_binned(&codes, &ys, None, &|_, _| {}).unwrap());
    assert!(
        (weighted - rate).abs() < 0.3 * rate,
        "weighted {weighted} vs rate {rate}"
    );
    assert!(
        unweighted > 2.0 * rate,
        "unweighted {unweighted} vs rate {rate}"
    );
}

#[test]
fn bad_weights_and_inputs_are_typed_errors() {
    let (x, y) = two_class(300, 3, 1);
    let codes = BinnedSamples::from_matrix(&x, BinEdges::from_sample(&x, 0).unwrap()).unwrap();
    let fit = |p: &RandomForestParams, w: &[f64]| p.fit_binned(&codes, &y, Some(w), &|_, _| {});
    let n = y.len();
    let mut w = vec![1.0; n];
    for bad in [
        vec![1.0; n - 1],
        vec![0.0; n],
        {
            w[7] = f64::NAN;
            w.clone()
        },
        {
            w[7] = -1.0;
            w.clone()
        },
    ] {
        assert!(
            matches!(
                fit(&params(), &bad),
                Err(ForestError::InvalidParameter {
                    name: "weights",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    let no_bootstrap = RandomForestParams {
        bootstrap: false,
        ..params()
    };
    assert!(matches!(
        fit(&no_bootstrap, &vec![1.0; n]),
        Err(ForestError::InvalidParameter {
            name: "weights",
            ..
        })
    ));
    let oob = RandomForestParams {
        oob_score: true,
        ..params()
    };
    assert!(matches!(
        oob.fit_binned(&codes, &y, None, &|_, _| {}),
        Err(ForestError::InvalidParameter {
            name: "oob_score",
            ..
        })
    ));
    assert!(matches!(
        params().fit_binned(&codes, &y[1..], None, &|_, _| {}),
        Err(ForestError::LengthMismatch { .. })
    ));
    let mut builder = BinnedBuilder::new(BinEdges::from_sample(&x, 0).unwrap());
    let mut inf = x.clone();
    inf[[2, 1]] = f64::INFINITY;
    assert!(matches!(
        builder.push_rows(&inf),
        Err(ForestError::NonFiniteFeature {
            row: 2,
            column: 1,
            ..
        })
    ));
    assert!(matches!(
        builder.push_rows(x.slice_axis(Axis(1), Slice::from(0..2))),
        Err(ForestError::FeatureCountMismatch {
            expected: 3,
            found: 2
        })
    ));
    assert_eq!(builder.n_rows(), 0);
    let empty = builder.finish();
    assert!(matches!(
        params().fit_binned(&empty, &Vec::<usize>::new(), None, &|_, _| {}),
        Err(ForestError::EmptyData { rows: 0, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The codes do not depend on how the rows are cut into chunks.
    #[test]
    fn codes_do_not_depend_on_the_chunking(
        seed in 0u64..1000,
        cuts in proptest::collection::vec(0usize..400, 0..6),
    ) {
        let (x, _) = two_class(400, 3, seed);
        let edges = BinEdges::from_sample(&x, seed).unwrap();
        let mut cuts = cuts;
        cuts.sort_unstable();
        let parts = chunked(&x, &edges, &cuts);
        let whole = BinnedSamples::from_matrix(&x, edges).unwrap();
        for i in 0..x.nrows() {
            for f in 0..3 {
                prop_assert_eq!(parts.code(i, f), whole.code(i, f));
            }
        }
    }
}
