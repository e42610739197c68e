//! The entities of MLflow's data model, shaped like its REST JSON.
//!
//! Every field is `#[serde(default)]`: the server leaves out empty lists and
//! adds new fields over time (see the wire reference).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, as MLflow stores times.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One metric point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name.
    pub key: String,
    /// The value; NaN and ±Inf are sent as the strings MLflow expects.
    #[serde(
        serialize_with = "ser_metric_value",
        deserialize_with = "de_metric_value"
    )]
    pub value: f64,
    /// When it was measured (ms since epoch).
    #[serde(default)]
    pub timestamp: i64,
    /// Training step or other x-axis value.
    #[serde(default)]
    pub step: i64,
}

impl Metric {
    /// A point at `step`, timestamped now.
    pub fn new(key: impl Into<String>, value: f64, step: i64) -> Self {
        Metric {
            key: key.into(),
            value,
            timestamp: now_millis(),
            step,
        }
    }
}

/// A run parameter (MLflow stores them as strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Name.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// A tag on a run, experiment, registered model or version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Name.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

impl Tag {
    /// A tag.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The largest finite f64, which MLflow's SQL store stores in place of +Inf.
pub const CLAMPED_INFINITY: f64 = f64::MAX;

/// Encodes a metric value the way the Python client does: NaN and ±Inf as the
/// JSON strings "NaN", "Infinity", "-Infinity" (bare tokens are silently
/// stored as 0 by the server).
fn ser_metric_value<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        s.serialize_str("NaN")
    } else if value.is_infinite() {
        s.serialize_str(if *value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        s.serialize_f64(*value)
    }
}

/// Parses a metric value written as a number or as one of the strings the
/// server and the file store use for non-finite values.
pub(crate) fn parse_metric_value(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" | "nan" | "NAN" => Some(f64::NAN),
        "Infinity" | "inf" | "+inf" | "Inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" | "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

fn de_metric_value<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(v) => Ok(v),
        NumOrStr::Str(s) => parse_metric_value(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid metric value {s:?}"))),
    }
}

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Still going.
    #[default]
    Running,
    /// Queued.
    Scheduled,
    /// Ended normally.
    Finished,
    /// Ended with an error (or dropped without being finished).
    Failed,
    /// Stopped from outside.
    Killed,
}

impl RunStatus {
    /// The name MLflow uses (`FINISHED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// The protobuf enum number the file store writes into `meta.yaml`.
    pub fn to_number(self) -> i64 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Scheduled => 2,
            RunStatus::Finished => 3,
            RunStatus::Failed => 4,
            RunStatus::Killed => 5,
        }
    }

    /// The inverse of [`RunStatus::to_number`].
    pub fn from_number(n: i64) -> Option<Self> {
        Some(match n {
            1 => RunStatus::Running,
            2 => RunStatus::Scheduled,
            3 => RunStatus::Finished,
            4 => RunStatus::Failed,
            5 => RunStatus::Killed,
            _ => return None,
        })
    }

    /// Parses the MLflow name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" => RunStatus::Running,
            "SCHEDULED" => RunStatus::Scheduled,
            "FINISHED" => RunStatus::Finished,
            "FAILED" => RunStatus::Failed,
            "KILLED" => RunStatus::Killed,
            _ => return None,
        })
    }

    /// True once the run has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Running | RunStatus::Scheduled)
    }
}

/// Which runs or experiments a search sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    /// Not deleted.
    #[default]
    ActiveOnly,
    /// Deleted only.
    DeletedOnly,
    /// Both.
    All,
}

/// Whether an entity is deleted (soft delete, restorable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStage {
    /// Live.
    #[default]
    Active,
    /// In the trash.
    Deleted,
}

impl LifecycleStage {
    /// `active` / `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }
}

/// An experiment: a named group of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Experiment {
    /// Its id (a string, even when numeric).
    pub experiment_id: String,
    /// Its unique name.
    pub name: String,
    /// Where its runs' artifacts go.
    pub artifact_location: String,
    /// Active or deleted.
    pub lifecycle_stage: LifecycleStage,
    /// Last change (ms).
    pub last_update_time: Option<i64>,
    /// Creation (ms).
    pub creation_time: Option<i64>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// Run metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunInfo {
    /// 32 lowercase hex characters.
    pub run_id: String,
    /// The experiment it belongs to.
    pub experiment_id: String,
    /// Display name.
    pub run_name: String,
    /// The user field (MLflow's UI reads the `mlflow.user` tag instead).
    pub user_id: String,
    /// Lifecycle.
    pub status: RunStatus,
    /// Start (ms).
    pub start_time: i64,
    /// End (ms), once ended.
    pub end_time: Option<i64>,
    /// Root of the run's artifacts, e.g. `mlflow-artifacts:/1/<run>/artifacts`.
    pub artifact_uri: String,
    /// Active or deleted.
    pub lifecycle_stage: LifecycleStage,
}

/// Params, latest metric values and tags of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RunData {
    /// The latest point per metric key.
    pub metrics: Vec<Metric>,
    /// Parameters.
    pub params: Vec<Param>,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// A run with its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Run {
    /// Metadata.
    pub info: RunInfo,
    /// Params, latest metrics, tags.
    pub data: RunData,
}

impl Run {
    /// The run's id.
    pub fn id(&self) -> &str {
        &self.info.run_id
    }

    /// A param value by key.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.data
            .params
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// A tag value by key.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.data
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }

    /// The latest value of a metric.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.data
            .metrics
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value)
    }
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// A run search: experiments, filter, order and paging.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSearch {
    /// Experiments to search.
    pub experiment_ids: Vec<String>,
    /// MLflow filter, e.g. `metrics.f1 > 0.8 and params.model = 'rf'`.
    pub filter: Option<String>,
    /// Order clauses, e.g. `metrics.f1 DESC`.
    pub order_by: Vec<String>,
    /// Page size (server default 1000, max 50000).
    pub max_results: Option<u32>,
    /// Token from the previous page.
    pub page_token: Option<String>,
    /// Active, deleted or both.
    pub view_type: ViewType,
}

