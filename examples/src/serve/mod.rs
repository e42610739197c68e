//! The scoring service: HTTP over the [scoring core](crate::scoring). It loads
//! the Production model (or `@champion`), turns live telemetry into features
//! with the model's own spec, one sample at a time per machine, and answers
//! with a failure probability, a failure flag at the model's threshold, an
//! anomaly score, and whether the machine's windows are full (`warm`).
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /predict` | `{"samples": [{"machine_id", "time", <sensor>: value or null, ...}]}` → one prediction per sample, all or none |
//! | `GET /health` | `{"status": "ok", "model_version": ...}` (never needs the token) |
//! | `GET /model` | name, version, run, stage, threshold, training metrics |
//! | `GET /metrics` | Prometheus / OpenMetrics text: requests, latency, samples, flags, model, machines |
//! | `POST /machines/{id}/reset` | forgets one machine's state |
//!
//! With a token set, every route but `/health` needs `Authorization: Bearer
//! <token>`. Bodies over the limit get 413, batches over the sample limit 422,
//! slow requests 408; a client that sends its headers too slowly is cut off.
//! A background poller swaps in a newly promoted version without a restart.

mod body;
mod http;
mod metrics;
mod routes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

pub use http::{ConnectionLimits, serve_connections};
pub use metrics::{METRICS_CONTENT_TYPE, ServeMetrics};

use crate::error::PipelineError;
use crate::scoring::{LoadedModel, ScoringCore, ScoringPolicy};

/// The service's settings. `Default` is the CLI's defaults.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Bearer token every route but `/health` requires; `None`: no token.
    pub token: Option<String>,
    /// Largest request body in bytes (413 beyond). Default 1 MiB.
    pub max_body_bytes: usize,
    /// Longest a request may take, body included (408 beyond). Default 10 s.
    pub request_timeout: Duration,
    /// Limits of the scoring core (clock skew, spacing, machines, batch size).
    pub policy: ScoringPolicy,
    /// Where model versions are downloaded.
    pub scratch: PathBuf,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            token: None,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(10),
            policy: ScoringPolicy::default(),
            scratch: PathBuf::from("vigil-output/serving"),
        }
    }
}

/// The service's shared state: the scoring core, the settings and the metrics.
#[derive(Debug)]
pub struct AppState {
    core: ScoringCore,
    config: ServeConfig,
    metrics: ServeMetrics,
}

impl AppState {
    /// A service around a loaded model.
    pub fn new(model: LoadedModel, config: ServeConfig) -> Result<Self, PipelineError> {
        if config.token.as_deref().is_some_and(str::is_empty) {
            return Err(PipelineError::Invalid("the token must not be empty".into()));
        }
        let metrics = ServeMetrics::new();
        metrics.set_model(&model.name, &model.version);
        Ok(AppState {
            core: ScoringCore::new(model, config.policy.clone())?,
            config,
            metrics,
        })
    }

    /// The scoring core.
    pub fn core(&self) -> &ScoringCore {
        &self.core
    }

    /// The settings.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// The model in use.
    pub fn model(&self) -> Arc<LoadedModel> {
        self.core.model()
    }

    /// Swaps in another version (see [`ScoringCore::replace_model`]); returns
    /// whether the machines' state was reset because the feature spec changed.
    pub fn replace(&self, model: LoadedModel) -> Result<bool, PipelineError> {
        let (name, version) = (model.name.clone(), model.version.clone());
        let reset = self.core.replace_model(model)?;
        self.metrics.set_model(&name, &version);
        Ok(reset)
    }
}

/// The HTTP routes with the token check, limits and metrics.
pub fn router(state: Arc<AppState>) -> Router {
    let guarded = Router::new()
        .route("/predict", post(routes::predict))
        .route("/model", get(routes::model_info))
        .route("/metrics", get(routes::metrics))
        .route("/machines/{machine}/reset", post(routes::reset_machine))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            routes::require_token,
        ));
    Router::new()
        .route("/health", get(routes::health))
        .merge(guarded)
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            routes::observe,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        .with_state(state)
}
