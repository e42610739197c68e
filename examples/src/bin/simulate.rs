//! Writes simulated machine telemetry to PostgreSQL / TimescaleDB or CSV.
//!
//! ```text
//! simulate --to csv --output telemetry.csv               # a week of 4 machines, at once
//! simulate --to postgres --machines 10 --days 30         # into $POSTGRES_* (schema created)
//! simulate --to postgres --follow                        # forever, in real time from now
//! simulate --to postgres --follow --speed 60             # a minute of telemetry per second
//! ```
//!
//! Exit codes: 0 success, 2 bad arguments, 3 the database could not be reached, 1 other errors.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is the point

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use vigil_examples::PipelineError;
use vigil_examples::source::{DEFAULT_TABLE, default_simulator_config};
use vigil_features::{
    PgConfig, SimulatorConfig, TelemetryFrame, TelemetryStore, simulate, write_csv, write_csv_to,
};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    /// PostgreSQL / TimescaleDB from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER,
    /// POSTGRES_PASSWORD, POSTGRES_DB (the schema is created if missing).
    Postgres,
    /// A CSV file (`--output`).
    Csv,
}

#[derive(Debug, Parser)]
#[command(
    name = "simulate",
    version,
    about = "Writes simulated machine telemetry to PostgreSQL or CSV"
)]
struct Args {
    /// Where to write.
    #[arg(long, value_enum)]
    to: Target,
    /// The CSV file (`--to csv`).
    #[arg(long, required_if_eq("to", "csv"))]
    output: Option<PathBuf>,
    /// The table (`--to postgres`).
    #[arg(long, default_value = DEFAULT_TABLE)]
    table: String,
    /// Machines.
    #[arg(long, default_value_t = default_simulator_config().machines)]
    machines: usize,
    /// Days of telemetry (with `--follow`: how long to keep going).
    #[arg(long, default_value_t = default_simulator_config().days)]
    days: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Write continuously in real time, starting now, instead of all at once.
    #[arg(long)]
    follow: bool,
    /// With `--follow`: simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// With `--follow`: how often to write a batch, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    flush_every: String,
}

enum Sink {
    Postgres(Box<TelemetryStore>),
    Csv { path: PathBuf, wrote_header: bool },
}

impl Sink {
    fn write(&mut self, frame: &TelemetryFrame) -> Result<u64, PipelineError> {
        match self {
            Sink::Postgres(store) => Ok(store.insert(frame)?),
            Sink::Csv { path, wrote_header } => {
                let io = |e| PipelineError::Io {
                    path: path.clone(),
                    source: e,
                };
                if !*wrote_header {
                    write_csv(frame, &*path)?;
                    *wrote_header = true;
                } else {
                    let mut bytes = Vec::new();
                    write_csv_to(frame, &mut bytes)?;
                    // Appending: the header is already at the top of the file.
                    let body = bytes
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(&bytes[..0], |i| &bytes[i + 1..]);
                    let mut file = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&*path)
                        .map_err(io)?;
                    file.write_all(body).map_err(io)?;
                }
                Ok(frame.len() as u64)
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<(), PipelineError> {
    if !(args.speed > 0.0 && args.speed.is_finite()) {
        return Err(PipelineError::Invalid(format!(
            "--speed must be positive, got {}",
            args.speed
        )));
    }
    let flush_every = vigil_examples::schedule::parse_duration(&args.flush_every)
        .map_err(|e| PipelineError::Invalid(e.to_string()))?;
    let mut config = SimulatorConfig {
        machines: args.machines,
        days: args.days,
        interval_seconds: args.interval,
        seed: args.seed,
        ..default_simulator_config()
    };
    if args.follow {
        config.start = chrono::Utc::now().timestamp_micros();
    }
    let mut sink = match args.to {
        Target::Postgres => {
            let mut store = TelemetryStore::connect(&PgConfig::from_env()?, &args.table)?;
            let kind = store.create_schema()?;
            println!("table {} ready ({kind:?})", args.table);
            Sink::Postgres(Box::new(store))
        }
        Target::Csv => Sink::Csv {
            path: args
                .output
                .clone()
                .ok_or_else(|| PipelineError::Invalid("--to csv needs --output FILE".into()))?,
            wrote_header: false,
        },
    };
    let started = Instant::now();
    let sim = simulate(&config)?;
    let frame = &sim.frame;
    if !args.follow {
        let n = sink.write(frame)?;
        println!(
            "wrote {n} rows ({} machines, {} failures) in {:.1} s",
            config.machines,
            sim.events.len(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    // Real time: rows become due as simulated time passes.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| PipelineError::Invalid(format!("cannot install signal handler: {e}")))?;
    }
    let mut order: Vec<usize> = (0..frame.len()).collect();
    order.sort_by_key(|&i| frame.time()[i]);
    let mut next = 0;
    let mut total = 0u64;
    println!(
        "streaming {} machines in real time (×{}) to {}; Ctrl-C to stop",
        config.machines,
        args.speed,
        match args.to {
            Target::Postgres => format!("table {}", args.table),
            Target::Csv => args
                .output
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string()),
        }
    );
    while next < order.len() && !stop.load(Ordering::SeqCst) {
        let sleep_until = Instant::now() + flush_every;
        while Instant::now() < sleep_until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let simulated_now =
            config.start + (started.elapsed().as_secs_f64() * args.speed * 1e6) as i64;
        let due_end = next + order[next..].partition_point(|&i| frame.time()[i] <= simulated_now);
        if due_end > next {
            let mut rows = order[next..due_end].to_vec();
            rows.sort_unstable();
            let n = sink.write(&frame.select_rows(&rows))?;
            total += n;
            next = due_end;
            println!("wrote {n} rows (total {total})");
        }
    }
    println!("stopped after {total} rows");
    Ok(())
}
