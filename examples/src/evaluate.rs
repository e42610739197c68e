//! Champion / challenger: compare the experiment's runs, re-score the current
//! Production model and the best newer candidate on the same recent held-out
//! data, and promote the candidate only when it is better.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use vigil_features::{TelemetryStore, TrainingSet, WindowLength, events_from_labels};
use vigil_metrics::{DatasetDrift, EventMetrics};
use vigil_tracking_client::{
    ModelVersion, Run, RunOptions, RunSearch, RunStatus, Stage, Tracker, TrackingError, TrackingUri,
};

use crate::alarm::alarm_event_params;
use crate::bundle::ModelBundle;
use crate::drift::{DriftReport, drift_params};
use crate::error::PipelineError;
use crate::evaluation::{
    TestScores, evaluate_split, event_metrics, log_event_metrics, split_failures,
};
use crate::explain::{DEFAULT_SHAP_ROWS, ShapChange, ShapSummary, shap_change, shap_summary};
use crate::modes::{ModeEvaluation, evaluate_modes};
use crate::plots;
use crate::schedule::JobLock;
use crate::source::DataSource;

/// The drift report evaluate writes into its output folder.
pub const DRIFT_REPORT_FILE: &str = "drift_report.json";

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
    /// What decides between champion and challenger. Default [`Criterion::F1`].
    pub criterion: Criterion,
    /// F1 the challenger must gain over the champion to be promoted
    /// ([`Criterion::F1`]). Default 0.
    pub min_improvement: f64,
    /// The most recent span of the data used for re-scoring. Default 1 day.
    pub holdout: WindowLength,
    /// Held-out rows (evenly spaced) each model explains with TreeSHAP for
    /// the mean |SHAP| comparison; 0 skips it. Default
    /// [`DEFAULT_SHAP_ROWS`](crate::explain::DEFAULT_SHAP_ROWS).
    pub shap_rows: usize,
    /// Where plots and the decision are written.
    pub output_dir: PathBuf,
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        EvaluateConfig {
            experiment: crate::train::DEFAULT_EXPERIMENT.to_string(),
            model_name: crate::train::DEFAULT_MODEL_NAME.to_string(),
            promote: false,
            criterion: Criterion::F1,
            min_improvement: 0.0,
            holdout: WindowLength::minutes(24 * 60),
            shap_rows: DEFAULT_SHAP_ROWS,
            output_dir: PathBuf::from("vigil-output/evaluate"),
        }
    }
}

/// What decides between champion and challenger, both re-scored on the same
/// held-out data with their own threshold and alarm smoothing (as served).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(into = "String")]
pub enum Criterion {
    /// Held-out sample-level F1 (by more than `min_improvement`).
    F1,
    /// Failures caught on the held-out data, among models within this many
    /// false alarms per machine-day; on a tie, fewer false alarms. A
    /// challenger over the budget never wins; one within it beats a champion
    /// over it.
    FailuresCaughtAtBudget(f64),
}

/// The budget of a bare `failures-caught-at-budget`.
pub const DEFAULT_FALSE_ALARM_BUDGET: f64 = 0.5;

impl std::fmt::Display for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Criterion::F1 => f.write_str("f1"),
            Criterion::FailuresCaughtAtBudget(b) => write!(f, "failures-caught-at-budget={b}"),
        }
    }
}

impl From<Criterion> for String {
    fn from(c: Criterion) -> String {
        c.to_string()
    }
}

impl std::str::FromStr for Criterion {
    type Err = PipelineError;

