//! Where studies and trials live: [`InMemoryStorage`] (one process), [`JournalStorage`]
//! (an append-only file that survives crashes and can be shared by processes on one
//! machine) and, with the `postgres` feature, `PostgresStorage` (many processes on many
//! machines).
//!
//! Every storage enforces the same rules: trials are numbered 0, 1, … per study; an
//! enqueued (`Waiting`) trial is claimed by exactly one worker; finished trials never
//! change; a `Running` trial whose heartbeat is older than the grace period can be failed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::Direction;
use crate::distributions::ParamValue;
use crate::error::Result;
use crate::trial::{FrozenTrial, Param, TrialState};

mod journal;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

pub use journal::JournalStorage;
pub use memory::InMemoryStorage;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStorage;

/// The trials of one study, oldest first (by number). Cheap to clone.
pub type TrialList = Arc<[Arc<FrozenTrial>]>;

/// The operations a study needs from its storage. Implementations are shared by all
/// worker threads (`Send + Sync`) and must make each operation atomic.
///
/// Every storage ([`InMemoryStorage`], [`JournalStorage`], `PostgresStorage`) enforces
/// the same rules: trials are numbered 0, 1, … per study; an enqueued (`Waiting`)
/// trial is claimed by exactly one worker; finished trials never change; a `Running`
/// trial whose heartbeat is older than the grace period can be failed.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Create a study; [`crate::TuningError::StudyExists`] if the name is taken.
    fn create_study(&self, name: &str, direction: Direction) -> Result<u64>;
    /// The id and direction of the study called `name`, if it exists.
    fn find_study(&self, name: &str) -> Result<Option<(u64, Direction)>>;
    /// Add a `Waiting` trial with fixed parameter values; returns its trial id.
    fn enqueue_trial(&self, study_id: u64, fixed: &BTreeMap<String, ParamValue>) -> Result<u64>;
    /// Claim the oldest `Waiting` trial (atomically, for exactly one caller) or create a
    /// new `Running` one; returns it in state `Running`.
    fn start_trial(&self, study_id: u64) -> Result<FrozenTrial>;
    /// Like [`Storage::start_trial`] while the study holds fewer than `max_trials`
    /// trials in all (any state, enqueued ones included); `None` when it is full and
    /// none is waiting (a waiting trial is already counted, so it is still claimed).
    /// Atomic: workers sharing the storage never create more than `max_trials` together.
    fn start_trial_capped(&self, study_id: u64, max_trials: u64) -> Result<Option<FrozenTrial>>;
    /// Record a suggested parameter of a running trial.
    fn set_param(&self, trial_id: u64, name: &str, param: &Param) -> Result<()>;
    /// Record the sampler's joint proposal of a running trial (for the constant liar).
    fn set_pending_params(&self, trial_id: u64, params: &BTreeMap<String, f64>) -> Result<()>;
    /// Record an intermediate value of a running trial.
    fn set_intermediate(&self, trial_id: u64, step: u64, value: f64) -> Result<()>;
    /// Record a user attribute of a running trial.
    fn set_user_attr(&self, trial_id: u64, key: &str, value: serde_json::Value) -> Result<()>;
    /// Move a running trial to a finished state; [`crate::TuningError::TrialFinished`] if it
    /// already finished (e.g. failed by another worker's stale-heartbeat sweep).
    fn finish_trial(
        &self,
        trial_id: u64,
        state: TrialState,
        value: Option<f64>,
        fail_reason: Option<&str>,
    ) -> Result<()>;
    /// All trials of a study, ordered by number.
    fn trials(&self, study_id: u64) -> Result<TrialList>;
    /// One trial by id; [`crate::TuningError::UnknownTrial`] if there is none.
    fn trial(&self, trial_id: u64) -> Result<Arc<FrozenTrial>>;
    /// Whether `trial` (as returned by [`Storage::trial`]) belongs to study `study_id`.
    /// The default looks it up in [`Storage::trials`]; storages that can answer with
    /// less work override it.
    fn trial_in_study(&self, study_id: u64, trial: &FrozenTrial) -> Result<bool> {
        Ok(self
            .trials(study_id)?
            .get(trial.number as usize)
            .is_some_and(|t| t.trial_id == trial.trial_id))
    }
    /// Refresh the heartbeat of a running trial.
    fn heartbeat(&self, trial_id: u64) -> Result<()>;
    /// Fail every running trial of the study whose heartbeat is older than `grace`;
    /// returns their ids. Claiming a trial counts as its first heartbeat, so a trial
    /// whose worker died before its first beat is failed `grace` after its claim.
    /// (Unlike Optuna, which leaves such trials `RUNNING` forever; only studies with a
    /// heartbeat call this, so every worker of such a study must send heartbeats.)
    fn fail_stale_trials(&self, study_id: u64, grace: Duration) -> Result<Vec<u64>>;
}
