//! TreeSHAP explanations: additivity (property tests), agreement with the `shap`
//! package on the same trees (golden files from `tests/shap/make_golden.py`, and a
//! live run when the test venv is there), version-1 files, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Lcg, three_class, two_class};
use ndarray::Array2;
use proptest::prelude::*;
use vigil_forest::{
    ClassWeight, Explanation, ForestError, IsolationForest, IsolationForestParams, MaxSamples,
    RandomForest, RandomForestParams,
};

/// `x` with about one value in `every` missing.
fn with_gaps(mut x: Array2<f64>, every: usize, seed: u64) -> Array2<f64> {
    let mut rng = Lcg(seed);
    for v in x.iter_mut() {
        if (rng.next_f64() * every as f64) < 1.0 {
            *v = f64::NAN;
        }
    }
    x
}

fn assert_additive(expected: f64, values: &Array2<f64>, outputs: &[f64], what: &str) {
    for (i, (row, out)) in values.rows().into_iter().zip(outputs).enumerate() {
        let sum = expected + row.sum();
        assert!(
            (sum - out).abs() <= 1e-9,
            "{what}, row {i}: expected value + contributions = {sum}, model output {out}"
        );
    }
}

fn rf_additivity(x: &Array2<f64>, y: &[usize], params: &RandomForestParams, probe: &Array2<f64>) {
    let model = params.fit(x, y).unwrap();
    let proba = model.predict_proba(probe).unwrap();
    let all = model.shap_values_all_classes(probe).unwrap();
    assert_eq!(all.len(), model.classes().len());
    for (c, (&class, e)) in model.classes().iter().zip(&all).enumerate() {
        let column: Vec<f64> = proba.column(c).to_vec();
        assert_additive(e.expected_value, &e.values, &column, "all classes");
        let one = model.shap_values(probe, class).unwrap();
        assert_additive(one.expected_value, &one.values, &column, "one class");
        for (a, b) in one.values.iter().zip(e.values.iter()) {
            assert!((a - b).abs() <= 1e-12);
        }
    }
    // One row gives the batch's numbers.
    for (i, row) in probe.rows().into_iter().enumerate().take(5) {
        let class = model.classes()[model.classes().len() - 1];
        let r = model
            .shap_values_row(row.as_slice().unwrap(), class)
            .unwrap();
        let b = model.shap_values(probe, class).unwrap();
        assert_eq!(r.values.row(0), b.values.row(i));
        assert_eq!(r.expected_value, b.expected_value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn binary_contributions_add_up_to_the_probability(
        seed in any::<u64>(), depth in 1usize..12, features in 1usize..7, gaps in 3usize..20,
        balanced in any::<bool>(),
    ) {
        let (x, y) = two_class(300, features.max(2), seed);
        let x = with_gaps(x, gaps, seed ^ 1);
        let probe = with_gaps(two_class(60, features.max(2), seed ^ 2).0, gaps, seed ^ 3);
        let params = RandomForestParams {
            n_estimators: 8,
            max_depth: Some(depth),
            class_weight: if balanced { ClassWeight::BalancedSubsample } else { ClassWeight::Uniform },
            seed,
            ..Default::default()
        };
        rf_additivity(&x, &y, &params, &probe);
    }

    #[test]
    fn multi_class_contributions_add_up_to_each_probability(seed in any::<u64>(), gaps in 3usize..20) {
        let (x, y) = three_class(300, seed);
        let x = with_gaps(x, gaps, seed ^ 1);
        let probe = with_gaps(three_class(60, seed ^ 2).0, gaps, seed ^ 3);
        let params = RandomForestParams {
            n_estimators: 6,
            class_weight: ClassWeight::Explicit(vec![(10, 2.5), (20, 0.3)]),
            seed,
            ..Default::default()
        };
        rf_additivity(&x, &y, &params, &probe);
    }

    #[test]
    fn isolation_contributions_add_up_to_the_mean_path_length(
        seed in any::<u64>(), gaps in 3usize..20, psi in 2usize..300, bootstrap in any::<bool>(),
    ) {
        let x = with_gaps(two_class(300, 4, seed).0, gaps, seed ^ 1);
        let model = IsolationForestParams {
            n_estimators: 10,
            max_samples: Some(MaxSamples::Count(psi)),
            bootstrap,
            seed,
            ..Default::default()
        }
        .fit(&x)
        .unwrap();
        let probe = with_gaps(two_class(50, 4, seed ^ 2).0, gaps, seed ^ 3);
        let e = model.shap_values(&probe).unwrap();
        let lengths = model.mean_path_length(&probe).unwrap().to_vec();
        assert_additive(e.expected_value, &e.values, &lengths, "isolation forest");
        let row = probe.row(7).to_vec();
        let r = model.shap_values_row(&row).unwrap();
        prop_assert_eq!(r.values.row(0), e.values.row(7));
        prop_assert_eq!(model.mean_path_length_row(&row).unwrap(), lengths[7]);
    }
}

#[test]
fn explanations_do_not_depend_on_the_thread_count() {
    let (x, y) = two_class(500, 5, 9);
    let x = with_gaps(x, 9, 4);
    let model = RandomForestParams {
        n_estimators: 10,
        seed: 2,
        ..Default::default()
    }
    .fit(&x, &y)
    .unwrap();
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| model.shap_values(&x, 1).unwrap())
    };
    assert_eq!(on(1), on(2));
}

