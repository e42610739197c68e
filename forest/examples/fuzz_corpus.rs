//! Writes small valid models (binary and JSON, both forest kinds) as seed inputs
//! for the loader fuzz target, so the fuzzer starts from well-formed files and
//! mutates its way into their corners instead of guessing the format.
//!
//! ```text
//! cargo run -p vigil-forest --example fuzz_corpus -- forest/fuzz/corpus/load_model
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use ndarray::Array2;
use vigil_forest::{IsolationForestParams, MaxFeatures, RandomForestParams};

fn main() {
    let dir =
        std::path::PathBuf::from(std::env::args().nth(1).expect("usage: fuzz_corpus OUT_DIR"));
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    // Tiny data with a missing value, so models carry the missing-direction flag.
    let x = Array2::from_shape_fn((24, 3), |(i, j)| {
        if i == 5 && j == 1 {
            f64::NAN
        } else {
            ((i * 7 + j * 5) % 11) as f64
        }
    });
    let binary: Vec<usize> = (0..24).map(|i| usize::from(i % 3 == 0)).collect();
    let multi: Vec<usize> = (0..24).map(|i| [2, 5, 9][i % 3]).collect();
    let mut written = 0;
    let mut write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).expect("write corpus file");
        written += 1;
    };
    for (name, y, trees, depth) in [
        ("rf_binary", &binary, 2, None),
        ("rf_multi", &multi, 3, Some(3)),
        ("rf_stump", &binary, 1, Some(1)),
    ] {
        let rf = RandomForestParams {
            n_estimators: trees,
            max_depth: depth,
            max_features: MaxFeatures::All,
            seed: 1,
            ..Default::default()
        }
        .fit(x.view(), y)
        .expect("fit");
        write(&format!("{name}.bin"), &rf.to_bytes());
        write(&format!("{name}.json"), rf.to_json().as_bytes());
    }
    let iso = IsolationForestParams {
        n_estimators: 2,
        seed: 1,
        ..Default::default()
    }
    .fit(x.view())
    .expect("fit");
    write("if.bin", &iso.to_bytes());
    write("if.json", iso.to_json().as_bytes());
    println!("wrote {written} files to {}", dir.display());
}
