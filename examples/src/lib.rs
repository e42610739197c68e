//! The reference predictive-maintenance pipeline, composed from the Vigil
//! crates. The binaries in `src/bin/` are thin command-line fronts to these
//! modules:
//!
//! | binary | module | what it does |
//! | --- | --- | --- |
//! | `pipeline` | [`train`] | telemetry → features → split → Isolation Forest + TPE-tuned Random Forest → test evaluation → tracking → registration |
//! | `evaluate` | [`evaluate`] | compares runs, re-scores champion and challenger on the same recent data, promotes the better one |
//! | `scheduler` | [`schedule`] | runs the training job on a cron schedule, one at a time, with retries |
//! | `simulate` | [`source`] | writes simulated telemetry to PostgreSQL or CSV, at once or in real time |
//! | `serve` | [`serve`] | HTTP scoring service for the Production model, with online features |
//!
//! Everything another program would also need lives in the library crates
//! (`vigil-features`, `vigil-forest`, `vigil-tuning`, `vigil-metrics`,
//! `vigil-tracking-client`); what is here is the glue between them:
//! [`bundle::ModelBundle`] is the model folder the pipeline logs and the server
//! loads.
#![deny(missing_docs)]

pub mod bundle;
pub mod cli;
pub mod error;
pub mod evaluate;
pub mod plots;
pub mod schedule;
pub mod serve;
pub mod source;
pub mod train;

pub use error::PipelineError;

use vigil_tracking_client::{Tracker, TrackingUri};

/// Opens the tracking store the environment names: `MLFLOW_TRACKING_URI` (a
/// server, or a `file:` URI), or `./mlruns` when it is unset.
pub fn open_tracker() -> Result<Tracker, PipelineError> {
    Ok(Tracker::from_env()?)
}

/// Where a tracker writes, for log lines.
pub fn describe_tracker(tracker: &Tracker) -> String {
    match &tracker.config().uri {
        TrackingUri::Server(url) => format!("MLflow server at {url}"),
        TrackingUri::Local(dir) => format!("local store {}", dir.display()),
    }
}
