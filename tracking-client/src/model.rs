//! The `MLmodel` file that makes a folder of artifacts an MLflow model.
//!
//! A Vigil model is logged as a folder holding the serialised model plus an
//! `MLmodel` file with a `vigil` flavor (format and version) and a signature
//! (feature names and types), so MLflow's UI and Python client
//! (`mlflow.models.Model.load`, `get_model_info`) see a normal model.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrackingError};
use crate::yaml::{self, Doc, Yaml};

/// File name MLflow looks for.
pub const MLMODEL_FILE: &str = "MLmodel";
/// The flavor name Vigil models use.
pub const VIGIL_FLAVOR: &str = "vigil";

/// A column type in an MLflow signature (`mlflow.types.DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// bool
    Boolean,
    /// i32
    Integer,
    /// i64
    Long,
    /// f32
    Float,
    /// f64
    Double,
    /// UTF-8 text
    String,
    /// bytes
    Binary,
    /// timestamp
    Datetime,
}

/// One column of a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub dtype: ColumnType,
    /// Its name (feature name); outputs are often unnamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether it must be present.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl ColumnSpec {
    /// A required named column.
    pub fn new(name: impl Into<String>, dtype: ColumnType) -> Self {
        ColumnSpec {
            dtype,
            name: Some(name.into()),
            required: true,
        }
    }

    /// A required unnamed column (a prediction output).
    pub fn unnamed(dtype: ColumnType) -> Self {
        ColumnSpec {
            dtype,
            name: None,
            required: true,
        }
    }
}

/// What goes in and comes out of a model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelSignature {
    /// Input features, in order.
    pub inputs: Vec<ColumnSpec>,
    /// Outputs.
    pub outputs: Vec<ColumnSpec>,
}

impl ModelSignature {
    /// A signature of `f64` features named `features`, and one output of `output` type.
    pub fn doubles<I: IntoIterator<Item = S>, S: Into<String>>(
        features: I,
        output: ColumnType,
    ) -> Self {
        ModelSignature {
            inputs: features
                .into_iter()
                .map(|f| ColumnSpec::new(f, ColumnType::Double))
                .collect(),
            outputs: vec![ColumnSpec::unnamed(output)],
        }
    }

    /// Input feature names, in order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .filter_map(|c| c.name.as_deref())
            .collect()
    }
}

/// The `vigil` flavor: how to load the model files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VigilFlavor {
    /// Serialisation format of `model_file` (e.g. `postcard`, `json`).
    pub format: String,
    /// Version of that format's schema, bumped on incompatible changes.
    pub format_version: u32,
    /// What kind of model (e.g. `random_forest`, `isolation_forest`).
    pub model_type: String,
    /// The model file inside the folder.
    pub model_file: String,
    /// The vigil version that wrote it.
    pub vigil_version: String,
}

impl VigilFlavor {
    /// A flavor with this crate's version.
    pub fn new(
        model_type: impl Into<String>,
        format: impl Into<String>,
        format_version: u32,
        model_file: impl Into<String>,
    ) -> Self {
        VigilFlavor {
            format: format.into(),
            format_version,
            model_type: model_type.into(),
            model_file: model_file.into(),
            vigil_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The contents of an `MLmodel` file.
#[derive(Debug, Clone, PartialEq)]
pub struct MlModel {
    /// Where it sits in the run's artifacts (`model`).
    pub artifact_path: String,
    /// The run that logged it (filled in by [`crate::ActiveRun::log_model`]).
    pub run_id: String,
    /// The vigil flavor (absent in models not written by vigil).
    pub vigil: Option<VigilFlavor>,
    /// The names of all flavors present.
    pub flavors: Vec<String>,
    /// Input/output schema.
    pub signature: Option<ModelSignature>,
    /// A unique id.
    pub model_uuid: String,
    /// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC).
    pub utc_time_created: String,
    /// Free-form string metadata.
    pub metadata: BTreeMap<String, String>,
}

impl MlModel {
    /// A model description for the vigil flavor.
    pub fn new(flavor: VigilFlavor, signature: Option<ModelSignature>) -> Self {
        MlModel {
            artifact_path: String::new(),
            run_id: String::new(),
            vigil: Some(flavor),
            flavors: vec![VIGIL_FLAVOR.to_string()],
            signature,
            model_uuid: uuid::Uuid::new_v4().simple().to_string(),
            utc_time_created: utc_now_string(),
            metadata: BTreeMap::new(),
        }
    }

    /// The file text.
    pub fn to_yaml(&self) -> String {
        let mut doc = Doc::new();
        doc.insert(
            "artifact_path".into(),
            Yaml::Str(self.artifact_path.clone()),
        );
        let mut flavors = BTreeMap::new();
        if let Some(f) = &self.vigil {
            let mut m = BTreeMap::new();
            m.insert("format".into(), Yaml::Str(f.format.clone()));
            m.insert(
                "format_version".into(),
                Yaml::Int(i64::from(f.format_version)),
            );
            m.insert("model_file".into(), Yaml::Str(f.model_file.clone()));
            m.insert("model_type".into(), Yaml::Str(f.model_type.clone()));
            m.insert("vigil_version".into(), Yaml::Str(f.vigil_version.clone()));
            flavors.insert(VIGIL_FLAVOR.to_string(), Yaml::Map(m));
        }
        doc.insert("flavors".into(), Yaml::Map(flavors));
        if !self.metadata.is_empty() {
            doc.insert(
                "metadata".into(),
                Yaml::Map(
                    self.metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), Yaml::Str(v.clone())))
                        .collect(),
                ),
            );
        }
        doc.insert("model_uuid".into(), Yaml::Str(self.model_uuid.clone()));
        doc.insert("run_id".into(), Yaml::Str(self.run_id.clone()));
        if let Some(sig) = &self.signature {
            let mut m = BTreeMap::new();
            m.insert(
                "inputs".into(),
                Yaml::Str(serde_json::to_string(&sig.inputs).unwrap_or_default()),
            );
            m.insert(
                "outputs".into(),
                Yaml::Str(serde_json::to_string(&sig.outputs).unwrap_or_default()),
            );
            m.insert("params".into(), Yaml::Null);
            doc.insert("signature".into(), Yaml::Map(m));
        }
        doc.insert(
            "utc_time_created".into(),
            Yaml::Str(self.utc_time_created.clone()),
        );
        yaml::to_string(&doc)
    }

