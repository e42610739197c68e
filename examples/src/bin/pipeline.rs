//! The reference training pipeline.
//!
//! With no arguments it runs end to end on embedded defaults: simulated
//! telemetry, the 42 features, a time-ordered train / validation / test split,
//! an Isolation Forest, a TPE-tuned Random Forest (20 trials, median pruning),
//! evaluation on the test split, tracking into `./mlruns` (or
//! `MLFLOW_TRACKING_URI`), and a new version of `predictive_maintenance_model`.
//!
//! `--tuning-storage postgres --workers N` runs the study on vigil-tuning's
//! PostgreSQL storage with N processes (this one and N - 1 copies of itself
//! started with `--join-study NAME`); `pipeline --join-study NAME` on another
//! host, with the same data flags, joins a running study. See
//! `vigil_examples::tune`.
//!
//! Exit codes: 0 success, 1 training failed, 2 bad arguments or unusable data,
//! 3 a service (PostgreSQL, MLflow) could not be reached, 130 stopped by SIGINT /
//! SIGTERM (the run is marked KILLED, nothing registered).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is the point

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use vigil_examples::cli::{SourceKind, TrainingDataArgs};
use vigil_examples::fleet::{
    Ingestion, StreamConfig, StreamProgress, StreamSource, StreamedOutcome, join_streamed,
    train_streamed,
};
use vigil_examples::source::DataSource;
use vigil_examples::train::{Progress, TrainConfig, TrainOutcome, train, tuning_splits};
use vigil_examples::tune::{JoinOutcome, StudyStorage, TuningSetup, WorkerCommand, join_study};
use vigil_examples::{PipelineError, open_tracker};
use vigil_metrics::{AlarmPolicy, Smoothing};
use vigil_tuning::Heartbeat;

