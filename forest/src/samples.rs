//! The feature matrices both forests fit and predict on, and their checks.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::{ForestError, Result};

/// Largest row count supported (row indices are stored as `u32`).
pub(crate) const MAX_ROWS: usize = u32::MAX as usize;
/// Largest feature count supported (the top bit of a node's feature id is a flag).
pub(crate) const MAX_FEATURES: usize = (1 << 31) - 1;

/// A feature matrix to fit or predict on (rows × features; NaN = missing), with
/// the features' names when the caller has them: errors about a value of a column
/// then name its feature.
///
/// Every method that takes a matrix takes `impl Into<Samples>`, so an
/// `ArrayView2<f64>` or an `&Array2<f64>` can be passed as it is (without names).
/// [`Samples::named`] adds names; a vigil-features `FeatureMatrix` `m` has both:
/// `Samples::named(&m.values, &m.names)?`.
///
/// ```
/// use ndarray::array;
/// use vigil_forest::{ForestError, IsolationForestParams, Samples};
///
/// let x = array![[0.5, 1.0], [0.25, f64::INFINITY]];
/// let names = vec!["vibration".to_string(), "power_per_speed".to_string()];
/// let e = IsolationForestParams::default().fit(Samples::named(&x, &names)?).unwrap_err();
/// assert!(matches!(e, ForestError::NonFiniteFeature { row: 1, column: 1, .. }));
/// assert!(e.to_string().starts_with("x[1, 1] (feature `power_per_speed`) = inf is infinite"));
/// # Ok::<(), ForestError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Samples<'a> {
    x: ArrayView2<'a, f64>,
    names: Option<&'a [String]>,
}

impl<'a> Samples<'a> {
    /// `x` with one name per column, in column order; any other number of names is
    /// [`ForestError::FeatureNameCount`].
    pub fn named(x: impl Into<ArrayView2<'a, f64>>, names: &'a [String]) -> Result<Self> {
        let x = x.into();
        if names.len() != x.ncols() {
            return Err(ForestError::FeatureNameCount {
                names: names.len(),
                columns: x.ncols(),
            });
        }
        Ok(Samples {
            x,
            names: Some(names),
        })
    }

    /// The matrix.
    pub fn view(&self) -> ArrayView2<'a, f64> {
        self.x
    }

    /// The feature names, if given.
    pub fn names(&self) -> Option<&'a [String]> {
        self.names
    }

    /// The error for the infinite value at (`row`, `column`).
    fn infinity_at(&self, row: usize, column: usize) -> ForestError {
        ForestError::NonFiniteFeature {
            row,
            column,
            feature: self
                .names
                .and_then(|n| n.get(column))
                .map(|name| name.to_string()),
            value: self.x[[row, column]],
        }
    }
}

impl<'a> From<ArrayView2<'a, f64>> for Samples<'a> {
    fn from(x: ArrayView2<'a, f64>) -> Self {
        Samples { x, names: None }
    }
}

impl<'a> From<&'a Array2<f64>> for Samples<'a> {
    fn from(x: &'a Array2<f64>) -> Self {
        Samples::from(x.view())
    }
}

/// Checks a training matrix: non-empty, within size limits, no infinities (NaN is
/// allowed and means "missing").
pub(crate) fn check_training_x(x: &Samples<'_>) -> Result<()> {
    let (rows, columns) = x.x.dim();
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
pub(crate) fn check_predict_x(x: &Samples<'_>, n_features: usize) -> Result<()> {
    check_feature_count(&x.x, n_features)?;
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
            feature: None,
            value: row[column],
        });
    }
    Ok(())
}

/// Checks that no value of `x` is infinite (NaN is allowed); the error names the
/// first infinity in row-major order.
pub(crate) fn check_finite_or_nan(x: &Samples<'_>) -> Result<()> {
    // Fast path for the common case: a parallel scan (the check reads the whole
    // matrix, which for Isolation Forest costs more than growing the trees).
    let any_inf = match x.x.as_slice_memory_order() {
        Some(s) => s
            .par_chunks(1 << 16)
            .any(|c| c.iter().fold(false, |inf, v| inf | v.is_infinite())),
        None => x.x.iter().any(|v| v.is_infinite()),
    };
    if !any_inf {
        return Ok(());
    }
    for (row, r) in x.x.axis_iter(Axis(0)).enumerate() {
        if let Some(column) = r.iter().position(|v| v.is_infinite()) {
            return Err(x.infinity_at(row, column));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn infinities_are_found_with_their_position() {
        let x = array![[1.0, f64::NAN], [2.0, f64::NEG_INFINITY]];
        let e = check_training_x(&Samples::from(&x)).unwrap_err();
        assert_eq!(
            e,
            ForestError::NonFiniteFeature {
                row: 1,
                column: 1,
                feature: None,
                value: f64::NEG_INFINITY
            }
        );
        let x = array![[1.0, f64::NAN]];
        assert!(check_training_x(&Samples::from(&x)).is_ok());
    }

    #[test]
    fn infinities_in_named_columns_are_named_and_the_fix_is_said() {
        // Column-major, so the scan takes the non-contiguous path too.
        let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, f64::INFINITY]].reversed_axes();
        let names: Vec<String> = ["speed", "power_pct_change_5m"].map(String::from).to_vec();
        let e = check_finite_or_nan(&Samples::named(x.view(), &names).unwrap()).unwrap_err();
        assert_eq!(
            e,
            ForestError::NonFiniteFeature {
                row: 2,
                column: 1,
                feature: Some("power_pct_change_5m".into()),
                value: f64::INFINITY
            }
        );
        let message = e.to_string();
        assert!(
            message.starts_with("x[2, 1] (feature `power_pct_change_5m`) = inf is infinite"),
            "{message}"
        );
        for fix in [
            "`FeatureMatrix::sanitize`",
            "`SanitizePolicy`",
            "`TrainingSet::build`",
            "`OnlineFeatures::push_sanitized`",
        ] {
            assert!(message.contains(fix), "{message} lacks {fix}");
        }
        // Without names: the position only.
        let e = check_finite_or_nan(&Samples::from(x.view())).unwrap_err();
        assert!(
            e.to_string().starts_with("x[2, 1] = inf is infinite"),
            "{e}"
        );
    }

    #[test]
    fn names_must_be_one_per_column() {
        let x = Array2::<f64>::zeros((3, 2));
        let names = vec!["a".to_string()];
        assert_eq!(
            Samples::named(&x, &names).unwrap_err(),
            ForestError::FeatureNameCount {
                names: 1,
                columns: 2
            }
        );
        let names = vec!["a".to_string(), "b".to_string()];
        let named = Samples::named(x.view(), &names).unwrap();
        assert_eq!(named.names(), Some(names.as_slice()));
        assert_eq!(named.view(), x.view());
        assert_eq!(Samples::from(&x).names(), None);
    }
}
