//! Drift of the served traffic: the scored feature vectors go into a bounded
//! window ([`FeatureWindow`]); on a schedule (not per request) the window is
//! compared with the served model's reference and the result kept for
//! `GET /drift` and `/metrics`. A model swap empties the window: the new
//! version is compared with its own reference on traffic it scored.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use vigil_metrics::{DatasetDrift, DriftParams};

use crate::drift::{FeatureWindow, WindowParams, drift_params};
use crate::error::PipelineError;
use crate::scoring::{LoadedModel, ScoredBatch};

/// The latest drift check of the served traffic.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DriftStatus {
    /// No check has run yet since start or the last model swap.
    Pending {
        /// The model version.
        model_version: String,
        /// Vectors in the window.
        window_size: usize,
    },
    /// The model version has no drift reference (a folder from before drift).
    NoReference {
        /// The model version.
        model_version: String,
        /// Vectors in the window.
        window_size: usize,
    },
    /// Fewer vectors than [`WindowParams::min_samples`] so far.
    TooFewSamples {
        /// The model version.
        model_version: String,
        /// Vectors in the window.
        window_size: usize,
        /// Vectors needed.
        min_samples: usize,
        /// When checked (RFC 3339).
        computed_at: String,
    },
    /// The window against the reference.
    Computed {
        /// The model version whose reference was used.
        model_version: String,
        /// Vectors compared.
        window_size: usize,
        /// When computed (RFC 3339).
        computed_at: String,
        /// The verdict and each feature's statistic.
        #[serde(flatten)]
        drift: DatasetDrift,
    },
}

impl DriftStatus {
    /// Vectors in the window when checked.
    pub fn window_size(&self) -> usize {
        match self {
            DriftStatus::Pending { window_size, .. }
            | DriftStatus::NoReference { window_size, .. }
            | DriftStatus::TooFewSamples { window_size, .. }
            | DriftStatus::Computed { window_size, .. } => *window_size,
        }
    }

    /// The comparison, when there is one.
    pub fn drift(&self) -> Option<&DatasetDrift> {
        match self {
            DriftStatus::Computed { drift, .. } => Some(drift),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Window {
    /// The version whose scored vectors the window holds.
    version: String,
    window: FeatureWindow,
}

/// The window of served feature vectors and the latest check.
#[derive(Debug)]
pub struct DriftMonitor {
    params: DriftParams,
    window: Mutex<Window>,
    latest: RwLock<Arc<DriftStatus>>,
}

fn lock(m: &Mutex<Window>) -> MutexGuard<'_, Window> {
    // A panic while holding the lock leaves a window that is still valid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DriftMonitor {
    /// An empty window for `model`, checked with `params`.
    pub fn new(
        model: &LoadedModel,
        window: WindowParams,
        params: DriftParams,
    ) -> Result<DriftMonitor, PipelineError> {
        params.validate()?;
        let width = model.bundle.meta.feature_names.len();
        let version = model.version.clone();
        Ok(DriftMonitor {
            params,
            latest: RwLock::new(Arc::new(DriftStatus::Pending {
                model_version: version.clone(),
                window_size: 0,
            })),
            window: Mutex::new(Window {
                version,
                window: FeatureWindow::new(window, width)?,
            }),
        })
    }

    /// serve's rule ([`drift_params`]) and `window`.
    pub fn with_defaults(
        model: &LoadedModel,
        window: WindowParams,
    ) -> Result<DriftMonitor, PipelineError> {
        DriftMonitor::new(model, window, drift_params())
    }

    /// Adds a scored batch's vectors: retries (already counted) and samples of
    /// machines whose windows are not full yet (partial rolling windows, which
    /// training rows mostly are not) are left out, and so are batches of a
    /// version other than the window's (scored just before a swap).
    pub fn observe(&self, batch: &ScoredBatch) {
        let mut w = lock(&self.window);
        if w.version != batch.model.version {
            return;
        }
        for (p, features) in batch.predictions.iter().zip(&batch.features) {
            if p.warm && !p.retry {
                w.window.push(p.time, features);
            }
        }
    }

    /// Vectors in the window.
    pub fn window_size(&self) -> usize {
        lock(&self.window).window.len()
    }

    /// Starts afresh for `model` (a swap).
    pub fn reset(&self, model: &LoadedModel) -> Result<(), PipelineError> {
        let mut w = lock(&self.window);
        let width = model.bundle.meta.feature_names.len();
        w.window = FeatureWindow::new(w.window.params().clone(), width)?;
        w.version = model.version.clone();
        self.store(DriftStatus::Pending {
            model_version: model.version.clone(),
            window_size: 0,
        });
        Ok(())
    }

    /// Compares the window with `model`'s reference and keeps the result. The
    /// columns are copied under the lock; the comparison runs outside it.
    pub fn check(&self, model: &LoadedModel) -> Result<Arc<DriftStatus>, PipelineError> {
        let model_version = model.version.clone();
        let columns = {
            let w = lock(&self.window);
            let window_size = w.window.len();
            let min_samples = w.window.params().min_samples;
            if w.version != model.version {
                // A swap is under way; the reset that follows it sets the status.
                return Ok(self.latest());
            }
            if model.bundle.drift_reference.is_none() {
                return Ok(self.store(DriftStatus::NoReference {
                    model_version,
                    window_size,
                }));
            }
            if window_size < min_samples {
                return Ok(self.store(DriftStatus::TooFewSamples {
                    model_version,
                    window_size,
                    min_samples,
                    computed_at: now(),
                }));
            }
            w.window.columns()
        };
        let Some(reference) = &model.bundle.drift_reference else {
            return Ok(self.latest());
        };
        let slices: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        let drift = reference.compare(&slices, &self.params)?;
        let w = lock(&self.window);
        if w.version != model_version {
            return Ok(self.latest());
        }
        Ok(self.store(DriftStatus::Computed {
            model_version,
            window_size: slices.first().map_or(0, |c| c.len()),
            computed_at: now(),
            drift,
        }))
    }

    /// The latest status.
    pub fn latest(&self) -> Arc<DriftStatus> {
        Arc::clone(&self.latest.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn store(&self, status: DriftStatus) -> Arc<DriftStatus> {
        let status = Arc::new(status);
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&status);
        status
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}
