//! Decision trees stored as flat arrays.
//!
//! A tree is a `Vec<Node>` with the root at index 0. A split node's children sit
//! next to each other at `child` (left, `value <= threshold`) and `child + 1`
//! (right), always after their parent, so every walk moves forward and ends. A leaf
//! has `feature == LEAF`; what its `child` field means depends on the tree kind (an
//! index into the class-probability table of a classification tree; an Isolation
//! Tree keeps the leaf's path length in `threshold`).

/// Marks a leaf in [`Node::feature`].
pub(crate) const LEAF: u32 = u32::MAX;
/// Set in [`Node::feature`] when missing values (NaN) go to the left child.
pub(crate) const MISSING_LEFT: u32 = 1 << 31;
/// Masks the feature index out of [`Node::feature`].
pub(crate) const FEATURE_MASK: u32 = !MISSING_LEFT;

/// One node: 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Node {
    pub threshold: f64,
    /// Feature index, with [`MISSING_LEFT`] as a flag; [`LEAF`] for leaves.
    pub feature: u32,
    /// Left child (split nodes) or leaf payload index (leaves).
    pub child: u32,
}

impl Node {
    pub(crate) fn leaf(payload: u32, threshold: f64) -> Self {
        Node {
            threshold,
            feature: LEAF,
            child: payload,
        }
    }

    #[inline]
    pub(crate) fn is_leaf(&self) -> bool {
        self.feature == LEAF
    }
}

/// Walks from the root to a leaf and returns that leaf node. `row` must have at
/// least as many values as the largest feature index in the tree (checked when a
/// model is built or loaded).
#[inline]
pub(crate) fn find_leaf(nodes: &[Node], row: &[f64]) -> Node {
    let mut node = nodes[0];
    while !node.is_leaf() {
        let v = row[(node.feature & FEATURE_MASK) as usize];
        let go_left = v <= node.threshold || (v.is_nan() && node.feature & MISSING_LEFT != 0);
        node = nodes[node.child as usize + usize::from(!go_left)];
    }
    node
}

/// [`find_leaf`] for four (tree, row) walks at once (four trees for one row, or one
/// tree for four rows): the walks are independent chains of memory reads, so
/// interleaving them lets their cache misses and mispredicted exits overlap.
#[inline]
pub(crate) fn find_leaf4(walks: [(&[Node], &[f64]); 4]) -> [Node; 4] {
    let mut at = walks.map(|(nodes, _)| nodes[0]);
    loop {
        let mut walking = false;
        for (node, (nodes, row)) in at.iter_mut().zip(walks) {
            if !node.is_leaf() {
                walking = true;
                let v = row[(node.feature & FEATURE_MASK) as usize];
                let go_left =
                    v <= node.threshold || (v.is_nan() && node.feature & MISSING_LEFT != 0);
                *node = nodes[node.child as usize + usize::from(!go_left)];
            }
        }
        if !walking {
            return at;
        }
    }
}

/// Rows walked through one tree together in batch prediction.
pub(crate) const LOCKSTEP: usize = 8;

/// Trees at most this deep are walked a fixed number of steps (their depth) in
/// batch prediction; deeper ones step until no walk moves. Isolation Trees too
/// deep or too wide for the heap layout ([`crate::heap`]) but at most 12 levels
/// deep take the first path: most of their walks end at or near the depth limit,
/// so the fixed count wastes little and saves the per-step bookkeeping.
const FIXED_STEPS_MAX_DEPTH: u32 = 12;

/// A copy of a tree's nodes for [`for_each_leaf`], in which every leaf is a node
/// that sends every value back to itself: a walk that has reached its leaf can
/// keep stepping without a branch. Such a leaf has a NaN threshold (every
/// comparison is false, so every value goes right, to `child + 1`), `child` one
/// below its own index, and the leaf's payload in the NaN's low 51 bits, so the
/// node a walk ends on says what to add without a second lookup.
#[derive(Clone, Debug)]
pub(crate) struct Walk {
    nodes: Vec<Node>,
    /// Depth of the deepest leaf.
    depth: u32,
}

/// Compares bits: leaves' NaN thresholds would make `==` on `f64` always false.
impl PartialEq for Walk {
    fn eq(&self, other: &Self) -> bool {
        self.depth == other.depth
            && self.nodes.len() == other.nodes.len()
            && self.nodes.iter().zip(&other.nodes).all(|(a, b)| {
                (a.threshold.to_bits(), a.feature, a.child)
                    == (b.threshold.to_bits(), b.feature, b.child)
            })
    }
}

