//! Driver for `benches/compare/forest/compare.py`: fits vigil-forest on data the
//! script wrote, times fit and prediction, writes predictions for the script to
//! score with the same metric code as the Python models.
//!
//! Data directory layout (little-endian, row-major): `meta.json` with `n_train`,
//! `n_test`, `n_features`; `x_train.f64`, `y_train.f64`, `x_test.f64`.
//!
//! ```text
//! forest_compare --dir DIR --model rf|if --threads 2 --seed 0 --n-estimators 100 \
//!     [--max-features sqrt|log2|all|<count>] [--max-depth D] [--min-samples-leaf L] \
//!     [--contamination auto|F] --out preds.f64 \
//!     [--save-model FILE] [--load-model FILE] [--repeat N]
//! ```
//! `--load-model` skips the fit (for profiling prediction alone); `--repeat` runs
//! batch prediction N times and reports the fastest.
//! Prints one JSON line: timings in seconds and model size.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array2;
use vigil_forest::{Contamination, IsolationForestParams, MaxFeatures, RandomForestParams};

fn read_f64(path: &PathBuf) -> Vec<f64> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn write_f64(path: &str, v: &[f64]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    fs::write(path, bytes).expect("write predictions");
}

/// Runs `f` `n` times (at least once); returns the last result and the fastest time.
fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (T, f64) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        last = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (last.unwrap(), best)
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
    let dir = PathBuf::from(get("dir", "."));
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("meta.json")).expect("meta.json"))
            .expect("meta json");
    let n_train = meta["n_train"].as_u64().unwrap() as usize;
    let n_test = meta["n_test"].as_u64().unwrap() as usize;
    let nf = meta["n_features"].as_u64().unwrap() as usize;
    let x_train = Array2::from_shape_vec((n_train, nf), read_f64(&dir.join("x_train.f64")))
        .expect("x_train shape");
    let x_test = Array2::from_shape_vec((n_test, nf), read_f64(&dir.join("x_test.f64")))
        .expect("x_test shape");
    let threads: usize = get("threads", "2").parse().unwrap();
    let seed: u64 = get("seed", "0").parse().unwrap();
    let n_estimators: usize = get("n-estimators", "100").parse().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let out = get("out", "");
    let repeat: usize = get("repeat", "1").parse().unwrap();
    let model = get("model", "rf");
    pool.install(|| {
        if model == "rf" {
            let y: Vec<f64> = read_f64(&dir.join("y_train.f64"));
            let max_features = match get("max-features", "sqrt").as_str() {
                "sqrt" => MaxFeatures::Sqrt,
                "log2" => MaxFeatures::Log2,
                "all" => MaxFeatures::All,
                c => MaxFeatures::Count(c.parse().unwrap()),
            };
            let params = RandomForestParams {
                n_estimators,
                seed,
                max_features,
                max_depth: opt.get("max-depth").map(|d| d.parse().unwrap()),
                min_samples_leaf: get("min-samples-leaf", "1").parse().unwrap(),
                ..Default::default()
            };
            let t = Instant::now();
            let rf = match opt.get("load-model") {
                Some(p) => vigil_forest::RandomForest::from_bytes(&fs::read(p).expect("read model"))
                    .expect("load model"),
                None => params.fit(x_train.view(), &y).expect("fit"),
            };
            let fit_s = t.elapsed().as_secs_f64();
            if let Some(p) = opt.get("save-model") {
                fs::write(p, rf.to_bytes()).expect("save model");
            }
            let (proba, predict_s) = best_of(repeat, || rf.predict_proba(x_test.view()).expect("predict"));
            // One-row latency: median over many calls on test rows.
            let mut buf = vec![0.0; rf.classes().len()];
            let mut lat = Vec::new();
            for r in 0..n_test.min(2000) {
                let row = x_test.row(r);
                let row = row.as_slice().unwrap();
                let t = Instant::now();
                rf.predict_proba_row_into(row, &mut buf).unwrap();
                lat.push(t.elapsed().as_secs_f64());
            }
            lat.sort_by(f64::total_cmp);
            let bytes = rf.to_bytes().len();
            if !out.is_empty() {
                write_f64(&out, proba.as_slice().unwrap());
            }
            println!(
                "{}",
                serde_json::json!({
                    "fit_s": fit_s, "predict_s": predict_s,
                    "row_median_us": lat.get(lat.len() / 2).copied().unwrap_or(0.0) * 1e6,
                    "n_nodes": rf.n_nodes(), "bytes": bytes, "max_depth": rf.max_depth(),
                    "n_classes": rf.classes().len(),
                })
            );
        } else {
            let contamination = match get("contamination", "auto").as_str() {
                "auto" => Contamination::Auto,
                f => Contamination::Fraction(f.parse().unwrap()),
            };
            let params = IsolationForestParams { n_estimators, seed, contamination, ..Default::default() };
            let t = Instant::now();
            let iso = match opt.get("load-model") {
                Some(p) => vigil_forest::IsolationForest::from_bytes(&fs::read(p).expect("read model"))
                    .expect("load model"),
                None => params.fit(x_train.view()).expect("fit"),
            };
            let fit_s = t.elapsed().as_secs_f64();
            if let Some(p) = opt.get("save-model") {
                fs::write(p, iso.to_bytes()).expect("save model");
            }
            let (scores, score_s) = best_of(repeat, || iso.score_samples(x_test.view()).expect("score"));
            if !out.is_empty() {
                write_f64(&out, scores.as_slice().unwrap());
            }
            println!("{}", serde_json::json!({"fit_s": fit_s, "score_s": score_s, "bytes": iso.to_bytes().len()}));
        }
    });
}
