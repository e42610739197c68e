//! Random Forest classifier: parameters, fitting and prediction.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::binned::BinnedSamples;
use crate::binning::{Binned, bin_matrix};
use crate::error::{ForestError, Result, invalid};
use crate::grow::{Criterion, GrowLimits, Shared, grow_tree};
use crate::labels::{EncodedLabels, Labels, encode_labels};
use crate::predict::{for_each_leaf_in_forest, for_row_tasks, for_row_tasks_indexed};
use crate::rng::{TreeRng, below, tree_rng, unit_f64};
use crate::samples::{Samples, check_predict_x, check_row, check_training_x};
use crate::shap::TreeCovers;
use crate::tree::{ClassTree, decode_pair, find_leaf4};

/// How many features each split considers (scikit-learn's `max_features`).
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MaxFeatures {
    /// `max(1, floor(sqrt(n_features)))` (the classifier default).
    #[default]
    Sqrt,
    /// `max(1, floor(log2(n_features)))`.
    Log2,
    /// `max(1, floor(fraction * n_features))`, fraction in `(0, 1]`.
    Fraction(f64),
    /// Exactly this many, between 1 and `n_features`.
    Count(usize),
    /// Every feature (plain bagging).
    All,
}

impl MaxFeatures {
    /// The number of features for a data set with `n_features` columns.
    pub fn resolve(self, n_features: usize) -> Result<usize> {
        let n = n_features as f64;
        let k = match self {
            MaxFeatures::Sqrt => n.sqrt().floor() as usize,
            MaxFeatures::Log2 => n.log2().floor() as usize,
            MaxFeatures::Fraction(f) => (f * n).floor() as usize,
            MaxFeatures::Count(c) => {
                if c > n_features {
                    return Err(invalid(
                        "max_features",
                        format!("Count({c})"),
                        "must not exceed the number of features in x",
                    ));
                }
                c
            }
            MaxFeatures::All => n_features,
        };
        Ok(k.clamp(1, n_features.max(1)))
    }

    fn validate(self, name: &'static str) -> Result<()> {
        match self {
            MaxFeatures::Count(0) => Err(invalid(name, "Count(0)", "must be at least 1")),
            MaxFeatures::Fraction(f) if !(f > 0.0 && f <= 1.0) => Err(invalid(
                name,
                format!("Fraction({f})"),
                "fraction must be in (0, 1]",
            )),
            _ => Ok(()),
        }
    }
}

/// How many rows each tree's bootstrap sample draws (scikit-learn's `max_samples`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MaxSamples {
    /// `max(1, round(fraction * n_rows))`, fraction in `(0, 1]`.
    Fraction(f64),
    /// Exactly this many, between 1 and `n_rows`.
    Count(usize),
}

/// Class weights (scikit-learn's `class_weight`).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClassWeight {
    /// Every class weighs 1.
    #[default]
    Uniform,
    /// `n_rows / (n_classes * count(class))` over the whole training set.
    Balanced,
    /// As `Balanced`, computed on each tree's bootstrap sample.
    BalancedSubsample,
    /// `(label, weight)` pairs; labels not listed weigh 1.
    Explicit(Vec<(usize, f64)>),
}

/// Random Forest hyper-parameters, with scikit-learn's meanings and defaults.
///
/// ```
/// use vigil_forest::{RandomForestParams, MaxFeatures};
/// let params = RandomForestParams { n_estimators: 50, max_depth: Some(8), max_features: MaxFeatures::Log2, ..Default::default() };
/// assert!(params.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomForestParams {
    /// Number of trees (default 100).
    pub n_estimators: usize,
    /// Maximum depth (root = 0); `None` grows until leaves are pure (default).
    pub max_depth: Option<usize>,
    /// Minimum rows in a node to split it (default 2).
    pub min_samples_split: usize,
    /// Minimum rows in each child of a split (default 1).
    pub min_samples_leaf: usize,
    /// Features tried per split (default [`MaxFeatures::Sqrt`]).
    pub max_features: MaxFeatures,
    /// Impurity measure (default Gini).
    pub criterion: Criterion,
    /// Whether each tree sees a bootstrap sample (default true) or all rows.
    pub bootstrap: bool,
    /// Rows per bootstrap sample; `None` = as many as the training set (default).
    pub max_samples: Option<MaxSamples>,
    /// Class weights (default uniform).
    pub class_weight: ClassWeight,
    /// A split must decrease weighted impurity by at least this much (default 0).
    pub min_impurity_decrease: f64,
    /// Compute the out-of-bag accuracy after fitting (default false; needs `bootstrap`).
    pub oob_score: bool,
    /// Seed: the same seed gives a bit-identical forest on any number of threads.
    pub seed: u64,
}

