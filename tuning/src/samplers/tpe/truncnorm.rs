//! Standard-normal helpers for truncated-normal kernels: log of a Gaussian mass
//! between two z-scores, log-density, and inverse-CDF sampling.

use std::f64::consts::FRAC_1_SQRT_2;

/// ln(√(2π)).
pub(crate) const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Φ(z), accurate in the left tail (erfc keeps relative precision there).
fn ndtr(z: f64) -> f64 {
    0.5 * libm::erfc(-z * FRAC_1_SQRT_2)
}

/// ln Φ(z), with an asymptotic series far in the left tail where Φ underflows.
pub(crate) fn log_ndtr(z: f64) -> f64 {
    if z > -20.0 {
        let p = ndtr(z);
        if z > 0.0 {
            // Φ close to 1: ln(1 - Φ(-z)) keeps the tiny complement.
            return (-ndtr(-z)).ln_1p();
        }
        return p.ln();
    }
    // Mills-ratio series: ln Φ(z) ≈ -z²/2 - ln(-z) - ln√(2π) + ln(1 - 1/z² + 3/z⁴ - 15/z⁶).
    let z2 = z * z;
    let series = 1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2);
    -0.5 * z2 - (-z).ln() - LN_SQRT_2PI + series.ln()
}

/// ln(Φ(b) − Φ(a)) for a ≤ b, evaluated on the side where it keeps precision.
pub(crate) fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if a >= b {
        return f64::NEG_INFINITY;
    }
    if b <= 0.0 {
        // Both in the left half. Direct difference when it keeps precision...
        if a > -30.0 {
            let (pa, pb) = (ndtr(a), ndtr(b));
            if pb - pa > 1e-3 * pb {
                return (pb - pa).ln();
            }
        }
        // ...else ln Φ(b) + ln(1 − Φ(a)/Φ(b)).
        let lb = log_ndtr(b);
        let la = log_ndtr(a);
        lb + log1mexp(la - lb)
    } else if a >= 0.0 {
        // Both in the right half: mirror.
        log_gauss_mass(-b, -a)
    } else {
        // Straddles 0: 1 − Φ(a) − Φ(−b), both small terms accurate.
        (-ndtr(a) - ndtr(-b)).ln_1p()
    }
}

/// ln(1 − e^x) for x ≤ 0.
fn log1mexp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

#[allow(clippy::inconsistent_digit_grouping, clippy::excessive_precision)]
/// Φ⁻¹(p) by Wichura's AS241 (PPND16), accurate to about 1e-16.
pub(crate) fn ndtri(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((2509.080_928_730_122_7 * r + 33430.575_583_588_13) * r
                + 67265.770_927_008_7)
                * r
                + 45921.953_931_549_87)
                * r
                + 13731.693_765_509_46)
                * r
                + 1971.590_950_306_551_3)
                * r
                + 133.141_667_891_784_38)
                * r
                + 3.387_132_872_796_366_5)
            / (((((((5226.495_278_852_545 * r + 28729.085_735_721_943) * r
                + 39307.895_800_092_71)
                * r
                + 21213.794_301_586_597)
                * r
                + 5394.196_021_424_751)
                * r
                + 687.187_007_492_057_9)
                * r
                + 42.313_330_701_600_91)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        let r = r - 1.6;
        (((((((7.745_450_142_783_414e-4 * r + 0.022_723_844_989_269_184) * r
            + 0.241_780_725_177_450_6)
            * r
            + 1.270_458_252_452_368_4)
            * r
            + 3.647_848_324_763_204_5)
            * r
            + 5.769_497_221_460_691)
            * r
            + 4.630_337_846_156_546)
            * r
            + 1.423_437_110_749_683_5)
            / (((((((1.050_750_071_644_416_9e-9 * r + 5.475_938_084_995_345e-4) * r
                + 0.015_198_666_563_616_457)
                * r
                + 0.148_103_976_427_480_08)
                * r
                + 0.689_767_334_985_1)
                * r
                + 1.676_384_830_183_803_8)
                * r
                + 2.053_191_626_637_759)
                * r
                + 1.0)
    } else {
        let r = r - 5.0;
        (((((((2.010_334_399_292_288_1e-7 * r + 2.711_555_568_743_487_6e-5) * r
            + 0.001_242_660_947_388_078_4)
            * r
            + 0.026_532_189_526_576_124)
            * r
            + 0.296_560_571_828_504_9)
            * r
            + 1.784_826_539_917_291_3)
            * r
            + 5.463_784_911_164_114)
            * r
            + 6.657_904_643_501_103)
            / (((((((2.044_263_103_389_939_7e-15 * r + 1.421_511_758_316_446e-7) * r
                + 1.846_318_317_510_054_8e-5)
                * r
                + 7.868_691_311_456_133e-4)
                * r
                + 0.014_875_361_290_850_615)
                * r
                + 0.136_929_880_922_735_8)
                * r
                + 0.599_832_206_555_888)
                * r
                + 1.0)
    };
    if q < 0.0 { -val } else { val }
}

