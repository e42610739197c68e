//! The write-ahead spool: every logged value is on disk before the log call
//! returns, and stays there until the server acknowledged it.
//!
//! One append-only JSON-lines file per run, `<spool_dir>/<store-key>/<key>.wal`
//! (artifact copies beside it in `<key>.files/`), with four kinds of record:
//!
//! - `open`: who owns the file (pid, host, start time) and the run's
//!   client-chosen creation key, written and fsynced *before* the run is
//!   created, so even a process killed inside `runs/create` leaves a trace;
//! - `created`: the run id the server gave;
//! - `op` (with a sequence number): a batch of metrics/params/tags, a spooled
//!   artifact, or a status change — appended before the call returns;
//! - `ack`: sequence numbers the server has taken.
//!
//! **Durability.** An appended record is in the kernel's page cache when the
//! call returns, so it survives the process being killed (SIGKILL, OOM, a
//! panic with `abort`). It reaches the disk at the next fsync: on every call
//! with [`crate::SpoolSync::EveryCall`], otherwise at most
//! [`crate::SpoolSync::Every`]'s interval later (200 ms by default; the
//! background thread syncs a dirty file when the interval is up). So a power
//! loss loses at most the last interval's values; a process crash loses none.
//!
//! **Ownership.** The owning process holds an exclusive `flock` on the file
//! for the run's life. The kernel drops it when the process dies, which is how
//! [`replay_all`] tells a live run (skipped) from an orphan: it delivers what
//! the orphan had not delivered, then ends its run `FAILED` with the tag
//! [`FAILURE_REASON_TAG`] saying whose process died. Nothing is guessed from
//! pids, which the OS reuses.
//!
//! **Exactly once.** Re-sending an operation that did land is harmless: the
//! server stores an identical metric point once, accepts a param re-logged
//! with the same value, and overwrites tags, status and artifacts; run
//! creation carries its key ([`crate::store::REQUEST_ID_TAG`]), so a replay
//! finds the run instead of creating another. Delivered operations are acked
//! in the file; a replay re-sends only the unacked ones, so a value is sent
//! twice only when a crash fell between its delivery and its ack.
//!
//! Spool files of older versions (`<run_id>.jsonl`, rewritten whole) are
//! still delivered.
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::SpoolSync;
use crate::error::{Result, TrackingError};
use crate::file_store::sync_dir;
use crate::rest::split_batch;
use crate::store::{REQUEST_ID_TAG, TrackingStore};
use crate::types::{Metric, Param, RunSearch, RunStatus, Tag, ViewType, now_millis};

/// One operation against a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum SpoolOp {
    /// A `log-batch` (within server limits).
    Batch {
        #[serde(default)]
        metrics: Vec<Metric>,
        #[serde(default)]
        params: Vec<Param>,
        #[serde(default)]
        tags: Vec<Tag>,
    },
    /// An artifact file, copied into the spool.
    Artifact {
        /// The artifact root (the run's `artifact_uri`).
        root: String,
        /// Path under the root.
        rel_path: String,
        /// The spooled copy.
        local: PathBuf,
    },
    /// Status and end time.
    Update {
        status: RunStatus,
        end_time: Option<i64>,
    },
}

impl SpoolOp {
    /// How many values it carries (for reports).
    pub(crate) fn size(&self) -> usize {
        match self {
            SpoolOp::Batch {
                metrics,
                params,
                tags,
            } => metrics.len() + params.len() + tags.len(),
            _ => 1,
        }
    }

