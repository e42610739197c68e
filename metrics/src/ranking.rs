//! Score-based binary metrics: ROC curve, ROC-AUC (binary, partial and
//! one-vs-rest), precision–recall curve, average precision, and choosing a
//! decision threshold.
//!
//! All of them sort the scores once (radix sort on order-preserving keys,
//! positives and negatives sorted separately and in parallel) and then sweep
//! the distinct thresholds from the highest down, as scikit-learn's
//! `confusion_matrix_at_thresholds` does. Work is O(n) per radix pass.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::labels::{BinaryTarget, Label, LabelIndex, unique_sorted};
use crate::sort::{key, radix_sort, unkey};
use crate::validate::{
    check_finite, check_matrix, check_monotone, check_nonempty, check_probabilities, check_same_len,
};

/// Sorted score keys of the positive and the negative samples.
#[derive(Debug)]
struct SortedScores {
    pos: Vec<u64>,
    neg: Vec<u64>,
}

impl SortedScores {
    fn new<L: Label>(y_true: &[L], y_score: &[f64]) -> Result<Self> {
        check_same_len("y_true", y_true.len(), "y_score", y_score.len())?;
        check_nonempty("y_true", y_true.len())?;
        check_finite("y_score", y_score)?;
        let mut target = BinaryTarget::new();
        let mut pos = Vec::new();
        let mut neg = Vec::with_capacity(y_true.len());
        for (i, (&t, &s)) in y_true.iter().zip(y_score).enumerate() {
            if target.is_positive("y_true", i, t)? {
                pos.push(key(s));
            } else {
                neg.push(key(s));
            }
        }
        rayon::join(|| radix_sort(&mut pos), || radix_sort(&mut neg));
        Ok(Self { pos, neg })
    }

    /// Calls `f(fp, tp, threshold_key)` for each distinct score, from the
    /// highest down, with the cumulative counts of samples scoring at least it.
    #[inline]
    fn sweep(&self, mut f: impl FnMut(u64, u64, u64)) {
        let (pos, neg) = (&self.pos[..], &self.neg[..]);
        let (mut i, mut j) = (pos.len(), neg.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        while i > 0 || j > 0 {
            let k = match (i, j) {
                (0, _) => neg[j - 1],
                (_, 0) => pos[i - 1],
                _ => pos[i - 1].max(neg[j - 1]),
            };
            while i > 0 && pos[i - 1] == k {
                i -= 1;
                tp += 1;
            }
            while j > 0 && neg[j - 1] == k {
                j -= 1;
                fp += 1;
            }
            f(fp, tp, k);
        }
    }

    /// Materialised counts per distinct threshold (descending thresholds).
    fn counts(&self) -> ThresholdCounts {
        let cap = self.pos.len() + self.neg.len();
        let mut c = ThresholdCounts {
            fps: Vec::with_capacity(cap),
            tps: Vec::with_capacity(cap),
            thresholds: Vec::with_capacity(cap),
        };
        self.sweep(|fp, tp, k| {
            c.fps.push(fp);
            c.tps.push(tp);
            c.thresholds.push(unkey(k));
        });
        c
    }

    fn require_both_classes(&self, metric: &'static str, name: String) -> Result<()> {
        let present = match (self.pos.is_empty(), self.neg.is_empty()) {
            (false, false) => return Ok(()),
            (true, _) => "only negatives",
            (false, true) => "only positives",
        };
        Err(MetricsError::SingleClass {
            name,
            metric,
            present: present.into(),
        })
    }

    /// Exact ROC-AUC: the trapezoid area, summed in integers.
    fn auc(&self) -> f64 {
        let (n_pos, n_neg) = (self.pos.len() as u128, self.neg.len() as u128);
        let (mut prev_fp, mut prev_tp, mut area2) = (0u64, 0u64, 0u128);
        self.sweep(|fp, tp, _| {
            area2 += u128::from(fp - prev_fp) * u128::from(prev_tp + tp);
            prev_fp = fp;
            prev_tp = tp;
        });
        area2 as f64 / (2 * n_pos * n_neg) as f64
    }
}

/// Cumulative false/true positive counts at each distinct threshold,
/// thresholds descending.
#[derive(Debug)]
struct ThresholdCounts {
    fps: Vec<u64>,
    tps: Vec<u64>,
    thresholds: Vec<f64>,
}

impl ThresholdCounts {
    fn keep(&mut self, keep: &[bool]) {
        let mut idx = 0;
        self.fps.retain(|_| {
            idx += 1;
            keep[idx - 1]
        });
        idx = 0;
        self.tps.retain(|_| {
            idx += 1;
            keep[idx - 1]
        });
        idx = 0;
        self.thresholds.retain(|_| {
            idx += 1;
            keep[idx - 1]
        });
    }
}

/// A receiver operating characteristic curve.
///
/// In JSON the `+∞` first threshold is the string `"inf"` (JSON has no
/// infinity); reading a curve back checks the invariants documented on the
/// fields ([`MetricsError::InvalidRecord`] and the length and range errors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RocCurveRecord")]
pub struct RocCurve {
    /// False-positive rate at each threshold, increasing from 0 to 1.
    pub fpr: Vec<f64>,
    /// True-positive rate at each threshold, increasing from 0 to 1.
    pub tpr: Vec<f64>,
    /// Decreasing thresholds; a sample is predicted positive when its score is
    /// `>=` the threshold. The first is `+∞` (nothing predicted positive),
    /// exactly as in scikit-learn ≥ 1.3.
    #[serde(with = "crate::serde_f64::vec")]
    pub thresholds: Vec<f64>,
}

/// A [`RocCurve`] as read, before its checks.
#[derive(Deserialize)]
struct RocCurveRecord {
    fpr: Vec<f64>,
    tpr: Vec<f64>,
    #[serde(with = "crate::serde_f64::vec")]
    thresholds: Vec<f64>,
}

impl TryFrom<RocCurveRecord> for RocCurve {
    type Error = MetricsError;

