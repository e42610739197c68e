//! A classification report that prints like scikit-learn's
//! `classification_report` and serialises for logging.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::classification::{
    Average, PrfParams, ZeroDivision, precision_recall_fscore, precision_recall_fscore_support,
};
use crate::error::{MetricsError, Result};
use crate::labels::Label;
use crate::validate::{check_nonempty, check_probabilities, check_ratios};

/// Options of [`classification_report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportParams<L> {
    /// Classes to report and their order (default: sorted union of the labels
    /// in `y_true` and `y_pred`).
    pub labels: Option<Vec<L>>,
    /// Display names, one per class in label order (default: the labels).
    pub target_names: Option<Vec<String>>,
    /// Decimal digits when printed. Default 2, like scikit-learn.
    pub digits: usize,
    /// Value of ill-defined ratios. Default [`ZeroDivision::Zero`].
    pub zero_division: ZeroDivision,
}

impl<L> Default for ReportParams<L> {
    fn default() -> Self {
        Self {
            labels: None,
            target_names: None,
            digits: 2,
            zero_division: ZeroDivision::Zero,
        }
    }
}

/// Scores of one class (or one average) in a [`ClassificationReport`].
///
/// In JSON a NaN score ([`ZeroDivision::Nan`]) is the string `"NaN"`;
/// deserialising checks that each score is in `[0, 1]` (or NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ReportRowRecord")]
pub struct ReportRow {
    /// Class name (or `"macro avg"`, `"weighted avg"`).
    pub name: String,
    /// Precision.
    #[serde(with = "crate::serde_f64")]
    pub precision: f64,
    /// Recall.
    #[serde(with = "crate::serde_f64")]
    pub recall: f64,
    /// F1.
    #[serde(with = "crate::serde_f64")]
    pub f1_score: f64,
    /// Number of true samples.
    pub support: u64,
}

/// A [`ReportRow`] as read, before its checks.
#[derive(Deserialize)]
struct ReportRowRecord {
    name: String,
    #[serde(with = "crate::serde_f64")]
    precision: f64,
    #[serde(with = "crate::serde_f64")]
    recall: f64,
    #[serde(with = "crate::serde_f64")]
    f1_score: f64,
    support: u64,
}

impl TryFrom<ReportRowRecord> for ReportRow {
    type Error = MetricsError;

    fn try_from(r: ReportRowRecord) -> Result<Self> {
        check_ratios("precision", &[r.precision])?;
        check_ratios("recall", &[r.recall])?;
        check_ratios("f1_score", &[r.f1_score])?;
        Ok(Self {
            name: r.name,
            precision: r.precision,
            recall: r.recall,
            f1_score: r.f1_score,
            support: r.support,
        })
    }
}

/// Per-class precision, recall, F1 and support, with accuracy, macro and
/// weighted averages. `Display` prints scikit-learn's text layout;
/// `Serialize` gives a structured record for experiment tracking; reading one
/// back checks each row (see [`ReportRow`]), at least one class and an accuracy
/// in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ClassificationReportRecord")]
pub struct ClassificationReport {
    /// One row per class.
    pub classes: Vec<ReportRow>,
    /// Accuracy (equal to micro-averaged F1 here, since every sample's label
    /// is among the reported classes).
    pub accuracy: f64,
    /// Unweighted means over classes.
    pub macro_avg: ReportRow,
    /// Support-weighted means over classes.
    pub weighted_avg: ReportRow,
    /// Digits used by `Display`.
    pub digits: usize,
}

/// A [`ClassificationReport`] as read, before its checks (the rows have had theirs).
#[derive(Deserialize)]
struct ClassificationReportRecord {
    classes: Vec<ReportRow>,
    accuracy: f64,
    macro_avg: ReportRow,
    weighted_avg: ReportRow,
    digits: usize,
}

impl TryFrom<ClassificationReportRecord> for ClassificationReport {
    type Error = MetricsError;

    fn try_from(r: ClassificationReportRecord) -> Result<Self> {
        check_nonempty("classes", r.classes.len())?;
        check_probabilities("accuracy", &[r.accuracy])?;
        Ok(Self {
            classes: r.classes,
            accuracy: r.accuracy,
            macro_avg: r.macro_avg,
            weighted_avg: r.weighted_avg,
            digits: r.digits,
        })
    }
}

/// Builds a [`ClassificationReport`].
///
/// # Errors
/// Length mismatch, empty input, labels outside `params.labels`, and
/// [`MetricsError::InvalidLabels`] when `target_names` does not have one name
/// per class.
pub fn classification_report<L: Label>(
    y_true: &[L],
    y_pred: &[L],
    params: &ReportParams<L>,
) -> Result<ClassificationReport> {
    let prf = PrfParams {
        beta: 1.0,
        labels: params.labels.clone(),
        zero_division: params.zero_division,
    };
    let per_class = precision_recall_fscore_support(y_true, y_pred, &prf)?;
    let names: Vec<String> = match &params.target_names {
        Some(names) if names.len() == per_class.labels.len() => names.clone(),
        Some(names) => {
            return Err(MetricsError::InvalidLabels {
                reason: format!(
                    "{} target names given for {} classes",
                    names.len(),
                    per_class.labels.len()
                ),
            });
        }
        None => per_class
            .labels
            .iter()
            .map(|l| format!("{}", l.to_i128()))
            .collect(),
    };
    let classes: Vec<ReportRow> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| ReportRow {
            name,
            precision: per_class.precision[i],
            recall: per_class.recall[i],
            f1_score: per_class.f_score[i],
            support: per_class.support[i],
        })
        .collect();
    let total: u64 = per_class.support.iter().sum();
    let row = |name: &str, average: Average<L>| -> Result<ReportRow> {
        let s = precision_recall_fscore(y_true, y_pred, average, &prf)?;
        Ok(ReportRow {
            name: name.into(),
            precision: s.precision,
            recall: s.recall,
            f1_score: s.f_score,
            support: total,
        })
    };
    let micro = row("accuracy", Average::Micro)?;
    Ok(ClassificationReport {
        classes,
        accuracy: micro.f1_score,
        macro_avg: row("macro avg", Average::Macro)?,
        weighted_avg: row("weighted avg", Average::Weighted)?,
        digits: params.digits,
    })
}

/// Formats like Python's `format(x, ".{digits}f")` (NaN as `nan`).
fn fixed(x: f64, digits: usize) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{x:.digits$}")
    }
}

impl fmt::Display for ClassificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits;
        let name_width = self
            .classes
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0);
        let width = name_width.max("weighted avg".len()).max(d);
        writeln!(
            f,
            "{:>width$}  {:>9} {:>9} {:>9} {:>9}",
            "", "precision", "recall", "f1-score", "support"
        )?;
        writeln!(f)?;
        let row = |f: &mut fmt::Formatter<'_>, r: &ReportRow| {
            writeln!(
                f,
                "{:>width$}  {:>9} {:>9} {:>9} {:>9}",
                r.name,
                fixed(r.precision, d),
                fixed(r.recall, d),
                fixed(r.f1_score, d),
                r.support
            )
        };
        for r in &self.classes {
            row(f, r)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:>width$}  {:>9} {:>9} {:>9} {:>9}",
            "accuracy",
            "",
            "",
            fixed(self.accuracy, d),
            self.macro_avg.support
        )?;
        row(f, &self.macro_avg)?;
        row(f, &self.weighted_avg)
    }
}
