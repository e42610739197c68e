//! Vigil tuning: define-by-run hyper-parameter tuning with the TPE sampler that Optuna 5
//! uses by default, random search, median pruning, parallel trials, and storages from
//! memory to a journal file to a PostgreSQL database shared by many workers.
//!
//! # A guided tour
//!
//! A [`Study`] owns the trials of one optimisation. Its objective receives a [`Trial`]
//! and asks it for parameters *by name, as it goes* (define-by-run), so the search space
//! can depend on earlier choices. The objective returns a value, or an error
//! ([`ObjectiveError`]; any `std::error::Error` converts with `?`). Errors, NaN and
//! panics fail only that trial.
//!
//! ```
//! use vigil_tuning::{Direction, MedianPruner, ObjectiveError, Study};
//!
//! let study = Study::builder()
//!     .name("rf-f1")
//!     .direction(Direction::Maximize)
//!     .seed(42)
//!     .pruner(MedianPruner::default())
//!     .build()?;
//!
//! // Try the defaults we trust first.
//! study.enqueue_trial([("n_estimators", 100.into()), ("max_features", "sqrt".into())])?;
//!
//! // A callback runs after every trial: log to a tracker, advance a progress bar.
//! study.add_callback(|study, trial| {
//!     let _best_so_far = study.best_value().ok();
//!     let _ = (trial.number, trial.state, trial.value);
//! });
//!
//! study.optimize(20, None, |trial| {
//!     let n_estimators = trial.suggest_int("n_estimators", 50, 300)?;
//!     let max_depth = trial.suggest_int("max_depth", 3, 20)?;
//!     let min_samples_split = trial.suggest_int("min_samples_split", 2, 20)?;
//!     let min_samples_leaf = trial.suggest_int("min_samples_leaf", 1, 10)?;
//!     let max_features = trial.suggest_categorical("max_features", &["sqrt", "log2"])?;
//!     // A stand-in for cross-validated F1; report after each fold so that
//!     // the pruner can stop hopeless settings early.
//!     let mut f1_sum = 0.0;
//!     for fold in 0..5 {
//!         let f1 = 0.9 - (max_depth as f64 - 12.0).abs() / 100.0
//!             - (n_estimators as f64 - 200.0).abs() / 5000.0
//!             - (min_samples_split + min_samples_leaf) as f64 / 1000.0
//!             - if max_features == "log2" { 0.01 } else { 0.0 }
//!             - fold as f64 * 1e-4;
//!         f1_sum += f1;
//!         trial.report(fold, f1_sum / (fold + 1) as f64)?;
//!         if trial.should_prune()? {
//!             return Err(ObjectiveError::Pruned);
//!         }
//!     }
//!     Ok(f1_sum / 5.0)
//! })?;
//!
//! let best = study.best_trial()?;
//! assert_eq!(study.trials()?.len(), 20);
//! assert_eq!(study.trials()?[0].param("max_features").and_then(|v| v.as_str()), Some("sqrt"));
//! assert!(best.value.unwrap() > 0.8);
//! # Ok::<(), vigil_tuning::TuningError>(())
//! ```
//!
//! # Where things are
//!
//! Everything is at the crate root; only the plots have a module of their own.
//!
//! - The study: [`Study`], its [`StudyBuilder`], [`Direction`] and [`Heartbeat`];
//!   `optimize` / `optimize_parallel` / `optimize_until`, `ask` / `ask_within` / `tell`,
//!   `enqueue_trial`, callbacks, best
//!   trial, CSV and JSON export.
//! - Trials: the live [`Trial`] (`suggest_*`, `report`, `should_prune`), what an
//!   objective returns ([`ObjectiveResult`], [`ObjectiveError`]), and the stored
//!   [`FrozenTrial`] with its [`TrialState`] and [`Param`]s.
//! - The search space: [`Distribution`] (with typed errors for bad ranges),
//!   [`ParamValue`] and categorical [`Choice`]s.
//! - Samplers: [`TpeSampler`] (Optuna 5's default: multivariate, constant liar;
//!   [`TpeSampler::independent`] for the per-parameter variant) with its [`TpeParams`],
//!   and [`RandomSampler`]; the [`Sampler`] trait with [`SampleContext`], [`TrialRng`]
//!   and [`intersection_search_space`] for writing others.
//! - Pruners: [`MedianPruner`] (Optuna's decisions exactly), [`NopPruner`], and the
//!   [`Pruner`] trait.
//! - Storages: [`InMemoryStorage`], [`JournalStorage`] (append-only file, resumes
//!   after a crash) and, with the `postgres` feature, `PostgresStorage` (many worker
//!   processes, atomic claiming, heartbeats); the [`Storage`] trait and its
//!   [`TrialList`].
//! - `plot` (feature `plot`): the optimisation history of a list of trials, through
//!   vigil-metrics.
//! - Retries: [`RetryPolicy`] (how heartbeats, `tell` and PostgreSQL reconnects retry
//!   transient storage failures).
//! - Errors: [`TuningError`] and [`Result`].
//!
//! Parallel trials: [`Study::optimize_parallel`] runs `n_jobs` trials at once in this
//! process; several processes share a study through a journal file (one machine) or
//! PostgreSQL (many machines), each opening it with `load_if_exists(true)`, and each
//! calling [`Study::optimize_until`] with the same total: together they run exactly
//! that many trials (the storage caps the count atomically,
//! [`Storage::start_trial_capped`]).
#![deny(missing_docs)]

mod distributions;
mod error;
mod export;
mod pruners;
mod retry;
mod samplers;
mod serde_f64;
mod storage;
mod study;
mod trial;

// A namespace of its own, like vigil-metrics' `plot` (nothing in it is re-exported).
#[cfg(feature = "plot")]
pub mod plot;

pub use distributions::{Choice, Distribution, ParamValue};
pub use error::{Result, TuningError};
pub use pruners::{MedianPruner, NopPruner, Pruner};
pub use retry::RetryPolicy;
pub use samplers::{
    RandomSampler, SampleContext, Sampler, TpeParams, TpeSampler, TrialRng,
    intersection_search_space,
};
pub use storage::{InMemoryStorage, JournalStorage, Storage, TrialList};
pub use study::{Direction, Heartbeat, Study, StudyBuilder};
pub use trial::{FrozenTrial, ObjectiveError, ObjectiveResult, Param, Trial, TrialState};

#[cfg(feature = "postgres")]
pub use storage::PostgresStorage;
