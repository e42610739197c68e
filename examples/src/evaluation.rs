//! One model on one labelled split: the failure probability of every row, the
//! headline scores at the model's threshold, the confusion matrix and the
//! classification report. The pipeline runs it once on the test split;
//! `evaluate` runs it on the recent held-out rows for champion and challenger.

use std::time::Duration;

use serde::Serialize;
use vigil_features::{FailureEvent, FailureMode, FeatureMatrix, TrainingSet};
use vigil_forest::{IsolationForest, RandomForest, Samples};
use vigil_metrics::{
    Average, ClassificationReport, ConfusionMatrix, EventMetrics, EventParams, Failure, PrfParams,
    ReportParams, average_precision_score, classification_report, confusion_matrix,
    evaluate_scores, precision_recall_fscore, roc_auc_score,
};

use crate::bundle::failure_probability;
use crate::error::PipelineError;

/// Headline scores of a model on a labelled split.
#[derive(Debug, Clone, Serialize)]
pub struct TestScores {
    /// F1 at the chosen threshold.
    pub f1: f64,
    /// Precision at the chosen threshold.
    pub precision: f64,
    /// Recall at the chosen threshold.
    pub recall: f64,
    /// ROC-AUC of the failure probability.
    pub roc_auc: f64,
    /// Average precision (area under the PR curve).
    pub pr_auc: f64,
    /// ROC-AUC of the Isolation Forest's anomaly score against the failure label.
    pub anomaly_roc_auc: f64,
    /// Share of rows the Isolation Forest flags.
    pub anomaly_rate: f64,
    /// `[[tn, fp], [fn, tp]]`.
    pub confusion: [[u64; 2]; 2],
}

/// Scores, curves and reports of a model on one labelled split.
#[derive(Debug)]
pub struct SplitEvaluation {
    /// The headline numbers.
    pub scores: TestScores,
    /// P(failure) per row.
    pub proba: Vec<f64>,
    /// True labels.
    pub y_true: Vec<u8>,
    /// Predictions at the threshold.
    pub y_pred: Vec<u8>,
    /// The confusion matrix.
    pub confusion: ConfusionMatrix<u8>,
    /// The classification report.
    pub report: ClassificationReport,
}

/// The two classes of the failure label, in report order.
const LABELS: [u8; 2] = [0, 1];

/// Evaluates both forests on a labelled split at `threshold`.
pub fn evaluate_split(
    random_forest: &RandomForest,
    isolation_forest: &IsolationForest,
    split: &TrainingSet,
    threshold: f64,
) -> Result<SplitEvaluation, PipelineError> {
    let x = named_samples(&split.features)?;
    let proba = failure_probability(random_forest, x)?;
    let anomaly: Vec<f64> = isolation_forest
        .score_samples(x)?
        .iter()
        .map(|s| -s)
        .collect();
    let flagged = isolation_forest
        .predict(x)?
        .iter()
        .filter(|&&p| p == -1)
        .count();
    score_split(split.failure.clone(), proba, &anomaly, flagged, threshold)
}

/// Scores, confusion matrix and report of failure probabilities `proba`
/// against `y_true` at `threshold`, with the Isolation Forest's anomaly
/// scores (higher = more abnormal) and how many rows it flagged.
pub fn score_split(
    y_true: Vec<u8>,
    proba: Vec<f64>,
    anomaly: &[f64],
    flagged: usize,
    threshold: f64,
) -> Result<SplitEvaluation, PipelineError> {
    let y_pred: Vec<u8> = proba.iter().map(|&p| u8::from(p >= threshold)).collect();
    let prf = precision_recall_fscore(
        &y_true,
        &y_pred,
        Average::binary(),
        &PrfParams {
            labels: Some(LABELS.to_vec()),
            ..Default::default()
        },
    )?;
    let confusion = confusion_matrix(&y_true, &y_pred, Some(&LABELS))?;
    let report = classification_report(
        &y_true,
        &y_pred,
        &ReportParams {
            labels: Some(LABELS.to_vec()),
            target_names: Some(vec!["no failure".into(), "failure".into()]),
            digits: 4,
            ..Default::default()
        },
    )?;
    Ok(SplitEvaluation {
        scores: TestScores {
            f1: prf.f_score,
            precision: prf.precision,
            recall: prf.recall,
            roc_auc: roc_auc_score(&y_true, &proba)?,
            pr_auc: average_precision_score(&y_true, &proba)?,
            anomaly_roc_auc: roc_auc_score(&y_true, anomaly)?,
            anomaly_rate: flagged as f64 / y_true.len().max(1) as f64,
            confusion: binary_cells(&confusion),
        },
        proba,
        y_true,
        y_pred,
        confusion,
        report,
    })
}

