//! The model folder the pipeline logs and the server loads: both forests, the
//! exact feature spec they were trained with, and the decision threshold.
//!
//! ```text
//! model/
//!   MLmodel                    MLflow's model description (vigil flavor + signature)
//!   random_forest.postcard     vigil-forest's validated binary format
//!   isolation_forest.postcard
//!   feature_spec.json          the vigil-features spec: serving computes the same features
//!   vigil_model.json           threshold, feature names, training summary
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use vigil_features::FeatureSpec;
use vigil_forest::{IsolationForest, RandomForest, Samples};
use vigil_tracking_client::{
    ColumnSpec, ColumnType, MlModel, ModelSignature, Tracker, VigilFlavor,
};

use crate::error::PipelineError;

/// The file holding the Random Forest.
pub const RANDOM_FOREST_FILE: &str = "random_forest.postcard";
/// The file holding the Isolation Forest.
pub const ISOLATION_FOREST_FILE: &str = "isolation_forest.postcard";
/// The file holding the feature spec.
pub const FEATURE_SPEC_FILE: &str = "feature_spec.json";
/// The file holding [`BundleMeta`].
pub const META_FILE: &str = "vigil_model.json";
/// Version of this folder layout.
pub const BUNDLE_FORMAT_VERSION: u32 = 1;
/// The Random Forest's class for "a failure within the label horizon".
pub const FAILURE_CLASS: usize = 1;

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
    /// Machines seen in training; the server scores only these unless told otherwise.
    pub machines: Vec<String>,
    /// Minutes ahead the failure label looks.
    pub label_horizon_minutes: f64,
    /// Training rows.
    pub trained_rows: usize,
    /// When training finished (RFC 3339).
    pub trained_at: String,
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
}

fn io_err(path: &Path, source: std::io::Error) -> PipelineError {
    PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl ModelBundle {
    /// Writes the forests, spec and meta into `dir` (created if needed). The
    /// `MLmodel` file is written by the tracking client when the folder is logged.
    pub fn save(&self, dir: &Path) -> Result<(), PipelineError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| io_err(&path, e))
        };
        write(RANDOM_FOREST_FILE, &self.random_forest.to_bytes())?;
        write(ISOLATION_FOREST_FILE, &self.isolation_forest.to_bytes())?;
        write(FEATURE_SPEC_FILE, &to_json(&self.feature_spec)?)?;
        write(META_FILE, &to_json(&self.meta)?)?;
        Ok(())
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
        let bundle = ModelBundle {
            random_forest,
            isolation_forest,
            feature_spec,
            meta,
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
        if !(0.0..=1.0).contains(&self.meta.threshold) {
            return Err(PipelineError::Model(format!(
                "threshold {} is outside [0, 1]",
                self.meta.threshold
            )));
        }
        Ok(())
    }

    /// The `MLmodel` description: the vigil flavor and a signature naming every
    /// input feature (the spec computes them from the sensors) and output.
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
            outputs: vec![
                ColumnSpec::new("failure_probability", ColumnType::Double),
                ColumnSpec::new("anomaly_score", ColumnType::Double),
            ],
        };
        MlModel::new(flavor, Some(signature))
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
