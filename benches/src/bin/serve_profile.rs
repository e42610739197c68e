//! A fixed, repeatable `serve` workload in one process, for instruction counts
//! (`valgrind --tool=callgrind`) and `perf`: POST /predict requests through the
//! whole router (JSON in, scoring core, JSON out) with no network, or the same
//! samples straight into the scoring core (`--core`: the in-process per-sample
//! cost the queueing bound in RESULTS.md uses).
//!
//!     serve_profile --model DIR [--machines 1000] [--batch 100] [--requests 200] [--core]
//!
//! DIR is a model folder (`ModelBundle::save`; the pipeline's
//! `vigil-output/<run>/model`). Samples are what `compare/serve/vigil.lua`
//! sends: machine k % machines, 10 s steps per machine, values near the
//! simulator's operating point from a fixed generator. Prints one JSON line:
//! samples, seconds, µs per sample and a checksum of the answers.

#![allow(clippy::print_stdout)] // the one result line

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use vigil_examples::bundle::ModelBundle;
use vigil_examples::scoring::{LoadedModel, Sample, ScoringCore, ScoringPolicy};
use vigil_examples::serve::{AppState, ServeConfig, router};
use vigil_features::format_timestamp;

struct Args {
    model: PathBuf,
    machines: usize,
    batch: usize,
    requests: usize,
    core: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: PathBuf::new(),
        machines: 1000,
        batch: 100,
        requests: 200,
        core: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--model" => args.model = PathBuf::from(value()?),
            "--machines" => args.machines = number(value()?)?,
            "--batch" => args.batch = number(value()?)?,
            "--requests" => args.requests = number(value()?)?,
            "--core" => args.core = true,
            other => return Err(format!("unknown option {other} (see the file's header)")),
        }
    }
    if args.model.as_os_str().is_empty() || args.machines == 0 || args.batch == 0 {
        return Err("--model DIR is required; --machines and --batch must be positive".into());
    }
    Ok(args)
}

/// A small fixed generator (xorshift): the same samples on every run.
struct Values(u64);

impl Values {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The run's samples, request by request.
fn batches(args: &Args, start_micros: i64) -> Vec<Vec<Sample>> {
    let mut values = Values(0x9e37_79b9_7f4a_7c15);
    let mut k = 0usize;
    (0..args.requests)
        .map(|_| {
            (0..args.batch)
                .map(|_| {
                    let step = (k / args.machines) as i64;
                    let sample = Sample {
                        machine_id: format!("M{:05}", k % args.machines),
                        time: start_micros + step * 10_000_000,
                        values: vec![
                            70.0 + 5.0 * values.unit(),
                            0.4 + 0.2 * values.unit(),
                            1450.0 + 100.0 * values.unit(),
                            11.0 + 2.0 * values.unit(),
                        ],
                    };
                    k += 1;
                    sample
                })
                .collect()
        })
        .collect()
}

fn body_json(samples: &[Sample], sensors: &[String]) -> String {
    let items: Vec<String> = samples
        .iter()
        .map(|s| {
            let fields: Vec<String> = sensors
                .iter()
                .zip(&s.values)
                .map(|(name, v)| format!("\"{name}\":{v:.3}"))
                .collect();
            format!(
                "{{\"machine_id\":\"{}\",\"time\":\"{}\",{}}}",
                s.machine_id,
                format_timestamp(s.time),
                fields.join(",")
            )
        })
        .collect();
    format!("{{\"samples\":[{}]}}", items.join(","))
}

fn policy(args: &Args) -> ScoringPolicy {
    ScoringPolicy {
        allow_new_machines: true,
        max_machines: args.machines.max(1),
        max_batch_samples: args.batch,
        ..ScoringPolicy::default()
    }
}

/// Scores every batch straight into the core; returns the checksum.
fn run_core(model: LoadedModel, args: &Args, work: &[Vec<Sample>]) -> Result<f64, String> {
    let core = ScoringCore::new(model, policy(args)).map_err(|e| e.to_string())?;
    let now = i64::MAX / 2;
    let mut checksum = 0.0;
    for batch in work {
        let scored = core.score(batch, now).map_err(|e| e.to_string())?;
        checksum += scored
            .predictions
            .iter()
            .map(|p| p.failure_probability + p.anomaly_score)
            .sum::<f64>();
    }
    Ok(checksum)
}

/// Sends every batch through the router; returns the checksum (response bytes).
fn run_http(model: LoadedModel, args: &Args, work: &[Vec<Sample>]) -> Result<f64, String> {
    let sensors = model.bundle.feature_spec.sensors.clone();
    let bodies: Vec<String> = work.iter().map(|b| body_json(b, &sensors)).collect();
    let config = ServeConfig {
        max_body_bytes: 64 << 20,
        policy: policy(args),
        ..ServeConfig::default()
    };
    let app = router(Arc::new(
        AppState::new(model, config).map_err(|e| e.to_string())?,
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut bytes = 0usize;
        for body in bodies {
            let request = Request::post("/predict")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .map_err(|e| e.to_string())?;
            let response = app
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let text = to_bytes(response.into_body(), usize::MAX)
                .await
                .map_err(|e| e.to_string())?;
            if status != StatusCode::OK {
                return Err(format!("{status}: {}", String::from_utf8_lossy(&text)));
            }
            bytes += text.len();
        }
        Ok(bytes as f64)
    })
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let bundle = ModelBundle::load(&args.model).map_err(|e| e.to_string())?;
    let model = LoadedModel::unregistered(bundle);
    // Samples in the past: `now` for the HTTP path is the wall clock.
    let start = chrono::Utc::now().timestamp_micros() - 400 * 24 * 3_600_000_000;
    let work = batches(&args, start);
    let started = Instant::now();
    let checksum = if args.core {
        run_core(model, &args, &work)?
    } else {
        run_http(model, &args, &work)?
    };
    let seconds = started.elapsed().as_secs_f64();
    let samples = args.requests * args.batch;
    println!(
        "{{\"path\":\"{}\",\"samples\":{samples},\"seconds\":{seconds:.4},\"us_per_sample\":{:.3},\"checksum\":{checksum}}}",
        if args.core { "core" } else { "http" },
        seconds * 1e6 / samples.max(1) as f64
    );
    Ok(())
}
