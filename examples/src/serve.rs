//! The scoring service: loads the Production model (or `@champion`), turns
//! live telemetry into features with the model's own spec, one sample at a
//! time per machine (the incremental path of vigil-features, equal to the batch
//! features it was trained on), and answers with a failure probability, a
//! failure flag at the model's threshold and an anomaly score.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /predict` | `{"samples": [{"machine_id", "time", <sensor>: value, ...}]}` → one prediction per sample |
//! | `GET /health` | `{"status": "ok", "model_version": ...}` |
//! | `GET /model` | name, version, run, stage, threshold, training metrics |
//!
//! A background poller resolves the model URI again every few seconds and
//! swaps in a newly promoted version without a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_features::OnlineFeatures;
use vigil_features::{format_timestamp, parse_timestamp};
use vigil_tracking_client::Tracker;

use crate::bundle::{ModelBundle, failure_probability_row};
use crate::error::PipelineError;

/// A loaded model version with what `/model` reports about it.
#[derive(Debug)]
pub struct LoadedModel {
    /// The forests, spec and threshold.
    pub bundle: ModelBundle,
    /// Registered model name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Training run.
    pub run_id: String,
    /// Stage when loaded.
    pub stage: String,
    /// Aliases when loaded.
    pub aliases: Vec<String>,
    /// The training run's metrics.
    pub metrics: BTreeMap<String, f64>,
    /// When it was loaded (RFC 3339).
    pub loaded_at: String,
}

/// Resolves `uri` (`models:/name/Production`, `models:/name@champion`, ...),
/// downloads the version into `scratch` and loads it.
pub fn load_model(
    tracker: &Tracker,
    uri: &str,
    scratch: &std::path::Path,
) -> Result<LoadedModel, PipelineError> {
    let resolved = tracker.resolve_model(uri)?;
    let v = &resolved.version;
    let bundle = ModelBundle::download(tracker, &v.name, &v.version, scratch)?;
    let metrics = tracker
        .store()
        .get_run(&v.run_id)
        .map(|run| {
            run.data
                .metrics
                .iter()
                .map(|m| (m.key.clone(), m.value))
                .collect()
        })
        .unwrap_or_default();
    Ok(LoadedModel {
        bundle,
        name: v.name.clone(),
        version: v.version.clone(),
        run_id: v.run_id.clone(),
        stage: v.current_stage.clone(),
        aliases: v.aliases.clone(),
        metrics,
        loaded_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

/// Which version a URI points at now, without downloading it.
pub fn current_version(tracker: &Tracker, uri: &str) -> Result<String, PipelineError> {
    Ok(tracker.resolve_model(uri)?.version.version)
}

/// The service's shared state.
#[derive(Debug)]
pub struct AppState {
    model: RwLock<Arc<LoadedModel>>,
    online: Mutex<OnlineFeatures>,
    /// Score machines the model never saw in training.
    pub allow_new_machines: bool,
    /// Where model versions are downloaded.
    pub scratch: PathBuf,
}

impl AppState {
    /// A service around a loaded model.
    pub fn new(
        model: LoadedModel,
        allow_new_machines: bool,
        scratch: PathBuf,
    ) -> Result<Self, PipelineError> {
        let online = OnlineFeatures::new(model.bundle.feature_spec.clone())?;
        Ok(AppState {
            model: RwLock::new(Arc::new(model)),
            online: Mutex::new(online),
            allow_new_machines,
            scratch,
        })
    }

    /// The model in use.
    pub fn model(&self) -> Arc<LoadedModel> {
        match self.model.read() {
            Ok(m) => Arc::clone(&m),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps in another version. Machine histories are kept when the feature
    /// spec is unchanged (the usual case), and start afresh otherwise.
    pub fn replace(&self, model: LoadedModel) -> Result<(), PipelineError> {
        let mut online = self.online.lock().unwrap_or_else(|p| p.into_inner());
        if online.spec() != &model.bundle.feature_spec {
            *online = OnlineFeatures::new(model.bundle.feature_spec.clone())?;
        }
        let mut slot = self.model.write().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(model);
        Ok(())
    }
}

/// The HTTP routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/predict", post(predict))
        .route("/health", get(health))
        .route("/model", get(model_info))
        .with_state(state)
}

/// A 4xx answer with a message.
fn reject(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = state.model();
    Json(json!({ "status": "ok", "model": m.name, "model_version": m.version }))
}

async fn model_info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = state.model();
    Json(json!({
        "name": m.name,
        "version": m.version,
        "run_id": m.run_id,
        "stage": m.stage,
        "aliases": m.aliases,
        "threshold": m.bundle.meta.threshold,
        "features": m.bundle.meta.feature_names.len(),
        "sensors": m.bundle.meta.sensors,
        "trained_at": m.bundle.meta.trained_at,
        "loaded_at": m.loaded_at,
        "metrics": m.metrics,
    }))
}

/// The request body: samples, or a single sample object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PredictRequest {
    Batch {
        samples: Vec<serde_json::Map<String, Value>>,
    },
    One(serde_json::Map<String, Value>),
}

/// One prediction.
#[derive(Debug, Serialize)]
pub struct Prediction {
    /// The machine.
    pub machine_id: String,
    /// The sample's time (RFC 3339, UTC).
    pub time: String,
    /// Probability that the machine fails within the label horizon.
    pub failure_probability: f64,
    /// `failure_probability >= threshold`.
    pub failure: bool,
    /// The model's threshold.
    pub threshold: f64,
    /// Isolation Forest anomaly score in (0, 1]: higher is more abnormal.
    pub anomaly_score: f64,
    /// Whether the Isolation Forest flags the sample (its contamination cut).
    pub is_anomaly: bool,
}

struct Sample {
    machine: String,
    time: i64,
    values: Vec<f64>,
}

fn parse_sample(
    index: usize,
    raw: &serde_json::Map<String, Value>,
    sensors: &[String],
) -> Result<Sample, String> {
    let machine = match raw.get("machine_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(format!("sample {index}: missing or empty \"machine_id\"")),
    };
    let time = match raw.get("time") {
        Some(Value::String(s)) => parse_timestamp(s).ok_or_else(|| {
            format!("sample {index}: \"time\" {s:?} is not an ISO-8601 timestamp such as 2026-01-01T00:00:10Z")
        })?,
        None => return Err(format!("sample {index}: missing \"time\"")),
        Some(other) => {
            return Err(format!(
                "sample {index}: \"time\" must be an ISO-8601 string, got {other}"
            ));
        }
    };
    let mut values = Vec::with_capacity(sensors.len());
    for sensor in sensors {
        let value = match raw.get(sensor) {
            None | Some(Value::Null) => {
                return Err(format!(
                    "sample {index} (machine {machine}): missing sensor \"{sensor}\"; every sample needs {}",
                    sensors.join(", ")
                ));
            }
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        match value {
            Some(v) if v.is_finite() => values.push(v),
            _ => {
                return Err(format!(
                    "sample {index} (machine {machine}): \"{sensor}\" must be a finite number, got {}",
                    raw.get(sensor).map_or_else(String::new, Value::to_string)
                ));
            }
        }
    }
    Ok(Sample {
        machine,
        time,
        values,
    })
}

/// A refused request: the status and the message the client sees.
#[derive(Debug)]
struct Rejection {
    status: StatusCode,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        reject(self.status, self.message)
    }
}

