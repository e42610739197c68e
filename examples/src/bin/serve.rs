//! The scoring service: serves the Production model over HTTP and picks up a
//! newly promoted version without restarting.
//!
//! ```text
//! serve                                   # models:/predictive_maintenance_model/Production on 127.0.0.1:8080
//! serve --model-uri models:/predictive_maintenance_model@champion --port 9000
//! curl -s localhost:8080/predict -d '{"samples":[{"machine_id":"M01","time":"2026-01-08T00:00:00Z",
//!     "temperature":70.1,"vibration":0.5,"spindle_speed":1500,"power_consumption":12.0}]}'
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is the point

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use vigil_examples::drift::{WindowParams, drifted_names};
use vigil_examples::schedule::parse_duration;
use vigil_examples::scoring::{ScoringPolicy, current_version, load_model, recent_history};
use vigil_examples::serve::{AppState, ConnectionLimits, ServeConfig, router, serve_connections};
use vigil_examples::source::{DEFAULT_TABLE, DataSource};
use vigil_examples::{PipelineError, describe_tracker, open_tracker};
use vigil_features::{CsvOptions, LoadQuery, PgConfig};
use vigil_tracking_client::Tracker;

#[derive(Debug, Parser)]
#[command(
    name = "serve",
    version,
    about = "Serves failure predictions from the Production model"
)]
struct Args {
    /// The model to serve: models:/NAME/STAGE, models:/NAME/VERSION or models:/NAME@ALIAS.
    #[arg(
        long,
        default_value = "models:/predictive_maintenance_model/Production"
    )]
    model_uri: String,
    /// Address to listen on. A non-loopback address needs --token (or --insecure).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Bearer token required on every route but /health.
    #[arg(long, env = "VIGIL_SERVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Allow a non-loopback address without a token.
    #[arg(long)]
    insecure: bool,
    /// How often to look for a newly promoted version, e.g. `30s`.
    #[arg(long, default_value = "30s")]
    poll_interval: String,
    /// Score machines that were not in the training data.
    #[arg(long)]
    allow_new_machines: bool,
    /// Machines tracked at most (further ones are refused until one is reset).
    #[arg(long, default_value_t = 10_000)]
    max_machines: usize,
    /// Samples in one request at most.
    #[arg(long, default_value_t = 10_000)]
    max_samples: usize,
    /// Samples one request may ask to have explained (`"explain": k`); 0
    /// turns explanations off.
    #[arg(long, default_value_t = 100)]
    max_explained_samples: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Longest a request may take, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    request_timeout: String,
    /// A client must send a request's headers within this time, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    header_timeout: String,
    /// Open connections at most (further ones are closed at once).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// How far ahead of this server's clock a sample may be, e.g. `5m`.
    #[arg(long, default_value = "5m")]
    clock_skew: String,
    /// Where model versions are downloaded.
    #[arg(long, default_value = "vigil-output/serving")]
    scratch_dir: PathBuf,
    /// Warm every machine's windows on start (and after a model swap that
    /// changes the feature spec) from recorded telemetry: `postgres` (the
    /// POSTGRES_* variables and --warm-table) or `csv` (--warm-input).
    #[arg(long, value_enum, default_value_t = WarmFrom::None)]
    warm_from: WarmFrom,
    /// The telemetry table for `--warm-from postgres`.
    #[arg(long, default_value = DEFAULT_TABLE)]
    warm_table: String,
    /// The CSV file for `--warm-from csv` (the reference header).
    #[arg(long, required_if_eq("warm_from", "csv"))]
    warm_input: Option<PathBuf>,
    /// How far back `--warm-from postgres` reads, e.g. `1d`; a machine silent
    /// for longer starts cold.
    #[arg(long, default_value = "1d")]
    warm_lookback: String,
    /// Drift: feature vectors of warm machines kept in the window at most
    /// (the oldest go first; 8 bytes per feature each).
    #[arg(long, default_value_t = 50_000)]
    drift_window: usize,
    /// Drift: only vectors this close to the newest sample time are kept,
    /// e.g. `1d`; `off` for no age limit.
    #[arg(long, default_value = "1d")]
    drift_window_age: String,
    /// Drift: vectors the window needs before drift is computed.
    #[arg(long, default_value_t = 1_000)]
    drift_min_samples: usize,
    /// Drift: how often the window is compared with the model's reference
    /// (`GET /drift`, the drift gauges of `/metrics`), e.g. `60s`.
    #[arg(long, default_value = "60s")]
    drift_interval: String,
}

