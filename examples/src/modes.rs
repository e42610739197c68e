//! Which failure is coming: a multi-class Random Forest over `none` plus each
//! failure mode present in the training rows' labelled horizon, next to the
//! binary model, and its per-mode evaluation.
//!
//! **Hyper-parameters.** The mode model reuses the binary model's tuned
//! parameters with balanced class weights ([`ClassWeight::Balanced`]): the
//! modes are the binary model's positive class split four ways, so the tree
//! shapes that separate "failure soon" from "no failure" are the ones the mode
//! model needs, while each mode is far rarer than "failure" as a whole, which
//! the weights make up for. Measured against a second TPE study of its own
//! (20 trials on validation macro F1, `benches/src/bin/mode_params.rs`): that
//! study wins on validation but loses on test in each of 3 seeds (test macro F1
//! 0.43 vs 0.31 on average; benches/RESULTS.md) — with a few dozen mode events
//! per split, validation macro F1 is too noisy to tune on — and it doubles the
//! tuning stage.
//!
//! **Nothing to learn.** Data without modes (a CSV without the column, or every
//! row `none`) trains no mode model: [`fit_mode_model`] says why, and the
//! pipeline logs it. A mode with fewer than [`MIN_MODE_EVENTS`] failure
//! events in the training rows is trained on but reported as rare.

use std::collections::BTreeMap;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use vigil_features::{FailureMode, TrainingSet};
use vigil_forest::{ClassWeight, RandomForest, RandomForestParams};
use vigil_metrics::{
    Average, ConfusionMatrix, PrfParams, confusion_matrix, precision_recall_fscore,
    precision_recall_fscore_support, roc_auc_score,
};

use crate::error::PipelineError;
use crate::evaluation::named_samples;

/// Fewer failure events of a mode than this in the training rows: the mode
/// is reported as rare (its test scores rest on a handful of examples).
pub const MIN_MODE_EVENTS: usize = 5;

/// The failure-mode classifier of a model version.
#[derive(Debug, Clone)]
pub struct FailureModeModel {
    /// Multi-class forest; its classes are [`FailureMode::class_index`] values.
    pub forest: RandomForest,
    /// Mode names (`none` first), in the forest's class order.
    pub modes: Vec<String>,
}

impl FailureModeModel {
    /// The probability of each mode (in [`modes`](Self::modes) order) for one row.
    pub fn probabilities_row(&self, row: &[f64]) -> Result<Vec<f64>, PipelineError> {
        Ok(self.forest.predict_proba_row(row)?)
    }

    /// The most likely mode other than `none`, and its probability (`None`
    /// when the model knows no mode but `none`).
    pub fn most_likely_failure<'a>(&'a self, probabilities: &[f64]) -> Option<(&'a str, f64)> {
        self.modes
            .iter()
            .zip(probabilities)
            .filter(|(name, _)| name.as_str() != FailureMode::None.as_str())
            .fold(None, |best: Option<(&str, f64)>, (name, &p)| match best {
                Some((_, q)) if q >= p => best,
                _ => Some((name.as_str(), p)),
            })
    }
}

/// What [`fit_mode_model`] did.
#[derive(Debug)]
pub enum ModeFit {
    /// A model, and the modes it saw fewer than [`MIN_MODE_EVENTS`] times.
    Trained {
        /// The fitted model (boxed: the variants would differ in size by a forest).
        model: Box<FailureModeModel>,
        /// Failure events per mode in the training rows.
        events: BTreeMap<String, usize>,
        /// Modes with fewer than [`MIN_MODE_EVENTS`] events.
        rare: Vec<String>,
    },
    /// No model, and why.
    Skipped {
        /// Why nothing was trained.
        reason: String,
    },
}

/// Class numbers of the rows' modes ([`FailureMode::class_index`]).
pub fn mode_labels(set: &TrainingSet) -> Vec<usize> {
    class_indices(&set.failure_mode)
}

fn class_indices(modes: &[FailureMode]) -> Vec<usize> {
    modes.iter().map(|m| m.class_index()).collect()
}

/// Failure events per mode: runs of consecutive rows labelled with the same
/// mode (one run is the horizon before one failure; the rows are ordered by
/// machine, then time, so a run never spans two machines' failures unless a
/// machine's last rows and the next machine's first rows share a mode).
pub fn mode_events(set: &TrainingSet) -> BTreeMap<FailureMode, usize> {
    count_mode_events(&set.failure_mode)
}

