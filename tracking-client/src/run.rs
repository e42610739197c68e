//! [`ActiveRun`]: a run being logged to, with batched delivery.
//!
//! A log call appends its values to the run's write-ahead spool (see
//! `spool.rs`) and to an in-memory buffer, then returns. A background thread
//! sends the buffer when it holds `max_items` values, when its oldest value is
//! `max_age` old, on [`ActiveRun::flush`] and at the end of the run, split to
//! the server's per-request limits, and acks what landed in the spool. When
//! the server cannot be reached it retries with backoff; what a process did
//! not deliver before it ended (or died) is delivered by the next
//! [`crate::Tracker::replay_spools`]. A run dropped without
//! [`ActiveRun::finish`] ends as `FAILED`; a run whose process was killed is
//! ended `FAILED` by that replay.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Tracker;
use crate::artifacts;
use crate::config::BatchConfig;
use crate::error::{Result, TrackingError};
use crate::model::{MLMODEL_FILE, MlModel};
use crate::rest::{join_uri, split_batch};
use crate::spool::{RunWal, SpoolOp};
use crate::store::TrackingStore;
use crate::types::{Metric, Param, Run, RunStatus, Tag, now_millis};
use crate::validate;

/// An operation waiting for delivery, with the spool sequence numbers of the
/// log calls whose values it carries.
#[derive(Debug, Clone)]
struct Pending {
    op: SpoolOp,
    seqs: Vec<u64>,
}

#[derive(Debug)]
struct Buffer {
    /// The values buffered, each with the spool sequence number of its log call.
    metrics: Vec<Metric>,
    metric_seqs: Vec<u64>,
    params: Vec<Param>,
    param_seqs: Vec<u64>,
    tags: Vec<Tag>,
    tag_seqs: Vec<u64>,
    oldest: Option<Instant>,
    /// Operations taken from the buffer and not yet delivered, in order.
    pending: VecDeque<Pending>,
    /// Per logged operation not yet acked: how many pending operations still
    /// carry a part of it (a large log call can span several batches).
    outstanding: HashMap<u64, usize>,
    /// The run's spool; `None` once everything landed and it was removed.
    wal: Option<RunWal>,
    /// Bumped by every flush request; `done_generation` follows it.
    requested_generation: u64,
    done_generation: u64,
    /// The last delivery failure, if the last attempt failed.
    last_error: Option<TrackingError>,
    /// Values the server refused outright (never retried).
    rejected: Vec<String>,
    retry_attempt: u32,
    retry_at: Option<Instant>,
    shutdown: bool,
    /// Set when the flusher thread panicked: its message.
    flusher_died: Option<String>,
    /// Params logged through this handle, to refuse a changed value at the call.
    params_seen: HashMap<String, String>,
}

