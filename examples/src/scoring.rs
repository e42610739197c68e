//! The scoring core: a served model version plus every machine's online
//! feature state, scoring batches of raw telemetry all-or-nothing. `serve` is a
//! thin HTTP layer over it; another Rust service can embed it as it is.
//!
//! - **One model version per batch.** A batch sees one [`LoadedModel`] entirely
//!   (forests, feature spec, threshold); [`ScoringCore::replace_model`] waits
//!   for in-flight batches and, when the feature spec changed, starts every
//!   machine afresh (`warm: false` until its windows fill again).
//! - **All or nothing.** Every sample is checked against the stored state (time
//!   order, spacing, clock skew, machine limits) before any state changes; a
//!   refused batch leaves nothing behind, so a client can fix it and resend.
//! - **Retries are safe.** A sample at the machine's last time gets the same
//!   prediction again and changes nothing.
//! - **No train/serve skew.** A missing sensor value (NaN) flows through the same
//!   features and sanitising as in training, and the answer names it.
//! - **Parallel machines.** Machine state lives in shards, each behind its own
//!   lock; a batch locks only the shards of its machines, in index order, and
//!   only while it advances their features. The forests run outside any lock,
//!   except for a model with alarm smoothing: its k-of-n alarms follow each
//!   machine's samples in order, so its forests run under the shard locks.
//! - **Alarms and explanations.** With smoothing, each machine's alarm and open
//!   episode ([`Scored::alarm`]) are evaluation's, replayed; a warm start
//!   ([`ScoringCore::warm_from`]) restores the feature windows, not the alarm
//!   state. [`ScoringCore::score_explained`] adds each sample's TreeSHAP
//!   contributions, computed after the locks are released.
//!
//! ```
//! use vigil_examples::scoring::{LoadedModel, Sample, ScoringCore, ScoringPolicy};
//! # fn model() -> Result<LoadedModel, Box<dyn std::error::Error>> {
//! #     use std::sync::Arc;
//! #     let dir = tempfile::tempdir()?;
//! #     let tracker = vigil_tracking_client::Tracker::new(
//! #         vigil_tracking_client::TrackingConfig::builder().local_dir(dir.path().join("mlruns")).build()?)?;
//! #     let source = vigil_examples::source::DataSource::Simulated(vigil_features::SimulatorConfig {
//! #         machines: 2, days: 2.0, ..Default::default() });
//! #     let config = vigil_examples::train::TrainConfig { n_trials: 1, max_samples_per_tree: Some(2_000),
//! #         output_dir: dir.path().join("out"), ..Default::default() };
//! #     let outcome = vigil_examples::train::train(&source, &config, &tracker, Arc::new(|_| {}))?;
//! #     Ok(LoadedModel::unregistered(outcome.bundle))
//! # }
//! let core = ScoringCore::new(model()?, ScoringPolicy::default())?;
//! let t0 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z, in µs
//! let sample = |t: i64, temperature: f64| Sample {
//!     machine_id: "M01".into(),
//!     time: t0 + t * 10_000_000,
//!     values: vec![temperature, 0.5, 1500.0, f64::NAN], // power missing
//! };
//! let now = t0 + 3_600_000_000;
//! let first = core.score(&[sample(0, 70.0), sample(1, 70.5)], now)?;
//! assert_eq!(first.predictions.len(), 2);
//! assert_eq!(first.predictions[1].missing_sensors, ["power_consumption"]);
//! assert!(!first.predictions[1].warm); // 10 s of history, windows of up to 30 min
//!
//! // A retry of the last sample: the same answer, nothing changes.
//! let again = core.score(&[sample(1, 70.5)], now)?;
//! assert_eq!(again.predictions[0].failure_probability, first.predictions[1].failure_probability);
//!
//! // One bad sample refuses the whole batch, and nothing of it is applied.
//! assert!(core.score(&[sample(2, 71.0), sample(0, 70.0)], now).is_err());
//! assert_eq!(core.score(&[sample(2, 71.0)], now)?.predictions.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use vigil_features::{FeaturePlan, OnlineFeatures, TelemetryFrame, format_timestamp};
use vigil_tracking_client::Tracker;

use ndarray::ArrayView2;

use vigil_metrics::{EventParams, Smoothing};

use crate::alarm::{AlarmStatus, MachineAlarm, check_smoothing};
use crate::bundle::FAILURE_CLASS;
use crate::bundle::{ModelBundle, failure_probability, failure_probability_row};
use crate::error::PipelineError;
use crate::explain::{Contribution, top_contributions};

/// A model version with what the registry says about it.
#[derive(Debug)]
pub struct LoadedModel {
    /// The forests, spec and threshold.
    pub bundle: ModelBundle,
    /// Registered model name (empty for a bundle that was never registered).
    pub name: String,
    /// Version.
    pub version: String,
    /// Training run.
    pub run_id: String,
    /// Stage when loaded.
    pub stage: String,
    /// Aliases when loaded.
    pub aliases: Vec<String>,
    /// The training run's metrics.
    pub metrics: BTreeMap<String, f64>,
    /// When it was loaded (RFC 3339).
    pub loaded_at: String,
}

