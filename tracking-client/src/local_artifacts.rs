//! Artifacts under a `file://` root: plain file copies.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrackingError};
use crate::file_store::write_durably;
use crate::types::FileInfo;
use crate::validate;

/// The directory a `file:` URI (or a bare path) names.
pub(crate) fn file_uri_to_path(uri: &str) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        // file:///abs/path or file://localhost/abs/path
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        Some(PathBuf::from(percent_decode(rest)))
    } else {
        uri.strip_prefix("file:")
            .map(|rest| PathBuf::from(percent_decode(rest)))
    }
}

/// A `file://` URI for an absolute path.
pub(crate) fn path_to_file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn target(root: &Path, rel: &str) -> Result<PathBuf> {
    validate::artifact_path(rel)?;
    Ok(if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    })
}

pub(crate) fn upload(root: &Path, rel: &str, local: &Path) -> Result<()> {
    let dest = target(root, rel)?;
    // Temp file + fsync + rename: a crash never leaves half an artifact.
    let mut source = std::fs::File::open(local).map_err(|e| TrackingError::io(local, e))?;
    write_durably(&dest, |f| std::io::copy(&mut source, f).map(drop))
}

pub(crate) fn upload_bytes(root: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let dest = target(root, rel)?;
    write_durably(&dest, |f| std::io::Write::write_all(f, bytes))
}

pub(crate) fn list(root: &Path, rel: &str) -> Result<Vec<FileInfo>> {
    let dir = target(root, rel)?;
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| TrackingError::io(&dir, e))? {
        let entry = entry.map_err(|e| TrackingError::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry
            .metadata()
            .map_err(|e| TrackingError::io(entry.path(), e))?;
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        out.push(FileInfo {
            path,
            is_dir: meta.is_dir(),
            file_size: if meta.is_dir() {
                None
            } else {
                Some(meta.len())
            },
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

pub(crate) fn download(root: &Path, rel: &str, dest: &Path) -> Result<()> {
    let src = target(root, rel)?;
    if !src.is_file() {
        return Err(TrackingError::NotFound {
            what: "artifact",
            name: src.display().to_string(),
        });
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
    }
    std::fs::copy(&src, dest).map_err(|e| TrackingError::io(&src, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn artifacts_are_written_whole_and_leave_no_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("artifacts");
        upload_bytes(&root, "reports/a.json", b"{}").unwrap();
        upload_bytes(&root, "reports/a.json", b"{\"f1\": 1}").unwrap();
        let local = tmp.path().join("model.bin");
        std::fs::write(&local, b"forest").unwrap();
        upload(&root, "model/model.bin", &local).unwrap();
        assert_eq!(
            std::fs::read(root.join("reports/a.json")).unwrap(),
            b"{\"f1\": 1}"
        );
        assert_eq!(
            std::fs::read(root.join("model/model.bin")).unwrap(),
            b"forest"
        );
        let names: Vec<String> = std::fs::read_dir(root.join("reports"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json"]);
        assert!(upload(&root, "x", &tmp.path().join("missing")).is_err());
    }
}
