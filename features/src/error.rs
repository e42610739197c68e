//! The one error type of this crate.

use std::path::PathBuf;

use crate::spec::WindowLength;
use crate::time::format_timestamp;

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
        "{source_name}, line 1: missing required column `{column}`{}; the header has {}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        describe_header(found)
    )]
    MissingColumn {
        /// The file name, or `<reader>`.
        source_name: String,
        /// The required column (for the time and machine-id columns without an
        /// explicit mapping: the canonical name, `time` or `machine_id`).
        column: String,
        /// The header that was found, trimmed, in order.
        found: Vec<String>,
        /// The header column closest to the required name (a likely misspelling).
        suggestion: Option<String>,
    },

    /// More than one header column could be the one a role needs, or one
    /// column name appears twice.
    #[error(
        "{source_name}, line 1: the {role} column is ambiguous: {}; name the one to use (CsvOptions, --time-column / --machine-column)",
        candidates.iter().map(|(i, c)| format!("`{c}` (column {i})")).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousColumn {
        /// The file name, or `<reader>`.
        source_name: String,
        /// What the column is for: `time`, `machine id` or `sensor `name``.
        role: String,
        /// The matching header columns: 1-based position and name.
        candidates: Vec<(usize, String)>,
    },

    /// [`CsvOptions`](crate::CsvOptions) map one column name to two roles.
    #[error("CSV options map column `{column}` to both {first} and {second}")]
    ColumnMappedTwice {
        /// The column name.
        column: String,
        /// Its first role (e.g. `time`).
        first: String,
        /// Its second role (e.g. `sensor`).
        second: String,
    },

    /// A CSV option is empty or malformed (e.g. an empty column name).
    #[error("invalid CSV option `{option}`: {reason}")]
    InvalidCsvOption {
        /// The option.
        option: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// A delimiter is not a single ASCII character that CSV can use.
    #[error(
        "invalid CSV delimiter {value:?}: {reason} (use one ASCII character such as `,` `;` `|`, or `tab`)"
    )]
    InvalidDelimiter {
        /// The rejected text (or byte, shown as text).
        value: String,
        /// Why.
        reason: &'static str,
    },

    /// A time format name is not one of the known ones.
    #[error("invalid time format {value:?}: {reason}")]
    InvalidTimeFormat {
        /// The rejected text.
        value: String,
        /// Why, with the accepted spellings.
        reason: String,
    },

    /// A timestamp field cannot be read in the file's time format.
    #[error(
        "{source_name}, line {line}, column `{column}`: cannot parse timestamp {value:?} (expected {expected})"
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
        /// What the time format accepts.
        expected: &'static str,
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

    /// An online sample comes after the previous admitted sample of its machine
    /// by less than the spec's `min_spacing` (an equal time is a retry, not
    /// this error); see the [admission rule](crate::FeatureSpec#sample-admission-duplicates-and-spacing).
    #[error(
        "machine `{machine}`: sample at {} is only {} after the previous sample at {}; samples must be at least {min_spacing} apart (the same time again is a retry)",
        format_timestamp(*time),
        WindowLength::from_micros(time.saturating_sub(*previous)),
        format_timestamp(*previous)
    )]
    TooClose {
        /// The machine id.
        machine: String,
        /// The previous admitted sample's time (µs since epoch UTC).
        previous: i64,
        /// This sample's time (µs since epoch UTC).
        time: i64,
        /// The spec's minimum spacing.
        min_spacing: WindowLength,
    },

    /// A sample of a batch was refused; nothing of the batch was applied.
    #[error("batch sample {index}: {source}")]
    BatchSample {
        /// The sample's 0-based position in the batch.
        index: usize,
        /// Why it was refused.
        source: Box<FeaturesError>,
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
    /// Two consecutive distinct times of a machine in a database table are
    /// closer than the spec's `min_spacing`: the SQL features
    /// ([`feature_select_sql`](crate::feature_select_sql)) would admit rows
    /// differently from the in-memory rule there.
    #[error(
        "table {table}, machine `{machine}`: samples at {} and {} are closer than min_spacing {min_spacing}; the SQL features admit rows by the previous row, the in-memory ones by the last admitted row, so they can differ (lower min_spacing or deduplicate the table)",
        format_timestamp(*previous),
        format_timestamp(*time)
    )]
    SpacingNotSqlExact {
        /// The table.
        table: String,
        /// The machine id.
        machine: String,
        /// The earlier time (µs since epoch UTC).
        previous: i64,
        /// The later time.
        time: i64,
        /// The spec's minimum spacing.
        min_spacing: WindowLength,
    },
    /// A database table lacks a column the read needs.
    #[error("table {table} has no column `{column}` (columns: {})", found.join(", "))]
    MissingTableColumn {
        /// The table.
        table: String,
        /// The missing column (a sensor, `time` or `machine_id`).
        column: String,
        /// The columns the table has, in order.
        found: Vec<String>,
    },

    /// A streamed read lost its connection or its server-side portal.
    #[error(
        "streaming {table} stopped after {rows_read} rows and {machines_done} complete machines: {message}"
    )]
    StreamInterrupted {
        /// The table.
        table: String,
        /// Rows read before the failure.
        rows_read: u64,
        /// Machines handed over complete before the failure.
        machines_done: usize,
        /// The driver's or server's message.
        message: String,
    },
}

/// `` `a`, `b`, `c` `` for a header, at most 20 names (very wide headers are cut);
/// a single column that holds a likely delimiter gets a hint.
fn describe_header(found: &[String]) -> String {
    const SHOWN: usize = 20;
    if found.is_empty() || found.iter().all(String::is_empty) {
        return "no columns".into();
    }
    let mut text: String = found
        .iter()
        .take(SHOWN)
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if found.len() > SHOWN {
        text.push_str(&format!(" and {} more", found.len() - SHOWN));
    }
    if let [only] = found
        && let Some(d) = [';', '\t', '|'].into_iter().find(|&d| only.contains(d))
    {
        let name = if d == '\t' {
            "tab".to_owned()
        } else {
            d.to_string()
        };
        text.push_str(&format!(
            " (one column: is the delimiter `{name}`? set CsvOptions::delimiter or --delimiter)"
        ));
    }
    text
}

/// Shorthand for results of this crate.
pub type Result<T, E = FeaturesError> = std::result::Result<T, E>;
