//! Growing one classification tree on binned data: the hot loop of Random Forest fit.
//!
//! One buffer of in-bag rows per tree, partitioned in place (stably, so each node's
//! rows stay ascending and memory reads stay forward). Bootstrap duplicates are
//! counts, not copies. A node's candidate features get histograms of integer class
//! counts over their bins, one tight pass per feature over that feature's column
//! of bin codes; only the bins a node touches are scanned and reset. Whenever a
//! node holds less than a quarter of the rows of the code buffer it reads from,
//! its rows' codes are gathered into a new, dense buffer (column-major too) and its
//! whole subtree is grown from there: every histogram pass then reads a column at
//! least a quarter full instead of missing cache on every row (the passes near the
//! root dominated fit time before this), and each row is copied only O(log n)
//! times per tree.
//!
//! Nodes of at most [`EXACT_ROWS`] rows (fewer on very wide data, see [`exact_rows`])
//! are split exactly, as scikit-learn splits:
//! their rows' raw values are gathered once and every split below sorts the real
//! values, with thresholds at midpoints between neighbouring values. Bins only
//! steer the large nodes near the root; the fine structure that separates rare
//! failures from their neighbours is found at full resolution.

use crate::binning::{Binned, MAX_BINS, NAN_BIN};
use crate::rng::{TreeRng, below};
use crate::tree::{ClassTree, MISSING_LEFT, Node};

/// A node is gathered into a dense buffer of its own once its buffer holds this
/// many times as many rows as the node.
const SHRINK: usize = 4;
/// Nodes with at most this many rows gather their raw values and grow their
/// subtree with exact (sorting) splits.
pub(crate) const EXACT_ROWS: usize = 2048;
/// Bound on the raw values an exact subtree gathers (bytes): very wide data gets a
/// lower row limit than [`EXACT_ROWS`] instead of a huge per-thread copy.
const EXACT_BYTES: usize = 8 << 20;
/// The exact-split row limit never drops below this.
const MIN_EXACT_ROWS: usize = 64;

/// The exact-split row limit for data with `n_features` columns.
fn exact_rows(n_features: usize) -> usize {
    (EXACT_BYTES / (8 * n_features.max(1))).clamp(MIN_EXACT_ROWS, EXACT_ROWS)
}
/// scikit-learn's `FEATURE_THRESHOLD`: values closer than this count as equal
/// (no split between them, and a feature spanning less is constant).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// Impurity measure (scikit-learn's `criterion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Criterion {
    /// Gini impurity `1 - Σ p²` (scikit-learn's default).
    #[default]
    Gini,
    /// Shannon entropy `-Σ p log2 p`.
    Entropy,
}

/// Resolved growth limits for one tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GrowLimits {
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub mtry: usize,
    pub criterion: Criterion,
    pub min_impurity_decrease: f64,
}

/// The data every tree of a forest shares.
#[derive(Debug)]
pub(crate) struct Shared<'a> {
    pub binned: &'a Binned,
    /// The raw training matrix, row-major (`raw[row * n_features + f]`); `None`
    /// when the forest is fitted on bin codes alone
    /// ([`BinnedSamples`](crate::BinnedSamples)): every node then splits on bins.
    pub raw: Option<&'a [f64]>,
    pub y: &'a [u32],
    pub n_classes: usize,
    pub limits: GrowLimits,
}

/// A fitted tree and the raw (unnormalised) impurity decrease per feature.
#[derive(Debug)]
pub(crate) struct Grown {
    pub tree: ClassTree,
    pub importances: Vec<f64>,
    /// Each node's cover: the class-weighted bootstrap count of its rows
    /// (scikit-learn's `weighted_n_node_samples`).
    pub covers: Vec<f64>,
}

/// Work still to do on one node.
struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    counts: Vec<u64>,
}

/// The best split found so far in a node.
#[derive(Clone, Copy)]
struct Best {
    feature: usize,
    /// Which `node_codes` slot holds this feature's bins for the node.
    slot: usize,
    /// Rows with a bin `<= bin` go left; `MAX_BINS` means "every non-missing row".
    bin: usize,
    missing_left: bool,
    /// Whether the node has missing values in `feature`.
    nan_in_node: bool,
    /// For exact splits: non-missing values `<= threshold` go left (`bin` unused).
    exact: Option<f64>,
}

/// A split worth making: the best split of a node and its children's class counts.
struct Split {
    best: Best,
    left: Vec<u64>,
    right: Vec<u64>,
    /// Weighted impurity decrease (the feature's importance gain).
    decrease: f64,
    /// Whether the left child carries more class weight than the right.
    left_heavier: bool,
}

fn impurity(criterion: Criterion, counts: &[u64], cw: &[f64]) -> (f64, f64) {
    let w: f64 = counts.iter().zip(cw).map(|(&c, &w)| c as f64 * w).sum();
    if w <= 0.0 {
        return (0.0, 0.0);
    }
    let imp = match criterion {
        Criterion::Gini => {
            1.0 - counts
                .iter()
                .zip(cw)
                .map(|(&c, &cw)| {
                    let p = c as f64 * cw / w;
                    p * p
                })
                .sum::<f64>()
        }
        Criterion::Entropy => -counts
            .iter()
            .zip(cw)
            .map(|(&c, &cw)| {
                let p = c as f64 * cw / w;
                if p > 0.0 { p * p.log2() } else { 0.0 }
            })
            .sum::<f64>(),
    };
    (w, imp.max(0.0))
}