/// Where a warm start reads recorded telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WarmFrom {
    /// No warm start: machines start cold.
    None,
    /// The PostgreSQL / TimescaleDB table the pipeline reads.
    Postgres,
    /// A CSV file.
    Csv,
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

fn duration(text: &str, flag: &str) -> Result<Duration, PipelineError> {
    parse_duration(text).map_err(|e| PipelineError::Invalid(format!("--{flag}: {e}")))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn config(args: &Args) -> Result<ServeConfig, PipelineError> {
    Ok(ServeConfig {
        token: args.token.clone(),
        max_body_bytes: args.max_body_bytes,
        request_timeout: duration(&args.request_timeout, "request-timeout")?,
        policy: ScoringPolicy {
            clock_skew_micros: micros(duration(&args.clock_skew, "clock-skew")?),
            max_machines: args.max_machines,
            max_batch_samples: args.max_samples,
            max_explained_samples: args.max_explained_samples,
            allow_new_machines: args.allow_new_machines,
            ..ScoringPolicy::default()
        },
        scratch: args.scratch_dir.clone(),
        drift_window: WindowParams {
            max_samples: args.drift_window,
            max_age: match args.drift_window_age.trim() {
                "off" => None,
                age => Some(duration(age, "drift-window-age")?),
            },
            min_samples: args.drift_min_samples,
        },
    })
}

/// Refuses to expose an unauthenticated service beyond this machine.
fn check_exposure(args: &Args) -> Result<(), PipelineError> {
    let loopback = match args.host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => args.host == "localhost",
    };
    if loopback || args.token.is_some() || args.insecure {
        return Ok(());
    }
    Err(PipelineError::Invalid(format!(
        "refusing to listen on {} without a token: set --token (or VIGIL_SERVE_TOKEN), or pass --insecure",
        args.host
    )))
}

fn run(args: &Args) -> Result<(), PipelineError> {
    check_exposure(args)?;
    let poll = duration(&args.poll_interval, "poll-interval")?;
    let config = config(args)?;
    let drift_every = duration(&args.drift_interval, "drift-interval")?;
    let limits = ConnectionLimits {
        header_read_timeout: duration(&args.header_timeout, "header-timeout")?,
        max_connections: args.max_connections,
        ..ConnectionLimits::default()
    };
    let tracker = open_tracker()?;
    for line in vigil_examples::replay_spools(&tracker) {
        eprintln!("{line}");
    }
    let model = load_model(&tracker, &args.model_uri, &config.scratch)?;
    println!(
        "serving {} version {} (run {}) from {}",
        model.name,
        model.version,
        model.run_id,
        describe_tracker(&tracker)
    );
    let state = Arc::new(AppState::new(model, config)?);
    let per_machine = state.core().max_bytes_per_machine();
    println!(
        "machine state: at most {per_machine} bytes per machine, {} machines ({} MiB)",
        args.max_machines,
        (per_machine as u128 * args.max_machines as u128) >> 20
    );
    let window = &state.config().drift_window;
    println!(
        "drift: {} warm feature vectors at most ({} MiB), checked every {}; {}",
        window.max_samples,
        (window.max_samples as u128 * 8 * state.model().bundle.meta.feature_names.len() as u128)
            >> 20,
        args.drift_interval,
        if state.model().bundle.drift_reference.is_some() {
            "the model has a drift reference"
        } else {
            "the model has no drift reference (trained before drift references): GET /drift answers 503"
        }
    );
    let warm = warm_source(args)?;
    warm_start(&state, warm.as_ref())?;
    spawn_drift_checks(Arc::clone(&state), drift_every);
    spawn_poller(
        Arc::clone(&state),
        tracker,
        args.model_uri.clone(),
        poll,
        warm,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| PipelineError::Invalid(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| PipelineError::Invalid(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| PipelineError::Invalid(e.to_string()))?;
        println!("listening on http://{local}");
        serve_connections(listener, router(state), &limits, shutdown_signal()).await;
        println!("stopped");
        Ok(())
    })
}

