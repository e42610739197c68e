//! Studies: a direction, a sampler, a pruner and a storage, and the optimisation loop.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::distributions::{Distribution, ParamValue};
use crate::error::{Result, TuningError};
use crate::pruners::{MedianPruner, Pruner};
use crate::retry::RetryPolicy;
use crate::samplers::{SampleContext, Sampler, TpeSampler, TrialRng};
use crate::storage::{InMemoryStorage, Storage, TrialList};
use crate::trial::{FrozenTrial, ObjectiveError, ObjectiveResult, Param, Trial, TrialState};

/// Whether smaller or larger objective values are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Smaller is better (losses, errors).
    Minimize,
    /// Larger is better (F1, accuracy).
    Maximize,
}

impl Direction {
    /// True when `a` is strictly better than `b`.
    pub fn is_better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Minimize => a < b,
            Direction::Maximize => a > b,
        }
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Minimize => "MINIMIZE",
            Direction::Maximize => "MAXIMIZE",
        }
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "MINIMIZE" => Some(Direction::Minimize),
            "MAXIMIZE" => Some(Direction::Maximize),
            _ => None,
        }
    }
}

/// Heartbeats let other workers fail the trial of a worker that died: while a trial
/// runs, a thread refreshes its heartbeat every `interval`; at the start of each trial,
/// running trials whose heartbeat is older than `grace_period` are marked failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// How often a running trial refreshes its heartbeat.
    pub interval: Duration,
    /// How old a heartbeat may get before the trial counts as dead (at least `interval`;
    /// Optuna's default is twice the interval).
    pub grace_period: Duration,
}

impl Heartbeat {
    /// Heartbeat every `interval`, grace period twice that.
    pub fn every(interval: Duration) -> Self {
        Heartbeat {
            interval,
            grace_period: interval * 2,
        }
    }
}

type Callback = Box<dyn FnMut(&Study, &FrozenTrial) + Send>;

/// Builds a [`Study`]. Defaults: minimise, in-memory storage, Optuna's default TPE
/// sampler, a [`MedianPruner`] (it acts only when the objective reports values), a
/// generated name, no heartbeat.
#[must_use]
pub struct StudyBuilder {
    name: Option<String>,
    direction: Direction,
    storage: Option<Arc<dyn Storage>>,
    sampler: Option<Arc<dyn Sampler>>,
    pruner: Arc<dyn Pruner>,
    seed: Option<u64>,
    load_if_exists: bool,
    heartbeat: Option<Heartbeat>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for StudyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StudyBuilder")
            .field("name", &self.name)
            .field("direction", &self.direction)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl StudyBuilder {
    /// The study's name (required to share it through a persistent storage).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Minimise or maximise.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Seed of the default TPE sampler (ignored when a sampler is set).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Where trials are stored (default: [`InMemoryStorage`]).
    pub fn storage(mut self, storage: impl Storage + 'static) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// A storage shared with other studies or threads.
    pub fn shared_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// The sampler (default: [`TpeSampler`] with Optuna's defaults).
    pub fn sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        self.sampler = Some(Arc::new(sampler));
        self
    }

    /// The pruner (default: [`MedianPruner::default`]).
    pub fn pruner(mut self, pruner: impl Pruner + 'static) -> Self {
        self.pruner = Arc::new(pruner);
        self
    }

    /// Open the study if the storage already has one by this name (resume / join).
    pub fn load_if_exists(mut self, yes: bool) -> Self {
        self.load_if_exists = yes;
        self
    }

    /// Send heartbeats while trials run and fail stale trials of dead workers.
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = Some(heartbeat);
        self
    }

