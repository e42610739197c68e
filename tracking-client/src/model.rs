//! The `MLmodel` file that makes a folder of artifacts an MLflow model.
//!
//! A Vigil model is logged as a folder holding the serialised model plus an
//! `MLmodel` file with a `vigil` flavor (format and version) and a signature
//! (feature names and types), so MLflow's UI and Python client
//! (`mlflow.models.Model.load`, `get_model_info`) see a normal model.
//!
//! A model can also carry MLflow's own `onnx` flavor and a `python_function`
//! flavor loaded by `mlflow.onnx` ([`OnnxFlavor`], [`PyFuncFlavor`], with the
//! environment files of [`PythonEnv`]) and an input example
//! ([`InputExampleInfo`]), written as MLflow 3.17 writes them, so
//! `mlflow.pyfunc.load_model` loads the folder (golden text in
//! `tests/mlmodel/onnx_model/MLmodel`, from `tests/mlmodel/make_golden.py`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrackingError};
use crate::yaml::{self, Doc, Yaml};

/// File name MLflow looks for.
pub const MLMODEL_FILE: &str = "MLmodel";
/// The flavor name Vigil models use.
pub const VIGIL_FLAVOR: &str = "vigil";
/// MLflow's ONNX flavor name.
pub const ONNX_FLAVOR: &str = "onnx";
/// MLflow's generic Python flavor name (what `mlflow.pyfunc.load_model` needs).
pub const PYFUNC_FLAVOR: &str = "python_function";

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

/// MLflow's `onnx` flavor: the ONNX file and the onnxruntime execution
/// providers `mlflow.onnx` asks for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxFlavor {
    /// The ONNX file inside the folder (`model.onnx`).
    pub data: String,
    /// The version of the `onnx` package the file is meant for (`1.23.2`).
    pub onnx_version: String,
    /// onnxruntime execution providers (MLflow's default: CUDA, then CPU).
    pub providers: Vec<String>,
}

impl OnnxFlavor {
    /// A flavor for `data` run on onnxruntime's CPU provider only (no warning
    /// about a missing GPU provider where there is none).
    pub fn cpu(data: impl Into<String>, onnx_version: impl Into<String>) -> Self {
        OnnxFlavor {
            data: data.into(),
            onnx_version: onnx_version.into(),
            providers: vec!["CPUExecutionProvider".to_string()],
        }
    }
}

/// MLflow's `python_function` flavor: the module whose `_load_pyfunc(data)`
/// loads the model, and the environment files beside `MLmodel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFuncFlavor {
    /// The loader (`mlflow.onnx`).
    pub loader_module: String,
    /// The path handed to the loader (`model.onnx`).
    pub data: String,
    /// The Python version the model is meant for (MLflow warns on a different major.minor).
    pub python_version: String,
    /// The conda environment file (`conda.yaml`).
    pub conda_env: String,
    /// The virtualenv description (`python_env.yaml`).
    pub virtualenv: String,
}

impl PyFuncFlavor {
    /// `mlflow.onnx` loading `data`, with [`PythonEnv`]'s file names.
    pub fn onnx(data: impl Into<String>, python_version: impl Into<String>) -> Self {
        PyFuncFlavor {
            loader_module: "mlflow.onnx".to_string(),
            data: data.into(),
            python_version: python_version.into(),
            conda_env: PythonEnv::CONDA_FILE.to_string(),
            virtualenv: PythonEnv::VIRTUALENV_FILE.to_string(),
        }
    }
}

/// `saved_input_example_info`: where the input example is and how it is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputExampleInfo {
    /// The example file inside the folder (`input_example.json`).
    pub artifact_path: String,
    /// What it holds (`dataframe`).
    pub example_type: String,
    /// pandas' JSON orient of a `dataframe` example (`split`: `{"columns", "data"}`).
    pub pandas_orient: Option<String>,
    /// The same example as a scoring-server request body (`serving_input_example.json`).
    pub serving_input_path: Option<String>,
}