impl Default for RandomForestParams {
    fn default() -> Self {
        RandomForestParams {
            n_estimators: 100,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Sqrt,
            criterion: Criterion::Gini,
            bootstrap: true,
            max_samples: None,
            class_weight: ClassWeight::Uniform,
            min_impurity_decrease: 0.0,
            oob_score: false,
            seed: 0,
        }
    }
}

/// Progress of a fit: trees finished so far and in total. Called from worker
/// threads, in completion order.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

impl RandomForestParams {
    /// Checks every parameter on its own (data-dependent checks happen in `fit`).
    pub fn validate(&self) -> Result<()> {
        if self.n_estimators == 0 {
            return Err(invalid("n_estimators", 0, "must be at least 1"));
        }
        if self.max_depth == Some(0) {
            return Err(invalid(
                "max_depth",
                0,
                "must be at least 1 (or None for unlimited)",
            ));
        }
        if self.min_samples_split < 2 {
            return Err(invalid(
                "min_samples_split",
                self.min_samples_split,
                "must be at least 2",
            ));
        }
        if self.min_samples_leaf == 0 {
            return Err(invalid("min_samples_leaf", 0, "must be at least 1"));
        }
        self.max_features.validate("max_features")?;
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
            Some(_) if !self.bootstrap => {
                return Err(invalid(
                    "max_samples",
                    format!("{:?}", self.max_samples),
                    "needs bootstrap = true",
                ));
            }
            _ => {}
        }
        if !(self.min_impurity_decrease >= 0.0 && self.min_impurity_decrease.is_finite()) {
            return Err(invalid(
                "min_impurity_decrease",
                self.min_impurity_decrease,
                "must be finite and >= 0",
            ));
        }
        if self.oob_score && !self.bootstrap {
            return Err(invalid(
                "oob_score",
                true,
                "out-of-bag estimates need bootstrap = true",
            ));
        }
        if let ClassWeight::Explicit(pairs) = &self.class_weight
            && let Some((label, w)) = pairs.iter().find(|(_, w)| !(w.is_finite() && *w >= 0.0))
        {
            return Err(invalid(
                "class_weight",
                format!("{label} => {w}"),
                "weights must be finite and >= 0",
            ));
        }
        Ok(())
    }

    /// Fits a forest on `x` (rows × features; NaN = missing) and class labels `y`
    /// (any integer type, `bool` or whole `f64`s: see [`Labels`]).
    pub fn fit<'a, L: Labels + ?Sized>(
        &self,
        x: impl Into<Samples<'a>>,
        y: &L,
    ) -> Result<RandomForest> {
        self.fit_with_progress(x, y, &|_, _| {})
    }

    /// As [`fit`](Self::fit), calling `progress(done, total)` as each tree finishes.
    pub fn fit_with_progress<'a, L: Labels + ?Sized>(
        &self,
        x: impl Into<Samples<'a>>,
        y: &L,
        progress: Progress<'_>,
    ) -> Result<RandomForest> {
        let x = x.into();
        self.validate()?;
        check_training_x(&x)?;
        let labels = y.to_usize_labels()?;
        let x = x.view();
        let binned = bin_matrix(&x, self.seed);
        // Small nodes split on raw values (see `grow`): a row-major view of them.
        let copy: Vec<f64>;
        let raw = match x.as_slice() {
            Some(s) => s,
            None => {
                copy = x.iter().copied().collect();
                &copy
            }
        };
        let mut model = self.fit_codes(&binned, Some(raw), &labels, None, progress)?;
        if self.oob_score {
            let bags = model.in_bag.take().unwrap_or_default();
            let bags: Vec<&[u64]> = bags.iter().map(Vec::as_slice).collect();
            let (score, decision) = model.forest.oob(&x, &labels, &bags);
            model.forest.oob_score = score;
            model.forest.oob_decision_function = Some(decision);
        }
        Ok(model.forest)
    }

    /// Fits a forest on bin codes (see [`BinnedSamples`]) and labels `y`, with
    /// optional per-row `weights`: each tree's bootstrap then draws row `r` with
    /// probability `weights[r] / sum(weights)`, so a row of weight 10 counts, in
    /// expectation, as ten rows of weight 1 (what negative downsampling needs to
    /// keep probabilities calibrated). Every node splits on bins, so the forest
    /// depends only on the codes, the labels, the weights and the parameters,
    /// not on how the codes were built. Errors as [`fit`](Self::fit), and:
    /// `weights` of another length than the rows, negative, non-finite or all
    /// zero, weights without `bootstrap`, `oob_score` (it needs the raw rows).
    pub fn fit_binned<L: Labels + ?Sized>(
        &self,
        x: &BinnedSamples,
        y: &L,
        weights: Option<&[f64]>,
        progress: Progress<'_>,
    ) -> Result<RandomForest> {
        self.validate()?;
        if self.oob_score {
            return Err(invalid(
                "oob_score",
                true,
                "out-of-bag scores need the raw rows; fit_binned has only their codes",
            ));
        }
        let binned = &x.binned;
        if binned.n_rows == 0 || binned.n_features == 0 {
            return Err(ForestError::EmptyData {
                rows: binned.n_rows,
                columns: binned.n_features,
            });
        }
        let labels = y.to_usize_labels()?;
        if let Some(w) = weights {
            self.check_weights(w, binned.n_rows)?;
        }
        Ok(self
            .fit_codes(binned, None, &labels, weights, progress)?
            .forest)
    }

    /// Checks sample weights: one per row, finite, non-negative, not all zero,
    /// and a bootstrap to draw by them.
    fn check_weights(&self, weights: &[f64], n_rows: usize) -> Result<()> {
        if weights.len() != n_rows {
            return Err(invalid(
                "weights",
                format!("{} weights for {n_rows} rows", weights.len()),
                "give one weight per row",
            ));
        }
        if let Some((i, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(invalid(
                "weights",
                format!("weights[{i}] = {w}"),
                "weights must be finite and >= 0",
            ));
        }
        if weights.iter().all(|&w| w == 0.0) {
            return Err(invalid(
                "weights",
                "all 0",
                "at least one weight must be > 0",
            ));
        }
        if !self.bootstrap {
            return Err(invalid(
                "weights",
                "given with bootstrap = false",
                "sample weights are applied through the bootstrap draw; set bootstrap = true",
            ));
        }
        Ok(())
    }

    /// Grows the forest on binned rows (`raw` for exact splits of small nodes).
    fn fit_codes(
        &self,
        binned: &Binned,
        raw: Option<&[f64]>,
        labels: &[usize],
        weights: Option<&[f64]>,
        progress: Progress<'_>,
    ) -> Result<Fitted> {
        let (n_rows, n_features) = (binned.n_rows, binned.n_features);
        let enc = encode_labels(labels, n_rows)?;
        let mtry = self.max_features.resolve(n_features)?;
        let n_boot = self.bootstrap_rows(n_rows)?;
        let base_weight = self.class_weights(&enc, n_rows);
        let cumulative = weights.map(cumulative_weights);
        let shared = Shared {
            binned,
            raw,
            y: &enc.y,
            n_classes: enc.classes.len(),
            limits: GrowLimits {
                max_depth: self.max_depth.unwrap_or(usize::MAX),
                min_samples_split: self.min_samples_split,
                min_samples_leaf: self.min_samples_leaf,
                mtry,
                criterion: self.criterion,
                min_impurity_decrease: self.min_impurity_decrease,
            },
        };
        let draw = Draw {
            n_boot,
            base_weight: &base_weight,
            cumulative: cumulative.as_deref(),
        };
        let grown = self.grow_trees(&shared, &draw, progress);
        let importances = normalised_importances(
            grown.iter().map(|g| (&g.tree, g.importances.as_slice())),
            n_features,
        );
        let k = enc.classes.len();
        let covers = grown
            .iter()
            .map(|g| TreeCovers::of_class_tree(&g.tree, g.covers.clone(), n_features, k))
            .collect();
        let forest = RandomForest {
            n_features,
            classes: enc.classes,
            trees: grown.iter().map(|g| g.tree.clone()).collect(),
            covers: Some(covers),
            feature_importances: importances,
            oob_score: None,
            oob_decision_function: None,
        };
        let in_bag = self
            .oob_score
            .then(|| grown.into_iter().filter_map(|g| g.in_bag).collect());
        Ok(Fitted { forest, in_bag })
    }

    /// Rows each tree's bootstrap sample draws from a training set of `n_rows`.
    fn bootstrap_rows(&self, n_rows: usize) -> Result<usize> {
        Ok(match self.max_samples {
            None => n_rows,
            Some(MaxSamples::Fraction(f)) => ((f * n_rows as f64).round() as usize).max(1),
            Some(MaxSamples::Count(c)) => {
                if c > n_rows {
                    return Err(invalid(
                        "max_samples",
                        format!("Count({c})"),
                        "must not exceed the number of rows in x",
                    ));
                }
                c
            }
        })
    }

    /// The weight of each class (by class index) before any per-tree balancing.
    fn class_weights(&self, enc: &EncodedLabels, n_rows: usize) -> Vec<f64> {
        let k = enc.classes.len();
        match &self.class_weight {
            ClassWeight::Uniform | ClassWeight::BalancedSubsample => vec![1.0; k],
            ClassWeight::Balanced => {
                let mut class_counts = vec![0usize; k];
                for &c in &enc.y {
                    class_counts[c as usize] += 1;
                }
                class_counts
                    .iter()
                    .map(|&c| n_rows as f64 / (k as f64 * c as f64))
                    .collect()
            }
            ClassWeight::Explicit(pairs) => enc
                .classes
                .iter()
                .map(|c| {
                    pairs
                        .iter()
                        .rev()
                        .find(|(l, _)| l == c)
                        .map_or(1.0, |(_, w)| *w)
                })
                .collect(),
        }
    }

    /// Grows every tree in parallel (tree `t` from its own seeded generator, so the
    /// forest does not depend on the thread count), in tree order.
    fn grow_trees(
        &self,
        shared: &Shared<'_>,
        draw: &Draw<'_>,
        progress: Progress<'_>,
    ) -> Vec<GrownTree> {
        let n_rows = shared.y.len();
        let done = AtomicUsize::new(0);
        let total = self.n_estimators;
        (0..total)
            .into_par_iter()
            .map(|t| {
                let mut rng = tree_rng(self.seed, 1, t);
                let (rows, yc, cw) = self.sample(shared, draw, &mut rng);
                let in_bag = self.oob_score.then(|| {
                    let mut bits = vec![0u64; n_rows.div_ceil(64)];
                    for &r in &rows {
                        bits[r as usize / 64] |= 1 << (r % 64);
                    }
                    bits
                });
                let g = grow_tree(shared, rows, yc, &cw, &mut rng);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                GrownTree {
                    tree: g.tree,
                    importances: g.importances,
                    covers: g.covers,
                    in_bag,
                }
            })
            .collect()
    }

    /// One tree's in-bag rows (ascending), packed `(count << 32) | class`, and the
    /// class weights it uses.
    fn sample(
        &self,
        shared: &Shared<'_>,
        draw: &Draw<'_>,
        rng: &mut TreeRng,
    ) -> (Vec<u32>, Vec<u64>, Vec<f64>) {
        let n = shared.y.len();
        let k = shared.n_classes;
        let base_weight = draw.base_weight;
        let mut counts = vec![0u32; n];
        if let (true, Some(cumulative)) = (self.bootstrap, draw.cumulative) {
            for _ in 0..draw.n_boot {
                counts[weighted_draw(cumulative, rng)] += 1;
            }
        } else if self.bootstrap {
            for _ in 0..draw.n_boot {
                counts[below(rng, n)] += 1;
            }
        } else {
            counts.iter_mut().for_each(|c| *c = 1);
        }
        let in_bag = counts.iter().filter(|&&c| c > 0).count();
        let mut rows = Vec::with_capacity(in_bag);
        let mut yc = Vec::with_capacity(in_bag);
        let mut class_n = vec![0u64; k];
        for (r, &c) in counts.iter().enumerate() {
            if c > 0 {
                let y = shared.y[r];
                rows.push(r as u32);
                yc.push((u64::from(c) << 32) | u64::from(y));
                class_n[y as usize] += u64::from(c);
            }
        }
        let cw = if self.class_weight == ClassWeight::BalancedSubsample {
            let total: u64 = class_n.iter().sum();
            class_n
                .iter()
                .map(|&c| {
                    if c > 0 {
                        total as f64 / (k as f64 * c as f64)
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            base_weight.to_vec()
        };
        (rows, yc, cw)
    }
}

/// How each tree's bootstrap sample is drawn.
struct Draw<'a> {
    /// Rows drawn per tree.
    n_boot: usize,
    /// The weight of each class before per-tree balancing.
    base_weight: &'a [f64],
    /// Running sums of the sample weights, when there are any.
    cumulative: Option<&'a [f64]>,
}

/// A forest and, with `oob_score`, each tree's in-bag bits.
struct Fitted {
    forest: RandomForest,
    in_bag: Option<Vec<Vec<u64>>>,
}

/// Running sums of `weights` (the last is their total).
fn cumulative_weights(weights: &[f64]) -> Vec<f64> {
    let mut sum = 0.0;
    weights
        .iter()
        .map(|w| {
            sum += w;
            sum
        })
        .collect()
}

/// A row drawn with probability proportional to its weight: the first row whose
/// running sum exceeds a uniform draw below the total (zero-weight rows are never drawn).
fn weighted_draw(cumulative: &[f64], rng: &mut TreeRng) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let u = unit_f64(rng) * total;
    cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len().saturating_sub(1))
}