#[inline]
fn xlogx(v: f64) -> f64 {
    if v > 0.0 { v * v.ln() } else { 0.0 }
}

/// Per-tree scratch reused across nodes.
struct Workspace {
    /// One histogram per candidate feature of a batch: `hist[s][b * n_classes + c]`
    /// packs, for the node's rows of class `c` in bin `b`, the number of rows (high
    /// 32 bits) and their bootstrap count (low 32 bits), so a row costs one add.
    /// Neither can overflow: both are at most the row count, which fit checks
    /// against `MAX_ROWS` (`u32::MAX`).
    hist: Vec<Vec<u64>>,
    /// A second histogram that every other row of a histogram pass adds to,
    /// merged into `hist` after the pass (all zero between passes).
    hist_odd: Vec<u64>,
    lo: Vec<u8>,
    hi: Vec<u8>,
    batch: Vec<usize>,
    /// `node_codes[slot][j]`: bin of the node's `j`-th row in the feature drawn
    /// `slot`-th, recorded by the histogram pass so partitioning reads no rows.
    node_codes: Vec<Vec<u8>>,
    left: Vec<u64>,
    nan: Vec<u64>,
    /// Sort keys of an exact node (see [`exact_key`]).
    keys: Vec<u64>,
    /// The node's values of the feature being sorted, by position in the node.
    values: Vec<f64>,
    /// Raw values of the rows of the exact subtree being grown, row-major.
    raw: Vec<f64>,
    /// The best split of the node being searched.
    best: BestSplit,
    /// Its left child's class counts.
    best_left: Vec<u64>,
    scratch_rows: Vec<u32>,
    scratch_yc: Vec<u64>,
    /// Gathered code buffers, one per nesting level, with the training row of
    /// each of their rows (reused across nodes).
    levels: Vec<(Vec<u8>, Vec<u32>)>,
}

/// The tree under construction plus everything its nodes share.
struct Builder<'a> {
    shared: &'a Shared<'a>,
    cw: &'a [f64],
    w_root: f64,
    pool: Vec<usize>,
    ws: Workspace,
    importances: Vec<f64>,
    nodes: Vec<Node>,
    values: Vec<f32>,
    /// Cover of each node in `nodes` (set when the node is processed).
    covers: Vec<f64>,
}

/// Grows one tree on the in-bag rows `rows` whose packed `(count << 32) | class`
/// entries are `yc` (both ascending by row).
pub(crate) fn grow_tree(
    shared: &Shared<'_>,
    mut rows: Vec<u32>,
    mut yc: Vec<u64>,
    class_weight: &[f64],
    rng: &mut TreeRng,
) -> Grown {
    let k = shared.n_classes;
    let nf = shared.binned.n_features;
    let lim = shared.limits;
    let mut root_counts = vec![0u64; k];
    for &v in &yc {
        root_counts[(v & 0xFFFF_FFFF) as usize] += v >> 32;
    }
    let (w_root, _) = impurity(lim.criterion, &root_counts, class_weight);
    let n = rows.len();
    let mut b = Builder {
        shared,
        cw: class_weight,
        w_root,
        pool: (0..nf).collect(),
        ws: Workspace {
            hist: vec![vec![0; (MAX_BINS + 1) * k]; lim.mtry],
            hist_odd: vec![0; (MAX_BINS + 1) * k],
            lo: vec![0; lim.mtry],
            hi: vec![0; lim.mtry],
            batch: Vec::with_capacity(lim.mtry),
            node_codes: vec![Vec::new(); nf],
            left: vec![0; k],
            nan: vec![0; k],
            keys: Vec::new(),
            values: Vec::new(),
            raw: Vec::new(),
            best: BestSplit {
                split: None,
                proxy: f64::NEG_INFINITY,
            },
            best_left: vec![0; k],
            scratch_rows: vec![0; n],
            scratch_yc: vec![0; n],
            levels: Vec::new(),
        },
        importances: vec![0.0; nf],
        nodes: vec![Node::leaf(0, 0.0)],
        values: Vec::new(),
        covers: vec![0.0],
    };
    let root = Pending {
        node: 0,
        start: 0,
        end: n,
        depth: 0,
        counts: root_counts,
    };
    let training_codes = CodeBuffer {
        codes: &shared.binned.codes,
        map: None,
        n_rows: shared.binned.n_rows,
        level: 0,
    };
    b.grow_from(training_codes, &mut rows, &mut yc, root, rng);
    Grown {
        tree: ClassTree::new(b.nodes, b.values, k),
        importances: b.importances,
        covers: b.covers,
    }
}

/// Where a node's rows are read from.
#[derive(Clone, Copy)]
enum Mode<'c> {
    /// Bin codes, column-major with columns of `stride` rows, indexed by the row
    /// numbers: `codes[f * stride + row]`.
    Binned { codes: &'c [u8], stride: usize },
    /// Raw values gathered into the workspace, row-major, indexed by the row numbers.
    Exact,
}

/// A column-major buffer of bin codes that a subtree's row numbers index: the
/// training matrix's codes, or a dense copy of one node's rows.
#[derive(Clone, Copy)]
struct CodeBuffer<'c> {
    /// `codes[f * n_rows + row]`.
    codes: &'c [u8],
    /// The training row of each of the buffer's rows (`None`: the row itself).
    map: Option<&'c [u32]>,
    /// Rows per column.
    n_rows: usize,
    /// How many copies deep this buffer is (the training codes are level 0).
    level: usize,
}