    /// `f1`, `failures-caught-at-budget` (budget 0.5 false alarms per
    /// machine-day) or `failures-caught-at-budget=B` (finite, `>= 0`).
    fn from_str(s: &str) -> Result<Criterion, PipelineError> {
        let bad = |why: &str| PipelineError::Invalid(format!("criterion {s:?}: {why}"));
        match s.trim().split_once('=') {
            None if s.trim() == "f1" => Ok(Criterion::F1),
            None if s.trim() == "failures-caught-at-budget" => Ok(
                Criterion::FailuresCaughtAtBudget(DEFAULT_FALSE_ALARM_BUDGET),
            ),
            Some((name, budget)) if name.trim() == "failures-caught-at-budget" => {
                let b: f64 = budget
                    .trim()
                    .parse()
                    .map_err(|_| bad("the budget is not a number"))?;
                if !(b.is_finite() && b >= 0.0) {
                    return Err(bad("the budget must be a finite number >= 0"));
                }
                Ok(Criterion::FailuresCaughtAtBudget(b))
            }
            _ => Err(bad(
                "expected f1, failures-caught-at-budget or failures-caught-at-budget=<B>",
            )),
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
    /// Failures caught, lead times and false alarms on the held-out rows, at
    /// its own threshold and smoothing.
    pub events: EventMetrics,
    /// Its failure-mode classifier on the held-out rows (`None`: the version
    /// has none).
    pub modes: Option<ModeEvaluation>,
    /// Its failure model explained on held-out rows (`None`: skipped, or a
    /// model stored without node covers).
    pub shap: Option<ShapSummary>,
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
    /// Rows read from the source: for a PostgreSQL table only the hold-out
    /// and the features' warm-up before it, otherwise all of it.
    pub rows_read: usize,
    /// What decided.
    pub criterion: Criterion,
    /// The challenger's top features by mean |SHAP| on the held-out rows,
    /// with the champion's values (empty unless both were explained).
    pub shap_change: Vec<ShapChange>,
    /// Whether the challenger was promoted.
    pub promoted: bool,
    /// The decision in words.
    pub explanation: String,
    /// Where the plots were written.
    pub output_dir: PathBuf,
    /// The held-out rows against the champion's drift reference (the
    /// challenger's when there is no champion yet); `None` when that model
    /// has no reference (a folder from before drift references).
    pub drift: Option<DriftReport>,
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

/// One version scored on the held-out rows.
struct HeldOut {
    scores: TestScores,
    events: EventMetrics,
    modes: Option<ModeEvaluation>,
    shap: Option<ShapSummary>,
    rows: usize,
    /// The held-out rows against the model's drift reference, when it has one.
    drift: Option<DatasetDrift>,
}

/// Scores `bundle` on the rows of `frame` from `holdout_from` on, as served
/// (its own features, threshold and smoothing), and draws its alarm timeline
/// and lead-time histogram into `plot_dir`.
fn rescore(
    bundle: &ModelBundle,
    frame: &vigil_features::TelemetryFrame,
    holdout_from: i64,
    (plot_dir, shap_rows): (&Path, usize),
) -> Result<HeldOut, PipelineError> {
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
    let minutes = bundle.meta.label_horizon_minutes;
    let horizon = Duration::try_from_secs_f64(minutes * 60.0)
        .map_err(|e| PipelineError::Invalid(format!("label horizon {minutes} minutes: {e}")))?;
    let failures = split_failures(&holdout, &events_from_labels(frame), horizon);
    let rules = alarm_event_params(horizon, bundle.meta.alarm_smoothing);
    let events = event_metrics(&holdout, &e.proba, bundle.meta.threshold, &failures, &rules)?;
    std::fs::create_dir_all(plot_dir).map_err(|e| PipelineError::Io {
        path: plot_dir.to_path_buf(),
        source: e,
    })?;
    plots::event_plots(
        plot_dir,
        &holdout,
        &e.proba,
        bundle.meta.threshold,
        (&failures, &rules),
        &events,
    )?;
    let modes = match &bundle.failure_modes {
        Some(model) if !holdout.is_empty() => Some(evaluate_modes(model, &holdout)?),
        _ => None,
    };
    let shap = shap_summary(&bundle.random_forest, &holdout.features, shap_rows)?;
    let drift = match &bundle.drift_reference {
        Some(reference) if !holdout.is_empty() => Some(crate::drift::compare_rows(
            reference,
            holdout.features.values.view(),
            &drift_params(),
        )?),
        _ => None,
    };
    Ok(HeldOut {
        drift,
        scores: e.scores,
        events,
        modes,
        shap,
        rows: holdout.len(),
    })
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
    let rank = |v: &ModelVersion| run_rank(&runs, v, config.criterion);
    let (champion_version, challenger_version) = candidates(tracker, config, &versions, &rank)?;
    let rescored = rescore_candidates(
        tracker,
        source,
        config,
        [champion_version.as_ref(), challenger_version.as_ref()],
    )?;
    let (wins, mut explanation) = decide(&rescored, config);
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
    if let Some(report) = &rescored.drift {
        write_drift_report(&config.output_dir, report)?;
    }
    let shap_change = shap_changes(&rescored);
    let decision = Decision {
        runs: runs.iter().map(run_row).collect(),
        champion: rescored.champion.map(|c| c.0),
        challenger: rescored.challenger.map(|c| c.0),
        holdout_rows: rescored.holdout_rows,
        rows_read: rescored.rows_read,
        criterion: config.criterion,
        shap_change,
        promoted,
        explanation,
        output_dir: config.output_dir.clone(),
        drift: rescored.drift,
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

/// How a version's training run ranks under `criterion` (higher is better):
/// test F1; or test failures caught within the budget (runs over it, or
/// without event metrics, last), then fewer false alarms.
fn run_rank(runs: &[Run], version: &ModelVersion, criterion: Criterion) -> (f64, f64) {
    let run = runs.iter().find(|r| r.info.run_id == version.run_id);
    let metric = |name: &str| run.and_then(|r| r.metric(name));
    match criterion {
        Criterion::F1 => (run_test_f1(runs, version), 0.0),
        Criterion::FailuresCaughtAtBudget(budget) => {
            match (
                metric("test_failures_caught"),
                metric("test_false_alarms_per_machine_day"),
            ) {
                (Some(caught), Some(fa)) if fa <= budget => (caught, -fa),
                _ => (f64::NEG_INFINITY, 0.0),
            }
        }
    }
}

/// The champion (the Production version) and the challenger: the newer,
/// unarchived version whose training run ranks best ([`run_rank`]).
fn candidates(
    tracker: &Tracker,
    config: &EvaluateConfig,
    versions: &[ModelVersion],
    rank: &dyn Fn(&ModelVersion) -> (f64, f64),
) -> Result<(Option<ModelVersion>, Option<ModelVersion>), PipelineError> {
    let champion = production_version(tracker, &config.model_name)?;
    let champion_number = champion.as_ref().map_or(0, version_number);
    let challenger = versions
        .iter()
        .filter(|v| version_number(v) > champion_number && v.stage() != Stage::Archived)
        .max_by(|a, b| {
            let (ra, rb) = (rank(a), rank(b));
            ra.0.total_cmp(&rb.0).then(ra.1.total_cmp(&rb.1))
        })
        .cloned();
    Ok((champion, challenger))
}

/// Champion and challenger re-scored on the same held-out rows, with their models.
#[derive(Debug)]
struct RescoredPair {
    champion: Option<(Rescored, ModelBundle)>,
    challenger: Option<(Rescored, ModelBundle)>,
    holdout_rows: usize,
    /// Rows read from the source (the hold-out and the features' warm-up
    /// before it, for a PostgreSQL table).
    rows_read: usize,
    /// The held-out rows against the champion's reference (the challenger's
    /// when there is no champion yet).
    drift: Option<DriftReport>,
}

fn rescore_candidates(
    tracker: &Tracker,
    source: &DataSource,
    config: &EvaluateConfig,
    [champion, challenger]: [Option<&ModelVersion>; 2],
) -> Result<RescoredPair, PipelineError> {
    let scratch = config.output_dir.join("models");
    let download = |v: Option<&ModelVersion>| {
        v.map(|v| ModelBundle::download(tracker, &config.model_name, &v.version, &scratch))
            .transpose()
    };
    let bundles = [download(champion)?, download(challenger)?];
    let warmup = bundles
        .iter()
        .flatten()
        .map(|b| b.feature_spec.warmup_span())
        .max()
        .unwrap_or(WindowLength::minutes(0));
    let loaded = holdout_source(source, config.holdout, warmup)?.load()?;
    let end = loaded.frame.time().iter().copied().max().unwrap_or(0);
    let holdout_from = end - config.holdout.as_micros();
    let mut holdout_rows = 0;
    let mut drift = Vec::new();
    let mut rescore_version = |v: &ModelVersion,
                               bundle: ModelBundle,
                               role: &str|
     -> Result<(Rescored, ModelBundle), PipelineError> {
        let plot_dir = config.output_dir.join(role);
        let held_out = rescore(
            &bundle,
            &loaded.frame,
            holdout_from,
            (&plot_dir, config.shap_rows),
        )?;
        holdout_rows = held_out.rows;
        if let Some(d) = held_out.drift {
            drift.push(DriftReport {
                drift: d,
                rows: held_out.rows,
                model_version: v.version.clone(),
            });
        }
        let rescored = Rescored {
            version: v.version.clone(),
            run_id: v.run_id.clone(),
            scores: held_out.scores,
            events: held_out.events,
            modes: held_out.modes,
            shap: held_out.shap,
        };
        Ok((rescored, bundle))
    };
    let [champion_bundle, challenger_bundle] = bundles;
    let champion = champion
        .zip(champion_bundle)
        .map(|(v, b)| rescore_version(v, b, "champion"))
        .transpose()?;
    let challenger = challenger
        .zip(challenger_bundle)
        .map(|(v, b)| rescore_version(v, b, "challenger"))
        .transpose()?;
    // The champion is rescored first: its report, when it has a reference.
    let drift = drift.into_iter().next();
    Ok(RescoredPair {
        champion,
        challenger,
        holdout_rows,
        rows_read: loaded.frame.len(),
        drift,
    })
}

/// What `evaluate` reads of `source`: a PostgreSQL table without a start time
/// from its newest sample minus the hold-out and `warmup` (the span after
/// which the features no longer depend on earlier rows,
/// [`FeatureSpec::warmup_span`](vigil_features::FeatureSpec::warmup_span)),
/// so a fleet's table is never loaded whole and the hold-out scores as it
/// would from the whole table; a CSV file or the simulator whole.
fn holdout_source(
    source: &DataSource,
    holdout: WindowLength,
    warmup: WindowLength,
) -> Result<DataSource, PipelineError> {
    let DataSource::Postgres {
        config,
        table,
        query,
    } = source
    else {
        return Ok(source.clone());
    };
    if query.from.is_some() {
        return Ok(source.clone());
    }
    let span = holdout.as_micros().saturating_add(warmup.as_micros());
    Ok(
        match TelemetryStore::connect(config, table)?.time_span(query)? {
            Some((_, last)) => source.starting_at(last.saturating_sub(span)),
            None => source.clone(),
        },
    )
}

/// Whether the challenger wins, and why, in words (with both models' event
/// numbers).
fn decide(rescored: &RescoredPair, config: &EvaluateConfig) -> (bool, String) {
    let (wins, mut why) = match config.criterion {
        Criterion::F1 => decide_by_f1(rescored, config.min_improvement),
        Criterion::FailuresCaughtAtBudget(budget) => decide_by_failures(rescored, budget),
    };
    for (role, r) in [
        ("champion", &rescored.champion),
        ("challenger", &rescored.challenger),
    ] {
        if let Some((r, _)) = r {
            why.push_str(&format!(
                "; {role} v{}: {}",
                r.version,
                event_words(&r.events)
            ));
        }
    }
    if let (Some((old, _)), Some((new, _))) = (&rescored.champion, &rescored.challenger) {
        if let (Some(o), Some(n)) = (&old.modes, &new.modes) {
            why.push_str(&format!("; {}", mode_words(o, n)));
        }
        let change = shap_changes(rescored);
        if !change.is_empty() {
            why.push_str(&format!("; {}", shap_words(&change)));
        }
    }
    (wins, why)
}

/// "per-mode F1, challenger vs champion: overheat 0.52 vs 0.48, …".
fn mode_words(champion: &ModeEvaluation, challenger: &ModeEvaluation) -> String {
    let per_mode: Vec<String> = challenger
        .per_mode
        .iter()
        .filter(|m| m.mode != "none")
        .map(|m| {
            let old = champion.per_mode.iter().find(|o| o.mode == m.mode);
            let old = old.map_or("–".to_string(), |o| format!("{:.2}", o.f1));
            format!("{} {:.2} vs {old}", m.mode, m.f1)
        })
        .collect();
    format!(
        "per-mode F1, challenger vs champion: {} (macro {:.2} vs {:.2})",
        per_mode.join(", "),
        challenger.macro_f1,
        champion.macro_f1
    )
}

/// How many top features the SHAP comparison shows.
const SHAP_CHANGE_FEATURES: usize = 5;

/// The challenger's top features by mean |SHAP| with the champion's values,
/// when both models were explained.
fn shap_changes(rescored: &RescoredPair) -> Vec<ShapChange> {
    match (&rescored.champion, &rescored.challenger) {
        (Some((old, _)), Some((new, _))) => match (&old.shap, &new.shap) {
            (Some(o), Some(n)) => shap_change(o, n, SHAP_CHANGE_FEATURES),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// "mean |SHAP| of the challenger's top features (champion's): x 0.031 (0.025), …".
fn shap_words(change: &[ShapChange]) -> String {
    let parts: Vec<String> = change
        .iter()
        .map(|c| {
            let old = c.champion.map_or("–".to_string(), |v| format!("{v:.4}"));
            format!("{} {:.4} ({old})", c.feature, c.challenger)
        })
        .collect();
    format!(
        "mean |SHAP| of the challenger's top features (champion's): {}",
        parts.join(", ")
    )
}

/// "catches 3 of 4 failures (median lead 12.5 min), 0.21 false alarms per machine-day".
fn event_words(e: &EventMetrics) -> String {
    format!(
        "catches {} of {} failures (median lead {:.1} min), {:.2} false alarms per machine-day",
        e.failures_caught,
        e.failures_total,
        e.lead_time_minutes.median,
        e.false_alarms_per_machine_day
    )
}

/// [`Criterion::FailuresCaughtAtBudget`].
fn decide_by_failures(rescored: &RescoredPair, budget: f64) -> (bool, String) {
    let holdout_rows = rescored.holdout_rows;
    let champion = rescored.champion.as_ref().map(|c| &c.0);
    let challenger = rescored.challenger.as_ref().map(|c| &c.0);
    let within = |r: &Rescored| r.events.false_alarms_per_machine_day <= budget;
    match (champion, challenger) {
        (None, None) => (false, "no registered candidate: nothing to promote".into()),
        (Some(old), None) => (
            false,
            format!(
                "no candidate newer than the Production version {}: nothing to promote",
                old.version
            ),
        ),
        (_, Some(new)) if !within(new) => (
            false,
            format!(
                "version {} stays unpromoted: {:.2} false alarms per machine-day on {holdout_rows} held-out rows is over the budget of {budget}",
                new.version, new.events.false_alarms_per_machine_day
            ),
        ),
        (None, Some(new)) => (
            true,
            format!(
                "no Production version yet: version {} (within the budget of {budget} false alarms per machine-day) becomes the champion",
                new.version
            ),
        ),
        (Some(old), Some(new)) => {
            let (n, o) = (&new.events, &old.events);
            let better = !within(old)
                || n.failures_caught > o.failures_caught
                || (n.failures_caught == o.failures_caught
                    && n.false_alarms_per_machine_day < o.false_alarms_per_machine_day);
            let verdict = if better { "beats" } else { "does not beat" };
            (
                better,
                format!(
                    "version {} {verdict} Production version {} on failures caught within {budget} false alarms per machine-day ({holdout_rows} held-out rows): {} vs {} caught, {:.2} vs {:.2} false alarms per machine-day",
                    new.version,
                    old.version,
                    n.failures_caught,
                    o.failures_caught,
                    n.false_alarms_per_machine_day,
                    o.false_alarms_per_machine_day
                ),
            )
        }
    }
}

/// [`Criterion::F1`].
fn decide_by_f1(rescored: &RescoredPair, min_improvement: f64) -> (bool, String) {
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

/// How long a promotion waits for another one on the same local store.
const PROMOTION_LOCK_WAIT: Duration = Duration::from_secs(120);

/// Makes `version` the champion: alias `@champion` and stage Production
/// (previous Production versions archived), safe against promotions running
/// at the same time. On a local store the change holds an exclusive file lock
/// (`<store>/.vigil-promotion.lock`); on a server, which has no lock, the
/// registry is read again afterwards and settled on the version `@champion`
/// names (the alias is a single value: the last writer's), so concurrent
/// promotions leave exactly one Production version, the champion.
pub fn promote(tracker: &Tracker, name: &str, version: &str) -> Result<(), PipelineError> {
    let _lock = match &tracker.config().uri {
        TrackingUri::Local(dir) => Some(wait_for_lock(&dir.join(".vigil-promotion.lock"))?),
        TrackingUri::Server(_) => None,
    };
    tracker.store().set_alias(name, CHAMPION_ALIAS, version)?;
    tracker.promote(name, version, Stage::Production)?;
    settle_production(tracker, name)
}

fn wait_for_lock(path: &Path) -> Result<JobLock, PipelineError> {
    let deadline = std::time::Instant::now() + PROMOTION_LOCK_WAIT;
    loop {
        if let Some(lock) =
            JobLock::try_acquire(path).map_err(|e| PipelineError::Invalid(e.to_string()))?
        {
            return Ok(lock);
        }
        if std::time::Instant::now() > deadline {
            return Err(PipelineError::Invalid(format!(
                "another promotion has held {} for over {} s",
                path.display(),
                PROMOTION_LOCK_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Exactly one Production version, the one `@champion` names: others in
/// Production are archived, and the champion is moved to Production if a
/// concurrent promotion archived it. Repeated until a fresh read finds the
/// registry settled (another promotion may move the alias meanwhile).
fn settle_production(tracker: &Tracker, name: &str) -> Result<(), PipelineError> {
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        let champion = tracker
            .store()
            .get_model_version_by_alias(name, CHAMPION_ALIAS)?;
        let production: Vec<ModelVersion> = all_versions(tracker, name)?
            .into_iter()
            .filter(|v| v.stage() == Stage::Production)
            .collect();
        if production.len() == 1 && production[0].version == champion.version {
            return Ok(());
        }
        for v in production.iter().filter(|v| v.version != champion.version) {
            tracker
                .store()
                .transition_stage(name, &v.version, Stage::Archived, false)?;
        }
        if !production.iter().any(|v| v.version == champion.version) {
            tracker
                .store()
                .transition_stage(name, &champion.version, Stage::Production, false)?;
        }
    }
    Err(PipelineError::Invalid(format!(
        "the registry of {name:?} did not settle on one Production version in {ROUNDS} rounds"
    )))
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
    plots::shap_change(&config.output_dir, &shap_changes(rescored))?;
    Ok(())
}

/// A model's held-out event metrics and, when it has a mode model, its
/// per-mode scores (`<prefix>f1_overheat`, …, `<prefix>mode_f1_macro`).
fn log_held_out(
    run: &vigil_tracking_client::ActiveRun,
    prefix: &str,
    rescored: &Rescored,
) -> Result<(), PipelineError> {
    log_event_metrics(run, prefix, &rescored.events)?;
    if let Some(modes) = &rescored.modes {
        let metrics = modes.metrics(prefix);
        run.log_metrics(metrics.iter().map(|(k, v)| (k.as_str(), *v)), 0)?;
    }
    Ok(())
}

/// `drift_report.json` (`{"dataset_drift", "share_drifted", "features":
/// [{"name", "method", "statistic", "threshold", "drifted"}], ...}`) and
/// `drift.png` (each feature's statistic over its threshold, sorted).
fn write_drift_report(dir: &Path, report: &DriftReport) -> Result<(), PipelineError> {
    let path = dir.join(DRIFT_REPORT_FILE);
    let json =
        serde_json::to_vec_pretty(report).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    std::fs::write(&path, json).map_err(|e| PipelineError::Io { path, source: e })?;
    plots::drift_plot(dir, &report.drift)
}

/// `drift_share` and `drift_<feature>` (each feature's statistic), and the
/// report as an artifact.
fn log_drift(
    run: &vigil_tracking_client::ActiveRun,
    report: &DriftReport,
) -> Result<(), PipelineError> {
    let d = &report.drift;
    let names: Vec<String> = d
        .features
        .iter()
        .map(|f| format!("drift_{}", f.name))
        .collect();
    let metrics = std::iter::once(("drift_share", d.share_drifted)).chain(
        names
            .iter()
            .zip(&d.features)
            .filter(|(_, f)| f.statistic.is_finite())
            .map(|(n, f)| (n.as_str(), f.statistic)),
    );
    run.log_metrics(metrics, 0)?;
    run.log_param("drift_model_version", &report.model_version)?;
    run.set_tag("vigil.dataset_drift", d.dataset_drift.to_string())?;
    let json =
        serde_json::to_vec_pretty(report).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    run.log_artifact_bytes(DRIFT_REPORT_FILE, &json)?;
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
    run.log_param("criterion", decision.criterion)?;
    if let Some(c) = &decision.champion {
        run.log_param("champion_version", &c.version)?;
        run.log_metric("champion_holdout_f1", c.scores.f1)?;
        log_held_out(&run, "champion_holdout_", c)?;
    }
    if let Some(c) = &decision.challenger {
        run.log_param("challenger_version", &c.version)?;
        run.log_metric("challenger_holdout_f1", c.scores.f1)?;
        log_held_out(&run, "challenger_holdout_", c)?;
    }
    let json =
        serde_json::to_vec_pretty(decision).map_err(|e| PipelineError::Invalid(e.to_string()))?;
    run.log_artifact_bytes("decision.json", &json)?;
    if let Some(report) = &decision.drift {
        log_drift(&run, report)?;
    }
    for plot in [
        "f1_trend.png",
        "importance_change.png",
        "shap_change.png",
        "champion/alarm_timeline.png",
        "champion/lead_time_histogram.png",
        "challenger/alarm_timeline.png",
        "challenger/lead_time_histogram.png",
        "drift.png",
    ] {
        let path = decision.output_dir.join(plot);
        if path.exists() {
            run.log_artifact_as(&path, &format!("plots/{plot}"))?;
        }
    }
    run.end(RunStatus::Finished)?;
    Ok(())
}
