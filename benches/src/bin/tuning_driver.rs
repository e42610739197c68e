//! Driver for `benches/compare/tuning/compare.py`: runs vigil-tuning on the benchmark
//! functions (quality) and times trials (speed), printing one JSON object per line.
//!
//! ```text
//! tuning_driver quality <function> <seeds> <trials> [tpe|tpe-independent|random]
//!               [--n-ei-candidates N] [--n-startup-trials N]
//! tuning_driver speed <trials> memory
//! tuning_driver speed <trials> postgres <url>
//! ```
//! Functions: branin, hartmann6, rosenbrock5, ackley5, mixed (defined exactly as in
//! compare.py). The two options set the TPE's `TpeParams` fields of those names (default:
//! Optuna's, 24 and 10); they need the sampler argument before them.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line driver: its output is the point

use std::f64::consts::{E, PI};
use std::sync::Arc;
use std::time::Instant;

use vigil_tuning::{
    ObjectiveResult, PostgresStorage, RandomSampler, Study, TpeParams, TpeSampler, Trial,
};

fn branin(t: &mut Trial<'_>) -> ObjectiveResult {
    let x0 = t.suggest_float("x0", -5.0, 10.0)?;
    let x1 = t.suggest_float("x1", 0.0, 15.0)?;
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let tt = 1.0 / (8.0 * PI);
    Ok((x1 - b * x0 * x0 + c * x0 - 6.0).powi(2) + 10.0 * (1.0 - tt) * x0.cos() + 10.0)
}

