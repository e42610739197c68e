//! Scaling runs for vigil-forest on synthetic data shaped like scikit-learn's
//! `make_classification` (12 informative features, the rest redundant or noise,
//! 1% label noise), so the cost curve can be measured without Python.
//!
//! ```text
//! forest_scale --rows 50000,200000 --trees 50,100 --features 42 --threads 2 [--model rf|if] [--seed 0]
//! ```
//! Prints one JSON line per (rows, trees) pair.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_forest::{IsolationForestParams, RandomForestParams};

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; enough for synthetic benchmark data.
    let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `make_classification`-like data: two Gaussian clusters per class on hypercube
/// vertices in 12 informative dimensions, 6 redundant linear combinations, noise.
fn make_data(rows: usize, features: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let informative = 12.min(features);
    let redundant = 6.min(features - informative);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centroids: Vec<Vec<f64>> = (0..4)
        .map(|_| {
            (0..informative)
                .map(|_| if rng.next_u64() & 1 == 0 { -1.0 } else { 1.0 })
                .collect()
        })
        .collect();
    let mix: Vec<Vec<f64>> = (0..redundant)
        .map(|_| (0..informative).map(|_| normal(&mut rng) * 0.5).collect())
        .collect();
    let mut x = Array2::zeros((rows, features));
    let mut y = Vec::with_capacity(rows);
    for r in 0..rows {
        let cluster = (rng.next_u64() % 4) as usize;
        let mut label = cluster / 2;
        if rng.next_u64() % 100 == 0 {
            label = (rng.next_u64() & 1) as usize;
        }
        y.push(label);
        for f in 0..informative {
            x[[r, f]] = centroids[cluster][f] + normal(&mut rng);
        }
        for (j, m) in mix.iter().enumerate() {
            x[[r, informative + j]] = (0..informative).map(|f| m[f] * x[[r, f]]).sum();
        }
        for f in informative + redundant..features {
            x[[r, f]] = normal(&mut rng);
        }
    }
    (x, y)
}

fn list(s: &str) -> Vec<usize> {
    s.split(',').map(|v| v.trim().parse().unwrap()).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opt: HashMap<String, String> = HashMap::new();
    for pair in args.chunks(2) {
        if let [k, v] = pair {
            opt.insert(k.trim_start_matches("--").to_string(), v.clone());
        }
    }
    let get = |k: &str, d: &str| opt.get(k).cloned().unwrap_or_else(|| d.to_string());
    let rows = list(&get("rows", "50000"));
    let trees = list(&get("trees", "50"));
    let features: usize = get("features", "42").parse().unwrap();
    let threads: usize = get("threads", "2").parse().unwrap();
    let seed: u64 = get("seed", "0").parse().unwrap();
    let model = get("model", "rf");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    for &n in &rows {
        let (x, y) = make_data(n + n / 4, features, seed);
        let (train, test) = x.view().split_at(ndarray::Axis(0), n);
        let (y_train, y_test) = y.split_at(n);
        for &t in &trees {
            pool.install(|| {
                if model == "rf" {
                    let params = RandomForestParams { n_estimators: t, seed, ..Default::default() };
                    let start = Instant::now();
                    let rf = params.fit(train, y_train).expect("fit");
                    let fit_s = start.elapsed().as_secs_f64();
                    let start = Instant::now();
                    let acc = rf.score(test, y_test).expect("score");
                    let predict_s = start.elapsed().as_secs_f64();
                    println!(
                        "{}",
                        serde_json::json!({"model": "rf", "rows": n, "trees": t, "features": features, "threads": threads,
                            "fit_s": fit_s, "predict_s": predict_s, "test_accuracy": acc, "nodes": rf.n_nodes(),
                            "bytes": rf.to_bytes().len(), "max_depth": rf.max_depth()})
                    );
                } else {
                    let params = IsolationForestParams { n_estimators: t, seed, ..Default::default() };
                    let start = Instant::now();
                    let iso = params.fit(train).expect("fit");
                    let fit_s = start.elapsed().as_secs_f64();
                    let start = Instant::now();
                    let s = iso.score_samples(train).expect("score");
                    let score_s = start.elapsed().as_secs_f64();
                    println!(
                        "{}",
                        serde_json::json!({"model": "if", "rows": n, "trees": t, "features": features, "threads": threads,
                            "fit_s": fit_s, "score_s": score_s, "mean_score": s.mean()})
                    );
                }
            });
        }
    }
}
