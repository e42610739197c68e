//! The model folder the pipeline logs and the server loads: both forests, the
//! exact feature spec they were trained with, and the decision threshold.
//!
//! ```text
//! model/
//!   MLmodel                    MLflow's model description (vigil, onnx and python_function
//!                              flavors, signature, input example)
//!   random_forest.postcard     vigil-forest's validated binary format
//!   isolation_forest.postcard
//!   failure_mode_forest.postcard   the failure-mode classifier, when the data had modes
//!   feature_spec.json          the vigil-features spec: serving computes the same features
//!   vigil_model.json           threshold, feature names, training summary
//!   drift_reference.json       per feature, order statistics of the train split for drift
//!                              checks (crate::drift; absent in folders from before drift)
//!   model.onnx                 both forests as one ONNX model (float64 in and out), for
//!                              `mlflow.pyfunc.load_model` and any onnxruntime
//!   input_example.json         test-split feature rows (pandas' "split" orient)
//!   serving_input_example.json the same rows as an MLflow scoring request
//!   python_env.yaml, conda.yaml, requirements.txt   mlflow, onnx, onnxruntime pins
//! ```
//!
//! `model.onnx` takes the 42 features (input `input`, `[N, 42]` float64, columns
//! in `feature_spec.json`'s order) and gives one value per row for each output
//! ([`ONNX_OUTPUTS`]): `failure_probability` (the Random Forest's probability of
//! [`FAILURE_CLASS`]), `score_samples` (the Isolation Forest's `score_samples`,
//! in `[-1, 0)`, lower is more anomalous: the negative of what `serve` reports as
//! `anomaly_score`), `decision_function` (`score_samples` minus the contamination
//! offset) and `is_anomaly` (`decision_function < 0`); with a failure-mode
//! classifier also `failure_mode_probability_<mode>` per mode (`none`
//! included, [`ModelBundle::mode_output_names`]). The names are
//! vigil-forest's `OnnxExport`'s; `ExactDouble` precision, so the numbers are
//! Vigil's own (no float32 cast in MLflow's pyfunc).

use std::path::Path;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_features::FeatureSpec;
use vigil_forest::{
    IsolationForest, OnnxExport, OnnxOptions, OnnxPrecision, RandomForest, Samples,
};
use vigil_metrics::{AlarmPolicy, DriftReference, Smoothing};
use vigil_tracking_client::{
    ColumnSpec, ColumnType, InputExampleInfo, MlModel, ModelSignature, OnnxFlavor, PyFuncFlavor,
    PythonEnv, Tracker, VigilFlavor,
};

use crate::error::PipelineError;
use crate::modes::FailureModeModel;

/// The file holding the Random Forest.
pub const RANDOM_FOREST_FILE: &str = "random_forest.postcard";
/// The file holding the Isolation Forest.
pub const ISOLATION_FOREST_FILE: &str = "isolation_forest.postcard";
/// The file holding the failure-mode classifier (absent when none was trained).
pub const FAILURE_MODE_FOREST_FILE: &str = "failure_mode_forest.postcard";
/// The file holding the feature spec.
pub const FEATURE_SPEC_FILE: &str = "feature_spec.json";
/// The file holding [`BundleMeta`].
pub const META_FILE: &str = "vigil_model.json";
/// Version of this folder layout.
pub const BUNDLE_FORMAT_VERSION: u32 = 1;
/// The Random Forest's class for "a failure within the label horizon".
pub const FAILURE_CLASS: usize = 1;
/// The ONNX model of both forests (MLflow's `onnx` and `python_function` flavors).
pub const ONNX_FILE: &str = "model.onnx";
/// MLflow's input example: feature rows in pandas' `split` orient.
pub const INPUT_EXAMPLE_FILE: &str = "input_example.json";
/// The input example as a request to MLflow's scoring server.
pub const SERVING_INPUT_EXAMPLE_FILE: &str = "serving_input_example.json";
/// The outputs of [`ONNX_FILE`] (one value per row each) and their types, as the
/// signature lists them; see the module documentation for what each is.
pub const ONNX_OUTPUTS: [(&str, ColumnType); 4] = [
    ("failure_probability", ColumnType::Double),
    ("score_samples", ColumnType::Double),
    ("decision_function", ColumnType::Double),
    ("is_anomaly", ColumnType::Boolean),
];
/// The prefix of the ONNX outputs that carry each failure mode's
/// probability (models with a failure-mode classifier).
pub const MODE_OUTPUT_PREFIX: &str = "failure_mode_probability_";
/// The Python packages the pyfunc flavor needs (the versions the tests run).
pub const PYTHON_REQUIREMENTS: [&str; 3] =
    ["mlflow==3.17.2", "onnx==1.23.2", "onnxruntime==1.32.0"];