impl Builder<'_> {
    /// Grows the subtree of `root`, whose rows index `buffer`. Nodes much smaller
    /// than the buffer continue from a dense copy of their rows (one level deeper).
    fn grow_from(
        &mut self,
        buffer: CodeBuffer<'_>,
        rows: &mut [u32],
        yc: &mut [u64],
        root: Pending,
        rng: &mut TreeRng,
    ) {
        let nf = self.shared.binned.n_features;
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            let n_node = p.end - p.start;
            if let Some(raw) = self.shared.raw.filter(|_| n_node <= exact_rows(nf)) {
                self.grow_exact(raw, rows, yc, p, buffer.map, rng);
            } else if n_node * SHRINK <= buffer.n_rows && self.splittable(&p) {
                self.grow_from_dense_copy(buffer, rows, yc, p, rng);
            } else {
                let mode = Mode::Binned {
                    codes: buffer.codes,
                    stride: buffer.n_rows,
                };
                self.process(mode, rows, yc, p, &mut stack, rng);
            }
        }
    }

    /// Gathers the codes of node `p`'s rows from `buffer` into a dense buffer of the
    /// next level (renumbering the rows to index it) and grows `p`'s subtree from there.
    fn grow_from_dense_copy(
        &mut self,
        buffer: CodeBuffer<'_>,
        rows: &mut [u32],
        yc: &mut [u64],
        p: Pending,
        rng: &mut TreeRng,
    ) {
        let nf = self.shared.binned.n_features;
        let n_node = p.end - p.start;
        let level = buffer.level;
        if self.ws.levels.len() <= level {
            self.ws.levels.push(Default::default());
        }
        let (mut dense, mut dense_map) = std::mem::take(&mut self.ws.levels[level]);
        dense.clear();
        dense.resize(n_node * nf, 0);
        let node_rows = &mut rows[p.start..p.end];
        for (column, out) in buffer
            .codes
            .chunks_exact(buffer.n_rows)
            .zip(dense.chunks_exact_mut(n_node))
        {
            for (o, &r) in out.iter_mut().zip(node_rows.iter()) {
                *o = column[r as usize];
            }
        }
        dense_map.clear();
        for (j, r) in node_rows.iter_mut().enumerate() {
            dense_map.push(buffer.map.map_or(*r, |m| m[*r as usize]));
            *r = j as u32;
        }
        let copy = CodeBuffer {
            codes: &dense,
            map: Some(&dense_map),
            n_rows: n_node,
            level: level + 1,
        };
        self.grow_from(copy, rows, yc, p, rng);
        self.ws.levels[level] = (dense, dense_map);
    }

    /// Grows the subtree of the small node `p` with exact splits: gathers its rows'
    /// raw values (`map` translates row numbers to training rows when they are local
    /// indices) and renumbers the rows to index the gathered copy.
    fn grow_exact(
        &mut self,
        raw: &[f64],
        rows: &mut [u32],
        yc: &mut [u64],
        p: Pending,
        map: Option<&[u32]>,
        rng: &mut TreeRng,
    ) {
        if !self.splittable(&p) {
            // A leaf: nothing to gather.
            let mut none = Vec::new();
            self.process(Mode::Exact, rows, yc, p, &mut none, rng);
            return;
        }
        let nf = self.shared.binned.n_features;
        let mut gathered = std::mem::take(&mut self.ws.raw);
        gathered.clear();
        for (j, r) in rows[p.start..p.end].iter_mut().enumerate() {
            let g = map.map_or(*r, |m| m[*r as usize]) as usize;
            gathered.extend_from_slice(&raw[g * nf..g * nf + nf]);
            *r = j as u32;
        }
        self.ws.raw = gathered;
        let mut sub = vec![p];
        while let Some(p) = sub.pop() {
            self.process(Mode::Exact, rows, yc, p, &mut sub, rng);
        }
    }

    /// Whether node `p` may be split at all (the limits and a non-zero impurity).
    fn splittable(&self, p: &Pending) -> bool {
        let lim = self.shared.limits;
        let n_node = p.end - p.start;
        let (_, imp) = impurity(lim.criterion, &p.counts, self.cw);
        p.depth < lim.max_depth
            && n_node >= lim.min_samples_split
            && n_node >= 2 * lim.min_samples_leaf
            && imp > 1e-7
    }

    /// Splits node `p` (pushing its children onto `stack`) or makes it a leaf.
    fn process(
        &mut self,
        mode: Mode<'_>,
        rows: &mut [u32],
        yc: &mut [u64],
        p: Pending,
        stack: &mut Vec<Pending>,
        rng: &mut TreeRng,
    ) {
        let (w_node, imp) = impurity(self.shared.limits.criterion, &p.counts, self.cw);
        self.covers[p.node] = w_node;
        let best = if self.splittable(&p) {
            self.find_split(
                mode,
                &rows[p.start..p.end],
                &yc[p.start..p.end],
                &p.counts,
                rng,
            )
        } else {
            None
        };
        match best.and_then(|b| self.accept(b, &p.counts, w_node * imp)) {
            Some(split) => self.split_node(split, rows, yc, p, stack),
            None => self.make_leaf(&p, w_node),
        }
    }

    /// The best split `b` of a node with class counts `counts` and weighted impurity
    /// `w_imp`, if it decreases impurity by at least `min_impurity_decrease`.
    fn accept(&self, b: Best, counts: &[u64], w_imp: f64) -> Option<Split> {
        let lim = self.shared.limits;
        let left = self.ws.best_left.clone();
        let right: Vec<u64> = counts.iter().zip(&left).map(|(t, l)| t - l).collect();
        let (wl, il) = impurity(lim.criterion, &left, self.cw);
        let (wr, ir) = impurity(lim.criterion, &right, self.cw);
        let decrease = w_imp - wl * il - wr * ir;
        (decrease / self.w_root + 1e-7 >= lim.min_impurity_decrease).then_some(Split {
            best: b,
            left,
            right,
            decrease,
            left_heavier: wl > wr,
        })
    }

    /// Makes node `p` a split, partitions its rows and pushes its children.
    fn split_node(
        &mut self,
        split: Split,
        rows: &mut [u32],
        yc: &mut [u64],
        p: Pending,
        stack: &mut Vec<Pending>,
    ) {
        let b = split.best;
        self.importances[b.feature] += split.decrease;
        let n_left = self.partition(b, rows, yc, p.start, p.end);
        let child = self.nodes.len();
        let edges = &self.shared.binned.edges[b.feature];
        let threshold = match b.exact {
            Some(t) => t,
            None if b.bin >= edges.len() => f64::MAX,
            None => edges[b.bin],
        };
        // With no missing values at this node, later NaNs follow the heavier child.
        let missing_left = if b.nan_in_node {
            b.missing_left
        } else {
            split.left_heavier
        };
        let mut feature = b.feature as u32;
        if missing_left {
            feature |= MISSING_LEFT;
        }
        self.nodes[p.node] = Node {
            threshold,
            feature,
            child: child as u32,
        };
        self.nodes.push(Node::leaf(0, 0.0));
        self.nodes.push(Node::leaf(0, 0.0));
        self.covers.extend([0.0, 0.0]);
        let mid = p.start + n_left;
        stack.push(Pending {
            node: child + 1,
            start: mid,
            end: p.end,
            depth: p.depth + 1,
            counts: split.right,
        });
        stack.push(Pending {
            node: child,
            start: p.start,
            end: mid,
            depth: p.depth + 1,
            counts: split.left,
        });
    }

    /// Makes node `p` (of class weight `w_node`) a leaf holding its class mix.
    fn make_leaf(&mut self, p: &Pending, w_node: f64) {
        let leaf = (self.values.len() / self.shared.n_classes) as u32;
        if w_node > 0.0 {
            for (&c, &cw) in p.counts.iter().zip(self.cw) {
                self.values.push((c as f64 * cw / w_node) as f32);
            }
        } else {
            // Only zero-weight rows: fall back to the unweighted class mix.
            let n: u64 = p.counts.iter().sum::<u64>().max(1);
            for &c in &p.counts {
                self.values.push((c as f64 / n as f64) as f32);
            }
        }
        self.nodes[p.node] = Node::leaf(leaf, 0.0);
    }

    /// Stable in-place partition of `rows[start..end]` (and `yc`) into left then right.
    fn partition(
        &mut self,
        b: Best,
        rows: &mut [u32],
        yc: &mut [u64],
        start: usize,
        end: usize,
    ) -> usize {
        let ws = &mut self.ws;
        let nf = self.shared.binned.n_features;
        let node_codes = &ws.node_codes[b.slot];
        let mut l = start;
        let mut r = 0;
        for j in start..end {
            let row = rows[j];
            let v = yc[j];
            let left = match b.exact {
                Some(t) => {
                    let x = ws.raw[row as usize * nf + b.feature];
                    if x.is_nan() { b.missing_left } else { x <= t }
                }
                None => goes_left(node_codes[j - start], b),
            };
            if left {
                rows[l] = row;
                yc[l] = v;
                l += 1;
            } else {
                ws.scratch_rows[r] = row;
                ws.scratch_yc[r] = v;
                r += 1;
            }
        }
        rows[l..end].copy_from_slice(&ws.scratch_rows[..r]);
        yc[l..end].copy_from_slice(&ws.scratch_yc[..r]);
        l - start
    }

    /// Searches `mtry` randomly drawn features for the split with the best impurity
    /// proxy (its left child's class counts are left in `ws.best_left`). As in
    /// scikit-learn, a feature that is constant in the node counts as drawn; more are
    /// drawn (one at a time) only while none was splittable. (Drawing on until `mtry`
    /// splittable features are found would make deep splits greedier than
    /// scikit-learn's and the trees less diverse.)
    fn find_split(
        &mut self,
        mode: Mode<'_>,
        rows: &[u32],
        yc: &[u64],
        totals: &[u64],
        rng: &mut TreeRng,
    ) -> Option<Best> {
        let node = NodeTotals {
            counts: totals,
            cw: self.cw,
            lim: self.shared.limits,
            n_rows: rows.len() as u64,
        };
        let mtry = node.lim.mtry;
        let n_features = self.pool.len();
        self.ws.best.split = None;
        self.ws.best.proxy = f64::NEG_INFINITY;
        let mut visited = 0;
        let mut drawn = 0;
        while (drawn < mtry || visited == 0) && drawn < n_features {
            // Draw the features still needed.
            let want = mtry.saturating_sub(drawn).max(1).min(n_features - drawn);
            self.draw_candidates(drawn, want, rng);
            drawn += want;
            visited += match mode {
                Mode::Exact => self.search_exact(rows, yc, &node),
                Mode::Binned { codes, stride } => {
                    let column_of = |f: usize| &codes[f * stride..(f + 1) * stride];
                    self.search_binned(column_of, drawn - want, rows, yc, &node)
                }
            };
        }
        self.ws.best.split
    }

    /// Draws `want` more candidate features into `ws.batch` (uniformly, without
    /// replacement: the first `drawn` of `pool` are taken).
    fn draw_candidates(&mut self, drawn: usize, want: usize, rng: &mut TreeRng) {
        let n_features = self.pool.len();
        self.ws.batch.clear();
        for j in drawn..drawn + want {
            let pick = j + below(rng, n_features - j);
            self.pool.swap(j, pick);
            self.ws.batch.push(self.pool[j]);
        }
    }

    /// Sorts each candidate feature's real values and scans every boundary between
    /// distinct values, as scikit-learn's best splitter does. Returns how many
    /// candidates were not constant in the node.
    fn search_exact(&mut self, rows: &[u32], yc: &[u64], node: &NodeTotals<'_>) -> usize {
        let nf = self.shared.binned.n_features;
        let ws = &mut self.ws;
        let mut visited = 0;
        for s in 0..ws.batch.len() {
            let f = ws.batch[s];
            ws.keys.clear();
            ws.values.clear();
            let mut nan_n = 0usize;
            for (j, &r) in rows.iter().enumerate() {
                let v = ws.raw[r as usize * nf + f];
                nan_n += usize::from(v.is_nan());
                ws.keys.push(exact_key(v, j));
                ws.values.push(v);
            }
            sort_exact_keys(&mut ws.keys, &ws.values);
            let reg_n = ws.keys.len() - nan_n;
            let value = |i: usize| ws.values[position(ws.keys[i])];
            let constant =
                reg_n == 0 || (value(reg_n - 1) - value(0) <= FEATURE_THRESHOLD && nan_n == 0);
            if !constant {
                visited += 1;
                let column = SortedColumn {
                    feature: f,
                    keys: &ws.keys,
                    values: &ws.values,
                    reg_n,
                };
                let (left, nan) = (&mut ws.left, &mut ws.nan);
                scan_exact(column, yc, node, left, nan, &mut ws.best, &mut ws.best_left);
            }
        }
        visited
    }

    /// Builds each candidate feature's histogram over the node's bins (`column_of(f)`
    /// is feature `f`'s column of codes) and scans it. The histogram of the `s`-th
    /// candidate records the node's codes in `node_codes[first_slot + s]`. Returns
    /// how many candidates were not constant in the node.
    fn search_binned<'c>(
        &mut self,
        column_of: impl Fn(usize) -> &'c [u8],
        first_slot: usize,
        rows: &[u32],
        yc: &[u64],
        node: &NodeTotals<'_>,
    ) -> usize {
        let k = self.shared.n_classes;
        let ws = &mut self.ws;
        let want = ws.batch.len();
        for slot in &mut ws.node_codes[first_slot..first_slot + want] {
            if slot.len() < rows.len() {
                slot.resize(rows.len(), 0);
            }
        }
        for (s, &f) in ws.batch.iter().enumerate() {
            let (lo, hi) = histogram_pass(
                column_of(f),
                rows,
                yc,
                k,
                &mut ws.hist[s],
                &mut ws.hist_odd,
                &mut ws.node_codes[first_slot + s][..rows.len()],
            );
            ws.lo[s] = lo;
            ws.hi[s] = hi;
        }
        let mut visited = 0;
        for s in 0..want {
            let bins = BinRange::of(&ws.hist[s], ws.lo[s], ws.hi[s], k);
            if !bins.constant() {
                visited += 1;
                let at = Slot {
                    feature: ws.batch[s],
                    slot: first_slot + s,
                };
                let (left, best) = (&mut ws.left, &mut ws.best);
                scan(&ws.hist[s], bins, node, at, left, best, &mut ws.best_left);
            }
            let (lo, hi) = (ws.lo[s] as usize, ws.hi[s] as usize);
            ws.hist[s][lo * k..(hi + 1) * k]
                .iter_mut()
                .for_each(|v| *v = 0);
        }
        visited
    }
}

