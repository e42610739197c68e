//! [`OnnxPrecision::ExactDouble`](super::OnnxPrecision::ExactDouble): `ai.onnx.ml`
//! opset 5's `TreeEnsemble`, whose outputs have the input's type, so a float64
//! graph computes in float64 from input to output.
//!
//! A `TreeEnsemble` leaf feeds one target, so a Random Forest of `C` classes is
//! written as `C` copies of its trees, copy `c` summing the leaves' class-`c`
//! probabilities (Vigil's float32 values, exact in float64) into target `c`; the
//! sums are scaled by `1 / trees`, as Vigil sums and scales them, and the label is
//! the first most probable class, as Vigil's. (Trees that output leaf indices into
//! one probability table would keep one copy but need an `[N, trees, C]` float64
//! intermediate: 1.6 GB for a million rows of a 100-tree binary forest.)
//! An Isolation Forest's trees sum their leaves' path lengths.

use super::graph::{Graph, ML_DOMAIN, attr_doubles, attr_int, attr_ints};
use super::proto::{ATTR_TENSOR, AttributeProto, TensorProto, UINT8};
use crate::tree::{FEATURE_MASK, MISSING_LEFT, Node};

/// `TreeEnsemble`'s node and leaf arrays.
#[derive(Debug, Default)]
struct Trees {
    feature_ids: Vec<i64>,
    splits: Vec<f64>,
    true_ids: Vec<i64>,
    true_leafs: Vec<i64>,
    false_ids: Vec<i64>,
    false_leafs: Vec<i64>,
    missing_true: Vec<i64>,
    roots: Vec<i64>,
    leaf_targets: Vec<i64>,
    leaf_weights: Vec<f64>,
}

impl Trees {
    /// Adds a tree whose leaves go to `target` with `weight(leaf)`.
    fn add(&mut self, nodes: &[Node], target: i64, mut weight: impl FnMut(&Node) -> f64) {
        // Where each Vigil node lands: (is a leaf, index in the node or leaf arrays).
        let mut at = Vec::with_capacity(nodes.len());
        let (mut n_split, mut n_leaf) = (self.splits.len() as i64, self.leaf_weights.len() as i64);
        for n in nodes {
            if n.is_leaf() {
                at.push((1, n_leaf));
                n_leaf += 1;
            } else {
                at.push((0, n_split));
                n_split += 1;
            }
        }
        if nodes.len() == 1 {
            // A tree that is one leaf: a split whose both sides are that leaf (a
            // root must be a node).
            self.roots.push(self.splits.len() as i64);
            self.push_split(0, 0.0, at[0], at[0], false);
        } else {
            self.roots.push(at[0].1);
        }
        for n in nodes {
            if n.is_leaf() {
                self.leaf_targets.push(target);
                self.leaf_weights.push(weight(n));
            } else {
                let c = n.child as usize;
                let feature = i64::from(n.feature & FEATURE_MASK);
                let missing_left = n.feature & MISSING_LEFT != 0;
                self.push_split(feature, n.threshold, at[c], at[c + 1], missing_left);
            }
        }
    }

    fn push_split(
        &mut self,
        feature: i64,
        threshold: f64,
        left: (i64, i64),
        right: (i64, i64),
        missing_left: bool,
    ) {
        self.feature_ids.push(feature);
        self.splits.push(threshold);
        self.true_leafs.push(left.0);
        self.true_ids.push(left.1);
        self.false_leafs.push(right.0);
        self.false_ids.push(right.1);
        self.missing_true.push(i64::from(missing_left));
    }

    fn node(self, g: &mut Graph, input: &str, output: &str, n_targets: usize) {
        let modes = AttributeProto {
            name: "nodes_modes".into(),
            // 0 is BRANCH_LEQ.
            t: Some(TensorProto {
                dims: vec![self.splits.len() as i64],
                data_type: UINT8,
                int32_data: vec![0; self.splits.len()],
                ..Default::default()
            }),
            r#type: ATTR_TENSOR,
            ..Default::default()
        };
        let attributes = vec![
            attr_ints("nodes_featureids", self.feature_ids),
            modes,
            attr_doubles("nodes_splits", self.splits),
            attr_ints("nodes_truenodeids", self.true_ids),
            attr_ints("nodes_trueleafs", self.true_leafs),
            attr_ints("nodes_falsenodeids", self.false_ids),
            attr_ints("nodes_falseleafs", self.false_leafs),
            attr_ints("nodes_missing_value_tracks_true", self.missing_true),
            attr_ints("tree_roots", self.roots),
            attr_ints("leaf_targetids", self.leaf_targets),
            attr_doubles("leaf_weights", self.leaf_weights),
            attr_int("n_targets", n_targets as i64),
            // SUM, NONE.
            attr_int("aggregate_function", 1),
            attr_int("post_transform", 0),
        ];
        g.node("TreeEnsemble", ML_DOMAIN, &[input], &[output], attributes);
    }
}

/// Adds a Random Forest's label (`[N]` int64) and probabilities (`[N, C]`
/// double) as `label` and `probabilities`.
pub(crate) fn add_classifier(
    g: &mut Graph,
    trees: &[(&[Node], &[f32])],
    labels: Vec<i64>,
    (input, prefix): (&str, &str),
    label: &str,
    probabilities: &str,
) {
    let k = labels.len();
    let mut ensemble = Trees::default();
    for class in 0..k {
        for (nodes, values) in trees {
            ensemble.add(nodes, class as i64, |leaf| {
                f64::from(values[leaf.child as usize * k + class])
            });
        }
    }
    let (sums, class_index) = (format!("{prefix}_sums"), format!("{prefix}_class_index"));
    ensemble.node(g, input, &sums, k);
    let scale = g.real(
        &format!("{prefix}_scale"),
        1.0 / trees.len() as f64,
        super::OnnxPrecision::ExactDouble,
    );
    g.node("Mul", "", &[&sums, &scale], &[probabilities], vec![]);
    g.node(
        "ArgMax",
        "",
        &[probabilities],
        &[&class_index],
        vec![
            attr_int("axis", 1),
            attr_int("keepdims", 0),
            attr_int("select_last_index", 0),
        ],
    );
    let classes = g.ints(&format!("{prefix}_classes"), labels, vec![k as i64]);
    g.node(
        "Gather",
        "",
        &[&classes, &class_index],
        &[label],
        vec![attr_int("axis", 0)],
    );
}

/// Adds the sum of an Isolation Forest's leaf path lengths (`[N, 1]` double).
pub(crate) fn add_path_sum(
    g: &mut Graph,
    trees: &[Vec<Node>],
    keep: f64,
    input: &str,
    output: &str,
) {
    let mut ensemble = Trees::default();
    for nodes in trees {
        ensemble.add(nodes, 0, |leaf| leaf.threshold * keep);
    }
    ensemble.node(g, input, output, 1);
}
