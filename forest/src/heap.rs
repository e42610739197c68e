//! Shallow Isolation Trees laid out in heap order, for batch scoring.
//!
//! With the default 256 samples an Isolation Tree is at most 8 levels deep, so it
//! fits a complete binary tree of 255 split slots: the children of slot `h` are
//! `2h + 1` and `2h + 2`, and no child index is stored or loaded. A leaf above the
//! bottom level is extended down to it by slots that send every value (NaN too)
//! left, so every walk takes exactly `depth` steps and ends on one of `2^depth`
//! bottom slots, which hold the leaves' path lengths.
//!
//! Why: scoring is bound by the work per step, not by memory (100 such trees take
//! ~430 KB). Indices below 256 into fixed-size arrays, and rows copied into
//! fixed-size buffers, need no bounds checks, and a step is a handful of
//! instructions: load the slot's feature and threshold, load the row's value,
//! compare, move to a child. Values and thresholds are compared as integer keys
//! ([`order_key`]), which is exact. On the default forest this scores faster than
//! the general node walk, with identical scores, and the lane groups below add to
//! that (see benches/RESULTS.md, forest section).

use crate::tree::{FEATURE_MASK, MISSING_LEFT, Node};

/// Deepest tree laid out in heap order.
const MAX_DEPTH: u32 = 8;
/// Split slots (levels `0..MAX_DEPTH`) and bottom slots (level `MAX_DEPTH`).
const SLOTS: usize = 1 << MAX_DEPTH;
/// Widest rows scored this way (a row is copied into a buffer of this size).
pub(crate) const MAX_FEATURES: usize = 64;
/// Most memory of a heap layout, as a multiple of the trees' node memory.
const MAX_GROWTH: usize = 4;
/// Set in a slot's feature byte when NaN goes left.
const NAN_LEFT: u8 = 0x80;
/// Walks stepped together (as in [`crate::tree`], for the same reason: their
/// dependent loads overlap). 8 beat 4 and tied with 16 (see benches/RESULTS.md, forest section).
const LANES: usize = 8;
/// Groups of lanes that walk a block of trees before the next block: their rows
/// (16 KB) and the block's trees (17 KB) stay in L1, which beat one group walking
/// every tree (see benches/RESULTS.md, forest section).
const LANE_GROUPS: usize = 4;
/// Trees per block (see [`LANE_GROUPS`]).
const TREE_BLOCK: usize = 4;

