//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in vigil-tuning, each variant naming the input at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuningError {
    /// A numeric range whose lower bound is above its upper bound.
    #[error("parameter `{name}`: low ({low}) is greater than high ({high})")]
    LowAboveHigh {
        /// Parameter name.
        name: String,
        /// The lower bound given.
        low: f64,
        /// The upper bound given.
        high: f64,
    },
    /// A bound that is NaN or infinite.
    #[error("parameter `{name}`: bounds must be finite, got low = {low}, high = {high}")]
    NonFiniteBound {
        /// Parameter name.
        name: String,
        /// The lower bound given.
        low: f64,
        /// The upper bound given.
        high: f64,
    },
    /// A log-scaled range that reaches zero or below.
    #[error("parameter `{name}`: a log-scaled range needs low > 0, got low = {low}")]
    LogNonPositive {
        /// Parameter name.
        name: String,
        /// The lower bound given.
        low: f64,
    },
    /// A step that is not positive or does not divide `high - low`.
    #[error("parameter `{name}`: step {step} does not divide the range [{low}, {high}]")]
    StepDoesNotDivide {
        /// Parameter name.
        name: String,
        /// The lower bound given.
        low: f64,
        /// The upper bound given.
        high: f64,
        /// The step given.
        step: f64,
    },
    /// A step that is zero, negative or not finite.
    #[error("parameter `{name}`: step must be positive and finite, got {step}")]
    BadStep {
        /// Parameter name.
        name: String,
        /// The step given.
        step: f64,
    },
    /// Both a step and a log scale were asked for; the two do not combine.
    #[error("parameter `{name}`: a parameter cannot have both a step and a log scale")]
    StepWithLog {
        /// Parameter name.
        name: String,
    },
    /// A categorical parameter with no choices.
    #[error("parameter `{name}`: a categorical parameter needs at least one choice")]
    EmptyCategorical {
        /// Parameter name.
        name: String,
    },
    /// A categorical parameter with the same choice listed twice.
    #[error("parameter `{name}`: choice {choice} is listed more than once")]
    DuplicateChoice {
        /// Parameter name.
        name: String,
        /// The repeated choice.
        choice: String,
    },
    /// A name suggested again, in this trial or an earlier one, with another distribution.
    #[error(
        "parameter `{name}` was suggested before as {previous} and now as {requested}; \
         one name must keep one distribution in a study"
    )]
    IncompatibleDistribution {
        /// Parameter name.
        name: String,
        /// The distribution it had.
        previous: String,
        /// The distribution asked for now.
        requested: String,
    },
    /// A fixed (enqueued) value that the distribution cannot hold.
    #[error("parameter `{name}`: enqueued value {value} does not fit {distribution}")]
    FixedValueOutOfDistribution {
        /// Parameter name.
        name: String,
        /// The enqueued value.
        value: String,
        /// The distribution asked for.
        distribution: String,
    },
    /// A trial id that the study does not hold.
    #[error("no trial with id {0} in this storage")]
    UnknownTrial(u64),
    /// A study name that the storage does not hold.
    #[error("no study named `{0}` in this storage")]
    StudyNotFound(String),
    /// A study name that is already taken.
    #[error("a study named `{0}` already exists (open it with `load_if_exists`)")]
    StudyExists(String),
    /// A study opened with a direction other than the stored one.
    #[error("study `{name}` is stored as {stored:?}, not {requested:?}")]
    DirectionMismatch {
        /// Study name.
        name: String,
        /// Direction in storage.
        stored: crate::Direction,
        /// Direction requested.
        requested: crate::Direction,
    },
    /// A write to a trial that has already finished (finished trials are immutable).
    #[error("trial {trial_id} is already {state:?}; finished trials cannot change")]
    TrialFinished {
        /// Trial id.
        trial_id: u64,
        /// Its (terminal) state.
        state: crate::TrialState,
    },
    /// An invalid setting of a sampler, pruner or study option.
    #[error("invalid setting `{name}`: {reason}")]
    InvalidSetting {
        /// The setting.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A value reported for a step twice.
    #[error("trial {trial_id} already reported a value for step {step}")]
    StepReportedTwice {
        /// Trial id.
        trial_id: u64,
        /// The step.
        step: u64,
    },
    /// The study has no completed trial yet (e.g. asking for the best one).
    #[error("the study has no completed trial")]
    NoCompletedTrial,
    /// Reading or writing a file (the journal, an export) failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A journal line that cannot be parsed (other than a torn last line), or a
    /// journal that shrank below what was already read from it.
    #[error("journal {path} is corrupt at byte {offset} (line {line}): {reason}")]
    CorruptJournal {
        /// The journal file.
        path: PathBuf,
        /// Byte offset of the start of the bad record (the end of the last good one).
        offset: u64,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Serialising to JSON or CSV failed.
    #[error("export failed: {0}")]
    Export(String),
    /// A PostgreSQL operation of the storage failed: connecting, creating the tables or
    /// a statement. The driver's error is kept as text (the password scrubbed), so no
    /// `postgres` type is part of this crate's API.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL {operation} failed: {message}{}", sqlstate(code))]
    Postgres {
        /// What the storage was doing, e.g. `connect` or `finish trial`.
        operation: &'static str,
        /// The server's SQLSTATE code (e.g. `40P01`), when the server answered.
        code: Option<String>,
        /// The server's or driver's message, with any password scrubbed.
        message: String,
    },
    /// Stored data that does not decode (e.g. a trial row edited by hand).
    #[error("storage holds data that does not decode: {0}")]
    CorruptStorage(String),
    /// Finishing a trial (`tell`) kept failing: the result reached no storage.
    #[error("trial {trial_id}: recording its result failed after {attempts} attempt(s): {source}")]
    TellFailed {
        /// Trial id.
        trial_id: u64,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        source: Box<TuningError>,
    },
    /// A trial's result was rejected because the trial had been finished by someone
    /// else meanwhile, usually a stale-heartbeat sweep after this worker's heartbeats
    /// failed. The result is not stored; this error says what it was.
    #[error(
        "trial {trial_id} was already {state:?} when its result ({result}) arrived; \
         the result is not stored{}",
        heartbeat_cause(heartbeat_error)
    )]
    TrialReaped {
        /// Trial id.
        trial_id: u64,
        /// The state someone else gave it.
        state: crate::TrialState,
        /// The result that could not be stored, as text.
        result: String,
        /// The last heartbeat failure of this trial, if a heartbeat failed.
        heartbeat_error: Option<String>,
    },
    /// Plotting failed.
    #[cfg(feature = "plot")]
    #[error("plot failed: {0}")]
    Plot(String),
}

