//! Isolation Forest: anomaly scores without labels, with scikit-learn's conventions.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::{Array1, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::heap::HeapForest;
use crate::predict::{for_each_leaf_in_forest, for_row_tasks};
use crate::random_forest::{MaxFeatures, MaxSamples, Progress};
use crate::rng::{TreeRng, below, tree_rng, unit_f64};
use crate::samples::{
    Samples, check_feature_count, check_finite_or_nan, check_row, check_training_x,
};
use crate::shap::TreeCovers;
use crate::tree::{MISSING_LEFT, Node, Walk, depth_of, find_leaf};

/// The share of anomalies expected in the training data (scikit-learn's `contamination`).
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Contamination {
    /// The offset is -0.5, as in the original paper (scikit-learn's default).
    #[default]
    Auto,
    /// The offset is the score quantile that marks this fraction of the training rows
    /// as anomalies; in `(0, 0.5]`.
    Fraction(f64),
}

/// Isolation Forest hyper-parameters, with scikit-learn's meanings and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestParams {
    /// Number of trees (default 100).
    pub n_estimators: usize,
    /// Rows per tree ψ; `None` = `min(256, n_rows)` (default). A count above the
    /// number of rows is capped to it.
    pub max_samples: Option<MaxSamples>,
    /// Expected share of anomalies (default [`Contamination::Auto`]).
    pub contamination: Contamination,
    /// Features each tree may split on, drawn per tree (default all).
    pub max_features: MaxFeatures,
    /// Draw each tree's rows with replacement (default false).
    pub bootstrap: bool,
    /// Seed: the same seed gives a bit-identical forest on any number of threads.
    pub seed: u64,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 100,
            max_samples: None,
            contamination: Contamination::Auto,
            max_features: MaxFeatures::All,
            bootstrap: false,
            seed: 0,
        }
    }
}

/// `c(n)`: the average path length of an unsuccessful search in a binary search
/// tree of `n` points, used to normalise depths (scikit-learn's `_average_path_length`).
pub(crate) fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

impl IsolationForestParams {
    /// Checks every parameter on its own.
    pub fn validate(&self) -> Result<()> {
        if self.n_estimators == 0 {
            return Err(invalid("n_estimators", 0, "must be at least 1"));
        }
        match self.max_samples {
            Some(MaxSamples::Fraction(f)) if !(f > 0.0 && f <= 1.0) => {
                return Err(invalid(
                    "max_samples",
                    format!("Fraction({f})"),
                    "fraction must be in (0, 1]",
                ));
            }
            Some(MaxSamples::Count(0)) => {
                return Err(invalid("max_samples", "Count(0)", "must be at least 1"));
            }
            _ => {}
        }
        if let Contamination::Fraction(c) = self.contamination
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(invalid(
                "contamination",
                c,
                "must be Auto or a fraction in (0, 0.5]",
            ));
        }
        match self.max_features {
            MaxFeatures::Count(0) => Err(invalid("max_features", "Count(0)", "must be at least 1")),
            MaxFeatures::Fraction(f) if !(f > 0.0 && f <= 1.0) => Err(invalid(
                "max_features",
                format!("Fraction({f})"),
                "fraction must be in (0, 1]",
            )),
            _ => Ok(()),
        }
    }

    /// Fits on `x` (rows × features; NaN = missing).
    pub fn fit<'a>(&self, x: impl Into<Samples<'a>>) -> Result<IsolationForest> {
        self.fit_with_progress(x, &|_, _| {})
    }

    /// As [`fit`](Self::fit), calling `progress(done, total)` as each tree finishes.
    pub fn fit_with_progress<'a>(
        &self,
        x: impl Into<Samples<'a>>,
        progress: Progress<'_>,
    ) -> Result<IsolationForest> {
        let samples = x.into();
        self.validate()?;
        check_training_x(&samples)?;
        let x = samples.view();
        let (n, n_features) = x.dim();
        let psi = match self.max_samples {
            None => n.min(256),
            Some(MaxSamples::Count(c)) => c.min(n),
            Some(MaxSamples::Fraction(f)) => ((f * n as f64) as usize).max(1),
        };
        let mtry = self.max_features.resolve(n_features)?;
        let max_depth = (psi.max(2) as f64).log2().ceil() as usize;
        let done = AtomicUsize::new(0);
        let (trees, covers): (Vec<Vec<Node>>, Vec<Vec<f64>>) = (0..self.n_estimators)
            .into_par_iter()
            .map(|t| {
                let mut rng = tree_rng(self.seed, 2, t);
                let rows = sample_rows(&mut rng, n, psi, self.bootstrap);
                let features = sample_features(&mut rng, n_features, mtry);
                let tree = build_iso_tree(&x, &rows, &features, max_depth, &mut rng);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, self.n_estimators);
                tree
            })
            .unzip();
        let covers = iso_covers(&trees, covers, n_features);
        let mut model = IsolationForest {
            n_features,
            max_samples: psi,
            scorer: Scorer::new(&trees, n_features),
            trees,
            covers: Some(covers),
            offset: -0.5,
            contamination: self.contamination,
        };
        if let Contamination::Fraction(c) = self.contamination {
            let mut scores = model.score_samples(samples)?.to_vec();
            model.offset = percentile(&mut scores, 100.0 * c);
        }
        Ok(model)
    }
}