impl InputExampleInfo {
    /// A DataFrame example in pandas' `split` orient at `artifact_path`, with
    /// its serving request (`{"dataframe_split": ...}`) at `serving_input_path`.
    pub fn dataframe_split(
        artifact_path: impl Into<String>,
        serving_input_path: impl Into<String>,
    ) -> Self {
        InputExampleInfo {
            artifact_path: artifact_path.into(),
            example_type: "dataframe".to_string(),
            pandas_orient: Some("split".to_string()),
            serving_input_path: Some(serving_input_path.into()),
        }
    }
}

/// The Python environment files MLflow writes beside `MLmodel` (`python_env.yaml`,
/// `conda.yaml`, `requirements.txt`), with the same content as MLflow 3.17 writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// Python version (`3.11`).
    pub python_version: String,
    /// pip requirement lines (`onnxruntime==1.32.0`).
    pub requirements: Vec<String>,
}

impl PythonEnv {
    /// The virtualenv description file.
    pub const VIRTUALENV_FILE: &str = "python_env.yaml";
    /// The conda environment file.
    pub const CONDA_FILE: &str = "conda.yaml";
    /// The pip requirements file.
    pub const REQUIREMENTS_FILE: &str = "requirements.txt";

    /// `(file name, contents)` of the three files.
    pub fn files(&self) -> [(&'static str, String); 3] {
        let py = &self.python_version;
        let virtualenv = format!(
            "python: {py}\nbuild_dependencies:\n- pip==23.2.1\n- setuptools==65.5.0\n- wheel\n\
             dependencies:\n- -r requirements.txt\n"
        );
        let mut conda = format!(
            "channels:\n- conda-forge\ndependencies:\n- python={py}\n- pip<=23.2.1\n- pip:\n"
        );
        for r in &self.requirements {
            conda.push_str(&format!("  - {r}\n"));
        }
        conda.push_str("name: mlflow-env\n");
        [
            (Self::VIRTUALENV_FILE, virtualenv),
            (Self::CONDA_FILE, conda),
            (Self::REQUIREMENTS_FILE, self.requirements.join("\n")),
        ]
    }

    /// Writes the three files into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        for (name, text) in self.files() {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| TrackingError::io(&path, e))?;
        }
        Ok(())
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
    /// MLflow's `onnx` flavor.
    pub onnx: Option<OnnxFlavor>,
    /// MLflow's `python_function` flavor.
    pub python_function: Option<PyFuncFlavor>,
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
    /// The input example, if one was saved.
    pub saved_input_example_info: Option<InputExampleInfo>,
    /// The MLflow version whose format this follows (`3.17.2`).
    pub mlflow_version: Option<String>,
}

impl MlModel {
    /// A model description for the vigil flavor.
    pub fn new(flavor: VigilFlavor, signature: Option<ModelSignature>) -> Self {
        MlModel {
            artifact_path: String::new(),
            run_id: String::new(),
            vigil: Some(flavor),
            onnx: None,
            python_function: None,
            flavors: vec![VIGIL_FLAVOR.to_string()],
            signature,
            model_uuid: uuid::Uuid::new_v4().simple().to_string(),
            utc_time_created: utc_now_string(),
            metadata: BTreeMap::new(),
            saved_input_example_info: None,
            mlflow_version: None,
        }
    }

    /// Adds (or replaces) the `onnx` flavor.
    pub fn with_onnx(mut self, flavor: OnnxFlavor) -> Self {
        self.onnx = Some(flavor);
        self.note_flavor(ONNX_FLAVOR);
        self
    }

    /// Adds (or replaces) the `python_function` flavor.
    pub fn with_python_function(mut self, flavor: PyFuncFlavor) -> Self {
        self.python_function = Some(flavor);
        self.note_flavor(PYFUNC_FLAVOR);
        self
    }

