//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2: the
//! game `shap`'s `TreeExplainer(feature_perturbation="tree_path_dependent")`
//! explains), computed in time linear in the tree size.
//!
//! # The game and how it is computed
//! A tree's value for a row with only the features in `S` known follows the row
//! at splits on features in `S` and otherwise sends it down both children, each
//! weighted by its share of the parent's cover (the training weight that reached
//! it). For one leaf, with `F` the distinct features on its path, feature `j`
//! has a *one fraction* `p_j` (1 if the row satisfies every split on `j` of the
//! path, else 0) and a *zero fraction* `q_j` (the product of the cover shares of
//! those splits); the leaf's game is `value * Π_{j∈S} p_j Π_{j∈F\S} q_j`. Its
//! Shapley value for `i ∈ F` is, by the Beta integral of the Shapley weights,
//!
//! `φ_i = value * (p_i - q_i) * ∫_0^1 Π_{j∈F, j≠i} (q_j + (p_j - q_j) t) dt`,
//!
//! a polynomial of degree `|F| - 1` in `t`, so Gauss-Legendre quadrature with
//! `ceil(D / 2)` points (`D`: the most distinct features on one path of the tree)
//! integrates it exactly. (This is the idea of Linear TreeShap, Yu et al. 2022.)
//! One depth-first walk per tree and row carries, at those points, the product
//! of the factors `q_j + (p_j - q_j) t` down the path and the sums over leaves
//! back up; at each node entered by a split on `j`, the leaves below it whose
//! last split on `j` is that one contribute to `φ_j`. That costs
//! O(nodes × points) per tree and row instead of Algorithm 2's O(leaves × D²).
//! Sums run in tree order, so results do not depend on the thread count.

use std::sync::OnceLock;

use ndarray::Array2;
use rayon::prelude::*;

use crate::error::{ForestError, Result};
use crate::isolation::IsolationForest;
use crate::random_forest::RandomForest;
use crate::samples::{Samples, check_predict_x, check_row};
use crate::tree::{ClassTree, FEATURE_MASK, MISSING_LEFT, Node};

/// SHAP values of one model output for a batch of rows.
///
/// For every row `i`, `expected_value + Σ_j values[[i, j]]` is the model's output
/// for that row (up to rounding).
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The output with no feature known: the cover-weighted mean of the output over
    /// the training data the trees saw (`shap`'s `expected_value`).
    pub expected_value: f64,
    /// `values[[i, j]]`: the contribution of feature `j` to row `i`'s output
    /// (rows × features).
    pub values: Array2<f64>,
}

/// What explaining one tree needs beyond its nodes: each node's cover and two
/// summaries derived from the covers when a model is fitted or loaded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TreeCovers {
    /// The training weight that reached each node (indexed as the tree's nodes).
    pub(crate) covers: Vec<f64>,
    /// Each node's share of its parent's cover (1 at the root): row-independent, so
    /// divided once here rather than at every edge of every row's walk.
    shares: Vec<f64>,
    /// Gauss-Legendre points the tree needs: `ceil(D / 2)`, `D` the most distinct
    /// features on one root-to-leaf path (0 for a tree that is one leaf).
    points: usize,
    /// The tree's output with no feature known, one value per output.
    expected: Vec<f64>,
}

/// A zero fraction below this counts as 0: keeps every factor at the quadrature
/// points far from underflow (changes outputs by less than 1e-250 of a leaf value).
const TINY: f64 = 1e-250;

/// The share of its parent's cover a child carries (a parent without cover, which
/// a fitted model never has, splits its weight evenly).
#[inline]
fn fraction(child: f64, parent: f64) -> f64 {
    if parent > 0.0 { child / parent } else { 0.5 }
}

