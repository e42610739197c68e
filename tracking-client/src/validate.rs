//! Checks run before anything is sent, mirroring the server's own rules
//! (wire reference §5 and §7), so a bad key fails at the call that made it,
//! not in a background flush minutes later.

use crate::error::{Result, TrackingError};

/// Longest metric, param or tag key the server accepts.
pub const MAX_KEY_LEN: usize = 250;
/// Longest param value the server keeps (longer ones are silently truncated).
pub const MAX_PARAM_VALUE_LEN: usize = 6000;
/// Longest run tag value the server keeps (longer ones are silently truncated).
pub const MAX_TAG_VALUE_LEN: usize = 8000;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LEN: usize = 500;
/// Longest alias.
pub const MAX_ALIAS_LEN: usize = 255;

/// A metric, param or tag key: non-empty, at most 250 characters, and a
/// "unique path" (no `..`, leading `/`, `//` or `.` segments), since the file
/// store turns keys into file names.
pub fn key(what: &'static str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(TrackingError::invalid(what, key, "must not be empty"));
    }
    if key.chars().count() > MAX_KEY_LEN {
        return Err(TrackingError::invalid(
            what,
            key,
            format!("longer than {MAX_KEY_LEN} characters"),
        ));
    }
    if key.contains('\0') || key.contains('\\') {
        return Err(TrackingError::invalid(
            what,
            key,
            "must not contain NUL or backslash",
        ));
    }
    path_is_unique(what, key)
}

/// Like MLflow's `path_not_unique`: the name must equal its normalised path.
fn path_is_unique(what: &'static str, name: &str) -> Result<()> {
    let bad = name.starts_with('/')
        || name.ends_with('/')
        || name
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(TrackingError::invalid(
            what,
            name,
            "must not resolve to another name as a path (no '..', '.', leading/trailing '/' or '//')",
        ));
    }
    Ok(())
}

/// A param value: at most 6000 characters (the server would truncate it silently).
pub fn param_value(key: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_PARAM_VALUE_LEN {
        return Err(TrackingError::invalid(
            "param value",
            key,
            format!("value longer than {MAX_PARAM_VALUE_LEN} characters"),
        ));
    }
    Ok(())
}

/// A run tag value: at most 8000 characters.
pub fn tag_value(key: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_TAG_VALUE_LEN {
        return Err(TrackingError::invalid(
            "tag value",
            key,
            format!("value longer than {MAX_TAG_VALUE_LEN} characters"),
        ));
    }
    Ok(())
}

/// An experiment name.
pub fn experiment_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(TrackingError::invalid(
            "experiment name",
            name,
            "must not be empty",
        ));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_LEN {
        return Err(TrackingError::invalid(
            "experiment name",
            name,
            format!("longer than {MAX_EXPERIMENT_NAME_LEN} characters"),
        ));
    }
    Ok(())
}

/// A registered model name: non-empty, and usable in `models:/<name>/...`
/// URIs and as a directory name.
pub fn model_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(TrackingError::invalid(
            "registered model name",
            name,
            "must not be empty",
        ));
    }
    if name.contains('/') || name.contains('\\') || name.contains('\0') || name.contains('@') {
        return Err(TrackingError::invalid(
            "registered model name",
            name,
            "must not contain '/', '\\', '@' or NUL",
        ));
    }
    if name == "." || name == ".." {
        return Err(TrackingError::invalid(
            "registered model name",
            name,
            "is not a usable name",
        ));
    }
    Ok(())
}

/// An alias: alphanumerics, `_` and `-`; not `latest`, not `v<digits>`.
pub fn alias(alias: &str) -> Result<()> {
    if alias.is_empty() || alias.len() > MAX_ALIAS_LEN {
        return Err(TrackingError::invalid(
            "alias",
            alias,
            "must be 1 to 255 characters",
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(TrackingError::invalid(
            "alias",
            alias,
            "may only contain alphanumerics, underscores (_) and dashes (-)",
        ));
    }
    if alias.eq_ignore_ascii_case("latest") {
        return Err(TrackingError::invalid(
            "alias",
            alias,
            "'latest' is reserved",
        ));
    }
    let lower = alias.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix('v')
        && !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_digit())
    {
        return Err(TrackingError::invalid(
            "alias",
            alias,
            "version aliases like 'v3' are reserved",
        ));
    }
    Ok(())
}

/// A model version number.
pub fn version(version: &str) -> Result<()> {
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
        return Err(TrackingError::invalid(
            "model version",
            version,
            "must be a positive integer",
        ));
    }
    Ok(())
}

/// A relative artifact path: no `..`, no leading `/`.
pub fn artifact_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Ok(());
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(TrackingError::invalid(
            "artifact path",
            path,
            "must not contain NUL or backslash",
        ));
    }
    path_is_unique("artifact path", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_server_rules() {
        for ok in ["a/b", "a b", "a:b", "a.b-c_d", "é", &"k".repeat(250)] {
            assert!(key("metric key", ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "/lead", "a//b", "a/./b", "x/", &"k".repeat(251)] {
            assert!(key("metric key", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aliases_follow_the_server_rules() {
        assert!(alias("champion").is_ok());
        assert!(alias("challenger-2").is_ok());
        for bad in ["latest", "LATEST", "v3", "Bad Alias!", ""] {
            assert!(alias(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_values_are_rejected_instead_of_truncated() {
        assert!(param_value("p", &"x".repeat(6000)).is_ok());
        assert!(param_value("p", &"x".repeat(6001)).is_err());
        assert!(tag_value("t", &"x".repeat(8001)).is_err());
    }
}
