//! Driver for `compare/features/compare.py`: generates the benchmark CSV with the
//! simulator and times vigil-features on it (file reading separately from the
//! feature computation), printing one JSON object.
//!
//! ```text
//! features_compare generate PATH [--machines 20] [--samples 50000]
//! features_compare run PATH [--repeat 5] [--threads 2]
//! ```

use std::time::Instant;

use vigil_features::{
    CsvOptions, FeatureSpec, OnlineFeatures, SimulatorConfig, read_csv, simulate, write_csv,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn flag(args: &[String], name: &str, default: usize) -> Result<usize, Error> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or(format!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

/// Peak resident set size of this process so far, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time (user + system) of the calling thread, in seconds (Linux, 10 ms ticks).
/// On a shared machine wall clock includes time spent waiting for a core.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            let fields: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn generate(path: &str, machines: usize, samples: usize) -> Result<(), Error> {
    // Enough simulated days for `samples` rows per machine after drops and downtime.
    let mut days = samples as f64 * 10.0 / 86_400.0 * 1.4;
    loop {
        let sim = simulate(&SimulatorConfig {
            machines,
            days,
            ..SimulatorConfig::default()
        })?;
        let ranges = sim.frame.machine_ranges();
        if ranges.iter().all(|(_, r)| r.len() >= samples) {
            let rows: Vec<usize> = ranges
                .iter()
                .flat_map(|(_, r)| r.start..r.start + samples)
                .collect();
            write_csv(&sim.frame.select_rows(&rows), path)?;
            return Ok(());
        }
        days *= 1.2;
    }
}

#[allow(clippy::print_stdout)] // the driver's output is its JSON line
fn run(path: &str, repeat: usize) -> Result<(), Error> {
    let spec = FeatureSpec::default();
    let mut read_s = Vec::new();
    let mut frame = None;
    for _ in 0..repeat.min(3) {
        let start = Instant::now();
        let (f, _) = read_csv(path, &CsvOptions::default())?;
        read_s.push(start.elapsed().as_secs_f64());
        frame = Some(f);
    }
    let frame = frame.ok_or("no repeat")?;
    let rss_after_read = peak_rss_mib();
    let mut compute_s = Vec::new();
    let mut checksum = 0.0;
    for _ in 0..repeat {
        let start = Instant::now();
        let matrix = spec.compute(&frame)?;
        compute_s.push(start.elapsed().as_secs_f64());
        checksum = matrix.values.iter().filter(|v| v.is_finite()).sum::<f64>();
    }
    let rss_after_compute = peak_rss_mib();
    // Online path, one thread: every row pushed in time order per machine.
    let mut online = OnlineFeatures::new(spec.clone())?;
    let mut row = vec![0.0; spec.len()];
    let mut sample = [0.0; 4];
    let start = Instant::now();
    let cpu_start = thread_cpu_s();
    for i in 0..frame.len() {
        for (k, s) in sample.iter_mut().enumerate() {
            *s = frame.sensor(k)[i];
        }
        online.push_into(frame.machine_id_of(i), frame.time()[i], &sample, &mut row)?;
    }
    let online_s = start.elapsed().as_secs_f64();
    let online_cpu_s = thread_cpu_s() - cpu_start;
    let out = serde_json::json!({
        "rows": frame.len(),
        "machines": frame.machine_ids().len(),
        "features": spec.len(),
        "threads": rayon::current_num_threads(),
        "read_s": median(read_s),
        "compute_s": median(compute_s.clone()),
        "compute_runs_s": compute_s,
        "online_samples_per_s": frame.len() as f64 / online_s,
        "online_samples_per_cpu_s": frame.len() as f64 / online_cpu_s,
        "peak_rss_after_read_mib": rss_after_read,
        "peak_rss_after_compute_mib": rss_after_compute,
        "output_matrix_mib": (frame.len() * spec.len() * 8) as f64 / 1048576.0,
        "checksum": checksum,
    });
    println!("{out}");
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: features_compare (generate|run) PATH [--machines N] [--samples N] [--repeat N] [--threads N]";
    let (Some(command), Some(path)) = (args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    match command.as_str() {
        "generate" => generate(
            path,
            flag(&args, "--machines", 20)?,
            flag(&args, "--samples", 50_000)?,
        ),
        "run" => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(flag(&args, "--threads", 2)?)
                .build()?;
            pool.install(|| run(path, flag(&args, "--repeat", 5)?))
        }
        _ => Err(usage.into()),
    }
}