/// One tight pass over a feature's `column` of codes for the node's `rows`: adds
/// each row to its (bin, class) entry of `hist`, records its code in
/// `node_codes`, and returns the lowest and highest code seen.
///
/// Rows alternate between `hist` and `odd` (all zero on entry and again on exit,
/// merged into `hist`): a run of rows in one bin would otherwise be a chain of
/// adds to one counter, each waiting for the last (see benches/RESULTS.md, forest
/// section).
#[inline(always)]
fn histogram_pass(
    column: &[u8],
    rows: &[u32],
    yc: &[u64],
    k: usize,
    hist: &mut [u64],
    odd: &mut [u64],
    node_codes: &mut [u8],
) -> (u8, u8) {
    let (mut lo, mut hi) = (u8::MAX, 0u8);
    let mut pairs = rows.chunks_exact(2).zip(yc.chunks_exact(2));
    let mut codes_of_pairs = node_codes.chunks_exact_mut(2);
    for ((r, v), nc) in (&mut pairs).zip(&mut codes_of_pairs) {
        let (b0, b1) = (column[r[0] as usize], column[r[1] as usize]);
        nc[0] = b0;
        nc[1] = b1;
        lo = lo.min(b0).min(b1);
        hi = hi.max(b0).max(b1);
        hist[b0 as usize * k + (v[0] & 0xFFFF_FFFF) as usize] += ROW | (v[0] >> 32);
        odd[b1 as usize * k + (v[1] & 0xFFFF_FFFF) as usize] += ROW | (v[1] >> 32);
    }
    if rows.len() % 2 == 1 {
        let (r, v) = (rows[rows.len() - 1], yc[rows.len() - 1]);
        let b = column[r as usize];
        node_codes[rows.len() - 1] = b;
        lo = lo.min(b);
        hi = hi.max(b);
        hist[b as usize * k + (v & 0xFFFF_FFFF) as usize] += ROW | (v >> 32);
    }
    // (A node here has rows, so `lo <= hi`; an empty range merges nothing.)
    let range = lo as usize * k..(hi as usize + 1).max(lo as usize) * k;
    for (h, o) in hist[range.clone()].iter_mut().zip(&mut odd[range]) {
        *h += *o;
        *o = 0;
    }
    (lo, hi)
}