impl Buffer {
    fn new(wal: RunWal) -> Self {
        Buffer {
            metrics: Vec::new(),
            metric_seqs: Vec::new(),
            params: Vec::new(),
            param_seqs: Vec::new(),
            tags: Vec::new(),
            tag_seqs: Vec::new(),
            oldest: None,
            pending: VecDeque::new(),
            outstanding: HashMap::new(),
            wal: Some(wal),
            requested_generation: 0,
            done_generation: 0,
            last_error: None,
            rejected: Vec::new(),
            retry_attempt: 0,
            retry_at: None,
            shutdown: false,
            flusher_died: None,
            params_seen: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }

    /// Writes one log call's values to the spool, then buffers them.
    fn log(&mut self, metrics: Vec<Metric>, params: Vec<Param>, tags: Vec<Tag>) -> Result<()> {
        let seq = self.spool(&SpoolOp::Batch {
            metrics: metrics.clone(),
            params: params.clone(),
            tags: tags.clone(),
        })?;
        self.metric_seqs
            .extend(std::iter::repeat_n(seq, metrics.len()));
        self.param_seqs
            .extend(std::iter::repeat_n(seq, params.len()));
        self.tag_seqs.extend(std::iter::repeat_n(seq, tags.len()));
        self.metrics.extend(metrics);
        self.params.extend(params);
        self.tags.extend(tags);
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        Ok(())
    }

    /// Appends an operation to the spool; its sequence number.
    fn spool(&mut self, op: &SpoolOp) -> Result<u64> {
        match self.wal.as_mut() {
            Some(wal) => wal.log(op),
            None => Err(TrackingError::invalid(
                "log call",
                "after the end",
                "the run has ended and its spool is closed",
            )),
        }
    }

    /// Queues an operation already in the spool as `seq`.
    fn queue(&mut self, op: SpoolOp, seq: Option<u64>) {
        let seqs: Vec<u64> = seq.into_iter().collect();
        for s in &seqs {
            *self.outstanding.entry(*s).or_default() += 1;
        }
        self.pending.push_back(Pending { op, seqs });
    }

    /// Moves the buffer into `pending` as server-sized batches.
    fn drain_into_pending(&mut self) {
        if self.len() == 0 {
            return;
        }
        let metrics = std::mem::take(&mut self.metrics);
        let params = std::mem::take(&mut self.params);
        let tags = std::mem::take(&mut self.tags);
        let metric_seqs = std::mem::take(&mut self.metric_seqs);
        let param_seqs = std::mem::take(&mut self.param_seqs);
        let tag_seqs = std::mem::take(&mut self.tag_seqs);
        let (mut mi, mut pi, mut ti) = (0, 0, 0);
        for (m, p, t) in split_batch(&metrics, &params, &tags) {
            let mut seqs: Vec<u64> = metric_seqs[mi..mi + m.len()]
                .iter()
                .chain(&param_seqs[pi..pi + p.len()])
                .chain(&tag_seqs[ti..ti + t.len()])
                .copied()
                .collect();
            (mi, pi, ti) = (mi + m.len(), pi + p.len(), ti + t.len());
            seqs.sort_unstable();
            seqs.dedup();
            for s in &seqs {
                *self.outstanding.entry(*s).or_default() += 1;
            }
            self.pending.push_back(Pending {
                op: SpoolOp::Batch {
                    metrics: m.to_vec(),
                    params: p.to_vec(),
                    tags: t.to_vec(),
                },
                seqs,
            });
        }
        self.oldest = None;
    }

    /// One pending operation is done (delivered or refused for good): acks
    /// the log calls it completes.
    fn settle(&mut self, done: &Pending) {
        let mut complete = Vec::new();
        for s in &done.seqs {
            if let Some(n) = self.outstanding.get_mut(s) {
                *n -= 1;
                if *n == 0 {
                    self.outstanding.remove(s);
                    complete.push(*s);
                }
            }
        }
        if let Some(wal) = self.wal.as_mut() {
            // A lost ack only means the value is re-sent by a replay, which
            // the server takes as a no-op: not worth failing a log call over.
            let _ = wal.ack(&complete);
        }
    }

    /// Fsyncs the spool when its interval is up.
    fn sync_spool(&mut self) {
        if let Some(wal) = self.wal.as_mut() {
            // A failed fsync is retried at the next one; the data is already
            // in the page cache, so only a power loss could take it.
            let _ = wal.sync_if_due();
        }
    }

    /// When the spool's next fsync is due.
    fn sync_due_in(&self) -> Option<Duration> {
        self.wal.as_ref().and_then(RunWal::sync_due_in)
    }

    /// Everything logged has landed: the spool goes once the run has ended,
    /// and is kept small while it runs.
    fn tidy_spool(&mut self) {
        if !self.pending.is_empty() || self.len() > 0 {
            return;
        }
        if self.shutdown {
            if let Some(wal) = self.wal.take() {
                let _ = wal.remove();
            }
        } else if let Some(wal) = self.wal.as_mut() {
            let _ = wal.compact_if_large();
        }
    }
}

struct Shared {
    run_id: String,
    store: Arc<dyn TrackingStore>,
    batch: BatchConfig,
    /// The spool file (for error messages; the handle lives in the buffer).
    spool_path: PathBuf,
    state: Mutex<Buffer>,
    /// Wakes the flusher (new data, flush request, shutdown).
    wake: Condvar,
    /// Wakes callers waiting for a flush to complete.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding the lock cannot leave the buffer half-written
        // (every mutation is a push or a swap), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A run being logged to. Cheap to log through: values are buffered and sent
/// in batches by a background thread.
pub struct ActiveRun {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    run: Run,
    tracker: Tracker,
    finished: bool,
}

impl fmt::Debug for ActiveRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveRun")
            .field("run_id", &self.shared.run_id)
            .field("store", &self.shared.store.uri())
            .field("finished", &self.finished)
            .finish()
    }
}

