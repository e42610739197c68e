//! Distances and tests on two samples: Wasserstein-1, evidently's binning
//! (Sturges edges on the pooled data, or one bin per value), PSI,
//! Jensen-Shannon, chi-square and the two-proportion z-test.

use crate::error::{MetricsError, Result};

/// `scipy.stats.wasserstein_distance` of two sorted samples (one merge).
pub(crate) fn wasserstein_sorted(u: &[f64], v: &[f64]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut prev: Option<f64> = None;
    let mut total = 0.0;
    while i < u.len() || j < v.len() {
        let x = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if let Some(p) = prev {
            // The CDFs just left of x are i/nu and j/nv (counts <= p).
            total += (i as f64 / nu - j as f64 / nv).abs() * (x - p);
        }
        while i < u.len() && u[i] <= x {
            i += 1;
        }
        while j < v.len() && v[j] <= x {
            j += 1;
        }
        prev = Some(x);
    }
    total
}

/// `numpy.std` (population) of a sample.
pub(crate) fn population_std(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

/// Number of distinct values in a sorted slice.
pub(crate) fn n_distinct_sorted(x: &[f64]) -> usize {
    if x.is_empty() {
        return 0;
    }
    1 + x.windows(2).filter(|w| w[1] != w[0]).count()
}

/// Distinct values of the union of two sorted slices, ascending.
pub(crate) fn union_values(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        out.push(x);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
    }
    out
}

/// Number of distinct values in two sorted slices together (no allocation).
pub(crate) fn n_union_values(a: &[f64], b: &[f64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        n += 1;
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
    }
    n
}

/// Count of each of `values` (ascending, distinct) in sorted `x`.
pub(crate) fn counts_of(values: &[f64], x: &[f64]) -> Vec<f64> {
    values
        .iter()
        .map(|&v| {
            let lo = x.partition_point(|&y| y < v);
            let hi = x.partition_point(|&y| y <= v);
            (hi - lo) as f64
        })
        .collect()
}

/// `numpy.histogram_bin_edges(pooled, bins="sturges")` from the pooled
/// minimum, maximum and size.
pub(crate) fn sturges_edges(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (first, last) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let width = (hi - lo) / ((n as f64).log2() + 1.0);
    let bins = if width != 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    // numpy.linspace(first, last, bins + 1)
    let step = (last - first) / bins as f64;
    let mut e: Vec<f64> = (0..=bins).map(|i| i as f64 * step + first).collect();
    if let Some(l) = e.last_mut() {
        *l = last;
    }
    e
}

/// `numpy.histogram(x, edges)` counts of sorted `x` (last bin closed).
pub(crate) fn histogram_sorted(x: &[f64], edges: &[f64]) -> Vec<f64> {
    let k = edges.len();
    let cum: Vec<usize> = edges
        .iter()
        .enumerate()
        .map(|(i, &e)| {
            if i + 1 == k {
                x.partition_point(|&y| y <= e)
            } else {
                x.partition_point(|&y| y < e)
            }
        })
        .collect();
    cum.windows(2).map(|w| (w[1] - w[0]) as f64).collect()
}

/// evidently's `get_binned_data` for sorted samples: shares of each bin.
/// Numerical with more than 20 distinct reference values: Sturges edges on
/// the pooled data; otherwise one bin per value seen in either sample.
pub(crate) fn binned_shares(r: &[f64], c: &[f64], numerical: bool) -> (Vec<f64>, Vec<f64>) {
    let (nr, nc) = (r.len() as f64, c.len() as f64);
    let (rc, cc) = if numerical && n_distinct_sorted(r) > 20 {
        let lo = r[0].min(c[0]);
        let hi = r[r.len() - 1].max(c[c.len() - 1]);
        let edges = sturges_edges(lo, hi, r.len() + c.len());
        (histogram_sorted(r, &edges), histogram_sorted(c, &edges))
    } else {
        let keys = union_values(r, c);
        (counts_of(&keys, r), counts_of(&keys, c))
    };
    (
        rc.into_iter().map(|v| v / nr).collect(),
        cc.into_iter().map(|v| v / nc).collect(),
    )
}

