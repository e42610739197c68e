//! Random Forest behaviour: accuracy, parameters, missing values, errors,
//! determinism across thread counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Lcg, three_class, two_class};
use ndarray::{Array2, array};
use vigil_forest::{
    ClassWeight, Criterion, ForestError, MaxFeatures, MaxSamples, RandomForest, RandomForestParams,
    Samples,
};

fn small() -> RandomForestParams {
    RandomForestParams {
        n_estimators: 30,
        seed: 3,
        ..Default::default()
    }
}

#[test]
fn learns_a_noisy_binary_problem() {
    let (x, y) = two_class(3000, 6, 1);
    let (xt, yt) = two_class(2000, 6, 2);
    let rf = small().fit(x.view(), &y).unwrap();
    let acc = rf.score(xt.view(), &yt).unwrap();
    // 5% label noise caps accuracy near 0.95; a forest should get close.
    assert!(acc > 0.88, "accuracy {acc}");
    let imp = rf.feature_importances();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    // The two informative columns dominate.
    assert!(imp[0] > 0.25 && imp[1] > 0.25, "{imp:?}");
}

#[test]
fn multi_class_with_sparse_labels() {
    let (x, y) = three_class(1500, 5);
    let rf = small().fit(x.view(), &y).unwrap();
    assert_eq!(rf.classes(), &[0, 10, 20]);
    let (xt, yt) = three_class(500, 6);
    assert!(rf.score(xt.view(), &yt).unwrap() > 0.95);
    let p = rf.predict_proba(xt.view()).unwrap();
    assert_eq!(p.dim(), (500, 3));
    let pred = rf.predict(xt.view()).unwrap();
    assert!(pred.iter().all(|l| [0, 10, 20].contains(l)));
}

#[test]
fn fully_grown_tree_fits_training_data_exactly() {
    let (x, y) = two_class(400, 3, 9);
    let params = RandomForestParams {
        n_estimators: 1,
        bootstrap: false,
        max_features: MaxFeatures::All,
        ..Default::default()
    };
    let rf = params.fit(x.view(), &y).unwrap();
    assert_eq!(rf.score(x.view(), &y).unwrap(), 1.0);
}

#[test]
fn neighbours_inside_one_bin_are_split_at_their_midpoint() {
    // 20,000 distinct values: a quantile bin holds ~78 of them, and the positive
    // band (7 rows) lies inside one bin. Small nodes split on the raw values, so a
    // fully grown tree isolates the band with thresholds at the midpoints between
    // neighbouring training values, as scikit-learn's would.
    let n = 20_000;
    let x = Array2::from_shape_fn((n, 1), |(i, _)| i as f64);
    let y: Vec<usize> = (0..n)
        .map(|i| usize::from((10_003..10_010).contains(&i)))
        .collect();
    let params = RandomForestParams {
        n_estimators: 1,
        bootstrap: false,
        max_features: MaxFeatures::All,
        ..Default::default()
    };
    let rf = params.fit(x.view(), &y).unwrap();
    assert_eq!(rf.score(x.view(), &y).unwrap(), 1.0);
    for (v, class) in [(10_002.4, 0), (10_002.6, 1), (10_009.4, 1), (10_009.6, 0)] {
        assert_eq!(
            rf.predict_proba_row(&[v]).unwrap()[1],
            f64::from(class),
            "at {v}"
        );
    }
}

#[test]
fn row_path_matches_batch_path() {
    let (x, y) = two_class(800, 4, 4);
    let rf = small().fit(x.view(), &y).unwrap();
    let p = rf.predict_proba(x.view()).unwrap();
    for r in 0..50 {
        let row = rf.predict_proba_row(x.row(r).as_slice().unwrap()).unwrap();
        assert_eq!(row.as_slice(), p.row(r).as_slice().unwrap());
    }
    // Column-major input gives the same answers.
    let xf = x.t().as_standard_layout().t().to_owned();
    assert_eq!(rf.predict_proba(xf.view()).unwrap(), p);
    // Shallow trees end in leaves of mixed classes, whose probabilities batch
    // prediction reads from the walk rather than from the value rows.
    for max_depth in [2, 3, 6] {
        let rf = RandomForestParams {
            max_depth: Some(max_depth),
            ..small()
        }
        .fit(x.view(), &y)
        .unwrap();
        let p = rf.predict_proba(x.view()).unwrap();
        assert!(p.iter().any(|&v| v > 0.0 && v < 1.0));
        for r in 0..200 {
            let row = rf.predict_proba_row(x.row(r).as_slice().unwrap()).unwrap();
            assert_eq!(
                row.as_slice(),
                p.row(r).as_slice().unwrap(),
                "depth {max_depth}"
            );
        }
    }
}

