//! Undelivered operations of a run, kept on disk until the server takes them.
//!
//! One JSON-lines file per run: `<spool_dir>/<store-key>/<run_id>.jsonl`,
//! artifact copies beside it in `<run_id>.files/`. Re-delivering an operation
//! that did land is harmless: the server stores an identical metric point
//! once, accepts a param re-logged with the same value, and overwrites tags,
//! status and artifacts. That is what makes "deliver later" exactly-once.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrackingError};
use crate::store::TrackingStore;
use crate::types::{Metric, Param, RunStatus, Tag};

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

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    run_id: String,
    #[serde(flatten)]
    op: SpoolOp,
}

/// Spool files in use by live runs of this process (not replayed by `push_spooled`).
fn live() -> &'static Mutex<HashSet<PathBuf>> {
    static LIVE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

/// The directory for one store's spool files: a readable key from its URI.
pub(crate) fn store_dir(spool_dir: &Path, store_uri: &str) -> PathBuf {
    let key: String = store_uri
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    spool_dir.join(key)
}

/// The spool of one run.
#[derive(Debug)]
pub(crate) struct RunSpool {
    path: PathBuf,
    run_id: String,
}

impl RunSpool {
    pub(crate) fn new(dir: &Path, run_id: &str) -> Self {
        let path = dir.join(format!("{run_id}.jsonl"));
        if let Ok(mut set) = live().lock() {
            set.insert(path.clone());
        }
        RunSpool {
            path,
            run_id: run_id.to_string(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A place for an artifact copy.
    pub(crate) fn file_slot(&self, name_hint: &str) -> Result<PathBuf> {
        let dir = self.path.with_extension("files");
        fs::create_dir_all(&dir).map_err(|e| TrackingError::io(&dir, e))?;
        let safe: String = name_hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(dir.join(format!("{}-{safe}", uuid::Uuid::new_v4().simple())))
    }

    /// Replaces the file with exactly `ops` (removing it when empty).
    pub(crate) fn write(&self, ops: &[SpoolOp]) -> Result<()> {
        write_ops(&self.path, &self.run_id, ops)
    }
}

impl Drop for RunSpool {
    fn drop(&mut self) {
        if let Ok(mut set) = live().lock() {
            set.remove(&self.path);
        }
    }
}

fn write_ops(path: &Path, run_id: &str, ops: &[SpoolOp]) -> Result<()> {
    if ops.is_empty() {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrackingError::io(path, e)),
        }
        let files = path.with_extension("files");
        if files.is_dir()
            && fs::read_dir(&files)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        {
            let _ = fs::remove_dir(&files);
        }
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
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
    let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut f = fs::File::create(&tmp).map_err(|e| TrackingError::io(&tmp, e))?;
    f.write_all(&text).map_err(|e| TrackingError::io(&tmp, e))?;
    f.sync_all().map_err(|e| TrackingError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| TrackingError::io(path, e))
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

/// What [`crate::Tracker::push_spooled`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolReport {
    /// Runs whose spooled operations were all delivered.
    pub runs_delivered: Vec<String>,
    /// Operations delivered.
    pub operations: usize,
    /// Runs still waiting, with the reason.
    pub still_pending: Vec<(String, String)>,
}

/// Replays every spool file for a store, oldest operations first.
pub(crate) fn push_all(store: &dyn TrackingStore, dir: &Path) -> Result<SpoolReport> {
    let mut report = SpoolReport::default();
    if !dir.is_dir() {
        return Ok(report);
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| TrackingError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for path in files {
        if live().lock().map(|s| s.contains(&path)).unwrap_or(false) {
            continue; // a live run in this process owns it
        }
        let (run_id, mut ops) = read_ops(&path)?;
        while let Some(op) = ops.first() {
            match op.deliver(store, &run_id) {
                Ok(()) => {
                    ops.remove(0);
                    report.operations += 1;
                    write_ops(&path, &run_id, &ops)?;
                }
                Err(e) if e.is_transient() => {
                    report.still_pending.push((run_id.clone(), e.to_string()));
                    break;
                }
                Err(e) => {
                    // Permanently rejected (e.g. a deleted run): keep it out of
                    // the queue but on disk for inspection.
                    let rejected = path.with_extension("rejected");
                    let mut old = if rejected.exists() {
                        read_ops(&rejected)?.1
                    } else {
                        Vec::new()
                    };
                    old.push(ops.remove(0));
                    write_ops(&rejected, &run_id, &old)?;
                    write_ops(&path, &run_id, &ops)?;
                    report
                        .still_pending
                        .push((run_id.clone(), format!("rejected: {e}")));
                }
            }
        }
        if ops.is_empty() && !report.still_pending.iter().any(|(r, _)| r == &run_id) {
            report.runs_delivered.push(run_id);
        }
    }
    Ok(report)
}