    /// Sends it. A batch the server rejects as a whole (a changed param) is
    /// re-sent piecewise so the rest of its values still land.
    pub(crate) fn deliver(&self, store: &dyn TrackingStore, run_id: &str) -> Result<()> {
        match self {
            SpoolOp::Batch {
                metrics,
                params,
                tags,
            } => match store.log_batch(run_id, metrics, params, tags) {
                Err(e) if !e.is_transient() && !params.is_empty() => {
                    store.log_batch(run_id, metrics, &[], tags)?;
                    let mut first_error = None;
                    for p in params {
                        if let Err(e) = store.log_batch(run_id, &[], std::slice::from_ref(p), &[]) {
                            if e.is_transient() {
                                return Err(e);
                            }
                            first_error.get_or_insert(e);
                        }
                    }
                    match first_error {
                        Some(err) => Err(err),
                        None => Err(e),
                    }
                }
                other => other,
            },
            SpoolOp::Artifact {
                root,
                rel_path,
                local,
            } => {
                store.upload_artifact(root, rel_path, local)?;
                let _ = fs::remove_file(local);
                Ok(())
            }
            SpoolOp::Update { status, end_time } => store.update_run(run_id, *status, *end_time),
        }
    }
}

/// Tag put on a run that [`replay_all`] ended because its process died.
pub const FAILURE_REASON_TAG: &str = "vigil.failure_reason";

/// The spool format this version writes.
const WAL_FORMAT: u32 = 1;
/// A fully acknowledged spool larger than this is rewritten to its header.
const COMPACT_BYTES: u64 = 4 << 20;

/// Who owns a spool file, recorded in its first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpoolOwner {
    pub(crate) pid: u32,
    pub(crate) host: String,
    pub(crate) started_ms: i64,
    pub(crate) experiment_id: String,
    /// The run's creation key ([`REQUEST_ID_TAG`]).
    pub(crate) request_id: String,
}

impl SpoolOwner {
    /// This process, about to create (or attach to) a run.
    pub(crate) fn this_process(experiment_id: &str, request_id: &str) -> Self {
        SpoolOwner {
            pid: std::process::id(),
            host: host_name(),
            started_ms: now_millis(),
            experiment_id: experiment_id.to_string(),
            request_id: request_id.to_string(),
        }
    }
}

/// The machine's name, for the record (`/proc`, then `$HOSTNAME`).
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// One line of a spool file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum WalRecord {
    Open { format: u32, owner: SpoolOwner },
    Created { run_id: String },
    Op { seq: u64, value: SpoolOp },
    Ack { seqs: Vec<u64> },
}

/// [`WalRecord::Op`] written from a borrowed operation (the same line).
#[derive(Serialize)]
#[serde(tag = "t", rename = "op")]
struct OpLine<'a> {
    seq: u64,
    value: &'a SpoolOp,
}

fn encode(path: &Path, record: &impl Serialize) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(record).map_err(|e| TrackingError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    line.push(b'\n');
    Ok(line)
}

/// The directory for one store's spool files: a readable key from its URI.
pub(crate) fn store_dir(spool_dir: &Path, store_uri: &str) -> PathBuf {
    let key: String = store_uri
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    spool_dir.join(key)
}

/// The open, locked spool file of one live run.
#[derive(Debug)]
pub(crate) struct RunWal {
    path: PathBuf,
    file: File,
    owner: SpoolOwner,
    run_id: Option<String>,
    sync: SpoolSync,
    next_seq: u64,
    /// When the first record not yet fsynced was written.
    dirty_since: Option<Instant>,
    bytes: u64,
}

