//! Champion / challenger: compares every training run of the experiment,
//! re-scores the Production model and the best newer candidate on the same
//! recent held-out data, and promotes the candidate (stage Production and
//! alias `@champion`, archiving the previous one) only when it is better.
//!
//! By default the held-out data is simulated: the pipeline's default fleet
//! (same machines, same seed) run one day past the default training week, and
//! the last `--holdout-hours` of it, i.e. the day after the training window.
//! (A different seed is a different fleet, with other baselines: a model trained
//! on one fleet is not expected to transfer to another.) `--source csv|postgres`
//! scores the most recent `--holdout-hours` of real data instead; from
//! PostgreSQL only those hours and the features' warm-up before them are read
//! (a fleet's table is never loaded whole), with the same scores as from the
//! whole table.
//!
//! Exit codes: 0 done (promoted or not), 1 failure, 2 bad arguments or nothing
//! to evaluate, 3 PostgreSQL or MLflow unreachable.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is the point

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vigil_examples::cli::SourceArgs;
use vigil_examples::drift::drifted_names;
use vigil_examples::evaluate::{Criterion, DRIFT_REPORT_FILE, Decision, EvaluateConfig, evaluate};
use vigil_examples::source::default_simulator_config;
use vigil_examples::{PipelineError, describe_tracker, open_tracker};
use vigil_features::WindowLength;

#[derive(Debug, Parser)]
#[command(
    name = "evaluate",
    version,
    about = "Compares runs and promotes the better model (champion / challenger)"
)]
struct Args {
    /// Promote the challenger when it wins (otherwise only report).
    #[arg(long)]
    promote: bool,
    /// What decides: `f1` (held-out F1), or `failures-caught-at-budget[=B]`
    /// (held-out failures caught among models within B false alarms per
    /// machine-day, default 0.5; ties: fewer false alarms). Each model runs at
    /// its own threshold and smoothing, as served.
    #[arg(long, default_value = "f1", value_parser = parse_criterion)]
    criterion: Criterion,
    /// F1 the challenger must gain over the champion (negative: promote a newer
    /// version unless it is worse by more than that); `--criterion f1` only.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    min_improvement: f64,
    // Held-out data (`sim`: fresh telemetry from `--seed`, not a training seed).
    #[command(flatten)]
    source: SourceArgs,
    /// Seed of the simulated fleet (`--source sim`): the training seed.
    #[arg(long, default_value_t = default_simulator_config().seed)]
    seed: u64,
    /// Simulated machines (`--source sim`): as in training.
    #[arg(long, default_value_t = default_simulator_config().machines)]
    machines: usize,
    /// Simulated days (`--source sim`): one more than training used, so that the
    /// held-out hours come after the training window.
    #[arg(long, default_value_t = default_simulator_config().days + 1.0)]
    days: f64,
    /// The most recent hours of data to score on.
    #[arg(long, default_value_t = 24)]
    holdout_hours: i64,
    /// MLflow experiment.
    #[arg(long, default_value = vigil_examples::train::DEFAULT_EXPERIMENT)]
    experiment: String,
    /// Registered model name.
    #[arg(long, default_value = vigil_examples::train::DEFAULT_MODEL_NAME)]
    model_name: String,
    /// Folder for plots and downloaded models.
    #[arg(long, default_value = "vigil-output/evaluate")]
    output_dir: PathBuf,
    /// Held-out rows each model explains with TreeSHAP for the mean |SHAP|
    /// comparison (evenly spaced); 0 skips it.
    #[arg(long, default_value_t = vigil_examples::explain::DEFAULT_SHAP_ROWS)]
    shap_rows: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(decision) => {
            print_decision(&decision);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn parse_criterion(s: &str) -> Result<Criterion, String> {
    s.parse().map_err(|e: PipelineError| e.to_string())
}

fn run(args: &Args) -> Result<Decision, PipelineError> {
    if args.holdout_hours <= 0 {
        return Err(PipelineError::Invalid(
            "--holdout-hours must be positive".into(),
        ));
    }
    let source = args.source.resolve(vigil_features::SimulatorConfig {
        seed: args.seed,
        machines: args.machines,
        days: args.days,
        ..default_simulator_config()
    })?;
    let config = EvaluateConfig {
        experiment: args.experiment.clone(),
        model_name: args.model_name.clone(),
        promote: args.promote,
        criterion: args.criterion,
        min_improvement: args.min_improvement,
        holdout: WindowLength::minutes(args.holdout_hours * 60),
        shap_rows: args.shap_rows,
        output_dir: args.output_dir.clone(),
    };
    let tracker = open_tracker()?;
    for line in vigil_examples::replay_spools(&tracker) {
        eprintln!("{line}");
    }
    println!("tracking: {}", describe_tracker(&tracker));
    evaluate(&tracker, &source, &config)
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

fn print_decision(d: &Decision) {
    println!();
    println!(
        "{:<34} {:<20} {:<9} {:>8} {:>9} {:>8} {:>8}",
        "run", "started", "status", "F1", "precision", "recall", "ROC-AUC"
    );
    for r in &d.runs {
        println!(
            "{:<34} {:<20} {:<9} {:>8} {:>9} {:>8} {:>8}",
            r.run_name.chars().take(34).collect::<String>(),
            r.started,
            r.status,
            fmt(r.f1),
            fmt(r.precision),
            fmt(r.recall),
            fmt(r.roc_auc)
        );
    }
    println!();
    for (role, m) in [("champion", &d.champion), ("challenger", &d.challenger)] {
        if let Some(m) = m {
            println!(
                "{role:<11} version {:<4} held-out F1 {:.4}  precision {:.4}  recall {:.4}  ROC-AUC {:.4}",
                m.version, m.scores.f1, m.scores.precision, m.scores.recall, m.scores.roc_auc
            );
        }
    }
    println!(
        "held-out:  {} rows scored, {} rows read from the source",
        d.holdout_rows, d.rows_read
    );
    println!();
    println!("decision: {}", d.explanation);
    match &d.drift {
        Some(r) => println!(
            "drift:    {} against version {}'s reference ({:.0} % of features; drifted: {}), {}",
            if r.drift.dataset_drift {
                "dataset drift"
            } else {
                "no dataset drift"
            },
            r.model_version,
            r.drift.share_drifted * 100.0,
            match drifted_names(&r.drift).join(", ") {
                names if names.is_empty() => "none".to_string(),
                names => names,
            },
            d.output_dir.join(DRIFT_REPORT_FILE).display()
        ),
        None => println!("drift:    not checked (the model has no drift reference)"),
    }
    println!("plots:    {}", d.output_dir.display());
}