async fn predict(
    State(state): State<Arc<AppState>>,
    body: Result<Json<PredictRequest>, JsonRejection>,
) -> Response {
    let model = state.model();
    let answer = parse_request(body, &model)
        .and_then(|samples| check_machines_and_order(&state, &model, &samples).map(|()| samples))
        .and_then(|samples| score_samples(&state, &model, &samples));
    match answer {
        Ok(predictions) => Json(json!({
            "model": { "name": model.name, "version": model.version, "run_id": model.run_id },
            "predictions": predictions,
        }))
        .into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

/// The request's samples, each checked against the model's sensors; no state is touched.
fn parse_request(
    body: Result<Json<PredictRequest>, JsonRejection>,
    model: &LoadedModel,
) -> Result<Vec<Sample>, Rejection> {
    let request = body.map_err(|rejection| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("malformed request: {}", rejection.body_text()),
        )
    })?;
    let raw_samples = match request.0 {
        PredictRequest::Batch { samples } => samples,
        PredictRequest::One(sample) => vec![sample],
    };
    if raw_samples.is_empty() {
        return Err(Rejection::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no samples in the request",
        ));
    }
    raw_samples
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_sample(i, raw, &model.bundle.meta.sensors))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| Rejection::new(StatusCode::UNPROCESSABLE_ENTITY, message))
}

/// Refuses machines the model never saw (unless allowed) and samples out of
/// time order, before any machine state changes.
fn check_machines_and_order(
    state: &AppState,
    model: &LoadedModel,
    samples: &[Sample],
) -> Result<(), Rejection> {
    let meta = &model.bundle.meta;
    if !state.allow_new_machines
        && let Some(s) = samples.iter().find(|s| !meta.machines.contains(&s.machine))
    {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown machine {:?}: model version {} was trained on {} (start the server with --allow-new-machines to score others)",
                s.machine,
                model.version,
                meta.machines.join(", ")
            ),
        ));
    }
    let mut last: HashMap<&str, i64> = HashMap::new();
    for s in samples {
        if let Some(&t) = last.get(s.machine.as_str())
            && s.time < t
        {
            return Err(Rejection::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "samples of machine {} are out of time order ({} after {})",
                    s.machine,
                    format_timestamp(s.time),
                    format_timestamp(t)
                ),
            ));
        }
        last.insert(&s.machine, s.time);
    }
    Ok(())
}

/// Features one sample at a time, then both forests on the row.
fn score_samples(
    state: &AppState,
    model: &LoadedModel,
    samples: &[Sample],
) -> Result<Vec<Prediction>, Rejection> {
    let bundle = &model.bundle;
    let threshold = bundle.meta.threshold;
    let internal =
        |e: PipelineError| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut predictions = Vec::with_capacity(samples.len());
    let mut online = state.online.lock().unwrap_or_else(|p| p.into_inner());
    for s in samples {
        let row = online
            .push_sanitized(&s.machine, s.time, &s.values)
            .map_err(|e| Rejection::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let p = failure_probability_row(&bundle.random_forest, &row).map_err(internal)?;
        let score = bundle
            .isolation_forest
            .score_row(&row)
            .map_err(|e| internal(e.into()))?;
        predictions.push(Prediction {
            machine_id: s.machine.clone(),
            time: format_timestamp(s.time),
            failure_probability: p,
            failure: p >= threshold,
            threshold,
            anomaly_score: -score,
            is_anomaly: score - bundle.isolation_forest.offset() < 0.0,
        });
    }
    Ok(predictions)
}
