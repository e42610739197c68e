//! Append-only journal file: one JSON operation per line.
//!
//! Every change is appended and `fsync`ed before it is applied and the call returns,
//! so a process killed at any point loses no finished trial; reopening replays the file.
//! Each operation takes an exclusive file lock and first reads what other processes
//! appended, so several processes on one machine can share a journal. A torn last line
//! (a writer killed mid-write) is cut off on the next write.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fs4::FileExt;

use super::memory::{Applied, MemState, Op, stale_reason};
use super::{Storage, TrialList};
use crate::Direction;
use crate::distributions::ParamValue;
use crate::error::{Result, TuningError};
use crate::serde_f64::JsonF64;
use crate::trial::{FrozenTrial, Param, TrialState, now_unix};

#[derive(Debug)]
struct Inner {
    file: File,
    /// Bytes of the file already applied to `state`.
    offset: u64,
    /// Lines applied so far (for error messages).
    lines: usize,
    state: MemState,
}

/// A study storage in an append-only file: one JSON operation per line.
///
/// Every change is appended and `fsync`ed before it is applied and the call returns,
/// so a process killed at any point loses no finished trial; reopening replays the file.
/// Each operation takes an exclusive file lock and first reads what other processes
/// appended, so several processes on one machine can share a journal. A torn last line
/// (a writer killed mid-write) is cut off on the next write.
#[derive(Debug)]
pub struct JournalStorage {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl JournalStorage {
    /// Open (or create) the journal at `path` and replay it.
    ///
    /// Errors: the file cannot be opened or read ([`TuningError::Io`]); a line other than the
    /// last does not parse ([`TuningError::CorruptJournal`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|source| TuningError::Io {
                path: path.clone(),
                source,
            })?;
        let storage = JournalStorage {
            path,
            inner: Mutex::new(Inner {
                file,
                offset: 0,
                lines: 0,
                state: MemState::default(),
            }),
        };
        storage.with_lock(false, |_| Ok(()))?;
        Ok(storage)
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn io(&self, source: std::io::Error) -> TuningError {
        TuningError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Take the file lock (exclusive when writing), catch up with the file, run `f`.
    fn with_lock<T>(&self, write: bool, f: impl FnOnce(&mut Inner) -> Result<T>) -> Result<T> {
        let mut inner = self.inner();
        let lock = if write {
            <File as FileExt>::lock(&inner.file)
        } else {
            <File as FileExt>::lock_shared(&inner.file)
        };
        lock.map_err(|e| self.io(e))?;
        let result = self
            .catch_up(&mut inner, write)
            .and_then(|()| f(&mut inner));
        let unlock = <File as FileExt>::unlock(&inner.file).map_err(|e| self.io(e));
        let value = result?;
        unlock?;
        Ok(value)
    }

    /// Apply lines appended since the last read. A final line without a newline is a
    /// torn write from a killed process: ignored, and cut off when we hold the write lock.
    fn catch_up(&self, inner: &mut Inner, may_truncate: bool) -> Result<()> {
        let len = inner.file.metadata().map_err(|e| self.io(e))?.len();
        if len == inner.offset {
            return Ok(());
        }
        if len < inner.offset {
            // Cut under us: what we applied is no longer in the file.
            return Err(TuningError::CorruptJournal {
                path: self.path.clone(),
                offset: len,
                line: inner.lines,
                reason: format!(
                    "the file shrank to {len} bytes below the {} already read",
                    inner.offset
                ),
            });
        }
        let mut buf = Vec::with_capacity((len - inner.offset) as usize);
        inner
            .file
            .seek(SeekFrom::Start(inner.offset))
            .map_err(|e| self.io(e))?;
        (&inner.file)
            .take(len - inner.offset)
            .read_to_end(&mut buf)
            .map_err(|e| self.io(e))?;
        let mut consumed = 0usize;
        while let Some(nl) = buf[consumed..].iter().position(|&b| b == b'\n') {
            let line = &buf[consumed..consumed + nl];
            if !line.is_empty() {
                let op: Op =
                    serde_json::from_slice(line).map_err(|e| TuningError::CorruptJournal {
                        path: self.path.clone(),
                        offset: inner.offset + consumed as u64,
                        line: inner.lines + 1,
                        reason: e.to_string(),
                    })?;
                // A record is written before it is applied, so a record the state
                // rejected (e.g. finishing a finished trial) is in the file; every
                // replay rejects it alike, from the same state, and skips it.
                let _rejected = inner.state.apply(op);
            }
            inner.lines += 1;
            consumed += nl + 1;
        }
        inner.offset += consumed as u64;
        if consumed < buf.len() && may_truncate {
            inner.file.set_len(inner.offset).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// Append `op` to the file and `fsync` it, then apply it. A failed write is cut
    /// off again and changes nothing; a record the state rejects stays in the file
    /// and is rejected by every replay alike.
    fn write(&self, op: Op) -> Result<Applied> {
        self.with_lock(true, |inner| {
            let mut line =
                serde_json::to_vec(&op).map_err(|e| TuningError::Export(e.to_string()))?;
            line.push(b'\n');
            let written = inner
                .file
                .write_all(&line)
                .and_then(|()| inner.file.sync_data());
            if let Err(e) = written {
                // Best effort: a torn record is also cut by the next writer.
                let _ = inner.file.set_len(inner.offset);
                return Err(self.io(e));
            }
            inner.offset += line.len() as u64;
            inner.lines += 1;
            inner.state.apply(op)
        })
    }

    fn read<T>(&self, f: impl FnOnce(&mut MemState) -> Result<T>) -> Result<T> {
        self.with_lock(false, |inner| f(&mut inner.state))
    }
}

impl Storage for JournalStorage {
    fn create_study(&self, name: &str, direction: Direction) -> Result<u64> {
        match self.write(Op::CreateStudy {
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
        self.read(|s| Ok(s.find_study(name)))
    }

    fn enqueue_trial(&self, study_id: u64, fixed: &BTreeMap<String, ParamValue>) -> Result<u64> {
        match self.write(Op::Enqueue {
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
        match self.write(Op::Start {
            study_id,
            time: now_unix(),
            max_trials: None,
        })? {
            Applied::Trial(id) => self.read(|s| Ok((*s.trial(id)?).clone())),
            other => Err(TuningError::CorruptStorage(format!("start gave {other:?}"))),
        }
    }

    /// A start on a full study leaves a record that replays as the same no-op.
    fn start_trial_capped(&self, study_id: u64, max_trials: u64) -> Result<Option<FrozenTrial>> {
        match self.write(Op::Start {
            study_id,
            time: now_unix(),
            max_trials: Some(max_trials),
        })? {
            Applied::Trial(id) => self.read(|s| Ok(Some((*s.trial(id)?).clone()))),
            Applied::Nothing => Ok(None),
            other => Err(TuningError::CorruptStorage(format!("start gave {other:?}"))),
        }
    }

    fn set_param(&self, trial_id: u64, name: &str, param: &Param) -> Result<()> {
        self.write(Op::SetParam {
            trial_id,
            name: name.to_owned(),
            param: param.clone(),
        })
        .map(drop)
    }

    fn set_pending_params(&self, trial_id: u64, params: &BTreeMap<String, f64>) -> Result<()> {
        self.write(Op::SetPending {
            trial_id,
            params: params.clone(),
        })
        .map(drop)
    }

    fn set_intermediate(&self, trial_id: u64, step: u64, value: f64) -> Result<()> {
        self.write(Op::Report {
            trial_id,
            step,
            value: JsonF64(value),
        })
        .map(drop)
    }

    fn set_user_attr(&self, trial_id: u64, key: &str, value: serde_json::Value) -> Result<()> {
        self.write(Op::UserAttr {
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
        self.write(Op::Finish {
            trial_id,
            state,
            value: value.map(JsonF64),
            reason: fail_reason.map(str::to_owned),
            time: now_unix(),
        })
        .map(drop)
    }

    fn trials(&self, study_id: u64) -> Result<TrialList> {
        self.read(|s| s.trials(study_id))
    }

    fn trial(&self, trial_id: u64) -> Result<Arc<FrozenTrial>> {
        self.read(|s| s.trial(trial_id))
    }

    fn heartbeat(&self, trial_id: u64) -> Result<()> {
        self.write(Op::Heartbeat {
            trial_id,
            time: now_unix(),
        })
        .map(drop)
    }

    fn fail_stale_trials(&self, study_id: u64, grace: Duration) -> Result<Vec<u64>> {
        let stale = self.read(|s| Ok(s.stale_trials(study_id, grace, now_unix())))?;
        let mut failed = Vec::new();
        for id in stale {
            // Another process may have finished it meanwhile: that is fine.
            match self.finish_trial(id, TrialState::Fail, None, Some(&stale_reason(grace))) {
                Ok(()) => failed.push(id),
                Err(TuningError::TrialFinished { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_start_replays_the_same_and_old_records_still_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        {
            let j = JournalStorage::open(&path).unwrap();
            let s = j.create_study("s", Direction::Minimize).unwrap();
            assert_eq!(j.start_trial_capped(s, 1).unwrap().unwrap().number, 0);
            assert!(j.start_trial_capped(s, 1).unwrap().is_none());
        }
        // A start record written before the cap existed.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"op\":\"start\",\"study_id\":0,\"time\":1.0}\n")
            .unwrap();
        drop(f);
        let j = JournalStorage::open(&path).unwrap();
        let numbers: Vec<u64> = j.trials(0).unwrap().iter().map(|t| t.number).collect();
        assert_eq!(numbers, [0, 1]);
        assert!(j.start_trial_capped(0, 2).unwrap().is_none());
        assert_eq!(j.start_trial_capped(0, 3).unwrap().unwrap().number, 2);
    }

    #[test]
    fn replays_and_cuts_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        {
            let j = JournalStorage::open(&path).unwrap();
            let s = j.create_study("s", Direction::Minimize).unwrap();
            let t = j.start_trial(s).unwrap();
            j.finish_trial(t.trial_id, TrialState::Complete, Some(1.5), None)
                .unwrap();
        }
        // A writer killed mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"op\":\"start\",\"stu").unwrap();
        drop(f);
        let j = JournalStorage::open(&path).unwrap();
        let (s, _) = j.find_study("s").unwrap().unwrap();
        let trials = j.trials(s).unwrap();
        assert_eq!(trials.len(), 1);
        assert_eq!(trials[0].value, Some(1.5));
        let t = j.start_trial(s).unwrap();
        assert_eq!(t.number, 1);
        let j2 = JournalStorage::open(&path).unwrap();
        assert_eq!(j2.trials(s).unwrap().len(), 2);
        // Finished trials are immutable, also through the journal.
        assert!(matches!(
            j2.finish_trial(trials[0].trial_id, TrialState::Fail, None, None),
            Err(TuningError::TrialFinished { .. })
        ));
    }
}
