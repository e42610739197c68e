//! In-process storage, and the state machine the journal replays.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Storage, TrialList};
use crate::Direction;
use crate::distributions::ParamValue;
use crate::error::{Result, TuningError};
use crate::serde_f64::JsonF64;
use crate::trial::{FrozenTrial, Param, TrialState, now_unix};

/// One state change. The in-memory storage applies it; the journal also writes it down,
/// and replaying the journal's operations rebuilds the same state.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    CreateStudy {
        name: String,
        direction: Direction,
    },
    Enqueue {
        study_id: u64,
        fixed: BTreeMap<String, ParamValue>,
    },
    Start {
        study_id: u64,
        time: f64,
        /// Start nothing when the study already holds this many trials and none is
        /// waiting (absent in journals written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_trials: Option<u64>,
    },
    SetParam {
        trial_id: u64,
        name: String,
        param: Param,
    },
    SetPending {
        trial_id: u64,
        params: BTreeMap<String, f64>,
    },
    Report {
        trial_id: u64,
        step: u64,
        value: JsonF64,
    },
    UserAttr {
        trial_id: u64,
        key: String,
        value: serde_json::Value,
    },
    Finish {
        trial_id: u64,
        state: TrialState,
        value: Option<JsonF64>,
        reason: Option<String>,
        time: f64,
    },
    Heartbeat {
        trial_id: u64,
        time: f64,
    },
}

/// What applying an op produced, for the caller.
#[derive(Debug)]
pub(crate) enum Applied {
    Study(u64),
    Trial(u64),
    Nothing,
}

#[derive(Debug, Default)]
struct StudyRec {
    direction: Option<Direction>,
    trial_ids: Vec<u64>,
    /// Ids of waiting trials, oldest first.
    waiting: std::collections::VecDeque<u64>,
    /// Cached snapshot, invalidated by any change to the study's trials.
    snapshot: Option<TrialList>,
}

/// The whole state, kept in memory.
#[derive(Debug, Default)]
pub(crate) struct MemState {
    studies: Vec<StudyRec>,
    by_name: HashMap<String, u64>,
    trials: Vec<Arc<FrozenTrial>>,
    study_of_trial: Vec<u64>,
    heartbeats: HashMap<u64, f64>,
}

impl MemState {
    fn running_mut(&mut self, trial_id: u64) -> Result<&mut FrozenTrial> {
        let t = self
            .trials
            .get_mut(trial_id as usize)
            .ok_or(TuningError::UnknownTrial(trial_id))?;
        if t.state != TrialState::Running {
            return Err(TuningError::TrialFinished {
                trial_id,
                state: t.state,
            });
        }
        let study = self.study_of_trial[trial_id as usize] as usize;
        self.studies[study].snapshot = None;
        Ok(Arc::make_mut(t))
    }

    fn study(&self, study_id: u64) -> Result<&StudyRec> {
        self.studies
            .get(study_id as usize)
            .ok_or_else(|| TuningError::StudyNotFound(format!("#{study_id}")))
    }

    /// Check the op against the current state, then apply it; nothing changes on error.
    pub(crate) fn apply(&mut self, op: Op) -> Result<Applied> {
        match op {
            Op::CreateStudy { name, direction } => {
                if self.by_name.contains_key(&name) {
                    return Err(TuningError::StudyExists(name));
                }
                let id = self.studies.len() as u64;
                self.by_name.insert(name, id);
                self.studies.push(StudyRec {
                    direction: Some(direction),
                    ..StudyRec::default()
                });
                Ok(Applied::Study(id))
            }
            Op::Enqueue { study_id, fixed } => {
                self.study(study_id)?;
                let id = self.new_trial(study_id, TrialState::Waiting);
                let t = Arc::make_mut(&mut self.trials[id as usize]);
                t.fixed_params = fixed;
                self.studies[study_id as usize].waiting.push_back(id);
                Ok(Applied::Trial(id))
            }
            Op::Start {
                study_id,
                time,
                max_trials,
            } => {
                self.study(study_id)?;
                let study = &mut self.studies[study_id as usize];
                let full = max_trials.is_some_and(|m| study.trial_ids.len() as u64 >= m);
                let id = match study.waiting.pop_front() {
                    Some(id) => id,
                    None if full => return Ok(Applied::Nothing),
                    None => self.new_trial(study_id, TrialState::Running),
                };
                self.studies[study_id as usize].snapshot = None;
                let t = Arc::make_mut(&mut self.trials[id as usize]);
                t.state = TrialState::Running;
                t.datetime_start = Some(time);
                Ok(Applied::Trial(id))
            }
            Op::SetParam {
                trial_id,
                name,
                param,
            } => {
                self.running_mut(trial_id)?.params.insert(name, param);
                Ok(Applied::Nothing)
            }
            Op::SetPending { trial_id, params } => {
                self.running_mut(trial_id)?.pending_params = params;
                Ok(Applied::Nothing)
            }
            Op::Report {
                trial_id,
                step,
                value,
            } => {
                self.running_mut(trial_id)?
                    .intermediate_values
                    .insert(step, value.0);
                Ok(Applied::Nothing)
            }
            Op::UserAttr {
                trial_id,
                key,
                value,
            } => {
                self.running_mut(trial_id)?.user_attrs.insert(key, value);
                Ok(Applied::Nothing)
            }
            Op::Finish {
                trial_id,
                state,
                value,
                reason,
                time,
            } => {
                if !state.is_finished() {
                    return Err(TuningError::InvalidSetting {
                        name: "state",
                        reason: format!("{state:?} is not a finished state"),
                    });
                }
                let t = self.running_mut(trial_id)?;
                t.state = state;
                t.value = value.map(|v| v.0);
                t.fail_reason = reason;
                t.datetime_complete = Some(time);
                self.heartbeats.remove(&trial_id);
                Ok(Applied::Nothing)
            }
            Op::Heartbeat { trial_id, time } => {
                self.running_mut(trial_id)?;
                self.heartbeats.insert(trial_id, time);
                Ok(Applied::Nothing)
            }
        }
    }