impl RunSearch {
    /// Search these experiments.
    pub fn in_experiments<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        RunSearch {
            experiment_ids: ids.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Adds a filter.
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Adds an order clause.
    pub fn order_by(mut self, clause: impl Into<String>) -> Self {
        self.order_by.push(clause.into());
        self
    }

    /// Sets the page size.
    pub fn max_results(mut self, n: u32) -> Self {
        self.max_results = Some(n);
        self
    }

    /// Continues from a page token.
    pub fn page_token(mut self, token: impl Into<String>) -> Self {
        self.page_token = Some(token.into());
        self
    }

    /// Sets which lifecycle stages are seen.
    pub fn view_type(mut self, view: ViewType) -> Self {
        self.view_type = view;
        self
    }
}

/// A file or directory in an artifact store, relative to the root listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct FileInfo {
    /// Path relative to the artifact root (`model/MLmodel`).
    pub path: String,
    /// True for directories.
    pub is_dir: bool,
    /// Size in bytes (files only).
    pub file_size: Option<u64>,
}

/// Registry stage of a model version (deprecated by MLflow in favour of
/// aliases, still supported by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// No stage.
    None,
    /// Staging.
    Staging,
    /// Production.
    Production,
    /// Archived.
    Archived,
}

impl Stage {
    /// The name MLflow uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Parses a stage name, case-insensitively as the server does.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" => Stage::None,
            "staging" => Stage::Staging,
            "production" => Stage::Production,
            "archived" => Stage::Archived,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alias pointing at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ModelAlias {
    /// The alias, e.g. `champion`.
    pub alias: String,
    /// The version it points at.
    pub version: String,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RegisteredModel {
    /// Unique name.
    pub name: String,
    /// Creation (ms).
    pub creation_timestamp: Option<i64>,
    /// Last change (ms).
    pub last_updated_timestamp: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// The newest version per stage.
    pub latest_versions: Vec<ModelVersion>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Aliases.
    pub aliases: Vec<ModelAlias>,
}

/// A version of a registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ModelVersion {
    /// The registered model's name.
    pub name: String,
    /// Version number, as a string.
    pub version: String,
    /// Creation (ms).
    pub creation_timestamp: Option<i64>,
    /// Last change (ms).
    pub last_updated_timestamp: Option<i64>,
    /// `None`, `Staging`, `Production` or `Archived`.
    pub current_stage: String,
    /// Description.
    pub description: Option<String>,
    /// Where the model's files are (`mlflow-artifacts:/…/model`, `runs:/…`).
    pub source: String,
    /// The run that produced it.
    pub run_id: String,
    /// `READY` once usable.
    pub status: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
}

impl ModelVersion {
    /// The stage, parsed.
    pub fn stage(&self) -> Stage {
        Stage::parse(&self.current_stage).unwrap_or(Stage::None)
    }

    /// The version number.
    pub fn number(&self) -> u64 {
        self.version.parse().unwrap_or(0)
    }

    /// A tag value by key.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// What to create a run with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateRun {
    /// The experiment.
    pub experiment_id: String,
    /// Display name (`mlflow.runName`); the server makes one up when absent.
    pub run_name: Option<String>,
    /// Start (ms); now when `None`.
    pub start_time: Option<i64>,
    /// Tags, including `mlflow.user`, `mlflow.source.name`, ... .
    pub tags: Vec<Tag>,
}

/// What to create a model version with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateModelVersion {
    /// The registered model.
    pub name: String,
    /// Where the model's files are.
    pub source: String,
    /// The run that produced it.
    pub run_id: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_sent_as_the_strings_mlflow_expects() {
        let m = |v| {
            serde_json::to_string(&Metric {
                key: "k".into(),
                value: v,
                timestamp: 5,
                step: 2,
            })
            .unwrap()
        };
        assert_eq!(
            m(f64::NAN),
            r#"{"key":"k","value":"NaN","timestamp":5,"step":2}"#
        );
        assert_eq!(
            m(f64::INFINITY),
            r#"{"key":"k","value":"Infinity","timestamp":5,"step":2}"#
        );
        assert_eq!(
            m(f64::NEG_INFINITY),
            r#"{"key":"k","value":"-Infinity","timestamp":5,"step":2}"#
        );
        assert_eq!(m(0.5), r#"{"key":"k","value":0.5,"timestamp":5,"step":2}"#);
    }

    #[test]
    fn metric_values_decode_from_numbers_and_strings() {
        let parse = |s: &str| serde_json::from_str::<Metric>(s).unwrap().value;
        assert!(parse(r#"{"key":"k","value":"NaN"}"#).is_nan());
        assert_eq!(parse(r#"{"key":"k","value":"Infinity"}"#), f64::INFINITY);
        assert_eq!(parse(r#"{"key":"k","value":0}"#), 0.0);
        assert_eq!(
            parse(r#"{"key":"k","value":1.7976931348623157e308}"#),
            f64::MAX
        );
        assert!(serde_json::from_str::<Metric>(r#"{"key":"k","value":"abc"}"#).is_err());
    }

    #[test]
    fn unknown_fields_and_missing_lists_are_tolerated() {
        let run: Run = serde_json::from_str(
            r#"{"info":{"run_uuid":"x","run_id":"x","status":"FINISHED","workspace":"default"},"inputs":{}}"#,
        )
        .unwrap();
        assert_eq!(run.info.status, RunStatus::Finished);
        assert!(run.data.tags.is_empty());
    }
}