    /// How failed heartbeats and failed `tell`s are retried (default
    /// [`RetryPolicy::default`]); only transient storage errors are retried.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Create (or, with `load_if_exists`, open) the study.
    ///
    /// Errors: [`TuningError::StudyExists`], [`TuningError::DirectionMismatch`] when an existing study
    /// has the other direction, invalid heartbeat settings, storage errors.
    pub fn build(self) -> Result<Study> {
        self.retry.validate()?;
        if let Some(hb) = self.heartbeat
            && (hb.interval.is_zero() || hb.grace_period < hb.interval)
        {
            return Err(TuningError::InvalidSetting {
                name: "heartbeat",
                reason: format!("need interval > 0 and grace_period >= interval, got {hb:?}"),
            });
        }
        let storage = self
            .storage
            .unwrap_or_else(|| Arc::new(InMemoryStorage::new()));
        let name = self
            .name
            .unwrap_or_else(|| format!("study-{:016x}", crate::samplers::random_seed()));
        let id = match storage.find_study(&name)? {
            Some((id, stored)) if self.load_if_exists => {
                if stored != self.direction {
                    return Err(TuningError::DirectionMismatch {
                        name,
                        stored,
                        requested: self.direction,
                    });
                }
                id
            }
            Some(_) => return Err(TuningError::StudyExists(name)),
            None => match storage.create_study(&name, self.direction) {
                Ok(id) => id,
                // Another worker created it between our look-up and create.
                Err(TuningError::StudyExists(_)) if self.load_if_exists => storage
                    .find_study(&name)?
                    .map(|(id, _)| id)
                    .ok_or_else(|| TuningError::StudyNotFound(name.clone()))?,
                Err(e) => return Err(e),
            },
        };
        let sampler = self.sampler.unwrap_or_else(|| match self.seed {
            Some(seed) => Arc::new(TpeSampler::new(seed)),
            None => Arc::new(TpeSampler::default()),
        });
        Ok(Study {
            name,
            id,
            direction: self.direction,
            storage,
            sampler,
            pruner: self.pruner,
            heartbeat: self.heartbeat,
            retry: self.retry,
            callbacks: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        })
    }
}

/// A study: the trials of one optimisation, and how to propose and judge new ones.
pub struct Study {
    name: String,
    id: u64,
    direction: Direction,
    storage: Arc<dyn Storage>,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    heartbeat: Option<Heartbeat>,
    retry: RetryPolicy,
    callbacks: Mutex<Vec<Callback>>,
    stop: AtomicBool,
}

impl std::fmt::Debug for Study {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Study")
            .field("name", &self.name)
            .field("direction", &self.direction)
            .field("storage", &self.storage)
            .field("sampler", &self.sampler)
            .field("pruner", &self.pruner)
            .finish_non_exhaustive()
    }
}

impl Study {
    /// Start building a study.
    pub fn builder() -> StudyBuilder {
        StudyBuilder {
            name: None,
            direction: Direction::Minimize,
            storage: None,
            sampler: None,
            pruner: Arc::new(MedianPruner::default()),
            seed: None,
            load_if_exists: false,
            heartbeat: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Open an existing study by name; [`TuningError::StudyNotFound`] if there is none. The
    /// sampler is a randomly seeded default TPE; use the builder with
    /// `load_if_exists(true)` to choose one.
    pub fn load(name: &str, storage: Arc<dyn Storage>) -> Result<Study> {
        let (_, direction) = storage
            .find_study(name)?
            .ok_or_else(|| TuningError::StudyNotFound(name.to_owned()))?;
        Study::builder()
            .name(name)
            .direction(direction)
            .shared_storage(storage)
            .load_if_exists(true)
            .build()
    }

    /// The study's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The study's id in its storage.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Minimise or maximise.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The storage.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The sampler.
    pub fn sampler(&self) -> &dyn Sampler {
        self.sampler.as_ref()
    }

    /// The pruner.
    pub fn pruner(&self) -> &dyn Pruner {
        self.pruner.as_ref()
    }

    /// Call `callback` after every finished trial (from `optimize` and `tell`), e.g. to
    /// log to an experiment tracker or advance a progress bar. Callbacks run one at a
    /// time, in the order added; a callback must not add callbacks.
    pub fn add_callback(&self, callback: impl FnMut(&Study, &FrozenTrial) + Send + 'static) {
        self.callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(callback));
    }

    /// Ask running `optimize` loops to start no new trial (e.g. from a callback).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// All trials, by number.
    pub fn trials(&self) -> Result<TrialList> {
        self.storage.trials(self.id)
    }

    /// Trials in the given state.
    pub fn trials_in(&self, state: TrialState) -> Result<Vec<Arc<FrozenTrial>>> {
        Ok(self
            .trials()?
            .iter()
            .filter(|t| t.state == state)
            .cloned()
            .collect())
    }

    /// The best complete trial (the earliest one among equals);
    /// [`TuningError::NoCompletedTrial`] if none completed.
    pub fn best_trial(&self) -> Result<Arc<FrozenTrial>> {
        let mut best: Option<&Arc<FrozenTrial>> = None;
        let trials = self.trials()?;
        for t in trials.iter().filter(|t| t.state == TrialState::Complete) {
            let (Some(v), cur) = (t.value, best) else {
                continue;
            };
            match cur.and_then(|b| b.value) {
                Some(bv) if !self.direction.is_better(v, bv) => {}
                _ => best = Some(t),
            }
        }
        best.cloned().ok_or(TuningError::NoCompletedTrial)
    }

    /// The best value.
    pub fn best_value(&self) -> Result<f64> {
        self.best_trial()?
            .value
            .ok_or(TuningError::NoCompletedTrial)
    }

    /// The best trial's parameters.
    pub fn best_params(&self) -> Result<BTreeMap<String, ParamValue>> {
        Ok(self.best_trial()?.param_values())
    }

    /// Queue a trial with fixed parameter values (e.g. known-good settings); the next
    /// `ask` claims it. Parameters it does not fix are sampled as usual.
    pub fn enqueue_trial<K>(&self, params: impl IntoIterator<Item = (K, ParamValue)>) -> Result<u64>
    where
        K: Into<String>,
    {
        let fixed: BTreeMap<String, ParamValue> =
            params.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self.storage.enqueue_trial(self.id, &fixed)
    }

    /// Start a trial (claiming an enqueued one first). Finish it with [`Study::tell`].
    pub fn ask(&self) -> Result<Trial<'_>> {
        if let Some(hb) = self.heartbeat {
            self.storage.fail_stale_trials(self.id, hb.grace_period)?;
        }
        let t = self.storage.start_trial(self.id)?;
        Ok(self.live_trial(t))
    }

