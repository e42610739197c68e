//! Data drift between a reference sample and a current sample, per feature
//! and per dataset, with the numbers of scipy 1.17 and the default rule of
//! evidently 0.7's `DataDriftPreset`.
//!
//! Per-feature statistics ([`ks_2samp`], [`wasserstein_distance`],
//! [`wasserstein_distance_norm`], [`psi`], [`jensenshannon`],
//! [`jensenshannon_drift`], [`chisquare`], [`chisquare_drift`],
//! [`z_test_drift`]) take plain slices. [`DriftReference`] owns sorted
//! reference columns (built once, serialisable with a model) and compares a
//! current batch column by column in parallel ([`DriftReference::compare`]).
//!
//! # The default rule (evidently 0.7.23, `_get_default_stattest`)
//!
//! `n_values` is the number of distinct values in reference and current
//! together.
//!
//! | reference rows | column | `n_values` | method | drift when |
//! |---|---|---|---|---|
//! | ≤ 1000 | numerical | > 5 | KS p-value | p ≤ 0.05 |
//! | ≤ 1000 | numerical or categorical | 3 to 5 (categorical: > 2) | chi-square p-value | p < 0.05 |
//! | ≤ 1000 | numerical or categorical | ≤ 2 | z-test p-value | p < 0.05 |
//! | > 1000 | numerical | > 5 | Wasserstein / std(reference) | ≥ 0.1 |
//! | > 1000 | numerical (≤ 5 values) or categorical | any | Jensen-Shannon distance (natural log) | ≥ 0.1 |
//!
//! The dataset drifts when the share of drifted columns is ≥ 0.5.
//!
//! Binning (evidently's `get_binned_data`, used by PSI and Jensen-Shannon):
//! a numerical column with more than 20 distinct *reference* values is cut
//! into `numpy.histogram_bin_edges(pooled, "sturges")` bins over reference
//! and current pooled (so the edges depend on the current batch); any other
//! column gets one bin per value seen in either sample. PSI replaces empty
//! bins by 0.0001 (or a millionth of the smallest non-empty share if that is
//! ≤ 0.0001) before taking logs; Jensen-Shannon does not need to.
//!
//! Values must be finite (categories are given as `f64` codes): NaN and ±∞
//! are a [`MetricsError::NonFinite`], an empty sample a
//! [`MetricsError::EmptyInput`]. A constant reference is fine: the
//! normalised Wasserstein distance divides by `max(std, 0.001)` as
//! evidently does, and a column constant in both samples at the same value
//! never drifts.

mod kolmogorov;
mod ks;
mod reference;
mod stats;

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::validate::{check_finite, check_nonempty};

pub use ks::{KsMethod, KsResult};
pub use reference::{DriftReference, ReferenceColumn};

/// Whether a column holds measurements or category codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// A measurement.
    Numerical,
    /// Category codes (any distinct `f64` values).
    Categorical,
}

/// A drift statistic, with evidently's name when serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriftMethod {
    /// Two-sample Kolmogorov-Smirnov p-value (drift when p ≤ threshold).
    #[serde(rename = "ks")]
    Ks,
    /// Chi-square p-value (drift when p < threshold).
    #[serde(rename = "chisquare")]
    ChiSquare,
    /// Two-proportion z-test p-value (drift when p < threshold).
    #[serde(rename = "z")]
    ZTest,
    /// Wasserstein-1 distance over the reference standard deviation (≥).
    #[serde(rename = "wasserstein")]
    Wasserstein,
    /// Jensen-Shannon distance, natural log (≥).
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    /// Population Stability Index (≥).
    #[serde(rename = "psi")]
    Psi,
}

impl DriftMethod {
    /// Whether the statistic is a p-value (small means drift).
    pub fn is_p_value(self) -> bool {
        matches!(self, Self::Ks | Self::ChiSquare | Self::ZTest)
    }

    fn drifted(self, statistic: f64, threshold: f64) -> bool {
        match self {
            Self::Ks => statistic <= threshold,
            Self::ChiSquare | Self::ZTest => statistic < threshold,
            _ => statistic >= threshold,
        }
    }
}

