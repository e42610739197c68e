//! Confusion matrices.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::labels::{Label, LabelIndex};
use crate::validate::{check_nonempty, check_same_len};

/// A confusion matrix: `count(i, j)` is the number of samples whose true label
/// is `labels[i]` and whose predicted label is `labels[j]` (rows are truth,
/// columns predictions, as in scikit-learn).
///
/// Serialises as `{"labels": [...], "counts": [...]}` (row-major counts);
/// deserialising goes through the checks of [`ConfusionMatrix::from_counts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "ConfusionMatrixRecord<L>",
    bound(deserialize = "L: Label + Deserialize<'de>")
)]
pub struct ConfusionMatrix<L> {
    labels: Vec<L>,
    /// Row-major `labels.len() × labels.len()` counts.
    counts: Vec<u64>,
}

/// A [`ConfusionMatrix`] as read, before its checks.
#[derive(Deserialize)]
struct ConfusionMatrixRecord<L> {
    labels: Vec<L>,
    counts: Vec<u64>,
}

impl<L: Label> TryFrom<ConfusionMatrixRecord<L>> for ConfusionMatrix<L> {
    type Error = MetricsError;

    fn try_from(r: ConfusionMatrixRecord<L>) -> Result<Self> {
        Self::from_counts(r.labels, r.counts)
    }
}

/// The four cells of a binary confusion matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryCounts {
    /// True negatives.
    pub tn: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// True positives.
    pub tp: u64,
}

/// Computes the confusion matrix of `y_pred` against `y_true`.
///
/// `labels` fixes the rows/columns and their order (as scikit-learn's
/// `labels=`); without it the sorted union of the labels in both inputs is
/// used. Unlike scikit-learn, which silently drops samples whose labels are not
/// in an explicit `labels` list, a label outside the list is an error
/// ([`MetricsError::UnknownLabel`]): dropping samples hides data bugs.
///
/// Runs in one pass, O(n + k²) for k labels.
///
/// # Errors
/// Length mismatch, empty input, invalid `labels` (empty or repeated), or a
/// label outside `labels`.
pub fn confusion_matrix<L: Label>(
    y_true: &[L],
    y_pred: &[L],
    labels: Option<&[L]>,
) -> Result<ConfusionMatrix<L>> {
    check_same_len("y_true", y_true.len(), "y_pred", y_pred.len())?;
    check_nonempty("y_true", y_true.len())?;
    let index = match labels {
        Some(l) => LabelIndex::new(l.to_vec())?,
        None => LabelIndex::from_data(&[y_true, y_pred])?,
    };
    let k = index.len();
    let mut counts = vec![0u64; k * k];
    for (i, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
        let ti = index
            .position(t)
            .ok_or_else(|| index.unknown("y_true", i, t))?;
        let pi = index
            .position(p)
            .ok_or_else(|| index.unknown("y_pred", i, p))?;
        counts[ti * k + pi] += 1;
    }
    Ok(ConfusionMatrix {
        labels: index.labels().to_vec(),
        counts,
    })
}

impl<L: Label> ConfusionMatrix<L> {
    /// Builds a matrix from labels and row-major counts (e.g. one read back
    /// from a log).
    ///
    /// # Errors
    /// [`MetricsError::ShapeMismatch`] unless `counts.len() == labels.len()²`;
    /// [`MetricsError::InvalidLabels`] for an empty or repeated label list.
    pub fn from_counts(labels: Vec<L>, counts: Vec<u64>) -> Result<Self> {
        let k = labels.len();
        if counts.len() != k * k {
            return Err(MetricsError::ShapeMismatch {
                name: "counts",
                len: counts.len(),
                rows: k,
                cols: k,
            });
        }
        // Validates emptiness and duplicates.
        LabelIndex::new(labels.clone())?;
        Ok(Self { labels, counts })
    }