    fn new_trial(&mut self, study_id: u64, state: TrialState) -> u64 {
        let id = self.trials.len() as u64;
        let study = &mut self.studies[study_id as usize];
        let number = study.trial_ids.len() as u64;
        study.trial_ids.push(id);
        study.snapshot = None;
        self.trials
            .push(Arc::new(FrozenTrial::new(id, number, state)));
        self.study_of_trial.push(study_id);
        id
    }

    pub(crate) fn find_study(&self, name: &str) -> Option<(u64, Direction)> {
        let id = *self.by_name.get(name)?;
        let dir = self.studies[id as usize].direction?;
        Some((id, dir))
    }

    pub(crate) fn trials(&mut self, study_id: u64) -> Result<TrialList> {
        self.study(study_id)?;
        let study = &mut self.studies[study_id as usize];
        if let Some(s) = &study.snapshot {
            return Ok(s.clone());
        }
        let list: TrialList = study
            .trial_ids
            .iter()
            .map(|&id| self.trials[id as usize].clone())
            .collect();
        study.snapshot = Some(list.clone());
        Ok(list)
    }

    pub(crate) fn trial(&self, trial_id: u64) -> Result<Arc<FrozenTrial>> {
        self.trials
            .get(trial_id as usize)
            .cloned()
            .ok_or(TuningError::UnknownTrial(trial_id))
    }

    /// Running trials of a study whose heartbeat is older than `grace` at time `now`.
    /// A trial that never sent a heartbeat counts from its claim time (`datetime_start`):
    /// a worker that died between claiming and its first beat is reaped too.
    pub(crate) fn stale_trials(&self, study_id: u64, grace: Duration, now: f64) -> Vec<u64> {
        let Some(study) = self.studies.get(study_id as usize) else {
            return Vec::new();
        };
        study
            .trial_ids
            .iter()
            .copied()
            .filter(|id| {
                let t = &self.trials[*id as usize];
                let last_sign = self.heartbeats.get(id).copied().or(t.datetime_start);
                t.state == TrialState::Running
                    && last_sign.is_some_and(|hb| now - hb > grace.as_secs_f64())
            })
            .collect()
    }
}

pub(crate) fn stale_reason(grace: Duration) -> String {
    format!(
        "worker stopped sending heartbeats (none for more than {:.1} s)",
        grace.as_secs_f64()
    )
}

/// Storage in this process's memory: the default. Fast, shared by threads, gone at exit.
#[derive(Debug, Default)]
pub struct InMemoryStorage {
    state: Mutex<MemState>,
}

impl InMemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic while holding the lock cannot leave MemState half-changed (apply
        // checks before it mutates), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, op: Op) -> Result<Applied> {
        self.lock().apply(op)
    }
}

impl Storage for InMemoryStorage {
    fn create_study(&self, name: &str, direction: Direction) -> Result<u64> {
        match self.apply(Op::CreateStudy {
            name: name.to_owned(),
            direction,
        })? {
            Applied::Study(id) => Ok(id),
            other => Err(TuningError::CorruptStorage(format!(
                "create_study gave {other:?}"
            ))),
        }
    }

    fn find_study(&self, name: &str) -> Result<Option<(u64, Direction)>> {
        Ok(self.lock().find_study(name))
    }

    fn enqueue_trial(&self, study_id: u64, fixed: &BTreeMap<String, ParamValue>) -> Result<u64> {
        match self.apply(Op::Enqueue {
            study_id,
            fixed: fixed.clone(),
        })? {
            Applied::Trial(id) => Ok(id),
            other => Err(TuningError::CorruptStorage(format!(
                "enqueue gave {other:?}"
            ))),
        }
    }

    fn start_trial(&self, study_id: u64) -> Result<FrozenTrial> {
        let mut state = self.lock();
        match state.apply(Op::Start {
            study_id,
            time: now_unix(),
            max_trials: None,
        })? {
            Applied::Trial(id) => Ok((*state.trial(id)?).clone()),
            other => Err(TuningError::CorruptStorage(format!("start gave {other:?}"))),
        }
    }