/// evidently's replacement of empty bins before PSI: a tenth of a per-mille
/// (0.0001), or a millionth of the smallest non-empty share when that is
/// below 0.0001.
pub(crate) fn fill_zeroes(p: &mut [f64]) {
    let min = p
        .iter()
        .copied()
        .filter(|&v| v != 0.0)
        .fold(f64::INFINITY, f64::min);
    let fill = if min <= 0.0001 { min / 1e6 } else { 0.0001 };
    p.iter_mut().filter(|v| **v == 0.0).for_each(|v| *v = fill);
}

/// `scipy.special.rel_entr`.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// `scipy.spatial.distance.jensenshannon(p, q, base)` on weight vectors.
pub(crate) fn jensenshannon_raw(p: &[f64], q: &[f64], base: Option<f64>) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    let (mut left, mut right) = (0.0, 0.0);
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    let mut js = left + right;
    if let Some(b) = base {
        js /= b.ln();
    }
    (js / 2.0).sqrt()
}

/// `scipy.stats.chisquare(f_obs, f_exp)`: statistic and p-value.
pub(crate) fn chisquare_raw(obs: &[f64], exp: &[f64]) -> (f64, f64) {
    let stat: f64 = obs
        .iter()
        .zip(exp)
        .map(|(&o, &e)| (o - e) * (o - e) / e)
        .sum();
    let df = obs.len() as f64 - 1.0;
    (stat, chi2_sf(stat, df))
}

/// Upper tail of the chi-square distribution, `Q(df/2, x/2)`.
pub(crate) fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    gamma_q(df / 2.0, x / 2.0)
}

/// Regularised upper incomplete gamma `Q(a, x)`: power series for
/// `x < a + 1`, Lentz's continued fraction otherwise.
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let lpre = a * x.ln() - x - libm::lgamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..100_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        (1.0 - sum * lpre.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-17 {
                break;
            }
        }
        (lpre.exp() * h).clamp(0.0, 1.0)
    }
}

/// `scipy.stats.norm.cdf`.
fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// evidently's two-proportion z-test p-value on sorted samples: the smallest
/// value seen in either sample against all others.
pub(crate) fn z_test_sorted(r: &[f64], c: &[f64]) -> f64 {
    let keys = union_values(r, c);
    if keys.len() == 1 {
        return 1.0;
    }
    let (n1, n2) = (r.len() as f64, c.len() as f64);
    let k0 = keys[0];
    let p1 = (r.len() - r.partition_point(|&v| v <= k0)) as f64 / n1;
    let p2 = (c.len() - c.partition_point(|&v| v <= k0)) as f64 / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    2.0 * (1.0 - norm_cdf(z.abs()))
}

/// Rejects a chi-square input that scipy would reject or that has no test.
pub(crate) fn check_chisquare(obs: &[f64], exp: &[f64]) -> Result<()> {
    crate::validate::check_same_len("f_obs", obs.len(), "f_exp", exp.len())?;
    if obs.len() < 2 {
        return Err(MetricsError::InvalidParameter {
            name: "f_obs",
            reason: format!("chi-square needs at least 2 categories, got {}", obs.len()),
        });
    }
    crate::validate::check_finite("f_obs", obs)?;
    crate::validate::check_finite("f_exp", exp)?;
    if let Some(i) = obs.iter().chain(exp).position(|&v| v < 0.0) {
        return Err(MetricsError::InvalidParameter {
            name: "f_obs/f_exp",
            reason: format!("frequencies must be non-negative (value {i} is not)"),
        });
    }
    let (so, se): (f64, f64) = (obs.iter().sum(), exp.iter().sum());
    if (so - se).abs() > 1.5e-8 * so.max(se) {
        return Err(MetricsError::InvalidParameter {
            name: "f_exp",
            reason: format!("f_obs sums to {so} but f_exp to {se}; they must agree"),
        });
    }
    Ok(())
}