impl RunWal {
    /// Creates, locks and fsyncs a new spool file for `owner`'s run.
    pub(crate) fn create(dir: &Path, owner: SpoolOwner, sync: SpoolSync) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| TrackingError::io(dir, e))?;
        let path = dir.join(format!("{}.wal", owner.request_id));
        let file = create_locked(&path)?;
        let mut wal = RunWal {
            path,
            file,
            owner: owner.clone(),
            run_id: None,
            sync,
            next_seq: 1,
            dirty_since: None,
            bytes: 0,
        };
        wal.append(&WalRecord::Open {
            format: WAL_FORMAT,
            owner,
        })?;
        wal.sync_now()?;
        sync_dir(dir)?;
        Ok(wal)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records the run id the server gave, durably.
    pub(crate) fn created(&mut self, run_id: &str) -> Result<()> {
        self.append(&WalRecord::Created {
            run_id: run_id.to_string(),
        })?;
        self.run_id = Some(run_id.to_string());
        self.sync_now()
    }

    /// Appends an operation; returns its sequence number.
    pub(crate) fn log(&mut self, op: &SpoolOp) -> Result<u64> {
        let seq = self.next_seq;
        self.append(&OpLine { seq, value: op })?;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Records that the server took these operations.
    pub(crate) fn ack(&mut self, seqs: &[u64]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.append(&WalRecord::Ack {
            seqs: seqs.to_vec(),
        })
    }

    fn append(&mut self, record: &impl Serialize) -> Result<()> {
        let line = encode(&self.path, record)?;
        self.file
            .write_all(&line)
            .map_err(|e| TrackingError::io(&self.path, e))?;
        self.bytes += line.len() as u64;
        self.dirty_since.get_or_insert_with(Instant::now);
        if self.sync == SpoolSync::EveryCall {
            self.sync_now()?;
        } else {
            self.sync_if_due()?;
        }
        Ok(())
    }

    pub(crate) fn sync_now(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| TrackingError::io(&self.path, e))?;
        self.dirty_since = None;
        Ok(())
    }

    /// Fsyncs when the oldest unsynced record is an interval old.
    pub(crate) fn sync_if_due(&mut self) -> Result<()> {
        match self.sync_due_in() {
            Some(d) if d.is_zero() => self.sync_now(),
            _ => Ok(()),
        }
    }

    /// How long until the next fsync is due (`None`: nothing unsynced).
    pub(crate) fn sync_due_in(&self) -> Option<Duration> {
        let since = self.dirty_since?;
        let interval = match self.sync {
            SpoolSync::EveryCall => Duration::ZERO,
            SpoolSync::Every(d) => d,
        };
        Some((since + interval).saturating_duration_since(Instant::now()))
    }

    /// With everything acknowledged: rewrites a large file to its header, so
    /// a long run's spool stays bounded. The new file is locked before it
    /// replaces the old one, so there is no moment without an owner.
    pub(crate) fn compact_if_large(&mut self) -> Result<()> {
        if self.bytes < COMPACT_BYTES {
            return Ok(());
        }
        let tmp = self.path.with_extension("wal.compact");
        let _ = fs::remove_file(&tmp); // left by a crash mid-compaction
        let mut file = create_locked(&tmp)?;
        let mut text = encode(
            &tmp,
            &WalRecord::Open {
                format: WAL_FORMAT,
                owner: self.owner.clone(),
            },
        )?;
        if let Some(run_id) = &self.run_id {
            text.extend(encode(
                &tmp,
                &WalRecord::Created {
                    run_id: run_id.clone(),
                },
            )?);
        }
        file.write_all(&text)
            .and_then(|()| file.sync_data())
            .map_err(|e| TrackingError::io(&tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| TrackingError::io(&self.path, e))?;
        self.file = file;
        self.bytes = text.len() as u64;
        self.dirty_since = None;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// A place for an artifact copy.
    pub(crate) fn file_slot(&self, name_hint: &str) -> Result<PathBuf> {
        file_slot(&self.path, name_hint)
    }

    /// Everything was delivered: the file goes (the lock with it).
    pub(crate) fn remove(self) -> Result<()> {
        remove_spool(&self.path)
    }
}

/// Creates a new file for appending, exclusively locked.
fn create_locked(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| TrackingError::io(path, e))?;
    file.try_lock()
        .map_err(|e| TrackingError::io(path, std::io::Error::other(format!("cannot lock: {e}"))))?;
    Ok(file)
}

/// `name` with everything but ASCII letters, digits and dots replaced by `_`.
pub(crate) fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A fresh path in `<spool>.files/` for an artifact copy.
fn file_slot(spool: &Path, name_hint: &str) -> Result<PathBuf> {
    let dir = spool.with_extension("files");
    fs::create_dir_all(&dir).map_err(|e| TrackingError::io(&dir, e))?;
    let safe = safe_file_name(name_hint);
    Ok(dir.join(format!("{}-{safe}", uuid::Uuid::new_v4().simple())))
}

/// Removes a spool file and its (then empty) artifact folder.
fn remove_spool(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(TrackingError::io(path, e)),
    }
    let files = path.with_extension("files");
    if files.is_dir() {
        let _ = fs::remove_dir(&files);
    }
    if let Some(dir) = path.parent() {
        let _ = sync_dir(dir);
    }
    Ok(())
}

