//! The shared study: where it lives ([`StudyStorage`], [`TuningSetup`]), the
//! leader's side (announcing the study, starting and waiting for workers,
//! ending lost trial runs) and the joining worker's ([`join_study`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use vigil_features::PgConfig;
use vigil_tracking_client::{ActiveRun, RunSearch, RunStatus, Tracker};
use vigil_tuning::{Heartbeat, PostgresStorage, Study};

use super::{
    TrialReporter, TrialRows, TrialRuns, TuningData, new_study, suggest, tracked_trial,
    watch_own_trials,
};
use crate::error::PipelineError;
use crate::train::{ProgressFn, Splits, TrainConfig};

/// Schema of the study tables in PostgreSQL (vigil-tuning's default).
pub const DEFAULT_STUDY_SCHEMA: &str = "vigil_tuning";

/// Heartbeat of trials in a shared study: a beat every 5 s; a trial without one
/// for 20 s is failed by the next worker that looks (its worker died).
pub const STUDY_HEARTBEAT: Heartbeat = Heartbeat {
    interval: Duration::from_secs(5),
    grace_period: Duration::from_secs(20),
};

/// How long [`join_study`] waits for the leader's study and parent run to appear.
pub const JOIN_WAIT: Duration = Duration::from_secs(120);

/// The tags of the leader's parent run that joining workers read.
const TAG_STUDY: &str = "vigil.tuning_study";
const TAG_N_TRIALS: &str = "vigil.tuning_n_trials";
const TAG_FINGERPRINT: &str = "vigil.tuning_fingerprint";
const TAG_HEARTBEAT: &str = "vigil.tuning_heartbeat_ms";

/// Where the pipeline's study is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StudyStorage {
    /// In this process (the default): one worker, reproducible from the seed.
    #[default]
    Memory,
    /// vigil-tuning's PostgreSQL storage, shared by worker processes on any host.
    Postgres {
        /// A `postgres://` URL or a `key=value` connection string.
        url: String,
        /// Schema of the study tables ([`DEFAULT_STUDY_SCHEMA`] by default).
        schema: String,
    },
}

impl StudyStorage {
    /// PostgreSQL at `url`, or at the `POSTGRES_*` variables' database (the
    /// one the pipeline reads telemetry from) when `url` is `None`.
    pub fn postgres(url: Option<String>, schema: &str) -> Result<StudyStorage, PipelineError> {
        let url = match url {
            Some(url) => url,
            None => conninfo(&PgConfig::from_env()?),
        };
        Ok(StudyStorage::Postgres {
            url,
            schema: schema.to_string(),
        })
    }

    pub(super) fn open(&self) -> Result<Option<Arc<PostgresStorage>>, PipelineError> {
        match self {
            StudyStorage::Memory => Ok(None),
            StudyStorage::Postgres { url, schema } => Ok(Some(Arc::new(
                PostgresStorage::connect_with_schema(url, schema)?,
            ))),
        }
    }
}

/// A `key=value` connection string for `config` (values quoted, so any
/// password works).
fn conninfo(config: &PgConfig) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    format!(
        "host={} port={} user={} password={} dbname={}",
        quote(&config.host),
        config.port,
        quote(&config.user),
        quote(&config.password),
        quote(&config.dbname)
    )
}

/// How to start one more worker: `program` with `args`, to which
/// `--join-study NAME` is appended. It must load the leader's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program (the pipeline's own binary).
    pub program: PathBuf,
    /// Its arguments, before `--join-study NAME`.
    pub args: Vec<OsString>,
}

/// How a worker process started by the leader ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerExit {
    /// Its process id.
    pub pid: u32,
    /// True when it exited with status 0.
    pub success: bool,
    /// Its exit status, or what went wrong waiting for it.
    pub status: String,
}

