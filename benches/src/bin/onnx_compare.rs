//! The Vigil side of `compare/onnx/run.sh`: the data both sides use, the
//! sizes of the model's formats, and Vigil's own prediction times.
//!
//!     onnx_compare export --model DIR --out DIR
//!     onnx_compare time --model DIR --rows FILE.npy --mode batch|row [--forests rf|both]
//!                       [--repeats 5] [--row-count 2000]
//!
//! `export` rebuilds the pipeline's data (the simulator on its embedded
//! defaults, seed 42, the model's feature spec, the pipeline's time-ordered
//! split), writes `train_x.npy`, `train_y.npy` and `test_x.npy` (f64 / i64,
//! C order), the Random Forest alone as ONNX (`rf_exact.onnx`, exact double
//! thresholds as the model folder's; `rf_double.onnx`, the default export), and
//! prints one JSON line of sizes: nodes, and bytes of each format.
//!
//! `time` loads DIR (a model folder, `ModelBundle::save`) and times Vigil's
//! prediction of the rows: `batch` (all rows per call, rayon on the machine's
//! cores; the best of `--repeats` calls) or `row` (the one-row path, the first
//! `--row-count` rows one call each, in the calling thread). `--forests rf`
//! computes the failure probability only, `both` adds the Isolation Forest's
//! score (what the model folder's ONNX file computes). Prints one JSON line.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the one result line, or why it failed

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use vigil_examples::bundle::{
    ModelBundle, ONNX_FILE, RANDOM_FOREST_FILE, failure_probability, failure_probability_row,
};
use vigil_examples::source::default_simulator_config;
use vigil_examples::train::{Splits, TrainConfig};
use vigil_features::{SimulatorConfig, TrainingSet, simulate};
use vigil_forest::{OnnxOptions, OnnxPrecision, Samples};

type Error = Box<dyn std::error::Error>;

fn main() {
    if let Err(e) = run() {
        eprintln!("onnx_compare: {e}");
        std::process::exit(2);
    }
}

/// `--flag value` pairs after the sub-command.
struct Flags(Vec<(String, String)>);

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, Error> {
        if !args.len().is_multiple_of(2) {
            return Err("flags come in `--flag value` pairs (see the file's header)".into());
        }
        Ok(Flags(
            args.chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
        ))
    }

    fn get(&self, flag: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self, flag: &str) -> Result<PathBuf, Error> {
        Ok(PathBuf::from(
            self.get(flag).ok_or(format!("{flag} is required"))?,
        ))
    }

    fn number(&self, flag: &str, default: usize) -> Result<usize, Error> {
        self.get(flag).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("{flag}: {e}").into())
        })
    }
}

fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args
        .split_first()
        .ok_or("export or time (see the file's header)")?;
    let flags = Flags::parse(rest)?;
    let model_dir = flags.path("--model")?;
    let bundle = ModelBundle::load(&model_dir)?;
    match command.as_str() {
        "export" => export(&bundle, &model_dir, &flags.path("--out")?),
        "time" => time(&bundle, &flags),
        other => Err(format!("unknown command {other}: export or time").into()),
    }
}

fn export(bundle: &ModelBundle, model_dir: &Path, out: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(out)?;
    let config = SimulatorConfig {
        seed: 42,
        ..default_simulator_config()
    };
    let sim = simulate(&config)?;
    let set = TrainingSet::build(&sim.frame, &bundle.feature_spec)?;
    let horizon = bundle.meta.label_horizon_minutes;
    let splits = Splits::by_time(&set, &TrainConfig::default(), horizon)?;
    let train = &splits.train_validation;
    let labels: Vec<i64> = train.failure.iter().map(|&y| i64::from(y)).collect();
    write_npy_f64(&out.join("train_x.npy"), train.features.values.view())?;
    write_npy_i64(&out.join("train_y.npy"), &labels)?;
    write_npy_f64(&out.join("test_x.npy"), splits.test.features.values.view())?;

    let rf = &bundle.random_forest;
    let exact = rf.to_onnx(&OnnxOptions {
        precision: OnnxPrecision::ExactDouble,
        ..OnnxOptions::default()
    })?;
    let double = rf.to_onnx(&OnnxOptions::default())?;
    std::fs::write(out.join("rf_exact.onnx"), &exact)?;
    std::fs::write(out.join("rf_double.onnx"), &double)?;
    let size = |name: &str| std::fs::metadata(model_dir.join(name)).map(|m| m.len());
    let postcard = size(RANDOM_FOREST_FILE)?;
    println!(
        "{}",
        serde_json::json!({
            "rf_trees": rf.n_trees(),
            "rf_nodes": rf.n_nodes(),
            "rf_postcard_bytes": postcard,
            "rf_onnx_exact_bytes": exact.len(),
            "rf_onnx_double_bytes": double.len(),
            "model_onnx_bytes": size(ONNX_FILE)?,
            "train_rows": train.len(),
            "test_rows": splits.test.len(),
        })
    );
    Ok(())
}

