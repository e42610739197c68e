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

/// A classification tree: nodes plus one probability row per leaf.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClassTree {
    pub nodes: Vec<Node>,
    /// `values[leaf * n_classes + k]`: probability of class `k` in that leaf.
    pub values: Vec<f32>,
}

impl ClassTree {
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
