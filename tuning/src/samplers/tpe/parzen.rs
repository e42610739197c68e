//! The Parzen estimator: a mixture of product kernels (one kernel per observation plus
//! a prior kernel), numeric dimensions as truncated normals in the transformed space,
//! categorical dimensions as smoothed one-hot tables. Mirrors Optuna 5's
//! `_ParzenEstimator` with `consider_endpoints=False`.

use super::truncnorm::{LN_SQRT_2PI, log_gauss_mass, truncated_ppf};
use crate::distributions::Distribution;
use crate::samplers::TrialRng;

/// Knobs of the estimator (Optuna's `_ParzenEstimatorParameters`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParzenParams {
    pub(crate) prior_weight: f64,
    pub(crate) consider_magic_clip: bool,
    pub(crate) consider_endpoints: bool,
}

/// Optuna's `default_weights`: flat for the newest 25, a linear ramp below.
pub(crate) fn default_weights(m: usize) -> Vec<f64> {
    if m == 0 {
        return Vec::new();
    }
    if m < 25 {
        return vec![1.0; m];
    }
    let n_ramp = m - 25;
    let mut w = linspace(1.0 / m as f64, 1.0, n_ramp);
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (stop - start) / (n - 1) as f64;
            // numpy computes start + i*step and pins the last point to `stop`.
            (0..n)
                .map(|i| {
                    if i == n - 1 {
                        stop
                    } else {
                        start + i as f64 * step
                    }
                })
                .collect()
        }
    }
}

/// A kernel whose bounds are this many σ away on both sides has all its mass inside.
const FULL_MASS_Z: f64 = 10.0;

/// How a numeric dimension maps to the kernel space.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NumericSpace {
    /// Original bounds.
    pub(crate) low: f64,
    pub(crate) high: f64,
    /// Grid step (ints: their step), or `None` for continuous.
    pub(crate) step: Option<f64>,
    pub(crate) log: bool,
}

impl NumericSpace {
    pub(crate) fn of(d: &Distribution) -> Option<Self> {
        match d {
            Distribution::Float {
                low,
                high,
                step,
                log,
            } => Some(NumericSpace {
                low: *low,
                high: *high,
                step: *step,
                log: *log,
            }),
            Distribution::Int {
                low,
                high,
                step,
                log,
            } => Some(NumericSpace {
                low: *low as f64,
                high: *high as f64,
                step: Some(*step as f64),
                log: *log,
            }),
            Distribution::Categorical { .. } => None,
        }
    }

    fn t(&self, x: f64) -> f64 {
        if self.log { x.ln() } else { x }
    }

    /// Kernel-space bounds: half a step of padding for grids, then ln for log scales.
    pub(crate) fn bounds(&self) -> (f64, f64) {
        let half = self.step.unwrap_or(0.0) / 2.0;
        (self.t(self.low - half), self.t(self.high + half))
    }
}

/// One dimension of the mixture.
#[derive(Debug, Clone)]
pub(crate) enum Dim {
    Numeric {
        space: NumericSpace,
        /// Kernel-space bounds.
        lo: f64,
        hi: f64,
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        /// Continuous dims: -ln σ - ln √(2π) - ln mass, per kernel.
        log_norm: Vec<f64>,
        /// Grid dims: distinct (μ, σ) kernels and the distinct index of each kernel
        /// (many observations share values, so bin masses are computed once per pair).
        uniq: Vec<(f64, f64, f64)>,
        kernel_to_uniq: Vec<usize>,
    },
    Categorical {
        n_choices: usize,
        /// Row-major (kernels × choices) probabilities.
        probs: Vec<f64>,
        /// Their logarithms.
        log_probs: Vec<f64>,
    },
}

/// A mixture of product kernels over some dimensions.
#[derive(Debug, Clone)]
pub(crate) struct Parzen {
    /// Normalised mixture weights, the prior's last.
    pub(crate) weights: Vec<f64>,
    log_weights: Vec<f64>,
    pub(crate) dims: Vec<Dim>,
}

