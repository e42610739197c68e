//! Computes the 42 reference features on simulated telemetry and prints the
//! wall and on-CPU time of the batch and online paths, one thread each: a
//! quick local speed check with no Python (the side-by-side comparison with
//! pandas and polars is `benches/compare/features/compare.py`). On-CPU time
//! (Linux: `/proc/thread-self/schedstat`) stays meaningful when other jobs
//! share the machine.
//!
//! ```text
//! cargo run --release -p vigil-features --example compute_speed -- [machines] [days] [repeat]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use vigil_features::{FeatureSpec, OnlineFeatures, SimulatorConfig, simulate};

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let machines = args.first().copied().unwrap_or(4.0) as usize;
    let days = args.get(1).copied().unwrap_or(7.0);
    let repeat = args.get(2).copied().unwrap_or(3.0) as usize;
    let sim = simulate(&SimulatorConfig {
        machines,
        days,
        ..Default::default()
    })
    .expect("simulate");
    let frame = &sim.frame;
    let spec = FeatureSpec::default();
    // One thread: CPU time per row is what the profile comparison needs.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let mut batch = Vec::new();
    let mut online = Vec::new();
    let mut batch_cpu = Vec::new();
    let mut online_cpu = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let (m, cpu) = pool.install(|| {
            let c = thread_cpu_seconds();
            let m = spec.compute(frame).expect("compute");
            (m, thread_cpu_seconds() - c)
        });
        batch.push(t.elapsed().as_secs_f64());
        batch_cpu.push(cpu);
        std::hint::black_box(&m);

        let mut state = OnlineFeatures::new(spec.clone()).expect("online");
        let mut row = vec![0.0; spec.len()];
        let mut sample = vec![0.0; 4];
        let t = Instant::now();
        let c = thread_cpu_seconds();
        for i in 0..frame.len() {
            for (k, s) in sample.iter_mut().enumerate() {
                *s = frame.sensor(k)[i];
            }
            state
                .push_into(frame.machine_id_of(i), frame.time()[i], &sample, &mut row)
                .expect("push");
            std::hint::black_box(&row);
        }
        online_cpu.push(thread_cpu_seconds() - c);
        online.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rows = frame.len() as f64;
    let b = median(&mut batch);
    let o = median(&mut online);
    let bc = median(&mut batch_cpu);
    let oc = median(&mut online_cpu);
    println!(
        "rows {} | batch 42 features (1 thread) {:.3} s = {:.2} M rows/s | online {:.3} s = {:.2} M samples/s",
        frame.len(),
        b,
        rows / b / 1e6,
        o,
        rows / o / 1e6
    );
    println!(
        "on-CPU | batch {:.3} s = {:.2} M rows per CPU-second | online {:.3} s = {:.2} M samples per CPU-second",
        bc,
        rows / bc / 1e6,
        oc,
        rows / oc / 1e6
    );
}

/// This thread's on-CPU time in seconds (Linux); NaN elsewhere.
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 * 1e-9)
}