/// Where the study lives and who runs its trials. `Default`: in memory, this
/// process only (the reference pipeline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuningSetup {
    /// Where the study is kept. Default [`StudyStorage::Memory`].
    pub storage: StudyStorage,
    /// The study's name in a shared storage. Default `None`:
    /// `random_forest_f1-<parent run id>`. Letters, digits, `_`, `-`, `.`.
    pub study_name: Option<String>,
    /// Worker processes in all, this one included. Default 1; more needs
    /// [`StudyStorage::Postgres`] and a [`TuningSetup::worker_command`].
    pub workers: usize,
    /// How the leader starts the other `workers - 1`. Default `None`.
    pub worker_command: Option<WorkerCommand>,
    /// Trial heartbeats in a shared storage. Default [`STUDY_HEARTBEAT`].
    /// Joining workers take the leader's (from its parent run), so all beat
    /// and reap alike.
    pub heartbeat: Heartbeat,
    /// How long the leader waits for its workers to exit once every trial
    /// finished; then they are killed. Default 60 s.
    pub worker_exit_timeout: Duration,
}

impl Default for TuningSetup {
    fn default() -> Self {
        TuningSetup {
            storage: StudyStorage::Memory,
            study_name: None,
            workers: 1,
            worker_command: None,
            heartbeat: STUDY_HEARTBEAT,
            worker_exit_timeout: Duration::from_secs(60),
        }
    }
}

impl TuningSetup {
    /// Checks that the settings fit together.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |m: &str| Err(PipelineError::Invalid(m.to_string()));
        if self.workers == 0 {
            return bad("tuning workers must be at least 1");
        }
        let shared = matches!(self.storage, StudyStorage::Postgres { .. });
        if self.workers > 1 && !shared {
            return bad("more than one tuning worker needs the PostgreSQL study storage");
        }
        if self.workers > 1 && self.worker_command.is_none() {
            return bad("more than one tuning worker needs a command to start the others");
        }
        if let Some(name) = &self.study_name {
            check_study_name(name)?;
        }
        let hb = self.heartbeat;
        if hb.interval.is_zero() || hb.grace_period < hb.interval {
            return bad("the heartbeat needs interval > 0 and grace period >= interval");
        }
        Ok(())
    }
}

/// Study names travel in MLflow filters and command lines: keep them plain.
pub fn check_study_name(name: &str) -> Result<(), PipelineError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 200 || !name.chars().all(plain) {
        return Err(PipelineError::Invalid(format!(
            "study name {name:?}: use 1 to 200 letters, digits, `_`, `-` or `.`"
        )));
    }
    Ok(())
}

/// Tags the parent run with what joining workers need (the study, its trial
/// count, the data fingerprint, the heartbeat) and delivers the tags, since
/// the workers look them up on the server.
pub(super) fn announce_study(
    parent: &ActiveRun,
    config: &TrainConfig,
    data: &dyn TrialRows,
    name: &str,
) -> Result<(), PipelineError> {
    parent.set_tag(TAG_STUDY, name)?;
    parent.set_tag(TAG_N_TRIALS, config.n_trials.to_string())?;
    parent.set_tag(TAG_FINGERPRINT, data.fingerprint(config))?;
    parent.set_tag("vigil.tuning_workers", config.tuning.workers.to_string())?;
    parent.set_tag(TAG_HEARTBEAT, heartbeat_text(config.tuning.heartbeat))?;
    parent.flush()?;
    Ok(())
}

pub(super) fn check_stop(config: &TrainConfig) -> Result<(), PipelineError> {
    if config.stop.load(Ordering::SeqCst) {
        return Err(PipelineError::Interrupted { stage: "tuning" });
    }
    Ok(())
}

