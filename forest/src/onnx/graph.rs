//! Building blocks of the exported graphs: attributes, constants, nodes, typed
//! values, and the tree-ensemble attributes of `ai.onnx.ml`'s tree operators.

use super::OnnxPrecision;
use super::proto::{
    ATTR_FLOATS, ATTR_INT, ATTR_INTS, ATTR_STRING, ATTR_STRINGS, ATTR_TENSOR, AttributeProto,
    DOUBLE, Dimension, FLOAT, INT64, NodeProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto,
};
use crate::tree::{FEATURE_MASK, MISSING_LEFT, Node};

/// The `ai.onnx.ml` domain of the tree operators.
pub(crate) const ML_DOMAIN: &str = "ai.onnx.ml";

pub(crate) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(i),
        r#type: ATTR_INT,
        ..Default::default()
    }
}

pub(crate) fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: Some(s.as_bytes().to_vec()),
        r#type: ATTR_STRING,
        ..Default::default()
    }
}

pub(crate) fn attr_ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints,
        r#type: ATTR_INTS,
        ..Default::default()
    }
}

pub(crate) fn attr_floats(name: &str, floats: Vec<f32>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        floats,
        r#type: ATTR_FLOATS,
        ..Default::default()
    }
}

pub(crate) fn attr_strings(name: &str, strings: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        r#type: ATTR_STRINGS,
        ..Default::default()
    }
}

pub(crate) fn attr_doubles(name: &str, values: Vec<f64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        t: Some(TensorProto {
            dims: vec![values.len() as i64],
            data_type: DOUBLE,
            double_data: values,
            ..Default::default()
        }),
        r#type: ATTR_TENSOR,
        ..Default::default()
    }
}

/// Values of `precision`'s type: `floats` for float32, a double tensor
/// (`{name}_as_tensor`) for float64.
fn attr_reals(name: &str, values: Vec<f64>, precision: OnnxPrecision) -> AttributeProto {
    match precision {
        OnnxPrecision::Float => attr_floats(name, values.iter().map(|&v| v as f32).collect()),
        _ => attr_doubles(&format!("{name}_as_tensor"), values),
    }
}

/// The ONNX element type of `precision`.
pub(crate) fn elem(precision: OnnxPrecision) -> i32 {
    match precision {
        OnnxPrecision::Float => FLOAT,
        _ => DOUBLE,
    }
}

/// A tensor type: `Some(n)` dimensions are fixed, `None` is the row count `N`.
pub(crate) fn value_info(name: &str, elem_type: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(n) => Dimension {
                dim_value: Some(*n),
                dim_param: None,
            },
            None => Dimension {
                dim_value: None,
                dim_param: Some("N".into()),
            },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// The nodes and constants of a graph under construction.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
}

impl Graph {
    /// Adds a node named after its first output.
    pub(crate) fn node(
        &mut self,
        op_type: &str,
        domain: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op_type}_{}", outputs.first().copied().unwrap_or("")),
            op_type: op_type.into(),
            attribute,
            domain: domain.into(),
        });
    }

    /// A scalar constant of `precision`'s type.
    pub(crate) fn real(&mut self, name: &str, value: f64, precision: OnnxPrecision) -> String {
        let mut t = TensorProto {
            data_type: elem(precision),
            name: name.into(),
            ..Default::default()
        };
        match precision {
            OnnxPrecision::Float => t.float_data = vec![value as f32],
            _ => t.double_data = vec![value],
        }
        self.initializers.push(t);
        name.into()
    }

    /// An int64 constant of shape `dims` (empty: a scalar).
    pub(crate) fn ints(&mut self, name: &str, values: Vec<i64>, dims: Vec<i64>) -> String {
        self.initializers.push(TensorProto {
            dims,
            data_type: INT64,
            int64_data: values,
            name: name.into(),
            ..Default::default()
        });
        name.into()
    }
}