    /// The labels, in row/column order.
    pub fn labels(&self) -> &[L] {
        &self.labels
    }

    /// Number of classes (rows = columns).
    pub fn n_classes(&self) -> usize {
        self.labels.len()
    }

    /// Count of samples with true class index `true_idx` predicted as class index `pred_idx`.
    ///
    /// Returns 0 for indices outside the matrix.
    pub fn count(&self, true_idx: usize, pred_idx: usize) -> u64 {
        let k = self.n_classes();
        if true_idx >= k || pred_idx >= k {
            return 0;
        }
        // `get`, not indexing: no panic path even if the shape check is ever lost.
        self.counts
            .get(true_idx * k + pred_idx)
            .copied()
            .unwrap_or(0)
    }

    /// Row-major counts.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The matrix as rows (true classes) of columns (predicted classes).
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts
            .chunks(self.n_classes().max(1))
            .map(<[u64]>::to_vec)
            .collect()
    }

    /// Total number of samples.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Samples per true class (row sums): the "support".
    pub fn true_counts(&self) -> Vec<u64> {
        self.rows().iter().map(|r| r.iter().sum()).collect()
    }

    /// Samples per predicted class (column sums).
    pub fn predicted_counts(&self) -> Vec<u64> {
        let k = self.n_classes();
        (0..k)
            .map(|j| (0..k).map(|i| self.count(i, j)).sum())
            .collect()
    }

    /// Correct predictions per class (the diagonal).
    pub fn diagonal(&self) -> Vec<u64> {
        (0..self.n_classes()).map(|i| self.count(i, i)).collect()
    }

    /// For a two-class matrix, its cells with the second label as positive
    /// (`tn, fp, fn, tp = cm.ravel()` in scikit-learn). `None` otherwise.
    pub fn binary_counts(&self) -> Option<BinaryCounts> {
        match self.counts[..] {
            [tn, fp, fn_, tp] => Some(BinaryCounts { tn, fp, fn_, tp }),
            _ => None,
        }
    }

    /// Counts normalised over true classes (each row sums to 1, like
    /// scikit-learn's `normalize="true"`); rows with no samples are 0.
    pub fn normalized_by_true(&self) -> Vec<Vec<f64>> {
        self.rows()
            .iter()
            .map(|row| {
                let s: u64 = row.iter().sum();
                row.iter()
                    .map(|&c| if s == 0 { 0.0 } else { c as f64 / s as f64 })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_matrix_matches_hand_count() {
        let cm = confusion_matrix(&[0u8, 1, 1, 0, 1], &[0, 1, 0, 1, 1], None).unwrap();
        assert_eq!(cm.rows(), vec![vec![1, 1], vec![1, 2]]);
        assert_eq!(
            cm.binary_counts(),
            Some(BinaryCounts {
                tn: 1,
                fp: 1,
                fn_: 1,
                tp: 2
            })
        );
        assert_eq!(cm.total(), 5);
    }

    #[test]
    fn explicit_labels_fix_order_and_reject_strangers() {
        let cm = confusion_matrix(&[2i32, 0, 1], &[2, 2, 1], Some(&[2, 1, 0, 7])).unwrap();
        assert_eq!(cm.labels(), &[2, 1, 0, 7]);
        assert_eq!(cm.count(0, 0), 1);
        assert_eq!(cm.count(2, 0), 1);
        assert_eq!(cm.count(1, 1), 1);
        let err = confusion_matrix(&[0i32, 3], &[0, 0], Some(&[0, 1])).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::UnknownLabel {
                name: "y_true",
                index: 1,
                ..
            }
        ));
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(
            confusion_matrix(&[0u8, 1], &[0], None),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            confusion_matrix::<u8>(&[], &[], None),
            Err(MetricsError::EmptyInput { .. })
        ));
        assert!(ConfusionMatrix::from_counts(vec![0u8, 1], vec![1, 2, 3]).is_err());
    }
}