/// Waits until no trial of the study is running or waiting, failing those
/// whose worker stopped sending heartbeats (it died) on the way.
pub(super) fn wait_for_trials(
    study: &Study,
    config: &TrainConfig,
    reporter: &TrialReporter,
) -> Result<(), PipelineError> {
    loop {
        check_stop(config)?;
        let done = study.trials()?.iter().all(|t| t.state.is_finished());
        reporter.report_new(study);
        if done {
            return Ok(());
        }
        study
            .storage()
            .fail_stale_trials(study.id(), config.tuning.heartbeat.grace_period)?;
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Ends the trial runs still RUNNING as FAILED, with `why` as their error:
/// once every trial finished, those lost their worker (the trial was failed
/// when its heartbeat stopped); when the leader stops, its workers go with it.
pub(super) fn end_orphaned_trial_runs(
    runs: &TrialRuns<'_>,
    why: &str,
) -> Result<(), PipelineError> {
    let search = RunSearch::in_experiments([runs.experiment_id.clone()]).filter(format!(
        "tags.mlflow.parentRunId = '{}' and attributes.status = 'RUNNING'",
        runs.parent_run_id
    ));
    let store = runs.tracker.store();
    for run in runs.tracker.search_all_runs(search)? {
        store.set_tag(run.id(), "vigil.error", why)?;
        store.update_run(run.id(), RunStatus::Failed, Some(now_millis()))?;
    }
    Ok(())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `interval/grace` in milliseconds, as the parent run's tag carries it.
fn heartbeat_text(hb: Heartbeat) -> String {
    format!(
        "{}/{}",
        hb.interval.as_millis(),
        hb.grace_period.as_millis()
    )
}

fn parse_heartbeat(text: &str) -> Option<Heartbeat> {
    let (interval, grace) = text.split_once('/')?;
    Some(Heartbeat {
        interval: Duration::from_millis(interval.parse().ok()?),
        grace_period: Duration::from_millis(grace.parse().ok()?),
    })
}

/// The worker processes the leader started; those still running when this is
/// dropped (the leader failed or was stopped) are killed.
pub(super) struct Workers(Vec<Child>);

impl Workers {
    pub(super) fn start(setup: &TuningSetup, study_name: &str) -> Result<Workers, PipelineError> {
        let mut workers = Workers(Vec::new());
        let Some(command) = &setup.worker_command else {
            return Ok(workers);
        };
        for _ in 1..setup.workers {
            let child = Command::new(&command.program)
                .args(&command.args)
                .args(["--join-study", study_name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| PipelineError::Io {
                    path: command.program.clone(),
                    source: e,
                })?;
            workers.0.push(child);
        }
        Ok(workers)
    }

    /// Waits up to `timeout` for every worker to exit, then kills the rest.
    pub(super) fn wait(&mut self, timeout: Duration) -> Vec<WorkerExit> {
        let deadline = Instant::now() + timeout;
        let mut exits = Vec::new();
        for mut child in self.0.drain(..) {
            let pid = child.id();
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(format!("still running after {timeout:?}: killed"));
                    }
                    Err(e) => break Err(format!("cannot wait for it: {e}")),
                }
            };
            exits.push(match status {
                Ok(status) => WorkerExit {
                    pid,
                    success: status.success(),
                    status: status.to_string(),
                },
                Err(status) => WorkerExit {
                    pid,
                    success: false,
                    status,
                },
            });
        }
        exits
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a joining worker did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinOutcome {
    /// The study.
    pub study_name: String,
    /// The leader's parent run, of which this worker's trials are child runs.
    pub parent_run_id: String,
    /// Trials this worker ran.
    pub trials_run: usize,
    /// The study's trials in all when this worker stopped.
    pub study_trials: usize,
}

/// Joins the study `name` that a leader (`pipeline --tuning-storage postgres`)
/// runs in `config.tuning.storage`: waits up to [`JOIN_WAIT`] for the study and
/// the leader's running parent run (in `config.experiment`), loads this
/// worker's data with `load`, refuses it unless its fingerprint is the
/// leader's, and runs trials (child runs of the leader's parent) until the
/// study holds the leader's `n_trials`, with the leader's heartbeat. The
/// final fit, evaluation and registration are the leader's.
pub fn join_study(
    name: &str,
    config: &TrainConfig,
    tracker: &Tracker,
    load: impl FnOnce() -> Result<Splits, PipelineError>,
    progress: &ProgressFn,
) -> Result<JoinOutcome, PipelineError> {
    join_study_rows(name, config, tracker, load, progress)
}

/// [`join_study`] on any [`TrialRows`] `load` gives (the streamed fleet path's
/// bin codes).
pub(crate) fn join_study_rows<R: TrialRows>(
    name: &str,
    config: &TrainConfig,
    tracker: &Tracker,
    load: impl FnOnce() -> Result<R, PipelineError>,
    progress: &ProgressFn,
) -> Result<JoinOutcome, PipelineError> {
    config.validate()?;
    check_study_name(name)?;
    let storage = config.tuning.storage.open()?.ok_or_else(|| {
        PipelineError::Invalid("joining a study needs the PostgreSQL study storage".into())
    })?;
    let parent = wait_for_leader(name, config, tracker, &storage)?;
    let terms = LeaderTerms::of(&parent)?;
    let rows = load()?;
    let data: &dyn TrialRows = &rows;
    let ours = data.fingerprint(config);
    if ours != terms.fingerprint {
        return Err(PipelineError::Invalid(format!(
            "this worker's tuning rows or trial settings differ from the leader's \
             (fingerprint {ours}, leader {}): join with the leader's source, seed, \
             rows-per-tree and pruning settings, on the same data",
            terms.fingerprint
        )));
    }
    let (n_trials, heartbeat) = (terms.n_trials, terms.heartbeat);
    let study = new_study(config, name, Some((storage, heartbeat)), true)?;
    watch_own_trials(&study, n_trials, &config.stop, progress);
    stop_when_the_leader_ends(&study, tracker, &parent.info.run_id);
    let runs = TrialRuns {
        tracker,
        experiment_id: parent.info.experiment_id.clone(),
        parent_run_id: parent.info.run_id.clone(),
    };
    let trials_run = study.optimize_until(n_trials, None, |trial| {
        suggest(trial)?;
        tracked_trial(trial, config, data, &runs)
    })?;
    check_stop(config)?;
    Ok(JoinOutcome {
        study_name: name.to_string(),
        parent_run_id: runs.parent_run_id,
        trials_run,
        study_trials: study.trials()?.len(),
    })
}

/// After each trial, stops the joining worker's study when the leader's
/// parent run is no longer running (the leader failed or was stopped: more
/// trials would serve nobody).
fn stop_when_the_leader_ends(study: &Study, tracker: &Tracker, parent_run_id: &str) {
    let (tracker, parent_run_id) = (tracker.clone(), parent_run_id.to_string());
    study.add_callback(move |study, _| {
        let ended = tracker
            .store()
            .get_run(&parent_run_id)
            .is_ok_and(|run| run.info.status != RunStatus::Running);
        if ended {
            study.stop();
        }
    });
}

/// What the leader's parent run tells joining workers.
struct LeaderTerms {
    n_trials: usize,
    fingerprint: String,
    /// Every worker beats and reaps by the leader's clock.
    heartbeat: Heartbeat,
}

impl LeaderTerms {
    fn of(parent: &vigil_tracking_client::Run) -> Result<LeaderTerms, PipelineError> {
        let bad = |key: &str, value: &str| {
            PipelineError::Invalid(format!(
                "the leader's run {} has {key} = {value:?}",
                parent.id()
            ))
        };
        let n_trials = parent_tag(parent, TAG_N_TRIALS)?;
        let heartbeat = parent_tag(parent, TAG_HEARTBEAT)?;
        Ok(LeaderTerms {
            n_trials: n_trials.parse().map_err(|_| bad(TAG_N_TRIALS, n_trials))?,
            fingerprint: parent_tag(parent, TAG_FINGERPRINT)?.to_string(),
            heartbeat: parse_heartbeat(heartbeat).ok_or_else(|| bad(TAG_HEARTBEAT, heartbeat))?,
        })
    }
}

fn parent_tag<'r>(
    run: &'r vigil_tracking_client::Run,
    key: &str,
) -> Result<&'r str, PipelineError> {
    run.tag(key).ok_or_else(|| {
        PipelineError::Invalid(format!("the leader's run {} has no tag {key}", run.id()))
    })
}

/// The study and the leader's running parent run, once both exist.
fn wait_for_leader(
    name: &str,
    config: &TrainConfig,
    tracker: &Tracker,
    storage: &PostgresStorage,
) -> Result<vigil_tracking_client::Run, PipelineError> {
    use vigil_tuning::Storage;
    let started = Instant::now();
    loop {
        check_stop(config)?;
        if storage.find_study(name)?.is_some()
            && let Some(run) = find_parent(name, config, tracker)?
        {
            return Ok(run);
        }
        if started.elapsed() >= JOIN_WAIT {
            return Err(PipelineError::Invalid(format!(
                "no study {name} with a running parent run (tag {TAG_STUDY}) in experiment \
                 {} after {JOIN_WAIT:?}: start the leader \
                 (pipeline --tuning-storage postgres) first",
                config.experiment
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn find_parent(
    name: &str,
    config: &TrainConfig,
    tracker: &Tracker,
) -> Result<Option<vigil_tracking_client::Run>, PipelineError> {
    let Some(experiment) = tracker.store().get_experiment_by_name(&config.experiment)? else {
        return Ok(None);
    };
    let search = RunSearch::in_experiments([experiment.experiment_id]).filter(format!(
        "tags.`{TAG_STUDY}` = '{name}' and attributes.status = 'RUNNING'"
    ));
    let mut runs = tracker.search_all_runs(search)?;
    match runs.len() {
        0 => Ok(None),
        1 => Ok(runs.pop()),
        n => Err(PipelineError::Invalid(format!(
            "{n} running runs lead study {name}; expected one"
        ))),
    }
}

/// A hex digest of what makes trials comparable across workers: the training
/// and validation rows (names, values, labels) and the trial settings.
pub(super) fn fingerprint(config: &TrainConfig, data: TuningData<'_>) -> String {
    let mut h = Fnv64::of_trial_settings(config);
    for set in [data.train, data.validation] {
        let values = &set.features.values;
        h.write(&(values.nrows() as u64).to_le_bytes());
        h.write(&(values.ncols() as u64).to_le_bytes());
        for name in &set.features.names {
            h.write(name.as_bytes());
            h.write(&[0]);
        }
        for v in values.iter() {
            h.write(&v.to_bits().to_le_bytes());
        }
        h.write(&set.failure);
    }
    h.hex()
}

/// FNV-1a, 64 bits: a stable digest (the standard library's hasher may change).
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    /// A digest started with the settings that make trials comparable (seed,
    /// rows per tree, pruning); the caller adds the rows.
    pub(crate) fn of_trial_settings(config: &TrainConfig) -> Fnv64 {
        let mut h = Fnv64(0xcbf2_9ce4_8422_2325);
        h.write(&config.seed.to_le_bytes());
        h.write(
            &config
                .max_samples_per_tree
                .map_or(0, |n| n as u64 + 1)
                .to_le_bytes(),
        );
        h.write(&[u8::from(config.pruning)]);
        h
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use vigil_features::{FeatureSpec, SimulatorConfig, TrainingSet, simulate};

    use super::*;

    fn postgres_setup() -> TuningSetup {
        TuningSetup {
            storage: StudyStorage::Postgres {
                url: "postgres://u@localhost/db".into(),
                schema: DEFAULT_STUDY_SCHEMA.into(),
            },
            workers: 3,
            worker_command: Some(WorkerCommand {
                program: "pipeline".into(),
                args: Vec::new(),
            }),
            ..TuningSetup::default()
        }
    }

    #[test]
    fn setups_that_cannot_work_are_refused() {
        assert!(TuningSetup::default().validate().is_ok());
        assert!(postgres_setup().validate().is_ok());
        let cases = [
            (
                TuningSetup {
                    workers: 0,
                    ..TuningSetup::default()
                },
                "at least 1",
            ),
            (
                TuningSetup {
                    workers: 2,
                    ..TuningSetup::default()
                },
                "PostgreSQL",
            ),
            (
                TuningSetup {
                    worker_command: None,
                    ..postgres_setup()
                },
                "command",
            ),
            (
                TuningSetup {
                    study_name: Some("a'b".into()),
                    ..postgres_setup()
                },
                "study name",
            ),
            (
                TuningSetup {
                    heartbeat: Heartbeat {
                        interval: Duration::from_secs(2),
                        grace_period: Duration::from_secs(1),
                    },
                    ..postgres_setup()
                },
                "heartbeat",
            ),
        ];
        for (setup, words) in cases {
            let err = setup.validate().unwrap_err().to_string();
            assert!(err.contains(words), "{setup:?}: {err}");
        }
    }

    #[test]
    fn an_unreachable_study_database_is_a_service_error() {
        let storage = StudyStorage::Postgres {
            url: "postgres://vigil@127.0.0.1:1/vigil?connect_timeout=5".into(),
            schema: DEFAULT_STUDY_SCHEMA.into(),
        };
        let err = storage.open().unwrap_err();
        assert_eq!(err.exit_code(), 3, "{err}");
    }

    #[test]
    fn study_names_stay_plain() {
        for good in [
            "random_forest_f1-0123abcd",
            "a",
            "study.v2",
            &"x".repeat(200),
        ] {
            assert!(check_study_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a'b", "a`b", "ü", &"x".repeat(201)] {
            assert!(check_study_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_heartbeat_travels_as_text() {
        let hb = Heartbeat {
            interval: Duration::from_millis(500),
            grace_period: Duration::from_secs(2),
        };
        assert_eq!(heartbeat_text(hb), "500/2000");
        assert_eq!(parse_heartbeat("500/2000"), Some(hb));
        for bad in ["", "500", "a/b", "500/-1"] {
            assert_eq!(parse_heartbeat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn any_password_survives_the_connection_string() {
        let config = PgConfig {
            host: "db.example".into(),
            port: 6543,
            user: "o'neil".into(),
            password: r"p a's\s=w".into(),
            dbname: "vigil db".into(),
        };
        let parsed: postgres::Config = conninfo(&config).parse().unwrap();
        assert_eq!(parsed.get_password(), Some(config.password.as_bytes()));
        assert_eq!(parsed.get_user(), Some("o'neil"));
        assert_eq!(parsed.get_dbname(), Some("vigil db"));
        assert_eq!(parsed.get_ports(), [6543]);
    }

    #[test]
    fn the_fingerprint_changes_with_the_rows_and_the_trial_settings() {
        let sim = simulate(&SimulatorConfig {
            machines: 1,
            days: 0.25,
            ..SimulatorConfig::default()
        })
        .unwrap();
        let set = TrainingSet::build(&sim.frame, &FeatureSpec::default()).unwrap();
        let config = TrainConfig::default();
        let data = TuningData {
            train: &set,
            validation: &set,
        };
        let reference = fingerprint(&config, data);
        assert_eq!(reference, fingerprint(&config.clone(), data), "not stable");
        let mut changed = set.clone();
        // The smallest change there is: one bit of one value.
        let v = &mut changed.features.values[[7, 3]];
        *v = f64::from_bits(v.to_bits() ^ 1);
        let other_rows = TuningData {
            train: &set,
            validation: &changed,
        };
        assert_ne!(reference, fingerprint(&config, other_rows));
        let mut relabelled = set.clone();
        relabelled.failure[0] ^= 1;
        let other_labels = TuningData {
            train: &relabelled,
            validation: &set,
        };
        assert_ne!(reference, fingerprint(&config, other_labels));
        for other in [
            TrainConfig {
                seed: 7,
                ..config.clone()
            },
            TrainConfig {
                pruning: false,
                ..config.clone()
            },
            TrainConfig {
                max_samples_per_tree: None,
                ..config.clone()
            },
        ] {
            assert_ne!(reference, fingerprint(&other, data));
        }
    }
}