/// One fitted tree with what the forest still needs from its fit.
struct GrownTree {
    tree: ClassTree,
    /// Raw impurity decrease per feature.
    importances: Vec<f64>,
    /// Each node's cover.
    covers: Vec<f64>,
    /// Bit `r` set when training row `r` is in the tree's sample (with `oob_score`).
    in_bag: Option<Vec<u64>>,
}

/// scikit-learn's `feature_importances_`: each tree's impurity decreases normalised
/// to sum 1, averaged over the trees that split at all, normalised again.
fn normalised_importances<'a>(
    trees: impl Iterator<Item = (&'a ClassTree, &'a [f64])>,
    n_features: usize,
) -> Vec<f64> {
    let mut sum = vec![0.0; n_features];
    let mut n = 0usize;
    for (tree, imp) in trees {
        if tree.nodes.len() <= 1 {
            continue;
        }
        let total: f64 = imp.iter().sum();
        n += 1;
        if total > 0.0 {
            for (s, v) in sum.iter_mut().zip(imp) {
                *s += v / total;
            }
        }
    }
    let total: f64 = sum.iter().sum();
    if n == 0 || total <= 0.0 {
        return vec![0.0; n_features];
    }
    sum.iter().map(|v| v / total).collect()
}

/// A fitted Random Forest classifier.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomForest {
    pub(crate) n_features: usize,
    pub(crate) classes: Vec<usize>,
    pub(crate) trees: Vec<ClassTree>,
    /// Each tree's node covers, for explanations (`None` for models loaded from
    /// format version 1, which did not store them).
    pub(crate) covers: Option<Vec<TreeCovers>>,
    pub(crate) feature_importances: Vec<f64>,
    pub(crate) oob_score: Option<f64>,
    pub(crate) oob_decision_function: Option<Array2<f64>>,
}

