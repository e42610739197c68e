//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in `vigil-features`.
///
/// Every variant says which input was wrong and, where there is one, the file,
/// line and column. Messages never contain a database password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeaturesError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The CSV itself is malformed (unbalanced quotes, a row with the wrong number of fields).
    #[error("{source_name}, line {line}: malformed CSV: {message}")]
    MalformedCsv {
        /// The file name, or `<reader>` for an in-memory source.
        source_name: String,
        /// 1-based line number.
        line: u64,
        /// What the CSV parser reported.
        message: String,
    },

    /// The input holds no header or no data rows.
    #[error("{source_name}: empty input (no telemetry rows)")]
    EmptyInput {
        /// The file name, or `<reader>`, or the table name.
        source_name: String,
    },

    /// A required column is absent from the header.
    #[error(
        "{source_name}, line 1: missing required column `{column}`{}",
        suggestion.as_ref().map(|s| format!(" (found `{s}`; misspelt?)")).unwrap_or_default()
    )]
    MissingColumn {
        /// The file name, or `<reader>`.
        source_name: String,
        /// The required column.
        column: String,
        /// A header column that looks like a misspelling of it.
        suggestion: Option<String>,
    },

    /// A timestamp field is not ISO-8601.
    #[error(
        "{source_name}, line {line}, column `{column}`: cannot parse timestamp {value:?} (expected ISO-8601 such as 2026-01-01T00:00:10Z)"
    )]
    BadTimestamp {
        /// The file name, or `<reader>`.
        source_name: String,
        /// 1-based line number.
        line: u64,
        /// The column name.
        column: String,
        /// The offending text.
        value: String,
    },

    /// A sensor field is not a number.
    #[error("{source_name}, line {line}, column `{column}`: cannot parse number {value:?}")]
    BadNumber {
        /// The file name, or `<reader>`.
        source_name: String,
        /// 1-based line number.
        line: u64,
        /// The column name.
        column: String,
        /// The offending text.
        value: String,
    },

    /// A label field (`failure`, `failure_mode`) holds an unknown value.
    #[error("{source_name}, line {line}, column `{column}`: invalid label {value:?} ({expected})")]
    BadLabel {
        /// The file name, or `<reader>`.
        source_name: String,
        /// 1-based line number.
        line: u64,
        /// The column name.
        column: String,
        /// The offending text.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },

    /// Columns handed to [`TelemetryFrame::new`](crate::TelemetryFrame::new) differ in length.
    #[error("column `{column}` has {got} values, expected {expected}")]
    LengthMismatch {
        /// The column.
        column: String,
        /// The number of rows of the time column.
        expected: usize,
        /// The number of values in this column.
        got: usize,
    },

    /// A machine has a single sample: no window, difference or deviation can be formed.
    #[error(
        "machine `{machine}` has a single sample; rolling features need at least two per machine"
    )]
    SingleSampleMachine {
        /// The machine id.
        machine: String,
    },

    /// A feature window is longer than the whole time span of the data.
    #[error(
        "feature `{feature}`: window {window} is longer than the data, which spans {span_seconds} s"
    )]
    WindowLongerThanData {
        /// The feature name.
        feature: String,
        /// The window, as written in the spec (e.g. `30m`).
        window: String,
        /// The time span of the data in seconds.
        span_seconds: f64,
    },

    /// Fewer rows than training needs.
    #[error("Insufficient data for training (need at least {need} samples)")]
    InsufficientData {
        /// Rows available.
        got: usize,
        /// Rows required.
        need: usize,
    },

    /// A [`FeatureSpec`](crate::FeatureSpec) is inconsistent.
    #[error("invalid feature spec: {0}")]
    InvalidSpec(String),

    /// A sensor named by a spec is not among the data's sensor columns.
    #[error(
        "feature `{feature}` uses sensor `{sensor}`, which the data does not have (sensors: {available})"
    )]
    UnknownSensor {
        /// The feature name.
        feature: String,
        /// The sensor it needs.
        sensor: String,
        /// The sensors the data has, comma-separated.
        available: String,
    },

    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// An online sample is older than the previous one of the same machine.
    #[error(
        "machine `{machine}`: sample at {time} is older than the previous sample at {previous} (online samples must arrive in time order)"
    )]
    OutOfOrder {
        /// The machine id.
        machine: String,
        /// The previous sample's time (ISO-8601).
        previous: String,
        /// This sample's time (ISO-8601).
        time: String,
    },

    /// An online sample has the wrong number of sensor values.
    #[error("sample has {got} sensor values, the spec expects {expected} ({sensors})")]
    WrongSampleWidth {
        /// The spec's sensor count.
        expected: usize,
        /// The values given.
        got: usize,
        /// The sensor names, comma-separated.
        sensors: String,
    },

    /// An output buffer has the wrong length.
    #[error("output buffer has {got} slots, the spec yields {expected} features")]
    WrongOutputWidth {
        /// The spec's feature count.
        expected: usize,
        /// The buffer length.
        got: usize,
    },

    /// A table or column name is not a plain SQL identifier.
    #[error("invalid SQL identifier {name:?}: {reason}")]
    InvalidIdentifier {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },

    /// Database configuration is missing or malformed.
    #[error("database configuration: {0}")]
    DatabaseConfig(String),

    /// The database server could not be reached or refused the connection.
    #[error(
        "cannot connect to PostgreSQL at {host}:{port} (database `{database}`, user `{user}`): {message}"
    )]
    Connect {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// Database name.
        database: String,
        /// User name.
        user: String,
        /// The server's or driver's message, with the password scrubbed.
        message: String,
    },

    /// A database statement failed.
    #[error("PostgreSQL {operation} failed: {message}")]
    Database {
        /// What was being done (e.g. `COPY INTO telemetry`).
        operation: String,
        /// The server's message.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = FeaturesError> = std::result::Result<T, E>;
