//! Times vigil-forest's TreeSHAP for benches/compare/shap/run.sh.
//!
//!     vigil-shap-bench fit DIR            fit the forests, write DIR/compare_model.json and DIR/rows.json
//!     vigil-shap-bench batch DIR THREADS  explain DIR/rows.json with the comparison forest; print JSON
//!     vigil-shap-bench row DIR            one-row latency of a pipeline-sized forest; print JSON
//!     vigil-shap-bench save-pipeline DIR  fit the pipeline-sized forest, write DIR/pipeline_model.json
//!     vigil-shap-bench explain-rows DIR N explain N rows one at a time with DIR/pipeline_model.json
//!                                         (a driver for `valgrind --tool=callgrind`)
//!                                         (fits it once, cached in DIR/pipeline_model.json)
//!     vigil-shap-bench rows DIR N         explain N rows one at a time with the cached pipeline
//!                                         forest, no timing (a driver for valgrind --tool=callgrind)
use std::time::Instant;

use ndarray::Array2;
use vigil_forest::{MaxFeatures, MaxSamples, RandomForest, RandomForestParams};

/// SplitMix64 in [0, 1).
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 42 features like the pipeline's, a rare positive class (~8 %), 2 % missing.
fn data(rows: usize, seed: u64) -> (Array2<f64>, Vec<u8>) {
    let mut m = Mix(seed);
    let mut x = Array2::from_shape_fn((rows, 42), |_| m.next());
    let y = (0..rows)
        .map(|r| {
            let s = x[[r, 0]] + 0.8 * x[[r, 1]] * x[[r, 2]] + 0.5 * x[[r, 3]] + 0.3 * m.next();
            u8::from(s > 1.75)
        })
        .collect();
    for v in x.iter_mut() {
        if m.next() < 0.02 {
            *v = f64::NAN;
        }
    }
    (x, y)
}

fn comparison_forest() -> RandomForest {
    let (x, y) = data(20_000, 1);
    RandomForestParams {
        n_estimators: 100,
        max_depth: Some(8),
        seed: 1,
        ..Default::default()
    }
    .fit(&x, &y)
    .unwrap()
}

/// The served model's tuned parameters (benches/RESULTS.md, serve: 175 trees,
/// depth 19, log2, leaf 6, split 14, 40,000 rows per tree).
fn pipeline_forest() -> RandomForest {
    let (x, y) = data(60_000, 2);
    RandomForestParams {
        n_estimators: 175,
        max_depth: Some(19),
        max_features: MaxFeatures::Log2,
        min_samples_leaf: 6,
        min_samples_split: 14,
        max_samples: Some(MaxSamples::Count(40_000)),
        seed: 2,
        ..Default::default()
    }
    .fit(&x, &y)
    .unwrap()
}

/// The pipeline-sized forest, fitted once per DIR.
fn cached_pipeline_forest(dir: &std::path::Path) -> RandomForest {
    let path = dir.join("pipeline_model.json");
    if let Ok(json) = std::fs::read_to_string(&path) {
        return RandomForest::from_json(&json).unwrap();
    }
    let model = pipeline_forest();
    std::fs::write(&path, model.to_json()).unwrap();
    model
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(&args[2]);
    match args[1].as_str() {
        "fit" => {
            let model = comparison_forest();
            std::fs::write(dir.join("compare_model.json"), model.to_json()).unwrap();
            let (rows, _) = data(10_000, 3);
            let rows: Vec<Vec<Option<f64>>> = rows
                .rows()
                .into_iter()
                .map(|r| r.iter().map(|v| (!v.is_nan()).then_some(*v)).collect())
                .collect();
            std::fs::write(dir.join("rows.json"), serde_json::to_string(&rows).unwrap()).unwrap();
        }
        "batch" => {
            let threads: usize = args[3].parse().unwrap();
            let model = RandomForest::from_json(
                &std::fs::read_to_string(dir.join("compare_model.json")).unwrap(),
            )
            .unwrap();
            let rows: Vec<Vec<Option<f64>>> =
                serde_json::from_str(&std::fs::read_to_string(dir.join("rows.json")).unwrap())
                    .unwrap();
            let x =
                Array2::from_shape_fn((rows.len(), 42), |(i, j)| rows[i][j].unwrap_or(f64::NAN));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let start = Instant::now();
            let e = pool.install(|| model.shap_values(&x, 1).unwrap());
            let seconds = start.elapsed().as_secs_f64();
            let first: Vec<f64> = e.values.row(0).to_vec();
            println!(
                "{}",
                serde_json::json!({"tool": "vigil", "threads": threads, "rows": x.nrows(), "seconds": seconds,
                    "expected_value": e.expected_value, "row0": first,
                    "nodes": model.n_nodes(), "max_depth": model.max_depth()})
            );
        }
        "row" => {
            let model = cached_pipeline_forest(dir);
            let (x, _) = data(2_000, 4);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let mut times: Vec<f64> = pool.install(|| {
                x.rows()
                    .into_iter()
                    .map(|r| {
                        let row = r.to_vec();
                        let start = Instant::now();
                        std::hint::black_box(model.shap_values_row(&row, 1).unwrap());
                        start.elapsed().as_secs_f64()
                    })
                    .collect()
            });
            times.sort_by(f64::total_cmp);
            let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize] * 1e6;
            println!(
                "{}",
                serde_json::json!({"tool": "vigil", "what": "one row, 1 thread", "trees": model.n_trees(),
                    "nodes": model.n_nodes(), "max_depth": model.max_depth(),
                    "p50_us": q(0.5), "p90_us": q(0.9), "p99_us": q(0.99)})
            );
        }
        "rows" => {
            let n: usize = args[3].parse().unwrap();
            let model = cached_pipeline_forest(dir);
            let (x, _) = data(n, 4);
            let mut sum = 0.0;
            for r in x.rows() {
                let e = model.shap_values_row(r.as_slice().unwrap(), 1).unwrap();
                sum += e.values.sum();
            }
            println!("{sum}");
        }
        "save-pipeline" => {
            std::fs::write(dir.join("pipeline_model.json"), pipeline_forest().to_json()).unwrap();
        }
        "explain-rows" => {
            let n: usize = args[3].parse().unwrap();
            let model = RandomForest::from_json(
                &std::fs::read_to_string(dir.join("pipeline_model.json")).unwrap(),
            )
            .unwrap();
            let (x, _) = data(n, 4);
            let mut sum = 0.0;
            for r in x.rows() {
                let row = r.to_vec();
                sum += model.shap_values_row(&row, 1).unwrap().values.sum();
            }
            println!("{sum}");
        }
        other => panic!("unknown command {other}"),
    }
}