#[test]
fn same_seed_same_model_on_one_and_two_threads() {
    // Enough rows that nodes near the root use bins and dense re-gathering, and
    // the small ones below use exact splits.
    let (x, y) = two_class(12_000, 8, 5);
    let params = RandomForestParams {
        n_estimators: 16,
        oob_score: true,
        seed: 11,
        ..Default::default()
    };
    let fit_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| params.fit(x.view(), &y).unwrap())
    };
    let one = fit_on(1);
    let two = fit_on(2);
    assert_eq!(one.to_bytes(), two.to_bytes());
    assert_eq!(one.oob_score(), two.oob_score());
    let other = RandomForestParams {
        seed: 12,
        ..params.clone()
    }
    .fit(x.view(), &y)
    .unwrap();
    assert_ne!(one.to_bytes(), other.to_bytes());
}

#[test]
fn oob_score_is_close_to_test_accuracy() {
    let (x, y) = two_class(3000, 5, 7);
    let rf = RandomForestParams {
        oob_score: true,
        ..small()
    }
    .fit(x.view(), &y)
    .unwrap();
    let oob = rf.oob_score().unwrap();
    let (xt, yt) = two_class(3000, 5, 8);
    let test = rf.score(xt.view(), &yt).unwrap();
    assert!((oob - test).abs() < 0.03, "oob {oob} vs test {test}");
    assert_eq!(rf.oob_decision_function().unwrap().dim(), (3000, 2));
    assert!(small().fit(x.view(), &y).unwrap().oob_score().is_none());
}

#[test]
fn missing_values_learn_their_direction() {
    // Class 1 exactly where feature 0 is missing: only the NaN direction can tell.
    let mut rng = Lcg(3);
    let n = 1000;
    let mut x = Array2::from_shape_fn((n, 3), |_| rng.next_f64());
    let y: Vec<usize> = (0..n).map(|r| usize::from(r % 4 == 0)).collect();
    for r in (0..n).step_by(4) {
        x[[r, 0]] = f64::NAN;
    }
    let rf = RandomForestParams {
        max_features: MaxFeatures::All,
        ..small()
    }
    .fit(x.view(), &y)
    .unwrap();
    assert_eq!(rf.predict_proba_row(&[f64::NAN, 0.5, 0.5]).unwrap()[1], 1.0);
    assert_eq!(rf.predict_proba_row(&[0.5, 0.5, 0.5]).unwrap()[1], 0.0);
    assert_eq!(rf.score(x.view(), &y).unwrap(), 1.0);
}