impl LoadedModel {
    /// A bundle that is not in a registry (tests, embedding a model folder).
    pub fn unregistered(bundle: ModelBundle) -> LoadedModel {
        LoadedModel {
            bundle,
            name: String::new(),
            version: String::new(),
            run_id: String::new(),
            stage: String::new(),
            aliases: Vec::new(),
            metrics: BTreeMap::new(),
            loaded_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

/// Resolves `uri` (`models:/name/Production`, `models:/name@champion`, ...),
/// downloads the version into `scratch` and loads it.
pub fn load_model(
    tracker: &Tracker,
    uri: &str,
    scratch: &Path,
) -> Result<LoadedModel, PipelineError> {
    let resolved = tracker.resolve_model(uri)?;
    let v = &resolved.version;
    let bundle = ModelBundle::download(tracker, &v.name, &v.version, scratch)?;
    let metrics = tracker
        .store()
        .get_run(&v.run_id)
        .map(|run| {
            run.data
                .metrics
                .iter()
                .map(|m| (m.key.clone(), m.value))
                .collect()
        })
        .unwrap_or_default();
    Ok(LoadedModel {
        bundle,
        name: v.name.clone(),
        version: v.version.clone(),
        run_id: v.run_id.clone(),
        stage: v.current_stage.clone(),
        aliases: v.aliases.clone(),
        metrics,
        loaded_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

/// Which version a URI points at now, without downloading it.
pub fn current_version(tracker: &Tracker, uri: &str) -> Result<String, PipelineError> {
    Ok(tracker.resolve_model(uri)?.version.version)
}

/// The limits a [`ScoringCore`] enforces. `Default` is the service's defaults.
#[derive(Debug, Clone)]
pub struct ScoringPolicy {
    /// Samples later than now plus this many µs are refused. Default 5 minutes.
    pub clock_skew_micros: i64,
    /// Machines with state at most; a sample of a further machine is refused
    /// until one is reset. Default 10,000.
    pub max_machines: usize,
    /// Samples in one batch at most. Default 10,000.
    pub max_batch_samples: usize,
    /// Score machines the model was not trained on. Default off.
    pub allow_new_machines: bool,
    /// Shards of the machine state (independent locks). Default 64.
    pub shards: usize,
    /// Samples one batch may ask to have explained (TreeSHAP costs about as
    /// much as scoring a few hundred rows each); 0 turns explanations off.
    /// Default 100.
    pub max_explained_samples: usize,
}

impl Default for ScoringPolicy {
    fn default() -> Self {
        ScoringPolicy {
            clock_skew_micros: 5 * 60 * 1_000_000,
            max_machines: 10_000,
            max_batch_samples: 10_000,
            allow_new_machines: false,
            shards: 64,
            max_explained_samples: 100,
        }
    }
}

impl ScoringPolicy {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |m: &str| Err(PipelineError::Invalid(m.to_string()));
        if self.clock_skew_micros < 0 {
            return bad("the clock skew must not be negative");
        }
        if self.max_machines == 0 || self.max_batch_samples == 0 || self.shards == 0 {
            return bad("max_machines, max_batch_samples and shards must be at least 1");
        }
        Ok(())
    }
}

/// One raw telemetry sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The machine.
    pub machine_id: String,
    /// µs since the Unix epoch, UTC.
    pub time: i64,
    /// One value per sensor of the model's spec, in its order; NaN = missing.
    pub values: Vec<f64>,
}

/// The answer for one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The machine.
    pub machine_id: String,
    /// The sample's time (µs since the epoch).
    pub time: i64,
    /// Probability that the machine fails within the label horizon.
    pub failure_probability: f64,
    /// `failure_probability >= threshold`.
    pub failure: bool,
    /// The model's threshold.
    pub threshold: f64,
    /// Isolation Forest anomaly score in (0, 1]: higher is more abnormal.
    pub anomaly_score: f64,
    /// Whether the Isolation Forest flags the sample (its contamination cut).
    pub is_anomaly: bool,
    /// Whether the machine's history covers the longest feature window.
    pub warm: bool,
    /// Whether the sample repeated the machine's last time (a retry).
    pub retry: bool,
    /// Sensors the sample had no value for.
    pub missing_sensors: Vec<String>,
    /// The probability of each failure mode (`none` first, in the order of the
    /// model's `failure_modes`), when the model has a mode classifier.
    pub failure_mode_probabilities: Option<Vec<f64>>,
    /// The most likely mode other than `none`, when `failure` is set and the
    /// model has a mode classifier.
    pub failure_mode: Option<String>,
    /// The machine's alarm after this sample, when the model has alarm
    /// smoothing ([`crate::alarm`]); without it the alarm is `failure`.
    pub alarm: Option<AlarmStatus>,
    /// Why the failure probability is what it is, when asked for
    /// ([`ScoringCore::score_explained`]).
    pub explanation: Option<SampleExplanation>,
}

/// A sample's failure probability split into feature contributions (exact
/// path-dependent TreeSHAP): `base_value` plus the contributions of *all*
/// features is `failure_probability`; `contributions` holds the `k` largest
/// by magnitude, so they sum to it only when `k` is every feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleExplanation {
    /// The failure probability with no feature known: the training data's
    /// cover-weighted mean (`shap`'s `expected_value`).
    pub base_value: f64,
    /// The largest contributions, largest magnitude first.
    pub contributions: Vec<Contribution>,
}

/// A scored batch and the model version that scored it.
#[derive(Debug, Clone)]
pub struct ScoredBatch {
    /// The version that scored every sample of the batch.
    pub model: Arc<LoadedModel>,
    /// One answer per sample, in order.
    pub predictions: Vec<Scored>,
    /// Each sample's feature vector (sanitised, in the model's column order),
    /// what drift monitoring collects.
    pub features: Vec<Vec<f64>>,
}

/// Why a batch was refused; nothing of it was applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoringError {
    /// The batch has no samples.
    #[error("no samples in the batch")]
    EmptyBatch,
    /// The batch has more samples than allowed.
    #[error("{got} samples in one batch; at most {limit} are allowed")]
    TooManySamples {
        /// Samples sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// A sample with the wrong number of sensor values.
    #[error("sample {index}: {got} sensor values, the model needs {expected} ({sensors})")]
    WrongWidth {
        /// Position in the batch.
        index: usize,
        /// Values sent.
        got: usize,
        /// Values needed.
        expected: usize,
        /// The sensors, in order.
        sensors: String,
    },
    /// A machine the model was not trained on, with new machines not allowed.
    #[error(
        "sample {index}: unknown machine {machine:?} (the model was trained on {known}); allow new machines to score others"
    )]
    UnknownMachine {
        /// Position in the batch.
        index: usize,
        /// The machine.
        machine: String,
        /// The machines the model knows.
        known: String,
    },
    /// `explain` asked for no contribution, or more than the model has features.
    #[error("explain {k}: ask for 1 to {n_features} contributions (the model's feature count)")]
    ExplainCount {
        /// Contributions asked for.
        k: usize,
        /// Features of the model.
        n_features: usize,
    },
    /// More samples to explain in one batch than allowed.
    #[error("{got} samples to explain in one batch; at most {limit} are allowed")]
    TooManyExplained {
        /// Samples in the batch.
        got: usize,
        /// The limit ([`ScoringPolicy::max_explained_samples`]).
        limit: usize,
    },
    /// The served model was stored without node covers.
    #[error(
        "model version {version} cannot be explained: it was stored without node covers (vigil-forest model format 1); retrain it"
    )]
    NotExplainable {
        /// The served version.
        version: String,
    },
    /// Tracking one more machine would pass the limit.
    #[error(
        "sample {index}: machine {machine:?} would be machine {limit} + 1; at most {limit} machines are tracked (reset one to make room)"
    )]
    TooManyMachines {
        /// Position in the batch.
        index: usize,
        /// The machine.
        machine: String,
        /// The limit.
        limit: usize,
    },
    /// A sample from the future.
    #[error(
        "sample {index} (machine {machine}): time {time} is later than now plus the allowed clock skew ({limit})"
    )]
    InFuture {
        /// Position in the batch.
        index: usize,
        /// The machine.
        machine: String,
        /// The sample's time.
        time: String,
        /// The latest time accepted.
        limit: String,
    },
    /// A sample older than its machine's previous one.
    #[error(
        "sample {index} (machine {machine}): time {time} is older than the machine's previous sample at {previous}"
    )]
    OutOfOrder {
        /// Position in the batch.
        index: usize,
        /// The machine.
        machine: String,
        /// The sample's time.
        time: String,
        /// The previous sample's time.
        previous: String,
    },
    /// A sample too close after its machine's previous one.
    #[error(
        "sample {index} (machine {machine}): time {time} is {gap_micros} µs after the previous sample at {previous}; samples must be at least {min_spacing_micros} µs apart (the same time again is a retry)"
    )]
    TooClose {
        /// Position in the batch.
        index: usize,
        /// The machine.
        machine: String,
        /// The sample's time.
        time: String,
        /// The previous sample's time.
        previous: String,
        /// The gap.
        gap_micros: i64,
        /// The minimum spacing.
        min_spacing_micros: i64,
    },
    /// Computing features or scores failed (a bug or a broken model, not the input).
    #[error(transparent)]
    Internal(#[from] PipelineError),
}