/// A spool file as read back.
#[derive(Debug, Clone, Default)]
struct WalContents {
    owner: Option<SpoolOwner>,
    run_id: Option<String>,
    ops: Vec<(u64, SpoolOp)>,
    acked: HashSet<u64>,
    /// Bytes up to the end of the last whole record.
    good_len: u64,
    /// That record's newline is missing (the write was cut right before it).
    missing_newline: bool,
}

impl WalContents {
    fn unacked(&self) -> Vec<(u64, SpoolOp)> {
        self.ops
            .iter()
            .filter(|(seq, _)| !self.acked.contains(seq))
            .cloned()
            .collect()
    }

    /// Whether the run's end (any status but RUNNING) was logged.
    fn ended(&self) -> bool {
        self.ops.iter().any(|(_, op)| {
            matches!(op, SpoolOp::Update { status, .. }
                if !matches!(status, RunStatus::Running | RunStatus::Scheduled))
        })
    }
}

/// Parses a spool file. A last line without its newline is a write the
/// power cut short (it was never synced, so nothing relied on it) and is
/// ignored; any other unreadable line is [`TrackingError::Corrupt`] naming
/// its byte offset.
fn read_wal(path: &Path) -> Result<WalContents> {
    let bytes = fs::read(path).map_err(|e| TrackingError::io(path, e))?;
    let mut contents = WalContents::default();
    let mut offset = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let start = offset;
        offset += line.len();
        let complete = line.ends_with(b"\n");
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = match serde_json::from_slice::<WalRecord>(text) {
            Ok(r) => {
                contents.good_len = offset as u64;
                contents.missing_newline = !complete;
                r
            }
            Err(_) if !complete => break,
            Err(e) => {
                return Err(TrackingError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("unreadable record at byte offset {start}: {e}"),
                });
            }
        };
        match record {
            WalRecord::Open { owner, .. } => contents.owner = Some(owner),
            WalRecord::Created { run_id } => contents.run_id = Some(run_id),
            WalRecord::Op { seq, value } => contents.ops.push((seq, value)),
            WalRecord::Ack { seqs } => contents.acked.extend(seqs),
        }
    }
    if contents.owner.is_none() {
        return Err(TrackingError::Corrupt {
            path: path.to_path_buf(),
            reason: "no `open` record: not a Vigil spool file".into(),
        });
    }
    Ok(contents)
}

/// What a spool file holds, for inspection ([`crate::read_spool`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpoolContents {
    /// The run, once the server created it.
    pub run_id: Option<String>,
    /// The owning process's id and host.
    pub pid: u32,
    /// The owning process's host name.
    pub host: String,
    /// When the owning process opened the spool (ms since the epoch; 0 if
    /// unrecorded): with the pid, it tells a reused pid from the owner.
    pub started_ms: i64,
    /// Every metric point logged (delivered or not), in order.
    pub metrics: Vec<Metric>,
    /// Every param logged.
    pub params: Vec<Param>,
    /// Every tag set, in order.
    pub tags: Vec<Tag>,
    /// The status the run was ended with, if it was.
    pub end_status: Option<RunStatus>,
    /// Operations not yet acknowledged by the server.
    pub unacknowledged: usize,
}

/// Reads a spool file (`*.wal`) without touching it: what its run logged and
/// what is still undelivered.
pub fn read_spool(path: &Path) -> Result<SpoolContents> {
    let wal = read_wal(path)?;
    let owner = wal.owner.clone().unwrap_or_else(|| SpoolOwner {
        pid: 0,
        host: String::new(),
        started_ms: 0,
        experiment_id: String::new(),
        request_id: String::new(),
    });
    let mut out = SpoolContents {
        run_id: wal.run_id.clone(),
        pid: owner.pid,
        host: owner.host,
        started_ms: owner.started_ms,
        unacknowledged: wal.unacked().len(),
        ..Default::default()
    };
    for (_, op) in &wal.ops {
        match op {
            SpoolOp::Batch {
                metrics,
                params,
                tags,
            } => {
                out.metrics.extend(metrics.iter().cloned());
                out.params.extend(params.iter().cloned());
                out.tags.extend(tags.iter().cloned());
            }
            SpoolOp::Update { status, .. } => out.end_status = Some(*status),
            SpoolOp::Artifact { .. } => {}
        }
    }
    Ok(out)
}