    fn try_from(r: RocCurveRecord) -> Result<Self> {
        const WHAT: &str = "ROC curve";
        check_nonempty("fpr", r.fpr.len())?;
        check_same_len("fpr", r.fpr.len(), "tpr", r.tpr.len())?;
        check_same_len("fpr", r.fpr.len(), "thresholds", r.thresholds.len())?;
        check_probabilities("fpr", &r.fpr)?;
        check_probabilities("tpr", &r.tpr)?;
        check_monotone(WHAT, "fpr", &r.fpr, true)?;
        check_monotone(WHAT, "tpr", &r.tpr, true)?;
        check_monotone(WHAT, "thresholds", &r.thresholds, false)?;
        Ok(Self {
            fpr: r.fpr,
            tpr: r.tpr,
            thresholds: r.thresholds,
        })
    }
}

impl RocCurve {
    /// Area under this curve by the trapezoidal rule.
    pub fn auc(&self) -> f64 {
        trapezoid(&self.fpr, &self.tpr)
    }
}

/// Options of [`roc_curve_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RocCurveOptions {
    /// Drop thresholds that lie on a straight line between their neighbours
    /// (scikit-learn's `drop_intermediate`); the area is unchanged and plots
    /// get lighter. Default `true`.
    pub drop_intermediate: bool,
}

impl Default for RocCurveOptions {
    fn default() -> Self {
        Self {
            drop_intermediate: true,
        }
    }
}

/// ROC curve with scikit-learn's defaults (`drop_intermediate=True`).
///
/// `y_true` holds 1/`true` for positives and 0/-1/`false` for negatives.
///
/// # Errors
/// Length mismatch, empty input, non-finite scores, labels other than 0/1,
/// and [`MetricsError::SingleClass`] when `y_true` lacks positives or
/// negatives (scikit-learn returns NaN rates there).
pub fn roc_curve<L: Label>(y_true: &[L], y_score: &[f64]) -> Result<RocCurve> {
    roc_curve_with(y_true, y_score, RocCurveOptions::default())
}

