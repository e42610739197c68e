//! The pipeline's plots, drawn with vigil-metrics' plotting (PNG, embedded
//! font): what `train` logs for every run and what `evaluate` draws across
//! versions.

use std::path::Path;
use std::sync::Arc;

use vigil_features::TrainingSet;
use vigil_metrics::plot::{
    AlarmTimelinePlot, ConfusionMatrixPlot, FeatureImportancePlot, LeadTimeHistogramPlot,
    LineChart, PrPlot, RocPlot, Series, SeriesStyle, ShapBeeswarmPlot,
};
use vigil_metrics::{
    DatasetDrift, EventMetrics, EventParams, Failure, FeatureDrift, average_precision_score,
    best_threshold_f1, precision_recall_curve, roc_curve,
};
use vigil_tuning::{Direction, FrozenTrial, TuningError};

use crate::error::PipelineError;
use crate::evaluation::SplitEvaluation;
use crate::explain::{ShapChange, ShapSummary};
use crate::modes::ModeEvaluation;

fn plot_err(name: &str) -> impl FnOnce(vigil_metrics::MetricsError) -> PipelineError + '_ {
    move |e| PipelineError::Plot {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

/// Confusion matrix, ROC curve, PR curve, feature importance and the
/// optimisation history, as PNG files in `dir`.
pub fn training_plots(
    dir: &Path,
    test: &SplitEvaluation,
    feature_names: &[String],
    importances: &[f64],
    trials: &[Arc<FrozenTrial>],
) -> Result<(), PipelineError> {
    ConfusionMatrixPlot::new(&test.confusion)
        .class_names(&["no failure", "failure"])
        .map_err(plot_err("confusion_matrix"))?
        .title("Confusion matrix (test split)")
        .save(dir.join("confusion_matrix.png"))
        .map_err(plot_err("confusion_matrix"))?;

    let roc = roc_curve(&test.y_true, &test.proba)?;
    RocPlot::new()
        .curve("Random Forest", &roc)
        .title("ROC curve (test split)")
        .save(dir.join("roc_curve.png"))
        .map_err(plot_err("roc_curve"))?;

    let pr = precision_recall_curve(&test.y_true, &test.proba)?;
    let ap = average_precision_score(&test.y_true, &test.proba)?;
    let best = best_threshold_f1(&test.y_true, &test.proba)?;
    PrPlot::new()
        .curve("Random Forest", &pr, Some(ap))
        .point("best F1 on test", &best)
        .title("Precision–recall curve (test split)")
        .save(dir.join("pr_curve.png"))
        .map_err(plot_err("pr_curve"))?;

    FeatureImportancePlot::new(feature_names, importances)
        .map_err(plot_err("feature_importance"))?
        .top_k(15)
        .x_desc("Mean impurity decrease (normalised)")
        .title("Random Forest feature importance (top 15)")
        .save(dir.join("feature_importance.png"))
        .map_err(plot_err("feature_importance"))?;

    optimisation_history(dir, trials)
}

/// The test split's alarms over time, one panel per machine (probability,
/// threshold, alarm episodes, failures caught or missed:
/// `alarm_timeline.png`), and the lead times of the caught failures
/// (`lead_time_histogram.png`).
pub fn event_plots(
    dir: &Path,
    test: &TrainingSet,
    proba: &[f64],
    threshold: f64,
    (failures, params): (&[Failure], &EventParams),
    metrics: &EventMetrics,
) -> Result<(), PipelineError> {
    let f = &test.features;
    let (shown, title) = timeline_machines(&f.machine, failures);
    AlarmTimelinePlot::new(&f.machine, &f.time, proba, threshold, failures, params)?
        .machines(&shown)
        .machine_names(&f.machine_ids)
        .title(&title)
        .save(dir.join("alarm_timeline.png"))
        .map_err(plot_err("alarm_timeline"))?;
    LeadTimeHistogramPlot::new(metrics)
        .title("Lead time of the failures caught (test split)")
        .save(dir.join("lead_time_histogram.png"))
        .map_err(plot_err("lead_time_histogram"))
}

/// Machines an alarm timeline stays readable with (one panel each).
const TIMELINE_MACHINES: usize = 20;

/// The machines of the alarm timeline, and its title: every machine of the
/// test split up to [`TIMELINE_MACHINES`], else that many with the most
/// failures (ties by id), said in the title.
fn timeline_machines(machine: &[u32], failures: &[Failure]) -> (Vec<u32>, String) {
    let mut ids: Vec<u32> = machine.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let title = "Failure probability and alarms (test split)";
    if ids.len() <= TIMELINE_MACHINES {
        return (ids, title.to_string());
    }
    let count = |id: u32| failures.iter().filter(|f| f.machine == id).count();
    let mut ranked: Vec<(usize, u32)> = ids.iter().map(|&id| (count(id), id)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut shown: Vec<u32> = ranked.iter().take(TIMELINE_MACHINES).map(|r| r.1).collect();
    shown.sort_unstable();
    let title = format!(
        "{title}: the {TIMELINE_MACHINES} of {} machines with the most failures",
        ids.len()
    );
    (shown, title)
}

/// The SHAP summary of the failure probability on the test split: mean
/// |SHAP| per feature (`shap_importance.png`, top 15) and the beeswarm of the
/// top 15 over the explained rows (`shap_beeswarm.png`).
pub fn shap_plots(dir: &Path, summary: &ShapSummary) -> Result<(), PipelineError> {
    let (names, means): (Vec<&str>, Vec<f64>) = summary
        .features
        .iter()
        .map(|f| (f.feature.as_str(), f.mean_abs_shap))
        .unzip();
    FeatureImportancePlot::new(&names, &means)
        .map_err(plot_err("shap_importance"))?
        .top_k(15)
        .x_desc("Mean |SHAP value| (contribution to the failure probability)")
        .title(format!(
            "Mean |SHAP| per feature (top 15, {} test rows)",
            summary.rows
        ))
        .save(dir.join("shap_importance.png"))
        .map_err(plot_err("shap_importance"))?;
    let shap = summary.values.as_standard_layout();
    let values = summary.feature_values.as_standard_layout();
    let (Some(shap), Some(values)) = (shap.as_slice(), values.as_slice()) else {
        return Err(PipelineError::Invalid(
            "SHAP arrays are not contiguous".into(),
        ));
    };
    ShapBeeswarmPlot::new(&summary.feature_names, shap, values)
        .map_err(plot_err("shap_beeswarm"))?
        .top_k(15)
        .x_desc("SHAP value (contribution to the failure probability)")
        .title(format!(
            "SHAP values of the top 15 features ({} test rows)",
            summary.rows
        ))
        .save(dir.join("shap_beeswarm.png"))
        .map_err(plot_err("shap_beeswarm"))
}

/// The failure-mode classifier's confusion matrix on the test split, with the
/// mode names (`failure_mode_confusion_matrix.png`).
pub fn mode_confusion_plot(dir: &Path, test: &ModeEvaluation) -> Result<(), PipelineError> {
    let names: Vec<&str> = test.per_mode.iter().map(|m| m.mode.as_str()).collect();
    ConfusionMatrixPlot::new(&test.confusion)
        .class_names(&names)
        .map_err(plot_err("failure_mode_confusion_matrix"))?
        .title("Failure modes: true vs most likely (test split)")
        .save(dir.join("failure_mode_confusion_matrix.png"))
        .map_err(plot_err("failure_mode_confusion_matrix"))
}

/// Validation F1 per completed trial and the best so far (nothing to draw
/// when no trial completed).
fn optimisation_history(dir: &Path, trials: &[Arc<FrozenTrial>]) -> Result<(), PipelineError> {
    let chart = match vigil_tuning::plot::optimization_history(
        trials.iter().map(Arc::as_ref),
        Direction::Maximize,
        "validation F1",
    ) {
        Ok(chart) => chart,
        Err(TuningError::NoCompletedTrial) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    chart
        .title("Optimisation history (TPE)")
        .save(dir.join("optimization_history.png"))
        .map_err(plot_err("optimization_history"))
}

/// Test F1 of each registered version's training run.
pub fn f1_trend(dir: &Path, version_f1: &[(f64, f64)]) -> Result<(), PipelineError> {
    if version_f1.is_empty() {
        return Ok(());
    }
    LineChart::new(
        "Test F1 across registered versions",
        "model version",
        "test F1",
    )
    // Markers as well as the line: with a single version there is no line to draw.
    .series(Series::new(
        "test F1",
        version_f1.iter().map(|v| v.0).collect(),
        version_f1.iter().map(|v| v.1).collect(),
        SeriesStyle::LineWithMarkers,
    ))
    .save(dir.join("f1_trend.png"))
    .map_err(plot_err("f1_trend"))
}

/// The 15 largest changes in feature importance, challenger minus champion.
pub fn importance_change(
    dir: &Path,
    names: &[String],
    champion: &[f64],
    challenger: &[f64],
) -> Result<(), PipelineError> {
    if champion.len() != challenger.len() || champion.len() != names.len() {
        // Different feature sets: there is no per-feature change to draw.
        return Ok(());
    }
    let mut deltas: Vec<(String, f64)> = names
        .iter()
        .zip(challenger.iter().zip(champion))
        .map(|(n, (new, old))| (n.clone(), new - old))
        .collect();
    deltas.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    deltas.truncate(15);
    let (top_names, top_deltas): (Vec<String>, Vec<f64>) = deltas.into_iter().unzip();
    FeatureImportancePlot::new(&top_names, &top_deltas)
        .map_err(plot_err("importance_change"))?
        .top_k(15)
        .x_desc("Importance change (challenger − champion)")
        .title("Feature importance change vs the Production model")
        .save(dir.join("importance_change.png"))
        .map_err(plot_err("importance_change"))
}

/// Mean |SHAP| of the challenger's top features minus the champion's
/// (`shap_change.png`; nothing drawn without a comparison).
pub fn shap_change(dir: &Path, change: &[ShapChange]) -> Result<(), PipelineError> {
    let deltas: Vec<(String, f64)> = change
        .iter()
        .filter_map(|c| {
            c.champion
                .map(|old| (c.feature.clone(), c.challenger - old))
        })
        .collect();
    if deltas.is_empty() {
        return Ok(());
    }
    let (names, values): (Vec<String>, Vec<f64>) = deltas.into_iter().unzip();
    FeatureImportancePlot::new(&names, &values)
        .map_err(plot_err("shap_change"))?
        .x_desc("Mean |SHAP| change (challenger − champion)")
        .title("The challenger's top features by mean |SHAP|: change vs the Production model")
        .save(dir.join("shap_change.png"))
        .map_err(plot_err("shap_change"))
}

/// `drift.png`: each feature's drift statistic over its threshold, largest
/// first (≥ 1 drifted for distances; p-value methods are shown as threshold
/// over p, so ≥ 1 is drifted for them too).
pub fn drift_plot(dir: &Path, drift: &DatasetDrift) -> Result<(), PipelineError> {
    if drift.features.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = drift.features.iter().map(|f| f.name.as_str()).collect();
    let ratios: Vec<f64> = drift.features.iter().map(drift_ratio).collect();
    let verdict = if drift.dataset_drift {
        "dataset drift"
    } else {
        "no dataset drift"
    };
    FeatureImportancePlot::new(&names, &ratios)
        .map_err(plot_err("drift"))?
        .top_k(names.len())
        .x_desc("statistic / threshold (1 or more, red: drifted)")
        .marker(1.0)
        .title(format!(
            "Drift against the reference: {verdict}, {:.0} % of features drifted",
            drift.share_drifted * 100.0
        ))
        .size(900, 900)
        .save(dir.join("drift.png"))
        .map_err(plot_err("drift"))
}

/// How far a feature is towards its threshold: 1 at the threshold, above 1
/// drifted (finite, for the bar chart).
fn drift_ratio(f: &FeatureDrift) -> f64 {
    let r = if f.method.is_p_value() {
        f.threshold / f.statistic.max(1e-300)
    } else if f.threshold > 0.0 {
        f.statistic / f.threshold
    } else {
        f.statistic
    };
    if r.is_finite() { r.min(1e6) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_fleets_timeline_shows_the_machines_with_the_most_failures() {
        let fail = |machine: u32, k: i64| Failure {
            machine,
            time: 1_000_000 * k,
            mode: None,
        };
        let small = [3u32, 1, 3, 2];
        let (shown, title) = timeline_machines(&small, &[fail(3, 1)]);
        assert_eq!(shown, [1, 2, 3]);
        assert!(!title.contains("most failures"), "{title}");

        // 1,000 machines × 4 samples; machines 500..530 fail, 510..515 twice.
        let machine: Vec<u32> = (0..1000).flat_map(|m| [m; 4]).collect();
        let time: Vec<i64> = (0..4000).map(|i| (i % 4) * 60_000_000).collect();
        let proba: Vec<f64> = (0..4000).map(|i| f64::from(i % 7) / 7.0).collect();
        let mut failures: Vec<Failure> = (500..530).map(|m| fail(m, 2)).collect();
        failures.extend((510..515).map(|m| fail(m, 3)));
        let (shown, title) = timeline_machines(&machine, &failures);
        assert_eq!(shown.len(), TIMELINE_MACHINES);
        assert!((510..515).all(|m| shown.contains(&m)), "{shown:?}");
        assert!(shown.iter().all(|m| (500..530).contains(m)), "{shown:?}");
        assert!(title.ends_with("the 20 of 1000 machines with the most failures"));
        // The chosen panels render (all 1,000 would exceed the image bound).
        let dir = tempfile::tempdir().unwrap();
        let params = EventParams::default();
        AlarmTimelinePlot::new(&machine, &time, &proba, 0.5, &failures, &params)
            .unwrap()
            .machines(&shown)
            .title(&title)
            .save(dir.path().join("t.png"))
            .unwrap();
        let all = AlarmTimelinePlot::new(&machine, &time, &proba, 0.5, &failures, &params).unwrap();
        assert!(all.save(dir.path().join("all.png")).is_err());
    }

    #[test]
    fn f1_trend_renders_one_version_and_several() {
        let dir = std::env::temp_dir().join(format!("vigil-f1-trend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for versions in [
            vec![(1.0, 0.41)],
            vec![(1.0, 0.41), (2.0, 0.44), (3.0, 0.39)],
        ] {
            f1_trend(&dir, &versions).unwrap();
            let bytes = std::fs::read(dir.join("f1_trend.png")).unwrap();
            assert_eq!(&bytes[1..4], b"PNG");
        }
        // No versions, no plot (and no error).
        std::fs::remove_file(dir.join("f1_trend.png")).unwrap();
        f1_trend(&dir, &[]).unwrap();
        assert!(!dir.join("f1_trend.png").exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}
