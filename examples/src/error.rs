//! The one error type of the reference pipeline: every crate's error, plus
//! what the pipeline itself checks.

use std::path::PathBuf;

/// Why a pipeline step failed. The message is meant for the person running it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Loading telemetry, computing features, labels or splits.
    #[error(transparent)]
    Features(#[from] vigil_features::FeaturesError),
    /// Fitting or loading a forest.
    #[error(transparent)]
    Forest(#[from] vigil_forest::ForestError),
    /// Hyper-parameter tuning.
    #[error(transparent)]
    Tuning(#[from] vigil_tuning::TuningError),
    /// Computing a metric.
    #[error(transparent)]
    Metrics(#[from] vigil_metrics::MetricsError),
    /// Experiment tracking or the model registry.
    #[error(transparent)]
    Tracking(#[from] vigil_tracking_client::TrackingError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model folder is unusable.
    #[error("invalid model: {0}")]
    Model(String),
    /// A plot could not be drawn.
    #[error("plot {name}: {reason}")]
    Plot {
        /// Which plot.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The configuration or the data does not allow the step.
    #[error("{0}")]
    Invalid(String),
    /// Stopped on request (SIGINT / SIGTERM) before or during a stage.
    #[error("interrupted at the {stage} stage (stop requested)")]
    Interrupted {
        /// The stage that did not run (or did not finish).
        stage: &'static str,
    },
}

impl PipelineError {
    /// The process exit code a script can rely on: 2 bad usage or input data,
    /// 3 a service (database, tracking server) unavailable, 130 interrupted,
    /// 1 anything else.
    pub fn exit_code(&self) -> u8 {
        use vigil_features::FeaturesError as F;
        use vigil_tracking_client::TrackingError as T;
        match self {
            PipelineError::Features(F::Connect { .. } | F::Database { .. }) => 3,
            PipelineError::Tracking(T::Connect { .. }) => 3,
            PipelineError::Tuning(vigil_tuning::TuningError::Postgres {
                operation: "connect",
                ..
            }) => 3,
            PipelineError::Invalid(_) | PipelineError::Features(_) => 2,
            PipelineError::Interrupted { .. } => 130,
            _ => 1,
        }
    }
}
