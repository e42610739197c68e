//! Criterion benches for vigil-metrics: ROC-AUC, precision–recall curve and
//! confusion matrix over n scores.
//!
//! Sizes default to 10⁴, 10⁵ and 10⁶ (quick on the shared 2-core box); set
//! `VIGIL_METRICS_BENCH_SIZES=1000000,10000000` for bigger runs. The
//! side-by-side comparison with scikit-learn is `compare/metrics/compare.py`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use vigil_metrics::{confusion_matrix, precision_recall_curve, roc_auc_score};

fn sizes() -> Vec<usize> {
    std::env::var("VIGIL_METRICS_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

/// 20 % positives, probability-like scores rounded to 1e-7 (some ties).
fn data(n: usize) -> (Vec<u8>, Vec<f64>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let y: Vec<u8> = (0..n)
        .map(|_| u8::from(rng.random::<f64>() < 0.2))
        .collect();
    let s: Vec<f64> = y
        .iter()
        .map(|&t| {
            let v: f64 = 0.35 + 0.3 * f64::from(t) + 0.4 * (rng.random::<f64>() - 0.5);
            (v.clamp(0.0, 1.0) * 1e7).round() / 1e7
        })
        .collect();
    let p = s.iter().map(|&v| u8::from(v >= 0.5)).collect();
    (y, s, p)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics");
    group.sample_size(10);
    for n in sizes() {
        let (y, s, p) = data(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("roc_auc_score", n), &n, |b, _| {
            b.iter(|| roc_auc_score(black_box(&y), black_box(&s)))
        });
        group.bench_with_input(BenchmarkId::new("precision_recall_curve", n), &n, |b, _| {
            b.iter(|| precision_recall_curve(black_box(&y), black_box(&s)))
        });
        group.bench_with_input(BenchmarkId::new("confusion_matrix", n), &n, |b, _| {
            b.iter(|| confusion_matrix(black_box(&y), black_box(&p), None))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
