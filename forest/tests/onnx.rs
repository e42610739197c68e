//! Exported ONNX models run through the real onnxruntime (the test venv's, found
//! through `VIGIL_MLFLOW_VENV`) agree with Vigil's own predictions. The Python
//! side is tests/onnx/run_onnxruntime.py; it also runs
//! `onnx.checker.check_model(full_check=True)` on every model.
#![cfg(feature = "onnx")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Lcg, service};
use ndarray::Array2;
use serde_json::Value;
use vigil_forest::{
    Contamination, ForestError, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples,
    OnnxExport, OnnxOptions, OnnxPrecision, RandomForest, RandomForestParams,
};

/// Models and inputs for one onnxruntime run.
struct Reference {
    dir: PathBuf,
    cases: Vec<Value>,
}

impl Reference {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vigil-onnx-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Reference {
            dir,
            cases: Vec::new(),
        }
    }

    /// Queues `model` to run on `x`, fed as float32 or float64 per `precision`.
    fn add(&mut self, name: &str, model: &[u8], x: &Array2<f64>, precision: OnnxPrecision) {
        let model_path = self.dir.join(format!("{name}.onnx"));
        let input_path = self.dir.join(format!("{name}.bin"));
        std::fs::write(&model_path, model).unwrap();
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&input_path, bytes).unwrap();
        let dtype = match precision {
            OnnxPrecision::Float => "float32",
            _ => "float64",
        };
        self.cases.push(serde_json::json!({
            "name": name, "model": model_path, "input": input_path,
            "rows": x.nrows(), "columns": x.ncols(), "dtype": dtype,
        }));
    }

    /// Runs every queued case; `None` when the venv is not configured (skip).
    fn run(self) -> Option<Value> {
        let venv = service("VIGIL_MLFLOW_VENV")?;
        let manifest = self.dir.join("manifest.json");
        let out = self.dir.join("out.json");
        std::fs::write(&manifest, serde_json::to_vec(&self.cases).unwrap()).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/onnx/run_onnxruntime.py");
        let status = Command::new(format!("{venv}/bin/python"))
            .args([script, manifest.to_str().unwrap(), out.to_str().unwrap()])
            .status()
            .expect("python runs");
        assert!(status.success(), "onnxruntime script failed: {status}");
        let result = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        std::fs::remove_dir_all(&self.dir).ok();
        Some(result)
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect()
}