impl TreeCovers {
    /// Summaries of a tree of `nodes` with these covers (one per node); `leaf(node,
    /// out)` writes a leaf's `n_out` output values.
    pub(crate) fn new(
        nodes: &[Node],
        covers: Vec<f64>,
        n_features: usize,
        n_out: usize,
        leaf: impl Fn(&Node, &mut [f64]),
    ) -> Self {
        // Children always follow their parent: one forward pass gives each node's
        // product of cover shares, and the leaves' weighted mean.
        let mut weight = vec![0.0; nodes.len()];
        let mut shares = vec![1.0; nodes.len()];
        let mut expected = vec![0.0; n_out];
        let mut value = vec![0.0; n_out];
        if let Some(w) = weight.first_mut() {
            *w = 1.0;
        }
        for (i, n) in nodes.iter().enumerate() {
            if n.is_leaf() {
                leaf(n, &mut value);
                for (e, v) in expected.iter_mut().zip(&value) {
                    *e += weight[i] * v;
                }
            } else {
                let c = n.child as usize;
                shares[c] = fraction(covers[c], covers[i]);
                shares[c + 1] = fraction(covers[c + 1], covers[i]);
                weight[c] = weight[i] * shares[c];
                weight[c + 1] = weight[i] * shares[c + 1];
            }
        }
        let distinct = most_distinct_features(nodes, n_features);
        TreeCovers {
            covers,
            shares,
            points: distinct.div_ceil(2),
            expected,
        }
    }

    /// Summaries of a classification tree (its outputs: the class probabilities).
    pub(crate) fn of_class_tree(
        tree: &ClassTree,
        covers: Vec<f64>,
        n_features: usize,
        n_classes: usize,
    ) -> Self {
        TreeCovers::new(&tree.nodes, covers, n_features, n_classes, |leaf, out| {
            for (o, &v) in out
                .iter_mut()
                .zip(tree.values_of(u64::from(leaf.child), n_classes))
            {
                *o = f64::from(v);
            }
        })
    }
}

/// Checks covers read from a file for a tree of `nodes`: one per node, finite, not
/// negative, and no child covering more than its parent.
pub(crate) fn check_covers(nodes: &[Node], covers: &[f64]) -> std::result::Result<(), String> {
    if covers.len() != nodes.len() {
        return Err(format!("{} covers for {} nodes", covers.len(), nodes.len()));
    }
    if let Some(c) = covers.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
        return Err(format!("cover {c} is not a finite non-negative weight"));
    }
    for (i, n) in nodes.iter().enumerate().filter(|(_, n)| !n.is_leaf()) {
        let c = n.child as usize;
        if covers[c] > covers[i] || covers[c + 1] > covers[i] {
            return Err(format!("node {i}: a child covers more than its parent"));
        }
    }
    Ok(())
}

/// The most distinct features on one root-to-leaf path.
fn most_distinct_features(nodes: &[Node], n_features: usize) -> usize {
    let mut count = vec![0u32; n_features];
    let (mut distinct, mut most) = (0usize, 0usize);
    let mut stack = vec![(0usize, false)];
    while let Some((i, leaving)) = stack.pop() {
        let n = nodes[i];
        if n.is_leaf() {
            most = most.max(distinct);
            continue;
        }
        let f = (n.feature & FEATURE_MASK) as usize;
        if leaving {
            count[f] -= 1;
            distinct -= usize::from(count[f] == 0);
            continue;
        }
        distinct += usize::from(count[f] == 0);
        count[f] += 1;
        let c = n.child as usize;
        stack.extend([(i, true), (c + 1, false), (c, false)]);
    }
    most
}

/// Gauss-Legendre rules on [0, 1] with 1 to [`TABLED_POINTS`] points, computed once.
const TABLED_POINTS: usize = 64;

/// A quadrature rule: points in (0, 1) and their weights (summing to 1).
#[derive(Debug)]
struct Rule {
    t: Vec<f64>,
    w: Vec<f64>,
    /// `w / (1 - t)`: with `p = 0` a factor is `q (1 - t)`, so the weights over it
    /// are these over `q`, one division instead of one per point.
    w_cold: Vec<f64>,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| (1..=TABLED_POINTS).map(gauss_legendre).collect())
}

/// The `n`-point Gauss-Legendre rule on [0, 1] (Newton's method on the Legendre
/// polynomial from the Chebyshev guesses).
fn gauss_legendre(n: usize) -> Rule {
    let (mut t, mut w) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let k = k as f64;
                let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { x } else { p1 };
            let pn_1 = if n == 1 { 1.0 } else { p0 };
            derivative = n as f64 * (x * pn - pn_1) / (x * x - 1.0);
            let step = pn / derivative;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        let weight = 2.0 / ((1.0 - x * x) * derivative * derivative);
        // x and -x, mapped to [0, 1].
        t[i] = (1.0 - x) / 2.0;
        t[n - 1 - i] = (1.0 + x) / 2.0;
        w[i] = weight / 2.0;
        w[n - 1 - i] = weight / 2.0;
    }
    let w_cold = t.iter().zip(&w).map(|(t, w)| w / (1.0 - t)).collect();
    Rule { t, w, w_cold }
}