/// A quiet NaN; a walk leaf's payload fills its low 51 bits.
const LEAF_NAN: u64 = 0x7ff8_0000_0000_0000;
/// The bits of a walk leaf's threshold that hold its payload.
pub(crate) const PAYLOAD_MASK: u64 = (1 << 51) - 1;

impl Walk {
    /// `payload(i, leaf)` gives what [`Walk::payload`] reports for leaf node `i`
    /// (its low 51 bits: [`PAYLOAD_MASK`]).
    pub(crate) fn new(nodes: &[Node], payload: impl Fn(usize, &Node) -> u64) -> Self {
        let walk = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if n.is_leaf() {
                    Node {
                        threshold: f64::from_bits(LEAF_NAN | (payload(i, n) & PAYLOAD_MASK)),
                        feature: 0,
                        child: (i as u32).wrapping_sub(1),
                    }
                } else {
                    *n
                }
            })
            .collect();
        Walk {
            nodes: walk,
            depth: u32::try_from(depth_of(nodes)).unwrap_or(u32::MAX),
        }
    }

    /// A walk whose leaves report their own index in `nodes`.
    pub(crate) fn reporting_node_index(nodes: &[Node]) -> Self {
        Self::new(nodes, |i, _| i as u64)
    }

    /// Bytes of nodes a walk may touch.
    pub(crate) fn bytes(&self) -> usize {
        self.nodes.len() * size_of::<Node>()
    }

    /// The payload of walk leaf `at` (a node index [`for_each_leaf`] reported):
    /// what [`Walk::new`] was told for that leaf.
    #[inline(always)]
    pub(crate) fn payload(&self, at: u32) -> u64 {
        self.nodes[at as usize].threshold.to_bits() & PAYLOAD_MASK
    }
}

/// Calls `visit(i, leaf)` for every row `i` of `rows` (row-major, `n_features`
/// values each), `leaf` being the index of the leaf node the row falls in (see
/// [`Walk::payload`]). Rows are visited in order. `has_nan` says whether `rows`
/// holds any NaN (if not, a cheaper step that ignores missing values is used).
#[inline]
pub(crate) fn for_each_leaf(
    walk: &Walk,
    rows: &[f64],
    n_features: usize,
    has_nan: bool,
    visit: impl FnMut(usize, u32),
) {
    if has_nan {
        for_each_leaf_with::<true>(walk, rows, n_features, visit);
    } else {
        for_each_leaf_with::<false>(walk, rows, n_features, visit);
    }
}

#[inline]
fn for_each_leaf_with<const NAN: bool>(
    walk: &Walk,
    rows: &[f64],
    n_features: usize,
    mut visit: impl FnMut(usize, u32),
) {
    if walk.depth > FIXED_STEPS_MAX_DEPTH {
        let mut groups = rows.chunks_exact(n_features * LOCKSTEP);
        let mut i = 0;
        for group in &mut groups {
            for at in lockstep_until_still::<LOCKSTEP, NAN>(&walk.nodes, group, n_features) {
                visit(i, at);
                i += 1;
            }
        }
        for row in groups.remainder().chunks_exact(n_features) {
            let [at] = lockstep_until_still::<1, NAN>(&walk.nodes, row, n_features);
            visit(i, at);
            i += 1;
        }
        return;
    }
    let mut groups = rows.chunks_exact(n_features * LOCKSTEP);
    let mut i = 0;
    for group in &mut groups {
        for at in lockstep_fixed::<LOCKSTEP, NAN>(&walk.nodes, walk.depth, group, n_features) {
            visit(i, at);
            i += 1;
        }
    }
    for row in groups.remainder().chunks_exact(n_features) {
        let [at] = lockstep_fixed::<1, NAN>(&walk.nodes, walk.depth, row, n_features);
        visit(i, at);
        i += 1;
    }
}

