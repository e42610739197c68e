//! Probabilistic losses: log loss and Brier score.

use crate::error::{MetricsError, Result};
use crate::labels::{BinaryTarget, Label, LabelIndex, unique_sorted};
use crate::validate::{check_matrix, check_nonempty, check_probabilities, check_same_len};

/// Machine epsilon of f64: scikit-learn ≥ 1.5 clips probabilities to
/// `[eps, 1 - eps]` with the input dtype's epsilon (the old `eps=` argument
/// is gone).
const EPS: f64 = f64::EPSILON;

/// Binary log loss (cross-entropy), `log_loss(y_true, y_prob)` with a 1-D
/// `y_prob` holding P(positive).
///
/// Probabilities are clipped to `[ε, 1 − ε]` (ε = `f64::EPSILON`) exactly as
/// scikit-learn 1.9 does, so a confident wrong prediction costs about 36.04
/// rather than infinity. Unlike scikit-learn, a `y_true` with a single class
/// needs no `labels=` argument: the two classes are known to be 0 and 1.
///
/// # Errors
/// Length mismatch, empty input, labels other than 0/1, and
/// [`MetricsError::ProbabilityOutOfRange`] / [`MetricsError::NonFinite`] for
/// probabilities outside `[0, 1]`.
pub fn log_loss<L: Label>(y_true: &[L], y_prob: &[f64]) -> Result<f64> {
    check_same_len("y_true", y_true.len(), "y_prob", y_prob.len())?;
    check_nonempty("y_true", y_true.len())?;
    check_probabilities("y_prob", y_prob)?;
    let mut target = BinaryTarget::new();
    let mut total = 0.0;
    for (i, (&t, &p)) in y_true.iter().zip(y_prob).enumerate() {
        // As scikit-learn: the two columns are (1 - p, p), clipped after.
        let q = if target.is_positive("y_true", i, t)? {
            p
        } else {
            1.0 - p
        };
        total -= q.clamp(EPS, 1.0 - EPS).ln();
    }
    Ok(total / y_true.len() as f64)
}

/// Multi-class log loss: `y_prob` is the row-major `n_samples × n_classes`
/// probability matrix, column `j` belonging to `labels[j]` (default: the
/// sorted distinct labels of `y_true`).
///
/// # Errors
/// Shape mismatches, labels outside `labels`, probabilities outside
/// `[0, 1]`, fewer than two classes, and rows that do not sum to 1 within
/// `sqrt(ε)` relative (scikit-learn only warns there; a library must not
/// silently score non-probabilities).
pub fn log_loss_multiclass<L: Label>(
    y_true: &[L],
    y_prob: &[f64],
    labels: Option<&[L]>,
) -> Result<f64> {
    let (encoded, k) = multiclass_inputs(y_true, y_prob, labels)?;
    let mut total = 0.0;
    for (row, &c) in y_prob.chunks_exact(k).zip(&encoded) {
        total -= row[c as usize].clamp(EPS, 1.0 - EPS).ln();
    }
    Ok(total / y_true.len() as f64)
}

/// Brier score for a binary target: the mean of `(y − p)²`
/// (`brier_score_loss(y_true, y_prob)`).
///
/// # Errors
/// As [`log_loss`].
pub fn brier_score_loss<L: Label>(y_true: &[L], y_prob: &[f64]) -> Result<f64> {
    check_same_len("y_true", y_true.len(), "y_prob", y_prob.len())?;
    check_nonempty("y_true", y_true.len())?;
    check_probabilities("y_prob", y_prob)?;
    let mut target = BinaryTarget::new();
    let mut total = 0.0;
    for (i, (&t, &p)) in y_true.iter().zip(y_prob).enumerate() {
        let y = if target.is_positive("y_true", i, t)? {
            1.0
        } else {
            0.0
        };
        total += (y - p) * (y - p);
    }
    Ok(total / y_true.len() as f64)
}

/// Multi-class Brier score: the mean over samples of `Σⱼ (yⱼ − pⱼ)²` with
/// one-hot `y` (`brier_score_loss` with a 2-D `y_prob`; for three or more
/// classes scikit-learn does not halve it, for two it does, and so do we).
///
/// # Errors
/// As [`log_loss_multiclass`].
pub fn brier_score_loss_multiclass<L: Label>(
    y_true: &[L],
    y_prob: &[f64],
    labels: Option<&[L]>,
) -> Result<f64> {
    let (encoded, k) = multiclass_inputs(y_true, y_prob, labels)?;
    let mut total = 0.0;
    for (row, &c) in y_prob.chunks_exact(k).zip(&encoded) {
        total += row
            .iter()
            .enumerate()
            .map(|(j, &p)| {
                let y = if j == c as usize { 1.0 } else { 0.0 };
                (y - p) * (y - p)
            })
            .sum::<f64>();
    }
    let mean = total / y_true.len() as f64;
    Ok(if k < 3 { mean * 0.5 } else { mean })
}

fn multiclass_inputs<L: Label>(
    y_true: &[L],
    y_prob: &[f64],
    labels: Option<&[L]>,
) -> Result<(Vec<u32>, usize)> {
    check_nonempty("y_true", y_true.len())?;
    let index = match labels {
        Some(l) => LabelIndex::new(l.to_vec())?,
        None => LabelIndex::new(unique_sorted(&[y_true]))?,
    };
    let k = index.len();
    if k < 2 {
        return Err(MetricsError::InvalidLabels {
            reason: format!(
                "{} class found; pass all classes through `labels` (at least two)",
                k
            ),
        });
    }
    check_matrix("y_prob", y_prob.len(), y_true.len(), k)?;
    check_probabilities("y_prob", y_prob)?;
    let encoded = index.encode("y_true", y_true)?;
    let tol = EPS.sqrt();
    for (row, r) in y_prob.chunks_exact(k).enumerate() {
        let sum: f64 = r.iter().sum();
        // xpx.isclose(sum, 1, rtol=sqrt(eps)) with its default atol 1e-8.
        if (sum - 1.0).abs() > 1e-8 + tol {
            return Err(MetricsError::ProbabilitiesDoNotSumToOne {
                name: "y_prob",
                row,
                sum,
            });
        }
    }
    Ok((encoded, k))
}