/// Thresholds and method choices; defaults are evidently's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftParams {
    /// References with at most this many rows use the p-value tests (1000).
    pub small_reference_rows: usize,
    /// Numerical columns with at most this many distinct values (reference
    /// and current together) are treated like categorical ones (5).
    pub max_discrete_values: usize,
    /// KS p-value threshold (0.05).
    pub ks_threshold: f64,
    /// Chi-square p-value threshold (0.05).
    pub chisquare_threshold: f64,
    /// z-test p-value threshold (0.05).
    pub z_threshold: f64,
    /// Normalised Wasserstein threshold (0.1).
    pub wasserstein_threshold: f64,
    /// Jensen-Shannon threshold (0.1).
    pub jensenshannon_threshold: f64,
    /// PSI threshold (0.1).
    pub psi_threshold: f64,
    /// Dataset drift when the share of drifted columns is at least this (0.5).
    pub drift_share: f64,
    /// Force one method for numerical columns (`None`: the default rule).
    pub numerical_method: Option<DriftMethod>,
    /// Force one method for categorical columns (`None`: the default rule).
    pub categorical_method: Option<DriftMethod>,
    /// How KS p-values are computed (`Auto`).
    pub ks_method: KsMethod,
}

impl Default for DriftParams {
    fn default() -> Self {
        Self {
            small_reference_rows: 1000,
            max_discrete_values: 5,
            ks_threshold: 0.05,
            chisquare_threshold: 0.05,
            z_threshold: 0.05,
            wasserstein_threshold: 0.1,
            jensenshannon_threshold: 0.1,
            psi_threshold: 0.1,
            drift_share: 0.5,
            numerical_method: None,
            categorical_method: None,
            ks_method: KsMethod::Auto,
        }
    }
}

impl DriftParams {
    /// Checks every threshold is finite and in its domain: p-value
    /// thresholds and `drift_share` in `[0, 1]`, distances `>= 0`, and that
    /// a forced categorical method is one defined on categories.
    pub fn validate(&self) -> Result<()> {
        let unit = [
            ("ks_threshold", self.ks_threshold),
            ("chisquare_threshold", self.chisquare_threshold),
            ("z_threshold", self.z_threshold),
            ("drift_share", self.drift_share),
        ];
        for (name, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return Err(MetricsError::InvalidParameter {
                    name,
                    reason: format!("{v} is not in [0, 1]"),
                });
            }
        }
        let dist = [
            ("wasserstein_threshold", self.wasserstein_threshold),
            ("jensenshannon_threshold", self.jensenshannon_threshold),
            ("psi_threshold", self.psi_threshold),
        ];
        for (name, v) in dist {
            if !(v.is_finite() && v >= 0.0) {
                return Err(MetricsError::InvalidParameter {
                    name,
                    reason: format!("{v} is not a finite number >= 0"),
                });
            }
        }
        if matches!(
            self.categorical_method,
            Some(DriftMethod::Ks | DriftMethod::Wasserstein)
        ) {
            return Err(MetricsError::InvalidParameter {
                name: "categorical_method",
                reason: "KS and Wasserstein need ordered (numerical) values".into(),
            });
        }
        Ok(())
    }

    fn threshold(&self, m: DriftMethod) -> f64 {
        match m {
            DriftMethod::Ks => self.ks_threshold,
            DriftMethod::ChiSquare => self.chisquare_threshold,
            DriftMethod::ZTest => self.z_threshold,
            DriftMethod::Wasserstein => self.wasserstein_threshold,
            DriftMethod::JensenShannon => self.jensenshannon_threshold,
            DriftMethod::Psi => self.psi_threshold,
        }
    }

    /// evidently's `_get_default_stattest`.
    fn default_method(&self, kind: ColumnKind, n_ref: usize, n_values: usize) -> DriftMethod {
        let discrete = kind == ColumnKind::Categorical || n_values <= self.max_discrete_values;
        if n_ref <= self.small_reference_rows {
            match (discrete, kind) {
                (false, _) => DriftMethod::Ks,
                (true, _) if n_values > 2 => DriftMethod::ChiSquare,
                (true, _) => DriftMethod::ZTest,
            }
        } else if discrete {
            DriftMethod::JensenShannon
        } else {
            DriftMethod::Wasserstein
        }
    }
}

