//! Vigil metrics: classification metrics, curves, reports and plots that
//! agree with scikit-learn 1.9 to 1e-12.
//!
//! # Tour
//!
//! | Need | Call |
//! |---|---|
//! | counts of true vs predicted classes | [`confusion_matrix`] → [`ConfusionMatrix`] |
//! | accuracy, balanced accuracy, Matthews correlation | [`accuracy_score`], [`balanced_accuracy_score`], [`matthews_corrcoef`] |
//! | precision, recall, F1, F-beta (binary / micro / macro / weighted) | [`precision_score`], [`recall_score`], [`f1_score`], [`fbeta_score`], [`precision_recall_fscore`], [`precision_recall_fscore_support`] |
//! | ROC curve and AUC | [`roc_curve`], [`roc_auc_score`], [`roc_auc_score_partial`], [`roc_auc_ovr`] |
//! | precision–recall curve, average precision | [`precision_recall_curve`], [`average_precision_score`], [`average_precision_ovr`] |
//! | a decision threshold maximising F1 / F-beta | [`best_threshold_f1`], [`best_threshold_fbeta`] |
//! | probabilistic losses | [`log_loss`], [`log_loss_multiclass`], [`brier_score_loss`], [`brier_score_loss_multiclass`] |
//! | a printable, serialisable report | [`classification_report`] → [`ClassificationReport`] |
//! | alarm episodes, failures caught, lead times, false alarms per machine-day | [`evaluate_alarms`], [`evaluate_scores`] → [`EventMetrics`]; [`alarm_episodes`]; definitions on [`EventMetrics`] |
//! | k-of-n alarm smoothing, batch and streaming | [`Smoothing`], [`smooth_flags`], [`SmoothingState`] |
//! | an alarm threshold under a false-alarm budget, a recall target or F1 | [`AlarmPolicy`], [`choose_alarm_threshold`] → [`AlarmThreshold`] |
//! | data drift of a current batch against a reference (evidently's `DataDriftPreset` rule) | [`DriftReference::compare`] → [`DatasetDrift`] |
//! | per-feature drift statistics (scipy / evidently) | [`ks_2samp`], [`wasserstein_distance`], [`wasserstein_distance_norm`], [`psi`], [`jensenshannon`], [`jensenshannon_drift`], [`chisquare`], [`chisquare_drift`], [`z_test_drift`] |
//! | PNG / SVG plots (feature `plot`) | the `plot` module |
//!
//! Inputs are slices. Labels can be any integer type or `bool` (the
//! [`Label`] trait); binary score-based metrics read `1`/`true` as the
//! positive class and `0`, `-1` or `false` as the negative one. Scores are
//! `f64`. Multi-class score matrices are row-major slices of
//! `n_samples × n_classes` values (an `ndarray::Array2` in standard layout
//! passes its `as_slice()`).
//!
//! Every function validates its input and returns a [`MetricsError`] rather
//! than panicking: mismatched lengths, empty input, NaN or infinite scores, a
//! single class where a metric needs two, labels outside the given set,
//! probabilities outside `[0, 1]`.
//!
//! # Example
//!
//! ```
//! use vigil_metrics::{
//!     Average, best_threshold_f1, classification_report, confusion_matrix, f1_score,
//!     roc_auc_score, ReportParams,
//! };
//!
//! # fn main() -> Result<(), vigil_metrics::MetricsError> {
//! // Did the machine fail within the horizon (1) or not (0), and the model's
//! // failure probability.
//! let y_true = [0u8, 0, 1, 1, 0, 1, 0, 0];
//! let score = [0.10, 0.40, 0.35, 0.80, 0.20, 0.90, 0.65, 0.05];
//!
//! // Ranking quality, independent of any threshold: 13 of the 15
//! // (positive, negative) pairs are ordered correctly.
//! let auc = roc_auc_score(&y_true, &score)?;
//! assert!((auc - 13.0 / 15.0).abs() < 1e-12);
//!
//! // Pick the threshold that maximises F1, then evaluate hard predictions.
//! let choice = best_threshold_f1(&y_true, &score)?;
//! assert_eq!(choice.threshold, 0.80);
//! let y_pred: Vec<u8> = score.iter().map(|&s| u8::from(s >= choice.threshold)).collect();
//!
//! let cm = confusion_matrix(&y_true, &y_pred, None)?;
//! assert_eq!(cm.rows(), vec![vec![5, 0], vec![1, 2]]);
//! assert!((f1_score(&y_true, &y_pred, Average::binary())? - choice.f_score).abs() < 1e-12);
//!
//! // The same numbers as scikit-learn's classification_report.
//! let report = classification_report(&y_true, &y_pred, &ReportParams::default())?;
//! assert_eq!(report.accuracy, 7.0 / 8.0);
//! println!("{report}");
//! # Ok(())
//! # }
//! ```
//!
//! # Alarms and failures
//!
//! Per-sample scores become alarm episodes, matched against failure events
//! (definitions on [`EventMetrics`]; times are `i64` microseconds since the
//! epoch, machines `u32` ids).
//!
//! ```
//! use vigil_metrics::{AlarmPolicy, EventParams, Failure, choose_alarm_threshold, evaluate_scores};
//!
//! # fn main() -> Result<(), vigil_metrics::MetricsError> {
//! const MIN: i64 = 60_000_000;
//! // One machine sampled every minute for two hours; it fails at minute 120.
//! let time: Vec<i64> = (0..120).map(|m| m * MIN).collect();
//! let machine = vec![0u32; time.len()];
//! // High scores from minute 100 on, and a lone spike at minute 30.
//! let score: Vec<f64> = (0..120)
//!     .map(|m| if m >= 100 { 0.9 } else if m == 30 { 0.7 } else { 0.1 })
//!     .collect();
//! let failures = [Failure { machine: 0, time: 120 * MIN, mode: None }];
//! let params = EventParams::default(); // 30-minute horizon, 2-minute merge gap
//!
//! let m = evaluate_scores(&machine, &time, &score, 0.5, &failures, &params)?;
//! assert_eq!((m.failures_caught, m.failures_total), (1, 1));
//! assert_eq!(m.lead_time_minutes.median, 20.0); // the alarm rang at minute 100
//! assert_eq!((m.episodes, m.false_alarms), (2, 1)); // the spike at minute 30
//! assert_eq!(m.precision, 0.5);
//! // 119 monitored minutes: one false alarm per 119 / 1440 machine-days.
//! assert!((m.false_alarms_per_machine_day - 1440.0 / 119.0).abs() < 1e-9);
//!
//! // No false alarm allowed: the lowest such threshold is 0.9.
//! let policy: AlarmPolicy = "false-alarm-budget=0".parse()?;
//! let chosen = choose_alarm_threshold(&machine, &time, &score, &failures, &params, policy)?;
//! assert_eq!(chosen.threshold, 0.9);
//! assert_eq!((chosen.metrics.failures_caught, chosen.metrics.false_alarms), (1, 0));
//! # Ok(())
//! # }
//! ```
//!
//! # Serialisation
//!
//! The result types (curves, confusion matrices, scores, reports, threshold
//! choices) and the option types implement serde's `Serialize` and
//! `Deserialize`, and read back what they wrote. JSON has no NaN or infinity,
//! so those values (a ROC curve's `+∞` first threshold, NaN scores under
//! [`ZeroDivision::Nan`]) are written as the strings `"NaN"`, `"inf"` and
//! `"-inf"`; every other number stays a JSON number. Binary formats carry the
//! `f64` as it is. Reading a value back checks what the functions building it
//! guarantee (a confusion matrix goes through [`ConfusionMatrix::from_counts`],
//! a curve must be monotone, scores must lie in `[0, 1]`), so a corrupt or
//! hand-edited record is an error, not a wrong plot later.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let curve = vigil_metrics::roc_curve(&[0u8, 1, 1], &[0.2, 0.9, 0.6])?;
//! let json = serde_json::to_string(&curve)?;
//! assert!(json.contains(r#""thresholds":["inf",0.9,"#));
//! assert_eq!(serde_json::from_str::<vigil_metrics::RocCurve>(&json)?, curve);
//!
//! let bad = r#"{"labels":[0,1],"counts":[1]}"#;
//! assert!(serde_json::from_str::<vigil_metrics::ConfusionMatrix<u8>>(bad).is_err());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod classification;
mod confusion;
mod drift;
mod error;
mod events;
mod labels;
// A namespace of plot builders (`plot::RocPlot`, ...): nothing in it is re-exported.
#[cfg(feature = "plot")]
pub mod plot;
mod probabilistic;
mod ranking;
mod report;
mod serde_f64;
mod sort;
mod validate;