    fn note_flavor(&mut self, name: &str) {
        if !self.flavors.iter().any(|f| f == name) {
            self.flavors.push(name.to_string());
            self.flavors.sort();
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
        if let Some(f) = &self.onnx {
            // `providers` (a list) is added to the text below: the YAML subset has no lists.
            let mut m = BTreeMap::new();
            m.insert("code".into(), Yaml::Null);
            m.insert("data".into(), Yaml::Str(f.data.clone()));
            m.insert("onnx_session_options".into(), Yaml::Null);
            m.insert("onnx_version".into(), Yaml::Str(f.onnx_version.clone()));
            flavors.insert(ONNX_FLAVOR.to_string(), Yaml::Map(m));
        }
        if let Some(f) = &self.python_function {
            let mut env = BTreeMap::new();
            env.insert("conda".into(), Yaml::Str(f.conda_env.clone()));
            env.insert("virtualenv".into(), Yaml::Str(f.virtualenv.clone()));
            let mut m = BTreeMap::new();
            m.insert("data".into(), Yaml::Str(f.data.clone()));
            m.insert("env".into(), Yaml::Map(env));
            m.insert("loader_module".into(), Yaml::Str(f.loader_module.clone()));
            m.insert("python_version".into(), Yaml::Str(f.python_version.clone()));
            flavors.insert(PYFUNC_FLAVOR.to_string(), Yaml::Map(m));
        }
        doc.insert("flavors".into(), Yaml::Map(flavors));
        if let Some(v) = &self.mlflow_version {
            doc.insert("mlflow_version".into(), Yaml::Str(v.clone()));
        }
        if let Some(info) = &self.saved_input_example_info {
            let mut m = BTreeMap::new();
            m.insert(
                "artifact_path".into(),
                Yaml::Str(info.artifact_path.clone()),
            );
            if let Some(orient) = &info.pandas_orient {
                m.insert("pandas_orient".into(), Yaml::Str(orient.clone()));
            }
            if let Some(path) = &info.serving_input_path {
                m.insert("serving_input_path".into(), Yaml::Str(path.clone()));
            }
            m.insert("type".into(), Yaml::Str(info.example_type.clone()));
            doc.insert("saved_input_example_info".into(), Yaml::Map(m));
        }
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
        let text = yaml::to_string(&doc);
        match &self.onnx {
            Some(f) => append_block_list(&text, "  onnx:", "    providers", &f.providers),
            None => text,
        }
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
        let onnx = flavors_map
            .get(ONNX_FLAVOR)
            .and_then(Yaml::as_map)
            .map(|m| OnnxFlavor {
                data: s(m, "data"),
                onnx_version: s(m, "onnx_version"),
                providers: read_block_list(text, "  onnx:", "    providers:"),
            });
        let python_function = flavors_map
            .get(PYFUNC_FLAVOR)
            .and_then(Yaml::as_map)
            .map(|m| {
                let env = m.get("env").and_then(Yaml::as_map);
                let env_file = |k: &str| env.map(|e| s(e, k)).unwrap_or_default();
                PyFuncFlavor {
                    loader_module: s(m, "loader_module"),
                    data: s(m, "data"),
                    python_version: s(m, "python_version"),
                    conda_env: env_file("conda"),
                    virtualenv: env_file("virtualenv"),
                }
            });
        let saved_input_example_info = doc
            .get("saved_input_example_info")
            .and_then(Yaml::as_map)
            .map(|m| InputExampleInfo {
                artifact_path: s(m, "artifact_path"),
                example_type: s(m, "type"),
                pandas_orient: m.get("pandas_orient").map(|_| s(m, "pandas_orient")),
                serving_input_path: m
                    .get("serving_input_path")
                    .map(|_| s(m, "serving_input_path")),
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
            onnx,
            python_function,
            flavors: flavors_map.keys().cloned().collect(),
            signature,
            model_uuid: s(&doc, "model_uuid"),
            utc_time_created: s(&doc, "utc_time_created"),
            metadata: doc
                .get("metadata")
                .and_then(Yaml::as_map)
                .map(|m| m.keys().map(|k| (k.clone(), s(m, k))).collect())
                .unwrap_or_default(),
            saved_input_example_info,
            mlflow_version: doc.get("mlflow_version").map(|_| s(&doc, "mlflow_version")),
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

/// `text` with the block list `key:` / `- item` appended to the mapping that
/// starts at the line `parent` (the last key of that mapping, as keys are sorted).
fn append_block_list(text: &str, parent: &str, key: &str, items: &[String]) -> String {
    let indent = key.len() - key.trim_start().len();
    let mut out = String::with_capacity(text.len() + 64);
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        if line != parent {
            continue;
        }
        while let Some(next) = lines.peek() {
            if next.len() - next.trim_start().len() < indent {
                break;
            }
            out.push_str(next);
            out.push('\n');
            lines.next();
        }
        out.push_str(&format!("{key}:"));
        if items.is_empty() {
            out.push_str(" []\n");
        } else {
            out.push('\n');
            for item in items {
                let quoted = serde_json::to_string(item).unwrap_or_default();
                out.push_str(&format!("{}- {quoted}\n", " ".repeat(indent)));
            }
        }
    }
    out
}

/// The items of the list at line `key` (e.g. `    providers:`) inside the
/// mapping that starts at the line `parent`: block (`- a`) or flow (`[a, b]`) style.
fn read_block_list(text: &str, parent: &str, key: &str) -> Vec<String> {
    let indent = key.len() - key.trim_start().len();
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim_end() != parent)
        .skip(1)
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent);
    let Some(line) = lines.find(|l| l.starts_with(key)) else {
        return Vec::new();
    };
    let flow = line[key.len()..].trim();
    if let Some(inner) = flow.strip_prefix('[').and_then(|f| f.strip_suffix(']')) {
        return inner
            .split(',')
            .map(|i| unquote(i.trim()))
            .filter(|i| !i.is_empty())
            .collect();
    }
    lines
        .map_while(|l| {
            l.trim_start()
                .strip_prefix("- ")
                .filter(|_| l.len() - l.trim_start().len() >= indent)
        })
        .map(|i| unquote(i.trim()))
        .collect()
}

/// A plain, 'single' or "double" quoted YAML scalar's text.
fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        serde_json::from_str(v).unwrap_or_else(|_| v[1..v.len() - 1].to_string())
    } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        v[1..v.len() - 1].replace("''", "'")
    } else {
        v.to_string()
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

    /// A model with every flavor and field this module writes.
    fn full_model() -> MlModel {
        let mut m = MlModel::new(
            VigilFlavor::new("random_forest", "postcard", 2, "random_forest.postcard"),
            Some(ModelSignature {
                inputs: vec![
                    ColumnSpec::new("speed", ColumnType::Double),
                    ColumnSpec::new("vibration", ColumnType::Double),
                ],
                outputs: vec![
                    ColumnSpec::new("failure_probability", ColumnType::Double),
                    ColumnSpec::new("is_anomaly", ColumnType::Boolean),
                ],
            }),
        )
        .with_onnx(OnnxFlavor::cpu("model.onnx", "1.23.2"))
        .with_python_function(PyFuncFlavor::onnx("model.onnx", "3.11"));
        m.saved_input_example_info = Some(InputExampleInfo::dataframe_split(
            "input_example.json",
            "serving_input_example.json",
        ));
        m.mlflow_version = Some("3.17.2".into());
        m
    }

    #[test]
    fn onnx_and_pyfunc_flavors_round_trip() {
        let mut m = full_model();
        m.onnx.as_mut().unwrap().providers = vec![
            "CUDAExecutionProvider".into(),
            "CPUExecutionProvider".into(),
        ];
        let text = m.to_yaml();
        assert!(
            text.contains(
                "    onnx_version: \"1.23.2\"\n    providers:\n    - \"CUDAExecutionProvider\"\n    \
                 - \"CPUExecutionProvider\"\n  python_function:\n"
            ),
            "{text}"
        );
        let back = MlModel::parse(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.flavors, ["onnx", "python_function", "vigil"]);
        for providers in [vec![], vec!["CPUExecutionProvider".to_string()]] {
            m.onnx.as_mut().unwrap().providers = providers;
            assert_eq!(MlModel::parse(&m.to_yaml()).unwrap(), m);
        }
    }

    /// MLflow 3.17.2's own `mlflow.onnx.save_model` output (tests/mlmodel/make_golden.py).
    const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mlmodel/onnx_model");

    fn golden(file: &str) -> String {
        std::fs::read_to_string(Path::new(GOLDEN_DIR).join(file)).unwrap()
    }

    /// The golden `MLmodel` without its `signature:` block: MLflow folds the long
    /// inputs line into a multi-line single-quoted scalar, which the YAML subset
    /// (yaml.rs) misreads (its continuation line starts with `"name":`, read as a
    /// key). The signature is compared separately, from the same text.
    fn golden_without_signature() -> (String, ModelSignature) {
        let text = golden(MLMODEL_FILE);
        let mut kept = String::new();
        let mut signature = String::new();
        let mut in_signature = false;
        for line in text.lines() {
            if !line.starts_with(' ') {
                in_signature = line == "signature:";
            }
            let to = if in_signature {
                &mut signature
            } else {
                &mut kept
            };
            to.push_str(line);
            to.push('\n');
        }
        // Unfold: `'...,\n    more'` is one string joined by a space.
        let unfolded = signature.replace(",\n    ", ", ");
        let field = |k: &str| -> Vec<ColumnSpec> {
            let start = format!("  {k}: '");
            let line = unfolded.lines().find(|l| l.starts_with(&start)).unwrap();
            serde_json::from_str(line[start.len()..].trim_end_matches('\'')).unwrap()
        };
        let signature = ModelSignature {
            inputs: field("inputs"),
            outputs: field("outputs"),
        };
        (kept, signature)
    }

    #[test]
    fn golden_mlmodel_matches_mlflow() {
        let (text, signature) = golden_without_signature();
        let theirs = MlModel::parse(&text).unwrap();
        assert_eq!(
            theirs.onnx,
            Some(OnnxFlavor {
                data: "model.onnx".into(),
                onnx_version: "1.23.2".into(),
                providers: vec![
                    "CUDAExecutionProvider".into(),
                    "CPUExecutionProvider".into()
                ],
            })
        );
        assert_eq!(
            theirs.python_function,
            Some(PyFuncFlavor::onnx("model.onnx", "3.11.7"))
        );
        assert_eq!(
            theirs.saved_input_example_info,
            Some(InputExampleInfo::dataframe_split(
                "input_example.json",
                "serving_input_example.json"
            ))
        );
        assert_eq!(theirs.mlflow_version.as_deref(), Some("3.17.2"));
        assert_eq!(theirs.vigil, None);
        assert_eq!(theirs.flavors, ["onnx", "python_function"]);
        assert_eq!(theirs.signature, None);
        assert_eq!(signature.feature_names(), ["speed", "vibration"]);
        assert_eq!(
            signature.outputs,
            [ColumnSpec::new("first", ColumnType::Double)]
        );
        assert_eq!(theirs.metadata["threshold"], "0.5");

        // The same model written by this module reads back as what MLflow wrote.
        let mut ours = MlModel::new(VigilFlavor::new("x", "y", 1, "z"), None)
            .with_onnx(theirs.onnx.clone().unwrap())
            .with_python_function(theirs.python_function.clone().unwrap());
        ours.vigil = None;
        ours.flavors.retain(|f| f != VIGIL_FLAVOR);
        ours.saved_input_example_info = theirs.saved_input_example_info.clone();
        ours.mlflow_version = theirs.mlflow_version.clone();
        ours.metadata = theirs.metadata.clone();
        ours.model_uuid = theirs.model_uuid.clone();
        ours.utc_time_created = theirs.utc_time_created.clone();
        assert_eq!(MlModel::parse(&ours.to_yaml()).unwrap(), theirs);
        ours.signature = Some(signature.clone());
        let back = MlModel::parse(&ours.to_yaml()).unwrap();
        assert_eq!(back.signature, Some(signature));
    }

    #[test]
    fn golden_env_files_match_mlflow() {
        let env = PythonEnv {
            python_version: "3.11.7".into(),
            requirements: vec![
                "mlflow==3.17.2".into(),
                "onnx==1.23.2".into(),
                "onnxruntime==1.32.0".into(),
            ],
        };
        for (name, text) in env.files() {
            assert_eq!(text, golden(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        env.write(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(PythonEnv::CONDA_FILE)).unwrap(),
            golden(PythonEnv::CONDA_FILE)
        );
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
