//! A labelled, model-ready training set.

use crate::batch::FeatureMatrix;
use crate::error::{FeaturesError, Result};
use crate::frame::{FailureMode, TelemetryFrame};
use crate::quality::{MIN_TRAINING_SAMPLES, ensure_min_samples};
use crate::spec::{FeatureSpec, WindowLength};
use crate::split::split_by_time;

/// Features (sanitised with the spec's policy) with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    /// The feature matrix, finite everywhere.
    pub features: FeatureMatrix,
    /// Per row, 1 when the machine fails within the label horizon.
    pub failure: Vec<u8>,
    /// Per row, the failure mode (class 0 = none).
    pub failure_mode: Vec<FailureMode>,
}

impl TrainingSet {
    /// Computes `spec` on a labelled `frame` and sanitises the result.
    ///
    /// Errors: fewer than [`MIN_TRAINING_SAMPLES`] rows
    /// (`Insufficient data for training (need at least 1000 samples)`), an
    /// unlabelled frame, and every error of [`FeatureSpec::compute`].
    pub fn build(frame: &TelemetryFrame, spec: &FeatureSpec) -> Result<TrainingSet> {
        ensure_min_samples(frame.len(), MIN_TRAINING_SAMPLES)?;
        let failure = frame
            .failure()
            .ok_or_else(|| FeaturesError::InvalidParameter {
                name: "frame",
                reason: "has no `failure` label column".into(),
            })?
            .to_vec();
        let failure_mode = match frame.failure_mode() {
            Some(m) => m.to_vec(),
            None => vec![FailureMode::None; frame.len()],
        };
        let mut features = spec.compute(frame)?;
        features.sanitize(&spec.sanitize);
        Ok(TrainingSet {
            features,
            failure,
            failure_mode,
        })
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.failure.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.failure.is_empty()
    }

    /// Binary labels as `f64` (0.0 / 1.0).
    pub fn labels_f64(&self) -> Vec<f64> {
        self.failure.iter().map(|&x| f64::from(x)).collect()
    }

    /// The rows `rows` (in order).
    pub fn select_rows(&self, rows: &[usize]) -> TrainingSet {
        TrainingSet {
            features: self.features.select_rows(rows),
            failure: rows.iter().map(|&i| self.failure[i]).collect(),
            failure_mode: rows.iter().map(|&i| self.failure_mode[i]).collect(),
        }
    }

    /// Time-ordered split at `cutoff` with `embargo` (see [`split_by_time`]): `(train, test)`.
    pub fn split_at(&self, cutoff: i64, embargo: WindowLength) -> (TrainingSet, TrainingSet) {
        let split = split_by_time(&self.features.time, cutoff, embargo);
        (
            self.select_rows(&split.train),
            self.select_rows(&split.test),
        )
    }
}