/// What [`crate::Tracker::replay_spools`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolReport {
    /// Runs whose spooled operations were all delivered.
    pub runs_delivered: Vec<String>,
    /// Runs whose process had died without ending them, now `FAILED`: id and
    /// the reason tagged on the run.
    pub runs_failed: Vec<(String, String)>,
    /// Operations delivered.
    pub operations: usize,
    /// Spools still waiting (server away, or unreadable), with the reason.
    pub still_pending: Vec<(String, String)>,
    /// Spools skipped because a live process owns them.
    pub in_use: usize,
}

/// The spool files (current format) in a store's spool directory, sorted.
pub(crate) fn wal_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(spool_files(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect())
}

fn spool_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| TrackingError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    Ok(files)
}

/// Replays every spool file left in a store's spool directory.
pub(crate) fn replay_all(store: &dyn TrackingStore, dir: &Path) -> Result<SpoolReport> {
    let mut report = SpoolReport::default();
    for path in spool_files(dir)? {
        match path.extension().and_then(|x| x.to_str()) {
            Some("wal") => replay_file(store, &path, &mut report)?,
            Some("jsonl") => replay_legacy(store, &path, &mut report)?,
            _ => {}
        }
    }
    Ok(report)
}

/// Takes an orphaned spool file over (its lock) and delivers it.
fn replay_file(store: &dyn TrackingStore, path: &Path, report: &mut SpoolReport) -> Result<()> {
    let file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrackingError::io(path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            report.in_use += 1;
            return Ok(());
        }
        Err(fs::TryLockError::Error(e)) => return Err(TrackingError::io(path, e)),
    }
    if !still_at(&file, path) {
        return Ok(()); // removed or compacted by its owner before we locked it
    }
    let contents = match read_wal(path) {
        Ok(c) => c,
        Err(e) => {
            report
                .still_pending
                .push((path.display().to_string(), e.to_string()));
            return Ok(());
        }
    };
    let owner = contents
        .owner
        .clone()
        .ok_or_else(|| TrackingError::Corrupt {
            path: path.to_path_buf(),
            reason: "no owner".into(),
        })?;
    // Drop a torn tail before appending, so new records start on a line of their own.
    let mut file = file;
    file.set_len(contents.good_len)
        .and_then(|()| {
            if contents.missing_newline {
                file.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .map_err(|e| TrackingError::io(path, e))?;
    let next_seq = contents.ops.iter().map(|(s, _)| *s).max().unwrap_or(0) + 1;
    let mut wal = RunWal {
        path: path.to_path_buf(),
        file,
        owner,
        run_id: contents.run_id.clone(),
        sync: SpoolSync::EveryCall,
        next_seq,
        dirty_since: None,
        bytes: 0,
    };
    match orphan_run_id(store, &mut wal, &contents) {
        Ok(Some(run_id)) => deliver_orphan(store, wal, &run_id, contents, report),
        Ok(None) => wal.remove(), // the run was never created
        Err(e) if e.is_transient() => {
            report
                .still_pending
                .push((path.display().to_string(), e.to_string()));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether `file` is still the file at `path` (same inode).
fn still_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// The spool's run: recorded, or found by its creation key when the process
/// died inside `runs/create` (`None`: it was never created).
fn orphan_run_id(
    store: &dyn TrackingStore,
    wal: &mut RunWal,
    contents: &WalContents,
) -> Result<Option<String>> {
    if let Some(id) = &contents.run_id {
        return Ok(Some(id.clone()));
    }
    let owner = &wal.owner;
    let search = RunSearch::in_experiments([owner.experiment_id.as_str()])
        .filter(format!("tags.`{REQUEST_ID_TAG}` = '{}'", owner.request_id))
        .view_type(ViewType::All)
        .max_results(1);
    let found = store.search_runs(&search)?.items.into_iter().next();
    match found {
        Some(run) => {
            wal.created(&run.info.run_id)?;
            Ok(Some(run.info.run_id))
        }
        None => Ok(None),
    }
}

/// Delivers what the dead owner had not, then ends its run `FAILED` unless
/// it had been ended.
fn deliver_orphan(
    store: &dyn TrackingStore,
    mut wal: RunWal,
    run_id: &str,
    contents: WalContents,
    report: &mut SpoolReport,
) -> Result<()> {
    let mut todo = contents.unacked();
    let mut failed_reason = None;
    if !contents.ended() {
        let reason = orphan_reason(&wal.owner);
        let end_time = last_write_ms(&wal.path);
        for op in [
            SpoolOp::Batch {
                metrics: vec![],
                params: vec![],
                tags: vec![Tag::new(FAILURE_REASON_TAG, &reason)],
            },
            SpoolOp::Update {
                status: RunStatus::Failed,
                end_time: Some(end_time),
            },
        ] {
            let seq = wal.log(&op)?;
            todo.push((seq, op));
        }
        failed_reason = Some(reason);
    }
    for (seqs, op) in coalesce(todo) {
        match op.deliver(store, run_id) {
            Ok(()) => {
                report.operations += 1;
                wal.ack(&seqs)?;
            }
            Err(e) if e.is_transient() => {
                report
                    .still_pending
                    .push((run_id.to_string(), e.to_string()));
                return Ok(());
            }
            Err(e) => {
                // Refused for good (e.g. the run was deleted): retrying cannot help.
                wal.ack(&seqs)?;
                report
                    .still_pending
                    .push((run_id.to_string(), format!("rejected: {e}")));
            }
        }
    }
    wal.remove()?;
    match failed_reason {
        Some(reason) => report.runs_failed.push((run_id.to_string(), reason)),
        None => report.runs_delivered.push(run_id.to_string()),
    }
    Ok(())
}

fn orphan_reason(owner: &SpoolOwner) -> String {
    format!(
        "process {} on {} (spool opened at {} ms since the epoch) left the run unended (it died, or its run creation failed halfway); ended FAILED by process {} on {} replaying its spool",
        owner.pid,
        owner.host,
        owner.started_ms,
        std::process::id(),
        host_name()
    )
}

/// The spool's last write: when its owner was last heard of.
fn last_write_ms(path: &Path) -> i64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or_else(now_millis)
}

/// Consecutive spooled batches merged, with the sequence numbers they cover.
#[derive(Default)]
struct MergedBatch {
    seqs: Vec<u64>,
    metrics: Vec<Metric>,
    params: Vec<Param>,
    tags: Vec<Tag>,
}

impl MergedBatch {
    /// Splits into server-sized batches; the last carries the acks, so none
    /// is acked before all of its parts landed. A tag set twice keeps its
    /// last value.
    fn drain_into(&mut self, out: &mut Vec<(Vec<u64>, SpoolOp)>) {
        if self.seqs.is_empty() {
            return;
        }
        let last: HashMap<&str, usize> = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key.as_str(), i))
            .collect();
        let tags: Vec<Tag> = self
            .tags
            .iter()
            .enumerate()
            .filter(|(i, t)| last.get(t.key.as_str()) == Some(i))
            .map(|(_, t)| t.clone())
            .collect();
        let parts = split_batch(&self.metrics, &self.params, &tags);
        let n = parts.len();
        for (i, (m, p, t)) in parts.into_iter().enumerate() {
            let acks = if i + 1 == n {
                std::mem::take(&mut self.seqs)
            } else {
                Vec::new()
            };
            let op = SpoolOp::Batch {
                metrics: m.to_vec(),
                params: p.to_vec(),
                tags: t.to_vec(),
            };
            out.push((acks, op));
        }
        *self = MergedBatch::default();
    }
}

/// Merges consecutive batches into server-sized ones; other operations stay
/// single and in order.
fn coalesce(ops: Vec<(u64, SpoolOp)>) -> Vec<(Vec<u64>, SpoolOp)> {
    let mut out = Vec::new();
    let mut merged = MergedBatch::default();
    for (seq, op) in ops {
        match op {
            SpoolOp::Batch {
                metrics,
                params,
                tags,
            } => {
                merged.seqs.push(seq);
                merged.metrics.extend(metrics);
                merged.params.extend(params);
                merged.tags.extend(tags);
            }
            other => {
                merged.drain_into(&mut out);
                out.push((vec![seq], other));
            }
        }
    }
    merged.drain_into(&mut out);
    out
}

/// Delivers a spool file of the older format (`<run_id>.jsonl`, rewritten
/// whole after each delivered operation).
fn replay_legacy(store: &dyn TrackingStore, path: &Path, report: &mut SpoolReport) -> Result<()> {
    let (run_id, mut ops) = match read_ops(path) {
        Ok(x) => x,
        Err(e) => {
            report
                .still_pending
                .push((path.display().to_string(), e.to_string()));
            return Ok(());
        }
    };
    while let Some(op) = ops.first() {
        match op.deliver(store, &run_id) {
            Ok(()) => {
                ops.remove(0);
                report.operations += 1;
                write_ops(path, &run_id, &ops)?;
            }
            Err(e) if e.is_transient() => {
                report.still_pending.push((run_id.clone(), e.to_string()));
                return Ok(());
            }
            Err(e) => {
                ops.remove(0);
                write_ops(path, &run_id, &ops)?;
                report
                    .still_pending
                    .push((run_id.clone(), format!("rejected: {e}")));
            }
        }
    }
    report.runs_delivered.push(run_id);
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    run_id: String,
    #[serde(flatten)]
    op: SpoolOp,
}

fn read_ops(path: &Path) -> Result<(String, Vec<SpoolOp>)> {
    let text = fs::read_to_string(path).map_err(|e| TrackingError::io(path, e))?;
    let mut run_id = String::new();
    let mut ops = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rec: Record = serde_json::from_str(line).map_err(|e| TrackingError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        run_id = rec.run_id;
        ops.push(rec.op);
    }
    Ok((run_id, ops))
}

fn write_ops(path: &Path, run_id: &str, ops: &[SpoolOp]) -> Result<()> {
    if ops.is_empty() {
        return remove_spool(path);
    }
    let mut text = Vec::new();
    for op in ops {
        let rec = Record {
            run_id: run_id.to_string(),
            op: op.clone(),
        };
        serde_json::to_writer(&mut text, &rec).map_err(|e| TrackingError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
    }
    crate::file_store::write_durably(path, |f| f.write_all(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> SpoolOwner {
        SpoolOwner::this_process("0", "key1")
    }

    fn metric(step: i64) -> Metric {
        Metric {
            key: "loss".into(),
            value: step as f64 * 0.5,
            timestamp: 1_700_000_000_000 + step,
            step,
        }
    }

    fn batch(steps: std::ops::Range<i64>) -> SpoolOp {
        SpoolOp::Batch {
            metrics: steps.map(metric).collect(),
            params: vec![],
            tags: vec![],
        }
    }

    /// A spool with a created run, three logged batches and the first acked.
    fn sample_spool(dir: &Path) -> PathBuf {
        let mut wal = RunWal::create(dir, owner(), SpoolSync::EveryCall).unwrap();
        wal.created("run1").unwrap();
        let a = wal.log(&batch(0..2)).unwrap();
        wal.log(&batch(2..4)).unwrap();
        wal.ack(&[a]).unwrap();
        wal.log(&batch(4..6)).unwrap();
        wal.path().to_path_buf()
    }

    #[test]
    fn a_spool_reads_back_what_was_logged_and_what_is_unacked() {
        let tmp = tempfile::tempdir().unwrap();
        let path = sample_spool(tmp.path());
        let wal = read_wal(&path).unwrap();
        assert_eq!(wal.run_id.as_deref(), Some("run1"));
        assert_eq!(wal.ops.len(), 3);
        let unacked: Vec<u64> = wal.unacked().iter().map(|(s, _)| *s).collect();
        assert_eq!(unacked, vec![2, 3]);
        let contents = read_spool(&path).unwrap();
        assert_eq!(contents.metrics, (0..6).map(metric).collect::<Vec<_>>());
        assert_eq!(contents.pid, std::process::id());
        let opened = contents.started_ms;
        assert!(
            opened > 1_700_000_000_000 && opened <= now_millis(),
            "{opened}"
        );
        assert_eq!(contents.unacknowledged, 2);
        assert!(!wal.ended());
    }

    #[test]
    fn a_live_owner_holds_the_lock_and_the_kernel_drops_it_with_the_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = RunWal::create(tmp.path(), owner(), SpoolSync::DEFAULT).unwrap();
        let other = File::open(wal.path()).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        let path = wal.path().to_path_buf();
        drop(wal);
        assert!(other.try_lock().is_ok(), "{}", path.display());
    }

    #[test]
    fn a_spool_cut_at_any_byte_of_its_last_record_reads_up_to_the_last_whole_one() {
        let tmp = tempfile::tempdir().unwrap();
        let path = sample_spool(tmp.path());
        let full = fs::read(&path).unwrap();
        let last_start = full[..full.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        for cut in last_start..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let wal = read_wal(&path).unwrap();
            // Only the newline missing: the record itself is whole and counts.
            let whole = if cut == full.len() - 1 { 3 } else { 2 };
            assert_eq!(wal.ops.len(), whole, "cut at byte {cut}");
        }
    }

    #[test]
    fn a_damaged_record_before_the_end_is_a_typed_error_naming_its_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let path = sample_spool(tmp.path());
        let mut bytes = fs::read(&path).unwrap();
        let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        bytes[second_line] = b'#';
        fs::write(&path, &bytes).unwrap();
        let err = read_wal(&path).unwrap_err();
        assert!(matches!(err, TrackingError::Corrupt { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("byte offset {second_line}")),
            "{err}"
        );
    }

    #[test]
    fn coalescing_acks_a_merged_batch_only_with_its_last_part() {
        let ops = vec![
            (1, batch(0..600)),
            (2, batch(600..1200)),
            (
                3,
                SpoolOp::Update {
                    status: RunStatus::Failed,
                    end_time: Some(1),
                },
            ),
            (4, batch(1200..1201)),
        ];
        let out = coalesce(ops);
        // 1200 metrics need two requests of at most 1000.
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].0, Vec::<u64>::new());
        assert_eq!(out[1].0, vec![1, 2]);
        assert_eq!(out[2].0, vec![3]);
        assert_eq!(out[3].0, vec![4]);
        let sent: usize = out[..2].iter().map(|(_, op)| op.size()).sum();
        assert_eq!(sent, 1200);
    }

    #[test]
    fn a_tag_set_twice_in_merged_batches_keeps_its_last_value() {
        let tag = |v: &str| SpoolOp::Batch {
            metrics: vec![],
            params: vec![],
            tags: vec![Tag::new("phase", v)],
        };
        let out = coalesce(vec![(1, tag("a")), (2, tag("b"))]);
        assert_eq!(out.len(), 1);
        let SpoolOp::Batch { tags, .. } = &out[0].1 else {
            panic!("{out:?}")
        };
        assert_eq!(tags, &vec![Tag::new("phase", "b")]);
    }

    #[test]
    fn compaction_keeps_the_header_and_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let mut wal = RunWal::create(tmp.path(), owner(), SpoolSync::DEFAULT).unwrap();
        wal.created("run1").unwrap();
        while wal.bytes < COMPACT_BYTES {
            let seq = wal.log(&batch(0..500)).unwrap();
            wal.ack(&[seq]).unwrap();
        }
        wal.compact_if_large().unwrap();
        let read = read_wal(wal.path()).unwrap();
        assert_eq!(read.run_id.as_deref(), Some("run1"));
        assert!(read.ops.is_empty());
        let other = File::open(wal.path()).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        // Sequence numbers go on after compaction.
        let next = wal.log(&batch(0..1)).unwrap();
        assert!(next > 1);
    }
}