#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    version,
    about = "Trains, evaluates, tracks and registers the predictive-maintenance model",
    long_about = "Trains the predictive-maintenance model end to end: telemetry → 42 rolling-window \
features → time-ordered train/validation/test split → Isolation Forest (anomalies) and a \
Random Forest (failure within 30 minutes) tuned by TPE → evaluation on the test split → \
MLflow tracking (./mlruns by default, or MLFLOW_TRACKING_URI) → a new registered version.\n\n\
Exit codes: 0 success, 1 training failed, 2 bad arguments or unusable data, 3 PostgreSQL or \
MLflow unreachable, 130 stopped by SIGINT/SIGTERM (run marked KILLED, nothing registered)."
)]
struct Args {
    #[command(flatten)]
    data: TrainingDataArgs,
    /// TPE trials.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Isolation Forest contamination, in (0, 0.5].
    #[arg(long, default_value_t = 0.1)]
    contamination: f64,
    /// Rows each tree samples (0: as many as there are).
    #[arg(long, default_value_t = 40_000)]
    max_samples_per_tree: usize,
    /// Turn median pruning off.
    #[arg(long)]
    no_pruning: bool,
    /// MLflow experiment.
    #[arg(long, default_value = vigil_examples::train::DEFAULT_EXPERIMENT)]
    experiment: String,
    /// Registered model name.
    #[arg(long, default_value = vigil_examples::train::DEFAULT_MODEL_NAME)]
    model_name: String,
    /// Do not register a model version.
    #[arg(long)]
    no_register: bool,
    /// Folder for reports, plots and the model.
    #[arg(long, default_value = "vigil-output")]
    output_dir: PathBuf,
    /// How the alarm threshold is chosen on the validation split: `f1`,
    /// `false-alarm-budget=B` (at most B false alarms per machine-day,
    /// catching the most failures) or `recall=R` (catch at least a share R
    /// of failures, with the highest threshold that does).
    #[arg(long, default_value = "f1", value_parser = parse_alarm_policy)]
    alarm_policy: AlarmPolicy,
    /// Alarm only when K of a machine's last N samples are flagged (`K/N`,
    /// e.g. `3/5`), in evaluation and in `serve`. Off by default.
    #[arg(long, value_parser = parse_smoothing)]
    alarm_smoothing: Option<Smoothing>,
    /// Test rows explained with TreeSHAP for the SHAP summary plots (evenly
    /// spaced); 0 skips them.
    #[arg(long, default_value_t = vigil_examples::explain::DEFAULT_SHAP_ROWS)]
    shap_rows: usize,
    /// `--source postgres`: keep this share, in (0, 1], of the training rows
    /// more than one label horizon from any failure, each with weight
    /// 1 / FRACTION (seeded); 1 keeps every row.
    #[arg(long, default_value_t = 1.0)]
    downsample: f64,
    /// `--source postgres`: training rows from the first machines that fix the
    /// bin edges (and fit the Isolation Forest).
    #[arg(long, default_value_t = vigil_examples::fleet::StreamConfig::default().edge_rows)]
    bin_edge_rows: usize,
    /// `--source postgres`: `auto` streams the table machine by machine into
    /// bin codes when the query selects more than `--stream-above-rows` rows
    /// (and whenever `--downsample` is below 1) and loads it whole otherwise;
    /// `memory` always loads it (every plot, SHAP, alarm policies; about
    /// 1.4 KB per row); `streamed` always streams.
    #[arg(long, value_enum, default_value_t = Ingestion::Auto)]
    ingestion: Ingestion,
    /// `--ingestion auto`: rows above which the table is streamed.
    #[arg(long, default_value_t = vigil_examples::fleet::DEFAULT_STREAM_ABOVE_ROWS)]
    stream_above_rows: u64,
    /// Plain log lines even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Where the tuning study lives: `memory` (this process runs every trial)
    /// or `postgres` (vigil-tuning's PostgreSQL storage, shared by `--workers`
    /// processes and by `--join-study` workers on other hosts).
    #[arg(long, value_enum, default_value_t = TuningStorageKind::Memory)]
    tuning_storage: TuningStorageKind,
    /// The study database [default: the POSTGRES_* database].
    #[arg(long, env = "VIGIL_TUNING_DATABASE_URL", hide_env_values = true)]
    tuning_url: Option<String>,
    /// Schema of the study tables.
    #[arg(long, default_value = vigil_examples::tune::DEFAULT_STUDY_SCHEMA)]
    tuning_schema: String,
    /// Processes running trials, this one included: the others are this
    /// binary run again with the same arguments and `--join-study`. More than
    /// 1 needs `--tuning-storage postgres`.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The study's name with `--tuning-storage postgres` [default:
    /// random_forest_f1-RUN_ID, RUN_ID the parent run].
    #[arg(long)]
    study_name: Option<String>,
    /// Seconds a trial of a shared study may go without a heartbeat before
    /// it counts as lost (its worker died) and is failed; workers beat every
    /// quarter of it. Joining workers take the leader's.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0)]
    heartbeat_grace: f64,
    /// Only run trials of the running pipeline's study NAME (implies
    /// `--tuning-storage postgres`; `--workers` and `--study-name` are
    /// ignored): load the same data (give the leader's source, seed,
    /// `--max-samples-per-tree` and pruning flags), run trials as child runs of
    /// the leader's parent run until the study has its trials, and exit.
    #[arg(long, value_name = "NAME")]
    join_study: Option<String>,
}

/// `--tuning-storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TuningStorageKind {
    /// In this process.
    Memory,
    /// vigil-tuning's PostgreSQL storage.
    Postgres,
}

fn parse_alarm_policy(s: &str) -> Result<AlarmPolicy, String> {
    s.parse()
        .map_err(|e: vigil_metrics::MetricsError| e.to_string())
}