/// numpy's default (linear) percentile.
fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let pos = q / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// ψ distinct rows (Floyd's algorithm), or ψ draws with replacement; ascending.
fn sample_rows(rng: &mut TreeRng, n: usize, psi: usize, bootstrap: bool) -> Vec<usize> {
    let mut rows: Vec<usize> = if bootstrap {
        (0..psi).map(|_| below(rng, n)).collect()
    } else if psi * 4 >= n {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..psi {
            let j = i + below(rng, n - i);
            all.swap(i, j);
        }
        all.truncate(psi);
        all
    } else {
        let mut set = std::collections::HashSet::with_capacity(psi * 2);
        let mut out = Vec::with_capacity(psi);
        for j in n - psi..n {
            let t = below(rng, j + 1);
            let pick = if set.contains(&t) { j } else { t };
            set.insert(pick);
            out.push(pick);
        }
        out
    };
    rows.sort_unstable();
    rows
}

fn sample_features(rng: &mut TreeRng, n_features: usize, mtry: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n_features).collect();
    if mtry < n_features {
        for i in 0..mtry {
            let j = i + below(rng, n_features - i);
            all.swap(i, j);
        }
        all.truncate(mtry);
        all.sort_unstable();
    }
    all
}

/// Grows one isolation tree on the sampled rows; each leaf keeps its path length
/// `depth + c(rows in leaf)` in `threshold`. Also returns each node's cover (the
/// sampled rows that reached it).
fn build_iso_tree(
    x: &ArrayView2<'_, f64>,
    rows: &[usize],
    features: &[usize],
    max_depth: usize,
    rng: &mut TreeRng,
) -> (Vec<Node>, Vec<f64>) {
    let psi = rows.len();
    // The sample, column-major over this tree's features.
    let mut local = Vec::with_capacity(psi * features.len());
    for &f in features {
        let col = x.column(f);
        local.extend(rows.iter().map(|&r| col[r]));
    }
    let mut idx: Vec<u32> = (0..psi as u32).collect();
    let mut order: Vec<usize> = (0..features.len()).collect();
    let mut nodes = vec![Node::leaf(0, 0.0)];
    let mut covers = vec![0.0];
    let mut stack = vec![(0usize, 0usize, psi, 0usize)];
    while let Some((node, start, end, depth)) = stack.pop() {
        let n = end - start;
        covers[node] = n as f64;
        let leaf = Node::leaf(0, depth as f64 + average_path_length(n));
        if depth >= max_depth || n <= 1 {
            nodes[node] = leaf;
            continue;
        }
        let ids = &idx[start..end];
        // Draw features without replacement until one varies within the node.
        let mut split = None;
        for j in 0..order.len() {
            let pick = j + below(rng, order.len() - j);
            order.swap(j, pick);
            let lf = order[j];
            let col = &local[lf * psi..(lf + 1) * psi];
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &i in ids {
                let v = col[i as usize];
                if v < lo {
                    lo = v;
                }
                if v > hi {
                    hi = v;
                }
            }
            if hi > lo {
                let mut t = lo + unit_f64(rng) * (hi - lo);
                if t >= hi {
                    t = lo;
                }
                split = Some((lf, t));
                break;
            }
        }
        let Some((lf, threshold)) = split else {
            nodes[node] = leaf;
            continue;
        };
        let col = &local[lf * psi..(lf + 1) * psi];
        // Missing values follow the side with more non-missing rows.
        let (mut n_left, mut n_right) = (0usize, 0usize);
        for &i in &idx[start..end] {
            let v = col[i as usize];
            if v <= threshold {
                n_left += 1;
            } else if v > threshold {
                n_right += 1;
            }
        }
        let missing_left = n_left >= n_right;
        let ids = &mut idx[start..end];
        let mut l = 0;
        for j in 0..ids.len() {
            let v = col[ids[j] as usize];
            if v <= threshold || (v.is_nan() && missing_left) {
                ids.swap(l, j);
                l += 1;
            }
        }
        let child = nodes.len();
        let mut feature = features[lf] as u32;
        if missing_left {
            feature |= MISSING_LEFT;
        }
        nodes[node] = Node {
            threshold,
            feature,
            child: child as u32,
        };
        nodes.push(Node::leaf(0, 0.0));
        nodes.push(Node::leaf(0, 0.0));
        covers.extend([0.0, 0.0]);
        stack.push((child + 1, start + l, end, depth + 1));
        stack.push((child, start, start + l, depth + 1));
    }
    (nodes, covers)
}