impl RandomForest {
    /// Number of features the model was trained on.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The class labels, in the order of `predict_proba`'s columns.
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// Whether [`shap_values`](Self::shap_values) can explain this model: it
    /// stores node covers (fitted, or loaded from format version 2 or later).
    pub fn can_explain(&self) -> bool {
        self.covers.is_some()
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Total nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.trees.iter().map(|t| t.nodes.len()).sum()
    }

    /// Total leaves over all trees.
    pub fn n_leaves(&self) -> usize {
        self.trees.iter().map(ClassTree::n_leaves).sum()
    }

    /// Depth of the deepest tree.
    pub fn max_depth(&self) -> usize {
        self.trees.iter().map(ClassTree::depth).max().unwrap_or(0)
    }

    /// Impurity-based importances, normalised as scikit-learn's `feature_importances_`
    /// (sum 1 unless no tree split at all).
    pub fn feature_importances(&self) -> &[f64] {
        &self.feature_importances
    }

    /// Out-of-bag accuracy, if the forest was fitted with `oob_score = true` (rows
    /// that were in every tree's sample are left out, as in scikit-learn).
    pub fn oob_score(&self) -> Option<f64> {
        self.oob_score
    }

    /// Out-of-bag class probabilities per training row (NaN for rows never out of
    /// bag), if fitted with `oob_score = true`. Not kept by serialisation.
    pub fn oob_decision_function(&self) -> Option<&Array2<f64>> {
        self.oob_decision_function.as_ref()
    }