/// ROC curve with explicit options. See [`roc_curve`].
///
/// # Errors
/// As [`roc_curve`].
pub fn roc_curve_with<L: Label>(
    y_true: &[L],
    y_score: &[f64],
    options: RocCurveOptions,
) -> Result<RocCurve> {
    let sorted = SortedScores::new(y_true, y_score)?;
    sorted.require_both_classes("roc_curve", "y_true".into())?;
    let mut c = sorted.counts();
    let m = c.fps.len();
    if options.drop_intermediate && m > 2 {
        // Keep a point when the second difference of fps or tps is non-zero.
        let mut keep = vec![true; m];
        for i in 1..m - 1 {
            let d2 = |v: &[u64]| v[i + 1] as i128 - 2 * v[i] as i128 + v[i - 1] as i128;
            keep[i] = d2(&c.fps) != 0 || d2(&c.tps) != 0;
        }
        c.keep(&keep);
    }
    let n_neg = *c.fps.last().unwrap_or(&0) as f64;
    let n_pos = *c.tps.last().unwrap_or(&0) as f64;
    let mut fpr = Vec::with_capacity(c.fps.len() + 1);
    let mut tpr = Vec::with_capacity(c.fps.len() + 1);
    let mut thresholds = Vec::with_capacity(c.fps.len() + 1);
    fpr.push(0.0);
    tpr.push(0.0);
    thresholds.push(f64::INFINITY);
    fpr.extend(c.fps.iter().map(|&f| f as f64 / n_neg));
    tpr.extend(c.tps.iter().map(|&t| t as f64 / n_pos));
    thresholds.extend_from_slice(&c.thresholds);
    Ok(RocCurve {
        fpr,
        tpr,
        thresholds,
    })
}

/// Area under the ROC curve (`roc_auc_score` for binary targets).
///
/// Ties are handled exactly: the area is summed in integer arithmetic, so it
/// equals the Mann–Whitney U statistic with ties counted one half, divided by
/// `n_pos · n_neg`.
///
/// # Errors
/// As [`roc_curve`]; a single class in `y_true` is
/// [`MetricsError::SingleClass`] (scikit-learn warns and returns NaN).
pub fn roc_auc_score<L: Label>(y_true: &[L], y_score: &[f64]) -> Result<f64> {
    let sorted = SortedScores::new(y_true, y_score)?;
    sorted.require_both_classes("roc_auc_score", "y_true".into())?;
    Ok(sorted.auc())
}

/// Standardised partial ROC-AUC up to a false-positive rate `max_fpr`
/// (`roc_auc_score(max_fpr=...)`, McClish correction: 0.5 is chance, 1 perfect).
///
/// # Errors
/// As [`roc_auc_score`], plus `max_fpr` outside `(0, 1]`.
pub fn roc_auc_score_partial<L: Label>(y_true: &[L], y_score: &[f64], max_fpr: f64) -> Result<f64> {
    if !(max_fpr > 0.0 && max_fpr <= 1.0) {
        return Err(MetricsError::InvalidParameter {
            name: "max_fpr",
            reason: format!("must be in (0, 1], got {max_fpr}"),
        });
    }
    let curve = roc_curve(y_true, y_score)?;
    if max_fpr == 1.0 {
        return Ok(curve.auc());
    }
    let (fpr, tpr) = (&curve.fpr, &curve.tpr);
    // First index with fpr > max_fpr (searchsorted side="right"); fpr ends at 1.
    let stop = fpr.partition_point(|&x| x <= max_fpr);
    let (x0, x1, y0, y1) = (fpr[stop - 1], fpr[stop], tpr[stop - 1], tpr[stop]);
    let slope = (y1 - y0) / (x1 - x0);
    let y_interp = slope * (max_fpr - x0) + y0;
    let mut xs = fpr[..stop].to_vec();
    let mut ys = tpr[..stop].to_vec();
    xs.push(max_fpr);
    ys.push(y_interp);
    let partial = trapezoid(&xs, &ys);
    let min_area = 0.5 * max_fpr * max_fpr;
    let max_area = max_fpr;
    Ok(0.5 * (1.0 + (partial - min_area) / (max_area - min_area)))
}

