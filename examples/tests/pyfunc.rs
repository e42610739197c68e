//! The Python "AI service" of the reference setup, as a test: a model folder
//! saved by [`ModelBundle::save`] loads with MLflow 3.17.2's
//! `mlflow.pyfunc.load_model` (the `python_function` flavor, `mlflow.onnx`)
//! in the test venv, and predicts what Vigil predicts on held-out feature rows;
//! a missing column or a wrong dtype is MLflow's signature error.
//!
//! Skipped (with a message) without `VIGIL_MLFLOW_VENV`; a failure when
//! `VIGIL_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

mod common;
mod fixtures;

use std::path::Path;
use std::process::Command;

use fixtures::ModelSize;
use ndarray::{Array2, Axis};
use serde_json::{Value, json};
use vigil_examples::bundle::{
    INPUT_EXAMPLE_FILE, ModelBundle, ONNX_FILE, ONNX_OUTPUTS, failure_probability,
};
use vigil_features::{FeatureSpec, TrainingSet};
use vigil_forest::Samples;
use vigil_tracking_client::{MLMODEL_FILE, MlModel};

/// Loads the folder (`argv[1]`) as a pyfunc model, predicts the rows of
/// `argv[2]` (pandas' split orient), then the input example, then the rows with
/// a column dropped and with a column of text; writes what it saw to `argv[3]`.
const PREDICT_PY: &str = r#"
import json, sys
import mlflow, pandas as pd
from mlflow.exceptions import MlflowException

model_dir, rows_path, out_path = sys.argv[1:4]
model = mlflow.pyfunc.load_model(model_dir)
with open(rows_path) as f:
    split = json.load(f)
df = pd.DataFrame(split["data"], columns=split["columns"])
got = model.predict(df)
out = {c: got[c].tolist() for c in got.columns}
out["dtypes"] = {c: str(got[c].dtype) for c in got.columns}
example = mlflow.models.Model.load(model_dir).load_input_example(model_dir)
out["example_rows"] = len(model.predict(example))

def error_of(frame):
    try:
        model.predict(frame)
    except MlflowException as e:
        return "MlflowException: " + str(e)
    except Exception as e:
        return "other " + type(e).__name__ + ": " + str(e)
    return None

out["missing_column"] = error_of(df.drop(columns=[df.columns[3]]))
text = df.copy()
text[df.columns[0]] = "hot"
out["wrong_dtype"] = error_of(text)
with open(out_path, "w") as f:
    json.dump(out, f)
"#;

/// Runs [`PREDICT_PY`] with the venv's python on `model_dir` and `rows`.
fn pyfunc_predict(venv: &str, model_dir: &Path, names: &[String], rows: &Array2<f64>) -> Value {
    let scratch = tempfile::tempdir().unwrap();
    let rows_path = scratch.path().join("rows.json");
    let data: Vec<Vec<f64>> = rows.outer_iter().map(|r| r.to_vec()).collect();
    std::fs::write(
        &rows_path,
        serde_json::to_vec(&json!({ "columns": names, "data": data })).unwrap(),
    )
    .unwrap();
    let script = scratch.path().join("predict.py");
    std::fs::write(&script, PREDICT_PY).unwrap();
    let out_path = scratch.path().join("out.json");
    let out = Command::new(Path::new(venv).join("bin/python"))
        .arg(&script)
        .arg(model_dir)
        .arg(&rows_path)
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed with {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A model trained on the first 3 days of a simulation and the feature rows
/// of the following day (held out, as the test split is).
fn model_and_held_out_rows() -> (ModelBundle, Array2<f64>) {
    let spec = FeatureSpec::default();
    let train = fixtures::simulation(3, 3.0, 21);
    let size = ModelSize {
        rf_trees: 20,
        rf_depth: 12,
        if_trees: 50,
        seed: 5,
        threshold: 0.4,
    };
    let bundle = fixtures::model_for(&train, &spec, size).bundle;
    let held_out = fixtures::simulation(3, 1.0, 22);
    let set = TrainingSet::build(&held_out.frame, &spec).unwrap();
    (bundle, set.features.values)
}

#[test]
fn a_saved_model_folder_loads_through_mlflow_pyfunc_with_vigils_predictions() {
    let Some(venv) = common::service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let (bundle, rows) = model_and_held_out_rows();
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("model");
    bundle
        .save(&model_dir, rows.view().split_at(Axis(0), 5).0)
        .unwrap();
    // What the tracking client writes when it logs the folder.
    let mut mlmodel = bundle.mlmodel();
    mlmodel.artifact_path = "model".into();
    std::fs::write(model_dir.join(MLMODEL_FILE), mlmodel.to_yaml()).unwrap();
    assert!(model_dir.join(ONNX_FILE).is_file());
    assert_eq!(MlModel::read(&model_dir).unwrap(), mlmodel);

    let names = &bundle.meta.feature_names;
    let got = pyfunc_predict(&venv, &model_dir, names, &rows);

    let x = Samples::named(&rows, names).unwrap();
    let probability = failure_probability(&bundle.random_forest, x).unwrap();
    let iso = &bundle.isolation_forest;
    let score = iso.score_samples(x).unwrap();
    let flag: Vec<bool> = iso.predict(x).unwrap().iter().map(|&l| l == -1).collect();
    let n = rows.nrows();
    assert!(n > 1000, "{n} held-out rows");
    let py_probability = floats(&got["failure_probability"]);
    let py_score = floats(&got["score_samples"]);
    let py_flag: Vec<bool> = got["is_anomaly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    assert_eq!(
        (py_probability.len(), py_score.len(), py_flag.len()),
        (n, n, n)
    );
    let worst = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    let probability_error = worst(&py_probability, &probability);
    let score_error = worst(&py_score, score.as_slice().unwrap());
    let threshold = bundle.meta.threshold;
    let failure_flag_differs = py_probability
        .iter()
        .zip(&probability)
        .filter(|(p, q)| (**p >= threshold) != (**q >= threshold))
        .count();
    let anomaly_flag_differs = py_flag.iter().zip(&flag).filter(|(a, b)| a != b).count();
    eprintln!(
        "{n} rows: failure probability max |Δ| {probability_error:e}, anomaly score max |Δ| \
         {score_error:e}, failure flags differing {failure_flag_differs}, anomaly flags \
         differing {anomaly_flag_differs}"
    );
    assert!(probability_error <= 1e-6, "{probability_error}");
    assert!(score_error <= 1e-6, "{score_error}");
    assert_eq!((failure_flag_differs, anomaly_flag_differs), (0, 0));
    // The failure class is present and the rows are not all alike: the check has teeth.
    assert!(probability.iter().any(|&p| p > 0.0) && flag.iter().any(|&f| f));

    // Every output the signature names, in float64 (no float32 cast on the way).
    for (name, _) in ONNX_OUTPUTS {
        assert!(got["dtypes"][name].is_string(), "no {name} column: {got}");
    }
    assert_eq!(got["dtypes"]["failure_probability"], "float64");
    assert_eq!(got["dtypes"]["score_samples"], "float64");
    assert_eq!(got["dtypes"]["is_anomaly"], "bool");
    assert_eq!(got["example_rows"], 5, "{INPUT_EXAMPLE_FILE}");

    let missing = got["missing_column"].as_str().unwrap_or_default();
    assert!(
        missing.starts_with("MlflowException: ") && missing.contains(&names[3]),
        "{missing}"
    );
    let dtype = got["wrong_dtype"].as_str().unwrap_or_default();
    assert!(
        dtype.starts_with("MlflowException: ") && dtype.contains(&names[0]),
        "{dtype}"
    );
}
