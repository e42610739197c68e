//! Input checks shared by all metrics.

use crate::error::{MetricsError, Result};

pub(crate) fn check_same_len(
    left_name: &'static str,
    left: usize,
    right_name: &'static str,
    right: usize,
) -> Result<()> {
    if left == right {
        Ok(())
    } else {
        Err(MetricsError::LengthMismatch {
            left_name,
            left,
            right_name,
            right,
        })
    }
}

pub(crate) fn check_nonempty(name: &'static str, len: usize) -> Result<()> {
    if len == 0 {
        Err(MetricsError::EmptyInput { name })
    } else {
        Ok(())
    }
}

pub(crate) fn check_finite(name: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(MetricsError::NonFinite {
            name,
            index,
            value: values[index],
        }),
    }
}

/// Checks every value is a finite probability in `[0, 1]`.
pub(crate) fn check_probabilities(name: &'static str, values: &[f64]) -> Result<()> {
    check_finite(name, values)?;
    match values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        None => Ok(()),
        Some(index) => Err(MetricsError::ProbabilityOutOfRange {
            name,
            index,
            value: values[index],
        }),
    }
}

/// Checks a flat row-major matrix has `rows × cols` values.
pub(crate) fn check_matrix(name: &'static str, len: usize, rows: usize, cols: usize) -> Result<()> {
    if cols == 0 || len != rows * cols {
        Err(MetricsError::ShapeMismatch {
            name,
            len,
            rows,
            cols,
        })
    } else {
        Ok(())
    }
}

/// Checks every value is in `[0, 1]`, NaN allowed (an ill-defined ratio under
/// `ZeroDivision::Nan`).
pub(crate) fn check_ratios(name: &'static str, values: &[f64]) -> Result<()> {
    match values
        .iter()
        .position(|v| !v.is_nan() && !(0.0..=1.0).contains(v))
    {
        None => Ok(()),
        Some(index) => Err(MetricsError::ProbabilityOutOfRange {
            name,
            index,
            value: values[index],
        }),
    }
}

/// Checks `values` never decrease (`increasing`) or never increase, and hold no
/// NaN; `what` names the record for the error.
pub(crate) fn check_monotone(
    what: &'static str,
    name: &'static str,
    values: &[f64],
    increasing: bool,
) -> Result<()> {
    if let Some(index) = values.iter().position(|v| v.is_nan()) {
        return Err(MetricsError::InvalidRecord {
            what,
            reason: format!("{name}[{index}] is NaN"),
        });
    }
    let broken = values
        .windows(2)
        .position(|w| if increasing { w[1] < w[0] } else { w[1] > w[0] });
    match broken {
        None => Ok(()),
        Some(i) => Err(MetricsError::InvalidRecord {
            what,
            reason: format!(
                "{name} must {} but goes from {} to {} at index {}",
                if increasing {
                    "not decrease"
                } else {
                    "not increase"
                },
                values[i],
                values[i + 1],
                i + 1
            ),
        }),
    }
}