    /// Class probabilities for every row of `x`: rows × classes (in the order of
    /// [`classes`](Self::classes)), each row summing to 1.
    pub fn predict_proba<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Array2<f64>> {
        self.proba(&x.into())
    }

    /// The probability of `class` (a label, as in [`classes`](Self::classes)) for
    /// every row of `x`: the column of [`predict_proba`](Self::predict_proba) for
    /// that class, without its index.
    ///
    /// A class the model was not trained on is [`ForestError::UnknownClass`], even
    /// for a binary model: such a model never predicts it, and whether that means a
    /// probability of 0 or a mistake is the caller's to say.
    pub fn predict_proba_of<'a>(
        &self,
        x: impl Into<Samples<'a>>,
        class: usize,
    ) -> Result<Array1<f64>> {
        let column = self.class_index(class)?;
        Ok(self.proba(&x.into())?.column(column).to_owned())
    }

    /// [`predict_proba_of`](Self::predict_proba_of) for one row (allocates nothing
    /// for models of up to 8 classes).
    pub fn predict_proba_row_of(&self, row: &[f64], class: usize) -> Result<f64> {
        let column = self.class_index(class)?;
        let k = self.classes.len();
        let mut few = [0.0; 8];
        let mut many = Vec::new();
        let out = if k <= few.len() {
            &mut few[..k]
        } else {
            many.resize(k, 0.0);
            &mut many[..]
        };
        self.predict_proba_row_into(row, out)?;
        Ok(out[column])
    }

    /// The column of `class` in `predict_proba`.
    pub(crate) fn class_index(&self, class: usize) -> Result<usize> {
        self.classes
            .binary_search(&class)
            .map_err(|_| ForestError::UnknownClass {
                class,
                classes: self.classes.clone(),
            })
    }

    fn proba(&self, x: &Samples<'_>) -> Result<Array2<f64>> {
        check_predict_x(x, self.n_features)?;
        let x = x.view();
        let k = self.classes.len();
        let mut out = vec![0.0; x.nrows() * k];
        let scale = 1.0 / self.trees.len() as f64;
        let nf = self.n_features;
        for_row_tasks(&x, &mut out, k, |rows, out| {
            let trees = &self.trees;
            let walk_of = |t: usize| &trees[t].walk;
            if k == 2 {
                // Binary models (the common case) add a fixed-size pair: no loop
                // over classes for each of the rows × trees leaves.
                for_each_leaf_in_forest(trees.len(), walk_of, rows, nf, |t, i, payload| {
                    let (p0, p1) = if trees[t].pairs_in_walk {
                        decode_pair(payload)
                    } else {
                        let v = trees[t].values_of(payload, 2);
                        (v[0], v[1])
                    };
                    let o = &mut out[2 * i..2 * i + 2];
                    o[0] += f64::from(p0);
                    o[1] += f64::from(p1);
                });
            } else {
                for_each_leaf_in_forest(trees.len(), walk_of, rows, nf, |t, i, leaf| {
                    let out = &mut out[i * k..(i + 1) * k];
                    for (o, &v) in out.iter_mut().zip(trees[t].values_of(leaf, k)) {
                        *o += f64::from(v);
                    }
                });
            }
            out.iter_mut().for_each(|o| *o *= scale);
        });
        Array2::from_shape_vec((x.nrows(), k), out)
            .map_err(|e| ForestError::CorruptModel(e.to_string()))
    }

    /// Class probabilities for one row (the low-latency path for serving).
    pub fn predict_proba_row(&self, row: &[f64]) -> Result<Vec<f64>> {
        let mut out = vec![0.0; self.classes.len()];
        self.predict_proba_row_into(row, &mut out)?;
        Ok(out)
    }

    /// As [`predict_proba_row`](Self::predict_proba_row), writing into `out`
    /// (length = number of classes); allocates nothing.
    pub fn predict_proba_row_into(&self, row: &[f64], out: &mut [f64]) -> Result<()> {
        check_row(row, self.n_features)?;
        let k = self.classes.len();
        if out.len() != k {
            return Err(ForestError::BufferLength {
                expected: k,
                found: out.len(),
            });
        }
        out.iter_mut().for_each(|o| *o = 0.0);
        // Four walks at a time; the sum still runs in tree order (same bits as the
        // batch path).
        let mut groups = self.trees.chunks_exact(4);
        for g in &mut groups {
            let leaves = find_leaf4([
                (&g[0].nodes, row),
                (&g[1].nodes, row),
                (&g[2].nodes, row),
                (&g[3].nodes, row),
            ]);
            for (tree, leaf) in g.iter().zip(leaves) {
                let at = leaf.child as usize * k;
                for (o, &v) in out.iter_mut().zip(&tree.values[at..at + k]) {
                    *o += f64::from(v);
                }
            }
        }
        for tree in groups.remainder() {
            for (o, &v) in out.iter_mut().zip(tree.leaf_values(row, k)) {
                *o += f64::from(v);
            }
        }
        let scale = 1.0 / self.trees.len() as f64;
        out.iter_mut().for_each(|o| *o *= scale);
        Ok(())
    }

    /// The most probable class label of each row (ties go to the smaller label).
    pub fn predict<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Array1<usize>> {
        let p = self.proba(&x.into())?;
        Ok(p.rows()
            .into_iter()
            .map(|r| self.classes[argmax(r.as_slice().unwrap_or(&r.to_vec()))])
            .collect())
    }

    /// [`predict`](Self::predict) in the label type the model was fitted with
    /// (e.g. `u8`, as vigil-features' labels are), so predictions go next to the
    /// true labels, into vigil-metrics, without conversions. A class the type cannot
    /// hold is [`ForestError::ClassOutOfRange`].
    ///
    /// ```
    /// use ndarray::Array2;
    /// use vigil_forest::RandomForestParams;
    ///
    /// let x = Array2::from_shape_fn((100, 1), |(i, _)| i as f64);
    /// let y: Vec<u8> = (0..100).map(|i| u8::from(i >= 50)).collect();
    /// let model = RandomForestParams { n_estimators: 5, ..Default::default() }.fit(&x, &y)?;
    /// let predicted = model.predict_as::<u8>(&x)?;
    /// assert_eq!(predicted.to_vec(), y);
    /// # Ok::<(), vigil_forest::ForestError>(())
    /// ```
    pub fn predict_as<'a, L>(&self, x: impl Into<Samples<'a>>) -> Result<Array1<L>>
    where
        L: TryFrom<usize> + Copy,
    {
        let classes = self
            .classes
            .iter()
            .map(|&class| {
                L::try_from(class).map_err(|_| ForestError::ClassOutOfRange {
                    class,
                    label_type: std::any::type_name::<L>(),
                })
            })
            .collect::<Result<Vec<L>>>()?;
        let predicted = self.predict(x)?;
        let index_of = |c: usize| self.classes.binary_search(&c).unwrap_or(0);
        Ok(predicted.mapv(|c| classes[index_of(c)]))
    }

    /// Mean accuracy on `x`, `y` (what scikit-learn's `score` returns).
    pub fn score<'a, L: Labels + ?Sized>(&self, x: impl Into<Samples<'a>>, y: &L) -> Result<f64> {
        let x = x.into();
        let labels = y.to_usize_labels()?;
        let x_rows = x.view().nrows();
        if labels.len() != x_rows {
            return Err(ForestError::LengthMismatch {
                x_rows,
                y_len: labels.len(),
            });
        }
        if labels.is_empty() {
            return Err(ForestError::EmptyData {
                rows: 0,
                columns: x.view().ncols(),
            });
        }
        let pred = self.predict(x)?;
        let hits = pred
            .iter()
            .zip(labels.iter())
            .filter(|(a, b)| a == b)
            .count();
        Ok(hits as f64 / labels.len() as f64)
    }

    fn oob(
        &self,
        x: &ArrayView2<'_, f64>,
        labels: &[usize],
        in_bag: &[&[u64]],
    ) -> (Option<f64>, Array2<f64>) {
        let k = self.classes.len();
        let mut out = vec![0.0; x.nrows() * k];
        for_row_tasks_indexed(x, &mut out, k, |first, rows, out| {
            let nf = self.n_features;
            for (i, (row, o)) in rows
                .chunks_exact(nf)
                .zip(out.chunks_exact_mut(k))
                .enumerate()
            {
                let r = first + i;
                let mut n = 0usize;
                for (tree, bag) in self.trees.iter().zip(in_bag) {
                    if bag[r / 64] >> (r % 64) & 1 == 0 {
                        n += 1;
                        for (o, &v) in o.iter_mut().zip(tree.leaf_values(row, k)) {
                            *o += f64::from(v);
                        }
                    }
                }
                let scale = if n > 0 { 1.0 / n as f64 } else { f64::NAN };
                o.iter_mut().for_each(|o| *o *= scale);
            }
        });
        let (mut hits, mut n) = (0usize, 0usize);
        for (o, &label) in out.chunks_exact(k).zip(labels) {
            if !o[0].is_nan() {
                n += 1;
                hits += usize::from(self.classes[argmax(o)] == label);
            }
        }
        let score = (n > 0).then(|| hits as f64 / n as f64);
        let decision =
            Array2::from_shape_vec((x.nrows(), k), out).unwrap_or_else(|_| Array2::zeros((0, k)));
        (score, decision)
    }
}