/// Walks `G` rows (`rows`, row-major, `n_features` values each) through one tree
/// at once and returns the index of each row's leaf, taking exactly `depth` steps
/// (the tree's depth; walks that reach their leaf early stay on it). With
/// `NAN = false` the rows must hold no NaN.
///
/// Why: one root-to-leaf walk is a chain of dependent loads (node, then the row's
/// value, then the child), so a single walk leaves the CPU waiting at every level.
/// Several independent walks stepped in the same loop overlap those waits;
/// finished walks idle on their self-looping leaf. There is no data-dependent
/// branch inside a step. 8 walks beat 4 and 16, and the step without the
/// missing-value test is much faster, hence the two variants. On deep Random
/// Forest trees, 8 lockstep walks also beat lanes that each take a new row as soon
/// as their walk ends, likely because rows next to each other share much of their
/// upper path, so walks in lockstep hit the same cache lines (see benches/RESULTS.md, forest section).
#[inline]
fn lockstep_fixed<const G: usize, const NAN: bool>(
    nodes: &[Node],
    depth: u32,
    rows: &[f64],
    n_features: usize,
) -> [u32; G] {
    let mut at = [0u32; G];
    for _ in 0..depth {
        for (g, at) in at.iter_mut().enumerate() {
            *at = step_from::<NAN>(&nodes[*at as usize], rows, g * n_features);
        }
    }
    at
}

/// [`lockstep_fixed`] for trees of unknown or large depth: steps every walk until
/// none moves (all sit on their leaves).
#[inline]
fn lockstep_until_still<const G: usize, const NAN: bool>(
    nodes: &[Node],
    rows: &[f64],
    n_features: usize,
) -> [u32; G] {
    let mut at = [0u32; G];
    loop {
        let mut moved = 0u32;
        for (g, at) in at.iter_mut().enumerate() {
            let next = step_from::<NAN>(&nodes[*at as usize], rows, g * n_features);
            moved |= next ^ *at;
            *at = next;
        }
        if moved == 0 {
            return at;
        }
    }
}

/// One step of a walk: the child of `node` that the row starting at `rows[row]`
/// goes to (a walk leaf's own index).
#[inline(always)]
fn step_from<const NAN: bool>(node: &Node, rows: &[f64], row: usize) -> u32 {
    let v = rows[row + (node.feature & FEATURE_MASK) as usize];
    let go_left = if NAN {
        (v <= node.threshold) | (v.is_nan() & (node.feature & MISSING_LEFT != 0))
    } else {
        v <= node.threshold
    };
    node.child.wrapping_add(u32::from(!go_left))
}

/// A classification tree: nodes plus one probability row per leaf.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClassTree {
    pub nodes: Vec<Node>,
    /// `values[leaf * n_classes + k]`: probability of class `k` in that leaf.
    pub values: Vec<f32>,
    /// `nodes` prepared for batch prediction. Its leaves' payloads are both class
    /// probabilities ([`encode_pair`]) when `pairs_in_walk`, else the leaf's row
    /// in `values`.
    pub walk: Walk,
    /// Whether `walk`'s leaves hold [`encode_pair`]ed probabilities.
    pub pairs_in_walk: bool,
}

impl ClassTree {
    pub(crate) fn new(nodes: Vec<Node>, values: Vec<f32>, n_classes: usize) -> Self {
        // A binary tree's leaves carry their probabilities in the walk when every
        // leaf's pair can be: batch prediction then reads nothing but the walk.
        let pairs: Option<Vec<u64>> = (n_classes == 2)
            .then(|| {
                nodes
                    .iter()
                    .map(|n| {
                        if !n.is_leaf() {
                            return Some(0);
                        }
                        let at = 2 * n.child as usize;
                        let pair = values.get(at..at + 2)?;
                        encode_pair(pair[0], pair[1])
                    })
                    .collect()
            })
            .flatten();
        let walk = match &pairs {
            Some(pairs) => Walk::new(&nodes, |i, _| pairs[i]),
            None => Walk::new(&nodes, |_, leaf| u64::from(leaf.child)),
        };
        ClassTree {
            nodes,
            values,
            walk,
            pairs_in_walk: pairs.is_some(),
        }
    }

    /// The class probabilities of leaf number `leaf` (the payload of `walk` when
    /// not `pairs_in_walk`).
    #[inline]
    pub(crate) fn values_of(&self, leaf: u64, n_classes: usize) -> &[f32] {
        let at = leaf as usize * n_classes;
        &self.values[at..at + n_classes]
    }

    /// The class probabilities of the leaf `row` falls in.
    #[inline]
    pub(crate) fn leaf_values(&self, row: &[f64], n_classes: usize) -> &[f32] {
        let leaf = find_leaf(&self.nodes, row).child as usize;
        &self.values[leaf * n_classes..(leaf + 1) * n_classes]
    }