pub use classification::{
    Average, ClassScores, PrfParams, Scores, ZeroDivision, accuracy_score, balanced_accuracy_score,
    f1_score, fbeta_score, matthews_corrcoef, mcc_from_matrix, precision_recall_fscore,
    precision_recall_fscore_support, precision_score, recall_score,
};
pub use confusion::{BinaryCounts, ConfusionMatrix, confusion_matrix};
pub use drift::{
    ColumnKind, DatasetDrift, DriftMethod, DriftParams, DriftReference, FeatureDrift, KsMethod,
    KsResult, ReferenceColumn, chisquare, chisquare_drift, jensenshannon, jensenshannon_drift,
    ks_2samp, psi, wasserstein_distance, wasserstein_distance_norm, z_test_drift,
};
pub use error::{MetricsError, Result};
pub use events::{
    AlarmEpisode, AlarmPolicy, AlarmThreshold, EventMetrics, EventParams, Failure, Histogram,
    LeadTimeStats, ModeMetrics, Smoothing, SmoothingState, alarm_episodes, choose_alarm_threshold,
    evaluate_alarms, evaluate_scores, smooth_flags,
};
pub use labels::Label;
pub use probabilistic::{
    brier_score_loss, brier_score_loss_multiclass, log_loss, log_loss_multiclass,
};
pub use ranking::{
    OvrAverage, PrCurve, PrCurveOptions, RocCurve, RocCurveOptions, ThresholdChoice, auc,
    average_precision_ovr, average_precision_score, best_threshold_f1, best_threshold_fbeta,
    precision_recall_curve, precision_recall_curve_with, roc_auc_ovr, roc_auc_score,
    roc_auc_score_partial, roc_curve, roc_curve_with,
};
pub use report::{ClassificationReport, ReportParams, ReportRow, classification_report};