/// One open split node of the walk.
#[derive(Clone, Copy, Debug)]
struct Frame {
    node: u32,
    /// Children visited so far (0, 1 or 2).
    next: u8,
    /// The feature this node splits on, and its fractions on the path to it.
    split: usize,
    p_split: f64,
    q_split: f64,
    /// The feature of the split that led here, its fractions before that split,
    /// and `p - q` after it.
    entered_by: usize,
    restore: (f64, f64),
    coefficient: f64,
}

/// Reusable buffers of one task's walks.
struct Scratch {
    /// `(p, q)` of every feature on the current path (1, 1 off it).
    fractions: Vec<(f64, f64)>,
    /// Per feature, `n_out × points` sums (`points`: the current tree's) over the nodes entered by a split on that
    /// feature that are nearest below the node being finished.
    nearest: Vec<f64>,
    /// Per depth: the path product without the node's split factor and the
    /// weights over its incoming factor (`points` each), its leaf sums and the
    /// saved `nearest` of its incoming feature (`n_out × points` each), laid out
    /// with the current tree's point count: offsets are then compile-time
    /// multiples in the walks of fixed point counts.
    levels: Vec<f64>,
    frames: Vec<Frame>,
    /// A child's path product and weights before it is known to be a leaf.
    product: Vec<f64>,
    weights: Vec<f64>,
    value: Vec<f64>,
    /// Outputs per leaf.
    n_out: usize,
}

impl Scratch {
    fn new(n_features: usize, points: usize, n_out: usize) -> Self {
        Scratch {
            fractions: vec![(1.0, 1.0); n_features],
            nearest: vec![0.0; n_features * points * n_out],
            levels: Vec::new(),
            frames: Vec::new(),
            product: vec![0.0; points],
            weights: vec![0.0; points],
            value: vec![0.0; n_out],
            n_out,
        }
    }
}

/// Reads a leaf's outputs.
trait Leaves: Sync {
    fn write(&self, tree: usize, leaf: &Node, out: &mut [f64]);
}

/// Some class probabilities of a Random Forest's leaves.
struct ClassLeaves<'a> {
    trees: &'a [ClassTree],
    n_classes: usize,
    /// Class indices to explain, in output order.
    outputs: &'a [usize],
}

impl Leaves for ClassLeaves<'_> {
    #[inline]
    fn write(&self, tree: usize, leaf: &Node, out: &mut [f64]) {
        let v = self.trees[tree].values_of(u64::from(leaf.child), self.n_classes);
        for (o, &c) in out.iter_mut().zip(self.outputs) {
            *o = f64::from(v[c]);
        }
    }
}

/// An Isolation Tree leaf's path length.
struct PathLengths;

impl Leaves for PathLengths {
    #[inline]
    fn write(&self, _tree: usize, leaf: &Node, out: &mut [f64]) {
        out[0] = leaf.threshold;
    }
}

#[inline]
fn goes_left(node: &Node, row: &[f64]) -> bool {
    let v = row[(node.feature & FEATURE_MASK) as usize];
    v <= node.threshold || (v.is_nan() && node.feature & MISSING_LEFT != 0)
}