/// The `onnx` package version in [`PYTHON_REQUIREMENTS`] (the onnx flavor's `onnx_version`).
pub const ONNX_VERSION: &str = "1.23.2";
/// The Python major.minor written in the env files (MLflow warns on another one).
pub const PYTHON_VERSION: &str = "3.11";
/// The MLflow version whose `MLmodel` layout the folder follows.
pub const MLFLOW_VERSION: &str = "3.17.2";

/// What the server needs besides the forests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleMeta {
    /// Layout version ([`BUNDLE_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Feature names, in model column order.
    pub feature_names: Vec<String>,
    /// Raw sensor columns a sample must carry, in order.
    pub sensors: Vec<String>,
    /// Failure probability at or above which a sample is flagged.
    pub threshold: f64,
    /// How the threshold was chosen (`f1` in folders from before policies).
    #[serde(default)]
    pub alarm_policy: AlarmPolicy,
    /// Alarm only when k of a machine's last n samples are flagged; none by
    /// default (and in folders from before smoothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_smoothing: Option<Smoothing>,
    /// Machines seen in training; the server scores only these unless told otherwise.
    pub machines: Vec<String>,
    /// Minutes ahead the failure label looks.
    pub label_horizon_minutes: f64,
    /// Training rows.
    pub trained_rows: usize,
    /// When training finished (RFC 3339).
    pub trained_at: String,
    /// The failure-mode classifier's modes (`none` first), in its class order;
    /// empty when no mode model was trained (and in folders from before modes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_modes: Vec<String>,
}

/// A trained model: Random Forest (failure within the horizon), Isolation
/// Forest (anomaly score), the feature spec and the threshold.
#[derive(Debug, Clone)]
pub struct ModelBundle {
    /// The failure classifier.
    pub random_forest: RandomForest,
    /// The anomaly detector.
    pub isolation_forest: IsolationForest,
    /// The features both were trained on.
    pub feature_spec: FeatureSpec,
    /// Threshold, names and training summary.
    pub meta: BundleMeta,
    /// Which failure is coming, when the training data had failure modes.
    pub failure_modes: Option<FailureModeModel>,
    /// The train split's feature distributions, for drift checks
    /// ([`crate::drift`]); `None` in folders from before drift references.
    pub drift_reference: Option<DriftReference>,
}

