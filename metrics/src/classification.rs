//! Label-based classification metrics: accuracy, balanced accuracy, Matthews
//! correlation, and precision / recall / F-beta with scikit-learn's averaging
//! and `zero_division` rules.

use serde::{Deserialize, Serialize};

use crate::confusion::{ConfusionMatrix, confusion_matrix};
use crate::error::{MetricsError, Result};
use crate::labels::{Label, LabelIndex, format_labels, unique_sorted};
use crate::validate::{check_nonempty, check_ratios, check_same_len};

/// What an ill-defined ratio (a zero denominator) evaluates to, like
/// scikit-learn's `zero_division` parameter.
///
/// scikit-learn's default `"warn"` yields 0 and prints a warning; a library
/// does not print, so [`ZeroDivision::Zero`] is that default here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ZeroDivision {
    /// 0.0 (scikit-learn's `"warn"` and `0.0`). The default.
    #[default]
    Zero,
    /// 1.0.
    One,
    /// NaN; NaN entries are then left out of macro and weighted averages.
    Nan,
}

impl ZeroDivision {
    /// The value this setting substitutes.
    pub fn value(self) -> f64 {
        match self {
            Self::Zero => 0.0,
            Self::One => 1.0,
            Self::Nan => f64::NAN,
        }
    }
}

/// How per-class precision / recall / F-scores are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Average<L> {
    /// Scores of `pos_label` only; the targets must have at most two classes.
    Binary {
        /// The positive class.
        pos_label: L,
    },
    /// Global counts of true positives, false negatives and false positives.
    Micro,
    /// Unweighted mean of the per-class scores.
    Macro,
    /// Mean of the per-class scores weighted by support (true count).
    Weighted,
}

impl<L: Label> Average<L> {
    /// `Binary` with the conventional positive label `1` / `true`.
    pub fn binary() -> Self {
        Self::Binary {
            pos_label: L::positive(),
        }
    }
}

/// Options of the precision / recall / F-beta family.
///
/// In JSON an infinite `beta` is the string `"inf"`; deserialising runs
/// [`PrfParams::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "PrfParamsRecord<L>",
    bound(deserialize = "L: Deserialize<'de>")
)]
pub struct PrfParams<L> {
    /// Weight of recall in the F-score (`beta = 1` is F1; `beta = ∞` gives
    /// recall, `beta = 0` precision). Default 1.
    #[serde(with = "crate::serde_f64")]
    pub beta: f64,
    /// The label set and its order. Default: the sorted union of the labels in
    /// `y_true` and `y_pred`. A label in the data but not here is an error.
    pub labels: Option<Vec<L>>,
    /// Value of ill-defined ratios. Default [`ZeroDivision::Zero`].
    pub zero_division: ZeroDivision,
}

impl<L> Default for PrfParams<L> {
    fn default() -> Self {
        Self {
            beta: 1.0,
            labels: None,
            zero_division: ZeroDivision::Zero,
        }
    }
}

/// [`PrfParams`] as read, before [`PrfParams::validate`].
#[derive(Deserialize)]
struct PrfParamsRecord<L> {
    #[serde(with = "crate::serde_f64")]
    beta: f64,
    labels: Option<Vec<L>>,
    zero_division: ZeroDivision,
}

impl<L> TryFrom<PrfParamsRecord<L>> for PrfParams<L> {
    type Error = MetricsError;

    fn try_from(r: PrfParamsRecord<L>) -> Result<Self> {
        let params = Self {
            beta: r.beta,
            labels: r.labels,
            zero_division: r.zero_division,
        };
        params.validate()?;
        Ok(params)
    }
}

impl<L> PrfParams<L> {
    /// Checks `beta` is a non-negative number (∞ allowed).
    ///
    /// # Errors
    /// [`MetricsError::InvalidParameter`] for a negative or NaN beta.
    pub fn validate(&self) -> Result<()> {
        if self.beta.is_nan() || self.beta < 0.0 {
            return Err(MetricsError::InvalidParameter {
                name: "beta",
                reason: format!("must be >= 0, got {}", self.beta),
            });
        }
        Ok(())
    }
}