/// What the core keeps per machine besides its feature windows.
#[derive(Debug, Clone, Copy)]
struct MachineClock {
    first_time: i64,
    last_time: i64,
}

/// One lock's worth of machines: their feature windows, clocks and (with
/// alarm smoothing) alarms.
#[derive(Debug)]
struct Shard {
    online: OnlineFeatures,
    clocks: HashMap<String, MachineClock>,
    alarms: HashMap<String, MachineAlarm>,
}

impl Shard {
    fn new(model: &LoadedModel) -> Result<Shard, PipelineError> {
        Ok(Shard {
            online: OnlineFeatures::new(model.bundle.feature_spec.clone())?,
            clocks: HashMap::new(),
            alarms: HashMap::new(),
        })
    }
}

/// What validation decided for one sample.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Advance the machine's windows.
    Advance { new_machine: bool },
    /// The machine's last time again: answer as before.
    Retry,
}

/// What validation does with a sample the live path refuses.
#[derive(Debug, Clone, Copy)]
enum Refusals {
    /// Refuse the batch (live scoring).
    Fail,
    /// Leave the sample out (a warm start from recorded telemetry).
    Skip,
}

/// The served version and what the core derives from it once.
#[derive(Debug)]
struct Served {
    model: Arc<LoadedModel>,
    known_machines: HashSet<String>,
    /// History a machine needs before its windows are full.
    warm_micros: i64,
    /// The spec's minimum spacing: training and serving admit samples alike.
    min_spacing_micros: i64,
    /// Upper bound of one machine's state, in bytes.
    bytes_per_machine: usize,
    /// The model's alarm smoothing, when it has one: alarms are then tracked
    /// per machine, in sample order.
    smoothing: Option<Smoothing>,
}