impl Parzen {
    /// Build from observations (`obs[j][i]`: dimension j of observation i, internal values).
    pub(crate) fn new(obs: &[Vec<f64>], space: &[&Distribution], p: ParzenParams) -> Self {
        let m = obs.first().map_or(0, Vec::len);
        let mut weights = default_weights(m);
        if m == 0 {
            weights = vec![1.0];
        } else {
            weights.push(p.prior_weight);
        }
        let total: f64 = weights.iter().sum();
        for w in &mut weights {
            *w /= total;
        }
        let dims = space
            .iter()
            .enumerate()
            .map(|(j, d)| {
                let column: &[f64] = obs.get(j).map_or(&[], Vec::as_slice);
                match d {
                    Distribution::Categorical { choices } => {
                        categorical_dim(column, choices.len(), p)
                    }
                    numeric => match NumericSpace::of(numeric) {
                        Some(s) => numeric_dim(column, s, p),
                        None => categorical_dim(column, 1, p),
                    },
                }
            })
            .collect();
        let log_weights = weights.iter().map(|w| w.ln()).collect();
        Parzen {
            weights,
            log_weights,
            dims,
        }
    }

    pub(crate) fn n_kernels(&self) -> usize {
        self.weights.len()
    }

    /// Draw `n` points (internal values, one `Vec` per point).
    pub(crate) fn sample(&self, rng: &mut TrialRng, n: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| {
                let k = rng.weighted_index(&self.weights);
                self.dims.iter().map(|d| sample_dim(d, k, rng)).collect()
            })
            .collect()
    }

    /// ln p(x) for each point.
    pub(crate) fn log_pdf(&self, points: &[Vec<f64>]) -> Vec<f64> {
        let nk = self.n_kernels();
        let np = points.len();
        // acc[p * nk + k] = ln w_k + Σ_j ln K_kj(x_pj), dimensions added in order.
        let mut acc = Vec::with_capacity(np * nk);
        for _ in 0..np {
            acc.extend_from_slice(&self.log_weights);
        }
        for (j, d) in self.dims.iter().enumerate() {
            add_dim_log_pdf(d, j, points, nk, &mut acc);
        }
        acc.chunks(nk).map(logsumexp).collect()
    }
}

/// How far (in log units) below the largest term of a log-sum-exp a term vanishes:
/// `exp(-746.0)` rounds to 0.0 in `f64` (the smallest subnormal is `exp(-744.4)`).
const NEGLIGIBLE: f64 = 746.0;

fn logsumexp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let mut sum = 0.0;
    for &x in v {
        // exp of anything further below than NEGLIGIBLE is exactly 0.0: skip the call.
        if x - max >= -NEGLIGIBLE {
            sum += (x - max).exp();
        }
    }
    max + sum.ln()
}

/// `ln` of many values of which few are distinct, computed once per distinct value.
#[derive(Debug, Default)]
struct LnMemo {
    seen: Vec<(u64, f64)>,
}

impl LnMemo {
    fn ln(&mut self, x: f64) -> f64 {
        let bits = x.to_bits();
        if let Some(&(_, v)) = self.seen.iter().find(|(b, _)| *b == bits) {
            return v;
        }
        let v = x.ln();
        if self.seen.len() < 16 {
            self.seen.push((bits, v));
        }
        v
    }
}

fn categorical_dim(column: &[f64], n_choices: usize, p: ParzenParams) -> Dim {
    let m = column.len();
    if m == 0 {
        let probs = vec![1.0 / n_choices as f64; n_choices];
        return Dim::Categorical {
            n_choices,
            log_probs: probs.iter().map(|p| p.ln()).collect(),
            probs,
        };
    }
    let n_kernels = m + 1;
    let mut probs = vec![p.prior_weight / n_kernels as f64; n_kernels * n_choices];
    for (i, &c) in column.iter().enumerate() {
        let c = (c as usize).min(n_choices - 1);
        probs[i * n_choices + c] += 1.0;
    }
    for row in probs.chunks_mut(n_choices) {
        let s: f64 = row.iter().sum();
        if s > 0.0 {
            row.iter_mut().for_each(|v| *v /= s);
        }
    }
    // Rows hold only a few distinct probabilities (shared, and shared + 1, over the
    // same row sum): one ln per distinct value.
    let mut memo = LnMemo::default();
    Dim::Categorical {
        n_choices,
        log_probs: probs.iter().map(|&p| memo.ln(p)).collect(),
        probs,
    }
}