/// [`mode_events`] of rows' modes in machine, then time order.
fn count_mode_events(modes: &[FailureMode]) -> BTreeMap<FailureMode, usize> {
    let mut events = BTreeMap::new();
    let mut previous = FailureMode::None;
    for &mode in modes {
        if mode != FailureMode::None && mode != previous {
            *events.entry(mode).or_insert(0) += 1;
        }
        previous = mode;
    }
    events
}

/// Fits the mode model on `train` with the binary model's parameters
/// (`binary_params`) and balanced class weights.
pub fn fit_mode_model(
    binary_params: &RandomForestParams,
    train: &TrainingSet,
) -> Result<ModeFit, PipelineError> {
    fit_mode_model_with(binary_params, &train.failure_mode, |params, labels| {
        Ok(params.fit(named_samples(&train.features)?, labels)?)
    })
}

/// [`fit_mode_model`] for rows whose modes are `modes`, the forest fitted
/// by `fit` (with the mode parameters and class labels) on whatever holds
/// the rows: a feature matrix, or the streamed fleet's bin codes.
pub(crate) fn fit_mode_model_with(
    binary_params: &RandomForestParams,
    modes: &[FailureMode],
    fit: impl FnOnce(&RandomForestParams, &[usize]) -> Result<RandomForest, PipelineError>,
) -> Result<ModeFit, PipelineError> {
    let events = count_mode_events(modes);
    if events.is_empty() {
        return Ok(ModeFit::Skipped {
            reason: "no failure mode in the training rows (the data has no failure_mode \
                     column, or every labelled row is `none`)"
                .into(),
        });
    }
    let params = RandomForestParams {
        class_weight: ClassWeight::Balanced,
        ..binary_params.clone()
    };
    let forest = fit(&params, &class_indices(modes))?;
    let modes = forest
        .classes()
        .iter()
        .map(|&c| mode_name(c))
        .collect::<Result<_, _>>()?;
    let rare = events
        .iter()
        .filter(|&(_, &n)| n < MIN_MODE_EVENTS)
        .map(|(m, _)| m.as_str().to_string())
        .collect();
    Ok(ModeFit::Trained {
        model: Box::new(FailureModeModel { forest, modes }),
        events: events
            .into_iter()
            .map(|(m, n)| (m.as_str().to_string(), n))
            .collect(),
        rare,
    })
}

fn mode_name(class: usize) -> Result<String, PipelineError> {
    FailureMode::ALL
        .get(class)
        .map(|m| m.as_str().to_string())
        .ok_or_else(|| PipelineError::Model(format!("failure-mode class {class} is not a mode")))
}

/// One mode's scores on a labelled split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeScores {
    /// The mode (`none` included).
    pub mode: String,
    /// Precision of the most-likely-mode prediction.
    pub precision: f64,
    /// Recall of the most-likely-mode prediction.
    pub recall: f64,
    /// F1 of the most-likely-mode prediction.
    pub f1: f64,
    /// One-vs-rest ROC-AUC of the mode's probability; `None` when the split
    /// holds no row of the mode, or only rows of it.
    pub roc_auc: Option<f64>,
    /// Rows of the mode in the split.
    pub support: u64,
}

/// The mode model on one labelled split.
#[derive(Debug, Clone, Serialize)]
pub struct ModeEvaluation {
    /// Per mode the model knows or the split holds, in class order.
    pub per_mode: Vec<ModeScores>,
    /// Unweighted mean F1 over those modes.
    pub macro_f1: f64,
    /// Support-weighted mean F1 over those modes.
    pub weighted_f1: f64,
    /// True mode vs most likely mode, over those modes.
    pub confusion: ConfusionMatrix<usize>,
}

impl ModeEvaluation {
    /// The MLflow metrics, prefixed (`test_`): `f1_<mode>`, `precision_<mode>`,
    /// `recall_<mode>`, `roc_auc_<mode>` (when defined), `mode_f1_macro`,
    /// `mode_f1_weighted`.
    pub fn metrics(&self, prefix: &str) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for s in &self.per_mode {
            out.push((format!("{prefix}f1_{}", s.mode), s.f1));
            out.push((format!("{prefix}precision_{}", s.mode), s.precision));
            out.push((format!("{prefix}recall_{}", s.mode), s.recall));
            if let Some(auc) = s.roc_auc {
                out.push((format!("{prefix}roc_auc_{}", s.mode), auc));
            }
        }
        out.push((format!("{prefix}mode_f1_macro"), self.macro_f1));
        out.push((format!("{prefix}mode_f1_weighted"), self.weighted_f1));
        out
    }
}

