//! The route handlers and the two middlewares (token check, metrics).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use vigil_features::{format_timestamp, parse_timestamp};

use super::body::{JsonObject, JsonValue, is_json_content_type, parse_object};
use super::metrics::METRICS_CONTENT_TYPE;
use super::{AppState, DriftStatus};
use crate::scoring::{Sample, SampleExplanation, Scored, ScoredBatch, ScoringError};

/// Longest machine id accepted, in bytes: ids are keys of bounded state.
const MAX_MACHINE_ID_BYTES: usize = 128;

/// A refused request: the status and the message the client sees.
#[derive(Debug)]
pub(super) struct Rejection {
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
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub(super) async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = state.model();
    Json(json!({ "status": "ok", "model": m.name, "model_version": m.version }))
}

pub(super) async fn model_info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = state.model();
    let meta = &m.bundle.meta;
    Json(json!({
        "name": m.name,
        "version": m.version,
        "run_id": m.run_id,
        "stage": m.stage,
        "aliases": m.aliases,
        "threshold": meta.threshold,
        "alarm_policy": meta.alarm_policy,
        "alarm_smoothing": meta.alarm_smoothing.map(|s| s.to_string()),
        "features": meta.feature_names.len(),
        "sensors": meta.sensors,
        "failure_modes": meta.failure_modes,
        "trained_at": meta.trained_at,
        "loaded_at": m.loaded_at,
        "metrics": m.metrics,
        "max_machines": state.config.policy.max_machines,
        "max_state_bytes_per_machine": state.core.max_bytes_per_machine(),
        "drift_reference": m.bundle.drift_reference.is_some(),
    }))
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let (tracked, warm) = state.core.machine_counts();
    state.metrics.set_machines(tracked, warm);
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// The latest drift check; 503 (with the reason) while there is no verdict.
pub(super) async fn drift(State(state): State<Arc<AppState>>) -> Response {
    let status = state.drift.latest();
    let code = match status.as_ref() {
        DriftStatus::Computed { .. } => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = serde_json::to_value(status.as_ref())
        .unwrap_or_else(|e| json!({ "status": e.to_string() }));
    if let (Some(map), Some(error)) = (body.as_object_mut(), drift_refusal(&status)) {
        map.insert("error".into(), Value::String(error));
    }
    (code, Json(body)).into_response()
}

fn drift_refusal(status: &DriftStatus) -> Option<String> {
    match status {
        DriftStatus::Computed { .. } => None,
        DriftStatus::Pending { .. } => {
            Some("no drift check has run yet for this model version".into())
        }
        DriftStatus::NoReference { model_version, .. } => Some(format!(
            "model version {model_version} has no drift reference (a model folder from before drift references): retrain to get one"
        )),
        DriftStatus::TooFewSamples {
            window_size,
            min_samples,
            ..
        } => Some(format!(
            "{window_size} warm samples in the window; drift needs at least {min_samples}"
        )),
    }
}

pub(super) async fn reset_machine(
    State(state): State<Arc<AppState>>,
    Path(machine): Path<String>,
) -> Json<Value> {
    let was_tracked = state.core.reset_machine(&machine);
    Json(json!({ "machine_id": machine, "was_tracked": was_tracked }))
}

pub(super) async fn not_found() -> Rejection {
    Rejection::new(StatusCode::NOT_FOUND, "no such route")
}

/// Every guarded route needs `Authorization: Bearer <token>` when a token is set.
pub(super) async fn require_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.config.token.as_deref() else {
        return next.run(request).await;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if constant_time_eq(p.as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => {
            let mut response = Rejection::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <token>)",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

/// Compares without an early exit, so the time taken does not tell how much of
/// a guess was right (only whether its length was).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Counts every answer by route (the route's pattern, so ids do not make labels) and status.
pub(super) async fn observe(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .observe_request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// The request body: `{"samples": [sample, ...]}`, or one sample object.
pub(super) type PredictBody = Result<Bytes, BytesRejection>;

pub(super) async fn predict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: PredictBody,
) -> Response {
    let now = Utc::now().timestamp_micros();
    let answer = parse_request(&headers, &body, &state).and_then(|(samples, explain)| {
        state
            .core
            .score_explained(&samples, now, explain)
            .map_err(refusal)
    });
    match answer {
        Ok(batch) => {
            count_flags(&state, &batch);
            state.drift.observe(&batch);
            answer_json(&batch).into_response()
        }
        Err(rejection) => rejection.into_response(),
    }
}

fn count_flags(state: &AppState, batch: &ScoredBatch) {
    let p = &batch.predictions;
    let failures = p.iter().filter(|s| s.failure).count() as u64;
    let anomalies = p.iter().filter(|s| s.is_anomaly).count() as u64;
    state
        .metrics
        .observe_scored(p.len() as u64, failures, anomalies);
    let rung = p.iter().filter(|s| s.alarm.is_some_and(|a| a.rang)).count();
    state.metrics.observe_alarms_rung(rung as u64);
}

/// The answer to a scored batch, serialised straight from the core's results
/// (no intermediate JSON tree: one allocation per sample for its time).
#[derive(Serialize)]
struct Answer<'a> {
    model: ModelRef<'a>,
    predictions: Vec<PredictionJson<'a>>,
}

#[derive(Serialize)]
struct ModelRef<'a> {
    name: &'a str,
    version: &'a str,
    run_id: &'a str,
}

#[derive(Serialize)]
struct PredictionJson<'a> {
    machine_id: &'a str,
    time: String,
    failure_probability: f64,
    failure: bool,
    threshold: f64,
    anomaly_score: f64,
    is_anomaly: bool,
    warm: bool,
    retry: bool,
    missing_sensors: &'a [String],
    /// Mode name → probability, when the model has a mode classifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_mode_probabilities: Option<BTreeMap<&'a str, f64>>,
    /// The most likely mode, when `failure` is set and the model has modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_mode: Option<&'a str>,
    /// The smoothed alarm (models with alarm smoothing), else `failure`.
    alarm: bool,
    /// The machine's open alarm episode, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm_episode: Option<EpisodeJson>,
    /// The top contributions to `failure_probability`, when `explain` was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<&'a SampleExplanation>,
}

