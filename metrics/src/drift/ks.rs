//! Two-sample Kolmogorov–Smirnov test, two-sided, as `scipy.stats.ks_2samp`.

use serde::{Deserialize, Serialize};

use super::kolmogorov::kstwo_sf;

/// How the KS p-value is computed (scipy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    /// Exact when both samples have at most 10,000 values, asymptotic otherwise.
    #[default]
    Auto,
    /// The exact null distribution (falls back to asymptotic, as scipy does,
    /// when `lcm(n1, n2)` is too large or the recursion overflows).
    Exact,
    /// Smirnov's asymptotic distribution (`kstwo` with `n = round(n1 n2 / (n1 + n2))`).
    Asymp,
}

/// Statistic and p-value of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsResult {
    /// `sup |F1 - F2|`. In exact mode it is rounded to a multiple of
    /// `1 / lcm(n1, n2)`, as scipy does.
    pub statistic: f64,
    /// Two-sided p-value.
    pub pvalue: f64,
    /// The method that produced the p-value (`Exact` or `Asymp`, never `Auto`).
    pub method: KsMethod,
}

/// Auto switches to asymptotic above this many values in either sample.
const MAX_AUTO_N: usize = 10_000;

/// `sup |F1 - F2|` of two sorted samples (scipy's D: the larger of max and
/// -min of `cdf1 - cdf2` over all data points).
pub(crate) fn ks_statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut max_s, mut min_s) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        // Linear advance: the whole walk is O(n1 + n2).
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_s = max_s.max(diff);
        min_s = min_s.min(diff);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s { min_s } else { max_s }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// KS test on two sorted, finite, non-empty samples.
pub(crate) fn ks_2samp_sorted(a: &[f64], b: &[f64], method: KsMethod) -> KsResult {
    let mut d = ks_statistic_sorted(a, b);
    let (n1, n2) = (a.len() as u64, b.len() as u64);
    let g = gcd(n1, n2);
    let (n1g, n2g) = (n1 / g, n2 / g);
    let mut mode = match method {
        KsMethod::Auto if a.len().max(b.len()) <= MAX_AUTO_N => KsMethod::Exact,
        KsMethod::Auto => KsMethod::Asymp,
        KsMethod::Exact if n1g as f64 >= f64::from(i32::MAX) / n2g as f64 => KsMethod::Asymp,
        other => other,
    };
    let mut pvalue = f64::NAN;
    if mode == KsMethod::Exact {
        let (rounded, p) = exact_two_sided(n1, n2, g, d);
        d = rounded;
        match p {
            Some(p) => pvalue = p,
            None => mode = KsMethod::Asymp,
        }
    }
    if mode == KsMethod::Asymp {
        let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
        let en = (m * n / (m + n)).round_ties_even();
        pvalue = kstwo_sf(en as u64, d);
    }
    KsResult {
        statistic: d,
        pvalue: pvalue.clamp(0.0, 1.0),
        method: mode,
    }
}

/// scipy's `_attempt_exact_2kssamp` (two-sided): the statistic rounded to a
/// multiple of `1/lcm`, and the p-value unless the recursion failed.
fn exact_two_sided(n1: u64, n2: u64, g: u64, d: f64) -> (f64, Option<f64>) {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (d, Some(1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside(n1, n2, g, h)
    };
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        (d, Some(p))
    } else {
        (d, None)
    }
}

/// `Pr(D_{n,n} >= h/n)` by the alternating series in Horner form.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let mut p = 0.0;
    let mut k = (n / h) as i64;
    let (nf, hf) = (n as f64, h as f64);
    while k >= 0 {
        let kf = k as f64;
        let mut p1 = 1.0;
        for j in 0..h {
            let jf = j as f64;
            p1 = (nf - kf * hf - jf) * p1 / (nf + kf * hf + jf + 1.0);
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Share of lattice paths leaving the band `|x/m - y/n| < h/lcm` (Hodges'
/// inside method with Viehmann's recursion for `1 - p`).
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let (hf, nn) = (h as f64, n as i64);
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((hf / mg).ceil() as i64).min(nn + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(nn + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for x in a.iter_mut().take(maxj as usize) {
        *x = 0.0;
    }
    for i in 1..=m {
        let fi = i as f64;
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * fi - hf) / mg).floor() as i64) + 1).max(0).min(nn);
        maxj = (((ng * fi + hf) / mg).ceil() as i64).min(nn + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            let src = (jj + minj - lastminj) as usize;
            val = (a.get(src).copied().unwrap_or(1.0) * fi + val * j) / (fi + j);
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let from = (maxj - minj) as usize;
            let to = (from + (lastlen - curlen) as usize).min(a.len());
            for x in a.iter_mut().take(to).skip(from) {
                *x = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}
