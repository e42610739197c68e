//! Criterion benches for vigil-tracking-client.
//!
//! - `tracking/server_log_10k`: 10,000 metric values (one key, steps 0..9999)
//!   through `ActiveRun::log_metric_at` until `finish()` returns, i.e. until
//!   the server has stored them all. Needs a server: `VIGIL_BENCH_MLFLOW_URI`
//!   (or the harness's `VIGIL_TEST_MLFLOW_URI`); skipped without one.
//! - `tracking/file_store_log_10k`: the same into a local `mlruns` store.
//! - `tracking/encode_log_batch_1000`: client-side cost of one request body.
//! - `tracking/log_metric_call_fsync_{200ms,every_call}`: what one log call
//!   costs the caller (the write-ahead spool append, and its fsync cadence).
//!
//! `cargo bench -p vigil-benches --bench tracking`; the side-by-side with
//! MLflow's Python client is `benches/compare/tracking/compare.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_tracking_client::{BatchConfig, Metric, RunOptions, SpoolSync, Tracker, TrackingConfig};

const N: i64 = 10_000;

fn log_10k(tracker: &Tracker, experiment_id: &str) {
    let run = tracker
        .start_run(RunOptions::new(experiment_id).name("bench-log10k"))
        .unwrap();
    for step in 0..N {
        run.log_metric_at("loss", 1.0 / (step + 1) as f64, step)
            .unwrap();
    }
    run.finish().unwrap();
}

fn bench_server(c: &mut Criterion) {
    let uri = std::env::var("VIGIL_BENCH_MLFLOW_URI")
        .or_else(|_| std::env::var("VIGIL_TEST_MLFLOW_URI"))
        .ok()
        .filter(|u| !u.is_empty());
    let Some(uri) = uri else {
        eprintln!(
            "skipped tracking/server_log_10k: set VIGIL_BENCH_MLFLOW_URI (or VIGIL_TEST_MLFLOW_URI)"
        );
        return;
    };
    let tracker = Tracker::new(
        TrackingConfig::builder()
            .uri(&uri)
            .unwrap()
            .build()
            .unwrap(),
    )
    .unwrap();
    let exp = tracker
        .get_or_create_experiment("vigil-bench-tracking")
        .unwrap();
    let mut group = c.benchmark_group("tracking");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    group.bench_function("server_log_10k", |b| {
        b.iter(|| log_10k(&tracker, &exp.experiment_id))
    });
    group.finish();
}

fn bench_file_store(c: &mut Criterion) {
    let tmp = tempfile_dir();
    let tracker = Tracker::new(TrackingConfig::builder().local_dir(&tmp).build().unwrap()).unwrap();
    let exp = tracker.get_or_create_experiment("bench").unwrap();
    let mut group = c.benchmark_group("tracking");
    group.sample_size(10);
    group.bench_function("file_store_log_10k", |b| {
        b.iter(|| log_10k(&tracker, &exp.experiment_id))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&tmp);
}

/// One log call's own cost: the write-ahead spool append (and its fsync
/// cadence) plus buffering; delivery happens untimed, between samples.
fn bench_log_call(c: &mut Criterion) {
    let tmp = tempfile_dir();
    let mut group = c.benchmark_group("tracking");
    for (name, sync) in [
        ("log_metric_call_fsync_200ms", SpoolSync::DEFAULT),
        ("log_metric_call_fsync_every_call", SpoolSync::EveryCall),
    ] {
        let config = TrackingConfig::builder()
            .local_dir(tmp.join("mlruns"))
            .spool_dir(tmp.join("spool"))
            .batch(BatchConfig {
                max_items: usize::MAX,
                max_age: Duration::from_secs(3600),
                spool_sync: sync,
                ..BatchConfig::default()
            })
            .build()
            .unwrap();
        let tracker = Tracker::new(config).unwrap();
        let exp = tracker.get_or_create_experiment("bench").unwrap();
        let run = tracker
            .start_run(RunOptions::new(&exp.experiment_id))
            .unwrap();
        let mut step = 0i64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    run.log_metric_at("loss", black_box(step as f64), step)
                        .unwrap();
                    step += 1;
                }
                let took = started.elapsed();
                run.flush().unwrap();
                took
            })
        });
        run.finish().unwrap();
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&tmp);
}

fn bench_encode(c: &mut Criterion) {
    let metrics: Vec<Metric> = (0..1000)
        .map(|i| Metric::new("loss", 1.0 / (i + 1) as f64, i))
        .collect();
    c.bench_function("tracking/encode_log_batch_1000", |b| {
        b.iter(|| {
            let body = serde_json::json!({ "run_id": "0123456789abcdef0123456789abcdef", "metrics": black_box(&metrics) });
            black_box(serde_json::to_vec(&body).unwrap())
        })
    });
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-bench-mlruns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

criterion_group!(
    benches,
    bench_encode,
    bench_log_call,
    bench_file_store,
    bench_server
);
criterion_main!(benches);