/// What the core keeps per machine besides its feature windows: the map entry,
/// the id (at most this many bytes, as serve checks) and the clock.
const MACHINE_OVERHEAD_BYTES: usize = 64 + 128 + std::mem::size_of::<MachineClock>();

impl Served {
    fn new(model: LoadedModel) -> Result<Served, PipelineError> {
        let meta = &model.bundle.meta;
        let plan = FeaturePlan::compile(&model.bundle.feature_spec)?;
        let smoothing = meta.alarm_smoothing;
        check_smoothing(smoothing)?;
        // The alarm map's entry and key cost what the clock map's do.
        let alarm_bytes = smoothing.map_or(0, |s| MachineAlarm::max_bytes(s.n) + 64 + 128);
        Ok(Served {
            bytes_per_machine: plan.max_state_bytes() + MACHINE_OVERHEAD_BYTES + alarm_bytes,
            smoothing,
            known_machines: meta.machines.iter().cloned().collect(),
            warm_micros: model.bundle.feature_spec.warm_after().as_micros(),
            min_spacing_micros: model.bundle.feature_spec.min_spacing.as_micros(),
            model: Arc::new(model),
        })
    }
}

/// The model being served plus every machine's online state. See the module docs.
#[derive(Debug)]
pub struct ScoringCore {
    served: RwLock<Arc<Served>>,
    shards: Box<[Mutex<Shard>]>,
    tracked: AtomicUsize,
    hasher: RandomState,
    policy: ScoringPolicy,
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while a shard was held cannot leave it half-updated in a way later
    // batches would misread (validation happens before any change), so go on.
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The locked shards of one batch, by shard index (`None`: not locked).
struct Locked<'a> {
    guards: Vec<Option<MutexGuard<'a, Shard>>>,
}

impl Locked<'_> {
    fn shard(&mut self, index: usize) -> Result<&mut Shard, ScoringError> {
        match self.guards.get_mut(index) {
            Some(Some(guard)) => Ok(guard),
            _ => Err(ScoringError::Internal(PipelineError::Invalid(format!(
                "scoring core: shard {index} was not locked"
            )))),
        }
    }
}

impl ScoringCore {
    /// A core serving `model`, with no machine state yet.
    pub fn new(model: LoadedModel, policy: ScoringPolicy) -> Result<ScoringCore, PipelineError> {
        policy.validate()?;
        let shards = (0..policy.shards)
            .map(|_| Shard::new(&model).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScoringCore {
            served: RwLock::new(Arc::new(Served::new(model)?)),
            shards: shards.into_boxed_slice(),
            tracked: AtomicUsize::new(0),
            hasher: RandomState::new(),
            policy,
        })
    }

    /// The limits in force.
    pub fn policy(&self) -> &ScoringPolicy {
        &self.policy
    }

    /// An upper bound, in bytes, of the state one machine holds whatever its
    /// input (the feature windows hold at most one sample per minimum spacing);
    /// the whole core holds at most `max_machines` times this.
    pub fn max_bytes_per_machine(&self) -> usize {
        self.served().bytes_per_machine
    }

    /// The version being served.
    pub fn model(&self) -> Arc<LoadedModel> {
        Arc::clone(&self.served().model)
    }

    fn served(&self) -> Arc<Served> {
        match self.served.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn shard_index(&self, machine: &str) -> usize {
        (self.hasher.hash_one(machine) % self.shards.len() as u64) as usize
    }

    fn lock_shards(&self, indices: &[usize]) -> Locked<'_> {
        let mut wanted = vec![false; self.shards.len()];
        for &i in indices {
            if let Some(w) = wanted.get_mut(i) {
                *w = true;
            }
        }
        // Always in index order: two batches never wait on each other in a cycle.
        let guards = self
            .shards
            .iter()
            .zip(wanted)
            .map(|(shard, wanted)| wanted.then(|| lock(shard)))
            .collect();
        Locked { guards }
    }

    /// Scores `samples` (in order) at wall-clock time `now` (µs since the epoch):
    /// all of them, or none (nothing applied) with the first problem found.
    pub fn score(&self, samples: &[Sample], now: i64) -> Result<ScoredBatch, ScoringError> {
        self.score_explained(samples, now, None)
    }

