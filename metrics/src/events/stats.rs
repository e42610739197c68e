//! Lead-time summaries: NumPy's linear percentiles and `numpy.histogram` bins.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};

/// Median and 10th / 90th percentiles of lead times, in minutes.
///
/// Percentiles follow NumPy's default (`method="linear"`): the value at
/// position `q·(n−1)` of the sorted lead times, interpolated linearly between
/// its neighbours. NaN when no failure was caught.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeadTimeStats {
    /// 50th percentile.
    #[serde(with = "crate::serde_f64")]
    pub median: f64,
    /// 10th percentile.
    #[serde(with = "crate::serde_f64")]
    pub p10: f64,
    /// 90th percentile.
    #[serde(with = "crate::serde_f64")]
    pub p90: f64,
    /// Arithmetic mean.
    #[serde(with = "crate::serde_f64")]
    pub mean: f64,
}

impl LeadTimeStats {
    /// The summary of lead times in `minutes` (any order).
    pub fn of(minutes: &[f64]) -> Self {
        let mut v = minutes.to_vec();
        v.sort_by(f64::total_cmp);
        let mean = if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        };
        Self {
            median: percentile_sorted(&v, 0.5),
            p10: percentile_sorted(&v, 0.1),
            p90: percentile_sorted(&v, 0.9),
            mean,
        }
    }
}

/// NumPy's linear percentile (`q` in `[0, 1]`) of ascending `v`; NaN if empty.
pub(crate) fn percentile_sorted(v: &[f64], q: f64) -> f64 {
    let Some(last) = v.len().checked_sub(1) else {
        return f64::NAN;
    };
    let pos = q * last as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(last);
    let t = pos - lo as f64;
    let (a, b) = (v[lo], v[hi]);
    // NumPy's `_lerp`: exact at both ends.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// Counts of lead times in equal-width bins over `[0, horizon]`, in minutes,
/// as `numpy.histogram(lead, bins, range=(0, horizon))`: bins are half-open
/// `[e_i, e_{i+1})` except the last, which includes the horizon.
///
/// Reading one back checks it has one more edge than counts and finite,
/// increasing edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HistogramRecord")]
pub struct Histogram {
    /// `bins + 1` ascending bin edges, minutes.
    #[serde(with = "crate::serde_f64::vec")]
    pub edges: Vec<f64>,
    /// Lead times per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// The histogram of `minutes` in `bins` bins over `[0, upper]`; values
    /// outside are not counted.
    pub fn new(minutes: &[f64], bins: usize, upper: f64) -> Result<Self> {
        if !((1..=10_000).contains(&bins) && upper.is_finite() && upper > 0.0) {
            return Err(MetricsError::InvalidParameter {
                name: "histogram",
                reason: format!(
                    "needs 1 to 10000 bins and a finite upper edge > 0, got {bins} and {upper}"
                ),
            });
        }
        Ok(Self::of(minutes, bins, upper))
    }

    pub(crate) fn of(minutes: &[f64], bins: usize, upper: f64) -> Self {
        let step = upper / bins as f64;
        let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step).collect();
        edges[bins] = upper;
        let mut counts = vec![0u64; bins];
        for &x in minutes {
            if !(0.0..=upper).contains(&x) {
                continue;
            }
            let i = edges.partition_point(|&e| e <= x).saturating_sub(1);
            counts[i.min(bins - 1)] += 1;
        }
        Self { edges, counts }
    }
}

/// A [`Histogram`] as read, before its checks.
#[derive(Deserialize)]
struct HistogramRecord {
    #[serde(with = "crate::serde_f64::vec")]
    edges: Vec<f64>,
    counts: Vec<u64>,
}

impl TryFrom<HistogramRecord> for Histogram {
    type Error = MetricsError;

    fn try_from(r: HistogramRecord) -> Result<Self> {
        let ok = r.edges.len() == r.counts.len() + 1
            && r.edges.iter().all(|e| e.is_finite())
            && r.edges.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            return Err(MetricsError::InvalidRecord {
                what: "lead-time histogram",
                reason: format!(
                    "needs finite increasing edges, one more than counts; got {} edges, {} counts",
                    r.edges.len(),
                    r.counts.len()
                ),
            });
        }
        Ok(Self {
            edges: r.edges,
            counts: r.counts,
        })
    }
}
