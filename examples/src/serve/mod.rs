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
//! | `GET /metrics` | Prometheus / OpenMetrics text: requests, latency, samples, flags, model, machines, drift |
//! | `GET /drift` | the latest drift check of the served traffic against the model's reference ([`DriftStatus`]); 503 while there is none (no reference, too few samples, not checked yet) |
//! | `POST /machines/{id}/reset` | forgets one machine's state |
//!
//! With a token set, every route but `/health` needs `Authorization: Bearer
//! <token>`. Bodies over the limit get 413, batches over the sample limit 422,
//! slow requests 408; a client that sends its headers too slowly is cut off.
//! A background poller swaps in a newly promoted version without a restart.
//! Drift is checked when [`AppState::check_drift`] is called (the binary
//! calls it on an interval): the scored, warm feature vectors go into a
//! bounded window ([`crate::drift::FeatureWindow`]) compared with the served
//! model's reference ([`crate::drift`]); a model swap empties it.

mod body;
mod drift;
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

pub use drift::{DriftMonitor, DriftStatus};
pub use http::{ConnectionLimits, serve_connections};
pub use metrics::{METRICS_CONTENT_TYPE, ServeMetrics};

use crate::drift::WindowParams;
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
    /// Bounds of the window of served feature vectors drift is checked on.
    pub drift_window: WindowParams,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            token: None,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(10),
            policy: ScoringPolicy::default(),
            scratch: PathBuf::from("vigil-output/serving"),
            drift_window: WindowParams::default(),
        }
    }
}

/// The service's shared state: the scoring core, the settings and the metrics.
#[derive(Debug)]
pub struct AppState {
    core: ScoringCore,
    config: ServeConfig,
    metrics: ServeMetrics,
    drift: DriftMonitor,
}

impl AppState {
    /// A service around a loaded model.
    pub fn new(model: LoadedModel, config: ServeConfig) -> Result<Self, PipelineError> {
        if config.token.as_deref().is_some_and(str::is_empty) {
            return Err(PipelineError::Invalid("the token must not be empty".into()));
        }
        let metrics = ServeMetrics::new();
        metrics.set_model(&model.name, &model.version);
        let drift = DriftMonitor::with_defaults(&model, config.drift_window.clone())?;
        Ok(AppState {
            core: ScoringCore::new(model, config.policy.clone())?,
            config,
            metrics,
            drift,
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
        self.drift.reset(&self.core.model())?;
        self.metrics.clear_drift();
        self.metrics.set_model(&name, &version);
        Ok(reset)
    }

    /// Compares the window of served feature vectors with the served model's
    /// reference now, keeps the result for `GET /drift` and updates the drift
    /// gauges of `/metrics`.
    pub fn check_drift(&self) -> Result<Arc<DriftStatus>, PipelineError> {
        let status = self.drift.check(&self.model())?;
        match status.drift() {
            Some(d) => self.metrics.set_drift(d),
            None => self.metrics.clear_drift(),
        }
        self.metrics.set_drift_window(status.window_size());
        Ok(status)
    }

    /// The drift monitor (window and latest check).
    pub fn drift(&self) -> &DriftMonitor {
        &self.drift
    }
}

/// The HTTP routes with the token check, limits and metrics.
pub fn router(state: Arc<AppState>) -> Router {
    let guarded = Router::new()
        .route("/predict", post(routes::predict))
        .route("/model", get(routes::model_info))
        .route("/metrics", get(routes::metrics))
        .route("/drift", get(routes::drift))
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