    /// [`score`](Self::score), and with `explain = Some(k)` each sample's `k`
    /// largest TreeSHAP contributions to its failure probability
    /// ([`Scored::explanation`]). `k` must be in `1..=` the model's feature
    /// count, the batch within [`ScoringPolicy::max_explained_samples`], and
    /// the model one stored with node covers; otherwise nothing is applied.
    /// Explanations are computed after the machine state is released.
    pub fn score_explained(
        &self,
        samples: &[Sample],
        now: i64,
        explain: Option<usize>,
    ) -> Result<ScoredBatch, ScoringError> {
        if samples.is_empty() {
            return Err(ScoringError::EmptyBatch);
        }
        if samples.len() > self.policy.max_batch_samples {
            return Err(ScoringError::TooManySamples {
                got: samples.len(),
                limit: self.policy.max_batch_samples,
            });
        }
        let shard_of: Vec<usize> = samples
            .iter()
            .map(|s| self.shard_index(&s.machine_id))
            .collect();
        let mut locked = self.lock_shards(&shard_of);
        // Read under the shard locks: a model swap takes every lock, so this batch
        // sees the same version as the state it advances.
        let served = self.served();
        check_widths(&served.model, samples)?;
        if let Some(k) = explain {
            check_explain(&served.model, k, samples.len(), &self.policy)?;
        }
        let latest = now.saturating_add(self.policy.clock_skew_micros);
        let steps: Vec<Step> = self
            .plan_steps(
                &mut locked,
                &served,
                &shard_of,
                samples,
                Some(latest),
                Refusals::Fail,
            )?
            .into_iter()
            .flatten()
            .collect();
        let new_machines = steps
            .iter()
            .filter(|s| matches!(s, Step::Advance { new_machine: true }))
            .count();
        self.reserve_machines(new_machines, samples, &steps)?;
        let rows = advance(&mut locked, &served, &shard_of, samples, &steps)?;
        let mut predictions = match served.smoothing {
            // Alarms follow each machine's samples in order: the forests run
            // under the shard locks, so no later batch overtakes this one.
            Some(smoothing) => {
                let mut p = predict(&served.model, samples, &steps, &rows)?;
                track_alarms(&mut locked, smoothing, &shard_of, &steps, &mut p)?;
                drop(locked);
                p
            }
            None => {
                drop(locked);
                predict(&served.model, samples, &steps, &rows)?
            }
        };
        if let Some(k) = explain {
            explain_predictions(&served.model, &rows, k, &mut predictions)?;
        }
        Ok(ScoredBatch {
            model: Arc::clone(&served.model),
            predictions,
            features: rows.into_iter().map(|r| r.features).collect(),
        })
    }

    /// Checks every sample against the stored clocks and the batch's own earlier
    /// samples, and against `latest` (now plus the clock skew) when given;
    /// changes nothing. With [`Refusals::Skip`], a sample the live path would
    /// refuse for its time or machine, or answer as a retry, gets `None`
    /// instead of failing the batch (recorded telemetry for a warm start).
    fn plan_steps(
        &self,
        locked: &mut Locked<'_>,
        served: &Served,
        shard_of: &[usize],
        samples: &[Sample],
        latest: Option<i64>,
        refusals: Refusals,
    ) -> Result<Vec<Option<Step>>, ScoringError> {
        let mut seen: HashMap<&str, MachineClock> = HashMap::new();
        let mut steps = Vec::with_capacity(samples.len());
        for (index, (s, &shard)) in samples.iter().zip(shard_of).enumerate() {
            if let Some(latest) = latest.filter(|&l| s.time > l) {
                return Err(ScoringError::InFuture {
                    index,
                    machine: s.machine_id.clone(),
                    time: format_timestamp(s.time),
                    limit: format_timestamp(latest),
                });
            }
            let stored = match seen.get(s.machine_id.as_str()) {
                Some(c) => Some(*c),
                None => locked.shard(shard)?.clocks.get(&s.machine_id).copied(),
            };
            let step = match (self.step_for(index, s, stored, served), refusals) {
                (Ok(Step::Retry), Refusals::Skip)
                | (
                    Err(
                        ScoringError::TooClose { .. }
                        | ScoringError::OutOfOrder { .. }
                        | ScoringError::UnknownMachine { .. },
                    ),
                    Refusals::Skip,
                ) => None,
                (Ok(step), _) => Some(step),
                (Err(e), _) => return Err(e),
            };
            if step.is_some() {
                let first_time = stored.map_or(s.time, |c| c.first_time);
                let clock = MachineClock {
                    first_time,
                    last_time: s.time,
                };
                seen.insert(&s.machine_id, clock);
            }
            steps.push(step);
        }
        Ok(steps)
    }

    fn step_for(
        &self,
        index: usize,
        s: &Sample,
        stored: Option<MachineClock>,
        served: &Served,
    ) -> Result<Step, ScoringError> {
        let Some(clock) = stored else {
            if !self.policy.allow_new_machines && !served.known_machines.contains(&s.machine_id) {
                let mut known: Vec<&str> =
                    served.known_machines.iter().map(String::as_str).collect();
                known.sort_unstable();
                return Err(ScoringError::UnknownMachine {
                    index,
                    machine: s.machine_id.clone(),
                    known: known.join(", "),
                });
            }
            return Ok(Step::Advance { new_machine: true });
        };
        let previous = clock.last_time;
        let gap = s.time.saturating_sub(previous);
        if gap < 0 {
            return Err(ScoringError::OutOfOrder {
                index,
                machine: s.machine_id.clone(),
                time: format_timestamp(s.time),
                previous: format_timestamp(previous),
            });
        }
        if gap == 0 {
            return Ok(Step::Retry);
        }
        if gap < served.min_spacing_micros {
            return Err(ScoringError::TooClose {
                index,
                machine: s.machine_id.clone(),
                time: format_timestamp(s.time),
                previous: format_timestamp(previous),
                gap_micros: gap,
                min_spacing_micros: served.min_spacing_micros,
            });
        }
        Ok(Step::Advance { new_machine: false })
    }