impl ActiveRun {
    pub(crate) fn start(tracker: Tracker, run: Run, batch: BatchConfig, wal: RunWal) -> Self {
        let shared = Arc::new(Shared {
            run_id: run.info.run_id.clone(),
            store: tracker.store_arc(),
            batch,
            spool_path: wal.path().to_path_buf(),
            state: Mutex::new(Buffer::new(wal)),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name(format!(
                "vigil-run-{}",
                &run.info.run_id[..run.info.run_id.len().min(8)]
            ))
            .spawn(move || run_flusher(&worker))
            .ok();
        // Without a thread (spawn failed), every log call delivers synchronously.
        ActiveRun {
            shared,
            flusher,
            run,
            tracker,
            finished: false,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    /// The run's experiment.
    pub fn experiment_id(&self) -> &str {
        &self.run.info.experiment_id
    }

    /// The run's artifact root URI.
    pub fn artifact_uri(&self) -> &str {
        &self.run.info.artifact_uri
    }

    /// The run as it was when created.
    pub fn info(&self) -> &Run {
        &self.run
    }

    /// The tracker it was started from.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Spools and buffers one log call's values.
    fn push(&self, metrics: Vec<Metric>, params: Vec<Param>, tags: Vec<Tag>) -> Result<()> {
        let mut st = self.shared.lock();
        st.log(metrics, params, tags)?;
        let full = st.len() >= self.shared.batch.max_items || !self.shared.batch.enabled;
        drop(st);
        if full {
            self.shared.wake.notify_one();
        }
        if self.flusher.is_none() {
            let _ = deliver_now(&self.shared);
        }
        Ok(())
    }

    /// Logs a metric at step 0, timestamped now.
    pub fn log_metric(&self, key: &str, value: f64) -> Result<()> {
        self.log_metric_at(key, value, 0)
    }

    /// Logs a metric at a step, timestamped now.
    pub fn log_metric_at(&self, key: &str, value: f64, step: i64) -> Result<()> {
        self.log_metric_point(Metric {
            key: key.to_string(),
            value,
            timestamp: now_millis(),
            step,
        })
    }

    /// Logs a metric point exactly as given.
    pub fn log_metric_point(&self, metric: Metric) -> Result<()> {
        validate::key("metric key", &metric.key)?;
        self.push(vec![metric], vec![], vec![])
    }

    /// Logs several metrics at one step.
    pub fn log_metrics<'a>(
        &self,
        metrics: impl IntoIterator<Item = (&'a str, f64)>,
        step: i64,
    ) -> Result<()> {
        let now = now_millis();
        let points = metrics
            .into_iter()
            .map(|(k, v)| {
                validate::key("metric key", k)?;
                Ok(Metric {
                    key: k.to_string(),
                    value: v,
                    timestamp: now,
                    step,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.push(points, vec![], vec![])
    }

    /// Logs a parameter. Re-logging the same value is a no-op; a different
    /// value is an error (MLflow params are immutable).
    pub fn log_param(&self, key: &str, value: impl fmt::Display) -> Result<()> {
        let value = value.to_string();
        validate::key("param key", key)?;
        validate::param_value(key, &value)?;
        let mut st = self.shared.lock();
        match st.params_seen.get(key) {
            Some(old) if *old == value => return Ok(()),
            Some(old) => {
                return Err(TrackingError::invalid(
                    "param value",
                    &value,
                    format!(
                        "param {key:?} was already logged as {old:?}; MLflow params cannot change"
                    ),
                ));
            }
            None => {}
        }
        st.params_seen.insert(key.to_string(), value.clone());
        drop(st);
        let param = Param {
            key: key.to_string(),
            value,
        };
        self.push(vec![], vec![param], vec![]).inspect_err(|_| {
            self.shared.lock().params_seen.remove(key);
        })
    }

    /// Logs several parameters.
    pub fn log_params<K: AsRef<str>, V: fmt::Display>(
        &self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        for (k, v) in params {
            self.log_param(k.as_ref(), v)?;
        }
        Ok(())
    }

    /// Sets a tag (later values win).
    pub fn set_tag(&self, key: &str, value: impl Into<String>) -> Result<()> {
        let value = value.into();
        validate::key("tag key", key)?;
        validate::tag_value(key, &value)?;
        self.push(vec![], vec![], vec![Tag::new(key, value)])
    }

    /// Sends everything buffered and waits until it has landed. When the
    /// server is unreachable the values stay spooled and this returns
    /// [`TrackingError::Undelivered`]; they are retried in the background.
    pub fn flush(&self) -> Result<()> {
        if self.flusher.is_none() {
            return deliver_now(&self.shared);
        }
        let mut st = self.shared.lock();
        st.requested_generation += 1;
        let target = st.requested_generation;
        self.shared.wake.notify_one();
        while st.done_generation < target && st.flusher_died.is_none() {
            st = self.shared.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        outcome(&self.shared, &mut st)
    }

    /// Uploads a file into the run's artifacts under `artifact_dir`
    /// (`None` → the root), keeping its file name. If the server is
    /// unreachable the file is copied into the spool and uploaded later.
    pub fn log_artifact(&self, local: &Path, artifact_dir: Option<&str>) -> Result<()> {
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                TrackingError::invalid(
                    "artifact file",
                    &local.display().to_string(),
                    "has no file name",
                )
            })?;
        let rel = join_uri(artifact_dir.unwrap_or("").trim_matches('/'), &name)
            .trim_start_matches('/')
            .to_string();
        self.log_artifact_as(local, &rel)
    }

    /// Uploads a file to exactly `rel_path` in the run's artifacts.
    pub fn log_artifact_as(&self, local: &Path, rel_path: &str) -> Result<()> {
        validate::artifact_path(rel_path)?;
        if !local.is_file() {
            return Err(TrackingError::io(
                local,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a file"),
            ));
        }
        match self
            .shared
            .store
            .upload_artifact(self.artifact_uri(), rel_path, local)
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_transient() => {
                let copy = self.file_slot(rel_path)?;
                std::fs::copy(local, &copy).map_err(|err| TrackingError::io(local, err))?;
                self.queue_op(SpoolOp::Artifact {
                    root: self.artifact_uri().to_string(),
                    rel_path: rel_path.to_string(),
                    local: copy,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Writes bytes as an artifact at `rel_path` (a report, a JSON spec, a PNG).
    pub fn log_artifact_bytes(&self, rel_path: &str, bytes: &[u8]) -> Result<()> {
        validate::artifact_path(rel_path)?;
        match self
            .shared
            .store
            .upload_artifact_bytes(self.artifact_uri(), rel_path, bytes)
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_transient() => {
                let copy = self.file_slot(rel_path)?;
                std::fs::write(&copy, bytes).map_err(|err| TrackingError::io(&copy, err))?;
                self.queue_op(SpoolOp::Artifact {
                    root: self.artifact_uri().to_string(),
                    rel_path: rel_path.to_string(),
                    local: copy,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Uploads every file under `local_dir` to `artifact_dir` (`None` → the root).
    pub fn log_artifacts(&self, local_dir: &Path, artifact_dir: Option<&str>) -> Result<()> {
        let prefix = artifact_dir.unwrap_or("").trim_matches('/');
        for (rel, path) in artifacts::local_files(local_dir)? {
            self.log_artifact_as(&path, join_uri(prefix, &rel).trim_start_matches('/'))?;
        }
        Ok(())
    }

    /// Logs a model: the files of `model_dir` plus an `MLmodel` file (with
    /// this run's id and `artifact_path` filled in) under `artifact_path`.
    /// Returns the model's artifact root, the `source` to register it with.
    pub fn log_model(
        &self,
        artifact_path: &str,
        model_dir: &Path,
        mlmodel: &MlModel,
    ) -> Result<LoggedModel> {
        validate::artifact_path(artifact_path)?;
        if artifact_path.is_empty() {
            return Err(TrackingError::invalid(
                "artifact path",
                artifact_path,
                "a model needs a folder name, e.g. \"model\"",
            ));
        }
        let mut m = mlmodel.clone();
        m.run_id = self.run_id().to_string();
        m.artifact_path = artifact_path.to_string();
        for (rel, path) in artifacts::local_files(model_dir)? {
            if rel == MLMODEL_FILE {
                continue;
            }
            self.log_artifact_as(&path, &format!("{artifact_path}/{rel}"))?;
        }
        self.log_artifact_bytes(
            &format!("{artifact_path}/{MLMODEL_FILE}"),
            m.to_yaml().as_bytes(),
        )?;
        Ok(LoggedModel {
            run_id: self.run_id().to_string(),
            artifact_path: artifact_path.to_string(),
            source: join_uri(self.artifact_uri(), artifact_path),
            mlmodel: m,
        })
    }

    /// A path in the spool's folder for an artifact copy.
    fn file_slot(&self, rel_path: &str) -> Result<PathBuf> {
        match self.shared.lock().wal.as_ref() {
            Some(wal) => wal.file_slot(rel_path),
            None => Err(TrackingError::invalid(
                "artifact",
                rel_path,
                "the run has ended and its spool is closed",
            )),
        }
    }

    /// Spools an operation, then queues it behind everything logged before it.
    fn queue_op(&self, op: SpoolOp) -> Result<()> {
        let mut st = self.shared.lock();
        let seq = st.spool(&op)?;
        st.drain_into_pending();
        st.queue(op, Some(seq));
        drop(st);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Starts a child run (`mlflow.parentRunId` = this run), e.g. one per tuning trial.
    pub fn start_child(&self, name: &str) -> Result<ActiveRun> {
        self.tracker.start_run(
            crate::RunOptions::new(self.experiment_id())
                .name(name)
                .parent(self.run_id()),
        )
    }

    /// Ends the run as `FINISHED`, delivering everything first.
    pub fn finish(self) -> Result<()> {
        self.end(RunStatus::Finished)
    }

    /// Ends the run with a status (`FAILED`, `KILLED`, ...).
    pub fn end(mut self, status: RunStatus) -> Result<()> {
        self.end_inner(status)
    }

    fn end_inner(&mut self, status: RunStatus) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        {
            let mut st = self.shared.lock();
            st.drain_into_pending();
            let end = SpoolOp::Update {
                status,
                end_time: Some(now_millis()),
            };
            // Unspooled (disk full) the end is still sent; only a crash right
            // now would then leave it to a replay to end the run FAILED.
            let seq = st.spool(&end).ok();
            st.queue(end, seq);
            st.shutdown = true;
        }
        self.shared.wake.notify_one();
        match self.flusher.take() {
            Some(handle) => {
                let _ = handle.join();
            }
            None => {
                let _ = deliver_now(&self.shared);
            }
        }
        let mut st = self.shared.lock();
        st.tidy_spool();
        outcome(&self.shared, &mut st)
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if !self.finished {
            // A panic or early return must not leave the run RUNNING.
            let _ = self.end_inner(RunStatus::Failed);
        }
    }
}

/// A model logged into a run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    /// The run.
    pub run_id: String,
    /// Its folder in the run's artifacts.
    pub artifact_path: String,
    /// Its artifact root URI: what a model version's `source` is.
    pub source: String,
    /// The `MLmodel` written.
    pub mlmodel: MlModel,
}

impl LoggedModel {
    /// `runs:/<run_id>/<artifact_path>`.
    pub fn runs_uri(&self) -> String {
        format!("runs:/{}/{}", self.run_id, self.artifact_path)
    }
}

/// The result of the last attempt, as seen by `flush`/`finish`.
fn outcome(shared: &Shared, st: &mut Buffer) -> Result<()> {
    if let Some(reason) = &st.flusher_died {
        return Err(TrackingError::FlusherFailed {
            run_id: shared.run_id.clone(),
            reason: reason.clone(),
            spool: shared.spool_path.clone(),
        });
    }
    if !st.rejected.is_empty() {
        let msg = st.rejected.join("; ");
        st.rejected.clear();
        return Err(TrackingError::InvalidInput {
            what: "logged values",
            value: shared.run_id.clone(),
            reason: format!("the store refused them: {msg}"),
        });
    }
    if st.pending.is_empty() && st.len() == 0 {
        return Ok(());
    }
    Err(TrackingError::Undelivered {
        run_id: shared.run_id.clone(),
        pending: st.pending.iter().map(|p| p.op.size()).sum::<usize>() + st.len(),
        spool: shared.spool_path.clone(),
        cause: st
            .last_error
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "not attempted yet".into()),
    })
}

/// Metric/param batches without tags commute (metric points are a set,
/// params are write-once), so they may be sent concurrently; tags (last write
/// wins), artifacts and status updates go one at a time, in order.
fn parallel_safe(p: &Pending) -> bool {
    matches!(&p.op, SpoolOp::Batch { tags, .. } if tags.is_empty())
}

/// Delivers `pending`, front first. Returns with the lock held again.
fn deliver_pending<'a>(
    shared: &'a Shared,
    mut st: MutexGuard<'a, Buffer>,
) -> MutexGuard<'a, Buffer> {
    while let Some(front) = st.pending.front() {
        let group_len = if parallel_safe(front) {
            st.pending
                .iter()
                .take(shared.batch.max_in_flight.max(1))
                .take_while(|op| parallel_safe(op))
                .count()
        } else {
            1
        };
        let group: Vec<SpoolOp> = st
            .pending
            .iter()
            .take(group_len)
            .map(|p| p.op.clone())
            .collect();
        drop(st);
        let store = shared.store.as_ref();
        let results: Vec<Result<()>> = if group.len() == 1 {
            vec![group[0].deliver(store, &shared.run_id)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|op| scope.spawn(move || op.deliver(store, &shared.run_id)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(TrackingError::Connect {
                                uri: store.uri(),
                                reason: "delivery thread panicked".into(),
                            })
                        })
                    })
                    .collect()
            })
        };
        st = shared.lock();
        // Only the back of `pending` grew meanwhile: the group is still its front.
        let mut transient = None;
        for (i, result) in results.into_iter().enumerate().rev() {
            match result {
                Ok(()) => {
                    if let Some(done) = st.pending.remove(i) {
                        st.settle(&done);
                    }
                }
                Err(e) if e.is_transient() => transient = Some(e),
                Err(e) => {
                    if let Some(done) = st.pending.remove(i) {
                        st.settle(&done);
                    }
                    st.rejected.push(e.to_string());
                }
            }
        }
        match transient {
            None => {
                st.last_error = None;
                st.retry_attempt = 0;
                st.retry_at = None;
            }
            Some(e) => {
                let wait = backoff(&shared.batch, st.retry_attempt);
                st.retry_attempt = st.retry_attempt.saturating_add(1);
                st.retry_at = Some(Instant::now() + wait);
                st.last_error = Some(e);
                return st;
            }
        }
    }
    st.tidy_spool();
    st
}

fn backoff(batch: &BatchConfig, attempt: u32) -> Duration {
    let base = batch.max_age.max(Duration::from_millis(200));
    let secs = base.as_secs_f64() * 2f64.powi(attempt.min(8) as i32);
    crate::config::clamp_secs(secs, Duration::from_secs(30))
}

/// One synchronous delivery round (used when no thread could be spawned).
fn deliver_now(shared: &Shared) -> Result<()> {
    let mut st = shared.lock();
    st.drain_into_pending();
    let mut st = deliver_pending(shared, st);
    outcome(shared, &mut st)
}

/// The flusher thread: `flusher_loop`, and if it panics, the waiting values
/// go to the spool and every waiter is woken to see the error.
fn run_flusher(shared: &Shared) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| flusher_loop(shared)));
    if let Err(panic) = result {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        // Everything it held is in the spool already.
        let mut st = shared.lock();
        st.flusher_died = Some(reason);
        shared.done.notify_all();
    }
}

fn flusher_loop(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        // Wait until something is due.
        loop {
            let now = Instant::now();
            let backing_off = st.retry_at.is_some_and(|t| t > now);
            let flush_requested = st.requested_generation > st.done_generation;
            if st.shutdown {
                break;
            }
            if !backing_off {
                let full =
                    st.len() >= shared.batch.max_items || (!shared.batch.enabled && st.len() > 0);
                let aged = st
                    .oldest
                    .is_some_and(|t| now.duration_since(t) >= shared.batch.max_age);
                if full || aged || flush_requested || !st.pending.is_empty() {
                    break;
                }
            } else if flush_requested {
                // While the server is away a flush reports at once instead of
                // waiting out the backoff (the values are in the spool).
                st.drain_into_pending();
                st.done_generation = st.requested_generation;
                shared.done.notify_all();
                continue;
            }
            st.sync_spool();
            let due = match (st.retry_at, st.oldest) {
                (Some(t), _) if t > now => t - now,
                (_, Some(o)) => (o + shared.batch.max_age).saturating_duration_since(now),
                _ => Duration::from_secs(3600),
            };
            let timeout = st.sync_due_in().map_or(due, |s| s.min(due));
            st = shared
                .wake
                .wait_timeout(st, timeout.max(Duration::from_millis(1)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let generation = st.requested_generation;
        let shutting_down = st.shutdown;
        st.drain_into_pending();
        if shutting_down {
            // Final round: try now, ignoring any backoff.
            st.retry_at = None;
        }
        st = deliver_pending(shared, st);
        st.done_generation = generation;
        shared.done.notify_all();
        if shutting_down {
            if let Some(wal) = st.wal.as_mut() {
                // What is left stays for a replay: make sure it is on disk.
                let _ = wal.sync_now();
            }
            return;
        }
    }
}