/// What every candidate split of one node is judged against.
#[derive(Clone, Copy)]
struct NodeTotals<'n> {
    /// The node's bootstrap count per class.
    counts: &'n [u64],
    /// Class weights.
    cw: &'n [f64],
    lim: GrowLimits,
    /// Rows in the node.
    n_rows: u64,
}

impl NodeTotals<'_> {
    /// Whether a split sending `n_left` rows left leaves each child
    /// `min_samples_leaf` rows.
    #[inline(always)]
    fn fits(&self, n_left: u64) -> bool {
        let msl = self.lim.min_samples_leaf as u64;
        n_left >= msl && self.n_rows - n_left >= msl
    }

    /// [`proxy_of`] a split whose left child has class counts `lk(c)`.
    #[inline(always)]
    fn proxy(&self, lk: impl Fn(usize) -> u64) -> Option<f64> {
        proxy_of(lk, self.counts, self.cw, self.lim.criterion)
    }
}

/// The best split of a node found so far.
struct BestSplit {
    split: Option<Best>,
    /// Its impurity proxy (larger is better).
    proxy: f64,
}

impl BestSplit {
    /// Keeps `split()`, whose left child has class counts `left(c)`, if its
    /// `proxy` beats the best so far, and then writes those counts to `left_counts`.
    #[inline(always)]
    fn offer(
        &mut self,
        left_counts: &mut [u64],
        proxy: f64,
        split: impl FnOnce() -> Best,
        left: impl Fn(usize) -> u64,
    ) {
        if proxy <= self.proxy {
            return;
        }
        self.proxy = proxy;
        self.split = Some(split());
        for (c, l) in left_counts.iter_mut().enumerate() {
            *l = left(c);
        }
    }
}