/// Inverse CDF of the standard normal truncated to [a, b] at u ∈ (0, 1).
pub(crate) fn truncated_ppf(u: f64, a: f64, b: f64) -> f64 {
    if a >= b {
        return a;
    }
    // Work on the side where the truncated mass is not tiny relative to 1.
    let x = if a > 0.0 {
        // Right tail: mirror to the left tail and reverse u.
        -truncated_ppf(1.0 - u, -b, -a)
    } else {
        let pa = ndtr(a);
        let pb = ndtr(b);
        let p = pa + u * (pb - pa);
        if p > 0.0 && p < 1.0 && pb - pa > 1e-300 {
            ndtri(p)
        } else {
            // Both bounds so far in the tail that Φ underflows: sample in log space.
            let la = log_ndtr(a);
            let lb = log_ndtr(b);
            let lp = la + ((lb - la).exp() * u + (1.0 - u)).ln();
            ndtri_exp(lp)
        }
    };
    x.clamp(a, b)
}

/// Φ⁻¹(e^lp) for very small e^lp, by Newton steps on ln Φ.
fn ndtri_exp(lp: f64) -> f64 {
    if lp > -700.0 {
        return ndtri(lp.exp());
    }
    // Start from the leading asymptotic term and refine.
    let mut z = -(-2.0 * lp).sqrt();
    for _ in 0..50 {
        let f = log_ndtr(z) - lp;
        // d/dz ln Φ(z) ≈ φ(z)/Φ(z) ≈ -z in the far tail.
        let d = (-0.5 * z * z - LN_SQRT_2PI - log_ndtr(z)).exp();
        let step = f / d;
        z -= step;
        if step.abs() < 1e-12 * z.abs().max(1.0) {
            break;
        }
    }
    z
}

/// Standard-normal density at z (used in tests).
#[cfg(test)]
fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn ndtri_inverts_ndtr() {
        for &p in &[
            1e-300,
            1e-20,
            1e-5,
            0.01,
            0.3,
            0.5,
            0.77,
            0.999,
            1.0 - 1e-12,
        ] {
            let z = ndtri(p);
            assert_relative_eq!(ndtr(z), p, max_relative = 1e-12);
        }
    }

    #[test]
    fn gauss_mass_matches_direct_formula_where_stable() {
        for &(a, b) in &[
            (-1.0, 1.0),
            (-3.0, -1.0),
            (0.5, 2.0),
            (-0.2, 0.1),
            (1.0, 9.0),
        ] {
            let direct = (ndtr(b) - ndtr(a)).ln();
            assert_relative_eq!(log_gauss_mass(a, b), direct, max_relative = 1e-12);
        }
        // Far tails stay finite where the direct difference underflows to ln 0.
        let far = log_gauss_mass(40.0, 41.0);
        assert!(far.is_finite() && far < -700.0);
        assert_relative_eq!(
            log_ndtr(-40.0),
            -804.608_442_013_754_2,
            max_relative = 1e-10
        );
    }

    #[test]
    fn truncated_ppf_stays_in_bounds_and_is_monotone() {
        for &(a, b) in &[(-1.0, 2.0), (3.0, 5.0), (-50.0, -45.0), (45.0, 60.0)] {
            let mut last = f64::NEG_INFINITY;
            for i in 1..100 {
                let u = f64::from(i) / 100.0;
                let x = truncated_ppf(u, a, b);
                assert!(x >= a && x <= b, "{x} outside [{a}, {b}]");
                assert!(x >= last);
                last = x;
            }
        }
        // Median of the symmetric truncation is 0.
        assert!(truncated_ppf(0.5, -1.0, 1.0).abs() < 1e-12);
        assert!(pdf(0.0) > 0.39);
    }
}