/// Adds tree `t`'s SHAP values for `row` to `phi` (`n_features × n_out`, feature
/// major). `rule` has `covers.points` points; `K` is that count when it is known
/// at compile time (0 otherwise): loops of a fixed length unroll and vectorise.
#[allow(clippy::too_many_arguments)]
fn explain_tree<const K: usize, L: Leaves>(
    t: usize,
    nodes: &[Node],
    shares: &[f64],
    rule: &Rule,
    leaves: &L,
    row: &[f64],
    s: &mut Scratch,
    phi: &mut [f64],
) {
    let root = nodes[0];
    if root.is_leaf() {
        return;
    }
    let k = if K > 0 { K } else { rule.t.len() };
    let (rule_t, rule_w, rule_cold) = (&rule.t[..k], &rule.w[..k], &rule.w_cold[..k]);
    let n_out = s.n_out;
    let stride = k * n_out;
    let level_len = 2 * k + 2 * k * n_out;
    let ho = 2 * k; // leaf sums' offset in a level
    let so = ho + stride; // saved `nearest`'s offset
    if s.levels.len() < level_len {
        s.levels.resize(level_len, 0.0);
    }
    s.nearest.fill(0.0);
    let split = (root.feature & FEATURE_MASK) as usize;
    {
        let l0 = &mut s.levels[..level_len];
        l0[..k].fill(1.0);
        l0[ho..ho + stride].fill(0.0);
    }
    let (p0, q0) = s.fractions[split];
    s.frames.clear();
    s.frames.push(Frame {
        node: 0,
        next: 0,
        split,
        p_split: p0,
        q_split: q0,
        entered_by: usize::MAX,
        restore: (1.0, 1.0),
        coefficient: 0.0,
    });
    while let Some(d) = s.frames.len().checked_sub(1) {
        let top = &mut s.frames[d];
        if top.next < 2 {
            let v = top.node as usize;
            let node = nodes[v];
            let c = node.child as usize + usize::from(top.next);
            top.next += 1;
            let hot = node.child as usize + usize::from(!goes_left(&node, row));
            let p = if c == hot { top.p_split } else { 0.0 };
            let mut q = top.q_split * shares[c];
            if q < TINY {
                q = 0.0;
            }
            if p == 0.0 && q == 0.0 {
                // Every leaf below weighs 0 in every coalition.
                continue;
            }
            let (feature, restore) = (top.split, (top.p_split, top.q_split));
            let coefficient = p - q;
            let base = d * level_len;
            {
                let lv = &s.levels[base..base + level_len];
                let path = &lv[..k];
                let (weights, product) = (&mut s.weights[..k], &mut s.product[..k]);
                if p == 0.0 {
                    let inv_q = 1.0 / q;
                    for i in 0..k {
                        weights[i] = rule_cold[i] * inv_q;
                        product[i] = path[i] * (q - q * rule_t[i]);
                    }
                } else {
                    for i in 0..k {
                        let f = q + coefficient * rule_t[i];
                        weights[i] = rule_w[i] / f;
                        product[i] = path[i] * f;
                    }
                }
            }
            let child = nodes[c];
            if child.is_leaf() {
                leaves.write(t, &child, &mut s.value);
                let sigma: f64 = s.weights[..k]
                    .iter()
                    .zip(&s.product[..k])
                    .map(|(w, p)| w * p)
                    .sum();
                let (lv, nearest) = (&mut s.levels[base..base + level_len], &mut s.nearest);
                for (o, &val) in s.value.iter().enumerate() {
                    phi[feature * n_out + o] += coefficient * sigma * val;
                    let sums = &mut lv[ho + o * k..ho + o * k + k];
                    let acc = &mut nearest[feature * stride + o * k..][..k];
                    for ((h, a), &p) in sums.iter_mut().zip(acc.iter_mut()).zip(&s.product[..k]) {
                        *h += val * p;
                        *a += val * p;
                    }
                }
                continue;
            }
            // Open the child.
            s.fractions[feature] = (p, q);
            let split = (child.feature & FEATURE_MASK) as usize;
            let (ps, qs) = s.fractions[split];
            let next = base + level_len;
            if s.levels.len() < next + level_len {
                s.levels.resize(next + level_len, 0.0);
            }
            let lv = &mut s.levels[next..next + level_len];
            // The path product without the child's split factor, shared by its
            // two edges (the same bits as dividing it out at each edge).
            let (path, product) = (&mut lv[..k], &s.product[..k]);
            if ps == 1.0 && qs == 1.0 {
                // The first split on this feature along the path: its factor was 1.
                path.copy_from_slice(product);
            } else {
                for i in 0..k {
                    path[i] = product[i] * (1.0 / (qs + (ps - qs) * rule_t[i]));
                }
            }
            lv[k..k + k].copy_from_slice(&s.weights[..k]);
            // Only this tree's `k` points of each output are live (loops of a
            // fixed length, no memset calls).
            let acc = &mut s.nearest[feature * stride..(feature + 1) * stride];
            for o in 0..n_out {
                let at = o * k;
                let (sums, acc) = (&mut lv[ho + at..ho + at + k], &mut acc[at..at + k]);
                sums.iter_mut().for_each(|h| *h = 0.0);
                for i in 0..k {
                    lv[so + at + i] = acc[i];
                    acc[i] = 0.0;
                }
            }
            s.frames.push(Frame {
                node: c as u32,
                next: 0,
                split,
                p_split: ps,
                q_split: qs,
                entered_by: feature,
                restore,
                coefficient,
            });
        } else {
            let f = *top;
            s.frames.pop();
            if d == 0 {
                break;
            }
            // The leaves below whose last split on `entered_by` is the one into
            // this node: all leaves below, less those below nearer such splits.
            let j = f.entered_by;
            let (below, this) = s.levels.split_at_mut(d * level_len);
            let this = &this[..level_len];
            let parent = &mut below[(d - 1) * level_len..];
            let weights = &this[k..k + k];
            let acc = &mut s.nearest[j * stride..(j + 1) * stride];
            for o in 0..n_out {
                let at = o * k;
                let sums = &this[ho + at..ho + at + k];
                let saved = &this[so + at..so + at + k];
                let acc = &mut acc[at..at + k];
                let parent = &mut parent[ho + at..ho + at + k];
                let mut sigma = 0.0;
                for i in 0..k {
                    sigma += weights[i] * (sums[i] - acc[i]);
                    acc[i] = saved[i] + sums[i];
                    parent[i] += sums[i];
                }
                phi[j * n_out + o] += f.coefficient * sigma;
            }
            s.fractions[j] = f.restore;
        }
    }
}