    /// Like [`Study::ask`] while the study holds fewer than `max_trials` trials in
    /// all (every worker's, enqueued ones included); `None` once it is full.
    pub fn ask_within(&self, max_trials: usize) -> Result<Option<Trial<'_>>> {
        if let Some(hb) = self.heartbeat {
            self.storage.fail_stale_trials(self.id, hb.grace_period)?;
        }
        let t = self
            .storage
            .start_trial_capped(self.id, max_trials as u64)?;
        Ok(t.map(|t| self.live_trial(t)))
    }

    fn live_trial(&self, t: FrozenTrial) -> Trial<'_> {
        Trial {
            study: self,
            trial_id: t.trial_id,
            number: t.number,
            rng: TrialRng::for_trial(self.sampler.seed(), t.number),
            fixed: t.fixed_params,
            params: t.params,
            intermediate: t.intermediate_values,
            history: None,
            relative: None,
        }
    }

    /// Finish a trial from `ask` with the objective's result: a value completes it
    /// (NaN fails it), [`ObjectiveError::Pruned`] prunes it, any other error fails it.
    /// Runs the callbacks and returns the finished trial.
    pub fn tell(&self, trial: Trial<'_>, result: ObjectiveResult) -> Result<Arc<FrozenTrial>> {
        self.tell_by_id(trial.trial_id, result)
    }

    /// [`Study::tell`] by trial id; [`TuningError::UnknownTrial`] if the id is not a trial of
    /// this study, [`TuningError::TrialFinished`] if it already finished.
    ///
    /// Transient storage failures are retried by the study's [`RetryPolicy`]; when
    /// they persist, [`TuningError::TellFailed`] says so (the result is never dropped
    /// silently). A retry that finds the trial already finished with this very result
    /// (the earlier attempt did reach the storage) counts as success.
    pub fn tell_by_id(&self, trial_id: u64, result: ObjectiveResult) -> Result<Arc<FrozenTrial>> {
        let tell_failed = |(attempts, e): (u32, TuningError)| match e {
            e if !e.is_transient() => e,
            e => TuningError::TellFailed {
                trial_id,
                attempts,
                source: Box::new(e),
            },
        };
        let current = self
            .retry
            .run(|_| self.storage.trial(trial_id))
            .map_err(tell_failed)?;
        let in_study = self
            .retry
            .run(|_| self.storage.trial_in_study(self.id, &current));
        if !in_study.map_err(tell_failed)? {
            return Err(TuningError::UnknownTrial(trial_id));
        }
        let (state, value, reason) = match result {
            Ok(v) if v.is_nan() => (
                TrialState::Fail,
                None,
                Some("the objective returned NaN".to_owned()),
            ),
            Ok(v) => (TrialState::Complete, Some(v), None),
            Err(ObjectiveError::Pruned) => {
                let last = current
                    .intermediate_values
                    .values()
                    .next_back()
                    .copied()
                    .filter(|v| !v.is_nan());
                (TrialState::Pruned, last, None)
            }
            Err(ObjectiveError::Failed(e)) => (TrialState::Fail, None, Some(e.to_string())),
        };
        self.retry
            .run(|attempt| {
                match self
                    .storage
                    .finish_trial(trial_id, state, value, reason.as_deref())
                {
                    Err(TuningError::TrialFinished { .. }) if attempt > 1 => {
                        // Did the attempt whose answer was lost store our result?
                        let stored = self.storage.trial(trial_id)?;
                        if stored.state == state && same_value(stored.value, value) {
                            Ok(())
                        } else {
                            Err(TuningError::TrialFinished {
                                trial_id,
                                state: stored.state,
                            })
                        }
                    }
                    other => other,
                }
            })
            .map_err(tell_failed)?;
        let frozen = self
            .retry
            .run(|_| self.storage.trial(trial_id))
            .map_err(tell_failed)?;
        let mut callbacks = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
        for cb in callbacks.iter_mut() {
            cb(self, &frozen);
        }
        Ok(frozen)
    }

    /// Run `n_trials` trials one after another (or until `timeout`, or [`Study::stop`]).
    ///
    /// The objective suggests parameters through the [`Trial`] and returns a value or
    /// an error. An error, a NaN or a panic fails that trial and the study goes on;
    /// only storage errors end `optimize` early: those that outlast the study's
    /// [`RetryPolicy`] ([`TuningError::TellFailed`] when a result could not be stored),
    /// and [`TuningError::TrialReaped`] when another worker failed this trial (its
    /// heartbeats stopped reaching the storage) before its result arrived.
    pub fn optimize<F>(
        &self,
        n_trials: usize,
        timeout: Option<Duration>,
        mut objective: F,
    ) -> Result<()>
    where
        F: FnMut(&mut Trial<'_>) -> ObjectiveResult,
    {
        self.stop.store(false, Ordering::SeqCst);
        let started = Instant::now();
        for _ in 0..n_trials {
            if self.stop.load(Ordering::SeqCst) || timeout.is_some_and(|t| started.elapsed() >= t) {
                break;
            }
            self.run_one(&mut objective)?;
        }
        Ok(())
    }

    /// Run trials until the study holds `max_trials` in all, counting those of every
    /// worker sharing its storage (and enqueued ones), or until `timeout` or
    /// [`Study::stop`]; returns how many this call ran. Workers in several processes
    /// each call it with the same `max_trials` and together run exactly that many
    /// (the storage caps the count atomically). Errors as in [`Study::optimize`].
    ///
    /// It returns when no new trial may start; trials of other workers may still be
    /// running then (wait for them through [`Study::trials`]).
    pub fn optimize_until<F>(
        &self,
        max_trials: usize,
        timeout: Option<Duration>,
        mut objective: F,
    ) -> Result<usize>
    where
        F: FnMut(&mut Trial<'_>) -> ObjectiveResult,
    {
        self.stop.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let mut ran = 0;
        while !self.stop.load(Ordering::SeqCst) && timeout.is_none_or(|t| started.elapsed() < t) {
            let asked = self.retry.run(|_| self.ask_within(max_trials));
            match asked.map_err(|(_, e)| e)? {
                Some(trial) => self.run_asked(trial, &mut objective)?,
                None => break,
            }
            ran += 1;
        }
        Ok(ran)
    }

    /// Like [`Study::optimize`] with `n_jobs` trials running at once on scoped threads
    /// of this process. With the default TPE, the constant liar keeps concurrent trials
    /// apart. Which trials each one sees depends on timing, so unlike a sequential run
    /// a parallel run is not reproducible from the seed (as in Optuna).
    pub fn optimize_parallel<F>(
        &self,
        n_trials: usize,
        timeout: Option<Duration>,
        n_jobs: usize,
        objective: F,
    ) -> Result<()>
    where
        F: Fn(&mut Trial<'_>) -> ObjectiveResult + Sync,
    {
        if n_jobs == 0 {
            return Err(TuningError::InvalidSetting {
                name: "n_jobs",
                reason: "must be at least 1".into(),
            });
        }
        self.stop.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let claimed = AtomicUsize::new(0);
        let first_error: Mutex<Option<TuningError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..n_jobs.min(n_trials.max(1)) {
                scope.spawn(|| {
                    let mut f = |t: &mut Trial<'_>| objective(t);
                    loop {
                        if self.stop.load(Ordering::SeqCst)
                            || timeout.is_some_and(|t| started.elapsed() >= t)
                            || claimed.fetch_add(1, Ordering::SeqCst) >= n_trials
                        {
                            break;
                        }
                        if let Err(e) = self.run_one(&mut f) {
                            self.stop.store(true, Ordering::SeqCst);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                            break;
                        }
                    }
                });
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn run_one<F>(&self, objective: &mut F) -> Result<()>
    where
        F: FnMut(&mut Trial<'_>) -> ObjectiveResult,
    {
        let trial = self.retry.run(|_| self.ask()).map_err(|(_, e)| e)?;
        self.run_asked(trial, objective)
    }

    /// Runs the objective on a started trial (with heartbeats) and tells its result.
    fn run_asked<F>(&self, mut trial: Trial<'_>, objective: &mut F) -> Result<()>
    where
        F: FnMut(&mut Trial<'_>) -> ObjectiveResult,
    {
        let trial_id = trial.trial_id;
        let heartbeat_error = Mutex::new(None);
        let result = match self.heartbeat {
            None => run_catching(objective, &mut trial),
            Some(hb) => {
                let (done_tx, done_rx) = mpsc::channel::<()>();
                let storage = self.storage.as_ref();
                let (retry, last_error) = (self.retry, &heartbeat_error);
                std::thread::scope(|scope| {
                    scope.spawn(move || {
                        beat_until_done(storage, trial_id, hb, retry, &done_rx, last_error);
                    });
                    let r = run_catching(objective, &mut trial);
                    drop(done_tx);
                    r
                })
            }
        };
        let text = describe(&result);
        match self.tell(trial, result) {
            // Failed by a stale-heartbeat sweep elsewhere (our beats stopped reaching
            // the storage, or we were too slow): the result is lost, so say so.
            Err(TuningError::TrialFinished { trial_id, state }) => Err(TuningError::TrialReaped {
                trial_id,
                state,
                result: text,
                heartbeat_error: heartbeat_error
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner()),
            }),
            other => other.map(drop),
        }
    }

    /// Write all trials as CSV: `number,state,value,datetime_start,datetime_complete,
    /// duration_secs,params_<name>…,fail_reason` (params sorted by name).
    pub fn write_csv<W: std::io::Write>(&self, writer: W) -> Result<()> {
        crate::export::write_csv(&self.trials()?, writer)
    }

    /// Write the study (name, direction, trials) as JSON.
    pub fn write_json<W: std::io::Write>(&self, writer: W) -> Result<()> {
        crate::export::write_json(self, &self.trials()?, writer)
    }
}

fn same_value(a: Option<f64>, b: Option<f64>) -> bool {
    a.map(f64::to_bits) == b.map(f64::to_bits)
}

/// The text of an objective's result, for [`TuningError::TrialReaped`].
fn describe(result: &ObjectiveResult) -> String {
    match result {
        Ok(v) => format!("value {v}"),
        Err(ObjectiveError::Pruned) => "pruned".to_owned(),
        Err(ObjectiveError::Failed(e)) => format!("failed: {e}"),
    }
}

/// Refresh `trial_id`'s heartbeat now and every `hb.interval` until `done` says the
/// trial ended. A failed beat is retried after the policy's backoff (not a whole
/// interval later); the last failure is kept in `last_error` for the trial's `tell`.
/// A trial finished by someone else stops the beating.
fn beat_until_done(
    storage: &dyn Storage,
    trial_id: u64,
    hb: Heartbeat,
    retry: RetryPolicy,
    done: &mpsc::Receiver<()>,
    last_error: &Mutex<Option<String>>,
) {
    let mut failures = 0u32;
    loop {
        let wait = match storage.heartbeat(trial_id) {
            Ok(()) => {
                failures = 0;
                hb.interval
            }
            Err(TuningError::TrialFinished { .. }) => return,
            Err(e) => {
                failures = failures.saturating_add(1);
                *last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                retry.backoff(failures).min(hb.interval)
            }
        };
        match done.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

fn run_catching<F>(objective: &mut F, trial: &mut Trial<'_>) -> ObjectiveResult
where
    F: FnMut(&mut Trial<'_>) -> ObjectiveResult,
{
    match catch_unwind(AssertUnwindSafe(|| objective(trial))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            Err(ObjectiveError::msg(format!(
                "the objective panicked: {msg}"
            )))
        }
    }
}

/// The define-by-run core: a parameter for `trial`, recorded in storage.
pub(crate) fn suggest(trial: &mut Trial<'_>, name: &str, dist: Distribution) -> Result<f64> {
    if let Some(p) = trial.params.get(name) {
        if p.distribution == dist {
            return Ok(p.internal);
        }
        return Err(TuningError::IncompatibleDistribution {
            name: name.to_owned(),
            previous: p.distribution.to_string(),
            requested: dist.to_string(),
        });
    }
    let study = trial.study;
    if trial.history.is_none() {
        trial.history = Some(study.storage.trials(study.id)?);
    }
    let history = trial
        .history
        .clone()
        .unwrap_or_else(|| Arc::from(Vec::new()));
    // One name keeps one kind (and one set of choices) across the study, as in Optuna;
    // numeric ranges may change between trials.
    if let Some(prev) = history
        .iter()
        .find_map(|t| t.params.get(name))
        .map(|p| &p.distribution)
    {
        let compatible = match (prev, &dist) {
            (
                Distribution::Categorical { choices: a },
                Distribution::Categorical { choices: b },
            ) => a == b,
            (a, b) => a.kind() == b.kind(),
        };
        if !compatible {
            return Err(TuningError::IncompatibleDistribution {
                name: name.to_owned(),
                previous: prev.to_string(),
                requested: dist.to_string(),
            });
        }
    }
    let internal = if let Some(v) = trial.fixed.get(name) {
        dist.to_internal(v)
            .ok_or_else(|| TuningError::FixedValueOutOfDistribution {
                name: name.to_owned(),
                value: v.to_string(),
                distribution: dist.to_string(),
            })?
    } else if dist.is_single() {
        match &dist {
            Distribution::Float { low, .. } => *low,
            Distribution::Int { low, .. } => *low as f64,
            Distribution::Categorical { .. } => 0.0,
        }
    } else {
        let ctx = SampleContext {
            study_id: study.id,
            direction: study.direction,
            trials: &history,
            trial_number: trial.number,
            trial_params: &trial.params,
        };
        if trial.relative.is_none() {
            let space = study.sampler.infer_relative_search_space(&ctx);
            let relative = study.sampler.sample_relative(&ctx, &space, &mut trial.rng);
            if !relative.is_empty() && study.sampler.publishes_pending_params() {
                study
                    .storage
                    .set_pending_params(trial.trial_id, &relative)?;
            }
            trial.relative = Some((space, relative));
        }
        let from_relative = trial.relative.as_ref().and_then(|(space, rel)| {
            let v = *rel.get(name)?;
            let d = space.get(name)?;
            (d.kind() == dist.kind() && dist.contains(v)).then_some(v)
        });
        match from_relative {
            Some(v) => v,
            None => study
                .sampler
                .sample_independent(&ctx, name, &dist, &mut trial.rng),
        }
    };
    let param = Param {
        value: dist.to_external(internal),
        internal,
        distribution: dist,
    };
    study.storage.set_param(trial.trial_id, name, &param)?;
    trial.params.insert(name.to_owned(), param);
    Ok(internal)
}