const H_ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
const H_A: [[f64; 6]; 4] = [
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
];
const H_P: [[f64; 6]; 4] = [
    [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
    [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
    [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
    [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
];

fn hartmann6(t: &mut Trial<'_>) -> ObjectiveResult {
    let mut x = [0.0; 6];
    for (j, xj) in x.iter_mut().enumerate() {
        *xj = t.suggest_float(&format!("x{j}"), 0.0, 1.0)?;
    }
    let mut f = 0.0;
    for i in 0..4 {
        let inner: f64 = (0..6)
            .map(|j| H_A[i][j] * (x[j] - H_P[i][j] * 1e-4).powi(2))
            .sum();
        f -= H_ALPHA[i] * (-inner).exp();
    }
    Ok(f)
}

fn rosenbrock5(t: &mut Trial<'_>) -> ObjectiveResult {
    let mut x = [0.0; 5];
    for (j, xj) in x.iter_mut().enumerate() {
        *xj = t.suggest_float(&format!("x{j}"), -5.0, 10.0)?;
    }
    Ok((0..4)
        .map(|i| 100.0 * (x[i + 1] - x[i] * x[i]).powi(2) + (1.0 - x[i]).powi(2))
        .sum())
}

fn ackley5(t: &mut Trial<'_>) -> ObjectiveResult {
    let mut x = [0.0; 5];
    for (j, xj) in x.iter_mut().enumerate() {
        *xj = t.suggest_float(&format!("x{j}"), -32.768, 32.768)?;
    }
    let s2: f64 = x.iter().map(|v| v * v).sum::<f64>() / 5.0;
    let sc: f64 = x.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>() / 5.0;
    Ok(-20.0 * (-0.2 * s2.sqrt()).exp() - sc.exp() + 20.0 + E)
}

fn mixed(t: &mut Trial<'_>) -> ObjectiveResult {
    let x1 = t.suggest_float("x1", -5.0, 5.0)?;
    let x2 = t.suggest_float_log("x2", 1e-4, 1.0)?;
    let n1 = t.suggest_int("n1", 50, 300)?;
    let n2 = t.suggest_int("n2", 3, 20)?;
    let c = t.suggest_categorical("c", &["A", "B", "C"])?;
    let (s, d) = match c {
        "A" => (-1.0, 0.5),
        "B" => (1.5, 0.0),
        _ => (0.0, 1.0),
    };
    let u = (n1 as f64 - 217.0) / 50.0;
    let v = (n2 as f64 - 7.0) / 4.0;
    Ok((x1 - s).powi(2) / 4.0 + (x2.log10() + 2.0).powi(2) + u * u + v * v + u * v + d)
}

type Objective = fn(&mut Trial<'_>) -> ObjectiveResult;

fn objective(name: &str) -> Option<Objective> {
    Some(match name {
        "branin" => branin,
        "hartmann6" => hartmann6,
        "rosenbrock5" => rosenbrock5,
        "ackley5" => ackley5,
        "mixed" => mixed,
        _ => return None,
    })
}

fn usage() -> ! {
    eprintln!(
        "usage: tuning_driver quality <function> <seeds> <trials> [tpe|tpe-independent|random] [--n-ei-candidates N] [--n-startup-trials N]\n       tuning_driver speed <trials> memory|postgres [url]"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("quality") => {
            let f = objective(args.get(2).map_or("", String::as_str)).unwrap_or_else(|| usage());
            let seeds: u64 = arg(&args, 3);
            let trials: usize = arg(&args, 4);
            let sampler_name = args.get(5).map_or("tpe", String::as_str);
            let mut tpe = TpeParams {
                multivariate: sampler_name != "tpe-independent",
                ..TpeParams::default()
            };
            for pair in args.get(6..).unwrap_or_default().chunks(2) {
                let value = pair.get(1).and_then(|v| v.parse().ok());
                match (pair[0].as_str(), value) {
                    ("--n-ei-candidates", Some(n)) => tpe.n_ei_candidates = n,
                    ("--n-startup-trials", Some(n)) => tpe.n_startup_trials = n,
                    _ => usage(),
                }
            }
            for seed in 0..seeds {
                let builder = Study::builder();
                let study = match sampler_name {
                    "tpe" | "tpe-independent" => {
                        builder.sampler(TpeSampler::with_params(tpe.clone(), seed)?)
                    }
                    "random" => builder.sampler(RandomSampler::new(seed)),
                    _ => usage(),
                }
                .build()?;
                let start = Instant::now();
                study.optimize(trials, None, f)?;
                let secs = start.elapsed().as_secs_f64();
                let trials = study.trials()?;
                let values: Vec<f64> = trials
                    .iter()
                    .map(|t| t.value.unwrap_or(f64::INFINITY))
                    .collect();
                // Internal values (choice index for categoricals), for per-run analysis.
                let params: Vec<std::collections::BTreeMap<&str, f64>> = trials
                    .iter()
                    .map(|t| {
                        t.params
                            .iter()
                            .map(|(k, p)| (k.as_str(), p.internal))
                            .collect()
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"seed": seed, "values": values, "params": params, "seconds": secs})
                );
            }
        }
        Some("speed") => {
            let trials: usize = arg(&args, 2);
            let builder = Study::builder().seed(0);
            let study = match args.get(3).map(String::as_str) {
                Some("memory") => builder.build()?,
                Some("postgres") => {
                    let url = args.get(4).unwrap_or_else(|| usage());
                    // A fresh study per run in a bench-only schema.
                    let storage = PostgresStorage::connect_with_schema(url, "vigil_tuning_bench")?;
                    let name = format!(
                        "speed-{}-{}",
                        std::process::id(),
                        Instant::now().elapsed().as_nanos()
                    );
                    builder
                        .name(name)
                        .shared_storage(Arc::new(storage))
                        .build()?
                }
                _ => usage(),
            };
            let mut marks = Vec::with_capacity(trials + 1);
            let cpu0 = cpu_seconds();
            let start = Instant::now();
            marks.push(0.0);
            for _ in 0..trials {
                study.optimize(1, None, mixed)?;
                marks.push(start.elapsed().as_secs_f64());
            }
            let total = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            let window = |a: usize, b: usize| (marks[b] - marks[a]) / (b - a) as f64 * 1e3;
            let last = trials.saturating_sub(100);
            println!(
                "{}",
                serde_json::json!({
                    "trials": trials,
                    "total_s": total,
                    "mean_ms_per_trial": total / trials as f64 * 1e3,
                    "cpu_ms_per_trial": cpu / trials as f64 * 1e3,
                    "last100_ms_per_trial": window(last, trials),
                })
            );
        }
        _ => usage(),
    }
    Ok(())
}

/// CPU time of this process so far (Linux `/proc/self/schedstat`; 0 elsewhere). The
/// machine is shared, so CPU time is reported beside wall time.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns * 1e-9)
}