pub(crate) fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &p) in v.iter().enumerate() {
        if p > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::BinEdges;

    /// A noisy two-class problem with NaNs and more distinct values than bins.
    fn data(rows: usize) -> (Array2<f64>, Vec<u8>) {
        let x = Array2::from_shape_fn((rows, 5), |(i, j)| {
            let v = ((i * 7919 + j * 104_729) % 10_007) as f64 / 10_007.0;
            if (i + j) % 37 == 0 { f64::NAN } else { v }
        });
        let y = x
            .rows()
            .into_iter()
            .enumerate()
            .map(|(i, r)| u8::from(r[0].max(0.0) + r[1].max(0.0) > 1.0) ^ u8::from(i % 23 == 0))
            .collect();
        (x, y)
    }

    /// Fitting the `f64` matrix with exact splits off (the same edges and
    /// codes `fit` computes, every node split on bins) is `fit_binned` on the
    /// codes of the same edges and seed: the same forest, bit for bit.
    #[test]
    fn binned_fit_is_the_matrix_fit_without_exact_splits() {
        let (x, y) = data(6000);
        let labels: Vec<usize> = y.iter().map(|&v| usize::from(v)).collect();
        let params = RandomForestParams {
            n_estimators: 12,
            seed: 5,
            ..Default::default()
        };
        let binned = bin_matrix(&x.view(), params.seed);
        let from_matrix = params
            .fit_codes(&binned, None, &labels, None, &|_, _| {})
            .unwrap()
            .forest;
        let edges = BinEdges::from_sample(&x, params.seed).unwrap();
        assert_eq!(edges.edges(0).unwrap(), binned.edges[0].as_slice());
        let codes = BinnedSamples::from_matrix(&x, edges).unwrap();
        assert_eq!(codes.binned.codes, binned.codes);
        let from_codes = params.fit_binned(&codes, &y, None, &|_, _| {}).unwrap();
        assert_eq!(from_codes.to_bytes(), from_matrix.to_bytes());
        // With exact splits (what `fit` does) the small nodes differ.
        let exact = params.fit(&x, &y).unwrap();
        assert_ne!(exact.to_bytes(), from_codes.to_bytes());
    }

    #[test]
    fn weighted_draws_follow_the_weights() {
        let cumulative = cumulative_weights(&[0.0, 1.0, 0.0, 3.0]);
        let mut rng = tree_rng(1, 2, 3);
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[weighted_draw(&cumulative, &mut rng)] += 1;
        }
        assert_eq!((counts[0], counts[2]), (0, 0));
        let share = counts[3] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "{counts:?}");
    }
}
