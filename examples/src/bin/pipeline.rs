//! The reference training pipeline.
//!
//! With no arguments it runs end to end on embedded defaults: simulated
//! telemetry, the 42 features, a time-ordered train / validation / test split,
//! an Isolation Forest, a TPE-tuned Random Forest (20 trials, median pruning),
//! evaluation on the test split, tracking into `./mlruns` (or
//! `MLFLOW_TRACKING_URI`), and a new version of `predictive_maintenance_model`.
//!
//! Exit codes: 0 success, 1 training failed, 2 bad arguments or unusable data,
//! 3 a service (PostgreSQL, MLflow) could not be reached, 130 stopped by SIGINT /
//! SIGTERM (the run is marked KILLED, nothing registered).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is the point

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use vigil_examples::cli::{SourceArgs, SourceKind};
use vigil_examples::fleet::{
    StreamConfig, StreamProgress, StreamSource, StreamedOutcome, train_streamed,
};
use vigil_examples::source::DataSource;
use vigil_examples::source::default_simulator_config;
use vigil_examples::train::{Progress, TrainConfig, TrainOutcome, train};
use vigil_examples::{PipelineError, open_tracker};
use vigil_metrics::{AlarmPolicy, Smoothing};

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
    source: SourceArgs,
    /// Simulated machines (`--source sim`).
    #[arg(long, default_value_t = default_simulator_config().machines)]
    machines: usize,
    /// Simulated days (`--source sim`).
    #[arg(long, default_value_t = default_simulator_config().days)]
    days: f64,
    /// TPE trials.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Isolation Forest contamination, in (0, 0.5].
    #[arg(long, default_value_t = 0.1)]
    contamination: f64,
    /// Seed of the simulator, the tuner and the forests.
    #[arg(long, default_value_t = 42)]
    seed: u64,
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
    /// Plain log lines even on a terminal.
    #[arg(long)]
    no_progress: bool,
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
    if matches!(args.source.source, SourceKind::Postgres) {
        return finish_streamed(run_streamed(&args));
    }
    if args.downsample != 1.0 {
        eprintln!("error: --downsample applies to --source postgres (the streamed pipeline)");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(outcome) => {
            print_summary(&outcome);
            match outcome.write_summary() {
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
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<TrainOutcome, PipelineError> {
    let source = args.source.resolve(vigil_features::SimulatorConfig {
        machines: args.machines,
        days: args.days,
        seed: args.seed,
        ..default_simulator_config()
    })?;
    let config = train_config(args)?;
    let tracker = open_tracker()?;
    for line in vigil_examples::replay_spools(&tracker) {
        eprintln!("{line}");
    }
    println!("tracking: {}", vigil_examples::describe_tracker(&tracker));
    let progress = progress_sink(!args.no_progress && std::io::stderr().is_terminal());
    train(&source, &config, &tracker, progress)
}

/// `--source postgres`: the table streamed machine by machine into bin codes.
fn run_streamed(args: &Args) -> Result<StreamedOutcome, PipelineError> {
    let DataSource::Postgres {
        config: pg,
        table,
        query,
    } = args.source.resolve(default_simulator_config())?
    else {
        return Err(PipelineError::Invalid("--source postgres expected".into()));
    };
    let source = StreamSource {
        config: *pg,
        table,
        query,
    };
    let stream = StreamConfig {
        downsample: args.downsample,
        edge_rows: args.bin_edge_rows,
        ..StreamConfig::default()
    };
    let config = train_config(args)?;
    let tracker = open_tracker()?;
    for line in vigil_examples::replay_spools(&tracker) {
        eprintln!("{line}");
    }
    println!("tracking: {}", vigil_examples::describe_tracker(&tracker));
    let progress = progress_sink(!args.no_progress && std::io::stderr().is_terminal());
    let mut last_report = std::time::Instant::now();
    let mut on_stream = |p: StreamProgress| {
        if last_report.elapsed().as_secs() >= 10 {
            last_report = std::time::Instant::now();
            eprintln!(
                "[stream] {} rows read, {} machines done",
                p.rows_read, p.machines_done
            );
        }
    };
    train_streamed(
        &source,
        &config,
        &stream,
        &tracker,
        progress,
        &mut on_stream,
    )
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
    match outcome.write_summary() {
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
    for (stage, s) in &o.stage_seconds {
        println!("  {stage:<22} {s:>8.2} s");
    }
    println!("  run               {}", o.run_id);
    if let Some(v) = &o.model_version {
        println!("  registered        {} version {}", v.name, v.version);
    }
}

/// The training settings the flags give.
fn train_config(args: &Args) -> Result<TrainConfig, PipelineError> {
    let config = TrainConfig {
        n_trials: args.trials,
        contamination: args.contamination,
        seed: args.seed,
        max_samples_per_tree: (args.max_samples_per_tree > 0).then_some(args.max_samples_per_tree),
        pruning: !args.no_pruning,
        experiment: args.experiment.clone(),
        model_name: args.model_name.clone(),
        register: !args.no_register,
        output_dir: args.output_dir.clone(),
        alarm_policy: args.alarm_policy,
        alarm_smoothing: args.alarm_smoothing,
        shap_rows: args.shap_rows,
        ..TrainConfig::default()
    };
    // SIGINT / SIGTERM (Ctrl-C, the scheduler stopping) end the job at the next
    // stage or trial, marking the run KILLED instead of leaving it RUNNING.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&config.stop))
            .map_err(|e| PipelineError::Invalid(format!("cannot install signal handler: {e}")))?;
    }
    Ok(config)
}

/// Progress bars on a terminal, plain log lines otherwise.
fn progress_sink(fancy: bool) -> vigil_examples::train::ProgressFn {
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
                    eprintln!("[{stage}] started");
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
                eprintln!("[{stage}] {summary} ({seconds:.1} s)");
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
                    None => eprintln!("[tuning] {line}"),
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