fn parse_smoothing(s: &str) -> Result<Smoothing, String> {
    s.parse()
        .map_err(|e: vigil_metrics::MetricsError| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let streamed = match streamed_source(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    if let Some(name) = &args.join_study {
        return match join(&args, name, streamed.as_ref()) {
            Ok(o) => {
                println!(
                    "joined study {}: ran {} of its {} trials (parent run {})",
                    o.study_name, o.trials_run, o.study_trials, o.parent_run_id
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    if let Some(source) = streamed {
        return finish_streamed(run_streamed(&args, &source));
    }
    if args.downsample != 1.0 {
        eprintln!(
            "error: --downsample applies to the streamed pipeline \
             (--source postgres, --ingestion streamed or auto)"
        );
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(outcome) => {
            print_summary(&outcome);
            exit_with_summary(outcome.write_summary())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<TrainOutcome, PipelineError> {
    let (source, config) = job(args)?;
    let tracker = open_and_replay()?;
    println!("tracking: {}", vigil_examples::describe_tracker(&tracker));
    let progress = progress_sink(
        !args.no_progress && std::io::stderr().is_terminal(),
        String::new(),
    );
    train(&source, &config, &tracker, progress)
}

/// The tracker, after delivering what dead processes left in their spools.
fn open_and_replay() -> Result<vigil_tracking_client::Tracker, PipelineError> {
    let tracker = open_tracker()?;
    for line in vigil_examples::replay_spools(&tracker) {
        eprintln!("{line}");
    }
    Ok(tracker)
}

/// `--join-study NAME`: run trials of another pipeline's study.
fn join(
    args: &Args,
    name: &str,
    streamed: Option<&StreamSource>,
) -> Result<JoinOutcome, PipelineError> {
    let (source, mut config) = job(args)?;
    config.tuning = TuningSetup {
        storage: StudyStorage::postgres(args.tuning_url.clone(), &args.tuning_schema)?,
        ..TuningSetup::default()
    };
    let tracker = open_and_replay()?;
    // One write, so that lines of workers sharing a terminal do not interleave.
    let line = format!(
        "joining study {name}; tracking: {}\n",
        vigil_examples::describe_tracker(&tracker)
    );
    eprint!("{line}");
    // Workers often share the leader's terminal: their lines say whose they are.
    let label = format!("[worker {}] ", std::process::id());
    let fancy = !args.no_progress && std::io::stderr().is_terminal();
    let progress = progress_sink(fancy, label.clone());
    if let Some(stream_source) = streamed {
        return join_streamed(
            name,
            stream_source,
            &config,
            &stream_config(args),
            &tracker,
            progress,
            &mut stream_reporter(label),
        );
    }
    join_study(
        name,
        &config,
        &tracker,
        || tuning_splits(&source, &config, &progress),
        &progress,
    )
}

/// How tuning is spread: in memory, or on PostgreSQL with `--workers`
/// processes (the others: this binary again, with `--join-study`).
fn tuning_setup(args: &Args) -> Result<TuningSetup, PipelineError> {
    if args.tuning_storage == TuningStorageKind::Memory {
        if args.workers > 1 {
            return Err(PipelineError::Invalid(
                "--workers above 1 needs --tuning-storage postgres".into(),
            ));
        }
        return Ok(TuningSetup::default());
    }
    let program = std::env::current_exe().map_err(|e| PipelineError::Io {
        path: PathBuf::from("/proc/self/exe"),
        source: e,
    })?;
    let mut worker_args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Workers share the leader's terminal: plain lines, never bars.
    if !args.no_progress {
        worker_args.push("--no-progress".into());
    }
    Ok(TuningSetup {
        storage: StudyStorage::postgres(args.tuning_url.clone(), &args.tuning_schema)?,
        study_name: args.study_name.clone(),
        workers: args.workers,
        worker_command: Some(WorkerCommand {
            program,
            args: worker_args,
        }),
        heartbeat: heartbeat(args.heartbeat_grace)?,
        ..TuningSetup::default()
    })
}

/// `--heartbeat-grace`: beats every quarter of the grace period.
fn heartbeat(grace_seconds: f64) -> Result<Heartbeat, PipelineError> {
    let grace = Duration::try_from_secs_f64(grace_seconds)
        .ok()
        .filter(|g| *g >= Duration::from_millis(100))
        .ok_or_else(|| {
            PipelineError::Invalid(format!(
                "--heartbeat-grace must be at least 0.1 seconds, got {grace_seconds}"
            ))
        })?;
    Ok(Heartbeat {
        interval: grace / 4,
        grace_period: grace,
    })
}

/// The data source and the training settings the arguments name, and the
/// signal handlers that stop the job.
fn job(args: &Args) -> Result<(DataSource, TrainConfig), PipelineError> {
    let source = args.data.resolve()?;
    let tuning = match args.join_study {
        Some(_) => TuningSetup::default(),
        None => tuning_setup(args)?,
    };
    let config = TrainConfig {
        n_trials: args.trials,
        contamination: args.contamination,
        seed: args.data.seed,
        max_samples_per_tree: (args.max_samples_per_tree > 0).then_some(args.max_samples_per_tree),
        pruning: !args.no_pruning,
        experiment: args.experiment.clone(),
        model_name: args.model_name.clone(),
        register: !args.no_register,
        output_dir: args.output_dir.clone(),
        alarm_policy: args.alarm_policy,
        alarm_smoothing: args.alarm_smoothing,
        shap_rows: args.shap_rows,
        tuning,
        ..TrainConfig::default()
    };
    // SIGINT / SIGTERM (Ctrl-C, the scheduler stopping) end the job at the next
    // stage or trial, marking the run KILLED instead of leaving it RUNNING.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&config.stop))
            .map_err(|e| PipelineError::Invalid(format!("cannot install signal handler: {e}")))?;
    }
    Ok((source, config))
}

/// `--source postgres`: the table streamed machine by machine into bin codes.
fn run_streamed(args: &Args, source: &StreamSource) -> Result<StreamedOutcome, PipelineError> {
    let (_, config) = job(args)?;
    let tracker = open_and_replay()?;
    println!("tracking: {}", vigil_examples::describe_tracker(&tracker));
    let progress = progress_sink(
        !args.no_progress && std::io::stderr().is_terminal(),
        String::new(),
    );
    train_streamed(
        source,
        &config,
        &stream_config(args),
        &tracker,
        progress,
        &mut stream_reporter(String::new()),
    )
}

/// The PostgreSQL source when the pipeline streams it (`--ingestion`).
fn streamed_source(args: &Args) -> Result<Option<StreamSource>, PipelineError> {
    if args.data.source.source != SourceKind::Postgres {
        return Ok(None);
    }
    let DataSource::Postgres {
        config,
        table,
        query,
    } = args.data.resolve()?
    else {
        return Ok(None);
    };
    let source = StreamSource {
        config: *config,
        table,
        query,
    };
    let ingestion = match args.ingestion {
        // Downsampling exists only on the streamed path.
        Ingestion::Auto if args.downsample != 1.0 => Ingestion::Streamed,
        other => other,
    };
    let (streams, rows) = source.streams(ingestion, args.stream_above_rows)?;
    if let Some(rows) = rows {
        let how = if streams { "streamed" } else { "loaded whole" };
        eprintln!(
            "ingestion: {how} ({rows} rows; --stream-above-rows {})",
            args.stream_above_rows
        );
    }
    Ok(streams.then_some(source))
}

fn stream_config(args: &Args) -> StreamConfig {
    StreamConfig {
        downsample: args.downsample,
        edge_rows: args.bin_edge_rows,
        ..StreamConfig::default()
    }
}

/// A line every 10 s of streaming, starting with `label`.
fn stream_reporter(label: String) -> impl FnMut(StreamProgress) {
    let mut last_report = std::time::Instant::now();
    move |p: StreamProgress| {
        if last_report.elapsed().as_secs() >= 10 {
            last_report = std::time::Instant::now();
            eprintln!(
                "{label}[stream] {} rows read, {} machines done",
                p.rows_read, p.machines_done
            );
        }
    }
}

fn finish_streamed(result: Result<StreamedOutcome, PipelineError>) -> ExitCode {
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    print_streamed(&outcome);
    exit_with_summary(outcome.write_summary())
}

/// Says where the run summary went and exits 0, or with the error's code.
fn exit_with_summary(written: Result<PathBuf, PipelineError>) -> ExitCode {
    match written {
        Ok(path) => {
            println!("  summary (JSON)    {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn print_streamed(o: &StreamedOutcome) {
    let t = &o.test;
    println!();
    println!("Vigil pipeline (streamed from PostgreSQL): done");
    println!(
        "  data              {} machines, {} rows; train {} (downsampling left out {}), validation {}, test {}",
        o.machines, o.rows, o.split_rows[0], o.dropped_rows, o.split_rows[1], o.split_rows[2]
    );
    println!(
        "  tuning            {} trials; best validation F1 {:.4}",
        o.trial_counts.total(),
        o.best_validation_f1
    );
    println!(
        "  test              F1 {:.4}, precision {:.4}, recall {:.4}, ROC-AUC {:.4}, PR-AUC {:.4} (threshold {:.4})",
        t.f1, t.precision, t.recall, t.roc_auc, t.pr_auc, o.threshold
    );
    let e = &o.events;
    println!(
        "  failures caught   {} of {} ({:.2} false alarms per machine-day)",
        e.failures_caught, e.failures_total, e.false_alarms_per_machine_day
    );
    let m = &o.failure_modes;
    match (&m.skipped_reason, m.macro_f1) {
        (Some(why), _) => println!("  failure modes     skipped: {why}"),
        (None, Some(f1)) => println!(
            "  failure modes     {} modes, test macro F1 {f1:.4}",
            m.per_mode.len()
        ),
        (None, None) => {}
    }
    for (stage, s) in &o.stage_seconds {
        println!("  {stage:<22} {s:>8.2} s");
    }
    println!("  run               {}", o.run_id);
    if let Some(v) = &o.model_version {
        println!("  registered        {} version {}", v.name, v.version);
    }
}

/// Progress bars on a terminal, plain log lines otherwise.
/// `label` starts every plain line (a joining worker's `[worker PID] `).
fn progress_sink(fancy: bool, label: String) -> vigil_examples::train::ProgressFn {
    let bar: Arc<Mutex<Option<ProgressBar>>> = Arc::new(Mutex::new(None));
    Arc::new(move |event| {
        let Ok(mut slot) = bar.lock() else { return };
        match event {
            Progress::Stage(stage) => {
                if fancy {
                    let pb = ProgressBar::new_spinner().with_message(stage);
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg} {wide_bar} {pos}/{len} {elapsed}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.enable_steady_tick(std::time::Duration::from_millis(120));
                    *slot = Some(pb);
                } else {
                    eprintln!("{label}[{stage}] started");
                }
            }
            Progress::StageDone {
                stage,
                summary,
                seconds,
            } => {
                if let Some(pb) = slot.take() {
                    pb.finish_and_clear();
                }
                eprintln!("{label}[{stage}] {summary} ({seconds:.1} s)");
            }
            Progress::Trial {
                number,
                of,
                state,
                value,
                best,
            } => {
                let value = value.map_or("-".to_string(), |v| format!("{v:.4}"));
                let best = best.map_or("-".to_string(), |v| format!("{v:.4}"));
                let line = format!(
                    "trial {}/{of}: {} F1 {value} (best {best})",
                    number + 1,
                    state.as_str()
                );
                match slot.as_ref() {
                    Some(pb) => {
                        pb.set_length(of as u64);
                        pb.set_position(number + 1);
                        pb.println(line);
                    }
                    None => eprintln!("{label}[tuning] {line}"),
                }
            }
            Progress::Trees { done, of } => {
                if let Some(pb) = slot.as_ref() {
                    pb.set_length(of as u64);
                    pb.set_position(done as u64);
                }
            }
            _ => {}
        }
    })
}

fn print_summary(o: &TrainOutcome) {
    let t = &o.test;
    println!();
    println!("Vigil pipeline: done");
    println!("  data              {}", o.data_description);
    println!(
        "  rows              train {}, validation {}, test {}",
        o.split_rows.train, o.split_rows.validation, o.split_rows.test
    );
    println!(
        "  tuning            {} trials: {} complete, {} pruned, {} failed; best validation F1 {:.4}",
        o.trial_counts.total(),
        o.trial_counts.complete,
        o.trial_counts.pruned,
        o.trial_counts.failed,
        o.best_validation_f1
    );
    let params: Vec<String> = o
        .best_params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!("  best parameters   {}", params.join(", "));
    println!();
    println!("  {:<22} {:>8}", "test metric", "value");
    for (name, value) in [
        ("F1", t.f1),
        ("precision", t.precision),
        ("recall", t.recall),
        ("ROC-AUC", t.roc_auc),
        ("PR-AUC", t.pr_auc),
        ("threshold", o.bundle.meta.threshold),
        ("anomaly ROC-AUC (IF)", t.anomaly_roc_auc),
        ("anomaly rate (IF)", t.anomaly_rate),
    ] {
        println!("  {name:<22} {value:>8.4}");
    }
    println!(
        "  confusion matrix       [[tn {}, fp {}], [fn {}, tp {}]]",
        t.confusion[0][0], t.confusion[0][1], t.confusion[1][0], t.confusion[1][1]
    );
    let a = &o.alarm;
    println!(
        "  alarm policy           {} (smoothing {}){}",
        a.policy,
        a.smoothing.map_or("off".to_string(), |s| s.to_string()),
        if a.constraint_met {
            ""
        } else {
            "; not met on validation"
        }
    );
    let e = &o.events;
    println!(
        "  failures caught        {} of {} (median lead time {:.1} min; {:.2} false alarms per machine-day; event precision {:.2})",
        e.failures_caught,
        e.failures_total,
        e.lead_time_minutes.median,
        e.false_alarms_per_machine_day,
        e.precision
    );
    match (&o.failure_modes.macro_f1, &o.failure_modes.skipped_reason) {
        (Some(f1), _) => {
            let per_mode: Vec<String> = o
                .failure_modes
                .per_mode
                .iter()
                .map(|m| format!("{} {:.2}", m.mode, m.f1))
                .collect();
            println!(
                "  failure modes          macro F1 {f1:.4} ({})",
                per_mode.join(", ")
            );
        }
        (None, Some(reason)) => println!("  failure modes          skipped: {reason}"),
        (None, None) => {}
    }
    if let Some(shap) = &o.shap {
        let top: Vec<String> = shap
            .top(5)
            .iter()
            .map(|f| format!("{} {:.4}", f.feature, f.mean_abs_shap))
            .collect();
        println!("  top mean |SHAP|        {}", top.join(", "));
    }
    println!();
    println!("  {:<22} {:>8}", "stage", "seconds");
    let mut total = 0.0;
    for (stage, s) in &o.stage_seconds {
        println!("  {stage:<22} {s:>8.2}");
        total += s;
    }
    println!("  {:<22} {total:>8.2}", "total");
    println!();
    println!(
        "  run               {} (experiment {})",
        o.run_id, o.experiment_id
    );
    if let Some(v) = &o.model_version {
        println!("  registered        {} version {}", v.name, v.version);
    }
    println!("  plots and reports {}", o.output_dir.display());
    println!(
        "  browse runs       MLFLOW_ALLOW_FILE_STORE=true mlflow server --backend-store-uri ./mlruns  (local store)"
    );
    println!(
        "  promote           cargo run --release -p vigil-examples --bin evaluate -- --promote"
    );
}
