//! Logs N metric values (one key, steps 0..N) to a tracking store through the
//! normal `ActiveRun` API and prints the end-to-end time as JSON: from the
//! first `log_metric_at` call until `finish()` returned, i.e. until every value
//! is stored on the server. The comparison script runs it side by side with
//! MLflow's Python client against the same server.
//!
//! usage: tracking_log10k <tracking-uri> [n=10000] [repeats=5]
#![allow(clippy::print_stdout)] // a driver binary: its output is the result

use std::time::Instant;

use vigil_tracking_client::{RunOptions, Tracker, TrackingConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let uri = args
        .next()
        .ok_or("usage: tracking_log10k <tracking-uri> [n] [repeats]")?;
    let n: i64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let tracker = Tracker::new(TrackingConfig::builder().uri(&uri)?.build()?)?;
    let exp = tracker.get_or_create_experiment("vigil-bench-tracking")?;
    let mut seconds = Vec::with_capacity(repeats);
    let mut check_run = String::new();
    for _ in 0..repeats {
        let run = tracker.start_run(RunOptions::new(&exp.experiment_id).name("rust-log10k"))?;
        let start = Instant::now();
        for step in 0..n {
            run.log_metric_at("loss", 1.0 / (step + 1) as f64, step)?;
        }
        check_run = run.run_id().to_string();
        run.finish()?;
        seconds.push(start.elapsed().as_secs_f64());
    }
    let stored = tracker
        .store()
        .get_metric_history(&check_run, "loss")?
        .len();
    if stored as i64 != n {
        return Err(format!("expected {n} stored values, found {stored}").into());
    }
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{{\"client\":\"vigil-rust\",\"n\":{n},\"median_s\":{:.4},\"min_s\":{:.4},\"runs_s\":{:?}}}",
        sorted[sorted.len() / 2],
        sorted[0],
        seconds
    );
    Ok(())
}