#[derive(Serialize)]
struct EpisodeJson {
    started_at: String,
    last_alarm_at: String,
    alarmed_samples: u64,
    /// This sample started the episode: the alarm rings now.
    rang: bool,
}

fn answer_json(batch: &ScoredBatch) -> Json<Answer<'_>> {
    let m = &batch.model;
    Json(Answer {
        model: ModelRef {
            name: &m.name,
            version: &m.version,
            run_id: &m.run_id,
        },
        predictions: batch
            .predictions
            .iter()
            .map(|s| prediction_json(s, &m.bundle.meta.failure_modes))
            .collect(),
    })
}

fn prediction_json<'a>(s: &'a Scored, modes: &'a [String]) -> PredictionJson<'a> {
    PredictionJson {
        machine_id: &s.machine_id,
        time: format_timestamp(s.time),
        failure_probability: s.failure_probability,
        failure: s.failure,
        threshold: s.threshold,
        anomaly_score: s.anomaly_score,
        is_anomaly: s.is_anomaly,
        warm: s.warm,
        retry: s.retry,
        missing_sensors: &s.missing_sensors,
        failure_mode_probabilities: s.failure_mode_probabilities.as_ref().map(|p| {
            modes
                .iter()
                .map(String::as_str)
                .zip(p.iter().copied())
                .collect()
        }),
        failure_mode: s.failure_mode.as_deref(),
        alarm: s.alarm.map_or(s.failure, |a| a.alarm),
        alarm_episode: s.alarm.and_then(|a| {
            a.episode.map(|e| EpisodeJson {
                started_at: format_timestamp(e.started),
                last_alarm_at: format_timestamp(e.last_alarm),
                alarmed_samples: e.alarmed_samples,
                rang: a.rang,
            })
        }),
        explanation: s.explanation.as_ref(),
    }
}

/// The status a refused batch gets.
fn refusal(e: ScoringError) -> Rejection {
    let status = match &e {
        ScoringError::UnknownMachine { .. } => StatusCode::NOT_FOUND,
        ScoringError::TooManyMachines { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ScoringError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Rejection::new(status, e.to_string())
}

/// The request's samples in the model's sensor order, and how many
/// contributions to explain per sample (`"explain": k`); nothing is scored yet.
fn parse_request(
    headers: &HeaderMap,
    body: &PredictBody,
    state: &AppState,
) -> Result<(Vec<Sample>, Option<usize>), Rejection> {
    if !is_json_content_type(headers) {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON: send Content-Type: application/json",
        ));
    }
    let bytes = body
        .as_ref()
        .map_err(|rejection| body_refusal(rejection, state))?;
    let request = parse_object(bytes).map_err(|message| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("malformed request: {message}"),
        )
    })?;
    let mut request = request;
    let explain = parse_explain(request.remove("explain"))?;
    let raw_samples = raw_samples(request)?;
    let limit = state.config.policy.max_batch_samples;
    if raw_samples.len() > limit {
        return Err(Rejection::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} samples in one request; at most {limit} are allowed",
                raw_samples.len()
            ),
        ));
    }
    let model = state.model();
    let sensors = &model.bundle.feature_spec.sensors;
    raw_samples
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_sample(i, raw, sensors))
        .collect::<Result<Vec<_>, _>>()
        .map(|samples| (samples, explain))
        .map_err(|message| Rejection::new(StatusCode::UNPROCESSABLE_ENTITY, message))
}