/// Every split's (feature, threshold) in a model, read from its JSON form.
fn splits(json: &str) -> Vec<(usize, f64)> {
    fn walk(v: &Value, out: &mut Vec<(usize, f64)>) {
        match v {
            Value::Object(m) => {
                if let (Some(f), Some(t)) = (m.get("feature"), m.get("threshold")) {
                    out.push((f.as_u64().unwrap() as usize, t.as_f64().unwrap()));
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::from_str(json).unwrap(), &mut out);
    out
}

/// Rows to predict on: random rows (NaN at rate `nan`), plus rows that put one
/// feature exactly on a split threshold and on its neighbours (the float32
/// neighbours for float32 inputs). Float32 inputs are rounded to float32 here, so
/// Vigil sees the values onnxruntime sees.
fn probe_rows(
    n_features: usize,
    splits: &[(usize, f64)],
    rows: usize,
    nan: f64,
    precision: OnnxPrecision,
    seed: u64,
) -> Array2<f64> {
    let mut rng = Lcg(seed);
    let mut data = Vec::new();
    let random_row = |rng: &mut Lcg| -> Vec<f64> {
        (0..n_features)
            .map(|_| {
                if rng.next_f64() < nan {
                    f64::NAN
                } else {
                    rng.next_f64() * 1.2 - 0.1
                }
            })
            .collect()
    };
    for _ in 0..rows {
        data.extend(random_row(&mut rng));
    }
    // Vigil's features are finite: a threshold of +inf (NaN-only splits) is probed
    // from below only.
    for &(feature, t) in splits.iter().filter(|(_, t)| t.is_finite()).take(300) {
        let near = match precision {
            OnnxPrecision::Float => {
                let f = t as f32;
                [f.next_down(), f, f.next_up()].map(f64::from)
            }
            _ => [t.next_down(), t, t.next_up()],
        };
        // Thresholds beyond float32's range (or float64's MAX) have infinite
        // neighbours, which are not valid features.
        for v in near.into_iter().filter(|v| v.is_finite()) {
            let mut row = random_row(&mut rng);
            row[feature] = v;
            data.extend(row);
        }
    }
    if precision == OnnxPrecision::Float {
        data.iter_mut().for_each(|v| *v = f64::from(*v as f32));
    }
    let n = data.len() / n_features;
    Array2::from_shape_vec((n, n_features), data).unwrap()
}

/// Training data: `classes` classes from the first two features, NaN at rate `nan`.
fn training(
    rows: usize,
    features: usize,
    classes: usize,
    nan: f64,
    seed: u64,
) -> (Array2<f64>, Vec<usize>) {
    let mut rng = Lcg(seed);
    let mut x = Array2::from_shape_fn((rows, features), |_| rng.next_f64());
    let y = (0..rows)
        .map(|r| {
            let s = (x[[r, 0]] + x[[r, 1]]) / 2.0;
            let c = ((s * classes as f64) as usize).min(classes - 1);
            if rng.next_f64() < 0.1 {
                (c + 1) % classes
            } else {
                c
            }
        })
        .collect();
    x.mapv_inplace(|v| if rng.next_f64() < nan { f64::NAN } else { v });
    (x, y)
}

fn options(precision: OnnxPrecision) -> OnnxOptions {
    OnnxOptions {
        precision,
        ..Default::default()
    }
}

const PRECISIONS: [OnnxPrecision; 3] = [
    OnnxPrecision::Float,
    OnnxPrecision::Double,
    OnnxPrecision::ExactDouble,
];

fn name_of(p: OnnxPrecision) -> &'static str {
    match p {
        OnnxPrecision::Float => "f32",
        OnnxPrecision::Double => "f64",
        _ => "exact",
    }
}

/// The largest difference from Vigil's numbers allowed: float32 rounding for the
/// `ai.onnx.ml` 3 operators, float64 rounding for `ExactDouble`.
fn tolerance(p: OnnxPrecision) -> f64 {
    if p == OnnxPrecision::ExactDouble {
        1e-12
    } else {
        1e-6
    }
}

/// Agreement of one Random Forest case; returns (max probability error, label
/// disagreements). Every disagreement must be a tie in Vigil's probabilities
/// (the two largest within 1e-6), which float32 sums may break the other way.
fn compare_forest(model: &RandomForest, x: &Array2<f64>, out: &Value) -> (f64, usize) {
    let k = model.classes().len();
    let proba = model.predict_proba(x).unwrap();
    let got = floats(&out["probabilities"]);
    assert_eq!(got.len(), x.nrows() * k);
    let err = proba
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let labels = model.predict(x).unwrap();
    let onnx_labels = ints(&out["label"]);
    let mut wrong = 0;
    for (i, (a, b)) in labels.iter().zip(&onnx_labels).enumerate() {
        if *a as i64 != *b {
            let mut p = proba.row(i).to_vec();
            p.sort_by(|a, b| b.total_cmp(a));
            assert!(
                p[0] - p[1] < 1e-6,
                "row {i}: label {a} vs {b} with probabilities {p:?}"
            );
            wrong += 1;
        }
    }
    (err, wrong)
}

#[test]
fn random_forests_of_every_depth_agree_with_onnxruntime() {
    let mut reference = Reference::new("forests");
    let mut expected = Vec::new();
    for classes in [2, 5] {
        for nan in [0.0, 0.1] {
            let (x, y) = training(300, 4, classes, nan, 11 + classes as u64);
            // Labels that are not column indices: 3, 13, 23, ... for five classes.
            let y: Vec<usize> = if classes == 5 {
                y.iter().map(|c| c * 10 + 3).collect()
            } else {
                y
            };
            for depth in [1, 2, 3, 5, 8, 13, 21, 30] {
                let params = RandomForestParams {
                    n_estimators: 20,
                    max_depth: Some(depth),
                    seed: depth as u64,
                    ..Default::default()
                };
                let model = params.fit(&x, &y).unwrap();
                let splits = splits(&model.to_json());
                for precision in PRECISIONS {
                    let rows = probe_rows(4, &splits, 200, 0.1, precision, depth as u64);
                    let name = format!(
                        "rf_c{classes}_nan{}_d{depth}_{}",
                        nan > 0.0,
                        name_of(precision)
                    );
                    reference.add(
                        &name,
                        &model.to_onnx(&options(precision)).unwrap(),
                        &rows,
                        precision,
                    );
                    expected.push((name, model.clone(), rows));
                }
            }
        }
    }
    let Some(out) = reference.run() else { return };
    eprintln!("onnxruntime: {}", out["versions"]);
    for precision in PRECISIONS {
        let (mut worst, mut wrong, mut rows) = (0.0f64, 0usize, 0usize);
        for (name, model, x) in expected
            .iter()
            .filter(|e| e.0.ends_with(name_of(precision)))
        {
            let (err, w) = compare_forest(model, x, &out[name]);
            if w > 0 {
                eprintln!("{name}: {w} label disagreements, all at ties");
            }
            worst = worst.max(err);
            wrong += w;
            rows += x.nrows();
        }
        eprintln!(
            "random forests, {}: {rows} rows, max |p - p_onnx| = {worst:e}, {wrong} label disagreements (ties)",
            name_of(precision)
        );
        assert!(
            worst < tolerance(precision),
            "max probability error {worst}"
        );
        if precision == OnnxPrecision::ExactDouble {
            assert_eq!(wrong, 0, "ExactDouble keeps Vigil's ties");
        }
    }
}

/// Isolation Forest agreement; returns (max score error, flag disagreements).
fn compare_isolation(
    model: &IsolationForest,
    x: &Array2<f64>,
    out: &Value,
    score_name: &str,
) -> (f64, usize) {
    let scores = model.score_samples(x).unwrap();
    let decision = model.decision_function(x).unwrap();
    let got = floats(&out[score_name]);
    let got_decision = floats(&out["decision_function"]);
    let err = scores
        .iter()
        .zip(&got)
        .chain(decision.iter().zip(&got_decision))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let flags = model.is_anomaly(x).unwrap();
    let got_flags = bools(&out["is_anomaly"]);
    let wrong = flags.iter().zip(&got_flags).filter(|(a, b)| a != b).count();
    if let Some(labels) = out.get("label").filter(|v| !v.is_null()) {
        let predicted = model.predict(x).unwrap();
        let labels = ints(labels);
        let label_wrong = predicted
            .iter()
            .zip(&labels)
            .filter(|(a, b)| i64::from(**a) != **b)
            .count();
        assert_eq!(label_wrong, wrong, "labels follow the flags");
    }
    (err, wrong)
}

#[test]
fn isolation_forests_agree_with_onnxruntime() {
    let mut reference = Reference::new("isolation");
    let mut expected = Vec::new();
    let (x, _) = training(500, 3, 2, 0.0, 5);
    let (x_nan, _) = training(500, 3, 2, 0.1, 6);
    let variants: Vec<(&str, IsolationForestParams, &Array2<f64>)> = vec![
        (
            "default",
            IsolationForestParams {
                seed: 1,
                ..Default::default()
            },
            &x,
        ),
        (
            "nan",
            IsolationForestParams {
                seed: 2,
                ..Default::default()
            },
            &x_nan,
        ),
        (
            "contamination",
            IsolationForestParams {
                seed: 3,
                contamination: Contamination::Fraction(0.1),
                n_estimators: 50,
                ..Default::default()
            },
            &x,
        ),
        (
            "deep",
            IsolationForestParams {
                seed: 4,
                max_samples: Some(MaxSamples::Count(500)),
                max_features: MaxFeatures::Count(2),
                ..Default::default()
            },
            &x_nan,
        ),
        (
            "one_sample",
            IsolationForestParams {
                seed: 5,
                max_samples: Some(MaxSamples::Count(1)),
                n_estimators: 3,
                ..Default::default()
            },
            &x,
        ),
    ];
    for (variant, params, train) in variants {
        let model = params.fit(train).unwrap();
        let splits = splits(&model.to_json());
        for precision in PRECISIONS {
            let rows = probe_rows(3, &splits, 300, 0.1, precision, 9);
            let name = format!("if_{variant}_{}", name_of(precision));
            reference.add(
                &name,
                &model.to_onnx(&options(precision)).unwrap(),
                &rows,
                precision,
            );
            expected.push((name, model.clone(), rows, precision));
        }
    }
    let Some(out) = reference.run() else { return };
    let (mut worst, mut wrong, mut rows) = (0.0f64, 0usize, 0usize);
    for (name, model, x, precision) in &expected {
        let (err, w) = compare_isolation(model, x, &out[name], "score_samples");
        eprintln!("{name}: max score error {err:e}, {w} flag disagreements");
        assert!(err < tolerance(*precision), "{name}: score error {err}");
        worst = worst.max(err);
        wrong += w;
        rows += x.nrows();
    }
    eprintln!(
        "isolation forests: {rows} rows, max score error {worst:e}, {wrong} flag disagreements"
    );
    assert_eq!(wrong, 0);
}

#[test]
fn the_combined_file_has_one_value_per_row_per_output() {
    let (x, y) = training(400, 3, 2, 0.05, 21);
    let forest = RandomForestParams {
        n_estimators: 30,
        seed: 1,
        ..Default::default()
    }
    .fit(&x, &y)
    .unwrap();
    let iso = IsolationForestParams {
        seed: 2,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    let names: Vec<String> = ["speed", "power", "vibration"].map(String::from).to_vec();
    let mut reference = Reference::new("combined");
    let mut expected = Vec::new();
    for precision in PRECISIONS {
        let options = OnnxOptions {
            input_name: "features".into(),
            feature_names: Some(names.clone()),
            precision,
        };
        let bytes = OnnxExport::new(options)
            .random_forest(&forest, 1)
            .isolation_forest(&iso)
            .to_bytes()
            .unwrap();
        let mut s = splits(&forest.to_json());
        s.extend(splits(&iso.to_json()));
        let rows = probe_rows(3, &s, 300, 0.1, precision, 3);
        let name = format!("combined_{}", name_of(precision));
        reference.add(&name, &bytes, &rows, precision);
        expected.push((name, precision, rows));
    }
    // Either model alone.
    let x = probe_rows(3, &[], 50, 0.1, OnnxPrecision::Double, 4);
    let forest_only = OnnxExport::new(OnnxOptions::default())
        .random_forest(&forest, 0)
        .to_bytes()
        .unwrap();
    reference.add("forest_only", &forest_only, &x, OnnxPrecision::Double);
    let iso_only = OnnxExport::new(OnnxOptions::default())
        .isolation_forest(&iso)
        .to_bytes()
        .unwrap();
    reference.add("iso_only", &iso_only, &x, OnnxPrecision::Double);
    let Some(out) = reference.run() else { return };
    let got = floats(&out["forest_only"]["failure_probability"]);
    let p0 = forest.predict_proba_of(&x, 0).unwrap();
    assert!(p0.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-6));
    assert!(out["forest_only"].get("score_samples").is_none());
    let (err, wrong) = compare_isolation(&iso, &x, &out["iso_only"], "score_samples");
    assert!(err < 1e-6 && wrong == 0);
    assert!(out["iso_only"].get("failure_probability").is_none());
    for (name, precision, x) in &expected {
        let case = &out[name];
        let n = x.nrows();
        let dtype = if *precision == OnnxPrecision::Float {
            "float32"
        } else {
            "float64"
        };
        for output in [
            "failure_probability",
            "score_samples",
            "decision_function",
            "is_anomaly",
        ] {
            assert_eq!(
                case[format!("{output}.shape")],
                serde_json::json!([n]),
                "{name} {output}"
            );
        }
        assert_eq!(case["failure_probability.dtype"], dtype);
        assert_eq!(case["score_samples.dtype"], dtype);
        assert_eq!(case["is_anomaly.dtype"], "bool");
        assert_eq!(
            case["metadata"]["feature_names"],
            serde_json::to_string(&names).unwrap()
        );
        assert_eq!(case["ir_version"], precision.versions().0);
        let p = forest.predict_proba_of(x, 1).unwrap();
        let got = floats(&case["failure_probability"]);
        let err = p
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let (score_err, wrong) = compare_isolation(&iso, x, case, "score_samples");
        eprintln!(
            "{name}: {n} rows, max probability error {err:e}, max score error {score_err:e}, {wrong} flag disagreements"
        );
        let tol = tolerance(*precision);
        assert!(err < tol && score_err < tol);
        assert_eq!(wrong, 0);
    }
}

/// A further classifier's class probabilities, one `[N]` output per class,
/// next to the failure probability and the anomaly scores; bad output names
/// are typed errors.
#[test]
fn per_class_outputs_agree_with_onnxruntime() {
    let (x, y) = training(500, 3, 2, 0.05, 31);
    let (_, modes) = training(500, 3, 4, 0.0, 32);
    let fit = |y: &[usize], seed| {
        RandomForestParams {
            n_estimators: 15,
            seed,
            ..Default::default()
        }
        .fit(&x, y)
        .unwrap()
    };
    let (forest, mode_forest) = (fit(&y, 1), fit(&modes, 2));
    let iso = IsolationForestParams {
        seed: 3,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    let names: Vec<String> = ["none", "overheat", "bearing wear", "surge"]
        .map(|m| format!("mode_probability_{m}"))
        .to_vec();
    let mut reference = Reference::new("per_class");
    let mut expected = Vec::new();
    for precision in PRECISIONS {
        let bytes = OnnxExport::new(options(precision))
            .random_forest(&forest, 1)
            .isolation_forest(&iso)
            .class_probabilities(&mode_forest, names.clone())
            .to_bytes()
            .unwrap();
        let mut s = splits(&mode_forest.to_json());
        s.extend(splits(&forest.to_json()));
        let rows = probe_rows(3, &s, 200, 0.1, precision, 5);
        let name = format!("per_class_{}", name_of(precision));
        reference.add(&name, &bytes, &rows, precision);
        expected.push((name, precision, rows));
    }
    for bad in [
        names[..3].to_vec(),
        vec!["a".into(), "b".into(), "a".into(), "c".into()],
        vec!["a".into(), "score_samples".into(), "b".into(), "c".into()],
        vec!["a".into(), "".into(), "b".into(), "c".into()],
    ] {
        let e = OnnxExport::new(OnnxOptions::default())
            .random_forest(&forest, 1)
            .class_probabilities(&mode_forest, bad.clone())
            .to_bytes()
            .unwrap_err();
        assert!(
            matches!(e, ForestError::InvalidOnnxName { .. }),
            "{bad:?}: {e}"
        );
    }
    let Some(out) = reference.run() else { return };
    for (name, precision, x) in &expected {
        let case = &out[name];
        let want = mode_forest.predict_proba(x).unwrap();
        let p = forest.predict_proba_of(x, 1).unwrap();
        let failure = floats(&case["failure_probability"]);
        let mut err: f64 = p
            .iter()
            .zip(&failure)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        for (c, output) in names.iter().enumerate() {
            assert_eq!(
                case[format!("{output}.shape")],
                serde_json::json!([x.nrows()])
            );
            let got = floats(&case[output.as_str()]);
            for (a, b) in want.column(c).iter().zip(&got) {
                err = err.max((a - b).abs());
                if *precision == OnnxPrecision::ExactDouble {
                    assert_eq!(a.to_bits(), b.to_bits(), "{name} {output}: {a} vs {b}");
                }
            }
        }
        eprintln!("{name}: max error {err:e}");
        assert!(err < tolerance(*precision), "{name}: {err}");
    }
}

/// One random model pair for the property test.
#[derive(Clone, Debug)]
struct Case {
    classes: usize,
    trees: usize,
    depth: Option<usize>,
    features: usize,
    rows: usize,
    nan_train: f64,
    nan_input: f64,
    iso_samples: usize,
    precision: OnnxPrecision,
    seed: u64,
}

fn case_strategy() -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    (
        2usize..=5,
        1usize..=40,
        proptest::option::of(1usize..=30),
        2usize..=6,
        60usize..=300,
        prop_oneof![Just(0.0), 0.0..0.3],
        prop_oneof![Just(0.0), 0.0..0.3],
        1usize..=300,
        prop_oneof![
            Just(OnnxPrecision::Float),
            Just(OnnxPrecision::Double),
            Just(OnnxPrecision::ExactDouble)
        ],
        any::<u64>(),
    )
        .prop_map(
            |(
                classes,
                trees,
                depth,
                features,
                rows,
                nan_train,
                nan_input,
                iso_samples,
                precision,
                seed,
            )| Case {
                classes,
                trees,
                depth,
                features,
                rows,
                nan_train,
                nan_input,
                iso_samples,
                precision,
                seed,
            },
        )
}

/// Property: for random forests, data and inputs, onnxruntime's outputs of the
/// combined file and of `RandomForest::to_onnx` agree with Vigil on every row.
/// The cases are drawn first and run through one Python process, so the test
/// stays fast.
#[test]
fn onnxruntime_agrees_with_vigil_on_random_models() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    // A fixed seed: the same 32 cases on every run (the proptest file lists
    // no regressions to replay for a batched test).
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = case_strategy();
    let mut reference = Reference::new("property");
    let mut expected = Vec::new();
    for i in 0..32 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let (x, y) = training(
            case.rows,
            case.features,
            case.classes,
            case.nan_train,
            case.seed,
        );
        let params = RandomForestParams {
            n_estimators: case.trees,
            max_depth: case.depth,
            seed: case.seed,
            ..Default::default()
        };
        let Ok(forest) = params.fit(&x, &y) else {
            continue; // e.g. a single class drawn
        };
        let iso_params = IsolationForestParams {
            n_estimators: case.trees,
            max_samples: Some(MaxSamples::Count(case.iso_samples)),
            seed: case.seed,
            ..Default::default()
        };
        let iso = iso_params.fit(&x).unwrap();
        let class = forest.classes()[case.seed as usize % forest.classes().len()];
        let mut s = splits(&forest.to_json());
        s.extend(splits(&iso.to_json()));
        let rows = probe_rows(
            case.features,
            &s,
            100,
            case.nan_input,
            case.precision,
            case.seed ^ 1,
        );
        let o = options(case.precision);
        let combined = OnnxExport::new(o.clone())
            .random_forest(&forest, class)
            .isolation_forest(&iso)
            .to_bytes()
            .unwrap();
        reference.add(&format!("combined_{i}"), &combined, &rows, case.precision);
        reference.add(
            &format!("forest_{i}"),
            &forest.to_onnx(&o).unwrap(),
            &rows,
            case.precision,
        );
        expected.push((i, case, forest, iso, class, rows));
    }
    assert!(expected.len() >= 24, "most cases fit");
    let Some(out) = reference.run() else { return };
    let (mut p_err, mut s_err, mut exact_err) = (0.0f64, 0.0f64, 0.0f64);
    let (mut ties, mut flags, mut rows) = (0, 0, 0);
    for (i, case, forest, iso, class, x) in &expected {
        // Disagreements are ties only (compare_forest checks): leaf weights p / trees
        // summed in float32 or float64 need not reproduce Vigil's exact ties.
        let (err, wrong) = compare_forest(forest, x, &out[format!("forest_{i}")]);
        if wrong > 0 {
            eprintln!(
                "case {i} ({} trees, {:?}): {wrong} label disagreements at ties",
                case.trees, case.precision
            );
        }
        let exact = case.precision == OnnxPrecision::ExactDouble;
        if exact {
            assert_eq!(wrong, 0, "case {i} {case:?}");
        }
        ties += wrong;
        let combined = &out[format!("combined_{i}")];
        let p = forest.predict_proba_of(x, *class).unwrap();
        let got = floats(&combined["failure_probability"]);
        let err2 = p
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let (score_err, flag_wrong) = compare_isolation(iso, x, combined, "score_samples");
        let tol = tolerance(case.precision);
        assert!(
            err.max(err2) < tol,
            "case {i} {case:?}: probability error {}",
            err.max(err2)
        );
        assert!(
            score_err < tol,
            "case {i} {case:?}: score error {score_err}"
        );
        if exact {
            exact_err = exact_err.max(err).max(err2).max(score_err);
        } else {
            p_err = p_err.max(err).max(err2);
            s_err = s_err.max(score_err);
        }
        flags += flag_wrong;
        rows += x.nrows();
    }
    eprintln!(
        "property: {} cases, {rows} rows, max probability error {p_err:e}, max score error {s_err:e} (float32 operators), \
         max error {exact_err:e} (ExactDouble), \
         {ties} label disagreements at ties, {flags} flag disagreements",
        expected.len()
    );
    assert_eq!(flags, 0);
}

/// An export needs at least one tree, and a model without trees cannot exist: fit
/// needs `n_estimators >= 1` and loading refuses a file without trees.
#[test]
fn models_without_trees_cannot_be_loaded() {
    let (x, y) = training(50, 2, 2, 0.0, 1);
    let forest = RandomForestParams {
        n_estimators: 2,
        ..Default::default()
    }
    .fit(&x, &y)
    .unwrap();
    let iso = IsolationForestParams {
        n_estimators: 2,
        ..Default::default()
    }
    .fit(&x)
    .unwrap();
    let no_trees = |json: String| {
        let mut v: Value = serde_json::from_str(&json).unwrap();
        let model = v["model"].as_object_mut().unwrap();
        let (_, inner) = model.iter_mut().next().unwrap();
        inner["trees"] = serde_json::json!([]);
        v.to_string()
    };
    let e = RandomForest::from_json(&no_trees(forest.to_json())).unwrap_err();
    assert!(e.to_string().contains("no trees"), "{e}");
    let e = IsolationForest::from_json(&no_trees(iso.to_json())).unwrap_err();
    assert!(e.to_string().contains("no trees"), "{e}");
}