#[test]
fn saved_models_explain_as_the_fitted_ones() {
    let (x, y) = two_class(400, 4, 3);
    let x = with_gaps(x, 8, 5);
    let params = RandomForestParams {
        n_estimators: 6,
        class_weight: ClassWeight::Balanced,
        seed: 1,
        ..Default::default()
    };
    let model = params.fit(&x, &y).unwrap();
    let e = model.shap_values(&x, 1).unwrap();
    for back in [
        RandomForest::from_bytes(&model.to_bytes()).unwrap(),
        RandomForest::from_json(&model.to_json()).unwrap(),
    ] {
        assert_eq!(back.shap_values(&x, 1).unwrap(), e);
    }
    let iso = IsolationForestParams {
        n_estimators: 8,
        seed: 1,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    let back = IsolationForest::from_bytes(&iso.to_bytes()).unwrap();
    assert_eq!(back.shap_values(&x).unwrap(), iso.shap_values(&x).unwrap());
}

/// The version-1 fixtures (written by the crate before covers existed).
fn v1_fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("shap/v1_models.json")).unwrap()
}

fn bits(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f64::from_bits(b.as_u64().unwrap()))
        .collect()
}

#[test]
fn version_1_files_load_predict_identically_and_refuse_to_explain() {
    let fixture = v1_fixture();
    let rows: Vec<Vec<f64>> = fixture["rows_bits"]
        .as_array()
        .unwrap()
        .iter()
        .map(bits)
        .collect();
    let x = Array2::from_shape_fn((rows.len(), 3), |(i, j)| rows[i][j]);
    let rf_json = RandomForest::from_json(&fixture["random_forest"].to_string()).unwrap();
    let rf_bin = RandomForest::from_bytes(include_bytes!("shap/v1_random_forest.bin")).unwrap();
    assert_eq!(rf_json, rf_bin);
    let proba: Vec<u64> = rf_bin
        .predict_proba(&x)
        .unwrap()
        .iter()
        .map(|p| p.to_bits())
        .collect();
    let expected: Vec<u64> = bits(&fixture["predict_proba_bits"])
        .iter()
        .map(|p| p.to_bits())
        .collect();
    assert_eq!(proba, expected);
    assert_eq!(rf_bin.shap_values(&x, 1), Err(ForestError::NoCovers));
    assert_eq!(
        rf_bin.shap_values_row(&rows[0], 1),
        Err(ForestError::NoCovers)
    );
    assert_eq!(
        rf_bin.shap_values_all_classes(&x),
        Err(ForestError::NoCovers)
    );
    assert!(ForestError::NoCovers.to_string().contains("retrain"));

    let iso_json = IsolationForest::from_json(&fixture["isolation_forest"].to_string()).unwrap();
    let iso_bin =
        IsolationForest::from_bytes(include_bytes!("shap/v1_isolation_forest.bin")).unwrap();
    assert_eq!(iso_json, iso_bin);
    let scores: Vec<u64> = iso_bin
        .score_samples(&x)
        .unwrap()
        .iter()
        .map(|p| p.to_bits())
        .collect();
    let expected: Vec<u64> = bits(&fixture["score_samples_bits"])
        .iter()
        .map(|p| p.to_bits())
        .collect();
    assert_eq!(scores, expected);
    assert_eq!(iso_bin.shap_values(&x), Err(ForestError::NoCovers));
    assert_eq!(
        iso_bin.shap_values_row(&rows[0]),
        Err(ForestError::NoCovers)
    );

    // Saved again (as version 2, still without covers) it loads and still refuses.
    let again = RandomForest::from_bytes(&rf_bin.to_bytes()).unwrap();
    assert_eq!(again, rf_bin);
    assert_eq!(again.shap_values(&x, 1), Err(ForestError::NoCovers));
}

