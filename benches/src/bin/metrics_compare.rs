//! Driver for `benches/compare/metrics/compare.py`: times vigil-metrics on the
//! data the script wrote and prints one JSON line of results.
//!
//! Usage: `metrics_compare <data-dir> <repeats>`; the directory holds
//! `y_true.u8`, `y_score.f64` (little-endian) and `y_pred.u8`.

use std::time::Instant;

use vigil_metrics::{confusion_matrix, precision_recall_curve, roc_auc_score};

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Median of `repeats` timings of `f`, in seconds, and the last result.
fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let out = f();
        times.push(start.elapsed().as_secs_f64());
        last = Some(out);
    }
    times.sort_by(f64::total_cmp);
    match last {
        Some(out) => (times[times.len() / 2], out),
        None => unreachable!("at least one repeat runs"),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        return Err("usage: metrics_compare <data-dir> <repeats>".into());
    }
    let dir = std::path::Path::new(&args[1]);
    let repeats: usize = args[2].parse().map_err(|e| format!("repeats: {e}"))?;
    let y_true = read(&dir.join("y_true.u8"))?;
    let y_pred = read(&dir.join("y_pred.u8"))?;
    let y_score: Vec<f64> = read(&dir.join("y_score.f64"))?
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect();

    let (t_auc, auc) = time(repeats, || roc_auc_score(&y_true, &y_score));
    let auc = auc.map_err(|e| e.to_string())?;
    let (t_pr, pr) = time(repeats, || precision_recall_curve(&y_true, &y_score));
    let pr = pr.map_err(|e| e.to_string())?;
    let (t_cm, cm) = time(repeats, || confusion_matrix(&y_true, &y_pred, None));
    let cm = cm.map_err(|e| e.to_string())?;

    let out = serde_json::json!({
        "threads": rayon::current_num_threads(),
        "roc_auc_score": {"seconds": t_auc, "value": auc},
        "precision_recall_curve": {"seconds": t_pr, "n_thresholds": pr.thresholds.len(),
            "precision_mid": pr.precision[pr.precision.len() / 2], "recall_mid": pr.recall[pr.recall.len() / 2]},
        "confusion_matrix": {"seconds": t_cm, "counts": cm.rows()},
    });
    #[allow(clippy::print_stdout)] // a driver binary's output is its purpose
    {
        println!("{out}");
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("metrics_compare: {e}");
        }
        std::process::exit(1);
    }
}