fn heartbeat_cause(e: &Option<String>) -> String {
    e.as_ref()
        .map(|e| format!(" (its last heartbeat failed: {e})"))
        .unwrap_or_default()
}

impl TuningError {
    /// Whether retrying the same operation may succeed: I/O errors, and PostgreSQL
    /// errors of the connection (no SQLSTATE, class 08), serialisation failures and
    /// deadlocks (40001, 40P01), and a server shutting down or starting (57P01-57P03).
    pub fn is_transient(&self) -> bool {
        match self {
            TuningError::Io { .. } => true,
            #[cfg(feature = "postgres")]
            TuningError::Postgres { code, .. } => match code.as_deref() {
                None => true,
                Some(c) => {
                    c.starts_with("08")
                        || matches!(c, "40001" | "40P01" | "57P01" | "57P02" | "57P03")
                }
            },
            _ => false,
        }
    }
}

/// ` (SQLSTATE 40P01)` after a server's message; nothing for the driver's own errors.
#[cfg(feature = "postgres")]
fn sqlstate(code: &Option<String>) -> String {
    code.as_ref()
        .map(|c| format!(" (SQLSTATE {c})"))
        .unwrap_or_default()
}

/// `Result` with this crate's [`TuningError`].
pub type Result<T, E = TuningError> = std::result::Result<T, E>;

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn postgres_errors_name_the_operation_and_the_sqlstate() {
        let server = TuningError::Postgres {
            operation: "finish trial",
            code: Some("40P01".into()),
            message: "deadlock detected".into(),
        };
        assert_eq!(
            server.to_string(),
            "PostgreSQL finish trial failed: deadlock detected (SQLSTATE 40P01)"
        );
        let driver = TuningError::Postgres {
            operation: "connect",
            code: None,
            message: "error connecting to server".into(),
        };
        assert_eq!(
            driver.to_string(),
            "PostgreSQL connect failed: error connecting to server"
        );
    }
}
