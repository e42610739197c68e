//! Vigil features: telemetry loading, the machine simulator and rolling-window
//! feature engineering for predictive maintenance.
//!
//! Every public item lives at the crate root; this page is the table of contents.
//!
//! # A guided tour
//!
//! 1. **Load** a [`TelemetryFrame`] (columnar, sorted by machine then time):
//!    * [`read_csv`] / [`read_csv_from`] with [`CsvOptions`]: the time and
//!      machine-id columns under other names (`timestamp`, `ts`, `asset_id`, or
//!      any name you map), a [`Delimiter`] such as `;`, a [`TimeFormat`]
//!      (RFC 3339 with offsets, epoch seconds or milliseconds, or auto-detected);
//!      the [`LoadReport`] says what was tolerated. [`write_csv`] writes a frame back.
//!    * the PostgreSQL / TimescaleDB [`TelemetryStore`] (cargo feature `postgres`);
//!      [`TelemetryStore::for_each_machine`] streams a table machine by machine
//!      with bounded memory ([`StreamOptions`], [`LoadProgress`], [`StreamSummary`]);
//!    * the deterministic [`simulate`]or (the pipeline's default source), or
//!      [`TelemetryFrame::new`] / [`FrameBuilder`] from your own columns.
//! 2. **Inspect** it with [`QualityReport`]; fewer than [`MIN_TRAINING_SAMPLES`]
//!    rows is the error `Insufficient data for training (need at least 1000 samples)`.
//! 3. **Compute** a [`FeatureSpec`] (default: the reference 42 features) in batch
//!    ([`FeatureSpec::compute`] → [`FeatureMatrix`], which
//!    [`FeatureMatrix::write_csv`] hands to other tools), or one sample at a
//!    time with [`OnlineFeatures`]; both give the same numbers, bit for bit.
//!    A scoring service embeds the online path: [`FeaturePlan`] (the compiled
//!    spec, shared), one [`MachineFeatureState`] per machine with its
//!    [`MachineClock`]; [`Admission`] says whether a sample advances or is a
//!    retry, [`Pushed`] whether its row is warm; [`OnlineFeatures::check_batch`]
//!    and [`OnlineFeatures::push_batch`] ([`OnlineSample`]) are all or nothing,
//!    [`OnlineFeatures::restore_from`] warm-starts after a restart, and
//!    [`FeaturePlan::max_state_bytes`] bounds each machine's memory.
//!    The same features inside PostgreSQL (cargo feature `postgres`):
//!    [`feature_select_sql`] / [`create_feature_view_sql`] ([`SqlFeatureSource`],
//!    [`ViewKind`]) generate the SQL, [`check_sql_spacing`] says whether a table
//!    meets its one extra condition.
//! 4. **Label and split**: [`TrainingSet::build`], [`horizon_labels`],
//!    [`failure_mode_labels`], [`split_by_time`].
//!
//! Every failure is a [`FeaturesError`] saying which input was wrong (file,
//! line and column for CSV).
//!
//! ```
//! use vigil_features::{
//!     CsvOptions, Delimiter, FeatureSpec, OnlineFeatures, SimulatorConfig, TrainingSet,
//!     read_csv_from, simulate,
//! };
//!
//! // A spreadsheet export: `;`, `ts` and `asset_id`, epoch seconds (auto-detected).
//! let export = "ts;asset_id;temperature;vibration;spindle_speed;power_consumption\n\
//!               1767225600;A1;70.0;0.51;1500;12.0\n\
//!               1767225610;A1;71.0;0.49;1502;12.1\n";
//! let options = CsvOptions::default().with_delimiter(Delimiter::SEMICOLON);
//! let (frame, report) = read_csv_from(export.as_bytes(), "export.csv", &options)?;
//! assert_eq!((report.time_column.as_str(), report.machine_column.as_str()), ("ts", "asset_id"));
//!
//! // Two rows are shorter than every window: the features are a warm-up, as in pandas.
//! let spec = FeatureSpec::default();
//! let features = spec.compute(&frame)?;
//! assert_eq!(features.values[[1, 1]], 70.5); // temperature_mean_5m over both rows
//! let mut csv = Vec::new();
//! features.write_csv_to(&mut csv)?; // time,machine_id,temperature,...
//!
//! // Training data from the simulator.
//! let sim = simulate(&SimulatorConfig { machines: 2, days: 1.0, ..Default::default() })?;
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
//! # Window semantics
//!
//! Exactly pandas 3's `df.groupby('machine_id').rolling('5min', on='time')` with
//! its defaults, over the rows that the spec's
//! [admission rule](FeatureSpec#sample-admission-duplicates-and-spacing) admits
//! (a row less than `min_spacing`, default 1 s, after the machine's last
//! admitted row, a duplicate time included, repeats the previous row instead):
//! per machine, rows sorted by time, the window of a row at `t` covers
//! `(t − w, t]` up to and including that row; aggregates skip missing values; `min_periods = 1`, so the first
//! rows (and data shorter than a window) are a warm-up over the rows so far;
//! std has `ddof = 1`. `diff`/`pct_change` compare with the previous row of the
//! same machine. Standard deviations are within 1e-9 relative of an exact two-pass
//! computation and exactly 0 on constant windows (pandas itself drifts by up to
//! ~1e-6 relative there). Every window kernel is amortised O(1) per row.
//!
//! # Times
//!
//! Times are `i64` microseconds since the Unix epoch, UTC: [`parse_timestamp`],
//! [`parse_epoch`] and [`format_timestamp`] convert, with [`MICROS_PER_SECOND`]
//! and [`MICROS_PER_MINUTE`].
#![deny(missing_docs)]

