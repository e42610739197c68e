//! The one error type of this crate.

use thiserror::Error;

/// Everything that can go wrong when computing a metric or drawing a plot.
///
/// Every function in this crate validates its input and returns one of these
/// instead of panicking. The enum is `#[non_exhaustive]`: match it with a
/// wildcard arm.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricsError {
    /// Two inputs that must describe the same samples have different lengths.
    #[error("length mismatch: {left_name} has {left} elements but {right_name} has {right}")]
    LengthMismatch {
        /// Name of the first input (e.g. `"y_true"`).
        left_name: &'static str,
        /// Its length.
        left: usize,
        /// Name of the second input (e.g. `"y_score"`).
        right_name: &'static str,
        /// Its length.
        right: usize,
    },

    /// An input that needs at least one element is empty.
    #[error("{name} is empty; at least one sample is needed")]
    EmptyInput {
        /// Name of the empty input.
        name: &'static str,
    },

    /// A score or probability is NaN or infinite.
    #[error("{name}[{index}] is {value}, but only finite values are accepted")]
    NonFinite {
        /// Name of the input holding the value.
        name: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value itself (NaN or ±inf).
        value: f64,
    },

    /// A metric that compares two classes (ROC-AUC, average precision, ...)
    /// was given a `y_true` holding a single class.
    #[error(
        "only one class ({present}) is present in {name}; {metric} needs both positive and negative samples"
    )]
    SingleClass {
        /// Name of the input (`"y_true"`, or `"y_true for class 3"` for one-vs-rest).
        name: String,
        /// The metric that needs two classes.
        metric: &'static str,
        /// Which class is present.
        present: String,
    },

    /// A label is not in the label set given (or, for binary targets, not 0/1).
    #[error("{name}[{index}] = {label} is not one of the allowed labels {allowed}")]
    UnknownLabel {
        /// Name of the input holding the label.
        name: &'static str,
        /// Position of the first offending label.
        index: usize,
        /// The label, formatted.
        label: String,
        /// The allowed labels, formatted.
        allowed: String,
    },

    /// The explicit label list is unusable (empty, or with repeated labels).
    #[error("invalid label list: {reason}")]
    InvalidLabels {
        /// What is wrong with it.
        reason: String,
    },

    /// A probability lies outside `[0, 1]`.
    #[error("{name}[{index}] = {value} is not a probability in [0, 1]")]
    ProbabilityOutOfRange {
        /// Name of the input.
        name: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value.
        value: f64,
    },

    /// Rows of a class-probability matrix do not sum to one.
    #[error("row {row} of {name} sums to {sum}, but class probabilities must sum to 1")]
    ProbabilitiesDoNotSumToOne {
        /// Name of the input.
        name: &'static str,
        /// The first offending row.
        row: usize,
        /// Its sum.
        sum: f64,
    },

    /// A matrix given as a flat row-major slice has the wrong shape.
    #[error("{name} has {len} values, which is not {rows} rows of {cols} columns")]
    ShapeMismatch {
        /// Name of the input.
        name: &'static str,
        /// Number of values given.
        len: usize,
        /// Rows expected.
        rows: usize,
        /// Columns expected.
        cols: usize,
    },

    /// A parameter has a value outside its domain (e.g. a negative beta).
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// `Average::Binary` was asked for, but the targets have more than two classes.
    #[error(
        "average = Binary needs at most two classes, but the targets hold {n_classes} ({labels}); choose Micro, Macro or Weighted"
    )]
    NotBinary {
        /// How many distinct labels the inputs hold.
        n_classes: usize,
        /// Those labels, formatted.
        labels: String,
    },

    /// A value read back (deserialised) breaks an invariant that the functions
    /// building it guarantee, e.g. a ROC curve whose false-positive rates decrease.
    #[error("invalid {what}: {reason}")]
    InvalidRecord {
        /// The type read (e.g. `"ROC curve"`).
        what: &'static str,
        /// The invariant it breaks.
        reason: String,
    },

    /// An alarm policy string or value is invalid (`f1`,
    /// `false-alarm-budget=<B>` with `B >= 0`, `recall=<R>` with `R` in `[0, 1]`).
    #[error("invalid alarm policy {input:?}: {reason}")]
    InvalidAlarmPolicy {
        /// The policy as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A recall target was asked for, but no failure has a sample of its
    /// machine within the horizon before it.
    #[error(
        "no failure is observed (a sample of its machine within the horizon before it; {unobserved} failures are not), so a recall target cannot be met"
    )]
    NoObservedFailures {
        /// Failures given that had no sample in their horizon.
        unobserved: usize,
    },

    /// Drawing or encoding a plot failed.
    #[error("plot error: {0}")]
    Plot(String),

    /// Writing a plot to disk failed.
    #[error("cannot write {path}: {message}")]
    Io {
        /// The path that could not be written.
        path: String,
        /// The operating-system error.
        message: String,
    },
}

/// Shorthand for `Result<T, MetricsError>`.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;
