//! Vigil features: telemetry loading, the machine simulator and rolling-window
//! feature engineering for predictive maintenance.
//!
//! The path from raw telemetry to a training matrix:
//!
//! 1. **Load** a [`TelemetryFrame`]: [`read_csv`], the PostgreSQL store
//!    (`postgres` module, cargo feature `postgres`), or the deterministic
//!    [`simulate`]or (the pipeline's default source).
//! 2. **Inspect** it with [`QualityReport`]; fewer than [`MIN_TRAINING_SAMPLES`]
//!    rows is the error `Insufficient data for training (need at least 1000 samples)`.
//! 3. **Compute** a [`FeatureSpec`] (default: the reference 42 features) in batch
//!    ([`FeatureSpec::compute`] → [`FeatureMatrix`]), or one sample at a time
//!    with [`OnlineFeatures`]; both give the same numbers, bit for bit.
//! 4. **Label and split**: [`TrainingSet::build`], [`horizon_labels`],
//!    [`failure_mode_labels`], [`split_by_time`].
//!
//! ```
//! use vigil_features::{simulate, FeatureSpec, OnlineFeatures, SimulatorConfig, TrainingSet};
//!
//! let sim = simulate(&SimulatorConfig { machines: 2, days: 1.0, ..Default::default() })?;
//! let spec = FeatureSpec::default();
//! let set = TrainingSet::build(&sim.frame, &spec)?;
//! assert_eq!(set.features.values.ncols(), 42);
//! assert!(set.features.values.iter().all(|v| v.is_finite()));
//!
//! // Serving: the same spec, one sample at a time, gives the same rows.
//! let raw = spec.compute(&sim.frame)?;
//! let mut online = OnlineFeatures::new(spec.clone())?;
//! let frame = &sim.frame;
//! for i in 0..100 {
//!     let sample: Vec<f64> = (0..4).map(|k| frame.sensor(k)[i]).collect();
//!     let row = online.push(frame.machine_id_of(i), frame.time()[i], &sample)?;
//!     let same = row.iter().zip(raw.values.row(i)).all(|(a, b)| a.to_bits() == b.to_bits());
//!     assert!(same);
//! }
//! # Ok::<(), vigil_features::FeaturesError>(())
//! ```
//!
//! ## Window semantics
//!
//! Exactly pandas 3's `df.groupby('machine_id').rolling('5min', on='time')` with
//! its defaults: per machine, rows sorted by time (duplicates kept, in input
//! order), the window of a row at `t` covers `(t − w, t]` up to and including
//! that row; aggregates skip missing values; `min_periods = 1`; std has
//! `ddof = 1`. `diff`/`pct_change` compare with the previous row of the same
//! machine. Standard deviations are within 1e-9 relative of an exact two-pass
//! computation and exactly 0 on constant windows (pandas itself drifts by up to
//! ~1e-6 relative there). Every window kernel is amortised O(1) per row.
#![deny(missing_docs)]

pub mod batch;
pub mod csv_io;
pub mod dataset;
pub mod error;
pub mod frame;
pub mod labels;
pub mod online;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod quality;
pub mod simulator;
pub mod spec;
pub mod split;
pub mod time;
mod window;

pub use batch::FeatureMatrix;
pub use csv_io::{CsvOptions, LoadReport, read_csv, read_csv_from, write_csv, write_csv_to};
pub use dataset::TrainingSet;
pub use error::{FeaturesError, Result};
pub use frame::{
    FailureMode, FrameBuilder, REFERENCE_SENSORS, TelemetryFrame, compare_machine_ids,
};
pub use labels::{FailureEvent, events_from_labels, failure_mode_labels, horizon_labels};
pub use online::{MachineFeatureState, OnlineFeatures};
pub use quality::{
    Gap, LabelBalance, MIN_TRAINING_SAMPLES, QualityConfig, QualityReport, ensure_min_samples,
};
pub use simulator::{Simulation, SimulatorConfig, simulate};
pub use spec::{Aggregation, Feature, FeatureKind, FeatureSpec, SanitizePolicy, WindowLength};
pub use split::{TimeSplit, cutoff_at_fraction, split_by_time};
