//! Reference columns sorted once, compared against many current batches.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{ColumnKind, DatasetDrift, DriftParams, check_sample, column_drift, dataset_drift};
use crate::error::{MetricsError, Result};

/// One reference column: its values sorted, and their standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawColumn")]
pub struct ReferenceColumn {
    name: String,
    kind: ColumnKind,
    sorted: Vec<f64>,
    std: f64,
}

#[derive(Deserialize)]
struct RawColumn {
    name: String,
    kind: ColumnKind,
    sorted: Vec<f64>,
    std: f64,
}

impl TryFrom<RawColumn> for ReferenceColumn {
    type Error = MetricsError;
    fn try_from(raw: RawColumn) -> Result<Self> {
        if raw.sorted.windows(2).any(|w| w[1] < w[0]) {
            return Err(MetricsError::InvalidRecord {
                what: "drift reference column",
                reason: format!("values of {} are not sorted", raw.name),
            });
        }
        check_sample("reference", &raw.sorted)?;
        if !(raw.std.is_finite() && raw.std >= 0.0) {
            return Err(MetricsError::InvalidRecord {
                what: "drift reference column",
                reason: format!("std of {} is {}", raw.name, raw.std),
            });
        }
        Ok(Self {
            name: raw.name,
            kind: raw.kind,
            sorted: raw.sorted,
            std: raw.std,
        })
    }
}

impl ReferenceColumn {
    /// A column from all its reference values, or from a bounded sample of
    /// them (e.g. a reservoir of at most 10,000 values kept with a model):
    /// the statistics and the rule's "reference rows" then read the sample.
    pub fn new(name: impl Into<String>, kind: ColumnKind, values: &[f64]) -> Result<Self> {
        check_sample("reference", values)?;
        Ok(Self {
            name: name.into(),
            kind,
            sorted: super::sorted(values),
            std: super::stats::population_std(values),
        })
    }

    /// At most `max_rows` values kept as evenly spaced order statistics of
    /// this column (deterministic; the quantiles are preserved).
    pub fn downsampled(&self, max_rows: usize) -> Result<Self> {
        if max_rows == 0 {
            return Err(MetricsError::InvalidParameter {
                name: "max_rows",
                reason: "must be at least 1".into(),
            });
        }
        let n = self.sorted.len();
        if n <= max_rows {
            return Ok(self.clone());
        }
        let pick: Vec<f64> = (0..max_rows)
            .map(|i| self.sorted[((2 * i + 1) * n) / (2 * max_rows)])
            .collect();
        Self::new(self.name.clone(), self.kind, &pick)
    }

    /// Column name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Numerical or categorical.
    pub fn kind(&self) -> ColumnKind {
        self.kind
    }

    /// The reference values, ascending.
    pub fn sorted_values(&self) -> &[f64] {
        &self.sorted
    }
}

/// Reference data for drift checks: sorted columns, built once.
///
/// ```
/// use vigil_metrics::{ColumnKind, DriftParams, DriftReference, DriftMethod};
/// # fn main() -> Result<(), vigil_metrics::MetricsError> {
/// let temp: Vec<f64> = (0..2000).map(|i| (i % 97) as f64 * 0.5).collect();
/// let mode: Vec<f64> = (0..2000).map(|i| (i % 3) as f64).collect();
/// let reference = DriftReference::new(vec![
///     ("temperature", ColumnKind::Numerical, temp.as_slice()),
///     ("mode", ColumnKind::Categorical, mode.as_slice()),
/// ])?;
/// // The same data again: nothing drifts.
/// let same = reference.compare(&[&temp, &mode], &DriftParams::default())?;
/// assert!(!same.dataset_drift);
/// assert_eq!(same.features[0].method, DriftMethod::Wasserstein);
/// assert_eq!(same.features[0].statistic, 0.0);
/// // Temperatures 20 degrees higher: that column drifts, half the dataset.
/// let hot: Vec<f64> = temp.iter().map(|t| t + 20.0).collect();
/// let report = reference.compare(&[&hot, &mode], &DriftParams::default())?;
/// assert!(report.features[0].drifted && !report.features[1].drifted);
/// assert!(report.dataset_drift);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReference {
    columns: Vec<ReferenceColumn>,
}

impl DriftReference {
    /// Sorts each `(name, kind, values)` column (in parallel).
    pub fn new(columns: Vec<(&str, ColumnKind, &[f64])>) -> Result<Self> {
        let columns = columns
            .into_par_iter()
            .map(|(name, kind, v)| ReferenceColumn::new(name, kind, v))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { columns })
    }

    /// From columns already built (e.g. read back with a model).
    pub fn from_columns(columns: Vec<ReferenceColumn>) -> Self {
        Self { columns }
    }

    /// The columns.
    pub fn columns(&self) -> &[ReferenceColumn] {
        &self.columns
    }

    /// Every column cut to at most `max_rows` values (see
    /// [`ReferenceColumn::downsampled`]).
    pub fn downsampled(&self, max_rows: usize) -> Result<Self> {
        let columns = self
            .columns
            .iter()
            .map(|c| c.downsampled(max_rows))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { columns })
    }

    /// Drift of `current` (one slice per reference column, same order),
    /// columns in parallel.
    pub fn compare(&self, current: &[&[f64]], params: &DriftParams) -> Result<DatasetDrift> {
        params.validate()?;
        crate::validate::check_same_len(
            "reference columns",
            self.columns.len(),
            "current columns",
            current.len(),
        )?;
        let features = self
            .columns
            .par_iter()
            .zip(current.par_iter())
            .map(|(col, cur)| {
                check_sample("current", cur)?;
                let c = super::sorted(cur);
                Ok(column_drift(
                    &col.name,
                    col.kind,
                    &col.sorted,
                    &c,
                    col.std,
                    params,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(dataset_drift(features, params.drift_share))
    }
}