/// The explanation summaries of Isolation Trees with these covers (a leaf's value
/// is its path length).
pub(crate) fn iso_covers(
    trees: &[Vec<Node>],
    covers: Vec<Vec<f64>>,
    n_features: usize,
) -> Vec<TreeCovers> {
    trees
        .iter()
        .zip(covers)
        .map(|(nodes, covers)| {
            TreeCovers::new(nodes, covers, n_features, 1, |leaf, out| {
                out[0] = leaf.threshold;
            })
        })
        .collect()
}

/// How a fitted forest scores batches: in heap order ([`HeapForest`]) when its
/// trees are at most 8 levels deep, rows at most 64 wide and the layout at most
/// 4x the trees' node memory (the default 256 samples give such trees), else by
/// walking the nodes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scorer {
    Heap(HeapForest),
    Walks(Vec<Walk>),
}

impl Scorer {
    pub(crate) fn new(trees: &[Vec<Node>], n_features: usize) -> Self {
        let depth = trees.iter().map(|t| depth_of(t)).max().unwrap_or(0);
        match HeapForest::new(trees, depth, n_features) {
            Some(heap) => Scorer::Heap(heap),
            None => Scorer::Walks(
                trees
                    .iter()
                    .map(|t| Walk::reporting_node_index(t))
                    .collect(),
            ),
        }
    }
}

/// A fitted Isolation Forest.
#[derive(Clone, Debug, PartialEq)]
pub struct IsolationForest {
    pub(crate) n_features: usize,
    pub(crate) max_samples: usize,
    pub(crate) trees: Vec<Vec<Node>>,
    /// Each tree's node covers, for explanations (`None` for models loaded from
    /// format version 1, which did not store them).
    pub(crate) covers: Option<Vec<TreeCovers>>,
    /// The trees prepared for batch scoring.
    pub(crate) scorer: Scorer,
    pub(crate) offset: f64,
    pub(crate) contamination: Contamination,
}

impl IsolationForest {
    /// Number of features the model was trained on.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Rows each tree was grown on (ψ).
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The contamination the offset was derived from.
    pub fn contamination(&self) -> Contamination {
        self.contamination
    }

    /// scikit-learn's `offset_`: `decision_function = score_samples - offset`.
    pub fn offset(&self) -> f64 {
        self.offset
    }

    fn mean_path(&self, row: &[f64]) -> f64 {
        self.trees
            .iter()
            .map(|t| find_leaf(t, row).threshold)
            .sum::<f64>()
    }

    fn to_score(&self, path_sum: f64) -> f64 {
        let c = average_path_length(self.max_samples);
        let mean = path_sum / self.trees.len() as f64;
        // ψ = 1 leaves every path at depth 0: scikit-learn then scores 2^0.
        if c > 0.0 {
            -(2f64.powf(-mean / c))
        } else {
            -1.0
        }
    }

