//! Fits a Random Forest and an Isolation Forest on synthetic data and prints timings:
//! a quick local speed check with no Python and no other crates.
//!
//! ```text
//! cargo run --release -p vigil-forest --example fit_synthetic -- [rows] [trees] [threads]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use ndarray::Array2;
use vigil_forest::{IsolationForestParams, RandomForestParams};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let rows = args.first().copied().unwrap_or(100_000);
    let trees = args.get(1).copied().unwrap_or(20);
    let threads = args.get(2).copied().unwrap_or(1);
    let features = 42;
    // SplitMix64-driven uniform noise with a non-linear two-feature signal and 3% flips.
    let mut state = 1u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let x = Array2::from_shape_fn((rows, features), |_| next());
    let y: Vec<usize> = (0..rows)
        .map(|r| {
            let s = (x[[r, 0]] * 6.0).sin() + x[[r, 1]] * 2.0 + x[[r, 2]] - x[[r, 3]] * x[[r, 4]];
            usize::from(s > 1.2) ^ usize::from(next() < 0.03)
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let t = Instant::now();
        let rf = RandomForestParams { n_estimators: trees, ..Default::default() }.fit(x.view(), &y).unwrap();
        let fit = t.elapsed().as_secs_f64();
        println!("rf fit {rows} x {features}, {trees} trees, {threads} threads: {fit:.3} s ({} nodes, depth {})", rf.n_nodes(), rf.max_depth());
        let t = Instant::now();
        let iso = IsolationForestParams { n_estimators: trees, ..Default::default() }.fit(x.view()).unwrap();
        let s = iso.score_samples(x.view()).unwrap();
        println!("if fit+score: {:.3} s (mean score {:.4})", t.elapsed().as_secs_f64(), s.mean().unwrap_or(0.0));
    });
}
