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

use fixtures::ModelSize;
use fixtures::pyfunc::{agreement_on_example, agreement_on_rows, loaded_folder, pyfunc_predict};
use ndarray::{Array2, Axis};
use vigil_examples::bundle::{ModelBundle, ONNX_FILE, ONNX_OUTPUTS};
use vigil_examples::modes::{ModeFit, fit_mode_model};
use vigil_features::{FeatureSpec, TrainingSet};
use vigil_forest::RandomForestParams;
use vigil_tracking_client::{MLMODEL_FILE, MlModel};

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
    let mut bundle = fixtures::model_for(&train, &spec, size).bundle;
    // With a failure-mode classifier: its probabilities are ONNX outputs too.
    let train_set = TrainingSet::build(&train.frame, &spec).unwrap();
    let mode_params = RandomForestParams {
        n_estimators: 10,
        max_depth: Some(10),
        seed: 5,
        ..Default::default()
    };
    let ModeFit::Trained { model: modes, .. } = fit_mode_model(&mode_params, &train_set).unwrap()
    else {
        panic!("the simulation has failure modes")
    };
    bundle.meta.failure_modes = modes.modes.clone();
    bundle.failure_modes = Some(*modes);
    bundle.check_consistent().unwrap();
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
    let got = pyfunc_predict(&venv, None, model_dir.to_str().unwrap(), names, &rows);

    let seen = agreement_on_rows(&bundle, &rows, &got);
    eprintln!("{seen:?}");
    seen.assert_matches(1000);
    // The folder's input_example.json rows.
    agreement_on_example(&bundle, &got).assert_example_matches();

    // Every output the signature names, in float64 (no float32 cast on the way).
    for (name, _) in ONNX_OUTPUTS {
        assert!(got["dtypes"][name].is_string(), "no {name} column: {got}");
    }
    assert_eq!(got["dtypes"]["failure_probability"], "float64");
    assert_eq!(got["dtypes"]["score_samples"], "float64");
    assert_eq!(got["dtypes"]["is_anomaly"], "bool");
    // Each failure mode's probability, bit for bit Vigil's.
    let modes = bundle.failure_modes.as_ref().unwrap();
    let want = modes.forest.predict_proba(&rows).unwrap();
    let outputs = bundle.mode_output_names();
    assert_eq!(outputs.len(), want.ncols());
    assert!(outputs.contains(&"failure_mode_probability_none".to_string()));
    for (c, output) in outputs.iter().enumerate() {
        assert_eq!(got["dtypes"][output], "float64", "{output}");
        let column = fixtures::pyfunc::floats(&got[output.as_str()]);
        assert_eq!(column.len(), rows.nrows());
        for (a, b) in want.column(c).iter().zip(&column) {
            assert_eq!(a.to_bits(), b.to_bits(), "{output}: {a} vs {b}");
        }
    }

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

/// Runs one of the workspace's binaries in `dir` against its local store
/// (`./mlruns`), and returns its stdout.
fn run_in(dir: &std::path::Path, bin: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pipeline and `evaluate --promote` into the local store; MLflow's client,
/// reading that store (`MLFLOW_ALLOW_FILE_STORE=true`), loads
/// `models:/predictive_maintenance_model/Production` as pyfunc and predicts
/// what Vigil predicts on the run's feature rows (the test split among them).
#[test]
fn the_promoted_model_in_the_local_store_loads_through_pyfunc_by_its_registry_uri() {
    let Some(venv) = common::service("VIGIL_MLFLOW_VENV") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (machines, days, seed) = ("2", "2", "42");
    let pipeline = [
        "--machines",
        machines,
        "--days",
        days,
        "--seed",
        seed,
        "--trials",
        "2",
        "--max-samples-per-tree",
        "2000",
        "--no-progress",
    ];
    run_in(dir.path(), env!("CARGO_BIN_EXE_pipeline"), &pipeline);
    let promoted = run_in(
        dir.path(),
        env!("CARGO_BIN_EXE_evaluate"),
        &[
            "--promote",
            "--machines",
            machines,
            "--days",
            "3",
            "--min-improvement",
            "-1",
        ],
    );
    assert!(promoted.contains("promoted"), "{promoted}");

    // The model folder the run logged, and the rows it trained and tested on
    // (the same simulation, the same features).
    let output = dir.path().join("vigil-output");
    let run_dirs: Vec<_> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().path().join("model"))
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(run_dirs.len(), 1, "{run_dirs:?}");
    let logged = ModelBundle::load(&run_dirs[0]).unwrap();
    let sim = fixtures::simulation(2, 2.0, 42);
    let rows = TrainingSet::build(&sim.frame, &logged.feature_spec)
        .unwrap()
        .features
        .values;

    let store = format!("file://{}", dir.path().join("mlruns").display());
    let uri = format!(
        "models:/{}/Production",
        vigil_examples::train::DEFAULT_MODEL_NAME
    );
    let names = &logged.meta.feature_names;
    let got = pyfunc_predict(&venv, Some(&store), &uri, names, &rows);
    let registered = ModelBundle::load(&loaded_folder(&got)).unwrap();
    assert_eq!(registered.meta, logged.meta);

    let seen = agreement_on_rows(&registered, &rows, &got);
    eprintln!("local store, {uri}: {seen:?}");
    seen.assert_matches(10_000);
    agreement_on_example(&registered, &got).assert_example_matches();
}
