//! Data-quality report and the minimum-size check for training.

use serde::{Deserialize, Serialize};

use crate::error::{FeaturesError, Result};
use crate::frame::{FailureMode, TelemetryFrame};
use crate::spec::WindowLength;

/// The fewest samples a training set may have.
pub const MIN_TRAINING_SAMPLES: usize = 1000;

/// Fails with `Insufficient data for training (need at least {need} samples)` when `rows < need`.
pub fn ensure_min_samples(rows: usize, need: usize) -> Result<()> {
    if rows < need {
        Err(FeaturesError::InsufficientData { got: rows, need })
    } else {
        Ok(())
    }
}

/// Settings of [`QualityReport::of`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityConfig {
    /// A pause between consecutive samples of a machine longer than this is a gap (default 2m).
    pub gap_threshold: WindowLength,
}

impl Default for QualityConfig {
    fn default() -> QualityConfig {
        QualityConfig {
            gap_threshold: WindowLength::minutes(2),
        }
    }
}

/// A pause in one machine's telemetry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Machine id.
    pub machine: String,
    /// Last sample before the gap (µs since epoch UTC).
    pub from: i64,
    /// First sample after it.
    pub to: i64,
}

/// Label counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelBalance {
    /// Rows with `failure = 1`.
    pub positives: usize,
    /// Rows with `failure = 0`.
    pub negatives: usize,
    /// positives / rows.
    pub positive_rate: f64,
    /// Rows per failure mode (including `none`), when the frame has modes.
    pub per_mode: Vec<(FailureMode, usize)>,
}

/// What a frame holds and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Rows.
    pub rows: usize,
    /// Distinct machines.
    pub machines: usize,
    /// Earliest sample (µs since epoch UTC), if any.
    pub start: Option<i64>,
    /// Latest sample.
    pub end: Option<i64>,
    /// Per sensor: missing values (including non-finite inputs).
    pub missing: Vec<(String, usize)>,
    /// Per sensor: non-finite inputs (glitches) stored as missing.
    pub non_finite: Vec<(String, usize)>,
    /// Pauses longer than the threshold.
    pub gaps: Vec<Gap>,
    /// Rows sharing their machine's previous timestamp.
    pub duplicate_timestamps: usize,
    /// Machines with a single sample.
    pub single_sample_machines: Vec<String>,
    /// Label balance, when the frame is labelled.
    pub labels: Option<LabelBalance>,
}

impl LabelBalance {
    /// The label counts of `frame`, when it is labelled.
    fn of(frame: &TelemetryFrame) -> Option<LabelBalance> {
        let f = frame.failure()?;
        let positives = f.iter().filter(|&&x| x == 1).count();
        let per_mode = frame
            .failure_mode()
            .map(|modes| {
                FailureMode::ALL
                    .iter()
                    .map(|&mode| (mode, modes.iter().filter(|&&x| x == mode).count()))
                    .collect()
            })
            .unwrap_or_default();
        Some(LabelBalance {
            positives,
            negatives: f.len() - positives,
            positive_rate: positives as f64 / f.len().max(1) as f64,
            per_mode,
        })
    }
}

impl QualityReport {
    /// Inspects `frame`.
    pub fn of(frame: &TelemetryFrame, config: &QualityConfig) -> QualityReport {
        let time = frame.time();
        let threshold = config.gap_threshold.as_micros();
        let mut gaps = Vec::new();
        let mut duplicates = 0;
        let mut single = Vec::new();
        for (m, range) in frame.machine_ranges() {
            let id = &frame.machine_ids()[m as usize];
            if range.len() == 1 {
                single.push(id.clone());
            }
            for i in range.start + 1..range.end {
                let dt = time[i] - time[i - 1];
                if dt == 0 {
                    duplicates += 1;
                } else if dt > threshold {
                    gaps.push(Gap {
                        machine: id.clone(),
                        from: time[i - 1],
                        to: time[i],
                    });
                }
            }
        }
        let names = frame.sensor_names();
        let missing = names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                (
                    n.clone(),
                    frame.sensor(k).iter().filter(|v| v.is_nan()).count(),
                )
            })
            .collect();
        let non_finite = names
            .iter()
            .cloned()
            .zip(frame.non_finite_counts().iter().copied())
            .collect();
        let labels = LabelBalance::of(frame);
        QualityReport {
            rows: frame.len(),
            machines: frame.machine_ids().len(),
            start: time.iter().min().copied(),
            end: time.iter().max().copied(),
            missing,
            non_finite,
            gaps,
            duplicate_timestamps: duplicates,
            single_sample_machines: single,
            labels,
        }
    }

    /// [`ensure_min_samples`] on this report's rows.
    pub fn ensure_min_samples(&self, need: usize) -> Result<()> {
        ensure_min_samples(self.rows, need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{SimulatorConfig, simulate};

    #[test]
    fn insufficient_data_message_is_exact() {
        let err = ensure_min_samples(999, MIN_TRAINING_SAMPLES).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Insufficient data for training (need at least 1000 samples)"
        );
        assert!(matches!(
            err,
            FeaturesError::InsufficientData {
                got: 999,
                need: 1000
            }
        ));
        ensure_min_samples(1000, MIN_TRAINING_SAMPLES).unwrap();
    }

    #[test]
    fn reports_gaps_missing_and_balance() {
        let sim = simulate(&SimulatorConfig {
            machines: 2,
            days: 2.0,
            ..Default::default()
        })
        .unwrap();
        let report = QualityReport::of(&sim.frame, &QualityConfig::default());
        assert_eq!(report.rows, sim.frame.len());
        assert_eq!(report.machines, 2);
        assert!(!report.gaps.is_empty());
        assert!(report.missing.iter().all(|(_, n)| *n > 0));
        let labels = report.labels.unwrap();
        assert_eq!(labels.positives + labels.negatives, report.rows);
        assert_eq!(
            labels.per_mode.iter().map(|m| m.1).sum::<usize>(),
            report.rows
        );
        assert!(report.end > report.start);
    }
}