/// Area under a curve by the trapezoidal rule, like NumPy's `trapezoid(y, x)`.
/// `x` must be sorted (either direction; a decreasing `x` gives a positive area
/// as in `sklearn.metrics.auc`).
///
/// # Errors
/// Length mismatch, fewer than two points, non-finite values, or `x` neither
/// increasing nor decreasing.
pub fn auc(x: &[f64], y: &[f64]) -> Result<f64> {
    check_same_len("x", x.len(), "y", y.len())?;
    if x.len() < 2 {
        return Err(MetricsError::InvalidParameter {
            name: "x",
            reason: format!(
                "at least 2 points are needed to compute an area, got {}",
                x.len()
            ),
        });
    }
    check_finite("x", x)?;
    check_finite("y", y)?;
    let increasing = x.windows(2).all(|w| w[1] >= w[0]);
    let decreasing = x.windows(2).all(|w| w[1] <= w[0]);
    match (increasing, decreasing) {
        (true, _) => Ok(trapezoid(x, y)),
        (false, true) => Ok(-trapezoid(x, y)),
        _ => Err(MetricsError::InvalidParameter {
            name: "x",
            reason: "x is neither increasing nor decreasing".into(),
        }),
    }
}

fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xw, yw)| (xw[1] - xw[0]) * (yw[1] + yw[0]) / 2.0)
        .sum()
}

/// How one-vs-rest scores of several classes are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OvrAverage {
    /// Unweighted mean over classes.
    Macro,
    /// Mean weighted by each class's number of true samples.
    Weighted,
}

/// One-vs-rest multi-class ROC-AUC (`roc_auc_score(multi_class="ovr")`).
///
/// `y_score` is the row-major `n_samples × n_classes` matrix of class
/// probabilities, column `j` belonging to `labels[j]`. Without `labels` the
/// columns belong to the sorted distinct labels of `y_true`. Rows must sum to 1
/// (as scikit-learn checks with `np.allclose`).
///
/// # Errors
/// Shape mismatches, non-finite scores, rows not summing to 1, labels outside
/// `labels`, and [`MetricsError::SingleClass`] for a class absent from
/// `y_true` (its AUC is undefined).
pub fn roc_auc_ovr<L: Label>(
    y_true: &[L],
    y_score: &[f64],
    labels: Option<&[L]>,
    average: OvrAverage,
) -> Result<f64> {
    ovr(y_true, y_score, labels, average, true, |sorted, class| {
        sorted.require_both_classes("roc_auc_ovr", class)?;
        Ok(sorted.auc())
    })
}

/// One-vs-rest multi-class average precision (`average_precision_score` with
/// a multi-class `y_true`). Inputs as [`roc_auc_ovr`], except that rows need
/// not sum to 1.
///
/// # Errors
/// As [`roc_auc_ovr`], without the single-class and row-sum errors.
pub fn average_precision_ovr<L: Label>(
    y_true: &[L],
    y_score: &[f64],
    labels: Option<&[L]>,
    average: OvrAverage,
) -> Result<f64> {
    ovr(y_true, y_score, labels, average, false, |sorted, _| {
        Ok(ap_from_sorted(sorted))
    })
}