fn numeric_dim(column: &[f64], space: NumericSpace, p: ParzenParams) -> Dim {
    let (lo, hi) = space.bounds();
    let mut mus: Vec<f64> = column.iter().map(|&x| space.t(x)).collect();
    let m = mus.len();
    let mut sigmas = vec![0.0; m];
    if m > 0 {
        let mut order: Vec<usize> = (0..m).collect();
        // numpy's argsort default is quicksort (not stable); ties give equal sigmas
        // either way because tied points have equal neighbour gaps.
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        let mut ext = Vec::with_capacity(m + 2);
        ext.push(lo);
        ext.extend(order.iter().map(|&i| mus[i]));
        ext.push(hi);
        let mut sorted_sig: Vec<f64> = (1..=m)
            .map(|i| (ext[i] - ext[i - 1]).max(ext[i + 1] - ext[i]))
            .collect();
        if !p.consider_endpoints && ext.len() >= 4 {
            sorted_sig[0] = ext[2] - ext[1];
            sorted_sig[m - 1] = ext[m] - ext[m - 1];
        }
        for (rank, &i) in order.iter().enumerate() {
            sigmas[i] = sorted_sig[rank];
        }
    }
    let maxsigma = hi - lo;
    let minsigma = if p.consider_magic_clip {
        (hi - lo) / f64::min(100.0, 1.0 + (m + 1) as f64)
    } else {
        1e-12
    };
    for s in &mut sigmas {
        *s = s.clamp(minsigma, maxsigma.max(minsigma));
    }
    mus.push(0.5 * (lo + hi));
    sigmas.push(hi - lo);
    let log_mass: Vec<f64> = mus
        .iter()
        .zip(&sigmas)
        .map(|(&mu, &s)| {
            let (a, b) = ((lo - mu) / s, (hi - mu) / s);
            if a <= -FULL_MASS_Z && b >= FULL_MASS_Z {
                // Φ(−10) < 7.7e-24: the kernel's mass on [L, H] is 1 to within 1.6e-23,
                // far below the rounding of the log-densities it normalises. Most kernels
                // of a large estimator are like this; skipping their two erfc calls saves
                // a third of a step.
                0.0
            } else {
                log_gauss_mass(a, b)
            }
        })
        .collect();
    // Clipped bandwidths all equal the minimum: one ln for them.
    let mut memo = LnMemo::default();
    let log_norm = sigmas
        .iter()
        .zip(&log_mass)
        .map(|(&s, lm)| -memo.ln(s) - LN_SQRT_2PI - lm)
        .collect();
    let mut uniq = Vec::new();
    let mut kernel_to_uniq = Vec::new();
    if space.step.is_some() {
        let mut seen: std::collections::HashMap<(u64, u64), usize> =
            std::collections::HashMap::new();
        for k in 0..mus.len() {
            let key = (mus[k].to_bits(), sigmas[k].to_bits());
            let next = uniq.len();
            let u = *seen.entry(key).or_insert(next);
            if u == next {
                uniq.push((mus[k], sigmas[k], log_mass[k]));
            }
            kernel_to_uniq.push(u);
        }
    }
    Dim::Numeric {
        space,
        lo,
        hi,
        mus,
        sigmas,
        log_norm,
        uniq,
        kernel_to_uniq,
    }
}