    /// Parses `MLmodel` text.
    pub fn parse(text: &str) -> Result<Self> {
        let corrupt = |reason: String| TrackingError::Corrupt {
            path: MLMODEL_FILE.into(),
            reason,
        };
        let doc = yaml::parse(text).map_err(corrupt)?;
        let s = |d: &BTreeMap<String, Yaml>, k: &str| match d.get(k) {
            Some(Yaml::Str(s)) => s.clone(),
            Some(Yaml::Int(i)) => i.to_string(),
            _ => String::new(),
        };
        let flavors_map = doc
            .get("flavors")
            .and_then(Yaml::as_map)
            .ok_or_else(|| corrupt("no `flavors` mapping".into()))?;
        let vigil = flavors_map
            .get(VIGIL_FLAVOR)
            .and_then(Yaml::as_map)
            .map(|m| VigilFlavor {
                format: s(m, "format"),
                format_version: m.get("format_version").and_then(Yaml::as_i64).unwrap_or(0) as u32,
                model_type: s(m, "model_type"),
                model_file: s(m, "model_file"),
                vigil_version: s(m, "vigil_version"),
            });
        let signature = match doc.get("signature").and_then(Yaml::as_map) {
            Some(sig) => {
                let cols = |k: &str| -> Result<Vec<ColumnSpec>> {
                    match sig.get(k) {
                        Some(Yaml::Str(json)) => serde_json::from_str(json)
                            .map_err(|e| corrupt(format!("signature {k}: {e}"))),
                        _ => Ok(Vec::new()),
                    }
                };
                Some(ModelSignature {
                    inputs: cols("inputs")?,
                    outputs: cols("outputs")?,
                })
            }
            None => None,
        };
        Ok(MlModel {
            artifact_path: s(&doc, "artifact_path"),
            run_id: s(&doc, "run_id"),
            vigil,
            flavors: flavors_map.keys().cloned().collect(),
            signature,
            model_uuid: s(&doc, "model_uuid"),
            utc_time_created: s(&doc, "utc_time_created"),
            metadata: doc
                .get("metadata")
                .and_then(Yaml::as_map)
                .map(|m| m.keys().map(|k| (k.clone(), s(m, k))).collect())
                .unwrap_or_default(),
        })
    }

    /// Reads `dir/MLmodel`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MLMODEL_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| TrackingError::io(&path, e))?;
        Self::parse(&text).map_err(|e| match e {
            TrackingError::Corrupt { reason, .. } => TrackingError::Corrupt { path, reason },
            other => other,
        })
    }
}

/// Now as `YYYY-MM-DD HH:MM:SS.ffffff` UTC, as MLflow writes it.
fn utc_now_string() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let micros = now.subsec_micros();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) — Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlmodel_round_trips() {
        let mut m = MlModel::new(
            VigilFlavor::new("random_forest", "postcard", 1, "model.bin"),
            Some(ModelSignature::doubles(
                ["temperature_mean_1h", "vibration_std_30m"],
                ColumnType::Long,
            )),
        );
        m.artifact_path = "model".into();
        m.run_id = "abc".into();
        m.metadata.insert("threshold".into(), "0.5".into());
        let text = m.to_yaml();
        assert!(
            text.contains("flavors:\n  vigil:\n    format: \"postcard\"\n"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"{\"type\":\"double\",\"name\":\"temperature_mean_1h\",\"required\":true}"#
            ),
            "{text}"
        );
        let back = MlModel::parse(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.signature.unwrap().feature_names(),
            ["temperature_mean_1h", "vibration_std_30m"]
        );
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