/// Scores `model` on `split`: the most likely mode per row against the true
/// one, over every mode the model knows or the split holds. A mode of the
/// split the model never saw has recall 0 and no ROC-AUC.
pub fn evaluate_modes(
    model: &FailureModeModel,
    split: &TrainingSet,
) -> Result<ModeEvaluation, PipelineError> {
    let proba = model
        .forest
        .predict_proba(named_samples(&split.features)?)?;
    evaluate_mode_probabilities(model, proba.view(), &split.failure_mode)
}

/// [`evaluate_modes`] from the model's probabilities `proba` (rows × its
/// classes) of rows whose true modes are `modes`.
pub(crate) fn evaluate_mode_probabilities(
    model: &FailureModeModel,
    proba: ArrayView2<'_, f64>,
    modes: &[FailureMode],
) -> Result<ModeEvaluation, PipelineError> {
    let classes = model.forest.classes();
    let y_true = class_indices(modes);
    let y_pred: Vec<usize> = proba
        .outer_iter()
        .map(|row| classes[argmax(row.iter().copied())])
        .collect();
    let mut labels: Vec<usize> = classes.iter().chain(&y_true).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    let params = PrfParams {
        labels: Some(labels.clone()),
        ..Default::default()
    };
    let per_class = precision_recall_fscore_support(&y_true, &y_pred, &params)?;
    let mut per_mode = Vec::with_capacity(labels.len());
    for (k, &class) in labels.iter().enumerate() {
        let column = classes.iter().position(|&c| c == class);
        per_mode.push(ModeScores {
            mode: mode_name(class)?,
            precision: per_class.precision[k],
            recall: per_class.recall[k],
            f1: per_class.f_score[k],
            roc_auc: one_vs_rest_auc(&y_true, class, column.map(|c| proba.column(c).to_vec()))?,
            support: per_class.support[k],
        });
    }
    let average = |average| -> Result<f64, PipelineError> {
        Ok(precision_recall_fscore(&y_true, &y_pred, average, &params)?.f_score)
    };
    Ok(ModeEvaluation {
        per_mode,
        macro_f1: average(Average::Macro)?,
        weighted_f1: average(Average::Weighted)?,
        confusion: confusion_matrix(&y_true, &y_pred, Some(&labels))?,
    })
}

/// ROC-AUC of `score` for "is `class`" against the rest; `None` without a
/// score or when the split holds only one side.
fn one_vs_rest_auc(
    y_true: &[usize],
    class: usize,
    score: Option<Vec<f64>>,
) -> Result<Option<f64>, PipelineError> {
    let is_class: Vec<u8> = y_true.iter().map(|&y| u8::from(y == class)).collect();
    let positives = is_class.iter().filter(|&&b| b == 1).count();
    match score {
        Some(score) if positives > 0 && positives < is_class.len() => {
            Ok(Some(roc_auc_score(&is_class, &score)?))
        }
        _ => Ok(None),
    }
}

/// Index of the largest value (the first of equal ones, as NumPy's argmax).
fn argmax(values: impl Iterator<Item = f64>) -> usize {
    values
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// The failure-mode part of a run, as `run_summary.json` and
/// `reports/failure_modes.json` hold it.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    /// Whether a mode model was trained.
    pub trained: bool,
    /// Why not, when it was not.
    pub skipped_reason: Option<String>,
    /// Failure events per mode in the training rows.
    pub training_events: BTreeMap<String, usize>,
    /// Modes with fewer than [`MIN_MODE_EVENTS`] training events.
    pub rare: Vec<String>,
    /// Per-mode scores on the test split.
    pub per_mode: Vec<ModeScores>,
    /// Macro F1 on the test split.
    pub macro_f1: Option<f64>,
    /// Weighted F1 on the test split.
    pub weighted_f1: Option<f64>,
    /// Confusion matrix rows (true mode) × columns (most likely mode), in
    /// `per_mode` order.
    pub confusion: Vec<Vec<u64>>,
}