/// The bins one candidate feature's histogram touches in a node.
#[derive(Clone, Copy)]
struct BinRange {
    /// Lowest bin present.
    lo: usize,
    /// Highest non-missing bin present (`MAX_BINS` if none).
    hi_reg: usize,
    /// Rows with a missing value.
    nan_n: u64,
}

impl BinRange {
    /// The range of a histogram whose lowest and highest codes are `lo` and `hi`.
    fn of(hist: &[u64], lo: u8, hi: u8, k: usize) -> Self {
        let (lo, hi) = (lo as usize, hi as usize);
        let nan_n = rows_in(hist, NAN_BIN as usize, k);
        let hi_reg = if hi == NAN_BIN as usize {
            (lo..NAN_BIN as usize)
                .rev()
                .find(|&b| rows_in(hist, b, k) > 0)
                .unwrap_or(MAX_BINS)
        } else {
            hi
        };
        BinRange { lo, hi_reg, nan_n }
    }

    /// Whether the feature takes one value (or none) in the node.
    fn constant(&self) -> bool {
        self.hi_reg == MAX_BINS || (self.lo == self.hi_reg && self.nan_n == 0)
    }
}

/// A histogram entry's row unit (rows are counted in the high 32 bits).
const ROW: u64 = 1 << 32;
/// Masks a histogram entry's bootstrap count (the low 32 bits).
const COUNT: u64 = 0xFFFF_FFFF;

/// Rows in bin `b` of a packed histogram with `k` classes.
#[inline]
fn rows_in(hist: &[u64], b: usize, k: usize) -> u64 {
    hist[b * k..b * k + k].iter().map(|&e| e >> 32).sum()
}

/// A candidate feature and where its node bins are recorded.
#[derive(Clone, Copy)]
struct Slot {
    feature: usize,
    slot: usize,
}

#[inline]
fn goes_left(code: u8, b: Best) -> bool {
    if code == NAN_BIN {
        b.missing_left
    } else {
        code as usize <= b.bin
    }
}