/// Explains every row of `x` for `outputs.len()` outputs: writes
/// `out[(row * n_features + feature) * n_out + o]`. Rows run in parallel.
fn explain_rows<L: Leaves>(
    x: &[f64],
    n_features: usize,
    trees: &[&[Node]],
    covers: &[TreeCovers],
    leaves: &L,
    n_out: usize,
    out: &mut [f64],
) {
    let points = covers.iter().map(|c| c.points).max().unwrap_or(0).max(1);
    let owned: Vec<Rule>;
    let table: &[Rule] = if points <= TABLED_POINTS {
        rules()
    } else {
        owned = (1..=points).map(gauss_legendre).collect();
        &owned
    };
    let scale = 1.0 / trees.len() as f64;
    let width = n_features * n_out;
    // Tree `t`'s values for `row`, added to `phi` after being summed on their own:
    // every row's sums then run in the same order (tree by tree) whether its trees
    // are walked in one task or, for one row, spread over the pool.
    let one_tree = |t: usize, row: &[f64], s: &mut Scratch, tree_phi: &mut [f64]| {
        let (nodes, c) = (trees[t], &covers[t]);
        tree_phi.fill(0.0);
        if c.points == 0 {
            return;
        }
        let rule = &table[c.points - 1];
        macro_rules! fixed {
            ($($k:literal)*) => {
                match c.points {
                    $($k => explain_tree::<$k, L>(t, nodes, &c.shares, rule, leaves, row, s, tree_phi),)*
                    _ => explain_tree::<0, L>(t, nodes, &c.shares, rule, leaves, row, s, tree_phi),
                }
            };
        }
        fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    };
    let add = |phi: &mut [f64], tree_phi: &[f64]| {
        phi.iter_mut().zip(tree_phi).for_each(|(p, v)| *p += v);
    };
    if out.len() == width {
        // One row (serve's case): its trees in parallel.
        let parts: Vec<Vec<f64>> = (0..trees.len())
            .into_par_iter()
            .map_init(
                || Scratch::new(n_features, points, n_out),
                |s, t| {
                    let mut tree_phi = vec![0.0; width];
                    one_tree(t, &x[..n_features], s, &mut tree_phi);
                    tree_phi
                },
            )
            .collect();
        parts.iter().for_each(|p| add(out, p));
        out.iter_mut().for_each(|v| *v *= scale);
        return;
    }
    const TASK_ROWS: usize = 16;
    out.par_chunks_mut(width * TASK_ROWS)
        .enumerate()
        .for_each(|(task, out)| {
            let mut scratch = Scratch::new(n_features, points, n_out);
            let mut tree_phi = vec![0.0; width];
            for (i, phi) in out.chunks_exact_mut(width).enumerate() {
                let r = task * TASK_ROWS + i;
                let row = &x[r * n_features..(r + 1) * n_features];
                for t in 0..trees.len() {
                    one_tree(t, row, &mut scratch, &mut tree_phi);
                    add(phi, &tree_phi);
                }
                phi.iter_mut().for_each(|v| *v *= scale);
            }
        });
}