fn ovr<L: Label>(
    y_true: &[L],
    y_score: &[f64],
    labels: Option<&[L]>,
    average: OvrAverage,
    check_row_sums: bool,
    metric: impl Fn(&SortedScores, String) -> Result<f64> + Sync,
) -> Result<f64> {
    use rayon::prelude::*;
    check_nonempty("y_true", y_true.len())?;
    let index = match labels {
        Some(l) => LabelIndex::new(l.to_vec())?,
        None => LabelIndex::new(unique_sorted(&[y_true]))?,
    };
    let n = y_true.len();
    let k = index.len();
    check_matrix("y_score", y_score.len(), n, k)?;
    check_finite("y_score", y_score)?;
    let encoded = index.encode("y_true", y_true)?;
    if check_row_sums {
        for (row, r) in y_score.chunks_exact(k).enumerate() {
            let sum: f64 = r.iter().sum();
            // np.allclose(1, sum): |1 - sum| <= 1e-8 + 1e-5 * |sum|.
            if (1.0 - sum).abs() > 1e-8 + 1e-5 * sum.abs() {
                return Err(MetricsError::ProbabilitiesDoNotSumToOne {
                    name: "y_score",
                    row,
                    sum,
                });
            }
        }
    }
    let scores: Vec<(f64, f64)> = (0..k)
        .into_par_iter()
        .map(|c| {
            let truth: Vec<bool> = encoded.iter().map(|&e| e as usize == c).collect();
            let column: Vec<f64> = y_score.iter().skip(c).step_by(k).copied().collect();
            let sorted = SortedScores::new(&truth, &column)?;
            let support = sorted.pos.len() as f64;
            let class = format!("y_true for class {:?}", index.labels()[c]);
            Ok((metric(&sorted, class)?, support))
        })
        .collect::<Result<_>>()?;
    Ok(match average {
        OvrAverage::Macro => scores.iter().map(|s| s.0).sum::<f64>() / k as f64,
        OvrAverage::Weighted => {
            let total: f64 = scores.iter().map(|s| s.1).sum();
            if total == 0.0 {
                0.0
            } else {
                scores
                    .iter()
                    .map(|&(s, w)| if w == 0.0 { 0.0 } else { s * w })
                    .sum::<f64>()
                    / total
            }
        }
    })
}

/// A precision–recall curve in scikit-learn's layout.
///
/// Reading a curve back (deserialising) checks the invariants documented on
/// the fields ([`MetricsError::InvalidRecord`] and the length and range errors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PrCurveRecord")]
pub struct PrCurve {
    /// Precision at each threshold (ascending thresholds), then a final 1.
    pub precision: Vec<f64>,
    /// Recall at each threshold (decreasing), then a final 0.
    pub recall: Vec<f64>,
    /// Increasing finite thresholds; one fewer than `precision` and `recall`.
    pub thresholds: Vec<f64>,
}

/// A [`PrCurve`] as read, before its checks.
#[derive(Deserialize)]
struct PrCurveRecord {
    precision: Vec<f64>,
    recall: Vec<f64>,
    thresholds: Vec<f64>,
}

impl TryFrom<PrCurveRecord> for PrCurve {
    type Error = MetricsError;

    fn try_from(r: PrCurveRecord) -> Result<Self> {
        const WHAT: &str = "precision-recall curve";
        check_nonempty("precision", r.precision.len())?;
        check_same_len("precision", r.precision.len(), "recall", r.recall.len())?;
        if r.thresholds.len() + 1 != r.precision.len() {
            return Err(MetricsError::InvalidRecord {
                what: WHAT,
                reason: format!(
                    "{} thresholds for {} points; one fewer than the points expected",
                    r.thresholds.len(),
                    r.precision.len()
                ),
            });
        }
        check_probabilities("precision", &r.precision)?;
        check_probabilities("recall", &r.recall)?;
        check_finite("thresholds", &r.thresholds)?;
        check_monotone(WHAT, "recall", &r.recall, false)?;
        check_monotone(WHAT, "thresholds", &r.thresholds, true)?;
        Ok(Self {
            precision: r.precision,
            recall: r.recall,
            thresholds: r.thresholds,
        })
    }
}

/// Options of [`precision_recall_curve_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PrCurveOptions {
    /// Drop thresholds where neither neighbour changes the true-positive
    /// count (scikit-learn's `drop_intermediate`). Default `false`.
    pub drop_intermediate: bool,
}

