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
    /// The raw training matrix, row-major (`raw[row * n_features + f]`).
    pub raw: &'a [f64],
    pub y: &'a [u32],
    pub n_classes: usize,
    pub limits: GrowLimits,
}

/// A fitted tree and the raw (unnormalised) impurity decrease per feature.
#[derive(Debug)]
pub(crate) struct Grown {
    pub tree: ClassTree,
    pub importances: Vec<f64>,
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
    /// Left-child class counts of the best split so far.
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
            best_left: vec![0; k],
            scratch_rows: vec![0; n],
            scratch_yc: vec![0; n],
            levels: Vec::new(),
        },
        importances: vec![0.0; nf],
        nodes: vec![Node::leaf(0, 0.0)],
        values: Vec::new(),
    };
    let root = Pending {
        node: 0,
        start: 0,
        end: n,
        depth: 0,
        counts: root_counts,
    };
    b.grow_from(
        &shared.binned.codes,
        None,
        shared.binned.n_rows,
        0,
        &mut rows,
        &mut yc,
        root,
        rng,
    );
    Grown {
        tree: ClassTree::new(b.nodes, b.values, k),
        importances: b.importances,
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

impl Builder<'_> {
    /// Grows the subtree of `root` whose rows index `codes` (a buffer of
    /// `buffer_rows` rows; `map` gives their training rows, `None` = identity).
    /// Nodes much smaller than the buffer continue from a dense copy (level `level + 1`).
    #[allow(clippy::too_many_arguments)]
    fn grow_from(
        &mut self,
        codes: &[u8],
        map: Option<&[u32]>,
        buffer_rows: usize,
        level: usize,
        rows: &mut [u32],
        yc: &mut [u64],
        root: Pending,
        rng: &mut TreeRng,
    ) {
        let nf = self.shared.binned.n_features;
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            let n_node = p.end - p.start;
            if n_node <= exact_rows(nf) {
                self.grow_exact(rows, yc, p, map, rng);
            } else if n_node * SHRINK <= buffer_rows && self.splittable(&p) {
                if self.ws.levels.len() <= level {
                    self.ws.levels.push(Default::default());
                }
                let (mut dense, mut dense_map) = std::mem::take(&mut self.ws.levels[level]);
                dense.clear();
                dense.resize(n_node * nf, 0);
                let node_rows = &mut rows[p.start..p.end];
                for (column, out) in codes
                    .chunks_exact(buffer_rows)
                    .zip(dense.chunks_exact_mut(n_node))
                {
                    for (o, &r) in out.iter_mut().zip(node_rows.iter()) {
                        *o = column[r as usize];
                    }
                }
                dense_map.clear();
                for (j, r) in node_rows.iter_mut().enumerate() {
                    dense_map.push(map.map_or(*r, |m| m[*r as usize]));
                    *r = j as u32;
                }
                self.grow_from(
                    &dense,
                    Some(&dense_map),
                    n_node,
                    level + 1,
                    rows,
                    yc,
                    p,
                    rng,
                );
                self.ws.levels[level] = (dense, dense_map);
            } else {
                let mode = Mode::Binned {
                    codes,
                    stride: buffer_rows,
                };
                self.process(mode, rows, yc, p, &mut stack, rng);
            }
        }
    }

    /// Grows the subtree of the small node `p` with exact splits: gathers its rows'
    /// raw values (`map` translates row numbers to training rows when they are local
    /// indices) and renumbers the rows to index the gathered copy.
    fn grow_exact(
        &mut self,
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
        let raw = self.shared.raw;
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
        let lim = self.shared.limits;
        let k = self.shared.n_classes;
        let (w_node, imp) = impurity(lim.criterion, &p.counts, self.cw);
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
        let split = best.and_then(|b| {
            let left = self.ws.best_left.clone();
            let right: Vec<u64> = p.counts.iter().zip(&left).map(|(t, l)| t - l).collect();
            let (wl, il) = impurity(lim.criterion, &left, self.cw);
            let (wr, ir) = impurity(lim.criterion, &right, self.cw);
            let decrease = w_node * imp - wl * il - wr * ir;
            (decrease / self.w_root + 1e-7 >= lim.min_impurity_decrease).then_some((
                b,
                left,
                right,
                decrease,
                wl > wr,
            ))
        });
        match split {
            Some((b, left, right, decrease, left_heavier)) => {
                self.importances[b.feature] += decrease;
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
                    left_heavier
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
                let mid = p.start + n_left;
                stack.push(Pending {
                    node: child + 1,
                    start: mid,
                    end: p.end,
                    depth: p.depth + 1,
                    counts: right,
                });
                stack.push(Pending {
                    node: child,
                    start: p.start,
                    end: mid,
                    depth: p.depth + 1,
                    counts: left,
                });
            }
            None => {
                let leaf = (self.values.len() / k) as u32;
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
        }
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
    /// proxy. As in scikit-learn, a feature that is constant in the node counts as
    /// drawn; more are drawn (one at a time) only while none was splittable. (Drawing
    /// on until `mtry` splittable features are found would make deep splits greedier
    /// than scikit-learn's and the trees less diverse.)
    fn find_split(
        &mut self,
        mode: Mode<'_>,
        rows: &[u32],
        yc: &[u64],
        totals: &[u64],
        rng: &mut TreeRng,
    ) -> Option<Best> {
        let k = self.shared.n_classes;
        let nf = self.shared.binned.n_features;
        let lim = self.shared.limits;
        let n_features = self.pool.len();
        let mut best: Option<Best> = None;
        let mut best_proxy = f64::NEG_INFINITY;
        let mut visited = 0;
        let mut drawn = 0;
        while (drawn < lim.mtry || visited == 0) && drawn < n_features {
            // Draw the features still needed (uniformly, without replacement).
            let want = lim
                .mtry
                .saturating_sub(drawn)
                .max(1)
                .min(n_features - drawn);
            let ws = &mut self.ws;
            ws.batch.clear();
            for j in drawn..drawn + want {
                let pick = j + below(rng, n_features - j);
                self.pool.swap(j, pick);
                ws.batch.push(self.pool[j]);
            }
            drawn += want;

            let (codes, stride) = match mode {
                Mode::Binned { codes, stride } => (codes, stride),
                Mode::Exact => {
                    // Sort each feature's real values; scan every boundary between
                    // distinct values, as scikit-learn's best splitter does.
                    for s in 0..want {
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
                        let constant = reg_n == 0
                            || (value(reg_n - 1) - value(0) <= FEATURE_THRESHOLD && nan_n == 0);
                        if !constant {
                            visited += 1;
                            scan_exact(
                                &ws.keys,
                                &ws.values,
                                reg_n,
                                yc,
                                totals,
                                self.cw,
                                lim,
                                f,
                                &mut ws.left,
                                &mut ws.nan,
                                &mut ws.best_left,
                                &mut best,
                                &mut best_proxy,
                            );
                        }
                    }
                    continue;
                }
            };

            let first_slot = drawn - want;
            for slot in &mut ws.node_codes[first_slot..drawn] {
                if slot.len() < rows.len() {
                    slot.resize(rows.len(), 0);
                }
            }
            // One tight pass per feature over its column. Rows alternate between two
            // histograms: a run of rows in one bin would otherwise be a chain of
            // adds to one counter, each waiting for the last (measured: fit 1-15 %
            // faster, in 5 of 5 alternating pairs).
            for (s, &f) in ws.batch.iter().enumerate() {
                let hist = &mut ws.hist[s][..];
                let node_codes = &mut ws.node_codes[first_slot + s][..rows.len()];
                let column = &codes[f * stride..(f + 1) * stride];
                let (mut lo, mut hi) = (u8::MAX, 0u8);
                let odd = &mut ws.hist_odd[..];
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
                ws.lo[s] = lo;
                ws.hi[s] = hi;
            }

            for s in 0..want {
                let f = ws.batch[s];
                let (lo, hi) = (ws.lo[s] as usize, ws.hi[s] as usize);
                let hist = &mut ws.hist[s];
                let nan_n = rows_in(hist, NAN_BIN as usize, k);
                // Highest non-missing bin present (MAX_BINS if none).
                let hi_reg = if hi == NAN_BIN as usize {
                    (lo..NAN_BIN as usize)
                        .rev()
                        .find(|&b| rows_in(hist, b, k) > 0)
                        .unwrap_or(MAX_BINS)
                } else {
                    hi
                };
                let constant = hi_reg == MAX_BINS || (lo == hi_reg && nan_n == 0);
                if !constant {
                    visited += 1;
                    let at = Slot {
                        feature: f,
                        slot: first_slot + s,
                    };
                    scan(
                        hist,
                        lo,
                        hi_reg,
                        nan_n,
                        totals,
                        self.cw,
                        lim,
                        k,
                        rows.len() as u64,
                        at,
                        &mut ws.left,
                        &mut ws.best_left,
                        &mut best,
                        &mut best_proxy,
                    );
                }
                hist[lo * k..(hi + 1) * k].iter_mut().for_each(|v| *v = 0);
            }
        }
        best
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

/// Scans one feature's histogram for its best threshold (and missing-value side).
#[allow(clippy::too_many_arguments)]
fn scan(
    hist: &[u64],
    lo: usize,
    hi_reg: usize,
    nan_n: u64,
    totals: &[u64],
    cw: &[f64],
    lim: GrowLimits,
    k: usize,
    n_node: u64,
    at: Slot,
    left: &mut [u64],
    best_left: &mut [u64],
    best: &mut Option<Best>,
    best_proxy: &mut f64,
) {
    let msl = lim.min_samples_leaf as u64;
    let nan_base = NAN_BIN as usize * k;
    let nan = &hist[nan_base..nan_base + k];
    left.iter_mut().for_each(|v| *v = 0);
    let mut left_n = 0u64;
    let mut record = |proxy: f64, bin: usize, missing_left: bool, left: &[u64], add_nan: bool| {
        if proxy <= *best_proxy {
            return;
        }
        *best_proxy = proxy;
        *best = Some(Best {
            feature: at.feature,
            slot: at.slot,
            bin,
            missing_left,
            nan_in_node: nan_n > 0,
            exact: None,
        });
        for (c, bl) in best_left.iter_mut().enumerate() {
            *bl = left[c] + if add_nan { nan[c] & COUNT } else { 0 };
        }
    };
    let fits = |n_left: u64| n_left >= msl && n_node - n_left >= msl;
    for b in lo..hi_reg {
        let h = &hist[b * k..b * k + k];
        let n_bin = rows_in(hist, b, k);
        if n_bin == 0 {
            continue;
        }
        for (l, &e) in left.iter_mut().zip(h) {
            *l += e & COUNT;
        }
        left_n += n_bin;
        if fits(left_n)
            && let Some(p) = proxy_of(|c| left[c], totals, cw, lim.criterion)
        {
            record(p, b, false, left, false);
        }
        if nan_n > 0
            && fits(left_n + nan_n)
            && let Some(p) = proxy_of(|c| left[c] + (nan[c] & COUNT), totals, cw, lim.criterion)
        {
            record(p, b, true, left, true);
        }
    }
    if nan_n > 0 {
        // Every non-missing row left, missing rows right.
        let h = &hist[hi_reg * k..hi_reg * k + k];
        for (l, &e) in left.iter_mut().zip(h) {
            *l += e & COUNT;
        }
        left_n += rows_in(hist, hi_reg, k);
        if fits(left_n)
            && let Some(p) = proxy_of(|c| left[c], totals, cw, lim.criterion)
        {
            record(p, MAX_BINS, false, left, false);
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
/// sorts last). Sorting plain `u64`s is about twice as fast as sorting
/// `(value, position)` pairs; [`sort_exact_keys`] restores the order of values that
/// differ only in the replaced bits.
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

/// [`scan`] for an exact node: `keys` are sorted [`exact_key`]s, the first `reg_n`
/// non-missing; `values[position]` is the row's value and `yc[position]` its packed
/// class and count.
/// Splits between neighbouring values at their midpoint (never between values
/// closer than [`FEATURE_THRESHOLD`]).
#[allow(clippy::too_many_arguments)]
fn scan_exact(
    keys: &[u64],
    values: &[f64],
    reg_n: usize,
    yc: &[u64],
    totals: &[u64],
    cw: &[f64],
    lim: GrowLimits,
    feature: usize,
    left: &mut [u64],
    nan: &mut [u64],
    best_left: &mut [u64],
    best: &mut Option<Best>,
    best_proxy: &mut f64,
) {
    let msl = lim.min_samples_leaf as u64;
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
    let mut record =
        |proxy: f64, threshold: f64, missing_left: bool, left: &[u64], add_nan: bool| {
            if proxy <= *best_proxy {
                return;
            }
            *best_proxy = proxy;
            *best = Some(Best {
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
            && let Some(p) = proxy_of(|c| left[c], totals, cw, lim.criterion)
        {
            record(p, threshold, false, left, false);
        }
        if nan_n > 0
            && fits(left_n + nan_n)
            && let Some(p) = proxy_of(|c| left[c] + nan[c], totals, cw, lim.criterion)
        {
            record(p, threshold, true, left, true);
        }
    }
    if nan_n > 0
        && fits(reg_n as u64)
        && let Some(p) = proxy_of(|c| left[c], totals, cw, lim.criterion)
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