/// The impurity proxy of a split whose left child has class counts `lk(c)`
/// (larger is better), or `None` when a side has no weight.
#[inline(always)]
fn proxy_of(
    lk: impl Fn(usize) -> u64,
    totals: &[u64],
    cw: &[f64],
    criterion: Criterion,
) -> Option<f64> {
    let (mut wl, mut wr, mut sl, mut sr) = (0.0, 0.0, 0.0, 0.0);
    for (c, (&t, &w)) in totals.iter().zip(cw).enumerate() {
        let l = lk(c) as f64 * w;
        let r = t as f64 * w - l;
        wl += l;
        wr += r;
        match criterion {
            Criterion::Gini => {
                sl += l * l;
                sr += r * r;
            }
            Criterion::Entropy => {
                sl += xlogx(l);
                sr += xlogx(r);
            }
        }
    }
    if wl <= 0.0 || wr <= 0.0 {
        return None;
    }
    Some(match criterion {
        Criterion::Gini => sl / wl + sr / wr,
        Criterion::Entropy => sl - xlogx(wl) + sr - xlogx(wr),
    })
}

/// Scans one feature's histogram over the node's `bins` for its best threshold
/// (and missing-value side), offering each to `best` (whose left child's class
/// counts go to `best_left`). `left` is scratch for class counts.
fn scan(
    hist: &[u64],
    bins: BinRange,
    node: &NodeTotals<'_>,
    at: Slot,
    left: &mut [u64],
    best: &mut BestSplit,
    best_left: &mut [u64],
) {
    let k = node.counts.len();
    let nan_base = NAN_BIN as usize * k;
    let nan = &hist[nan_base..nan_base + k];
    let nan_n = bins.nan_n;
    left.iter_mut().for_each(|v| *v = 0);
    let mut left_n = 0u64;
    let split = |bin: usize, missing_left: bool| Best {
        feature: at.feature,
        slot: at.slot,
        bin,
        missing_left,
        nan_in_node: nan_n > 0,
        exact: None,
    };
    for b in bins.lo..bins.hi_reg {
        let h = &hist[b * k..b * k + k];
        let n_bin = rows_in(hist, b, k);
        if n_bin == 0 {
            continue;
        }
        for (l, &e) in left.iter_mut().zip(h) {
            *l += e & COUNT;
        }
        left_n += n_bin;
        if node.fits(left_n)
            && let Some(p) = node.proxy(|c| left[c])
        {
            best.offer(best_left, p, || split(b, false), |c| left[c]);
        }
        if nan_n > 0 && node.fits(left_n + nan_n) {
            let with_nan = |c: usize| left[c] + (nan[c] & COUNT);
            if let Some(p) = node.proxy(with_nan) {
                best.offer(best_left, p, || split(b, true), with_nan);
            }
        }
    }
    if nan_n > 0 {
        // Every non-missing row left, missing rows right.
        let hi_reg = bins.hi_reg;
        let h = &hist[hi_reg * k..hi_reg * k + k];
        for (l, &e) in left.iter_mut().zip(h) {
            *l += e & COUNT;
        }
        left_n += rows_in(hist, hi_reg, k);
        if node.fits(left_n)
            && let Some(p) = node.proxy(|c| left[c])
        {
            best.offer(best_left, p, || split(MAX_BINS, false), |c| left[c]);
        }
    }
}

