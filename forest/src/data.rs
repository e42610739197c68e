//! Input checks shared by both forests: feature matrices and class labels.

use std::borrow::Cow;

use ndarray::{ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::{ForestError, Result};

/// Largest row count supported (row indices are stored as `u32`).
pub(crate) const MAX_ROWS: usize = u32::MAX as usize;
/// Largest feature count supported (the top bit of a node's feature id is a flag).
pub(crate) const MAX_FEATURES: usize = (1 << 31) - 1;

/// Checks a training matrix: non-empty, within size limits, no infinities (NaN is
/// allowed and means "missing").
pub(crate) fn check_training_x(x: &ArrayView2<'_, f64>) -> Result<()> {
    let (rows, columns) = x.dim();
    if rows == 0 || columns == 0 {
        return Err(ForestError::EmptyData { rows, columns });
    }
    if rows > MAX_ROWS {
        return Err(ForestError::TooLarge {
            what: "rows",
            value: rows,
            max: MAX_ROWS,
        });
    }
    if columns > MAX_FEATURES {
        return Err(ForestError::TooLarge {
            what: "features",
            value: columns,
            max: MAX_FEATURES,
        });
    }
    check_finite_or_nan(x)
}

/// Checks a matrix to predict on: the training feature count, no infinities.
pub(crate) fn check_predict_x(x: &ArrayView2<'_, f64>, n_features: usize) -> Result<()> {
    check_feature_count(x, n_features)?;
    check_finite_or_nan(x)
}

/// Checks that `x` has the training feature count (and nothing else: callers that
/// read every value anyway look for infinities as they go).
pub(crate) fn check_feature_count(x: &ArrayView2<'_, f64>, n_features: usize) -> Result<()> {
    if x.ncols() != n_features {
        return Err(ForestError::FeatureCountMismatch {
            expected: n_features,
            found: x.ncols(),
        });
    }
    Ok(())
}

/// Checks one row to predict on.
pub(crate) fn check_row(row: &[f64], n_features: usize) -> Result<()> {
    if row.len() != n_features {
        return Err(ForestError::FeatureCountMismatch {
            expected: n_features,
            found: row.len(),
        });
    }
    if let Some(column) = row.iter().position(|v| v.is_infinite()) {
        return Err(ForestError::NonFiniteFeature {
            row: 0,
            column,
            value: row[column],
        });
    }
    Ok(())
}

/// Checks that no value of `x` is infinite (NaN is allowed); the error names the
/// first infinity in row-major order.
pub(crate) fn check_finite_or_nan(x: &ArrayView2<'_, f64>) -> Result<()> {
    // Fast path for the common case: a parallel scan (the check reads the whole
    // matrix, which for Isolation Forest costs more than growing the trees).
    let any_inf = match x.as_slice_memory_order() {
        Some(s) => s
            .par_chunks(1 << 16)
            .any(|c| c.iter().fold(false, |inf, v| inf | v.is_infinite())),
        None => x.iter().any(|v| v.is_infinite()),
    };
    if !any_inf {
        return Ok(());
    }
    for (row, r) in x.axis_iter(Axis(0)).enumerate() {
        if let Some(column) = r.iter().position(|v| v.is_infinite()) {
            return Err(ForestError::NonFiniteFeature {
                row,
                column,
                value: r[column],
            });
        }
    }
    Ok(())
}

/// Class labels a classifier can be fitted on.
///
/// Implemented for `usize` labels (slices, `Vec`, ndarray arrays and views), for
/// `bool` labels (`false` = 0, `true` = 1) and for `f64` labels, which must be finite,
/// non-negative whole numbers (anything else is [`ForestError::InvalidLabel`]).
/// Labels need not be contiguous: the model keeps the sorted distinct labels as its
/// classes, in the order of `predict_proba`'s columns.
pub trait Labels {
    /// The labels as `usize`, or the first invalid one.
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>>;
}

impl Labels for [usize] {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl Labels for Vec<usize> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(Cow::Borrowed(self))
    }
}

impl Labels for ArrayView1<'_, usize> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(match self.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.to_vec()),
        })
    }
}

impl Labels for ndarray::Array1<usize> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(match self.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.to_vec()),
        })
    }
}

impl Labels for [bool] {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        Ok(Cow::Owned(self.iter().map(|&b| usize::from(b)).collect()))
    }
}

impl Labels for Vec<bool> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        self.as_slice().to_usize_labels()
    }
}

