//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong talking to a tracking store.
///
/// Messages name the input or endpoint at fault. Credentials never appear in
/// them: URIs are shown without user info, and auth headers are never echoed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackingError {
    /// The server could not be reached (refused, reset, DNS, TLS or timeout),
    /// after the configured retries.
    #[error("Cannot connect to MLflow server at {uri}: {reason}")]
    Connect {
        /// The tracking URI, without credentials.
        uri: String,
        /// What the transport said.
        reason: String,
    },
    /// The server answered with an MLflow JSON error body.
    #[error("MLflow {error_code} (HTTP {status}) from {endpoint}: {message}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// MLflow's `error_code`, e.g. `RESOURCE_DOES_NOT_EXIST`.
        error_code: String,
        /// MLflow's `message`.
        message: String,
        /// The API path that was called.
        endpoint: String,
    },
    /// The server answered with an error status and a body that is not an
    /// MLflow error (401/403 from basic auth, 404/405 HTML pages, proxies).
    #[error("HTTP {status} from {endpoint}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The API path that was called.
        endpoint: String,
        /// The start of the body, as text.
        body: String,
    },
    /// The server's answer could not be understood.
    #[error("unexpected response from {endpoint}: {reason}")]
    Decode {
        /// The API path that was called.
        endpoint: String,
        /// What was wrong with it.
        reason: String,
    },
    /// An argument was rejected before anything was sent.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidInput {
        /// Which kind of input (e.g. "metric key", "experiment name").
        what: &'static str,
        /// The offending value (truncated when long).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A named entity does not exist in a local store, or a model URI did not
    /// resolve to anything.
    #[error("{what} not found: {name}")]
    NotFound {
        /// Which kind of entity.
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// Reading or writing a local file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configuration (environment or builder) is unusable.
    #[error("configuration error: {0}")]
    Config(String),
    /// A local store file is not in the expected format.
    #[error("corrupt local store file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The run's background delivery thread died (a panic). Its waiting
    /// values are kept in the spool file; `flush`/`finish` report this at
    /// once instead of waiting for it.
    #[error(
        "the background delivery of run {run_id} failed: {reason}; undelivered values kept in {spool}"
    )]
    FlusherFailed {
        /// The run.
        run_id: String,
        /// The panic message.
        reason: String,
        /// The spool file that holds the undelivered values.
        spool: PathBuf,
    },
    /// Values logged to a run could not be delivered yet. They are kept in the
    /// spool file and are delivered by [`crate::Tracker::replay_spools`] (or by
    /// the run's next successful flush).
    #[error(
        "{pending} logged operation(s) for run {run_id} not delivered yet ({cause}); kept in {spool}"
    )]
    Undelivered {
        /// The run the values belong to.
        run_id: String,
        /// How many operations are waiting.
        pending: usize,
        /// The spool file that holds them.
        spool: PathBuf,
        /// The last delivery error, as text.
        cause: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = TrackingError> = std::result::Result<T, E>;

impl TrackingError {
    /// The MLflow `error_code`, when the server sent one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            TrackingError::Api { error_code, .. } => Some(error_code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            TrackingError::Api { status, .. } | TrackingError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, TrackingError::NotFound { .. })
            || self.error_code() == Some("RESOURCE_DOES_NOT_EXIST")
    }

    /// True when creating something failed because it already exists.
    pub fn is_already_exists(&self) -> bool {
        self.error_code() == Some("RESOURCE_ALREADY_EXISTS")
    }

    /// True for failures worth retrying later: the server was unreachable or
    /// answered 408, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            TrackingError::Connect { .. } => true,
            TrackingError::Api { status, .. } | TrackingError::Http { status, .. } => {
                is_retryable_status(*status)
            }
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrackingError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        let mut shown: String = value.chars().take(80).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        TrackingError::InvalidInput {
            what,
            value: shown,
            reason: reason.into(),
        }
    }
}

/// Statuses retried by MLflow's own client (408, 429, 500, 502, 503, 504), plus
/// any other 5xx.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}