    fn start_trial_capped(&self, study_id: u64, max_trials: u64) -> Result<Option<FrozenTrial>> {
        let mut state = self.lock();
        match state.apply(Op::Start {
            study_id,
            time: now_unix(),
            max_trials: Some(max_trials),
        })? {
            Applied::Trial(id) => Ok(Some((*state.trial(id)?).clone())),
            Applied::Nothing => Ok(None),
            other => Err(TuningError::CorruptStorage(format!("start gave {other:?}"))),
        }
    }

    fn set_param(&self, trial_id: u64, name: &str, param: &Param) -> Result<()> {
        self.apply(Op::SetParam {
            trial_id,
            name: name.to_owned(),
            param: param.clone(),
        })
        .map(drop)
    }

    fn set_pending_params(&self, trial_id: u64, params: &BTreeMap<String, f64>) -> Result<()> {
        self.apply(Op::SetPending {
            trial_id,
            params: params.clone(),
        })
        .map(drop)
    }

    fn set_intermediate(&self, trial_id: u64, step: u64, value: f64) -> Result<()> {
        self.apply(Op::Report {
            trial_id,
            step,
            value: JsonF64(value),
        })
        .map(drop)
    }

    fn set_user_attr(&self, trial_id: u64, key: &str, value: serde_json::Value) -> Result<()> {
        self.apply(Op::UserAttr {
            trial_id,
            key: key.to_owned(),
            value,
        })
        .map(drop)
    }

    fn finish_trial(
        &self,
        trial_id: u64,
        state: TrialState,
        value: Option<f64>,
        fail_reason: Option<&str>,
    ) -> Result<()> {
        self.apply(Op::Finish {
            trial_id,
            state,
            value: value.map(JsonF64),
            reason: fail_reason.map(str::to_owned),
            time: now_unix(),
        })
        .map(drop)
    }

    fn trials(&self, study_id: u64) -> Result<TrialList> {
        self.lock().trials(study_id)
    }

    fn trial(&self, trial_id: u64) -> Result<Arc<FrozenTrial>> {
        self.lock().trial(trial_id)
    }

    fn heartbeat(&self, trial_id: u64) -> Result<()> {
        self.apply(Op::Heartbeat {
            trial_id,
            time: now_unix(),
        })
        .map(drop)
    }

    fn fail_stale_trials(&self, study_id: u64, grace: Duration) -> Result<Vec<u64>> {
        let mut state = self.lock();
        let now = now_unix();
        let stale = state.stale_trials(study_id, grace, now);
        for &id in &stale {
            state.apply(Op::Finish {
                trial_id: id,
                state: TrialState::Fail,
                value: None,
                reason: Some(stale_reason(grace)),
                time: now,
            })?;
        }
        Ok(stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Workers starting capped trials at once create exactly
        /// `max(cap, enqueued)` trials, numbered without gaps, each started once.
        #[test]
        fn capped_starts_from_many_threads_never_pass_the_cap(
            workers in 1usize..5,
            cap in 0u64..12,
            enqueued in 0u64..4,
        ) {
            let storage = InMemoryStorage::new();
            let sid = storage.create_study("s", Direction::Minimize).unwrap();
            for _ in 0..enqueued {
                storage.enqueue_trial(sid, &BTreeMap::new()).unwrap();
            }
            let started: Vec<u64> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        s.spawn(|| {
                            let mut mine = Vec::new();
                            while let Some(t) = storage.start_trial_capped(sid, cap).unwrap() {
                                mine.push(t.number);
                            }
                            mine
                        })
                    })
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
            });
            let mut numbers = started.clone();
            numbers.sort_unstable();
            let expected: Vec<u64> = (0..cap.max(enqueued)).collect();
            proptest::prop_assert_eq!(numbers, expected);
            proptest::prop_assert_eq!(storage.trials(sid).unwrap().len() as u64, cap.max(enqueued));
        }
    }

    #[test]
    fn a_claimed_trial_without_heartbeat_is_stale_after_the_grace_period() {
        let storage = InMemoryStorage::new();
        let sid = storage.create_study("s", Direction::Minimize).unwrap();
        let silent = storage.start_trial(sid).unwrap();
        let beating = storage.start_trial(sid).unwrap();
        let start = silent.datetime_start.unwrap();
        let mut state = storage.lock();
        state
            .apply(Op::Heartbeat {
                trial_id: beating.trial_id,
                time: start + 10.0,
            })
            .unwrap();
        let grace = Duration::from_secs(5);
        // Within the grace period of its claim: left alone.
        assert!(state.stale_trials(sid, grace, start + 4.0).is_empty());
        // After it: the silent one is stale, the beating one is not.
        assert_eq!(
            state.stale_trials(sid, grace, start + 6.0),
            vec![silent.trial_id]
        );
    }
}
