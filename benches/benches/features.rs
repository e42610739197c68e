//! Criterion benches for vigil-features: the 42 reference features in batch
//! (machines in parallel) and online (one sample at a time), on simulated data.
//!
//! `cargo bench -p vigil-benches --bench features` (sized for a shared 2-core
//! machine: 4 machines × ~12,000 samples; set VIGIL_BENCH_DAYS for more).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_features::{FeatureSpec, OnlineFeatures, SimulatorConfig, simulate};

#[allow(clippy::expect_used)] // a bench that cannot build its data has nothing to measure
fn benches(c: &mut Criterion) {
    let days = std::env::var("VIGIL_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(1.5);
    let sim = simulate(&SimulatorConfig {
        machines: 4,
        days,
        ..SimulatorConfig::default()
    })
    .expect("simulate");
    let frame = sim.frame;
    let spec = FeatureSpec::default();
    let rows = frame.len() as u64;

    let mut group = c.benchmark_group("features");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function(format!("batch_42_features_{rows}_rows"), |b| {
        b.iter(|| spec.compute(&frame).expect("compute"));
    });
    group.bench_function(format!("online_42_features_{rows}_samples"), |b| {
        b.iter(|| {
            let mut online = OnlineFeatures::new(spec.clone()).expect("spec");
            let mut row = vec![0.0; spec.len()];
            let mut sample = [0.0; 4];
            for i in 0..frame.len() {
                for (k, s) in sample.iter_mut().enumerate() {
                    *s = frame.sensor(k)[i];
                }
                online
                    .push_into(frame.machine_id_of(i), frame.time()[i], &sample, &mut row)
                    .expect("push");
            }
            row[0]
        });
    });
    group.finish();
}

criterion_group!(features, benches);
criterion_main!(features);