/// Per-class precision, recall, F-score and support (`average=None` in
/// scikit-learn), in the order of [`ClassScores::labels`].
///
/// In JSON a NaN score ([`ZeroDivision::Nan`]) is the string `"NaN"`;
/// deserialising checks distinct labels, one value of each kind per label and
/// scores in `[0, 1]` (or NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "ClassScoresRecord<L>",
    bound(deserialize = "L: Label + Deserialize<'de>")
)]
pub struct ClassScores<L> {
    /// The classes.
    pub labels: Vec<L>,
    /// Precision per class.
    #[serde(with = "crate::serde_f64::vec")]
    pub precision: Vec<f64>,
    /// Recall per class.
    #[serde(with = "crate::serde_f64::vec")]
    pub recall: Vec<f64>,
    /// F-beta per class.
    #[serde(with = "crate::serde_f64::vec")]
    pub f_score: Vec<f64>,
    /// Number of true samples per class.
    pub support: Vec<u64>,
}

/// [`ClassScores`] as read, before their checks.
#[derive(Deserialize)]
struct ClassScoresRecord<L> {
    labels: Vec<L>,
    #[serde(with = "crate::serde_f64::vec")]
    precision: Vec<f64>,
    #[serde(with = "crate::serde_f64::vec")]
    recall: Vec<f64>,
    #[serde(with = "crate::serde_f64::vec")]
    f_score: Vec<f64>,
    support: Vec<u64>,
}

impl<L: Label> TryFrom<ClassScoresRecord<L>> for ClassScores<L> {
    type Error = MetricsError;

    fn try_from(r: ClassScoresRecord<L>) -> Result<Self> {
        let labels = LabelIndex::new(r.labels)?.labels().to_vec();
        let n = labels.len();
        check_same_len("labels", n, "precision", r.precision.len())?;
        check_same_len("labels", n, "recall", r.recall.len())?;
        check_same_len("labels", n, "f_score", r.f_score.len())?;
        check_same_len("labels", n, "support", r.support.len())?;
        check_ratios("precision", &r.precision)?;
        check_ratios("recall", &r.recall)?;
        check_ratios("f_score", &r.f_score)?;
        Ok(Self {
            labels,
            precision: r.precision,
            recall: r.recall,
            f_score: r.f_score,
            support: r.support,
        })
    }
}

/// Averaged precision, recall and F-score.
///
/// In JSON a NaN score is the string `"NaN"`; deserialising checks that each
/// score is in `[0, 1]` (or NaN).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScoresRecord")]
pub struct Scores {
    /// Precision.
    #[serde(with = "crate::serde_f64")]
    pub precision: f64,
    /// Recall.
    #[serde(with = "crate::serde_f64")]
    pub recall: f64,
    /// F-beta.
    #[serde(with = "crate::serde_f64")]
    pub f_score: f64,
}

/// [`Scores`] as read, before their checks.
#[derive(Deserialize)]
struct ScoresRecord {
    #[serde(with = "crate::serde_f64")]
    precision: f64,
    #[serde(with = "crate::serde_f64")]
    recall: f64,
    #[serde(with = "crate::serde_f64")]
    f_score: f64,
}

impl TryFrom<ScoresRecord> for Scores {
    type Error = MetricsError;

    fn try_from(r: ScoresRecord) -> Result<Self> {
        check_ratios("precision", &[r.precision])?;
        check_ratios("recall", &[r.recall])?;
        check_ratios("f_score", &[r.f_score])?;
        Ok(Self {
            precision: r.precision,
            recall: r.recall,
            f_score: r.f_score,
        })
    }
}

/// Fraction of samples predicted correctly (`accuracy_score`).
///
/// # Errors
/// Length mismatch or empty input.
pub fn accuracy_score<L: Label>(y_true: &[L], y_pred: &[L]) -> Result<f64> {
    check_same_len("y_true", y_true.len(), "y_pred", y_pred.len())?;
    check_nonempty("y_true", y_true.len())?;
    let correct = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(correct as f64 / y_true.len() as f64)
}