#[test]
fn missing_values_at_predict_only_follow_the_heavier_side() {
    let (x, y) = two_class(1000, 3, 12);
    let rf = small().fit(x.view(), &y).unwrap();
    let p = rf
        .predict_proba_row(&[f64::NAN, f64::NAN, f64::NAN])
        .unwrap();
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn parameters_change_the_model_as_documented() {
    let (x, y) = two_class(2000, 6, 13);
    let shallow = RandomForestParams {
        max_depth: Some(2),
        ..small()
    }
    .fit(x.view(), &y)
    .unwrap();
    assert!(shallow.max_depth() <= 2);
    let deep = small().fit(x.view(), &y).unwrap();
    assert!(deep.max_depth() > 5);
    let big_leaves = RandomForestParams {
        min_samples_leaf: 50,
        ..small()
    }
    .fit(x.view(), &y)
    .unwrap();
    assert!(big_leaves.n_leaves() < deep.n_leaves() / 5);
    let entropy = RandomForestParams {
        criterion: Criterion::Entropy,
        ..small()
    }
    .fit(x.view(), &y)
    .unwrap();
    assert!(entropy.score(x.view(), &y).unwrap() > 0.9);
    let sub = RandomForestParams {
        max_samples: Some(MaxSamples::Fraction(0.2)),
        ..small()
    }
    .fit(x.view(), &y)
    .unwrap();
    assert!(sub.n_nodes() < deep.n_nodes());
    let stingy = RandomForestParams {
        min_impurity_decrease: 0.01,
        ..small()
    }
    .fit(x.view(), &y)
    .unwrap();
    assert!(stingy.n_nodes() < deep.n_nodes() / 5);
    for mf in [
        MaxFeatures::Log2,
        MaxFeatures::Fraction(0.5),
        MaxFeatures::Count(2),
        MaxFeatures::All,
    ] {
        RandomForestParams {
            max_features: mf,
            ..small()
        }
        .fit(x.view(), &y)
        .unwrap();
    }
}

#[test]
fn class_weights_shift_probabilities_toward_the_rare_class() {
    let mut rng = Lcg(21);
    let n = 3000;
    let x = Array2::from_shape_fn((n, 3), |_| rng.next_f64());
    // 5% positives, only loosely tied to x0.
    let y: Vec<usize> = (0..n)
        .map(|r| usize::from(x[[r, 0]] > 0.7 && rng.next_f64() < 0.17))
        .collect();
    let shallow = |cw| RandomForestParams {
        class_weight: cw,
        max_depth: Some(3),
        ..small()
    };
    let mean_p1 = |rf: &RandomForest| {
        rf.predict_proba(x.view())
            .unwrap()
            .column(1)
            .mean()
            .unwrap()
    };
    let plain = mean_p1(&shallow(ClassWeight::Uniform).fit(x.view(), &y).unwrap());
    let balanced = mean_p1(&shallow(ClassWeight::Balanced).fit(x.view(), &y).unwrap());
    let sub = mean_p1(
        &shallow(ClassWeight::BalancedSubsample)
            .fit(x.view(), &y)
            .unwrap(),
    );
    let explicit = mean_p1(
        &shallow(ClassWeight::Explicit(vec![(1, 10.0)]))
            .fit(x.view(), &y)
            .unwrap(),
    );
    assert!(
        balanced > plain * 3.0 && sub > plain * 3.0 && explicit > plain * 3.0,
        "{plain} {balanced} {sub} {explicit}"
    );
}

#[test]
fn progress_reports_every_tree() {
    let (x, y) = two_class(300, 3, 1);
    let calls = std::sync::Mutex::new(Vec::new());
    small()
        .fit_with_progress(x.view(), &y, &|done, total| {
            calls.lock().unwrap().push((done, total))
        })
        .unwrap();
    let mut calls = calls.into_inner().unwrap();
    calls.sort_unstable();
    assert_eq!(calls, (1..=30).map(|d| (d, 30)).collect::<Vec<_>>());
}

#[test]
fn label_types_bool_and_f64_work() {
    let (x, y) = two_class(300, 3, 1);
    let yb: Vec<bool> = y.iter().map(|&v| v == 1).collect();
    let yf: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    let a = small().fit(x.view(), &y).unwrap();
    assert_eq!(a, small().fit(x.view(), &yb).unwrap());
    assert_eq!(a, small().fit(x.view(), &yf).unwrap());
    assert_eq!(
        a,
        small()
            .fit(x.view(), &ndarray::Array1::from(y.clone()).view())
            .unwrap()
    );
}

#[test]
fn bad_input_gives_typed_errors() {
    let p = small();
    let x = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let empty = Array2::<f64>::zeros((0, 2));
    assert!(matches!(
        p.fit(empty.view(), &Vec::<usize>::new()),
        Err(ForestError::EmptyData { rows: 0, .. })
    ));
    let no_cols = Array2::<f64>::zeros((3, 0));
    assert!(matches!(
        p.fit(no_cols.view(), &vec![0, 1, 0]),
        Err(ForestError::EmptyData { columns: 0, .. })
    ));
    assert!(matches!(
        p.fit(x.view(), &vec![0, 1]),
        Err(ForestError::LengthMismatch {
            x_rows: 3,
            y_len: 2
        })
    ));
    let e = p.fit(x.view(), &vec![4, 4, 4]).unwrap_err();
    assert_eq!(e, ForestError::SingleClass { class: 4 });
    assert!(e.to_string().contains("single class"));
    assert!(matches!(
        p.fit(x.view(), &vec![0.0, f64::NAN, 1.0]),
        Err(ForestError::InvalidLabel { index: 1, .. })
    ));
    assert!(matches!(
        p.fit(x.view(), &vec![0.0, -2.0, 1.0]),
        Err(ForestError::InvalidLabel { index: 1, .. })
    ));
    assert!(matches!(
        p.fit(x.view(), &vec![0.0, 1.5, 1.0]),
        Err(ForestError::InvalidLabel { index: 1, .. })
    ));
    assert!(matches!(
        p.fit(x.view(), &vec![0, usize::MAX, 1]),
        Err(ForestError::InvalidLabel { index: 1, .. })
    ));
    let mut inf = x.clone();
    inf[[2, 1]] = f64::INFINITY;
    assert!(matches!(
        p.fit(inf.view(), &vec![0, 1, 0]),
        Err(ForestError::NonFiniteFeature {
            row: 2,
            column: 1,
            ..
        })
    ));

    let rf = p.fit(x.view(), &vec![0, 1, 0]).unwrap();
    let wide = Array2::<f64>::zeros((2, 3));
    assert!(matches!(
        rf.predict_proba(wide.view()),
        Err(ForestError::FeatureCountMismatch {
            expected: 2,
            found: 3
        })
    ));
    assert!(matches!(
        rf.predict_proba_row(&[1.0]),
        Err(ForestError::FeatureCountMismatch {
            expected: 2,
            found: 1
        })
    ));
    assert!(matches!(
        rf.predict_proba_row(&[1.0, f64::NEG_INFINITY]),
        Err(ForestError::NonFiniteFeature { .. })
    ));
    assert!(matches!(
        rf.predict(inf.view()),
        Err(ForestError::NonFiniteFeature {
            row: 2,
            column: 1,
            ..
        })
    ));
    let mut buf = [0.0; 3];
    assert!(matches!(
        rf.predict_proba_row_into(&[1.0, 2.0], &mut buf),
        Err(ForestError::BufferLength {
            expected: 2,
            found: 3
        })
    ));
    // Zero rows to predict is not an error.
    assert_eq!(
        rf.predict_proba(Array2::<f64>::zeros((0, 2)).view())
            .unwrap()
            .dim(),
        (0, 2)
    );
}

#[test]
fn invalid_parameters_are_named() {
    let (x, y) = two_class(50, 3, 1);
    type Change = fn(&mut RandomForestParams);
    let bad: [(&str, Change); 15] = [
        ("n_estimators", |p| p.n_estimators = 0),
        ("max_depth", |p| p.max_depth = Some(0)),
        ("min_samples_split", |p| p.min_samples_split = 1),
        ("min_samples_leaf", |p| p.min_samples_leaf = 0),
        ("max_features", |p| p.max_features = MaxFeatures::Count(0)),
        ("max_features", |p| {
            p.max_features = MaxFeatures::Fraction(0.0)
        }),
        ("max_features", |p| {
            p.max_features = MaxFeatures::Fraction(f64::NAN)
        }),
        // More features than x has.
        ("max_features", |p| p.max_features = MaxFeatures::Count(4)),
        ("max_samples", |p| {
            p.max_samples = Some(MaxSamples::Fraction(1.5))
        }),
        ("max_samples", |p| {
            p.max_samples = Some(MaxSamples::Count(0))
        }),
        // More rows than x has.
        ("max_samples", |p| {
            p.max_samples = Some(MaxSamples::Count(51))
        }),
        ("max_samples", |p| {
            p.max_samples = Some(MaxSamples::Count(5));
            p.bootstrap = false;
        }),
        ("min_impurity_decrease", |p| p.min_impurity_decrease = -1.0),
        ("oob_score", |p| {
            p.oob_score = true;
            p.bootstrap = false;
        }),
        ("class_weight", |p| {
            p.class_weight = ClassWeight::Explicit(vec![(0, -1.0)])
        }),
    ];
    for (name, change) in bad {
        let mut params = small();
        change(&mut params);
        match params.fit(x.view(), &y) {
            Err(ForestError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: expected InvalidParameter, got {other:?}"),
        }
    }
}

#[test]
fn every_integer_label_type_fits_the_same_model() {
    let (x, y) = two_class(400, 3, 4);
    let params = RandomForestParams {
        oob_score: true,
        ..small()
    };
    let want = params.fit(x.view(), &y).unwrap();
    // (Bits of the out-of-bag probabilities: a row never out of bag has NaN.)
    let oob_bits = |m: &RandomForest| m.oob_decision_function().unwrap().mapv(f64::to_bits);
    let same = |model: RandomForest, what: &str| {
        assert_eq!(model.to_bytes(), want.to_bytes(), "{what}");
        assert_eq!(oob_bits(&model), oob_bits(&want), "{what}");
        assert_eq!(model.oob_score(), want.oob_score(), "{what}");
    };
    macro_rules! each_type {
        ($($t:ty),+) => {$(
            let labels: Vec<$t> = y.iter().map(|&v| v as $t).collect();
            same(params.fit(x.view(), &labels).unwrap(), stringify!($t));
        )+};
    }
    each_type!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
    let yb: Vec<bool> = y.iter().map(|&v| v == 1).collect();
    same(params.fit(x.view(), &yb).unwrap(), "bool");

    // The call sites people write with vigil-features' `TrainingSet::failure`.
    struct TrainingSet {
        failure: Vec<u8>,
    }
    let set = TrainingSet {
        failure: y.iter().map(|&v| v as u8).collect(),
    };
    same(params.fit(x.view(), &set.failure).unwrap(), "&Vec<u8>");
    same(
        params.fit(x.view(), set.failure.as_slice()).unwrap(),
        "&[u8]",
    );
    same(
        params.fit(x.view(), &set.failure[..]).unwrap(),
        "&[u8] slice",
    );
    let array = ndarray::Array1::from(set.failure.clone());
    same(params.fit(&x, &array).unwrap(), "Array1<u8>");
    same(params.fit(&x, &array.view()).unwrap(), "ArrayView1<u8>");
}

#[test]
fn u8_labels_in_class_predictions_out() {
    // What a pipeline does: u8 labels in, predictions (the classes, as usize) out,
    // ready for metrics that take `&[usize]`.
    let (x, y) = two_class(2000, 4, 5);
    let failure: Vec<u8> = y.iter().map(|&v| v as u8).collect();
    let rf = small().fit(x.view(), &failure).unwrap();
    assert_eq!(rf.classes(), [0, 1]);
    let predicted: Vec<usize> = rf.predict(x.view()).unwrap().to_vec();
    let truth: Vec<usize> = failure.iter().map(|&v| usize::from(v)).collect();
    let hits = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
    assert_eq!(
        hits as f64 / truth.len() as f64,
        rf.score(x.view(), &failure).unwrap()
    );
    assert!(rf.score(x.view(), &failure).unwrap() > 0.9);
    // The model is the one usize labels give.
    assert_eq!(rf, small().fit(x.view(), &y).unwrap());
}

#[test]
fn probability_of_one_class_is_its_column() {
    let (x, y) = three_class(600, 8);
    let (x2, y2) = two_class(600, 3, 8);
    for (x, y) in [(x, y), (x2, y2)] {
        let rf = small().fit(x.view(), &y).unwrap();
        let p = rf.predict_proba(x.view()).unwrap();
        for (column, &class) in rf.classes().iter().enumerate() {
            let of = rf.predict_proba_of(x.view(), class).unwrap();
            assert_eq!(of, p.column(column), "class {class}");
            for (r, row) in x.rows().into_iter().enumerate().step_by(37) {
                let one = rf.predict_proba_row_of(row.as_slice().unwrap(), class);
                assert_eq!(one.unwrap().to_bits(), p[[r, column]].to_bits());
            }
        }
        let unknown = ForestError::UnknownClass {
            class: 5,
            classes: rf.classes().to_vec(),
        };
        assert_eq!(rf.predict_proba_of(x.view(), 5).unwrap_err(), unknown);
        let row = x.row(0).to_vec();
        assert_eq!(rf.predict_proba_row_of(&row, 5).unwrap_err(), unknown);
        assert!(unknown.to_string().contains("class 5"), "{unknown}");
    }
}

#[test]
fn probability_of_one_class_among_many() {
    // More classes than the one-row path keeps on the stack.
    let mut rng = Lcg(12);
    let x = Array2::from_shape_fn((500, 2), |_| rng.next_f64());
    let y: Vec<u16> = (0..500).map(|r| (x[[r, 0]] * 12.0) as u16 * 3).collect();
    let rf = small().fit(x.view(), &y).unwrap();
    assert_eq!(rf.classes().len(), 12);
    let p = rf.predict_proba_row(&[0.5, 0.5]).unwrap();
    for (column, &class) in rf.classes().iter().enumerate() {
        let one = rf.predict_proba_row_of(&[0.5, 0.5], class).unwrap();
        assert_eq!(one.to_bits(), p[column].to_bits());
    }
    assert!(matches!(
        rf.predict_proba_row_of(&[0.5, f64::INFINITY], 3),
        Err(ForestError::NonFiniteFeature { column: 1, .. })
    ));
}

#[test]
fn errors_name_the_features_the_caller_named() {
    let (x, y) = two_class(300, 3, 9);
    let names: Vec<String> = ["speed", "power_per_speed", "power_pct_change_5m"]
        .map(String::from)
        .to_vec();
    let mut inf = x.clone();
    inf[[123, 2]] = f64::INFINITY;
    let named = Samples::named(&inf, &names).unwrap();
    let e = small().fit(named, &y).unwrap_err();
    assert_eq!(
        e,
        ForestError::NonFiniteFeature {
            row: 123,
            column: 2,
            feature: Some("power_pct_change_5m".into()),
            value: f64::INFINITY,
        }
    );
    assert!(
        e.to_string()
            .starts_with("x[123, 2] (feature `power_pct_change_5m`) = inf is infinite"),
        "{e}"
    );
    // Prediction names it too, on every batch path.
    let rf = small()
        .fit(Samples::named(&x, &names).unwrap(), &y)
        .unwrap();
    assert_eq!(rf, small().fit(&x, &y).unwrap());
    let named_error = |r: Result<(), ForestError>| match r {
        Err(ForestError::NonFiniteFeature { feature, .. }) => {
            assert_eq!(feature.as_deref(), Some("power_pct_change_5m"))
        }
        other => panic!("{other:?}"),
    };
    named_error(rf.predict_proba(named).map(|_| ()));
    named_error(rf.predict_proba_of(named, 1).map(|_| ()));
    named_error(rf.predict(named).map(|_| ()));
    named_error(rf.score(named, &y).map(|_| ()));
    named_error(vigil_forest::permutation_importance(&rf, named, &y, 1, 0).map(|_| ()));
    // Unnamed: the position only.
    let e = rf.predict(inf.view()).unwrap_err();
    assert!(e.to_string().starts_with("x[123, 2] = inf"), "{e}");
    // One name per column.
    assert_eq!(
        Samples::named(&x, &names[..2]).unwrap_err(),
        ForestError::FeatureNameCount {
            names: 2,
            columns: 3
        }
    );
}

#[test]
fn models_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RandomForest>();
    check::<RandomForestParams>();
    check::<vigil_forest::IsolationForest>();
    check::<vigil_forest::IsolationForestParams>();
    check::<ForestError>();
}