fn time(bundle: &ModelBundle, flags: &Flags) -> Result<(), Error> {
    let rows = read_npy_f64(&flags.path("--rows")?)?;
    let both = match flags.get("--forests").unwrap_or("both") {
        "rf" => false,
        "both" => true,
        other => return Err(format!("--forests rf|both, not {other}").into()),
    };
    let mode = flags.get("--mode").ok_or("--mode batch|row is required")?;
    let repeats = flags.number("--repeats", 5)?.max(1);
    let (calls, rows_per_call, seconds, checksum) = match mode {
        "batch" => {
            let x = Samples::named(&rows, &bundle.meta.feature_names)?;
            let mut best = f64::INFINITY;
            let mut checksum = 0.0;
            for _ in 0..repeats {
                let start = Instant::now();
                let p = failure_probability(&bundle.random_forest, x)?;
                let s = if both {
                    bundle.isolation_forest.score_samples(x)?.to_vec()
                } else {
                    Vec::new()
                };
                best = best.min(start.elapsed().as_secs_f64());
                checksum = p.iter().chain(&s).sum::<f64>();
            }
            (1, rows.nrows(), best, checksum)
        }
        "row" => {
            let n = flags.number("--row-count", 2000)?.min(rows.nrows());
            let start = Instant::now();
            let mut checksum = 0.0;
            for row in rows.outer_iter().take(n) {
                let row = row.as_slice().ok_or("rows are not contiguous")?;
                checksum += failure_probability_row(&bundle.random_forest, row)?;
                if both {
                    checksum += bundle.isolation_forest.score_row(row)?;
                }
            }
            (n, 1, start.elapsed().as_secs_f64(), checksum)
        }
        other => return Err(format!("--mode batch|row, not {other}").into()),
    };
    println!(
        "{}",
        serde_json::json!({
            "side": "vigil",
            "forests": if both { "both" } else { "rf" },
            "mode": mode,
            "rows": calls * rows_per_call,
            "calls": calls,
            "threads": if mode == "row" { 1 } else { rayon::current_num_threads() },
            "seconds": seconds,
            "us_per_row": seconds * 1e6 / (calls * rows_per_call) as f64,
            "us_per_call": seconds * 1e6 / calls as f64,
            "checksum": checksum,
        })
    );
    Ok(())
}

/// NumPy's `.npy` version 1.0 header for a C-order array.
fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to 64 bytes.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

fn write_npy_f64(path: &Path, x: ArrayView2<'_, f64>) -> Result<(), Error> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&npy_header(
        "<f8",
        &format!("({}, {})", x.nrows(), x.ncols()),
    ))?;
    for v in x.iter() {
        file.write_all(&v.to_le_bytes())?;
    }
    Ok(file.flush()?)
}

fn write_npy_i64(path: &Path, y: &[i64]) -> Result<(), Error> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&npy_header("<i8", &format!("({},)", y.len())))?;
    for v in y {
        file.write_all(&v.to_le_bytes())?;
    }
    Ok(file.flush()?)
}

/// Reads what [`write_npy_f64`] wrote (and NumPy's own `<f8` C-order 2-D files).
fn read_npy_f64(path: &Path) -> Result<Array2<f64>, Error> {
    let bytes = std::fs::read(path)?;
    let bad = || format!("{}: not a 2-D <f8 C-order .npy file", path.display());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad().into());
    }
    let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = std::str::from_utf8(bytes.get(10..10 + header_len).ok_or_else(bad)?)?;
    if !header.contains("'<f8'") || !header.contains("'fortran_order': False") {
        return Err(bad().into());
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(bad)?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [n, d] = dims[..] else {
        return Err(bad().into());
    };
    let data = &bytes[10 + header_len..];
    if data.len() != n * d * 8 {
        return Err(bad().into());
    }
    let values = data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Ok(Array2::from_shape_vec((n, d), values)?)
}