/// A feature matrix as the forests take it, with its feature names, so that a
/// forest's error about a value names its feature.
pub fn named_samples(features: &FeatureMatrix) -> Result<Samples<'_>, PipelineError> {
    Ok(Samples::named(&features.values, &features.names)?)
}

/// `[[tn, fp], [fn, tp]]` of a matrix over [`LABELS`].
fn binary_cells(confusion: &ConfusionMatrix<u8>) -> [[u64; 2]; 2] {
    let rows = confusion.rows();
    let cell = |r: usize, c: usize| rows.get(r).and_then(|row| row.get(c)).copied().unwrap_or(0);
    [[cell(0, 0), cell(0, 1)], [cell(1, 0), cell(1, 1)]]
}

/// The failures a split's rows can see: each event of `events` whose machine
/// is in the split and whose time falls in the split's span or one label
/// horizon after it, as vigil-metrics takes them (machine = index into the
/// split's `machine_ids`, mode by name).
pub fn split_failures(
    split: &TrainingSet,
    events: &[FailureEvent],
    horizon: Duration,
) -> Vec<Failure> {
    let times = &split.features.time;
    let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else {
        return Vec::new();
    };
    let until = last.saturating_add(i64::try_from(horizon.as_micros()).unwrap_or(i64::MAX));
    let ids = &split.features.machine_ids;
    events
        .iter()
        .filter(|e| e.time >= first && e.time <= until)
        .filter_map(|e| {
            let machine = u32::try_from(ids.iter().position(|id| *id == e.machine)?).ok()?;
            let mode = (e.mode != FailureMode::None).then(|| e.mode.as_str().to_string());
            Some(Failure {
                machine,
                time: e.time,
                mode,
            })
        })
        .collect()
}

/// Failures caught, lead times and false alarms of the failure probability
/// `proba` of `split`'s rows at `threshold` under the episode rules `params`
/// (vigil-metrics' [`evaluate_scores`]), on the rows `serve` would score as
/// new samples ([`first_deliveries`]).
pub fn event_metrics(
    split: &TrainingSet,
    proba: &[f64],
    threshold: f64,
    failures: &[Failure],
    params: &EventParams,
) -> Result<EventMetrics, PipelineError> {
    let (machine, time, proba) = delivered_scores(&split.features, proba);
    Ok(evaluate_scores(
        &machine, &time, &proba, threshold, failures, params,
    )?)
}

/// Machine, time and score of the [`first_deliveries`] of `features`' rows.
pub fn delivered_scores(features: &FeatureMatrix, score: &[f64]) -> (Vec<u32>, Vec<i64>, Vec<f64>) {
    let rows = first_deliveries(features);
    (
        rows.iter().map(|&r| features.machine[r]).collect(),
        rows.iter().map(|&r| features.time[r]).collect(),
        rows.iter()
            .map(|&r| score.get(r).copied().unwrap_or(f64::NAN))
            .collect(),
    )
}

/// The rows whose (machine, time) did not occur in an earlier row: a
/// repeated timestamp is a re-delivery, which `serve` answers as a retry, so
/// alarm smoothing counts each sample once in evaluation as in serving.
pub fn first_deliveries(features: &FeatureMatrix) -> Vec<usize> {
    let mut seen = std::collections::HashSet::with_capacity(features.time.len());
    (0..features.time.len())
        .filter(|&r| seen.insert((features.machine[r], features.time[r])))
        .collect()
}

/// The episode rules the pipeline and `evaluate` use: vigil-metrics' defaults
/// with the label horizon.
pub fn event_params(horizon: Duration) -> EventParams {
    EventParams {
        horizon,
        ..EventParams::default()
    }
}

/// Logs event metrics as MLflow metrics `<prefix>failures_caught`, …; a
/// value that is not finite (no failure caught has no median lead time) is
/// left out, not logged.
pub fn log_event_metrics(
    run: &vigil_tracking_client::ActiveRun,
    prefix: &str,
    events: &EventMetrics,
) -> Result<(), PipelineError> {
    let metrics = events.mlflow_metrics(prefix);
    run.log_metrics(
        metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| (k.as_str(), *v)),
        0,
    )?;
    Ok(())
}