/// `value` as an unsigned integer whose order is the order of the values: for any
/// `a` and `b` that are not NaN, `a <= b` exactly when `order_key(a) <=
/// order_key(b)` (`-0.0` and `0.0` share a key). Every NaN maps to [`NAN_KEY`],
/// above every number's key.
///
/// Why: heap walks compare keys, not floats. On x86 a float compare waits for a
/// floating-point load (slower than an integer one) and moves its result across
/// to the integer side, cycles added to every step of a walk's dependent chain.
/// Keys beat floats on the default forest in every alternating pair, with
/// identical scores; they gained nothing in the node walk of deep Random Forest
/// trees, whose steps carry more instructions (see benches/RESULTS.md, forest section).
#[inline]
fn order_key(value: f64) -> u64 {
    if value.is_nan() {
        return NAN_KEY;
    }
    // `+ 0.0` turns -0.0 into 0.0 (they compare equal, so they need one key).
    let bits = (value + 0.0).to_bits();
    if bits >> 63 == 1 {
        // Negative: a larger magnitude is a smaller number.
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The [`order_key`] of every NaN.
const NAN_KEY: u64 = u64::MAX;

/// One tree: split slots in heap order and the bottom level's path lengths.
#[derive(Clone, Debug, PartialEq)]
struct HeapTree {
    /// Feature of split slot `h` (`| NAN_LEFT` when NaN goes left).
    feature: [u8; SLOTS],
    /// The [`order_key`] of slot `h`'s threshold: a value whose key is at most
    /// this goes left.
    threshold: [u64; SLOTS],
    /// Path length of the walk ending on bottom slot `s`.
    path: [f64; SLOTS],
}

/// A forest of Isolation Trees in heap order (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeapForest {
    trees: Vec<HeapTree>,
    /// Steps of every walk: the deepest tree's depth.
    depth: u32,
}

impl HeapForest {
    /// Lays out `trees` (Isolation Trees: leaves keep their path length in
    /// `threshold`), or `None` when a tree is deeper than 8 levels or rows are
    /// wider than [`MAX_FEATURES`]. `depth` is the deepest tree's depth.
    ///
    /// Also `None` when the layout would take more than [`MAX_GROWTH`] times the
    /// trees' own node memory: every heap tree takes 4.3 KB, however few nodes it
    /// has, and a file of tiny trees must not make loading allocate hundreds of
    /// times what it holds. Bushy trees, as fitting grows them, take less than
    /// their nodes.
    pub(crate) fn new(trees: &[Vec<Node>], depth: usize, n_features: usize) -> Option<Self> {
        let node_bytes: usize = trees.iter().map(|t| t.len() * size_of::<Node>()).sum();
        if trees.len() * size_of::<HeapTree>() > MAX_GROWTH * node_bytes {
            return None;
        }
        Self::layout(trees, depth, n_features)
    }

    /// [`HeapForest::new`] without the memory bound.
    fn layout(trees: &[Vec<Node>], depth: usize, n_features: usize) -> Option<Self> {
        let depth = u32::try_from(depth).ok().filter(|&d| d <= MAX_DEPTH)?;
        if n_features > MAX_FEATURES {
            return None;
        }
        let bottom = (1usize << depth) - 1;
        let mut out = Vec::with_capacity(trees.len());
        for nodes in trees {
            let mut tree = HeapTree {
                feature: [0; SLOTS],
                threshold: [0; SLOTS],
                path: [0.0; SLOTS],
            };
            // (node, heap slot, level)
            let mut stack = vec![(0usize, 0usize, 0u32)];
            while let Some((i, h, level)) = stack.pop() {
                let node = nodes.get(i)?;
                if level == depth {
                    // Only leaves reach the bottom (the tree is at most `depth` deep).
                    if !node.is_leaf() {
                        return None;
                    }
                    tree.path[h - bottom] = node.threshold;
                } else if node.is_leaf() {
                    // Extend the leaf: everything goes left, down to the bottom.
                    tree.feature[h] = NAN_LEFT;
                    tree.threshold[h] = order_key(f64::INFINITY);
                    stack.push((i, 2 * h + 1, level + 1));
                } else {
                    let f = (node.feature & FEATURE_MASK) as u8;
                    let nan_left = if node.feature & MISSING_LEFT != 0 {
                        NAN_LEFT
                    } else {
                        0
                    };
                    tree.feature[h] = f | nan_left;
                    tree.threshold[h] = order_key(node.threshold);
                    let child = node.child as usize;
                    stack.push((child, 2 * h + 1, level + 1));
                    stack.push((child + 1, 2 * h + 2, level + 1));
                }
            }
            out.push(tree);
        }
        Some(HeapForest { trees: out, depth })
    }

    /// Adds each row's path lengths, summed over the trees in their order, to
    /// `out` (one per row of `rows`, row-major, `n_features <= MAX_FEATURES`
    /// values each). Returns `true` when some value of `rows` is infinite; `out`
    /// then holds sums the caller must not use (it reports the infinity instead).
    ///
    /// Why here: turning the rows into keys reads every value anyway, so this
    /// pass also finds infinities and NaN, instead of two more passes over the
    /// rows (a scan for infinities before scoring and one for NaN, which chose
    /// the walk). Each group of [`LANES`] rows takes the walk without NaN
    /// handling unless one of its rows has a NaN.
    pub(crate) fn add_path_lengths(
        &self,
        rows: &[f64],
        n_features: usize,
        out: &mut [f64],
    ) -> bool {
        let mut lanes = [[[0; MAX_FEATURES]; LANES]; LANE_GROUPS];
        let mut any_infinite = false;
        for (group, out) in rows
            .chunks(n_features * LANES * LANE_GROUPS)
            .zip(out.chunks_mut(LANES * LANE_GROUPS))
        {
            let n_groups = out.len().div_ceil(LANES);
            let mut has_nan = [false; LANE_GROUPS];
            for (g, (lanes, rows)) in lanes
                .iter_mut()
                .zip(group.chunks(n_features * LANES))
                .enumerate()
            {
                let (mut nan, mut infinite) = (false, false);
                for (lane, row) in lanes.iter_mut().zip(rows.chunks_exact(n_features)) {
                    for (key, &v) in lane.iter_mut().zip(row) {
                        *key = order_key(v);
                        nan |= v.is_nan();
                        infinite |= v.abs() == f64::INFINITY;
                    }
                }
                has_nan[g] = nan;
                any_infinite |= infinite;
            }
            for block in self.trees.chunks(TREE_BLOCK) {
                for ((lanes, out), &nan) in lanes[..n_groups]
                    .iter()
                    .zip(out.chunks_mut(LANES))
                    .zip(&has_nan)
                {
                    for tree in block {
                        let slots = if nan {
                            walk::<true>(tree, self.depth, lanes)
                        } else {
                            walk::<false>(tree, self.depth, lanes)
                        };
                        // A short last group's spare lanes walk stale rows; only real
                        // rows are added.
                        for (o, s) in out.iter_mut().zip(slots) {
                            *o += tree.path[s];
                        }
                    }
                }
            }
        }
        any_infinite
    }
}

/// Walks the [`LANES`] rows of `lanes` through `tree` and returns each walk's
/// bottom slot.
#[inline]
fn walk<const NAN: bool>(
    tree: &HeapTree,
    depth: u32,
    lanes: &[[u64; MAX_FEATURES]; LANES],
) -> [usize; LANES] {
    let mut at = [0usize; LANES];
    for _ in 0..depth {
        for (h, row) in at.iter_mut().zip(lanes) {
            // Before the last step `h < 255`: the mask only lets the compiler drop
            // the bounds checks.
            let slot = *h & (SLOTS - 1);
            let f = tree.feature[slot];
            let v = row[usize::from(f) & (MAX_FEATURES - 1)];
            let t = tree.threshold[slot];
            let left = if NAN {
                (v <= t) | ((v == NAN_KEY) & (f & NAN_LEFT != 0))
            } else {
                v <= t
            };
            *h = 2 * *h + 2 - usize::from(left);
        }
    }
    let bottom = (1usize << depth) - 1;
    at.map(|h| (h - bottom) & (SLOTS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{chain_tree, find_leaf};
    use proptest::prelude::*;

    /// Values where a key could go wrong: both zeros, infinities, the smallest
    /// subnormals and normals, the extremes, NaNs of both signs.
    const EDGES: [f64; 14] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::MAX,
        f64::MIN,
        f64::NAN,
        -f64::NAN,
    ];

    /// Checks that the keys of `a` and `b` compare as `a` and `b` do.
    fn keys_agree(a: f64, b: f64) -> std::result::Result<(), String> {
        let (ka, kb) = (order_key(a), order_key(b));
        let agree = if a.is_nan() || b.is_nan() {
            (ka == NAN_KEY) == a.is_nan() && (kb == NAN_KEY) == b.is_nan()
        } else {
            (a <= b) == (ka <= kb) && (a == b) == (ka == kb) && ka < NAN_KEY
        };
        if agree {
            Ok(())
        } else {
            Err(format!("{a:e} vs {b:e}: keys {ka:#x}, {kb:#x}"))
        }
    }

    #[test]
    fn order_keys_compare_as_the_edge_values_do() {
        for a in EDGES {
            for b in EDGES {
                keys_agree(a, b).unwrap();
            }
        }
    }

    proptest! {
        #[test]
        fn order_keys_compare_as_the_values_do(
            a in prop_oneof![any::<u64>().prop_map(f64::from_bits), prop::sample::select(EDGES.to_vec())],
            b in prop_oneof![any::<u64>().prop_map(f64::from_bits), prop::sample::select(EDGES.to_vec())],
        ) {
            keys_agree(a, b).map_err(TestCaseError::fail)?;
        }
    }

    /// A lopsided tree `depth` levels deep on two features (NaN left at every
    /// other level); leaf `d` has path length `d + 0.5`.
    fn chain(depth: u32) -> Vec<Node> {
        chain_tree(depth, 2, |d| Node::leaf(0, f64::from(d) + 0.5))
    }

    #[test]
    fn heap_walks_add_the_same_path_lengths_as_node_walks() {
        for depth in 0..=MAX_DEPTH {
            // Trees of every depth up to the deepest, as in a real forest (more
            // trees than a block at the larger depths).
            let trees: Vec<Vec<Node>> = (0..=depth).map(chain).collect();
            let forest = HeapForest::layout(&trees, depth as usize, 2).unwrap();
            // Short groups of lanes, and more rows than one pass takes.
            for n_rows in [5, 21, 75] {
                // No NaN; NaN in every group of lanes; NaN in a few groups only (a
                // pass then takes both walks).
                for nan_every in [0, 5, 61] {
                    // Values between thresholds, on them (thresholds are 0, 1, ...),
                    // and -0.0 (equal to the threshold 0.0, so it goes left).
                    let rows: Vec<f64> = (0..n_rows * 2)
                        .map(|i| {
                            if nan_every > 0 && i % nan_every == 1 {
                                f64::NAN
                            } else if i % 7 == 3 {
                                -0.0
                            } else if i % 3 == 0 {
                                ((i * 5) % 9) as f64
                            } else {
                                ((i * 17) % 23) as f64 - 1.5
                            }
                        })
                        .collect();
                    let mut out = vec![0.0; n_rows];
                    assert!(!forest.add_path_lengths(&rows, 2, &mut out));
                    for (i, &got) in out.iter().enumerate() {
                        let row = &rows[i * 2..i * 2 + 2];
                        let want: f64 = trees.iter().map(|t| find_leaf(t, row).threshold).sum();
                        assert_eq!(got, want, "depth {depth}, row {i}, NaN every {nan_every}");
                    }
                }
            }
        }
    }

    #[test]
    fn infinities_are_reported_wherever_they_are() {
        let trees: Vec<Vec<Node>> = (0..=3).map(chain).collect();
        let forest = HeapForest::layout(&trees, 3, 2).unwrap();
        let n_rows = 75;
        let mut out = vec![0.0; n_rows];
        for at in [0, 1, 63, 64, 2 * n_rows - 1] {
            for value in [f64::INFINITY, f64::NEG_INFINITY] {
                let mut rows = vec![0.5; 2 * n_rows];
                rows[at] = value;
                assert!(
                    forest.add_path_lengths(&rows, 2, &mut out),
                    "{value} at {at}"
                );
            }
        }
        // NaN and the extremes are not infinities.
        let rows = [f64::NAN, f64::MAX, -f64::MAX, f64::NAN];
        assert!(!forest.add_path_lengths(&rows, 2, &mut out[..2]));
    }

    #[test]
    fn deep_trees_and_wide_rows_are_left_to_the_general_walk() {
        assert!(HeapForest::layout(&[chain(9)], 9, 2).is_none());
        assert!(HeapForest::layout(&[chain(3)], 3, MAX_FEATURES + 1).is_none());
        assert!(HeapForest::layout(&[chain(3)], 3, MAX_FEATURES).is_some());
    }

    #[test]
    fn sparse_trees_are_not_blown_up_into_heap_trees() {
        // A one-leaf tree is 16 bytes of nodes; its heap tree would be 4.3 KB.
        let leaves = vec![vec![Node::leaf(0, 1.0)]; 1000];
        assert!(HeapForest::layout(&leaves, 0, 2).is_some());
        assert!(HeapForest::new(&leaves, 0, 2).is_none());
        // A complete tree of depth 8 (511 nodes, 8 KB) lays out in less.
        let mut full = Vec::new();
        for i in 0..511u32 {
            full.push(if i < 255 {
                Node {
                    threshold: f64::from(i),
                    feature: 0,
                    child: 2 * i + 1,
                }
            } else {
                Node::leaf(0, 8.0)
            });
        }
        assert!(HeapForest::new(&[full], 8, 2).is_some());
    }
}
