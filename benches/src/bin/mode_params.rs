//! How the failure-mode classifier should get its hyper-parameters, measured:
//! (a) the binary model's tuned parameters plus balanced class weights (what
//! the pipeline does), against (b) a second TPE study of its own, maximising
//! the mode model's validation macro F1 over the same search space. Both are
//! refitted on train + validation and scored once on the test split, per seed
//! of the default simulation. One JSON line per seed.
//!
//! ```text
//! mode_params [--seeds 1,2,3] [--trials 20]
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line driver: its output is the point

use std::sync::Arc;
use std::time::Instant;

use vigil_examples::modes::{ModeFit, evaluate_modes, fit_mode_model};
use vigil_examples::source::default_simulator_config;
use vigil_examples::train::{ProgressFn, Splits, TrainConfig};
use vigil_examples::tune::{TuningData, forest_params, tune};
use vigil_features::{FeatureSpec, TrainingSet, simulate};
use vigil_tracking_client::{RunOptions, Tracker, TrackingConfig};
use vigil_tuning::{Direction, ObjectiveError, Study, Trial};

type Error = Box<dyn std::error::Error>;

/// The pipeline's search space (`vigil_examples::tune`).
fn suggest(trial: &mut Trial<'_>) -> Result<(), vigil_tuning::TuningError> {
    trial.suggest_int("n_estimators", 50, 300)?;
    trial.suggest_int("max_depth", 3, 20)?;
    trial.suggest_int("min_samples_split", 2, 20)?;
    trial.suggest_int("min_samples_leaf", 1, 10)?;
    trial.suggest_categorical("max_features", &["sqrt", "log2"])?;
    Ok(())
}

/// Macro F1 on `score` of a mode model fitted on `fit` with `params`.
fn mode_macro_f1(
    params: &vigil_forest::RandomForestParams,
    fit: &TrainingSet,
    score: &TrainingSet,
) -> Result<f64, Error> {
    match fit_mode_model(params, fit)? {
        ModeFit::Trained { model, .. } => Ok(evaluate_modes(&model, score)?.macro_f1),
        ModeFit::Skipped { reason } => Err(reason.into()),
    }
}

fn one_seed(seed: u64, trials: usize) -> Result<serde_json::Value, Error> {
    let sim = simulate(&vigil_features::SimulatorConfig {
        seed,
        ..default_simulator_config()
    })?;
    let set = TrainingSet::build(&sim.frame, &FeatureSpec::default())?;
    let config = TrainConfig {
        seed,
        n_trials: trials,
        ..TrainConfig::default()
    };
    let splits = Splits::by_time(&set, &config, 30.0)?;
    let data = TuningData {
        train: &splits.train,
        validation: &splits.validation,
    };
    // (a) The binary study, then its parameters for the mode model.
    let dir = std::env::temp_dir().join(format!("vigil-mode-params-{}-{seed}", std::process::id()));
    let tracker = Tracker::new(TrackingConfig::builder().local_dir(&dir).build()?)?;
    let exp = tracker.get_or_create_experiment("mode-params")?;
    let parent = tracker.start_run(RunOptions::new(&exp.experiment_id))?;
    let started = Instant::now();
    let quiet: ProgressFn = Arc::new(|_| {});
    let binary = tune(&config, data, &parent, &quiet)?;
    let binary_seconds = started.elapsed().as_secs_f64();
    parent.finish()?;
    std::fs::remove_dir_all(&dir).ok();
    let binary_params = forest_params(&binary.best_params, &config)?;
    let a_validation = mode_macro_f1(&binary_params, &splits.train, &splits.validation)?;
    let a_test = mode_macro_f1(&binary_params, &splits.train_validation, &splits.test)?;
    // (b) A second study of its own.
    let study = Study::builder()
        .direction(Direction::Maximize)
        .seed(seed)
        .build()?;
    let started = Instant::now();
    study.optimize(trials, None, |trial| {
        suggest(trial)?;
        let params = forest_params(&trial.params(), &config)
            .map_err(|e| ObjectiveError::msg(e.to_string()))?;
        mode_macro_f1(&params, &splits.train, &splits.validation)
            .map_err(|e| ObjectiveError::msg(e.to_string()))
    })?;
    let mode_seconds = started.elapsed().as_secs_f64();
    let best = study.best_trial()?;
    let own_params = forest_params(&best.param_values(), &config)?;
    let b_test = mode_macro_f1(&own_params, &splits.train_validation, &splits.test)?;
    Ok(serde_json::json!({
        "seed": seed,
        "trials": trials,
        "binary_params": {"validation_macro_f1": a_validation, "test_macro_f1": a_test,
                          "study_seconds": binary_seconds},
        "own_study": {"validation_macro_f1": best.value, "test_macro_f1": b_test,
                      "study_seconds": mode_seconds, "params": best.param_values()},
    }))
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let seeds: Vec<u64> = match value("--seeds") {
        Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![1, 2, 3],
    };
    let trials: usize = value("--trials").map_or(Ok(20), |t| t.parse())?;
    for seed in seeds {
        println!("{}", one_seed(seed, trials)?);
    }
    Ok(())
}