    /// The opposite of the anomaly score of the original paper, `-2^(-E(h)/c(ψ))`:
    /// in `[-1, 0)`, lower is more abnormal. Streams over rows.
    pub fn score_samples<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Array1<f64>> {
        self.scores(&x.into())
    }

    /// The mean path length `E(h(x))` over the trees of every row of `x` (each
    /// leaf's depth plus `c(rows in the leaf)`): what
    /// [`shap_values`](Self::shap_values) explains, and what
    /// [`score_samples`](Self::score_samples) maps to `-2^(-E(h(x)) / c(ψ))`.
    pub fn mean_path_length<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Array1<f64>> {
        let scale = 1.0 / self.trees.len() as f64;
        self.path_sums_then(&x.into(), |sum| sum * scale)
    }

    /// [`mean_path_length`](Self::mean_path_length) for one row.
    pub fn mean_path_length_row(&self, row: &[f64]) -> Result<f64> {
        check_row(row, self.n_features)?;
        Ok(self.mean_path(row) * (1.0 / self.trees.len() as f64))
    }

    fn scores(&self, samples: &Samples<'_>) -> Result<Array1<f64>> {
        self.path_sums_then(samples, |sum| self.to_score(sum))
    }

    /// Each row's sum of path lengths over the trees, mapped by `finish`.
    fn path_sums_then(
        &self,
        samples: &Samples<'_>,
        finish: impl Fn(f64) -> f64 + Sync,
    ) -> Result<Array1<f64>> {
        let nf = self.n_features;
        let x = samples.view();
        check_feature_count(&x, nf)?;
        // The heap walk finds infinities as it reads the rows (see
        // `HeapForest::add_path_lengths`); the node walk does not look, so it
        // needs the scan first.
        if matches!(self.scorer, Scorer::Walks(_)) {
            check_finite_or_nan(samples)?;
        }
        let mut out = vec![0.0; x.nrows()];
        let saw_infinity = AtomicBool::new(false);
        for_row_tasks(&x, &mut out, 1, |rows, out| {
            let trees = &self.trees;
            match &self.scorer {
                Scorer::Heap(heap) => {
                    if heap.add_path_lengths(rows, nf, out) {
                        saw_infinity.store(true, Ordering::Relaxed);
                    }
                }
                Scorer::Walks(walks) => for_each_leaf_in_forest(
                    trees.len(),
                    |t| &walks[t],
                    rows,
                    nf,
                    |t, i, leaf| {
                        out[i] += trees[t][leaf as usize].threshold;
                    },
                ),
            }
            out.iter_mut().for_each(|o| *o = finish(*o));
        });
        if saw_infinity.into_inner() {
            // Finds the first infinity and says where it is.
            check_finite_or_nan(samples)?;
        }
        Ok(Array1::from_vec(out))
    }

    /// [`score_samples`](Self::score_samples) for one row.
    pub fn score_row(&self, row: &[f64]) -> Result<f64> {
        check_row(row, self.n_features)?;
        Ok(self.to_score(self.mean_path(row)))
    }

    /// `score_samples - offset`: negative for anomalies.
    pub fn decision_function<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Array1<f64>> {
        Ok(self.scores(&x.into())? - self.offset)
    }

    /// [`decision_function`](Self::decision_function) for one row.
    pub fn decision_row(&self, row: &[f64]) -> Result<f64> {
        Ok(self.score_row(row)? - self.offset)
    }

    /// scikit-learn's labels: `-1` for anomalies, `1` for normal rows.
    pub fn predict<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Array1<i8>> {
        Ok(self
            .decision_function(x)?
            .mapv(|d| if d < 0.0 { -1 } else { 1 }))
    }

    /// `true` for anomalies: where [`predict`](Self::predict) gives `-1`
    /// (`decision_function < 0`).
    pub fn is_anomaly<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Array1<bool>> {
        Ok(self.decision_function(x)?.mapv(|d| d < 0.0))
    }

    /// [`is_anomaly`](Self::is_anomaly) for one row (the serving path).
    pub fn is_anomaly_row(&self, row: &[f64]) -> Result<bool> {
        Ok(self.decision_row(row)? < 0.0)
    }
}