/// Drift of one feature (one entry of `drift_report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Column name.
    pub name: String,
    /// Method used.
    pub method: DriftMethod,
    /// Its value (a p-value for KS / chi-square / z, else a distance).
    #[serde(with = "crate::serde_f64")]
    pub statistic: f64,
    /// Threshold compared against.
    pub threshold: f64,
    /// Whether the column drifted.
    pub drifted: bool,
}

/// Drift of a dataset (`drift_report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    /// Whether `share_drifted >= drift_share`.
    pub dataset_drift: bool,
    /// Share of drifted columns.
    pub share_drifted: f64,
    /// Number of drifted columns.
    pub n_drifted: usize,
    /// Per-column results, in column order.
    pub features: Vec<FeatureDrift>,
}

fn check_sample(name: &'static str, x: &[f64]) -> Result<()> {
    check_nonempty(name, x.len())?;
    check_finite(name, x)
}

/// Sorted copy of a finite sample (−0.0 sorts with +0.0).
pub(crate) fn sorted(x: &[f64]) -> Vec<f64> {
    // The crate's radix sort on order-preserving keys (-0.0 becomes +0.0).
    let mut keys: Vec<u64> = x.iter().map(|&v| crate::sort::key(v)).collect();
    crate::sort::radix_sort(&mut keys);
    keys.into_iter().map(crate::sort::unkey).collect()
}

/// Two-sample two-sided Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`
/// with `alternative="two-sided"`).
pub fn ks_2samp(reference: &[f64], current: &[f64], method: KsMethod) -> Result<KsResult> {
    check_sample("reference", reference)?;
    check_sample("current", current)?;
    let (r, c) = (sorted(reference), sorted(current));
    Ok(ks_sorted(&r, &c, method))
}

pub(crate) fn ks_sorted(r: &[f64], c: &[f64], method: KsMethod) -> KsResult {
    ks::ks_2samp_sorted(r, c, method)
}

/// `scipy.stats.wasserstein_distance(u, v)` (unweighted).
pub fn wasserstein_distance(u: &[f64], v: &[f64]) -> Result<f64> {
    check_sample("u", u)?;
    check_sample("v", v)?;
    Ok(stats::wasserstein_sorted(&sorted(u), &sorted(v)))
}

/// evidently's `wasserstein` stattest: the distance over
/// `max(numpy.std(reference), 0.001)`.
pub fn wasserstein_distance_norm(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_sample("reference", reference)?;
    check_sample("current", current)?;
    let std = stats::population_std(reference);
    Ok(wasserstein_norm_sorted(
        &sorted(reference),
        &sorted(current),
        std,
    ))
}

fn wasserstein_norm_sorted(r: &[f64], c: &[f64], ref_std: f64) -> f64 {
    stats::wasserstein_sorted(r, c) / ref_std.max(0.001)
}

/// evidently's `psi` stattest with its binning (see the module docs):
/// `Σ (ref% − cur%) · ln(ref% / cur%)`. Identical samples give 0.
pub fn psi(reference: &[f64], current: &[f64], kind: ColumnKind) -> Result<f64> {
    check_sample("reference", reference)?;
    check_sample("current", current)?;
    Ok(psi_sorted(&sorted(reference), &sorted(current), kind))
}

fn psi_sorted(r: &[f64], c: &[f64], kind: ColumnKind) -> f64 {
    let (mut p, mut q) = stats::binned_shares(r, c, kind == ColumnKind::Numerical);
    stats::fill_zeroes(&mut p);
    stats::fill_zeroes(&mut q);
    p.iter().zip(&q).map(|(a, b)| (a - b) * (a / b).ln()).sum()
}

/// `scipy.spatial.distance.jensenshannon(p, q, base)` of two weight vectors
/// (normalised to sum 1; `base = None` is the natural log).
pub fn jensenshannon(p: &[f64], q: &[f64], base: Option<f64>) -> Result<f64> {
    crate::validate::check_same_len("p", p.len(), "q", q.len())?;
    check_sample("p", p)?;
    check_sample("q", q)?;
    if let Some(i) = p.iter().chain(q).position(|&v| v < 0.0) {
        return Err(MetricsError::InvalidParameter {
            name: "p/q",
            reason: format!("weights must be non-negative (value {i} is not)"),
        });
    }
    if p.iter().sum::<f64>() == 0.0 || q.iter().sum::<f64>() == 0.0 {
        return Err(MetricsError::InvalidParameter {
            name: "p/q",
            reason: "weights sum to 0".into(),
        });
    }
    if let Some(b) = base
        && !(b.is_finite() && b > 0.0 && b != 1.0)
    {
        return Err(MetricsError::InvalidParameter {
            name: "base",
            reason: format!("{b} is not a logarithm base"),
        });
    }
    Ok(stats::jensenshannon_raw(p, q, base))
}

