//! Property tests: invariants that must hold for any data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ndarray::Array2;
use proptest::prelude::*;
use vigil_forest::{IsolationForestParams, MaxFeatures, RandomForest, RandomForestParams};

/// A random matrix (some NaN) with random labels over 2-4 classes.
fn data() -> impl Strategy<Value = (Array2<f64>, Vec<usize>)> {
    (5usize..60, 1usize..5, 2usize..5).prop_flat_map(|(rows, cols, classes)| {
        let cell = prop_oneof![9 => -100.0f64..100.0, 1 => Just(f64::NAN)];
        (
            proptest::collection::vec(cell, rows * cols),
            proptest::collection::vec(0..classes, rows),
        )
            .prop_filter("two classes", |(_, y)| y.iter().any(|&c| c != y[0]))
            .prop_map(move |(v, y)| (Array2::from_shape_vec((rows, cols), v).unwrap(), y))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn probabilities_are_in_range_and_sum_to_one((x, y) in data(), seed in any::<u64>()) {
        let rf = RandomForestParams { n_estimators: 5, seed, ..Default::default() }.fit(x.view(), &y).unwrap();
        let p = rf.predict_proba(x.view()).unwrap();
        for row in p.rows() {
            prop_assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)));
            prop_assert!((row.sum() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn fully_grown_tree_fits_distinct_points_exactly(rows in 2usize..80, seed in any::<u64>()) {
        // Distinct rows (first column is the row index, shuffled by a multiplier).
        let x = Array2::from_shape_fn((rows, 2), |(r, c)| if c == 0 { ((r * 37) % 101) as f64 } else { (seed % 7) as f64 });
        let y: Vec<usize> = (0..rows).map(|r| ((seed >> (r % 60)) & 1) as usize ^ usize::from(r == 0)).collect();
        prop_assume!(y.iter().any(|&c| c != y[0]));
        let params = RandomForestParams { n_estimators: 1, bootstrap: false, max_features: MaxFeatures::All, seed, ..Default::default() };
        let rf = params.fit(x.view(), &y).unwrap();
        prop_assert_eq!(rf.score(x.view(), &y).unwrap(), 1.0);
    }

    #[test]
    fn serialisation_round_trip_predicts_identically((x, y) in data(), seed in any::<u64>()) {
        let rf = RandomForestParams { n_estimators: 4, seed, ..Default::default() }.fit(x.view(), &y).unwrap();
        let p = rf.predict_proba(x.view()).unwrap();
        prop_assert_eq!(RandomForest::from_bytes(&rf.to_bytes()).unwrap().predict_proba(x.view()).unwrap(), p.clone());
        prop_assert_eq!(RandomForest::from_json(&rf.to_json()).unwrap().predict_proba(x.view()).unwrap(), p);
    }

    #[test]
    fn isolation_scores_stay_in_range((x, _) in data(), seed in any::<u64>()) {
        let iso = IsolationForestParams { n_estimators: 10, seed, ..Default::default() }.fit(x.view()).unwrap();
        let s = iso.score_samples(x.view()).unwrap();
        prop_assert!(s.iter().all(|&v| (-1.0..0.0).contains(&v)));
    }

    #[test]
    fn models_do_not_depend_on_thread_count((x, y) in data(), seed in any::<u64>()) {
        let fit = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let rf = RandomForestParams { n_estimators: 6, seed, ..Default::default() }.fit(x.view(), &y).unwrap();
                let iso = IsolationForestParams { n_estimators: 6, seed, ..Default::default() }.fit(x.view()).unwrap();
                (rf.to_bytes(), iso.to_bytes())
            })
        };
        prop_assert_eq!(fit(1), fit(2));
    }

    #[test]
    fn batch_and_one_row_paths_agree_bit_for_bit((x, y) in data(), seed in any::<u64>(), nan_free in any::<bool>()) {
        // Batch prediction walks eight rows at a time with a separate step for
        // chunks without NaN; the one-row path walks trees one by one. Both must
        // give the same bits, with and without missing values, for any row count.
        let x = if nan_free { x.mapv(|v| if v.is_nan() { 0.5 } else { v }) } else { x };
        let rf = RandomForestParams { n_estimators: 5, seed, ..Default::default() }.fit(x.view(), &y).unwrap();
        let iso = IsolationForestParams { n_estimators: 5, seed, ..Default::default() }.fit(x.view()).unwrap();
        let p = rf.predict_proba(x.view()).unwrap();
        let s = iso.score_samples(x.view()).unwrap();
        for (r, row) in x.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let one = rf.predict_proba_row(&row).unwrap();
            prop_assert_eq!(p.row(r).to_vec(), one);
            prop_assert_eq!(s[r].to_bits(), iso.score_row(&row).unwrap().to_bits());
        }
    }

    #[test]
    fn u8_labels_fit_the_model_usize_labels_fit(
        (x, y) in data(), seed in any::<u64>(), spread in 1u8..60, oob in any::<bool>(),
    ) {
        // Sparse u8 labels (0, spread, 2 * spread, ...) and the same labels as usize.
        let y8: Vec<u8> = y.iter().map(|&c| c as u8 * spread).collect();
        let yu: Vec<usize> = y8.iter().map(|&c| usize::from(c)).collect();
        let params = RandomForestParams { n_estimators: 4, oob_score: oob, seed, ..Default::default() };
        let a = params.fit(x.view(), &y8).unwrap();
        let b = params.fit(x.view(), &yu).unwrap();
        prop_assert_eq!(a.to_bytes(), b.to_bytes());
        // (Not `a == b`: rows never out of bag have NaN out-of-bag probabilities.)
        let oob_bits = |m: &RandomForest| m.oob_decision_function().map(|d| d.mapv(f64::to_bits));
        prop_assert_eq!(oob_bits(&a), oob_bits(&b));
        prop_assert_eq!(a.oob_score(), b.oob_score());
        prop_assert_eq!(a.predict(x.view()).unwrap(), b.predict(x.view()).unwrap());
    }
}