    /// Depth of the deepest leaf (root = 0).
    pub(crate) fn depth(&self) -> usize {
        depth_of(&self.nodes)
    }

    pub(crate) fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_leaf()).count()
    }
}

/// Both class probabilities `(p0, p1)` of a binary leaf in 39 bits (a walk leaf's
/// payload has 51), or `None` if they do not fit.
///
/// The smaller one is kept whole (a non-negative `f32` below 2 has its top two bits
/// clear, so 30 bits). The larger one is `1 - smaller` computed in `f32`, plus a
/// correction of at most ±127 units in the last place: the two probabilities of a
/// leaf sum to 1 up to rounding, so the correction is a few units at most. Bit 38
/// says which class holds the smaller one. The pair is kept only if
/// [`decode_pair`] gives it back bit for bit.
pub(crate) fn encode_pair(p0: f32, p1: f32) -> Option<u64> {
    let (small, large, class0_small) = if p1 <= p0 { (p1, p0, 0) } else { (p0, p1, 1) };
    let small_bits = small.to_bits();
    if small_bits >= 1 << 30 {
        return None;
    }
    let correction = i64::from(large.to_bits()) - i64::from((1.0 - small).to_bits());
    let correction = i8::try_from(correction).ok()?;
    let bits = u64::from(small_bits) | u64::from(correction as u8) << 30 | class0_small << 38;
    let (q0, q1) = decode_pair(bits);
    (q0.to_bits() == p0.to_bits() && q1.to_bits() == p1.to_bits()).then_some(bits)
}

/// The probabilities `(p0, p1)` that [`encode_pair`] packed into `bits`.
#[inline(always)]
pub(crate) fn decode_pair(bits: u64) -> (f32, f32) {
    let small = f32::from_bits((bits & ((1 << 30) - 1)) as u32);
    let correction = i32::from((bits >> 30) as u8 as i8);
    let large = f32::from_bits((1.0 - small).to_bits().wrapping_add_signed(correction));
    if bits >> 38 & 1 == 1 {
        (small, large)
    } else {
        (large, small)
    }
}

/// Depth of the deepest leaf: children always follow their parent, so one forward
/// pass suffices.
pub(crate) fn depth_of(nodes: &[Node]) -> usize {
    let mut depth = vec![0usize; nodes.len()];
    let mut max = 0;
    for (i, n) in nodes.iter().enumerate() {
        if !n.is_leaf() {
            let (c, d) = (n.child as usize, depth[i] + 1);
            depth[c] = d;
            depth[c + 1] = d;
            max = max.max(d);
        }
    }
    max
}