/// evidently's `jensenshannon` stattest: the distance (natural log) between
/// the binned shares of the two samples (see the module docs).
pub fn jensenshannon_drift(reference: &[f64], current: &[f64], kind: ColumnKind) -> Result<f64> {
    check_sample("reference", reference)?;
    check_sample("current", current)?;
    Ok(js_sorted(&sorted(reference), &sorted(current), kind))
}

fn js_sorted(r: &[f64], c: &[f64], kind: ColumnKind) -> f64 {
    let (p, q) = stats::binned_shares(r, c, kind == ColumnKind::Numerical);
    stats::jensenshannon_raw(&p, &q, None)
}

/// `scipy.stats.chisquare(f_obs, f_exp)`: `(statistic, p-value)`.
/// At least two categories; non-negative finite frequencies whose sums agree.
pub fn chisquare(f_obs: &[f64], f_exp: &[f64]) -> Result<(f64, f64)> {
    stats::check_chisquare(f_obs, f_exp)?;
    Ok(stats::chisquare_raw(f_obs, f_exp))
}

/// evidently's `chisquare` stattest p-value: current counts per category
/// against reference counts scaled to the current size. A category absent
/// from the reference gives p = 0; a single category overall gives NaN
/// (scipy's value for zero degrees of freedom), which never counts as drift.
pub fn chisquare_drift(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_sample("reference", reference)?;
    check_sample("current", current)?;
    Ok(chisq_sorted(&sorted(reference), &sorted(current)))
}

fn chisq_sorted(r: &[f64], c: &[f64]) -> f64 {
    let keys = stats::union_values(r, c);
    let k = c.len() as f64 / r.len() as f64;
    let exp: Vec<f64> = stats::counts_of(&keys, r).iter().map(|v| v * k).collect();
    let obs = stats::counts_of(&keys, c);
    stats::chisquare_raw(&obs, &exp).1
}

/// evidently's two-proportion `z` stattest p-value (the smallest value in
/// either sample against the rest; 1 when both samples hold one same value).
pub fn z_test_drift(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_sample("reference", reference)?;
    check_sample("current", current)?;
    Ok(stats::z_test_sorted(&sorted(reference), &sorted(current)))
}

/// One column's drift from sorted samples: the method chosen by `params`.
pub(crate) fn column_drift(
    name: &str,
    kind: ColumnKind,
    r: &[f64],
    c: &[f64],
    ref_std: f64,
    params: &DriftParams,
) -> FeatureDrift {
    let forced = match kind {
        ColumnKind::Numerical => params.numerical_method,
        ColumnKind::Categorical => params.categorical_method,
    };
    let method = forced.unwrap_or_else(|| {
        let n_values = stats::n_union_values(r, c);
        params.default_method(kind, r.len(), n_values)
    });
    let statistic = match method {
        DriftMethod::Ks => ks_sorted(r, c, params.ks_method).pvalue,
        DriftMethod::ChiSquare => chisq_sorted(r, c),
        DriftMethod::ZTest => stats::z_test_sorted(r, c),
        DriftMethod::Wasserstein => wasserstein_norm_sorted(r, c, ref_std),
        DriftMethod::JensenShannon => js_sorted(r, c, kind),
        DriftMethod::Psi => psi_sorted(r, c, kind),
    };
    let threshold = params.threshold(method);
    FeatureDrift {
        name: name.to_string(),
        method,
        statistic,
        threshold,
        drifted: method.drifted(statistic, threshold),
    }
}

/// Dataset verdict from per-column results.
pub(crate) fn dataset_drift(features: Vec<FeatureDrift>, drift_share: f64) -> DatasetDrift {
    let n_drifted = features.iter().filter(|f| f.drifted).count();
    let share = if features.is_empty() {
        0.0
    } else {
        n_drifted as f64 / features.len() as f64
    };
    DatasetDrift {
        dataset_drift: !features.is_empty() && share >= drift_share,
        share_drifted: share,
        n_drifted,
        features,
    }
}