fn io_err(path: &Path, source: std::io::Error) -> PipelineError {
    PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl ModelBundle {
    /// Writes the forests, spec and meta, the ONNX model, MLflow's Python env
    /// files and `input_example` (feature rows, in model column order, e.g. a few
    /// of the test split) into `dir` (created if needed). The `MLmodel` file
    /// ([`mlmodel`](Self::mlmodel)) is written by the tracking client when the
    /// folder is logged.
    pub fn save(
        &self,
        dir: &Path,
        input_example: ArrayView2<'_, f64>,
    ) -> Result<(), PipelineError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| io_err(&path, e))
        };
        write(RANDOM_FOREST_FILE, &self.random_forest.to_bytes())?;
        write(ISOLATION_FOREST_FILE, &self.isolation_forest.to_bytes())?;
        if let Some(modes) = &self.failure_modes {
            write(FAILURE_MODE_FOREST_FILE, &modes.forest.to_bytes())?;
        }
        write(FEATURE_SPEC_FILE, &to_json(&self.feature_spec)?)?;
        write(META_FILE, &to_json(&self.meta)?)?;
        if let Some(reference) = &self.drift_reference {
            crate::drift::save_reference(dir, reference)?;
        }
        write(ONNX_FILE, &self.to_onnx()?)?;
        let (example, serving) = self.input_example_json(input_example)?;
        write(INPUT_EXAMPLE_FILE, &example)?;
        write(SERVING_INPUT_EXAMPLE_FILE, &serving)?;
        python_env().write(dir)?;
        Ok(())
    }

    /// Both forests as one ONNX model ([`ONNX_OUTPUTS`]), float64 throughout.
    pub fn to_onnx(&self) -> Result<Vec<u8>, PipelineError> {
        let options = OnnxOptions {
            feature_names: Some(self.meta.feature_names.clone()),
            precision: OnnxPrecision::ExactDouble,
            ..Default::default()
        };
        let mut export = OnnxExport::new(options)
            .random_forest(&self.random_forest, FAILURE_CLASS)
            .isolation_forest(&self.isolation_forest);
        if let Some(modes) = &self.failure_modes {
            export = export.class_probabilities(&modes.forest, self.mode_output_names());
        }
        Ok(export.to_bytes()?)
    }

    /// The ONNX outputs of the failure-mode probabilities, one per mode in
    /// class order (`failure_mode_probability_none`, …); empty without a
    /// mode model.
    pub fn mode_output_names(&self) -> Vec<String> {
        match &self.failure_modes {
            Some(_) => self
                .meta
                .failure_modes
                .iter()
                .map(|m| format!("{MODE_OUTPUT_PREFIX}{m}"))
                .collect(),
            None => Vec::new(),
        }
    }

    /// `input_example.json` (`{"columns", "data"}`) and its serving request
    /// (`{"dataframe_split": ...}`), as MLflow writes them.
    fn input_example_json(
        &self,
        rows: ArrayView2<'_, f64>,
    ) -> Result<(Vec<u8>, Vec<u8>), PipelineError> {
        let names = &self.meta.feature_names;
        if rows.ncols() != names.len() {
            return Err(PipelineError::Model(format!(
                "the input example has {} columns but the model {} features",
                rows.ncols(),
                names.len()
            )));
        }
        if rows.iter().any(|v| !v.is_finite()) {
            return Err(PipelineError::Model(
                "the input example holds a NaN or infinite value, which JSON cannot".into(),
            ));
        }
        let data: Vec<Vec<f64>> = rows.outer_iter().map(|r| r.to_vec()).collect();
        let split = json!({ "columns": names, "data": data });
        let example =
            serde_json::to_vec(&split).map_err(|e| PipelineError::Model(e.to_string()))?;
        let serving = to_json(&json!({ "dataframe_split": split }))?;
        Ok((example, serving))
    }

    /// Downloads version `version` of the registered model `name` into
    /// `scratch/<name>-v<version>` (replacing what was there) and loads it.
    pub fn download(
        tracker: &Tracker,
        name: &str,
        version: &str,
        scratch: &Path,
    ) -> Result<ModelBundle, PipelineError> {
        let dest = scratch.join(format!("{name}-v{version}"));
        // A half-written folder from an earlier, interrupted download must not be mixed in.
        match std::fs::remove_dir_all(&dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dest, e)),
        }
        tracker.download_model(&format!("models:/{name}/{version}"), &dest)?;
        ModelBundle::load(&dest)
    }

    /// Loads and validates a folder written by [`ModelBundle::save`].
    pub fn load(dir: &Path) -> Result<ModelBundle, PipelineError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| io_err(&path, e))
        };
        let meta: BundleMeta = from_json(&read(META_FILE)?, META_FILE)?;
        if meta.format_version != BUNDLE_FORMAT_VERSION {
            return Err(PipelineError::Model(format!(
                "model folder format {} is not supported (this build reads {})",
                meta.format_version, BUNDLE_FORMAT_VERSION
            )));
        }
        let feature_spec: FeatureSpec = from_json(&read(FEATURE_SPEC_FILE)?, FEATURE_SPEC_FILE)?;
        let random_forest = RandomForest::from_bytes(&read(RANDOM_FOREST_FILE)?)?;
        let isolation_forest = IsolationForest::from_bytes(&read(ISOLATION_FOREST_FILE)?)?;
        let failure_modes = if meta.failure_modes.is_empty() {
            None
        } else {
            Some(FailureModeModel {
                forest: RandomForest::from_bytes(&read(FAILURE_MODE_FOREST_FILE)?)?,
                modes: meta.failure_modes.clone(),
            })
        };
        let bundle = ModelBundle {
            random_forest,
            isolation_forest,
            feature_spec,
            meta,
            failure_modes,
            drift_reference: crate::drift::load_reference(dir)?,
        };
        bundle.check_consistent()?;
        Ok(bundle)
    }

    /// Checks that the spec, the names and both forests agree on the features.
    pub fn check_consistent(&self) -> Result<(), PipelineError> {
        let names = self.feature_spec.feature_names();
        let n = names.len();
        if names != self.meta.feature_names {
            return Err(PipelineError::Model(
                "feature names in vigil_model.json differ from the feature spec".into(),
            ));
        }
        if self.random_forest.n_features() != n || self.isolation_forest.n_features() != n {
            return Err(PipelineError::Model(format!(
                "the forests expect {} and {} features but the spec has {n}",
                self.random_forest.n_features(),
                self.isolation_forest.n_features()
            )));
        }
        self.check_modes_consistent(n)?;
        if let Some(reference) = &self.drift_reference {
            crate::drift::check_reference(reference, &self.meta.feature_names)?;
        }
        if !(0.0..=1.0).contains(&self.meta.threshold) {
            return Err(PipelineError::Model(format!(
                "threshold {} is outside [0, 1]",
                self.meta.threshold
            )));
        }
        Ok(())
    }

    /// The mode model, if any, takes the same features and knows the modes the
    /// meta lists, one per class.
    fn check_modes_consistent(&self, n_features: usize) -> Result<(), PipelineError> {
        let listed = &self.meta.failure_modes;
        match &self.failure_modes {
            None if listed.is_empty() => Ok(()),
            None => Err(PipelineError::Model(
                "vigil_model.json lists failure modes but the bundle has no mode model".into(),
            )),
            Some(m) if m.forest.n_features() != n_features => Err(PipelineError::Model(format!(
                "the failure-mode forest expects {} features but the spec has {n_features}",
                m.forest.n_features()
            ))),
            Some(m) if &m.modes != listed || m.forest.classes().len() != listed.len() => {
                Err(PipelineError::Model(format!(
                    "the failure-mode forest has {} classes but vigil_model.json lists modes {listed:?}",
                    m.forest.classes().len()
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// The `MLmodel` description: the vigil flavor (Vigil's loader), MLflow's
    /// `onnx` and `python_function` flavors (`mlflow.pyfunc.load_model`), the
    /// input example and a signature naming every input feature (the spec
    /// computes them from the sensors) and every output of the ONNX model.
    pub fn mlmodel(&self) -> MlModel {
        let flavor = VigilFlavor::new(
            "random_forest",
            "postcard",
            vigil_forest::FORMAT_VERSION,
            RANDOM_FOREST_FILE,
        );
        let inputs = self
            .meta
            .feature_names
            .iter()
            .map(|s| ColumnSpec::new(s.clone(), ColumnType::Double))
            .collect();
        let signature = ModelSignature {
            inputs,
            outputs: ONNX_OUTPUTS
                .iter()
                .map(|&(name, dtype)| ColumnSpec::new(name, dtype))
                .chain(
                    self.mode_output_names()
                        .into_iter()
                        .map(|name| ColumnSpec::new(name, ColumnType::Double)),
                )
                .collect(),
        };
        let mut model = MlModel::new(flavor, Some(signature))
            .with_onnx(OnnxFlavor::cpu(ONNX_FILE, ONNX_VERSION))
            .with_python_function(PyFuncFlavor::onnx(ONNX_FILE, PYTHON_VERSION));
        model.saved_input_example_info = Some(InputExampleInfo::dataframe_split(
            INPUT_EXAMPLE_FILE,
            SERVING_INPUT_EXAMPLE_FILE,
        ));
        model.mlflow_version = Some(MLFLOW_VERSION.to_string());
        model
    }
}

/// The env files of the pyfunc flavor ([`PYTHON_REQUIREMENTS`]).
fn python_env() -> PythonEnv {
    PythonEnv {
        python_version: PYTHON_VERSION.to_string(),
        requirements: PYTHON_REQUIREMENTS.iter().map(|r| r.to_string()).collect(),
    }
}

/// P([`FAILURE_CLASS`]) for every row of `x`. A forest trained without a
/// single failure row has no such class: nothing then looks like a failure.
pub fn failure_probability<'a>(
    model: &RandomForest,
    x: impl Into<Samples<'a>>,
) -> Result<Vec<f64>, PipelineError> {
    let x = x.into();
    if !model.classes().contains(&FAILURE_CLASS) {
        return Ok(vec![0.0; x.view().nrows()]);
    }
    Ok(model.predict_proba_of(x, FAILURE_CLASS)?.to_vec())
}

/// [`failure_probability`] of one row (the serving path).
pub fn failure_probability_row(model: &RandomForest, row: &[f64]) -> Result<f64, PipelineError> {
    if !model.classes().contains(&FAILURE_CLASS) {
        return Ok(0.0);
    }
    Ok(model.predict_proba_row_of(row, FAILURE_CLASS)?)
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, PipelineError> {
    serde_json::to_vec_pretty(value).map_err(|e| PipelineError::Model(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], file: &str) -> Result<T, PipelineError> {
    serde_json::from_slice(bytes).map_err(|e| PipelineError::Model(format!("{file}: {e}")))
}