    /// Counts the batch's new machines against the limit, atomically across batches.
    fn reserve_machines(
        &self,
        new_machines: usize,
        samples: &[Sample],
        steps: &[Step],
    ) -> Result<(), ScoringError> {
        if new_machines == 0 {
            return Ok(());
        }
        let before = self.tracked.fetch_add(new_machines, Ordering::SeqCst);
        if before + new_machines <= self.policy.max_machines {
            return Ok(());
        }
        self.tracked.fetch_sub(new_machines, Ordering::SeqCst);
        let room = self.policy.max_machines.saturating_sub(before);
        let (index, s) = samples
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(steps[*i], Step::Advance { new_machine: true }))
            .nth(room)
            .unwrap_or((0, &samples[0]));
        Err(ScoringError::TooManyMachines {
            index,
            machine: s.machine_id.clone(),
            limit: self.policy.max_machines,
        })
    }

    /// Serves `model` from now on. In-flight batches finish with the old version
    /// first (this takes every shard lock). When the feature spec changed, every
    /// machine starts afresh; otherwise their windows carry over. Returns whether
    /// the state was reset.
    pub fn replace_model(&self, model: LoadedModel) -> Result<bool, PipelineError> {
        let all: Vec<usize> = (0..self.shards.len()).collect();
        let mut locked = self.lock_shards(&all);
        let old = &self.served().model.bundle.meta;
        let alarm_changed = (old.threshold, old.alarm_smoothing)
            != (
                model.bundle.meta.threshold,
                model.bundle.meta.alarm_smoothing,
            );
        let spec_changed = self.served().model.bundle.feature_spec != model.bundle.feature_spec;
        if alarm_changed {
            for guard in locked.guards.iter_mut().flatten() {
                guard.alarms.clear();
            }
        }
        if spec_changed {
            for guard in locked.guards.iter_mut().flatten() {
                **guard = Shard::new(&model)?;
            }
            self.tracked.store(0, Ordering::SeqCst);
        }
        let mut slot = self.served.write().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(Served::new(model)?);
        Ok(spec_changed)
    }

    /// Forgets one machine's state (after maintenance, or a bad clock); returns
    /// whether it was tracked.
    pub fn reset_machine(&self, machine: &str) -> bool {
        let mut shard = lock(&self.shards[self.shard_index(machine)]);
        let known = shard.clocks.remove(machine).is_some();
        shard.alarms.remove(machine);
        shard.online.reset_machine(machine);
        if known {
            self.tracked.fetch_sub(1, Ordering::SeqCst);
        }
        known
    }

    /// Machines with state, and how many of them have full windows.
    pub fn machine_counts(&self) -> (usize, usize) {
        let warm_micros = self.served().warm_micros;
        let mut tracked = 0;
        let mut warm = 0;
        for shard in self.shards.iter() {
            let shard = lock(shard);
            tracked += shard.clocks.len();
            warm += shard
                .clocks
                .values()
                .filter(|c| c.last_time.saturating_sub(c.first_time) >= warm_micros)
                .count();
        }
        (tracked, warm)
    }

    /// Feeds recorded telemetry through the machines' windows without scoring
    /// it (a warm start): afterwards each machine continues as if it had been
    /// scored all along, provided the frame holds at least the spec's warm-up
    /// span of each machine's history (see [`recent_history`]). The frame's
    /// sensors must be the model's, in its order. Returns the samples taken;
    /// samples the live path would refuse or treat as retries (at or before a
    /// machine's last time, too close, machines the model does not score) are
    /// skipped.
    pub fn warm_from(&self, frame: &TelemetryFrame) -> Result<usize, ScoringError> {
        let sensors = self.model().bundle.feature_spec.sensors.clone();
        if frame.sensor_names() != sensors.as_slice() {
            return Err(ScoringError::Internal(PipelineError::Invalid(format!(
                "warm-up telemetry has sensors {:?}, the model needs {sensors:?}",
                frame.sensor_names()
            ))));
        }
        let mut taken = 0;
        for (machine, rows) in frame.machine_ranges() {
            let machine_id = frame.machine_ids()[machine as usize].clone();
            let last = self.last_time(&machine_id);
            let batch: Vec<Sample> = rows
                .filter(|&r| last.is_none_or(|t| frame.time()[r] > t))
                .map(|r| Sample {
                    machine_id: machine_id.clone(),
                    time: frame.time()[r],
                    values: (0..sensors.len()).map(|c| frame.sensor(c)[r]).collect(),
                })
                .collect();
            for chunk in batch.chunks(self.policy.max_batch_samples) {
                taken += self.advance_only(chunk)?;
            }
        }
        Ok(taken)
    }

    fn last_time(&self, machine: &str) -> Option<i64> {
        let shard = lock(&self.shards[self.shard_index(machine)]);
        shard.clocks.get(machine).map(|c| c.last_time)
    }

    /// [`score`](Self::score) without the forests: validation and feature state only.
    fn advance_only(&self, samples: &[Sample]) -> Result<usize, ScoringError> {
        let shard_of: Vec<usize> = samples
            .iter()
            .map(|s| self.shard_index(&s.machine_id))
            .collect();
        let mut locked = self.lock_shards(&shard_of);
        let served = self.served();
        check_widths(&served.model, samples)?;
        // Recorded telemetry may hold duplicates and close samples: skip what
        // the live path would refuse or treat as a retry.
        let steps = self.plan_steps(
            &mut locked,
            &served,
            &shard_of,
            samples,
            None,
            Refusals::Skip,
        )?;
        let new_machines = steps
            .iter()
            .filter(|s| matches!(s, Some(Step::Advance { new_machine: true })))
            .count();
        let kept: Vec<Sample> = samples
            .iter()
            .zip(&steps)
            .filter(|(_, s)| s.is_some())
            .map(|(s, _)| s.clone())
            .collect();
        let kept_steps: Vec<Step> = steps.into_iter().flatten().collect();
        self.reserve_machines(new_machines, &kept, &kept_steps)?;
        let kept_shards: Vec<usize> = kept
            .iter()
            .map(|s| self.shard_index(&s.machine_id))
            .collect();
        advance(&mut locked, &served, &kept_shards, &kept, &kept_steps)?;
        Ok(kept.len())
    }
}