/// A lopsided test tree `depth` levels deep: node `2d` splits feature `d % 2` at
/// `d` (missing values left at every `missing_left_every`-th level, from level 0);
/// its left child is `leaf(d)`, its right child the next split (or `leaf(depth)`).
#[cfg(test)]
pub(crate) fn chain_tree(
    depth: u32,
    missing_left_every: u32,
    leaf: impl Fn(u32) -> Node,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for d in 0..depth {
        let at = nodes.len() as u32;
        let missing = if d % missing_left_every == 0 {
            MISSING_LEFT
        } else {
            0
        };
        nodes.push(Node {
            threshold: f64::from(d),
            feature: (d % 2) | missing,
            child: at + 1,
        });
        nodes.push(leaf(d));
    }
    nodes.push(leaf(depth));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(depth: u32) -> Vec<Node> {
        chain_tree(depth, 3, |d| Node::leaf(d, 0.0))
    }

    #[test]
    fn batch_walks_find_the_same_leaves_as_single_walks() {
        // Shallow trees take the fixed-step path, deep ones the until-no-move path;
        // the row counts cover fewer rows than a group and group remainders. A
        // tree that is one leaf (depth 0) has nothing to step.
        for depth in [
            0,
            1,
            5,
            FIXED_STEPS_MAX_DEPTH,
            FIXED_STEPS_MAX_DEPTH + 1,
            40,
        ] {
            let nodes = chain(depth);
            let walk = Walk::reporting_node_index(&nodes);
            assert_eq!(walk.depth, depth);
            for n_rows in [1, 3, 21, 100] {
                for with_nan in [false, true] {
                    let rows: Vec<f64> = (0..n_rows * 2)
                        .map(|i| {
                            if with_nan && i % 7 == 3 {
                                f64::NAN
                            } else {
                                ((i * 17) % 45) as f64 - 1.5
                            }
                        })
                        .collect();
                    let mut seen = 0;
                    for_each_leaf(&walk, &rows, 2, with_nan, |i, leaf| {
                        assert_eq!(i, seen, "rows are visited in order");
                        let expected = find_leaf(&nodes, &rows[i * 2..i * 2 + 2]);
                        assert_eq!(nodes[leaf as usize], expected, "depth {depth}, row {i}");
                        assert!(nodes[leaf as usize].is_leaf());
                        seen += 1;
                    });
                    assert_eq!(seen, n_rows);
                }
            }
        }
    }

    fn round_trips(p0: f32, p1: f32) -> bool {
        encode_pair(p0, p1).is_some_and(|bits| {
            let (q0, q1) = decode_pair(bits);
            q0.to_bits() == p0.to_bits() && q1.to_bits() == p1.to_bits()
        })
    }

    #[test]
    fn leaf_probabilities_from_counts_fit_in_a_walk_leaf() {
        // Every (c0, c1) with up to 1,200 rows, and large leaves with few rows of
        // one class, as fitting computes them: each class's count over the total.
        let ratio = |c: u64, n: u64| (c as f64 / n as f64) as f32;
        for n in 1..=1_200u64 {
            for c1 in 0..=n {
                let (p0, p1) = (ratio(n - c1, n), ratio(c1, n));
                assert!(round_trips(p0, p1), "{} of {n}", c1);
            }
        }
        for n in [65_537u64, 400_000, 1_000_003, 1 << 40] {
            for c1 in [0, 1, 2, 3, 17, n / 3, n / 2, n - 1, n] {
                let (p0, p1) = (ratio(n - c1, n), ratio(c1, n));
                assert!(round_trips(p0, p1), "{} of {n}", c1);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn weighted_leaf_probabilities_fit_in_a_walk_leaf(
            c0 in 0u32..100_000, c1 in 0u32..100_000, w0 in 0.01f64..100.0, w1 in 0.01f64..100.0,
        ) {
            // Class weights scale each count, as `class_weight` does.
            proptest::prop_assume!(c0 + c1 > 0);
            let (a, b) = (f64::from(c0) * w0, f64::from(c1) * w1);
            let (p0, p1) = ((a / (a + b)) as f32, (b / (a + b)) as f32);
            proptest::prop_assert!(round_trips(p0, p1));
        }
    }

    #[test]
    fn pairs_that_do_not_fit_are_refused() {
        for (p0, p1) in [
            (f32::NAN, 0.5),
            (0.5, f32::NAN),
            (-0.25, 1.25),
            (-0.0, 1.0),
            (0.5, 0.7),
            (3.0, 4.0),
        ] {
            assert_eq!(encode_pair(p0, p1), None, "({p0}, {p1})");
        }
    }

    #[test]
    fn binary_trees_keep_leaf_probabilities_in_the_walk_when_they_fit() {
        // Leaves 0..3 hold (1, 0), (0.25, 0.75), (0, 1), (2/3, 1/3).
        let values = vec![1.0, 0.0, 0.25, 0.75, 0.0, 1.0, 2.0 / 3.0, 1.0 / 3.0];
        let nodes = chain_tree(3, 1, |d| Node::leaf(d, 0.0));
        let tree = ClassTree::new(nodes.clone(), values.clone(), 2);
        assert!(tree.pairs_in_walk);
        for (i, n) in nodes.iter().enumerate().filter(|(_, n)| n.is_leaf()) {
            let (p0, p1) = decode_pair(tree.walk.payload(i as u32));
            assert_eq!([p0, p1], tree.values_of(u64::from(n.child), 2));
        }
        // One pair that does not fit sends the whole tree back to value rows.
        let mut odd = values.clone();
        odd[2..4].copy_from_slice(&[0.5, 0.7]);
        let tree = ClassTree::new(nodes.clone(), odd, 2);
        assert!(!tree.pairs_in_walk);
        // So do models with more than two classes.
        let three: Vec<f32> = values.chunks(2).flat_map(|p| [p[0], p[1], 0.0]).collect();
        let tree = ClassTree::new(nodes.clone(), three, 3);
        assert!(!tree.pairs_in_walk);
        for (i, n) in nodes.iter().enumerate().filter(|(_, n)| n.is_leaf()) {
            assert_eq!(tree.walk.payload(i as u32), u64::from(n.child));
        }
    }
}