impl ModeReport {
    /// The report of `fit`, with its evaluation on the test split when a model was trained.
    pub fn new(fit: &ModeFit, test: Option<&ModeEvaluation>) -> ModeReport {
        let (training_events, rare, skipped_reason) = match fit {
            ModeFit::Trained { events, rare, .. } => (events.clone(), rare.clone(), None),
            ModeFit::Skipped { reason } => (BTreeMap::new(), Vec::new(), Some(reason.clone())),
        };
        ModeReport {
            trained: skipped_reason.is_none(),
            skipped_reason,
            training_events,
            rare,
            per_mode: test.map(|t| t.per_mode.clone()).unwrap_or_default(),
            macro_f1: test.map(|t| t.macro_f1),
            weighted_f1: test.map(|t| t.weighted_f1),
            confusion: test.map(|t| t.confusion.rows()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_features::{FeatureSpec, SimulatorConfig, simulate};

    fn set(machines: usize, days: f64, seed: u64) -> TrainingSet {
        let sim = simulate(&SimulatorConfig {
            machines,
            days,
            seed,
            ..Default::default()
        })
        .unwrap();
        TrainingSet::build(&sim.frame, &FeatureSpec::default()).unwrap()
    }

    fn small_params() -> RandomForestParams {
        RandomForestParams {
            n_estimators: 10,
            max_depth: Some(8),
            seed: 3,
            ..Default::default()
        }
    }

    #[test]
    fn events_are_runs_of_one_mode() {
        let mut s = set(1, 0.5, 1);
        let n = s.failure_mode.len();
        s.failure_mode = vec![FailureMode::None; n];
        s.failure_mode[10..20].fill(FailureMode::Overheat);
        s.failure_mode[20..25].fill(FailureMode::ToolWear);
        s.failure_mode[40..41].fill(FailureMode::Overheat);
        let events = mode_events(&s);
        assert_eq!(events[&FailureMode::Overheat], 2);
        assert_eq!(events[&FailureMode::ToolWear], 1);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn data_without_modes_trains_nothing_and_says_why() {
        let mut s = set(2, 1.0, 2);
        s.failure_mode.fill(FailureMode::None);
        match fit_mode_model(&small_params(), &s).unwrap() {
            ModeFit::Skipped { reason } => assert!(reason.contains("no failure mode"), "{reason}"),
            ModeFit::Trained { .. } => panic!("trained on data without modes"),
        }
    }

    #[test]
    fn the_mode_model_knows_the_modes_it_saw_and_scores_each() {
        let train = set(4, 3.0, 7);
        let test = set(4, 1.0, 8);
        let ModeFit::Trained {
            model,
            events,
            rare,
        } = fit_mode_model(&small_params(), &train).unwrap()
        else {
            panic!("no modes in 4 machines x 3 days")
        };
        assert_eq!(model.modes[0], "none");
        let seen: Vec<&str> = events.keys().map(String::as_str).collect();
        let mut known: Vec<&str> = model.modes[1..].iter().map(String::as_str).collect();
        known.sort_unstable();
        assert_eq!(
            known, seen,
            "class order is the modes' order, events are by name"
        );
        assert!(rare.iter().all(|m| events[m] < MIN_MODE_EVENTS));

        let e = evaluate_modes(&model, &test).unwrap();
        let supports: u64 = e.per_mode.iter().map(|m| m.support).sum();
        assert_eq!(supports as usize, test.len());
        let cells: u64 = e.confusion.rows().iter().flatten().sum();
        assert_eq!(cells as usize, test.len());
        // `none` is most rows and most of them are predicted right.
        let none = &e.per_mode[0];
        assert_eq!(none.mode, "none");
        assert!(none.recall > 0.9, "{none:?}");
        assert!((0.0..=1.0).contains(&e.macro_f1) && (0.0..=1.0).contains(&e.weighted_f1));
        let metrics = e.metrics("test_");
        assert!(metrics.iter().any(|(k, _)| k == "test_f1_none"));
        assert!(metrics.iter().any(|(k, _)| k == "test_mode_f1_macro"));

        // One row: the probabilities of every mode, summing to 1.
        let row = test.features.values.row(0).to_vec();
        let p = model.probabilities_row(&row).unwrap();
        assert_eq!(p.len(), model.modes.len());
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let (mode, q) = model.most_likely_failure(&p).unwrap();
        assert_ne!(mode, "none");
        assert!(p[1..].iter().all(|&x| x <= q));
    }

    #[test]
    fn most_likely_failure_skips_none_and_takes_the_first_of_equals() {
        let model = FailureModeModel {
            forest: RandomForestParams {
                n_estimators: 1,
                ..Default::default()
            }
            .fit(&ndarray::array![[0.0], [1.0]], &[0usize, 1])
            .unwrap(),
            modes: vec!["none".into(), "overheat".into(), "tool_wear".into()],
        };
        assert_eq!(
            model.most_likely_failure(&[0.8, 0.1, 0.1]),
            Some(("overheat", 0.1))
        );
        assert_eq!(
            model.most_likely_failure(&[0.2, 0.3, 0.5]),
            Some(("tool_wear", 0.5))
        );
        assert_eq!(argmax([0.2, 0.4, 0.4].into_iter()), 1);
    }
}
