//! Random Forest and Isolation Forest for predictive maintenance, written from
//! scratch: parallel with rayon, deterministic for a seed, compact and safe to load.
//!
//! - [`RandomForestParams`] → [`RandomForest`]: a classifier (binary or multi-class)
//!   with scikit-learn's parameters and defaults, missing values (NaN) in fit and
//!   predict, out-of-bag score, impurity and [permutation](permutation_importance)
//!   importances, and a fast one-row path for serving.
//! - [`IsolationForestParams`] → [`IsolationForest`]: anomaly scores without labels,
//!   with scikit-learn's `score_samples` / `decision_function` / `predict`.
//! - Both save to a versioned compact binary format and JSON (`to_bytes`,
//!   `to_json`) and load with full validation (`from_bytes`, `from_json`).
//! - With the feature `onnx`: export to ONNX with `ai.onnx.ml`'s tree operators
//!   (`RandomForest::to_onnx`, `IsolationForest::to_onnx`, and `OnnxExport` for one
//!   file with one value per row per output, as MLflow's pyfunc flavor wants),
//!   checked against onnxruntime.
//!
//! - Training sets larger than memory: [`BinEdges`] from a sample of rows, then
//!   [`BinnedBuilder`] appends each chunk (e.g. a machine) as 1-byte bin codes,
//!   and [`RandomForestParams::fit_binned`] fits on the [`BinnedSamples`], with
//!   optional per-row sample weights (drawn through the bootstrap). The forest
//!   does not depend on the chunking or the thread count; it splits every node
//!   on bins, where `fit` splits small nodes on raw values.
//!
//! - Explanations: exact path-dependent TreeSHAP values (what `shap`'s
//!   `TreeExplainer` computes for scikit-learn's forests), per row and feature, for
//!   each class probability ([`RandomForest::shap_values`]) and for the Isolation
//!   Forest's mean path length ([`IsolationForest::shap_values`]), as an
//!   [`Explanation`]: the expected value plus the contributions sum to the output.
//!   They need the node covers that fit records (models saved in format version 1
//!   have none: [`ForestError::NoCovers`]).
//!
//! Matrices are passed as an `ArrayView2<f64>` or `&Array2<f64>`, or as
//! [`Samples`] with feature names, so that errors about a value name its feature.
//! Labels may be of any integer type, `bool` or whole `f64`s ([`Labels`]);
//! predictions are the classes as `usize`.
//!
//! Hyper-parameters are plain structs with documented defaults; `fit` checks them
//! and the data and returns a [`ForestError`] naming what was wrong, never panics.
//! Work runs in the caller's rayon pool (install one to limit threads); the same
//! seed gives a bit-identical model on any number of threads.
//!
//! # Example
//!
//! ```
//! use ndarray::Array2;
//! use vigil_forest::{IsolationForestParams, RandomForest, RandomForestParams, Samples};
//!
//! // A toy problem: the label (a `u8`, as vigil-features gives it) is whether the
//! // first two features sum above 1.
//! let x = Array2::from_shape_fn((400, 3), |(i, j)| ((i * 7 + j * 13) % 97) as f64 / 97.0);
//! let y: Vec<u8> = x.rows().into_iter().map(|r| u8::from(r[0] + r[1] > 1.0)).collect();
//! let names = ["speed", "power", "vibration"].map(String::from);
//!
//! let params = RandomForestParams { n_estimators: 50, oob_score: true, seed: 7, ..Default::default() };
//! let model = params.fit(Samples::named(&x, &names)?, &y)?;
//! assert!(model.score(&x, &y)? > 0.95);
//! assert!(model.oob_score().unwrap() > 0.8);
//!
//! // One row, as a serving loop would call it: the probability of class 1.
//! assert!(model.predict_proba_row_of(&[0.9, 0.8, 0.1], 1)? > 0.5);
//!
//! // Save and load: same predictions.
//! let loaded = RandomForest::from_bytes(&model.to_bytes())?;
//! assert_eq!(loaded.predict_proba(x.view())?, model.predict_proba(x.view())?);
//!
//! // Anomaly scores: lower is more abnormal; predict gives -1 for anomalies.
//! let iso = IsolationForestParams { seed: 7, ..Default::default() }.fit(x.view())?;
//! let scores = iso.score_samples(x.view())?;
//! assert!(scores.iter().all(|s| (-1.0..=0.0).contains(s)));
//! let flagged = iso.is_anomaly(&x)?;
//! assert_eq!(flagged[0], iso.is_anomaly_row(&[x[[0, 0]], x[[0, 1]], x[[0, 2]]])?);
//!
//! // An infinity names its feature and says how to replace it.
//! let mut bad = x.clone();
//! bad[[3, 1]] = f64::INFINITY;
//! let e = params.fit(Samples::named(&bad, &names)?, &y).unwrap_err();
//! assert!(e.to_string().starts_with("x[3, 1] (feature `power`) = inf is infinite"));
//! # Ok::<(), vigil_forest::ForestError>(())
//! ```
//!
//! # How fit is fast
//! Each feature is cut once per forest into at most 255 quantile bins (NaN gets a bin
//! of its own) stored as bytes, column-major. A tree keeps one buffer of in-bag rows
//! (bootstrap duplicates become counts) that each split partitions in place; a
//! large node's candidate features get integer class-count histograms, one tight
//! pass per feature over its column, and a node holding less than a quarter of its
//! buffer's rows continues from a dense copy of its rows' codes, so passes stream
//! through memory. Nodes of at most
//! 2048 rows (fewer beyond 512 features) split exactly, as scikit-learn does: their
//! raw values are gathered once and sorted per candidate feature (as plain `u64`
//! keys: the value's order-preserving bits with the row's position in the low bits,
//! which sort faster than value-position pairs). Thresholds are always real
//! midpoints between training values, so prediction works on raw data.
//!
//! # How prediction is fast
//! Trees are flat arrays of 16-byte nodes. Batch prediction splits the rows into
//! tasks scored in parallel; a task takes the trees a cache-sized block at a time,
//! and eight rows walk each tree together in one branch-free loop (leaves of a
//! prediction copy of the nodes point to themselves and carry their value: a binary
//! leaf both its probabilities, packed into the bits of a NaN threshold, any other
//! leaf its value's index), so their memory waits overlap. After the first tree, a
//! task's rows are taken in the order of the leaf they reached in it, so the eight
//! walks tend to share their path. A task without NaN uses a step that skips the
//! missing-value test. Isolation Forests of the default depth are scored from a
//! heap-ordered copy of their trees (children found by arithmetic, no bounds
//! checks, values compared as order-preserving integer keys). Each row still sums
//! its trees in tree order, so results do not depend on the thread count. The
//! one-row path walks four trees at a time. See `benches/RESULTS.md` for
//! measurements.

#![deny(missing_docs)]

mod binned;
mod binning;
mod error;
mod format;
mod grow;
mod heap;
mod importance;
mod isolation;
mod labels;
#[cfg(feature = "onnx")]
mod onnx;
mod predict;
mod random_forest;
mod rng;
mod samples;
mod shap;
mod tree;

pub use binned::{BinEdges, BinnedBuilder, BinnedSamples};
pub use error::{ForestError, Result};
pub use format::FORMAT_VERSION;
pub use grow::Criterion;
pub use importance::{PermutationImportance, permutation_importance};
pub use isolation::{Contamination, IsolationForest, IsolationForestParams};
pub use labels::Labels;
#[cfg(feature = "onnx")]
pub use onnx::{
    ONNX_IR_VERSION, ONNX_ML_OPSET, ONNX_OPSET, OnnxExport, OnnxOptions, OnnxPrecision,
};
pub use random_forest::{
    ClassWeight, MaxFeatures, MaxSamples, Progress, RandomForest, RandomForestParams,
};
pub use samples::Samples;
pub use shap::Explanation;