mod batch;
mod csv_io;
mod dataset;
mod error;
mod frame;
mod labels;
mod online;
mod plan;
#[cfg(feature = "postgres")]
mod postgres;
mod quality;
mod simulator;
mod spec;
mod split;
#[cfg(feature = "postgres")]
mod sql_features;
mod state;
mod time;
mod window;

pub use batch::FeatureMatrix;
pub use csv_io::{
    CsvOptions, Delimiter, LoadReport, MACHINE_COLUMN_ALIASES, TIME_COLUMN_ALIASES, TimeFormat,
    read_csv, read_csv_from, write_csv, write_csv_to,
};
pub use dataset::TrainingSet;
pub use error::{FeaturesError, Result};
pub use frame::{
    FailureMode, FrameBuilder, REFERENCE_SENSORS, TelemetryFrame, compare_machine_ids,
};
pub use labels::{FailureEvent, events_from_labels, failure_mode_labels, horizon_labels};
pub use online::{OnlineFeatures, OnlineSample};
pub use plan::FeaturePlan;
#[cfg(feature = "postgres")]
pub use postgres::{
    Identifier, LoadProgress, LoadQuery, PgConfig, SchemaKind, StreamOptions, StreamSummary,
    TelemetryStore,
};
pub use quality::{
    Gap, LabelBalance, MIN_TRAINING_SAMPLES, QualityConfig, QualityReport, ensure_min_samples,
};
pub use simulator::{Simulation, SimulatorConfig, simulate};
pub use spec::{Aggregation, Feature, FeatureKind, FeatureSpec, SanitizePolicy, WindowLength};
pub use split::{TimeSplit, cutoff_at_fraction, split_by_time};
#[cfg(feature = "postgres")]
pub use sql_features::{
    SqlFeatureSource, ViewKind, check_sql_spacing, create_feature_view_sql, feature_select_sql,
    spacing_check_sql,
};
pub use state::{Admission, MachineClock, MachineFeatureState, Pushed};
pub use time::{
    MICROS_PER_MINUTE, MICROS_PER_SECOND, format_timestamp, parse_epoch, parse_timestamp,
};
