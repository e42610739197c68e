//! Writes the reference pipeline's training data as CSV for
//! `benches/compare/forest/compare.py`: vigil-features' simulator, the default
//! 42-feature spec, sanitised as `TrainingSet::build` does, the `failure` label,
//! and the time-ordered split the pipeline uses (cut-off at a time quantile,
//! training rows end one label horizon before it, so no training label looks into
//! the test period).
//!
//! ```text
//! forest_telemetry_csv OUT.csv [--machines 10] [--days 7] [--seed 42] [--train-fraction 0.8]
//! ```
//! Columns: `time_us,machine,split,<42 feature names>,failure`, rows in time order
//! (stable over machines); `split` is `train`, `test` or `embargo` (dropped by the
//! comparison, as the pipeline drops them). Prints one JSON summary line.
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::io::{BufWriter, Write};

use vigil_features::{
    FeatureSpec, SimulatorConfig, TrainingSet, WindowLength, cutoff_at_fraction, simulate,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or(format!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .ok_or("usage: forest_telemetry_csv OUT.csv [--machines N] [--days D] [--seed S] [--train-fraction F]")?
        .clone();
    let config = SimulatorConfig {
        machines: flag(&args, "--machines", 10)?,
        days: flag(&args, "--days", 7.0)?,
        seed: flag(&args, "--seed", 42)?,
        ..Default::default()
    };
    let train_fraction: f64 = flag(&args, "--train-fraction", 0.8)?;
    let sim = simulate(&config)?;
    let spec = FeatureSpec::default();
    let set = TrainingSet::build(&sim.frame, &spec)?;
    let time = &set.features.time;
    let cutoff = cutoff_at_fraction(time, train_fraction)?;
    let embargo = WindowLength::seconds((config.label_horizon_minutes * 60.0).round() as i64);
    let train_end = cutoff.saturating_sub(embargo.as_micros());

    // Time order, stable over the (machine, time) order the pipeline produces.
    let mut order: Vec<usize> = (0..set.len()).collect();
    order.sort_by_key(|&i| time[i]);

    let mut w = BufWriter::with_capacity(1 << 20, File::create(&out)?);
    write!(w, "time_us,machine,split")?;
    for name in &set.features.names {
        write!(w, ",{name}")?;
    }
    writeln!(w, ",failure")?;
    let (mut n_train, mut n_test, mut pos_train, mut pos_test) = (0usize, 0usize, 0usize, 0usize);
    let mut line = String::with_capacity(1024);
    for &i in &order {
        let t = time[i];
        let split = if t >= cutoff {
            n_test += 1;
            pos_test += usize::from(set.failure[i]);
            "test"
        } else if t < train_end {
            n_train += 1;
            pos_train += usize::from(set.failure[i]);
            "train"
        } else {
            "embargo"
        };
        line.clear();
        use std::fmt::Write as _;
        write!(line, "{t},{},{split}", set.features.machine[i])?;
        for v in set.features.values.row(i) {
            // `{}` prints the shortest text that parses back to the same f64.
            write!(line, ",{v}")?;
        }
        writeln!(line, ",{}", set.failure[i])?;
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    println!(
        "{}",
        serde_json::json!({
            "path": out, "rows": set.len(), "features": set.features.values.ncols(),
            "train_rows": n_train, "test_rows": n_test,
            "train_positive_rate": pos_train as f64 / n_train.max(1) as f64,
            "test_positive_rate": pos_test as f64 / n_test.max(1) as f64,
            "machines": config.machines, "days": config.days, "seed": config.seed,
        })
    );
    Ok(())
}
