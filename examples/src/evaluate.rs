//! Champion / challenger: compare the experiment's runs, re-score the current
//! Production model and the best newer candidate on the same recent held-out
//! data, and promote the candidate only when it is better.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use vigil_features::{TrainingSet, WindowLength};
use vigil_tracking_client::{
    ModelVersion, Run, RunOptions, RunSearch, RunStatus, Stage, Tracker, TrackingError,
};

use crate::bundle::ModelBundle;
use crate::error::PipelineError;
use crate::evaluation::{TestScores, evaluate_split};
use crate::plots;
use crate::source::DataSource;

/// The alias the promoted version carries.
pub const CHAMPION_ALIAS: &str = "champion";

/// Settings of an evaluation.
#[derive(Debug, Clone)]
pub struct EvaluateConfig {
    /// The experiment whose runs are compared.
    pub experiment: String,
    /// The registered model.
    pub model_name: String,
    /// Promote the challenger when it wins (otherwise only report).
    pub promote: bool,
    /// F1 the challenger must gain over the champion to be promoted. Default 0.
    pub min_improvement: f64,
    /// The most recent span of the data used for re-scoring. Default 1 day.
    pub holdout: WindowLength,
    /// Where plots and the decision are written.
    pub output_dir: PathBuf,
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        EvaluateConfig {
            experiment: crate::train::DEFAULT_EXPERIMENT.to_string(),
            model_name: crate::train::DEFAULT_MODEL_NAME.to_string(),
            promote: false,
            min_improvement: 0.0,
            holdout: WindowLength::minutes(24 * 60),
            output_dir: PathBuf::from("vigil-output/evaluate"),
        }
    }
}

/// One row of the run comparison table.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// Run name.
    pub run_name: String,
    /// Start time (RFC 3339).
    pub started: String,
    /// Run status.
    pub status: String,
    /// Test F1.
    pub f1: Option<f64>,
    /// Test precision.
    pub precision: Option<f64>,
    /// Test recall.
    pub recall: Option<f64>,
    /// Test ROC-AUC.
    pub roc_auc: Option<f64>,
}

/// A model version re-scored on the held-out data.
#[derive(Debug, Clone, Serialize)]
pub struct Rescored {
    /// The version.
    pub version: String,
    /// Its training run.
    pub run_id: String,
    /// Its scores on the held-out rows, at its own threshold.
    pub scores: TestScores,
}

/// What `evaluate` decided, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Every training run, best test F1 first.
    pub runs: Vec<RunRow>,
    /// The Production version before this evaluation.
    pub champion: Option<Rescored>,
    /// The best newer version.
    pub challenger: Option<Rescored>,
    /// Held-out rows both were scored on.
    pub holdout_rows: usize,
    /// Whether the challenger was promoted.
    pub promoted: bool,
    /// The decision in words.
    pub explanation: String,
    /// Where the plots were written.
    pub output_dir: PathBuf,
}

fn run_row(run: &Run) -> RunRow {
    let started = DateTime::<Utc>::from_timestamp_millis(run.info.start_time)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    RunRow {
        run_id: run.info.run_id.clone(),
        run_name: run.info.run_name.clone(),
        started,
        status: format!("{:?}", run.info.status),
        f1: run.metric("test_f1"),
        precision: run.metric("test_precision"),
        recall: run.metric("test_recall"),
        roc_auc: run.metric("test_roc_auc"),
    }
}

fn version_number(v: &ModelVersion) -> u64 {
    v.version.parse().unwrap_or(0)
}

/// All versions of `name`, oldest first.
pub fn all_versions(tracker: &Tracker, name: &str) -> Result<Vec<ModelVersion>, PipelineError> {
    let filter = format!("name = '{}'", name.replace('\'', "''"));
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = tracker
            .store()
            .search_model_versions(Some(&filter), 1000, token.as_deref())?;
        versions.extend(page.items);
        match page.next_page_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    versions.sort_by_key(version_number);
    Ok(versions)
}