fn sample_dim(d: &Dim, k: usize, rng: &mut TrialRng) -> f64 {
    match d {
        Dim::Categorical {
            n_choices, probs, ..
        } => {
            let row = if probs.len() == *n_choices {
                &probs[..]
            } else {
                &probs[k * n_choices..(k + 1) * n_choices]
            };
            rng.weighted_index(row) as f64
        }
        Dim::Numeric {
            space,
            lo,
            hi,
            mus,
            sigmas,
            ..
        } => {
            let (mu, s) = (mus[k], sigmas[k]);
            let u = rng.open_uniform();
            let y = mu + s * truncated_ppf(u, (lo - mu) / s, (hi - mu) / s);
            let x = if space.log { y.exp() } else { y };
            match space.step {
                Some(step) => {
                    let g = space.low + ((x - space.low) / step).round_ties_even() * step;
                    g.clamp(space.low, space.high)
                }
                None => x.clamp(space.low, space.high),
            }
        }
    }
}

/// Add ln K_k(x_p) of dimension `j` to `acc[p * nk + k]` for every point p and kernel k.
fn add_dim_log_pdf(d: &Dim, j: usize, points: &[Vec<f64>], nk: usize, acc: &mut [f64]) {
    match d {
        Dim::Categorical {
            n_choices,
            log_probs,
            ..
        } => {
            for (p, row) in points.iter().zip(acc.chunks_mut(nk)) {
                let c = (p[j] as usize).min(n_choices - 1);
                if log_probs.len() == *n_choices {
                    let lp = log_probs[c];
                    row.iter_mut().for_each(|a| *a += lp);
                } else {
                    for (k, a) in row.iter_mut().enumerate() {
                        *a += log_probs[k * n_choices + c];
                    }
                }
            }
        }
        Dim::Numeric {
            space,
            mus,
            sigmas,
            log_norm,
            uniq,
            kernel_to_uniq,
            ..
        } => match space.step {
            None => {
                for (p, row) in points.iter().zip(acc.chunks_mut(nk)) {
                    let y = space.t(p[j]);
                    for (((a, mu), s), ln) in row.iter_mut().zip(mus).zip(sigmas).zip(log_norm) {
                        let z = (y - mu) / s;
                        *a += ln - 0.5 * z * z;
                    }
                }
            }
            Some(step) => {
                // Bin masses once per distinct (point value, kernel) pair.
                let mut xs: Vec<f64> = points.iter().map(|p| p[j]).collect();
                xs.sort_by(f64::total_cmp);
                xs.dedup();
                let table: Vec<Vec<f64>> = xs
                    .iter()
                    .map(|&x| {
                        let (a, b) = (space.t(x - step / 2.0), space.t(x + step / 2.0));
                        uniq.iter()
                            .map(|&(mu, s, lm)| log_gauss_mass((a - mu) / s, (b - mu) / s) - lm)
                            .collect()
                    })
                    .collect();
                for (p, row) in points.iter().zip(acc.chunks_mut(nk)) {
                    let u = xs.partition_point(|v| v.total_cmp(&p[j]).is_lt());
                    let vals = &table[u.min(table.len() - 1)];
                    for (a, &ku) in row.iter_mut().zip(kernel_to_uniq) {
                        *a += vals[ku];
                    }
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ln p(x) the plain way: every bin mass of every kernel, no tables, no skipped
    /// terms (added in the same order: weight, then dimensions in order).
    fn naive_log_pdf(p: &Parzen, points: &[Vec<f64>]) -> Vec<f64> {
        let order: Vec<usize> = (0..p.dims.len()).collect();
        points
            .iter()
            .map(|x| {
                let terms: Vec<f64> = (0..p.n_kernels())
                    .map(|k| {
                        let mut t = p.log_weights[k];
                        for &j in &order {
                            let d = &p.dims[j];
                            t += match d {
                                Dim::Categorical {
                                    n_choices,
                                    log_probs,
                                    ..
                                } => {
                                    let c = (x[j] as usize).min(n_choices - 1);
                                    if log_probs.len() == *n_choices {
                                        log_probs[c]
                                    } else {
                                        log_probs[k * n_choices + c]
                                    }
                                }
                                Dim::Numeric {
                                    space,
                                    mus,
                                    sigmas,
                                    log_norm,
                                    ..
                                } => match space.step {
                                    None => {
                                        let z = (space.t(x[j]) - mus[k]) / sigmas[k];
                                        log_norm[k] - 0.5 * z * z
                                    }
                                    Some(step) => {
                                        let (lo, hi) = space.bounds();
                                        let (mu, s) = (mus[k], sigmas[k]);
                                        let (a, b) = (
                                            space.t(x[j] - step / 2.0),
                                            space.t(x[j] + step / 2.0),
                                        );
                                        let (za, zb) = ((lo - mu) / s, (hi - mu) / s);
                                        let norm = if za <= -FULL_MASS_Z && zb >= FULL_MASS_Z {
                                            0.0
                                        } else {
                                            log_gauss_mass(za, zb)
                                        };
                                        log_gauss_mass((a - mu) / s, (b - mu) / s) - norm
                                    }
                                },
                            };
                        }
                        t
                    })
                    .collect();
                logsumexp_all(&terms)
            })
            .collect()
    }

    fn logsumexp_all(v: &[f64]) -> f64 {
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return max;
        }
        max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
    }

    fn space() -> Vec<Distribution> {
        vec![
            Distribution::float("x", -5.0, 5.0).unwrap(),
            Distribution::float_log("lr", 1e-4, 1.0).unwrap(),
            Distribution::int("n", 50, 300).unwrap(),
            Distribution::int("d", 3, 20).unwrap(),
            Distribution::int_log("k", 1, 1000).unwrap(),
            Distribution::categorical("c", vec!["a".into(), "b".into(), "c".into()]).unwrap(),
        ]
    }

    fn params() -> ParzenParams {
        ParzenParams {
            prior_weight: 1.0,
            consider_magic_clip: true,
            consider_endpoints: false,
        }
    }

    /// A point of `space()` from six numbers in [0, 1) (ints cluster, so values repeat).
    fn point(u: &[f64]) -> Vec<f64> {
        vec![
            -5.0 + 10.0 * u[0],
            (1e-4f64.ln() * (1.0 - u[1])).exp(),
            (50.0 + (250.0 * u[2] * u[2]).round()).min(300.0),
            (3.0 + (17.0 * u[3]).round()).min(20.0),
            (1000f64.ln() * u[4]).exp().round().clamp(1.0, 1000.0),
            (3.0 * u[5]).floor().min(2.0),
        ]
    }

    #[test]
    fn full_mass_shortcut_is_below_rounding() {
        for (a, b) in [(-10.0, 10.0), (-10.0, 60.0), (-80.0, 10.0), (-12.0, 11.0)] {
            let exact = log_gauss_mass(a, b);
            assert!(
                exact <= 0.0 && exact > -1.6e-23,
                "ln mass on [{a}, {b}] = {exact}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Bin-mass tables per distinct value and kernel, and skipped negligible terms,
        /// leave ln p(x) bit-for-bit equal to computing every term.
        #[test]
        fn shared_tables_and_skipped_terms_change_nothing(
            obs in prop::collection::vec(prop::collection::vec(0.0f64..1.0, 6), 0..120),
            probes in prop::collection::vec(prop::collection::vec(0.0f64..1.0, 6), 1..24),
            spread in 0.0f64..1.0,
        ) {
            let dists = space();
            let refs: Vec<&Distribution> = dists.iter().collect();
            // Squeeze observations toward a corner so that far probes really are negligible.
            let rows: Vec<Vec<f64>> = obs
                .iter()
                .map(|u| point(&u.iter().map(|v| v * spread).collect::<Vec<_>>()))
                .collect();
            let cols: Vec<Vec<f64>> = (0..dists.len())
                .map(|j| rows.iter().map(|r| r[j]).collect())
                .collect();
            let parzen = Parzen::new(&cols, &refs, params());
            let xs: Vec<Vec<f64>> = probes.iter().map(|u| point(u)).collect();
            let fast = parzen.log_pdf(&xs);
            let slow = naive_log_pdf(&parzen, &xs);
            for (f, s) in fast.iter().zip(&slow) {
                prop_assert!(f.to_bits() == s.to_bits() || (f.is_nan() && s.is_nan()),
                    "fast {f} vs naive {s}");
            }
        }
    }
}