/// The telemetry a warm start reads, if any.
fn warm_source(args: &Args) -> Result<Option<DataSource>, PipelineError> {
    Ok(match args.warm_from {
        WarmFrom::None => None,
        WarmFrom::Csv => Some(DataSource::Csv {
            path: args.warm_input.clone().ok_or_else(|| {
                PipelineError::Invalid("--warm-from csv needs --warm-input".into())
            })?,
            options: CsvOptions::default(),
        }),
        WarmFrom::Postgres => {
            let lookback = micros(duration(&args.warm_lookback, "warm-lookback")?);
            let from = chrono::Utc::now().timestamp_micros() - lookback;
            Some(DataSource::Postgres {
                config: Box::new(PgConfig::from_env()?),
                table: args.warm_table.clone(),
                query: LoadQuery {
                    from: Some(from),
                    ..LoadQuery::default()
                },
            })
        }
    })
}

/// Replays each machine's recent history through its windows.
fn warm_start(state: &AppState, source: Option<&DataSource>) -> Result<(), PipelineError> {
    let Some(source) = source else {
        return Ok(());
    };
    let loaded = source.load()?;
    let span = state.model().bundle.feature_spec.warmup_span().as_micros();
    let recent = recent_history(&loaded.frame, span);
    let taken = state
        .core()
        .warm_from(&recent)
        .map_err(|e| PipelineError::Invalid(format!("warm start: {e}")))?;
    let (machines, warm) = state.core().machine_counts();
    println!(
        "warm start from {}: {taken} samples, {machines} machines ({warm} with full windows)",
        loaded.description
    );
    Ok(())
}

/// The window of served vectors against the model's reference, on a schedule.
fn spawn_drift_checks(state: Arc<AppState>, every: Duration) {
    std::thread::spawn(move || {
        let mut last_verdict = None;
        loop {
            std::thread::sleep(every);
            match state.check_drift() {
                Ok(status) => {
                    // One line when the verdict changes, not one per check.
                    let verdict = status
                        .drift()
                        .map(|d| (d.dataset_drift, drifted_names(d).join(", ")));
                    if verdict.is_some() && verdict != last_verdict {
                        if let Some((true, names)) = &verdict {
                            println!(
                                "drift: dataset drift in the served traffic; drifted: {names}"
                            );
                        } else {
                            println!("drift: no dataset drift in the served traffic");
                        }
                    }
                    last_verdict = verdict;
                }
                Err(e) => eprintln!("drift check failed: {e}"),
            }
        }
    });
}

/// A newly promoted version replaces the served one.
fn spawn_poller(
    state: Arc<AppState>,
    tracker: Tracker,
    uri: String,
    poll: Duration,
    warm: Option<DataSource>,
) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(poll);
            if let Err(e) = poll_once(&state, &tracker, &uri, warm.as_ref()) {
                eprintln!("{e}; still serving version {}", state.model().version);
            }
        }
    });
}

/// Switches to the version `uri` points at now, if it changed.
fn poll_once(
    state: &AppState,
    tracker: &Tracker,
    uri: &str,
    warm: Option<&DataSource>,
) -> Result<(), PipelineError> {
    let serving = state.model().version.clone();
    if current_version(tracker, uri)? == serving {
        return Ok(());
    }
    let model = load_model(tracker, uri, &state.config().scratch)?;
    let version = model.version.clone();
    let reset = state.replace(model)?;
    println!("now serving version {version} (was {serving})");
    if reset {
        println!("the feature spec changed: machine state reset");
        if let Err(e) = warm_start(state, warm) {
            eprintln!("{e}; machines start cold");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