/// `"explain"`: absent or `null` for none, else a whole number (checked
/// against the model by the core).
fn parse_explain(value: Option<JsonValue<'_>>) -> Result<Option<usize>, Rejection> {
    match value {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::Number(n)) if n.as_u64().is_some() => {
            Ok(Some(n.as_u64().map_or(usize::MAX, |k| {
                usize::try_from(k).unwrap_or(usize::MAX)
            })))
        }
        Some(other) => Err(Rejection::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("\"explain\" must be a whole number of contributions per sample, got {other}"),
        )),
    }
}

fn raw_samples(mut request: JsonObject<'_>) -> Result<Vec<JsonObject<'_>>, Rejection> {
    let unprocessable = |m: String| Rejection::new(StatusCode::UNPROCESSABLE_ENTITY, m);
    let Some(samples) = request.remove("samples") else {
        return Ok(vec![request]);
    };
    let JsonValue::Array(items) = samples else {
        return Err(unprocessable(
            "\"samples\" must be an array of sample objects".into(),
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            JsonValue::Object(sample) => Ok(sample),
            other => Err(unprocessable(format!(
                "sample {i} must be an object, got {other}"
            ))),
        })
        .collect()
}

fn body_refusal(rejection: &BytesRejection, state: &AppState) -> Rejection {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body over the limit of {} bytes",
                state.config.max_body_bytes
            ),
        );
    }
    Rejection::new(
        StatusCode::BAD_REQUEST,
        format!("malformed request: {}", rejection.body_text()),
    )
}

fn parse_sample(index: usize, raw: &JsonObject<'_>, sensors: &[String]) -> Result<Sample, String> {
    let machine_id = parse_machine(index, raw)?;
    let time = parse_time(index, raw)?;
    if let Some(extra) = raw
        .keys()
        .find(|k| *k != "machine_id" && *k != "time" && !sensors.iter().any(|s| s == k))
    {
        return Err(format!(
            "sample {index} (machine {machine_id}): unknown field {extra:?}; a sample has machine_id, time and the sensors {}",
            sensors.join(", ")
        ));
    }
    let values = sensors
        .iter()
        .map(|sensor| parse_value(index, &machine_id, sensor, raw.get(sensor)))
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(Sample {
        machine_id,
        time,
        values,
    })
}

fn parse_machine(index: usize, raw: &JsonObject<'_>) -> Result<String, String> {
    let id = match raw.get("machine_id") {
        Some(JsonValue::String(s)) if !s.trim().is_empty() => s.to_string(),
        Some(JsonValue::Number(n)) => n.to_string(),
        _ => return Err(format!("sample {index}: missing or empty \"machine_id\"")),
    };
    if id.len() > MAX_MACHINE_ID_BYTES || id.chars().any(char::is_control) {
        return Err(format!(
            "sample {index}: \"machine_id\" must be at most {MAX_MACHINE_ID_BYTES} bytes without control characters"
        ));
    }
    Ok(id)
}

fn parse_time(index: usize, raw: &JsonObject<'_>) -> Result<i64, String> {
    match raw.get("time") {
        Some(JsonValue::String(s)) => parse_timestamp(s).ok_or_else(|| {
            format!("sample {index}: \"time\" {s:?} is not an RFC 3339 timestamp such as 2026-01-01T00:00:10Z")
        }),
        None => Err(format!("sample {index}: missing \"time\"")),
        Some(other) => Err(format!(
            "sample {index}: \"time\" must be an RFC 3339 string, got {other}"
        )),
    }
}

/// A sensor's value: a finite number, or missing (absent or `null`, scored as
/// training scores a dropout).
fn parse_value(
    index: usize,
    machine: &str,
    sensor: &str,
    raw: Option<&JsonValue<'_>>,
) -> Result<f64, String> {
    let value = match raw {
        None | Some(JsonValue::Null) => return Ok(f64::NAN),
        Some(JsonValue::Number(n)) => n.as_f64(),
        Some(JsonValue::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "sample {index} (machine {machine}): \"{sensor}\" must be a finite number or null (missing), got {}",
            raw.map_or_else(String::new, JsonValue::to_string)
        )),
    }
}