/// The rows of `frame` a warm start needs: per machine, those within
/// `span_micros` of its last sample plus the one sample before them (a
/// difference feature after an outage needs it), in the frame's own order.
/// Pass the spec's [`warmup_span`](vigil_features::FeatureSpec::warmup_span).
pub fn recent_history(frame: &TelemetryFrame, span_micros: i64) -> TelemetryFrame {
    let time = frame.time();
    let mut rows = Vec::new();
    for (_, range) in frame.machine_ranges() {
        let Some(last) = range.clone().map(|r| time[r]).max() else {
            continue;
        };
        let from = last.saturating_sub(span_micros);
        let first_inside = range.clone().find(|&r| time[r] > from).unwrap_or(range.end);
        let start = if first_inside > range.start {
            first_inside - 1
        } else {
            first_inside
        };
        rows.extend(start..range.end);
    }
    frame.select_rows(&rows)
}

fn check_widths(model: &LoadedModel, samples: &[Sample]) -> Result<(), ScoringError> {
    let sensors = &model.bundle.feature_spec.sensors;
    match samples.iter().position(|s| s.values.len() != sensors.len()) {
        None => Ok(()),
        Some(index) => Err(ScoringError::WrongWidth {
            index,
            got: samples[index].values.len(),
            expected: sensors.len(),
            sensors: sensors.join(", "),
        }),
    }
}

/// One advanced (or retried) sample: its sanitised feature row and whether its
/// windows were full.
struct Row {
    features: Vec<f64>,
    warm: bool,
}

/// Applies validated steps: every sample's features, in order. Cannot be refused
/// by the input any more (validation saw every sample).
fn advance(
    locked: &mut Locked<'_>,
    served: &Served,
    shard_of: &[usize],
    samples: &[Sample],
    steps: &[Step],
) -> Result<Vec<Row>, ScoringError> {
    let mut rows = Vec::with_capacity(samples.len());
    for ((s, &shard), step) in samples.iter().zip(shard_of).zip(steps) {
        let shard = locked.shard(shard)?;
        // A retry returns the machine's cached row and leaves its state as it was.
        let features = shard
            .online
            .push_sanitized(&s.machine_id, s.time, &s.values)
            .map_err(PipelineError::from)?;
        let clock = shard
            .clocks
            .entry(s.machine_id.clone())
            .or_insert(MachineClock {
                first_time: s.time,
                last_time: s.time,
            });
        if matches!(step, Step::Advance { .. }) {
            clock.last_time = s.time;
        }
        let warm = s.time.saturating_sub(clock.first_time) >= served.warm_micros;
        rows.push(Row { features, warm });
    }
    Ok(rows)
}

/// Feeds each sample's flag to its machine's alarm, in order; a retry is
/// answered with the machine's latest status and changes nothing.
fn track_alarms(
    locked: &mut Locked<'_>,
    smoothing: Smoothing,
    shard_of: &[usize],
    steps: &[Step],
    predictions: &mut [Scored],
) -> Result<(), ScoringError> {
    let merge_gap = EventParams::default().merge_gap;
    for ((p, &shard), step) in predictions.iter_mut().zip(shard_of).zip(steps) {
        let alarms = &mut locked.shard(shard)?.alarms;
        let status = match (step, alarms.get_mut(&p.machine_id)) {
            (Step::Retry, Some(a)) => a.latest(),
            (Step::Retry, None) => None,
            (Step::Advance { .. }, Some(a)) => Some(a.push(p.time, p.failure)),
            (Step::Advance { .. }, None) => {
                let mut a = MachineAlarm::new(smoothing, merge_gap)?;
                let status = a.push(p.time, p.failure);
                alarms.insert(p.machine_id.clone(), a);
                Some(status)
            }
        };
        p.alarm = status;
    }
    Ok(())
}

/// Refuses an explanation request the model or the policy cannot serve.
fn check_explain(
    model: &LoadedModel,
    k: usize,
    samples: usize,
    policy: &ScoringPolicy,
) -> Result<(), ScoringError> {
    let n_features = model.bundle.meta.feature_names.len();
    if k == 0 || k > n_features {
        return Err(ScoringError::ExplainCount { k, n_features });
    }
    if samples > policy.max_explained_samples {
        return Err(ScoringError::TooManyExplained {
            got: samples,
            limit: policy.max_explained_samples,
        });
    }
    if !model.bundle.random_forest.can_explain() {
        return Err(ScoringError::NotExplainable {
            version: model.version.clone(),
        });
    }
    Ok(())
}