/// Mean per-class recall (`balanced_accuracy_score`).
///
/// Classes that appear only in `y_pred` are left out, as in scikit-learn.
/// With `adjusted`, chance maps to 0 and perfect to 1.
///
/// # Errors
/// Length mismatch or empty input.
pub fn balanced_accuracy_score<L: Label>(
    y_true: &[L],
    y_pred: &[L],
    adjusted: bool,
) -> Result<f64> {
    let cm = confusion_matrix(y_true, y_pred, None)?;
    let per_class: Vec<f64> = cm
        .diagonal()
        .iter()
        .zip(cm.true_counts())
        .filter(|&(_, t)| t > 0)
        .map(|(&d, t)| d as f64 / t as f64)
        .collect();
    let mut score = per_class.iter().sum::<f64>() / per_class.len() as f64;
    if adjusted {
        let chance = 1.0 / per_class.len() as f64;
        score -= chance;
        score /= 1.0 - chance;
    }
    Ok(score)
}

/// Matthews correlation coefficient (`matthews_corrcoef`), binary or
/// multi-class; 0 when undefined (a constant truth or prediction).
///
/// # Errors
/// Length mismatch or empty input.
pub fn matthews_corrcoef<L: Label>(y_true: &[L], y_pred: &[L]) -> Result<f64> {
    let cm = confusion_matrix(y_true, y_pred, None)?;
    Ok(mcc_from_matrix(&cm))
}

/// The Matthews correlation of a confusion matrix.
pub fn mcc_from_matrix<L: Label>(cm: &ConfusionMatrix<L>) -> f64 {
    let t_sum: Vec<f64> = cm.true_counts().iter().map(|&c| c as f64).collect();
    let p_sum: Vec<f64> = cm.predicted_counts().iter().map(|&c| c as f64).collect();
    let n_correct: f64 = cm.diagonal().iter().map(|&c| c as f64).sum();
    let n_samples: f64 = p_sum.iter().sum();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let cov_ytyp = n_correct * n_samples - dot(&t_sum, &p_sum);
    let cov_ypyp = n_samples * n_samples - dot(&p_sum, &p_sum);
    let cov_ytyt = n_samples * n_samples - dot(&t_sum, &t_sum);
    let denom = cov_ypyp * cov_ytyt;
    if denom == 0.0 {
        0.0
    } else {
        cov_ytyp / denom.sqrt()
    }
}

/// Per-class counts behind precision and recall.
struct PrfCounts {
    tp: Vec<f64>,
    pred: Vec<f64>,
    truth: Vec<f64>,
}

fn divide(num: f64, den: f64, zero_division: ZeroDivision) -> f64 {
    if den == 0.0 {
        zero_division.value()
    } else {
        num / den
    }
}

fn scores_from_counts(
    c: &PrfCounts,
    beta: f64,
    zd: ZeroDivision,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let precision: Vec<f64> =
        c.tp.iter()
            .zip(&c.pred)
            .map(|(&t, &p)| divide(t, p, zd))
            .collect();
    let recall: Vec<f64> =
        c.tp.iter()
            .zip(&c.truth)
            .map(|(&t, &s)| divide(t, s, zd))
            .collect();
    let f_score = if beta.is_infinite() {
        recall.clone()
    } else if beta == 0.0 {
        precision.clone()
    } else {
        let beta2 = beta * beta;
        (0..c.tp.len())
            .map(|i| divide((1.0 + beta2) * c.tp[i], beta2 * c.truth[i] + c.pred[i], zd))
            .collect()
    };
    (precision, recall, f_score)
}

/// Mean ignoring NaNs, weighted when `weights` is given (scikit-learn's
/// `_nanaverage`: all weights zero falls back to the unweighted mean).
fn nan_average(values: &[f64], weights: Option<&[f64]>) -> f64 {
    let kept: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .map(|(i, &v)| (v, weights.map_or(1.0, |w| w[i])))
        .collect();
    if kept.is_empty() {
        return f64::NAN;
    }
    let wsum: f64 = kept.iter().map(|&(_, w)| w).sum();
    if wsum == 0.0 {
        return kept.iter().map(|&(v, _)| v).sum::<f64>() / kept.len() as f64;
    }
    kept.iter().map(|&(v, w)| v * w).sum::<f64>() / wsum
}