/// Precision–recall curve with scikit-learn's defaults.
///
/// When `y_true` holds no positives, recall is 1 everywhere, as in
/// scikit-learn.
///
/// # Errors
/// Length mismatch, empty input, non-finite scores, labels other than 0/1.
pub fn precision_recall_curve<L: Label>(y_true: &[L], y_score: &[f64]) -> Result<PrCurve> {
    precision_recall_curve_with(y_true, y_score, PrCurveOptions::default())
}

/// Precision–recall curve with explicit options. See [`precision_recall_curve`].
///
/// # Errors
/// As [`precision_recall_curve`].
pub fn precision_recall_curve_with<L: Label>(
    y_true: &[L],
    y_score: &[f64],
    options: PrCurveOptions,
) -> Result<PrCurve> {
    let sorted = SortedScores::new(y_true, y_score)?;
    if !options.drop_intermediate {
        // One sweep straight into the output (descending), then reversed.
        let n_pos = sorted.pos.len();
        let cap = n_pos + sorted.neg.len() + 1;
        let mut precision = Vec::with_capacity(cap);
        let mut recall = Vec::with_capacity(cap);
        let mut thresholds = Vec::with_capacity(cap);
        sorted.sweep(|fp, tp, k| {
            let tp_f = tp as f64;
            precision.push(tp_f / (tp_f + fp as f64));
            recall.push(if n_pos == 0 { 1.0 } else { tp_f / n_pos as f64 });
            thresholds.push(unkey(k));
        });
        precision.reverse();
        recall.reverse();
        thresholds.reverse();
        precision.push(1.0);
        recall.push(0.0);
        return Ok(PrCurve {
            precision,
            recall,
            thresholds,
        });
    }
    let mut c = sorted.counts();
    let m = c.tps.len();
    if m > 2 {
        let mut keep = vec![true; m];
        for (k, w) in keep[1..m - 1].iter_mut().zip(c.tps.windows(3)) {
            *k = w[1] != w[0] || w[2] != w[1];
        }
        c.keep(&keep);
    }
    let m = c.tps.len();
    let n_pos = *c.tps.last().unwrap_or(&0);
    let mut precision = Vec::with_capacity(m + 1);
    let mut recall = Vec::with_capacity(m + 1);
    for i in (0..m).rev() {
        let (tp, fp) = (c.tps[i] as f64, c.fps[i] as f64);
        let ps = tp + fp;
        precision.push(if ps != 0.0 { tp / ps } else { 0.0 });
        recall.push(if n_pos == 0 { 1.0 } else { tp / n_pos as f64 });
    }
    precision.push(1.0);
    recall.push(0.0);
    c.thresholds.reverse();
    Ok(PrCurve {
        precision,
        recall,
        thresholds: c.thresholds,
    })
}

fn ap_from_sorted(sorted: &SortedScores) -> f64 {
    let n_pos = sorted.pos.len() as f64;
    if sorted.pos.is_empty() {
        return 0.0;
    }
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    sorted.sweep(|fp, tp, _| {
        let recall = tp as f64 / n_pos;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    });
    ap.max(0.0)
}

/// Average precision (`average_precision_score`): the step-function integral
/// `Σ (Rₙ − Rₙ₋₁) Pₙ` of the precision–recall curve, without interpolation.
///
/// 0 when `y_true` holds no positives, as in scikit-learn.
///
/// # Errors
/// Length mismatch, empty input, non-finite scores, labels other than 0/1.
pub fn average_precision_score<L: Label>(y_true: &[L], y_score: &[f64]) -> Result<f64> {
    Ok(ap_from_sorted(&SortedScores::new(y_true, y_score)?))
}

/// A decision threshold and the scores it achieves.
///
/// Reading a choice back (deserialising) checks a finite threshold, scores in
/// `[0, 1]` and a finite `beta >= 0`, as [`PrCurve::best_fbeta`] makes them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ThresholdChoiceRecord")]
pub struct ThresholdChoice {
    /// Predict positive when `score >= threshold`.
    pub threshold: f64,
    /// The F-beta reached at this threshold.
    pub f_score: f64,
    /// Precision at this threshold.
    pub precision: f64,
    /// Recall at this threshold.
    pub recall: f64,
    /// The beta the choice maximised.
    pub beta: f64,
}