/// The mean over trees of each output's expected value.
fn expected_values(covers: &[TreeCovers], outputs: &[usize]) -> Vec<f64> {
    let scale = 1.0 / covers.len() as f64;
    outputs
        .iter()
        .map(|&o| covers.iter().map(|c| c.expected[o]).sum::<f64>() * scale)
        .collect()
}

/// Splits the feature-major `raw` (`n_rows × n_features × n_out`) into one
/// explanation per output.
fn split_outputs(
    raw: &[f64],
    n_rows: usize,
    n_features: usize,
    expected: Vec<f64>,
) -> Vec<Explanation> {
    let n_out = expected.len();
    expected
        .into_iter()
        .enumerate()
        .map(|(o, expected_value)| Explanation {
            expected_value,
            values: Array2::from_shape_fn((n_rows, n_features), |(i, j)| {
                raw[(i * n_features + j) * n_out + o]
            }),
        })
        .collect()
}

/// The rows of `x` as one row-major slice.
fn row_major<'a>(x: &'a ndarray::ArrayView2<'a, f64>, copy: &'a mut Vec<f64>) -> &'a [f64] {
    match x.as_slice() {
        Some(s) => s,
        None => {
            *copy = x.iter().copied().collect();
            copy
        }
    }
}

impl RandomForest {
    fn covers_or_error(&self) -> Result<&[TreeCovers]> {
        self.covers.as_deref().ok_or(ForestError::NoCovers)
    }

    fn explain<'a>(&self, x: &Samples<'a>, outputs: &[usize]) -> Result<Vec<Explanation>> {
        let covers = self.covers_or_error()?;
        check_predict_x(x, self.n_features)?;
        let view = x.view();
        let mut copy = Vec::new();
        let rows = row_major(&view, &mut copy);
        let (n_rows, nf) = (view.nrows(), self.n_features);
        let mut raw = vec![0.0; n_rows * nf * outputs.len()];
        let trees: Vec<&[Node]> = self.trees.iter().map(|t| t.nodes.as_slice()).collect();
        let leaves = ClassLeaves {
            trees: &self.trees,
            n_classes: self.classes.len(),
            outputs,
        };
        explain_rows(rows, nf, &trees, covers, &leaves, outputs.len(), &mut raw);
        Ok(split_outputs(
            &raw,
            n_rows,
            nf,
            expected_values(covers, outputs),
        ))
    }

    /// SHAP values of the probability of `class` (a label, as in
    /// [`classes`](Self::classes)) for every row of `x`: path-dependent TreeSHAP,
    /// as `shap`'s `TreeExplainer` computes it for scikit-learn's forests. Rows
    /// are explained in parallel in the caller's rayon pool.
    ///
    /// Errors: [`ForestError::UnknownClass`], [`ForestError::FeatureCountMismatch`],
    /// [`ForestError::NonFiniteFeature`] (NaN is allowed: it follows each split's
    /// missing-value side, as in prediction), and [`ForestError::NoCovers`] for a
    /// model loaded from a file of format version 1.
    pub fn shap_values<'a>(&self, x: impl Into<Samples<'a>>, class: usize) -> Result<Explanation> {
        let column = self.class_index(class)?;
        let mut all = self.explain(&x.into(), &[column])?;
        all.pop()
            .ok_or_else(|| ForestError::CorruptModel("no explanation".into()))
    }

    /// [`shap_values`](Self::shap_values) for every class at once, in the order of
    /// [`classes`](Self::classes) (one walk per tree and row serves all classes).
    pub fn shap_values_all_classes<'a>(
        &self,
        x: impl Into<Samples<'a>>,
    ) -> Result<Vec<Explanation>> {
        let outputs: Vec<usize> = (0..self.classes.len()).collect();
        self.explain(&x.into(), &outputs)
    }

    /// [`shap_values`](Self::shap_values) for one row (`values` is 1 × features).
    pub fn shap_values_row(&self, row: &[f64], class: usize) -> Result<Explanation> {
        let column = self.class_index(class)?;
        let covers = self.covers_or_error()?;
        check_row(row, self.n_features)?;
        let nf = self.n_features;
        let mut phi = vec![0.0; nf];
        let trees: Vec<&[Node]> = self.trees.iter().map(|t| t.nodes.as_slice()).collect();
        let leaves = ClassLeaves {
            trees: &self.trees,
            n_classes: self.classes.len(),
            outputs: &[column],
        };
        explain_rows(row, nf, &trees, covers, &leaves, 1, &mut phi);
        Ok(Explanation {
            expected_value: expected_values(covers, &[column])[0],
            values: Array2::from_shape_vec((1, nf), phi)
                .map_err(|e| ForestError::CorruptModel(e.to_string()))?,
        })
    }
}