/// The largest `f32` at most `t`: an `f32` value `v` has `v <= t` exactly when
/// `v <= below_f32(t)`, so a float32 comparison routes every float32 input as
/// Vigil's float64 comparison does.
pub(crate) fn below_f32(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) > t { f.next_down() } else { f }
}

/// The node attributes shared by `TreeEnsembleClassifier` and
/// `TreeEnsembleRegressor`, plus the leaf entries (`class_*` or `target_*`).
#[derive(Debug, Default)]
pub(crate) struct Ensemble {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    modes: Vec<&'static str>,
    thresholds: Vec<f64>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    leaf_tree: Vec<i64>,
    leaf_node: Vec<i64>,
    leaf_id: Vec<i64>,
    leaf_weight: Vec<f64>,
}

impl Ensemble {
    /// Adds tree `tree`; `leaf(node)` gives the `(class or target id, weight)`
    /// entries of a leaf.
    pub(crate) fn add_tree(
        &mut self,
        tree: usize,
        nodes: &[Node],
        mut leaf: impl FnMut(&Node) -> Vec<(i64, f64)>,
    ) {
        let tree = tree as i64;
        for (i, n) in nodes.iter().enumerate() {
            self.tree_ids.push(tree);
            self.node_ids.push(i as i64);
            if n.is_leaf() {
                self.feature_ids.push(0);
                self.modes.push("LEAF");
                self.thresholds.push(0.0);
                self.true_ids.push(0);
                self.false_ids.push(0);
                self.missing_true.push(0);
                for (id, weight) in leaf(n) {
                    self.leaf_tree.push(tree);
                    self.leaf_node.push(i as i64);
                    self.leaf_id.push(id);
                    self.leaf_weight.push(weight);
                }
            } else {
                // Vigil goes left when `value <= threshold`: ONNX's true branch.
                self.feature_ids.push(i64::from(n.feature & FEATURE_MASK));
                self.modes.push("BRANCH_LEQ");
                self.thresholds.push(n.threshold);
                self.true_ids.push(i64::from(n.child));
                self.false_ids.push(i64::from(n.child) + 1);
                self.missing_true
                    .push(i64::from(n.feature & MISSING_LEFT != 0));
            }
        }
    }

    /// The operator's attributes; `leaf` is `"class"` or `"target"`.
    pub(crate) fn attributes(self, leaf: &str, precision: OnnxPrecision) -> Vec<AttributeProto> {
        let thresholds = match precision {
            OnnxPrecision::Float => attr_floats(
                "nodes_values",
                self.thresholds.iter().map(|&t| below_f32(t)).collect(),
            ),
            _ => attr_doubles("nodes_values_as_tensor", self.thresholds),
        };
        vec![
            attr_ints("nodes_treeids", self.tree_ids),
            attr_ints("nodes_nodeids", self.node_ids),
            attr_ints("nodes_featureids", self.feature_ids),
            attr_strings("nodes_modes", &self.modes),
            thresholds,
            attr_ints("nodes_truenodeids", self.true_ids),
            attr_ints("nodes_falsenodeids", self.false_ids),
            attr_ints("nodes_missing_value_tracks_true", self.missing_true),
            attr_ints(&format!("{leaf}_treeids"), self.leaf_tree),
            attr_ints(&format!("{leaf}_nodeids"), self.leaf_node),
            attr_ints(&format!("{leaf}_ids"), self.leaf_id),
            attr_reals(&format!("{leaf}_weights"), self.leaf_weight, precision),
            attr_string("post_transform", "NONE"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_thresholds_route_float_inputs_as_double_ones() {
        for t in [
            0.1,
            -0.1,
            0.5,
            1.0 / 3.0,
            1e-40,
            -1e-40,
            1e39,
            -1e39,
            0.0,
            123.456,
        ] {
            let b = below_f32(t);
            assert!(f64::from(b) <= t, "{t}");
            // The next f32 up is above t: no f32 between b and t.
            assert!(f64::from(b.next_up()) > t, "{t}");
        }
        assert_eq!(below_f32(0.5), 0.5);
    }
}
