//! Criterion benches for vigil-forest: fit, batch and one-row prediction of the
//! Random Forest, fit and scoring of the Isolation Forest.
//!
//! Sizes are kept small for the shared 2-core machine; set
//! `VIGIL_BENCH_FOREST_ROWS` (default 20000) and `VIGIL_BENCH_FOREST_TREES`
//! (default 50) for bigger runs. Side-by-side numbers against scikit-learn, LightGBM
//! and isotree come from `benches/compare/forest/run.sh`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_forest::{IsolationForestParams, RandomForestParams};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Uniform features with a noisy non-linear signal in the first five.
fn data(rows: usize, features: usize) -> (Array2<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let x = Array2::from_shape_fn((rows, features), |_| unit());
    let y = (0..rows)
        .map(|r| {
            let s = (x[[r, 0]] * 6.0).sin() + 2.0 * x[[r, 1]] + x[[r, 2]] - x[[r, 3]] * x[[r, 4]];
            usize::from(s > 1.2) ^ usize::from(unit() < 0.03)
        })
        .collect();
    (x, y)
}

fn benches(c: &mut Criterion) {
    let rows = env("VIGIL_BENCH_FOREST_ROWS", 20_000);
    let trees = env("VIGIL_BENCH_FOREST_TREES", 50);
    let (x, y) = data(rows, 42);
    let params = RandomForestParams {
        n_estimators: trees,
        ..Default::default()
    };
    let mut g = c.benchmark_group("forest");
    g.sample_size(10);
    g.bench_function(
        BenchmarkId::new("rf_fit", format!("{rows}x42/{trees}trees")),
        |b| b.iter(|| params.fit(black_box(x.view()), &y).unwrap()),
    );
    let rf = params.fit(x.view(), &y).unwrap();
    g.bench_function(
        BenchmarkId::new("rf_predict_proba_batch", format!("{rows}x42/{trees}trees")),
        |b| b.iter(|| rf.predict_proba(black_box(x.view())).unwrap()),
    );
    let mut out = vec![0.0; 2];
    let mut r = 0;
    g.bench_function(
        BenchmarkId::new("rf_predict_proba_row", format!("{trees}trees")),
        |b| {
            b.iter(|| {
                r = (r + 7919) % rows;
                rf.predict_proba_row_into(black_box(x.row(r).as_slice().unwrap()), &mut out)
                    .unwrap();
                out[1]
            })
        },
    );
    let iso_params = IsolationForestParams {
        n_estimators: 100,
        ..Default::default()
    };
    g.bench_function(
        BenchmarkId::new("if_fit_score", format!("{rows}x42/100trees")),
        |b| {
            b.iter(|| {
                iso_params
                    .fit(black_box(x.view()))
                    .unwrap()
                    .score_samples(x.view())
                    .unwrap()
            })
        },
    );
    let bytes = rf.to_bytes();
    g.bench_function(
        BenchmarkId::new("rf_load_validate", format!("{} bytes", bytes.len())),
        |b| b.iter(|| vigil_forest::RandomForest::from_bytes(black_box(&bytes)).unwrap()),
    );
    g.finish();
}

criterion_group!(forest, benches);
criterion_main!(forest);