impl IsolationForest {
    /// SHAP values of the mean path length `E(h(x))` over the trees for every row
    /// of `x` (see [`mean_path_length`](Self::mean_path_length)): path-dependent
    /// TreeSHAP, as `shap`'s `TreeExplainer` explains scikit-learn's Isolation
    /// Forest (each leaf's value is its depth plus `c(rows in the leaf)`, the cover
    /// of a node the subsample rows that reached it). The anomaly score
    /// `score_samples = -2^(-E(h(x)) / c(ψ))` is monotone in the path length, so a
    /// negative contribution pushes the row towards "anomalous". Rows are
    /// explained in parallel in the caller's rayon pool.
    ///
    /// Errors as [`RandomForest::shap_values`] (no class here).
    pub fn shap_values<'a>(&self, x: impl Into<Samples<'a>>) -> Result<Explanation> {
        let x = x.into();
        let covers = self.covers.as_deref().ok_or(ForestError::NoCovers)?;
        check_predict_x(&x, self.n_features)?;
        let view = x.view();
        let mut copy = Vec::new();
        let rows = row_major(&view, &mut copy);
        let (n_rows, nf) = (view.nrows(), self.n_features);
        let mut raw = vec![0.0; n_rows * nf];
        let trees: Vec<&[Node]> = self.trees.iter().map(Vec::as_slice).collect();
        explain_rows(rows, nf, &trees, covers, &PathLengths, 1, &mut raw);
        Ok(Explanation {
            expected_value: expected_values(covers, &[0])[0],
            values: Array2::from_shape_vec((n_rows, nf), raw)
                .map_err(|e| ForestError::CorruptModel(e.to_string()))?,
        })
    }

    /// [`shap_values`](Self::shap_values) for one row (`values` is 1 × features).
    pub fn shap_values_row(&self, row: &[f64]) -> Result<Explanation> {
        let covers = self.covers.as_deref().ok_or(ForestError::NoCovers)?;
        check_row(row, self.n_features)?;
        let nf = self.n_features;
        let mut phi = vec![0.0; nf];
        let trees: Vec<&[Node]> = self.trees.iter().map(Vec::as_slice).collect();
        explain_rows(row, nf, &trees, covers, &PathLengths, 1, &mut phi);
        Ok(Explanation {
            expected_value: expected_values(covers, &[0])[0],
            values: Array2::from_shape_vec((1, nf), phi)
                .map_err(|e| ForestError::CorruptModel(e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_rules_integrate_polynomials_of_degree_2n_minus_1() {
        for n in 1..=TABLED_POINTS {
            let r = &rules()[n - 1];
            for degree in 0..2 * n {
                let integral: f64 =
                    r.t.iter()
                        .zip(&r.w)
                        .map(|(t, w)| w * t.powi(degree as i32))
                        .sum();
                let exact = 1.0 / (degree as f64 + 1.0);
                assert!(
                    (integral - exact).abs() < 1e-13,
                    "n {n}, degree {degree}: {integral}"
                );
            }
            assert!(r.t.iter().all(|t| *t > 0.0 && *t < 1.0));
        }
    }
}
