//! Times `DriftReference::new` and `DriftReference::compare` on 42 features ×
//! 1,000,000 reference rows × 100,000 current rows (and on a 10,000-row
//! reservoir-sized reference). `drift_speed_scipy.py` times scipy on the same
//! data (same SplitMix64 + Box–Muller generator).
//!
//! ```text
//! cargo run --release -p vigil-metrics --example drift_speed [n_ref n_cur n_features reps]
//! ```

// An example binary reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use vigil_metrics::{ColumnKind, DriftParams, DriftReference, KsMethod, MetricsError};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 output for counter `i` of stream `seed`, as a uniform in [0, 1).
fn uniform(seed: u64, i: u64) -> f64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Feature `j`'s sample: normal(shift, scale) by Box–Muller; every 4th
/// feature's current sample is shifted by 0.2 standard deviations.
fn column(j: u64, current: bool, n: usize) -> Vec<f64> {
    let seed = j * 2 + u64::from(current);
    let scale = 1.0 + (j % 3) as f64;
    let shift = if current && j.is_multiple_of(4) {
        0.2 * scale
    } else {
        0.0
    };
    (0..n as u64)
        .map(|i| {
            let (u1, u2) = (uniform(seed, 2 * i), uniform(seed, 2 * i + 1));
            let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            j as f64 + shift + scale * z
        })
        .collect()
}

/// CPU seconds (user + system, all threads) this process has used, from
/// /proc/self/stat (Linux; 0 elsewhere): wall time on a loaded machine
/// says little, CPU time says what the work costs.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), MetricsError> {
    let (n_ref, n_cur, n_feat, reps) = (arg(1, 1_000_000), arg(2, 100_000), arg(3, 42), arg(4, 5));
    let t = Instant::now();
    let names: Vec<String> = (0..n_feat).map(|j| format!("f{j}")).collect();
    let refs: Vec<Vec<f64>> = (0..n_feat as u64)
        .map(|j| column(j, false, n_ref))
        .collect();
    let curs: Vec<Vec<f64>> = (0..n_feat as u64).map(|j| column(j, true, n_cur)).collect();
    println!(
        "data: {n_feat} features x {n_ref} reference x {n_cur} current rows, generated in {:.2?}",
        t.elapsed()
    );

    let columns = || {
        names
            .iter()
            .zip(&refs)
            .map(|(n, r)| (n.as_str(), ColumnKind::Numerical, r.as_slice()))
            .collect()
    };
    let current: Vec<&[f64]> = curs.iter().map(Vec::as_slice).collect();
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let reference = DriftReference::new(columns())?;
    println!(
        "DriftReference::new: {:.3} s wall, {:.2} s CPU",
        t.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );

    let small = reference.downsampled(10_000)?;
    let ks = DriftParams {
        numerical_method: Some(vigil_metrics::DriftMethod::Ks),
        ks_method: KsMethod::Auto,
        ..DriftParams::default()
    };
    let cases = [
        (
            "1M reference, default rule (Wasserstein)",
            &reference,
            DriftParams::default(),
        ),
        ("1M reference, KS (asymptotic)", &reference, ks.clone()),
        (
            "10k reference, default rule (Wasserstein)",
            &small,
            DriftParams::default(),
        ),
        ("10k reference, KS (asymptotic)", &small, ks),
    ];
    for (label, r, params) in &cases {
        let mut times = Vec::new();
        let mut report = None;
        let cpu = cpu_seconds();
        for _ in 0..reps {
            let t = Instant::now();
            report = Some(r.compare(&current, params)?);
            times.push(t.elapsed().as_secs_f64());
        }
        let cpu_per_rep = (cpu_seconds() - cpu) / reps as f64;
        times.sort_by(f64::total_cmp);
        let Some(report) = report else { continue };
        println!(
            "compare, {label}: min {:.3} s, median {:.3} s over {reps}, {:.3} s CPU per call; drifted {}/{}; f0 {:?} {:.12e}, f1 {:.12e}",
            times[0],
            times[times.len() / 2],
            cpu_per_rep,
            report.features.iter().filter(|f| f.drifted).count(),
            report.features.len(),
            report.features[0].method,
            report.features[0].statistic,
            report.features[1].statistic,
        );
    }
    Ok(())
}