fn f64_labels<'a>(values: impl Iterator<Item = f64>) -> Result<Cow<'a, [usize]>> {
    let mut out = Vec::with_capacity(values.size_hint().0);
    for (index, v) in values.enumerate() {
        let reason = if v.is_nan() {
            Some("NaN is not a class")
        } else if v.is_infinite() {
            Some("infinite is not a class")
        } else if v < 0.0 {
            Some("class labels must be non-negative")
        } else if v.fract() != 0.0 {
            Some("class labels must be whole numbers")
        } else if v > u32::MAX as f64 {
            Some("class labels must be at most 4294967295")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ForestError::InvalidLabel {
                index,
                value: v.to_string(),
                reason,
            });
        }
        out.push(v as usize);
    }
    Ok(Cow::Owned(out))
}

impl Labels for [f64] {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        f64_labels(self.iter().copied())
    }
}

impl Labels for Vec<f64> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        f64_labels(self.iter().copied())
    }
}

impl Labels for ArrayView1<'_, f64> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        f64_labels(self.iter().copied())
    }
}

impl Labels for ndarray::Array1<f64> {
    fn to_usize_labels(&self) -> Result<Cow<'_, [usize]>> {
        f64_labels(self.iter().copied())
    }
}

/// Labels mapped to dense class indices `0..classes.len()`.
#[derive(Debug)]
pub(crate) struct EncodedLabels {
    /// Sorted distinct original labels.
    pub classes: Vec<usize>,
    /// Class index of each sample.
    pub y: Vec<u32>,
}

/// Validates labels against `x` and maps them to dense class indices.
pub(crate) fn encode_labels(labels: &[usize], x_rows: usize) -> Result<EncodedLabels> {
    if labels.len() != x_rows {
        return Err(ForestError::LengthMismatch {
            x_rows,
            y_len: labels.len(),
        });
    }
    if let Some(index) = labels.iter().position(|&l| l > u32::MAX as usize) {
        return Err(ForestError::InvalidLabel {
            index,
            value: labels[index].to_string(),
            reason: "class labels must be at most 4294967295",
        });
    }
    let mut classes = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() == 1 {
        return Err(ForestError::SingleClass { class: classes[0] });
    }
    if classes.len() > u16::MAX as usize {
        return Err(ForestError::TooLarge {
            what: "distinct classes",
            value: classes.len(),
            max: u16::MAX as usize,
        });
    }
    // Small dense label ranges (the usual case) map through a table; others search.
    let max = *classes.last().unwrap_or(&0);
    let y = if max < 1 << 16 {
        let mut table = vec![0u32; max + 1];
        for (i, &c) in classes.iter().enumerate() {
            table[c] = i as u32;
        }
        labels.iter().map(|&l| table[l]).collect()
    } else {
        labels
            .iter()
            .map(|l| classes.binary_search(l).unwrap_or(0) as u32)
            .collect()
    };
    Ok(EncodedLabels { classes, y })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn labels_are_encoded_densely_in_sorted_order() {
        let e = encode_labels(&[7, 3, 7, 9], 4).unwrap();
        assert_eq!(e.classes, vec![3, 7, 9]);
        assert_eq!(e.y, vec![1, 0, 1, 2]);
    }

    #[test]
    fn bad_labels_are_named() {
        assert_eq!(
            encode_labels(&[1, 1], 2).unwrap_err(),
            ForestError::SingleClass { class: 1 }
        );
        assert!(matches!(
            encode_labels(&[1, 0], 3),
            Err(ForestError::LengthMismatch {
                x_rows: 3,
                y_len: 2
            })
        ));
        let e = [0.0, f64::NAN].to_usize_labels().unwrap_err();
        assert!(
            matches!(e, ForestError::InvalidLabel { index: 1, .. }),
            "{e}"
        );
        assert!([0.5].to_usize_labels().is_err());
        assert!([-1.0].to_usize_labels().is_err());
        assert_eq!(&*[1.0, 0.0].to_usize_labels().unwrap(), &[1, 0]);
    }

    #[test]
    fn infinities_are_found_with_their_position() {
        let x = array![[1.0, f64::NAN], [2.0, f64::NEG_INFINITY]];
        let e = check_training_x(&x.view()).unwrap_err();
        assert!(
            matches!(
                e,
                ForestError::NonFiniteFeature {
                    row: 1,
                    column: 1,
                    ..
                }
            ),
            "{e}"
        );
        let x = array![[1.0, f64::NAN]];
        assert!(check_training_x(&x.view()).is_ok());
    }
}
