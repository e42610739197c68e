//! Folder-level artifact operations built on the store's per-file ones.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrackingError};
use crate::rest::join_uri;
use crate::store::TrackingStore;
use crate::types::FileInfo;

/// Every file under `dir`, as (relative path with `/`, full path), sorted.
pub(crate) fn local_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Err(TrackingError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| TrackingError::io(&d, e))? {
            let entry = entry.map_err(|e| TrackingError::io(&d, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            if path.is_dir() {
                stack.push((path, rel));
            } else {
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Uploads every file under `local_dir` to `root/rel_dir/...`.
pub fn upload_dir(
    store: &dyn TrackingStore,
    root: &str,
    rel_dir: &str,
    local_dir: &Path,
) -> Result<usize> {
    let files = local_files(local_dir)?;
    for (rel, path) in &files {
        let target = join_uri(rel_dir.trim_matches('/'), rel)
            .trim_start_matches('/')
            .to_string();
        store.upload_artifact(root, &target, path)?;
    }
    Ok(files.len())
}

/// Every file (not directory) under `root/rel_dir`, recursively.
pub fn list_recursive(
    store: &dyn TrackingStore,
    root: &str,
    rel_dir: &str,
) -> Result<Vec<FileInfo>> {
    let mut out = Vec::new();
    let mut stack = vec![rel_dir.trim_matches('/').to_string()];
    while let Some(dir) = stack.pop() {
        for f in store.list_artifacts(root, &dir)? {
            if f.is_dir {
                stack.push(f.path);
            } else {
                out.push(f);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Downloads everything under `root/rel_dir` into `dest` (keeping the
/// structure below `rel_dir`). Returns the files written.
pub fn download_dir(
    store: &dyn TrackingStore,
    root: &str,
    rel_dir: &str,
    dest: &Path,
) -> Result<Vec<PathBuf>> {
    let rel_dir = rel_dir.trim_matches('/');
    let files = list_recursive(store, root, rel_dir)?;
    if files.is_empty() {
        return Err(TrackingError::NotFound {
            what: "artifacts",
            name: join_uri(root, rel_dir),
        });
    }
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let below = if rel_dir.is_empty() {
            f.path.as_str()
        } else {
            f.path
                .strip_prefix(rel_dir)
                .unwrap_or(&f.path)
                .trim_start_matches('/')
        };
        let target = dest.join(below);
        store.download_artifact(root, &f.path, &target, f.file_size)?;
        written.push(target);
    }
    Ok(written)
}