#[test]
fn bad_input_is_a_typed_error() {
    let (x, y) = two_class(200, 3, 1);
    let model = RandomForestParams {
        n_estimators: 4,
        seed: 1,
        ..Default::default()
    }
    .fit(&x, &y)
    .unwrap();
    let iso = IsolationForestParams {
        n_estimators: 4,
        seed: 1,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    let narrow = Array2::<f64>::zeros((2, 2));
    let mismatch = ForestError::FeatureCountMismatch {
        expected: 3,
        found: 2,
    };
    assert_eq!(model.shap_values(&narrow, 1), Err(mismatch.clone()));
    assert_eq!(
        model.shap_values_all_classes(&narrow),
        Err(mismatch.clone())
    );
    assert_eq!(model.shap_values_row(&[0.0, 0.0], 1), Err(mismatch.clone()));
    assert_eq!(iso.shap_values(&narrow), Err(mismatch.clone()));
    assert_eq!(
        iso.shap_values_row(&[0.0; 4]),
        Err(ForestError::FeatureCountMismatch {
            expected: 3,
            found: 4
        })
    );
    for inf in [f64::INFINITY, f64::NEG_INFINITY] {
        let mut bad = x.clone();
        bad[[5, 2]] = inf;
        let e = ForestError::NonFiniteFeature {
            row: 5,
            column: 2,
            feature: None,
            value: inf,
        };
        assert_eq!(model.shap_values(&bad, 1), Err(e.clone()));
        assert_eq!(iso.shap_values(&bad), Err(e));
        let row = [0.5, inf, f64::NAN];
        assert!(matches!(
            model.shap_values_row(&row, 0),
            Err(ForestError::NonFiniteFeature { column: 1, .. })
        ));
        assert!(matches!(
            iso.shap_values_row(&row),
            Err(ForestError::NonFiniteFeature { column: 1, .. })
        ));
    }
    // NaN is missing, not an error.
    assert!(model.shap_values_row(&[f64::NAN; 3], 1).is_ok());
    assert!(matches!(
        model.shap_values(&x, 2),
        Err(ForestError::UnknownClass { class: 2, .. })
    ));
    assert!(matches!(
        model.shap_values_row(x.row(0).as_slice().unwrap(), 7),
        Err(ForestError::UnknownClass { class: 7, .. })
    ));
    let empty = Array2::<f64>::zeros((0, 3));
    let e = model.shap_values(&empty, 1).unwrap();
    assert_eq!(e.values.dim(), (0, 3));
    assert_eq!(
        e.expected_value,
        model.shap_values(&x, 1).unwrap().expected_value
    );
    assert!(
        model
            .shap_values_all_classes(&empty)
            .unwrap()
            .iter()
            .all(|e| e.values.dim() == (0, 3))
    );
    assert_eq!(iso.shap_values(&empty).unwrap().values.dim(), (0, 3));
}

/// The models and rows of the golden files: fitted here, written for
/// `tests/shap/make_golden.py` when `VIGIL_SHAP_GOLDEN_INPUT` names a file.
fn golden_inputs() -> serde_json::Value {
    let (x, y) = two_class(300, 5, 21);
    let x = with_gaps(x, 10, 22);
    let rows = with_gaps(two_class(40, 5, 23).0, 6, 24);
    let binary = RandomForestParams {
        n_estimators: 10,
        max_depth: Some(7),
        class_weight: ClassWeight::BalancedSubsample,
        seed: 3,
        ..Default::default()
    }
    .fit(&x, &y)
    .unwrap();
    let (x3, y3) = three_class(300, 25);
    let x3 = with_gaps(x3, 10, 26);
    let rows3 = with_gaps(three_class(40, 27).0, 6, 28);
    let multi = RandomForestParams {
        n_estimators: 8,
        max_depth: Some(9),
        seed: 4,
        ..Default::default()
    }
    .fit(&x3, &y3)
    .unwrap();
    let iso = IsolationForestParams {
        n_estimators: 10,
        max_samples: Some(MaxSamples::Count(64)),
        seed: 5,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    let rows_of = |r: &Array2<f64>| -> Vec<Vec<Option<f64>>> {
        r.rows()
            .into_iter()
            .map(|r| r.iter().map(|v| (!v.is_nan()).then_some(*v)).collect())
            .collect()
    };
    let model = |json: String| serde_json::from_str::<serde_json::Value>(&json).unwrap();
    serde_json::json!({
        "random_forest_binary": {"model": model(binary.to_json()), "rows": rows_of(&rows)},
        "random_forest_three_classes": {"model": model(multi.to_json()), "rows": rows_of(&rows3)},
        "isolation_forest": {"model": model(iso.to_json()), "rows": rows_of(&rows)},
    })
}

#[test]
fn golden_inputs_explain_additively() {
    let inputs = golden_inputs();
    if let Ok(path) = std::env::var("VIGIL_SHAP_GOLDEN_INPUT") {
        std::fs::write(path, serde_json::to_string(&inputs).unwrap()).unwrap();
    }
    for name in ["random_forest_binary", "random_forest_three_classes"] {
        let model = RandomForest::from_json(&inputs[name]["model"].to_string()).unwrap();
        let rows = golden_rows(&inputs[name]["rows"]);
        let proba = model.predict_proba(&rows).unwrap();
        for (c, e) in model
            .shap_values_all_classes(&rows)
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_additive(e.expected_value, &e.values, &proba.column(c).to_vec(), name);
        }
    }
}

/// Rows as the golden files hold them (`null` for a missing value).
fn golden_rows(v: &serde_json::Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn golden() -> serde_json::Value {
    serde_json::from_str(include_str!("shap/golden.json")).unwrap()
}

/// `shap`'s values for output `o`: rows × features.
fn shap_values_of(g: &serde_json::Value, o: usize) -> Array2<f64> {
    golden_rows(&g["shap_values"][o])
}

fn assert_close(ours: &Explanation, expected: f64, theirs: &Array2<f64>, what: &str) {
    assert!(
        (ours.expected_value - expected).abs() <= 1e-9,
        "{what}: expected value {} vs shap's {expected}",
        ours.expected_value
    );
    assert_eq!(ours.values.dim(), theirs.dim(), "{what}");
    for ((at, a), b) in ours.values.indexed_iter().zip(theirs.iter()) {
        assert!((a - b).abs() <= 1e-9, "{what} {at:?}: {a} vs shap's {b}");
    }
}

#[test]
fn random_forests_match_shap_on_the_same_trees() {
    let golden = golden();
    for name in ["random_forest_binary", "random_forest_three_classes"] {
        let g = &golden[name];
        let model = RandomForest::from_json(&g["vigil_model"].to_string()).unwrap();
        let rows = golden_rows(&g["rows"]);
        assert!(
            rows.iter().any(|v| v.is_nan()),
            "the rows have missing values"
        );
        let all = model.shap_values_all_classes(&rows).unwrap();
        for (o, (&class, e)) in model.classes().iter().zip(&all).enumerate() {
            let theirs = shap_values_of(g, o);
            let expected = g["expected_value"][o].as_f64().unwrap();
            assert_close(
                &model.shap_values(&rows, class).unwrap(),
                expected,
                &theirs,
                name,
            );
            assert_close(e, expected, &theirs, name);
            let row = rows.row(3).to_vec();
            let one = model.shap_values_row(&row, class).unwrap();
            for (a, b) in one.values.iter().zip(theirs.row(3)) {
                assert!((a - b).abs() <= 1e-9, "{name} one row: {a} vs {b}");
            }
        }
    }
}

#[test]
fn isolation_forests_match_shap_on_the_same_trees() {
    let g = &golden()["isolation_forest"];
    let model = IsolationForest::from_json(&g["vigil_model"].to_string()).unwrap();
    let rows = golden_rows(&g["rows"]);
    let e = model.shap_values(&rows).unwrap();
    let expected = g["expected_value"][0].as_f64().unwrap();
    assert_close(&e, expected, &shap_values_of(g, 0), "isolation forest");
}

#[test]
fn the_golden_file_is_what_shap_computes_now() {
    // Runs shap itself (make_golden.py --check) in the test venv.
    let Some(venv) = common::service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let venv = std::path::PathBuf::from(venv);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shap/make_golden.py");
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shap/golden.json");
    let out = std::process::Command::new(venv.join("bin/python"))
        .args([script, "--check", golden])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shap disagrees with the golden file: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