fn per_class_counts<L: Label>(cm: &ConfusionMatrix<L>) -> PrfCounts {
    let to_f = |v: Vec<u64>| v.into_iter().map(|c| c as f64).collect::<Vec<_>>();
    PrfCounts {
        tp: to_f(cm.diagonal()),
        pred: to_f(cm.predicted_counts()),
        truth: to_f(cm.true_counts()),
    }
}

/// Per-class precision, recall, F-beta and support
/// (`precision_recall_fscore_support(average=None)`).
///
/// # Errors
/// Length mismatch, empty input, invalid parameters, labels outside
/// `params.labels`.
pub fn precision_recall_fscore_support<L: Label>(
    y_true: &[L],
    y_pred: &[L],
    params: &PrfParams<L>,
) -> Result<ClassScores<L>> {
    params.validate()?;
    let cm = confusion_matrix(y_true, y_pred, params.labels.as_deref())?;
    let counts = per_class_counts(&cm);
    let (precision, recall, f_score) =
        scores_from_counts(&counts, params.beta, params.zero_division);
    Ok(ClassScores {
        labels: cm.labels().to_vec(),
        precision,
        recall,
        f_score,
        support: cm.true_counts(),
    })
}

/// Averaged precision, recall and F-beta
/// (`precision_recall_fscore_support(average=...)`).
///
/// # Errors
/// As [`precision_recall_fscore_support`]; with [`Average::Binary`], also
/// [`MetricsError::NotBinary`] when the targets hold more than two classes and
/// [`MetricsError::InvalidParameter`] when `pos_label` is not one of two
/// present classes.
pub fn precision_recall_fscore<L: Label>(
    y_true: &[L],
    y_pred: &[L],
    average: Average<L>,
    params: &PrfParams<L>,
) -> Result<Scores> {
    params.validate()?;
    let cm = confusion_matrix(y_true, y_pred, params.labels.as_deref())?;
    let counts = per_class_counts(&cm);
    let zd = params.zero_division;
    let scalar = |c: PrfCounts| {
        let (p, r, f) = scores_from_counts(&c, params.beta, zd);
        Scores {
            precision: p[0],
            recall: r[0],
            f_score: f[0],
        }
    };
    match average {
        Average::Binary { pos_label } => {
            let present = unique_sorted(&[y_true, y_pred]);
            if present.len() > 2 {
                return Err(MetricsError::NotBinary {
                    n_classes: present.len(),
                    labels: format_labels(&present),
                });
            }
            if present.len() == 2 && !present.contains(&pos_label) {
                return Err(MetricsError::InvalidParameter {
                    name: "pos_label",
                    reason: format!(
                        "{pos_label:?} is not a valid label; it should be one of {}",
                        format_labels(&present)
                    ),
                });
            }
            let c = match cm.labels().iter().position(|&l| l == pos_label) {
                Some(i) => PrfCounts {
                    tp: vec![counts.tp[i]],
                    pred: vec![counts.pred[i]],
                    truth: vec![counts.truth[i]],
                },
                None => PrfCounts {
                    tp: vec![0.0],
                    pred: vec![0.0],
                    truth: vec![0.0],
                },
            };
            Ok(scalar(c))
        }
        Average::Micro => Ok(scalar(PrfCounts {
            tp: vec![counts.tp.iter().sum()],
            pred: vec![counts.pred.iter().sum()],
            truth: vec![counts.truth.iter().sum()],
        })),
        Average::Macro | Average::Weighted => {
            let (p, r, f) = scores_from_counts(&counts, params.beta, zd);
            let weights = matches!(average, Average::Weighted).then_some(counts.truth.as_slice());
            Ok(Scores {
                precision: nan_average(&p, weights),
                recall: nan_average(&r, weights),
                f_score: nan_average(&f, weights),
            })
        }
    }
}