/// Each prediction's `k` largest TreeSHAP contributions, from the feature
/// row its probability was computed on.
fn explain_predictions(
    model: &LoadedModel,
    rows: &[Row],
    k: usize,
    predictions: &mut [Scored],
) -> Result<(), ScoringError> {
    let forest = &model.bundle.random_forest;
    let names = &model.bundle.meta.feature_names;
    for (p, row) in predictions.iter_mut().zip(rows) {
        let e = forest
            .shap_values_row(&row.features, FAILURE_CLASS)
            .map_err(PipelineError::from)?;
        let values = e.values.as_slice().unwrap_or(&[]);
        p.explanation = Some(SampleExplanation {
            base_value: e.expected_value,
            contributions: top_contributions(names, values, &row.features, k),
        });
    }
    Ok(())
}

/// Batches smaller than this are scored row by row (the forests' one-row
/// paths): the batch paths walk rows eight at a time. Both give the same bits.
const SMALL_BATCH_ROWS: usize = 8;

/// Both forests on every row, outside any lock, through their batch paths
/// (rows walk each tree together; the same code and sums training's
/// evaluation uses).
fn predict(
    model: &LoadedModel,
    samples: &[Sample],
    steps: &[Step],
    rows: &[Row],
) -> Result<Vec<Scored>, ScoringError> {
    let bundle = &model.bundle;
    if rows.len() < SMALL_BATCH_ROWS {
        return predict_rows(model, samples, steps, rows);
    }
    let n_features = rows.first().map_or(0, |r| r.features.len());
    let flat: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.features.iter().copied())
        .collect();
    let x = ArrayView2::from_shape((rows.len(), n_features), &flat)
        .map_err(|e| PipelineError::Invalid(format!("scoring core: feature rows: {e}")))?;
    let probabilities = failure_probability(&bundle.random_forest, x)?;
    let iso = &bundle.isolation_forest;
    let scores = iso.score_samples(x).map_err(PipelineError::from)?;
    let offset = iso.offset();
    let modes = match &bundle.failure_modes {
        Some(m) => Some(m.forest.predict_proba(x).map_err(PipelineError::from)?),
        None => None,
    };
    Ok(samples
        .iter()
        .zip(steps)
        .zip(rows)
        .enumerate()
        .map(|(i, ((s, step), row))| {
            let forests = Forests {
                probability: probabilities[i],
                score: scores[i],
                offset,
                modes: modes.as_ref().map(|m| m.row(i).to_vec()),
            };
            scored(model, s, *step, row, forests)
        })
        .collect())
}

/// [`predict`] for small batches: each row through the forests' one-row paths.
fn predict_rows(
    model: &LoadedModel,
    samples: &[Sample],
    steps: &[Step],
    rows: &[Row],
) -> Result<Vec<Scored>, ScoringError> {
    let bundle = &model.bundle;
    let iso = &bundle.isolation_forest;
    let mut out = Vec::with_capacity(rows.len());
    for ((s, step), row) in samples.iter().zip(steps).zip(rows) {
        let forests = Forests {
            probability: failure_probability_row(&bundle.random_forest, &row.features)?,
            score: iso.score_row(&row.features).map_err(PipelineError::from)?,
            offset: iso.offset(),
            modes: match &bundle.failure_modes {
                Some(m) => Some(m.probabilities_row(&row.features)?),
                None => None,
            },
        };
        out.push(scored(model, s, *step, row, forests));
    }
    Ok(out)
}

/// One answer from a sample's probability and Isolation Forest score.
/// What the forests said about one row.
struct Forests {
    /// The failure probability.
    probability: f64,
    /// The Isolation Forest's `score_samples`.
    score: f64,
    /// Its contamination offset.
    offset: f64,
    /// The failure-mode probabilities, when the model has a mode classifier.
    modes: Option<Vec<f64>>,
}

fn scored(model: &LoadedModel, s: &Sample, step: Step, row: &Row, forests: Forests) -> Scored {
    let Forests {
        probability,
        score,
        offset,
        modes,
    } = forests;
    let threshold = model.bundle.meta.threshold;
    let failure = probability >= threshold;
    let failure_mode = match (&model.bundle.failure_modes, &modes) {
        (Some(m), Some(p)) if failure => m.most_likely_failure(p).map(|(name, _)| name.to_string()),
        _ => None,
    };
    Scored {
        machine_id: s.machine_id.clone(),
        time: s.time,
        failure_probability: probability,
        failure,
        threshold,
        anomaly_score: -score,
        // `is_anomaly` without scoring the row again: the same
        // `score - offset < 0` it computes.
        is_anomaly: score - offset < 0.0,
        warm: row.warm,
        retry: matches!(step, Step::Retry),
        missing_sensors: model
            .bundle
            .feature_spec
            .sensors
            .iter()
            .zip(&s.values)
            .filter(|(_, v)| !v.is_finite())
            .map(|(name, _)| name.clone())
            .collect(),
        failure_mode_probabilities: modes,
        failure_mode,
        alarm: None,
        explanation: None,
    }
}