/// Order-preserving bits of a non-NaN value (`-0.0` and `0.0` alike).
#[inline]
fn ordered_bits(v: f64) -> u64 {
    let bits = (v + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The inverse of [`ordered_bits`].
#[cfg(test)]
fn from_ordered_bits(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Bits of an [`exact_key`] that hold the row's position in its node.
const POSITION_BITS: u32 = 11;
const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;
const _: () = assert!(EXACT_ROWS <= 1 << POSITION_BITS);

/// The sort key of value `v` at position `j` of an exact node: the value's
/// order-preserving bits with the lowest [`POSITION_BITS`] replaced by `j` (NaN
/// sorts last). Plain `u64`s sort much faster than `(value, position)` pairs
/// (see benches/RESULTS.md, forest section); [`sort_exact_keys`] restores the order of values that differ only in the
/// replaced bits.
#[inline]
fn exact_key(v: f64, j: usize) -> u64 {
    let bits = if v.is_nan() {
        u64::MAX
    } else {
        ordered_bits(v)
    };
    (bits & !POSITION_MASK) | j as u64
}

/// The position in its node of the row an [`exact_key`] belongs to.
#[inline]
fn position(key: u64) -> usize {
    (key & POSITION_MASK) as usize
}

/// Sorts exact keys into the order of `(value, position)`: by key, then each run of
/// keys whose values agree in their upper bits is re-sorted by full value when its
/// values differ (rare: it takes values within about 2^-41 of each other).
fn sort_exact_keys(keys: &mut [u64], values: &[f64]) {
    keys.sort_unstable();
    let mut start = 0;
    while start < keys.len() {
        let upper = keys[start] >> POSITION_BITS;
        let mut end = start + 1;
        while end < keys.len() && keys[end] >> POSITION_BITS == upper {
            end += 1;
        }
        let run = &mut keys[start..end];
        let first = values[position(run[0])];
        // Equal values (or NaNs, which never compare equal) are already in position order.
        if run
            .iter()
            .any(|&k| values[position(k)] != first && !values[position(k)].is_nan())
        {
            run.sort_unstable_by_key(|&k| (ordered_bits(values[position(k)]), position(k)));
        }
        start = end;
    }
}

/// One candidate feature of an exact node, sorted.
#[derive(Clone, Copy)]
struct SortedColumn<'a> {
    feature: usize,
    /// Sorted [`exact_key`]s of the node's rows, the first `reg_n` non-missing.
    keys: &'a [u64],
    /// `values[position]`: the value of the row at that position in the node.
    values: &'a [f64],
    /// Rows with a value (not NaN).
    reg_n: usize,
}

/// [`scan`] for an exact node: `yc[position]` is the packed class and count of the
/// row at that position of the node; `left` and `nan` are scratch for class counts.
/// (The outputs `best` and `best_left` are separate arguments, not one struct
/// holding a `Vec`: the loop then keeps more of its state in registers.)
/// Splits between neighbouring values at their midpoint (never between values
/// closer than [`FEATURE_THRESHOLD`]).
fn scan_exact(
    column: SortedColumn<'_>,
    yc: &[u64],
    node: &NodeTotals<'_>,
    left: &mut [u64],
    nan: &mut [u64],
    best: &mut BestSplit,
    best_left: &mut [u64],
) {
    let SortedColumn {
        feature,
        keys,
        values,
        reg_n,
    } = column;
    let (totals, cw, criterion) = (node.counts, node.cw, node.lim.criterion);
    let msl = node.lim.min_samples_leaf as u64;
    let n_node = keys.len() as u64;
    let nan_n = (keys.len() - reg_n) as u64;
    left.iter_mut().for_each(|v| *v = 0);
    nan.iter_mut().for_each(|v| *v = 0);
    let add = |counts: &mut [u64], j: usize| {
        let v = yc[j];
        counts[(v & 0xFFFF_FFFF) as usize] += v >> 32;
    };
    for &key in &keys[reg_n..] {
        add(nan, position(key));
    }
    // One closure records every better split (rather than `BestSplit::offer` with
    // closures for the split and its counts, which made this loop slower on data
    // with missing values).
    let mut record =
        |proxy: f64, threshold: f64, missing_left: bool, left: &[u64], add_nan: bool| {
            if proxy <= best.proxy {
                return;
            }
            best.proxy = proxy;
            best.split = Some(Best {
                feature,
                slot: 0,
                bin: 0,
                missing_left,
                nan_in_node: nan_n > 0,
                exact: Some(threshold),
            });
            for (c, bl) in best_left.iter_mut().enumerate() {
                *bl = left[c] + if add_nan { nan[c] } else { 0 };
            }
        };
    let fits = |n_left: u64| n_left >= msl && n_node - n_left >= msl;
    for i in 0..reg_n {
        let j = position(keys[i]);
        add(left, j);
        if i + 1 == reg_n {
            break;
        }
        let (lo, hi) = (values[j], values[position(keys[i + 1])]);
        if hi <= lo + FEATURE_THRESHOLD {
            continue;
        }
        let threshold = crate::binning::midpoint(lo, hi);
        let left_n = i as u64 + 1;
        if fits(left_n)
            && let Some(p) = proxy_of(|c| left[c], totals, cw, criterion)
        {
            record(p, threshold, false, left, false);
        }
        if nan_n > 0
            && fits(left_n + nan_n)
            && let Some(p) = proxy_of(|c| left[c] + nan[c], totals, cw, criterion)
        {
            record(p, threshold, true, left, true);
        }
    }
    if nan_n > 0
        && fits(reg_n as u64)
        && let Some(p) = proxy_of(|c| left[c], totals, cw, criterion)
    {
        record(p, f64::MAX, false, left, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_data_gathers_fewer_rows_exactly() {
        assert_eq!(exact_rows(42), EXACT_ROWS);
        assert_eq!(exact_rows(512), EXACT_ROWS);
        assert_eq!(exact_rows(4096), 256);
        assert_eq!(exact_rows(1 << 20), MIN_EXACT_ROWS);
        assert_eq!(exact_rows(0), EXACT_ROWS);
    }

    #[test]
    fn exact_keys_sort_by_full_value_then_position() {
        // Values one ulp apart share their key's upper bits: the run is re-sorted.
        let base = 3.0e5_f64;
        let ulp = |n: u64| f64::from_bits(base.to_bits() + n);
        let values = [
            ulp(3),
            base,
            ulp(1),
            base,
            f64::NAN,
            -0.0,
            0.0,
            ulp(2),
            -7.5,
            f64::NAN,
            ulp(1),
        ];
        let mut keys: Vec<u64> = values
            .iter()
            .enumerate()
            .map(|(j, &v)| exact_key(v, j))
            .collect();
        sort_exact_keys(&mut keys, &values);
        let got: Vec<usize> = keys.iter().map(|&k| position(k)).collect();
        let mut expected: Vec<usize> = (0..values.len()).collect();
        expected.sort_by_key(|&j| {
            let v = values[j];
            (
                if v.is_nan() {
                    u64::MAX
                } else {
                    ordered_bits(v)
                },
                j,
            )
        });
        assert_eq!(got, expected);
        assert_eq!(got, vec![8, 5, 6, 1, 3, 2, 10, 7, 0, 4, 9]);
    }

    #[test]
    fn ordered_bits_sort_like_the_values_and_invert() {
        let values = [
            f64::MIN,
            -1e300,
            -2.5,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::MAX,
        ];
        let keys: Vec<u64> = values.iter().map(|&v| ordered_bits(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
        // -0.0 and 0.0 are one value: no split can fall between them.
        assert_eq!(ordered_bits(-0.0), ordered_bits(0.0));
        for v in values {
            assert_eq!(from_ordered_bits(ordered_bits(v)), v + 0.0);
        }
        assert!(ordered_bits(f64::MAX) < u64::MAX);
    }
}