/// The current Production version, if any.
fn production_version(
    tracker: &Tracker,
    name: &str,
) -> Result<Option<ModelVersion>, PipelineError> {
    match tracker
        .store()
        .get_latest_versions(name, &[Stage::Production])
    {
        Ok(mut v) => Ok(v.pop()),
        Err(TrackingError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn rescore(
    bundle: &ModelBundle,
    frame: &vigil_features::TelemetryFrame,
    holdout_from: i64,
) -> Result<(TestScores, usize), PipelineError> {
    // Each model computes its own features: the spec travels with the model.
    let set = TrainingSet::build(frame, &bundle.feature_spec)?;
    let rows: Vec<usize> = (0..set.len())
        .filter(|&i| set.features.time[i] >= holdout_from)
        .collect();
    let holdout = set.select_rows(&rows);
    let e = evaluate_split(
        &bundle.random_forest,
        &bundle.isolation_forest,
        &holdout,
        bundle.meta.threshold,
    )?;
    Ok((e.scores, holdout.len()))
}

/// Compares, re-scores and (with `promote`) promotes.
pub fn evaluate(
    tracker: &Tracker,
    source: &DataSource,
    config: &EvaluateConfig,
) -> Result<Decision, PipelineError> {
    std::fs::create_dir_all(&config.output_dir).map_err(|e| PipelineError::Io {
        path: config.output_dir.clone(),
        source: e,
    })?;
    let experiment_id = experiment_id(tracker, &config.experiment)?;
    let runs = training_runs(tracker, &experiment_id)?;
    let versions = all_versions(tracker, &config.model_name)?;
    if versions.is_empty() {
        return Err(PipelineError::Invalid(format!(
            "no registered versions of {:?}: run the pipeline first",
            config.model_name
        )));
    }
    let run_f1 = |v: &ModelVersion| run_test_f1(&runs, v);
    let (champion_version, challenger_version) = candidates(tracker, config, &versions, &run_f1)?;
    let rescored = rescore_candidates(
        tracker,
        source,
        config,
        [champion_version.as_ref(), challenger_version.as_ref()],
    )?;
    let (wins, mut explanation) = decide(&rescored, config.min_improvement);
    let mut promoted = false;
    if wins && let Some((c, _)) = &rescored.challenger {
        if config.promote {
            promote(tracker, &config.model_name, &c.version)?;
            promoted = true;
            explanation.push_str(&format!(
                "; promoted: stage Production and alias @{CHAMPION_ALIAS}, previous Production archived"
            ));
        } else {
            explanation.push_str("; run with --promote to promote it");
        }
    }
    draw_plots(config, &versions, &run_f1, &rescored)?;
    let decision = Decision {
        runs: runs.iter().map(run_row).collect(),
        champion: rescored.champion.map(|c| c.0),
        challenger: rescored.challenger.map(|c| c.0),
        holdout_rows: rescored.holdout_rows,
        promoted,
        explanation,
        output_dir: config.output_dir.clone(),
    };
    record(tracker, &experiment_id, &decision)?;
    Ok(decision)
}

fn experiment_id(tracker: &Tracker, experiment: &str) -> Result<String, PipelineError> {
    let found = tracker.store().get_experiment_by_name(experiment)?;
    let experiment = found.ok_or_else(|| {
        PipelineError::Invalid(format!(
            "experiment {experiment:?} does not exist: run the pipeline first"
        ))
    })?;
    Ok(experiment.experiment_id)
}

/// Every training run of the experiment, best test F1 first.
fn training_runs(tracker: &Tracker, experiment_id: &str) -> Result<Vec<Run>, PipelineError> {
    Ok(tracker.search_all_runs(
        RunSearch::in_experiments([experiment_id.to_string()])
            .filter("tags.`vigil.job` = 'train'")
            .order_by("metrics.test_f1 DESC"),
    )?)
}

/// The test F1 of the run that trained `version` (−∞ when it has none).
fn run_test_f1(runs: &[Run], version: &ModelVersion) -> f64 {
    runs.iter()
        .find(|r| r.info.run_id == version.run_id)
        .and_then(|r| r.metric("test_f1"))
        .unwrap_or(f64::NEG_INFINITY)
}

/// The champion (the Production version) and the challenger: the newer,
/// unarchived version whose training run has the best test F1.
fn candidates(
    tracker: &Tracker,
    config: &EvaluateConfig,
    versions: &[ModelVersion],
    run_f1: &dyn Fn(&ModelVersion) -> f64,
) -> Result<(Option<ModelVersion>, Option<ModelVersion>), PipelineError> {
    let champion = production_version(tracker, &config.model_name)?;
    let champion_number = champion.as_ref().map_or(0, version_number);
    let challenger = versions
        .iter()
        .filter(|v| version_number(v) > champion_number && v.stage() != Stage::Archived)
        .max_by(|a, b| run_f1(a).total_cmp(&run_f1(b)))
        .cloned();
    Ok((champion, challenger))
}

/// Champion and challenger re-scored on the same held-out rows, with their models.
#[derive(Debug)]
struct RescoredPair {
    champion: Option<(Rescored, ModelBundle)>,
    challenger: Option<(Rescored, ModelBundle)>,
    holdout_rows: usize,
}

fn rescore_candidates(
    tracker: &Tracker,
    source: &DataSource,
    config: &EvaluateConfig,
    [champion, challenger]: [Option<&ModelVersion>; 2],
) -> Result<RescoredPair, PipelineError> {
    let scratch = config.output_dir.join("models");
    let loaded = source.load()?;
    let end = loaded.frame.time().iter().copied().max().unwrap_or(0);
    let holdout_from = end - config.holdout.as_micros();
    let mut holdout_rows = 0;
    let mut rescore_version = |v: &ModelVersion| -> Result<(Rescored, ModelBundle), PipelineError> {
        let bundle = ModelBundle::download(tracker, &config.model_name, &v.version, &scratch)?;
        let (scores, n) = rescore(&bundle, &loaded.frame, holdout_from)?;
        holdout_rows = n;
        let rescored = Rescored {
            version: v.version.clone(),
            run_id: v.run_id.clone(),
            scores,
        };
        Ok((rescored, bundle))
    };
    let champion = champion.map(&mut rescore_version).transpose()?;
    let challenger = challenger.map(&mut rescore_version).transpose()?;
    Ok(RescoredPair {
        champion,
        challenger,
        holdout_rows,
    })
}

/// Whether the challenger wins, and why, in words.
fn decide(rescored: &RescoredPair, min_improvement: f64) -> (bool, String) {
    let holdout_rows = rescored.holdout_rows;
    let champion = rescored.champion.as_ref().map(|c| &c.0);
    let challenger = rescored.challenger.as_ref().map(|c| &c.0);
    match (champion, challenger) {
        (_, None) => (
            false,
            format!(
                "no candidate newer than the Production version {}: nothing to promote",
                champion.map_or("(none)", |c| c.version.as_str())
            ),
        ),
        (None, Some(c)) => (
            true,
            format!(
                "no Production version yet: version {} (held-out F1 {:.4}) becomes the champion",
                c.version, c.scores.f1
            ),
        ),
        (Some(old), Some(new)) => {
            let gain = new.scores.f1 - old.scores.f1;
            if gain > min_improvement {
                (
                    true,
                    format!(
                        "version {} beats Production version {} on {holdout_rows} held-out rows: F1 {:.4} vs {:.4} (+{gain:.4} > {min_improvement})",
                        new.version, old.version, new.scores.f1, old.scores.f1,
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "Production version {} stays: challenger version {} has F1 {:.4} vs {:.4} on {holdout_rows} held-out rows (gain {gain:+.4}, needs > {min_improvement})",
                        old.version, new.version, new.scores.f1, old.scores.f1,
                    ),
                )
            }
        }
    }
}

/// Makes `version` the champion: alias `@champion` and stage Production.
fn promote(tracker: &Tracker, name: &str, version: &str) -> Result<(), PipelineError> {
    tracker.store().set_alias(name, CHAMPION_ALIAS, version)?;
    tracker.promote(name, version, Stage::Production)?;
    Ok(())
}

/// F1 across versions, and how the top importances moved.
fn draw_plots(
    config: &EvaluateConfig,
    versions: &[ModelVersion],
    run_f1: &dyn Fn(&ModelVersion) -> f64,
    rescored: &RescoredPair,
) -> Result<(), PipelineError> {
    let trend: Vec<(f64, f64)> = versions
        .iter()
        .filter_map(|v| {
            let f1 = run_f1(v);
            f1.is_finite().then_some((version_number(v) as f64, f1))
        })
        .collect();
    plots::f1_trend(&config.output_dir, &trend)?;
    if let (Some((_, old)), Some((_, new))) = (&rescored.champion, &rescored.challenger) {
        plots::importance_change(
            &config.output_dir,
            &new.meta.feature_names,
            old.random_forest.feature_importances(),
            new.random_forest.feature_importances(),
        )?;
    }
    Ok(())
}

/// Logs the decision as an `evaluate` run, with the plots.
fn record(
    tracker: &Tracker,
    experiment_id: &str,
    decision: &Decision,
) -> Result<(), PipelineError> {
    let run = tracker.start_run(
        RunOptions::new(experiment_id)
            .name(format!("evaluate-{}", Utc::now().format("%Y%m%d-%H%M%S")))
            .tag("vigil.job", "evaluate"),
    )?;
    run.set_tag("vigil.decision", decision.explanation.clone())?;
    run.log_param("promoted", decision.promoted)?;
    if let Some(c) = &decision.champion {
        run.log_param("champion_version", &c.version)?;
        run.log_metric("champion_holdout_f1", c.scores.f1)?;
    }
    if let Some(c) = &decision.challenger {
        run.log_param("challenger_version", &c.version)?;
        run.log_metric("challenger_holdout_f1", c.scores.f1)?;
    }
    let json =
        serde_json::to_vec_pretty(decision).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    run.log_artifact_bytes("decision.json", &json)?;
    for plot in ["f1_trend.png", "importance_change.png"] {
        let path = decision.output_dir.join(plot);
        if path.exists() {
            run.log_artifact_as(&path, &format!("plots/{plot}"))?;
        }
    }
    run.end(RunStatus::Finished)?;
    Ok(())
}
