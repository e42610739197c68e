//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong when fitting, predicting with, or loading a forest.
///
/// Each variant names the input at fault and what was wrong with it, so the
/// message can be shown to a user as is.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ForestError {
    /// The training matrix has no rows or no columns.
    #[error(
        "empty training data: x has {rows} rows and {columns} feature columns; need at least 1 of each"
    )]
    EmptyData {
        /// Rows in `x`.
        rows: usize,
        /// Columns in `x`.
        columns: usize,
    },
    /// `x` and `y` disagree on the number of samples.
    #[error("x has {x_rows} rows but y has {y_len} labels; they must be equal")]
    LengthMismatch {
        /// Rows in `x`.
        x_rows: usize,
        /// Entries in `y`.
        y_len: usize,
    },
    /// Every training label is the same class: a classifier needs at least two.
    #[error("y holds a single class ({class}); a classifier needs at least two distinct labels")]
    SingleClass {
        /// The only label present.
        class: usize,
    },
    /// A label is not a usable class id (NaN, negative, fractional or too large).
    #[error("label y[{index}] = {value} is invalid: {reason}")]
    InvalidLabel {
        /// Position in `y`.
        index: usize,
        /// The offending value, as text.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A feature value is +inf or -inf (NaN is allowed and means "missing").
    ///
    /// Raw features often hold infinities (a percentage change from 0, power per
    /// speed at standstill); the message says how to replace them.
    #[error(
        "x[{row}, {column}]{} = {value} is infinite (only finite values and NaN, meaning missing, \
         are allowed): replace infinities first (vigil-features: `FeatureMatrix::sanitize` with \
         the spec's `SanitizePolicy`, or build the matrix with `TrainingSet::build`, which \
         sanitises; for one row, `OnlineFeatures::push_sanitized`)",
        named(.feature)
    )]
    NonFiniteFeature {
        /// Row of the value (0 for a single row).
        row: usize,
        /// Column of the value.
        column: usize,
        /// The column's feature name, when the caller gave names ([`Samples::named`](crate::Samples::named)).
        feature: Option<String>,
        /// The value itself.
        value: f64,
    },
    /// The data to predict on has a different number of features than the training data.
    #[error(
        "x has {found} feature columns but the model was trained on {expected}; predict on the \
         training features, in the same order"
    )]
    FeatureCountMismatch {
        /// Features the model was trained on.
        expected: usize,
        /// Features in the input.
        found: usize,
    },
    /// Feature names were given for a matrix, but not one per column.
    #[error(
        "{names} feature names for x with {columns} feature columns; give one name per column, in column order"
    )]
    FeatureNameCount {
        /// Names given.
        names: usize,
        /// Columns in `x`.
        columns: usize,
    },
    /// A class was asked for that the model was not trained on.
    #[error("class {class} is not one of the model's classes {classes:?}")]
    UnknownClass {
        /// The class asked for.
        class: usize,
        /// The model's classes (its training labels).
        classes: Vec<usize>,
    },
    /// A class that the label type asked for cannot hold.
    #[error("class {class} does not fit in the label type {label_type}")]
    ClassOutOfRange {
        /// The class.
        class: usize,
        /// The label type asked for.
        label_type: &'static str,
    },
    /// An output buffer has the wrong length.
    #[error("output buffer has length {found}, expected {expected}")]
    BufferLength {
        /// Required length.
        expected: usize,
        /// Given length.
        found: usize,
    },
    /// A hyper-parameter is out of its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name as in the params struct.
        name: &'static str,
        /// The offending value, as text.
        value: String,
        /// What the valid range is.
        reason: &'static str,
    },
    /// The data set is larger than this crate supports (row and feature indices are `u32`).
    #[error("data too large: {what} = {value} exceeds the supported maximum {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        value: usize,
        /// The limit.
        max: usize,
    },
    /// A serialised model could not be decoded at all (truncated, not a model, bad encoding).
    #[error("cannot decode {format} model: {message}")]
    Decode {
        /// `"binary"` or `"JSON"`.
        format: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// A serialised model comes from a different format version.
    #[error(
        "unsupported model format version {found} (this build reads versions {oldest} to {supported})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Oldest version this build reads.
        oldest: u32,
        /// Newest version this build reads (the one it writes).
        supported: u32,
    },
    /// A serialised model decoded but is not internally consistent (e.g. a child index
    /// out of range): it was corrupted or crafted, and is refused.
    #[error("corrupt model: {0}")]
    CorruptModel(String),
    /// A model without node covers was asked for SHAP values.
    #[error(
        "this model has no node covers (it was loaded from a file of format version 1), and SHAP \
         explanations need them: retrain it with this version (fit records them) and save it again"
    )]
    NoCovers,
    /// A serialised model is of the other kind (e.g. an Isolation Forest given to the
    /// Random Forest loader).
    #[error("model kind mismatch: expected a {expected} model, found a {found} model")]
    WrongModelKind {
        /// The kind the loader reads.
        expected: &'static str,
        /// The kind found in the file.
        found: &'static str,
    },
    /// A name to be written into an ONNX model (a feature name or the input name)
    /// would be refused by ONNX or by MLflow's column handling.
    #[error("{what} {name:?} cannot go into an ONNX model: it {reason}")]
    InvalidOnnxName {
        /// Which name (e.g. `feature name 3`, `input name`).
        what: String,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The serialised ONNX model would exceed protobuf's 2 GiB message limit.
    #[error(
        "the ONNX model would take {bytes} bytes, over protobuf's limit of {max} bytes (2 GiB); \
         export fewer or shallower trees"
    )]
    OnnxTooLarge {
        /// The model's encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A class label does not fit in ONNX's int64 class labels.
    #[error("class {class} does not fit in an ONNX int64 class label")]
    OnnxClassLabel {
        /// The class label.
        class: usize,
    },
    /// An ONNX export was asked for with neither a Random Forest nor an Isolation Forest.
    #[error("an ONNX export needs a Random Forest, an Isolation Forest or both; none was given")]
    OnnxNothingToExport,
}

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, ForestError>;

pub(crate) fn invalid(
    name: &'static str,
    value: impl std::fmt::Display,
    reason: &'static str,
) -> ForestError {
    ForestError::InvalidParameter {
        name,
        value: value.to_string(),
        reason,
    }
}

/// ` (feature `name`)` when the name is known, else nothing.
fn named(feature: &Option<String>) -> String {
    match feature {
        Some(name) => format!(" (feature `{name}`)"),
        None => String::new(),
    }
}