/// A [`ThresholdChoice`] as read, before its checks.
#[derive(Deserialize)]
struct ThresholdChoiceRecord {
    threshold: f64,
    f_score: f64,
    precision: f64,
    recall: f64,
    beta: f64,
}

impl TryFrom<ThresholdChoiceRecord> for ThresholdChoice {
    type Error = MetricsError;

    fn try_from(r: ThresholdChoiceRecord) -> Result<Self> {
        check_finite("threshold", &[r.threshold])?;
        check_probabilities("f_score", &[r.f_score])?;
        check_probabilities("precision", &[r.precision])?;
        check_probabilities("recall", &[r.recall])?;
        if !(r.beta.is_finite() && r.beta >= 0.0) {
            return Err(MetricsError::InvalidRecord {
                what: "threshold choice",
                reason: format!("beta must be finite and >= 0, got {}", r.beta),
            });
        }
        Ok(Self {
            threshold: r.threshold,
            f_score: r.f_score,
            precision: r.precision,
            recall: r.recall,
            beta: r.beta,
        })
    }
}

impl PrCurve {
    /// The threshold maximising F-beta along this curve
    /// (`thresholds[argmax(fbeta[:-1])]`; on ties, the lowest threshold).
    ///
    /// F-beta is `(1 + β²)·P·R / (β²·P + R)`, 0 where `P = R = 0`.
    ///
    /// # Errors
    /// [`MetricsError::InvalidParameter`] for a negative or non-finite beta;
    /// [`MetricsError::EmptyInput`] for a curve without thresholds.
    pub fn best_fbeta(&self, beta: f64) -> Result<ThresholdChoice> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(MetricsError::InvalidParameter {
                name: "beta",
                reason: format!("must be finite and >= 0, got {beta}"),
            });
        }
        let b2 = beta * beta;
        let mut best: Option<ThresholdChoice> = None;
        for (i, &threshold) in self.thresholds.iter().enumerate() {
            let (p, r) = (self.precision[i], self.recall[i]);
            let den = b2 * p + r;
            let f = if den != 0.0 {
                (1.0 + b2) * p * r / den
            } else {
                0.0
            };
            if best.is_none_or(|b| f > b.f_score) {
                best = Some(ThresholdChoice {
                    threshold,
                    f_score: f,
                    precision: p,
                    recall: r,
                    beta,
                });
            }
        }
        best.ok_or(MetricsError::EmptyInput { name: "thresholds" })
    }
}

/// The decision threshold maximising F-beta, read off the precision–recall
/// curve (see [`PrCurve::best_fbeta`]).
///
/// # Errors
/// As [`precision_recall_curve`], plus [`MetricsError::SingleClass`] when
/// `y_true` has no positives (every threshold scores 0) and an invalid beta.
pub fn best_threshold_fbeta<L: Label>(
    y_true: &[L],
    y_score: &[f64],
    beta: f64,
) -> Result<ThresholdChoice> {
    let curve = precision_recall_curve(y_true, y_score)?;
    // At the lowest threshold every sample is predicted positive, so its
    // precision is the positive rate: 0 exactly when there are no positives.
    if curve.precision[0] == 0.0 {
        return Err(MetricsError::SingleClass {
            name: "y_true".into(),
            metric: "best_threshold_fbeta",
            present: "only negatives".into(),
        });
    }
    curve.best_fbeta(beta)
}

/// The decision threshold maximising F1. See [`best_threshold_fbeta`].
///
/// # Errors
/// As [`best_threshold_fbeta`].
pub fn best_threshold_f1<L: Label>(y_true: &[L], y_score: &[f64]) -> Result<ThresholdChoice> {
    best_threshold_fbeta(y_true, y_score, 1.0)
}