/// Precision (`precision_score`) with the default zero-division value 0.
///
/// # Errors
/// As [`precision_recall_fscore`].
pub fn precision_score<L: Label>(y_true: &[L], y_pred: &[L], average: Average<L>) -> Result<f64> {
    Ok(precision_recall_fscore(y_true, y_pred, average, &PrfParams::default())?.precision)
}

/// Recall (`recall_score`) with the default zero-division value 0.
///
/// # Errors
/// As [`precision_recall_fscore`].
pub fn recall_score<L: Label>(y_true: &[L], y_pred: &[L], average: Average<L>) -> Result<f64> {
    Ok(precision_recall_fscore(y_true, y_pred, average, &PrfParams::default())?.recall)
}

/// F1 (`f1_score`) with the default zero-division value 0.
///
/// # Errors
/// As [`precision_recall_fscore`].
pub fn f1_score<L: Label>(y_true: &[L], y_pred: &[L], average: Average<L>) -> Result<f64> {
    Ok(precision_recall_fscore(y_true, y_pred, average, &PrfParams::default())?.f_score)
}

/// F-beta (`fbeta_score`) with the default zero-division value 0.
///
/// # Errors
/// As [`precision_recall_fscore`], plus a negative or NaN `beta`.
pub fn fbeta_score<L: Label>(
    y_true: &[L],
    y_pred: &[L],
    beta: f64,
    average: Average<L>,
) -> Result<f64> {
    let params = PrfParams {
        beta,
        ..PrfParams::default()
    };
    Ok(precision_recall_fscore(y_true, y_pred, average, &params)?.f_score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_scores_by_hand() {
        let t = [0u8, 1, 1, 0, 1, 1];
        let p = [0u8, 1, 0, 1, 1, 1];
        // tp = 3, fp = 1, fn = 1.
        assert_eq!(precision_score(&t, &p, Average::binary()).unwrap(), 0.75);
        assert_eq!(recall_score(&t, &p, Average::binary()).unwrap(), 0.75);
        assert_eq!(f1_score(&t, &p, Average::binary()).unwrap(), 0.75);
        assert!((accuracy_score(&t, &p).unwrap() - 4.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn zero_division_settings() {
        let t = [0u8, 0, 1];
        let p = [0u8, 0, 0];
        for (zd, want) in [(ZeroDivision::Zero, 0.0), (ZeroDivision::One, 1.0)] {
            let params = PrfParams {
                zero_division: zd,
                ..PrfParams::default()
            };
            let s = precision_recall_fscore(&t, &p, Average::binary(), &params).unwrap();
            assert_eq!(s.precision, want);
            assert_eq!(s.recall, 0.0);
        }
        let params = PrfParams {
            zero_division: ZeroDivision::Nan,
            ..PrfParams::default()
        };
        let s = precision_recall_fscore(&t, &p, Average::binary(), &params).unwrap();
        assert!(s.precision.is_nan());
    }

    #[test]
    fn binary_average_rejects_multiclass_and_bad_pos_label() {
        assert!(matches!(
            f1_score(&[0u8, 1, 2], &[0, 1, 2], Average::binary()),
            Err(MetricsError::NotBinary { n_classes: 3, .. })
        ));
        assert!(matches!(
            f1_score(&[0u8, 2], &[0, 2], Average::binary()),
            Err(MetricsError::InvalidParameter {
                name: "pos_label",
                ..
            })
        ));
        assert!(fbeta_score(&[0u8, 1], &[0, 1], -1.0, Average::Macro).is_err());
    }

    #[test]
    fn mcc_of_constant_prediction_is_zero() {
        assert_eq!(matthews_corrcoef(&[0u8, 1, 1], &[1, 1, 1]).unwrap(), 0.0);
        assert_eq!(matthews_corrcoef(&[0u8, 1, 1], &[0, 1, 1]).unwrap(), 1.0);
    }
}
