//! Export to ONNX with `ai.onnx.ml`'s tree operators, computing what skl2onnx's
//! converters compute for scikit-learn's forests (feature `onnx`).
//!
//! - A [`RandomForest`] becomes one `TreeEnsembleClassifier` (`ai.onnx.ml` opset
//!   3): every split `BRANCH_LEQ` (Vigil goes left when `value <= threshold`), the
//!   side a missing value (NaN) takes in `nodes_missing_value_tracks_true`, leaf
//!   weights the class probabilities divided by the tree count, `post_transform
//!   NONE`. A binary forest carries only the class-1 weight per leaf (class id 0),
//!   skl2onnx's layout: onnxruntime then gives `[1 - p, p]` and the label `p > 0.5`.
//! - An [`IsolationForest`] becomes one `TreeEnsembleRegressor` summing each
//!   tree's leaf path length (depth plus `c(rows in the leaf)`, what skl2onnx
//!   assembles per tree from leaf ids), then `-2^(-(sum / trees) / c(ψ))`
//!   (`score_samples`), minus the offset (`decision_function`), `< 0` (the anomaly
//!   flag, label -1 / 1).
//!
//! Precision ([`OnnxPrecision`]): with a float32 input, onnxruntime compares in
//! float32, so thresholds are rounded down to the largest float32 at most Vigil's
//! float64 threshold: every row of float32-representable values takes Vigil's path.
//! With a float64 input the thresholds are float64 (`nodes_values_as_tensor`, leaf
//! weights `*_weights_as_tensor`) and every float64 row takes Vigil's path, but
//! these operators' outputs are float32 by the ONNX specification. `ExactDouble`
//! uses `ai.onnx.ml` 5's `TreeEnsemble` instead, whose outputs are float64 (see
//! `exact`), for Vigil's numbers to float64 rounding.

mod exact;
mod graph;
mod proto;

use std::collections::HashSet;

use prost::Message;

use crate::error::{ForestError, Result};
use crate::isolation::{IsolationForest, average_path_length};
use crate::random_forest::RandomForest;
use graph::{Ensemble, Graph, ML_DOMAIN, attr_int, attr_ints, attr_string, elem};
use proto::{BOOL, INT64, ModelProto, OperatorSetIdProto, StringStringEntryProto};

/// The input while a graph is built; renamed to the caller's input name at the
/// end, so that name can be checked against every value the graph computes (a
/// control character: no checked name equals it).
const INPUT: &str = "\u{1}input";
/// protobuf cannot encode or parse a message over 2 GiB.
const MAX_PROTO_BYTES: usize = i32::MAX as usize;

/// The IR version of [`OnnxPrecision::Double`] and [`OnnxPrecision::Float`]
/// models (8: onnx 1.10+, onnxruntime 1.10+), set explicitly: the one
/// `onnx.helper.make_model` stamps by default may be newer than a runtime reads.
/// [`OnnxPrecision::versions`] gives each precision's.
pub const ONNX_IR_VERSION: i64 = 8;
/// The default (`""`) operator set those models import.
pub const ONNX_OPSET: i64 = 17;
/// The `ai.onnx.ml` operator set those models import.
pub const ONNX_ML_OPSET: i64 = 3;

/// The element type of an exported model's input and real outputs, its tree
/// thresholds, and the operators used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnnxPrecision {
    /// float64 input and thresholds (`nodes_values_as_tensor`) in
    /// `TreeEnsembleClassifier` / `TreeEnsembleRegressor` (`ai.onnx.ml` 3, as
    /// skl2onnx): every float64 row is routed as Vigil routes it, but those
    /// operators' outputs are float32 by the specification, so probabilities and
    /// path-length sums carry float32 rounding (measured below 1e-7), and a tie
    /// between two classes' probabilities may be labelled either way. The default:
    /// the operators of the issue and of skl2onnx, run by any onnxruntime since 1.11.
    #[default]
    Double,
    /// float32 input, thresholds rounded down to float32, the same operators: every
    /// row of float32-representable values is routed as Vigil routes it; other
    /// float64 values are rounded by the caller's cast and may cross a threshold.
    /// That is common on gridded data, where a bootstrap midpoint often equals an
    /// out-of-bag value: on 2,000 rows of multiples of 0.001 fed through MLflow's
    /// pyfunc (which casts to the model's float32), a 100-tree forest's
    /// probabilities differed from Vigil's on 10 rows, by up to 0.09.
    Float,
    /// float64 throughout with `ai.onnx.ml` 5's `TreeEnsemble` (measured with
    /// onnxruntime 1.32, whose output is float64; onnxruntime added the operator in
    /// late 2024, first by mapping it onto the float32-output operators):
    /// the same routing as `Double` and float64 leaf values, sums and scores, so
    /// probabilities, labels, scores and flags are Vigil's to float64 rounding of
    /// the order of the sums (in the tests: probabilities bit for bit, scores
    /// within 1.2e-16).
    ExactDouble,
}

impl OnnxPrecision {
    /// The `(IR version, default opset, ai.onnx.ml opset)` a model of this
    /// precision declares: `(10, 21, 5)` for `ExactDouble` (onnx 1.16's
    /// `TreeEnsemble`), else [`ONNX_IR_VERSION`], [`ONNX_OPSET`], [`ONNX_ML_OPSET`].
    pub fn versions(self) -> (i64, i64, i64) {
        match self {
            OnnxPrecision::ExactDouble => (10, 21, 5),
            _ => (ONNX_IR_VERSION, ONNX_OPSET, ONNX_ML_OPSET),
        }
    }
}

/// What goes into an exported model besides the trees.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxOptions {
    /// Name of the one input `[N, n_features]` (default `"input"`).
    pub input_name: String,
    /// Feature names, one per column in column order, kept in the model's metadata
    /// (`feature_names`, a JSON list) and doc string (default none).
    pub feature_names: Option<Vec<String>>,
    /// Input and output precision (default [`OnnxPrecision::Double`]).
    pub precision: OnnxPrecision,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions {
            input_name: "input".into(),
            feature_names: None,
            precision: OnnxPrecision::Double,
        }
    }
}

/// One ONNX model computing a Random Forest's failure probability and an
/// Isolation Forest's scores (either or both) from one input, every output one
/// value per row (`[N]`), as MLflow's pyfunc flavor wants:
///
/// - `failure_probability`: the probability of the chosen class of the Random Forest;
/// - `score_samples`: the Isolation Forest's `score_samples`;
/// - `decision_function`: `score_samples - offset`;
/// - `is_anomaly`: `decision_function < 0` (bool).
///
/// Real outputs have the input's precision.
///
/// ```
/// use ndarray::Array2;
/// use vigil_forest::{IsolationForestParams, OnnxExport, OnnxOptions, RandomForestParams};
///
/// let x = Array2::from_shape_fn((60, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
/// let y: Vec<u8> = (0..60).map(|i| u8::from(x[[i, 0]] > 5.0)).collect();
/// let forest = RandomForestParams { n_estimators: 5, ..Default::default() }.fit(&x, &y)?;
/// let iso = IsolationForestParams { n_estimators: 5, ..Default::default() }.fit(&x)?;
/// let options = OnnxOptions {
///     feature_names: Some(vec!["speed".into(), "vibration".into()]),
///     ..Default::default()
/// };
/// let bytes = OnnxExport::new(options)
///     .random_forest(&forest, 1)
///     .isolation_forest(&iso)
///     .to_bytes()?;
/// assert!(!bytes.is_empty());
/// # Ok::<(), vigil_forest::ForestError>(())
/// ```
#[derive(Clone, Debug)]
pub struct OnnxExport<'a> {
    options: OnnxOptions,
    forest: Option<(&'a RandomForest, usize)>,
    isolation: Option<&'a IsolationForest>,
    /// A further classifier, one output per class: (model, output names).
    per_class: Option<(&'a RandomForest, Vec<String>)>,
}

impl<'a> OnnxExport<'a> {
    /// An export with nothing in it yet.
    pub fn new(options: OnnxOptions) -> Self {
        OnnxExport {
            options,
            forest: None,
            isolation: None,
            per_class: None,
        }
    }

    /// Adds `failure_probability`: `model`'s probability of `class` (a label, as in
    /// [`RandomForest::classes`]).
    pub fn random_forest(mut self, model: &'a RandomForest, class: usize) -> Self {
        self.forest = Some((model, class));
        self
    }

    /// Adds `score_samples`, `decision_function` and `is_anomaly` from `model`.
    pub fn isolation_forest(mut self, model: &'a IsolationForest) -> Self {
        self.isolation = Some(model);
        self
    }

    /// Adds a further classifier (e.g. which failure mode) on the same input:
    /// one output per class, `outputs[i]` the probability of `model`'s class
    /// `i` (in the order of [`RandomForest::classes`]), each `[N]` so MLflow's
    /// pyfunc flavor gives one column per class.
    pub fn class_probabilities(mut self, model: &'a RandomForest, outputs: Vec<String>) -> Self {
        self.per_class = Some((model, outputs));
        self
    }

    /// The serialised ONNX model.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let n_features = match (self.forest, self.isolation) {
            (None, None) => return Err(ForestError::OnnxNothingToExport),
            (Some((f, _)), Some(i)) if f.n_features() != i.n_features() => {
                return Err(ForestError::FeatureCountMismatch {
                    expected: f.n_features(),
                    found: i.n_features(),
                });
            }
            (Some((f, _)), _) => f.n_features(),
            (None, Some(i)) => i.n_features(),
        };
        if let Some((m, _)) = &self.per_class
            && m.n_features() != n_features
        {
            return Err(ForestError::FeatureCountMismatch {
                expected: n_features,
                found: m.n_features(),
            });
        }
        let o = &self.options;
        let mut g = Graph::default();
        let mut outputs = Vec::new();
        let mut kinds = Vec::new();
        let real = elem(o.precision);
        if let Some((forest, class)) = self.forest {
            let column = class_column(forest, class)?;
            let (_, probabilities) = add_classifier(&mut g, forest, "forest", o.precision)?;
            let index = g.ints("failure_class_column", vec![column as i64], vec![]);
            g.node(
                "Gather",
                "",
                &[&probabilities, &index],
                &["failure_probability_raw"],
                vec![attr_int("axis", 1)],
            );
            to_precision(
                &mut g,
                "failure_probability_raw",
                "failure_probability",
                o.precision,
            );
            outputs.push(graph::value_info("failure_probability", real, &[None]));
            kinds.push(format!("RandomForest (failure class {class})"));
        }
        if let Some(iso) = self.isolation {
            let s = add_isolation(&mut g, iso, INPUT, o.precision);
            rename(&mut g, &s.score, "score_samples");
            rename(&mut g, &s.decision, "decision_function");
            rename(&mut g, &s.flag, "is_anomaly");
            outputs.push(graph::value_info("score_samples", real, &[None]));
            outputs.push(graph::value_info("decision_function", real, &[None]));
            outputs.push(graph::value_info("is_anomaly", BOOL, &[None]));
            kinds.push("IsolationForest".into());
        }
        if let Some((model, names)) = &self.per_class {
            add_per_class(&mut g, model, names, o.precision, &mut outputs)?;
            kinds.push(format!("RandomForest ({} class outputs)", names.len()));
        }
        finish_model(g, outputs, n_features, o, &kinds.join(" + "))
    }
}

impl RandomForest {
    /// The model as ONNX: outputs `label` (`[N]` int64, the predicted class label)
    /// and `probabilities` (`[N, classes]`, columns in the order of
    /// [`classes`](Self::classes)). See [`OnnxExport`] for one value per row.
    pub fn to_onnx(&self, options: &OnnxOptions) -> Result<Vec<u8>> {
        let mut g = Graph::default();
        let (label, probabilities) = add_classifier(&mut g, self, "forest", options.precision)?;
        rename(&mut g, &label, "label");
        to_precision(&mut g, &probabilities, "probabilities", options.precision);
        let k = self.classes().len() as i64;
        let outputs = vec![
            graph::value_info("label", INT64, &[None]),
            graph::value_info("probabilities", elem(options.precision), &[None, Some(k)]),
        ];
        finish_model(g, outputs, self.n_features(), options, "RandomForest")
    }
}

impl IsolationForest {
    /// The model as ONNX: outputs `label` (`[N]` int64, -1 for anomalies and 1
    /// otherwise, as [`predict`](Self::predict)), `score_samples`,
    /// `decision_function` and `is_anomaly` (bool), all `[N]`.
    pub fn to_onnx(&self, options: &OnnxOptions) -> Result<Vec<u8>> {
        let mut g = Graph::default();
        let s = add_isolation(&mut g, self, INPUT, options.precision);
        rename(&mut g, &s.score, "score_samples");
        rename(&mut g, &s.decision, "decision_function");
        rename(&mut g, &s.flag, "is_anomaly");
        let minus = g.ints("minus_one", vec![-1], vec![]);
        let plus = g.ints("plus_one", vec![1], vec![]);
        g.node(
            "Where",
            "",
            &["is_anomaly", &minus, &plus],
            &["label"],
            vec![],
        );
        let real = elem(options.precision);
        let outputs = vec![
            graph::value_info("label", INT64, &[None]),
            graph::value_info("score_samples", real, &[None]),
            graph::value_info("decision_function", real, &[None]),
            graph::value_info("is_anomaly", BOOL, &[None]),
        ];
        finish_model(g, outputs, self.n_features(), options, "IsolationForest")
    }
}

/// The column of `class` in the forest's probabilities.
fn class_column(forest: &RandomForest, class: usize) -> Result<usize> {
    forest
        .classes()
        .binary_search(&class)
        .map_err(|_| ForestError::UnknownClass {
            class,
            classes: forest.classes().to_vec(),
        })
}

/// A class label as ONNX's int64 label.
fn label_i64(class: usize) -> Result<i64> {
    i64::try_from(class).map_err(|_| ForestError::OnnxClassLabel { class })
}

/// Adds the `TreeEnsembleClassifier`; returns its outputs (label, probabilities).
/// Adds `forest` on the graph's input; its values are named `<prefix>_…`,
/// so several classifiers can share one graph.
fn add_classifier(
    g: &mut Graph,
    forest: &RandomForest,
    prefix: &str,
    precision: OnnxPrecision,
) -> Result<(String, String)> {
    let input = INPUT;
    let k = forest.classes().len();
    let labels = forest
        .classes()
        .iter()
        .map(|&c| label_i64(c))
        .collect::<Result<Vec<_>>>()?;
    let (label, probabilities) = (format!("{prefix}_label"), format!("{prefix}_probabilities"));
    if precision == OnnxPrecision::ExactDouble {
        let trees: Vec<(&[crate::tree::Node], &[f32])> = forest
            .trees
            .iter()
            .map(|t| (t.nodes.as_slice(), t.values.as_slice()))
            .collect();
        exact::add_classifier(g, &trees, labels, (input, prefix), &label, &probabilities);
        return Ok((label, probabilities));
    }
    let n = forest.trees.len() as f64;
    let mut ensemble = Ensemble::default();
    for (t, tree) in forest.trees.iter().enumerate() {
        ensemble.add_tree(t, &tree.nodes, |leaf| {
            let values = tree.values_of(u64::from(leaf.child), k);
            if k == 2 {
                // skl2onnx's binary layout: the class-1 weight alone, as class id 0.
                vec![(0, f64::from(values[1]) / n)]
            } else {
                (0..k)
                    .map(|c| (c as i64, f64::from(values[c]) / n))
                    .collect()
            }
        });
    }
    let mut attributes = ensemble.attributes("class", precision);
    attributes.push(attr_ints("classlabels_int64s", labels));
    g.node(
        "TreeEnsembleClassifier",
        ML_DOMAIN,
        &[input],
        &[&label, &probabilities],
        attributes,
    );
    Ok((label, probabilities))
}

/// `model`'s probability of each class as its own `[N]` output, `names[i]`
/// for class column `i`.
fn add_per_class(
    g: &mut Graph,
    model: &RandomForest,
    names: &[String],
    precision: OnnxPrecision,
    outputs: &mut Vec<proto::ValueInfoProto>,
) -> Result<()> {
    if names.len() != model.classes().len() {
        return Err(ForestError::InvalidOnnxName {
            what: "class output names".into(),
            name: names.join(", "),
            reason: "are not one per class of the model",
        });
    }
    let mut seen = HashSet::new();
    for (i, name) in names.iter().enumerate() {
        check_name(&format!("class output {i}"), name)?;
        let taken = matches!(
            name.as_str(),
            "failure_probability" | "score_samples" | "decision_function" | "is_anomaly"
        );
        if taken || !seen.insert(name.as_str()) {
            return Err(ForestError::InvalidOnnxName {
                what: format!("class output {i}"),
                name: name.clone(),
                reason: "is already an output of the model",
            });
        }
    }
    let (_, probabilities) = add_classifier(g, model, "per_class", precision)?;
    for (i, name) in names.iter().enumerate() {
        let index = g.ints(&format!("per_class_column_{i}"), vec![i as i64], vec![]);
        let raw = format!("per_class_raw_{i}");
        g.node(
            "Gather",
            "",
            &[&probabilities, &index],
            &[&raw],
            vec![attr_int("axis", 1)],
        );
        to_precision(g, &raw, name, precision);
        outputs.push(graph::value_info(name, elem(precision), &[None]));
    }
    Ok(())
}

/// The value names of an Isolation Forest's scores in a graph.
struct IsolationValues {
    score: String,
    decision: String,
    flag: String,
}

/// Adds an Isolation Forest's scoring: sum of leaf path lengths, mean, score,
/// decision function and anomaly flag.
fn add_isolation(
    g: &mut Graph,
    iso: &IsolationForest,
    input: &str,
    precision: OnnxPrecision,
) -> IsolationValues {
    let c = average_path_length(iso.max_samples());
    // ψ = 1: every path is 0 and Vigil scores -1 = -2^0; dividing by 1 keeps it so.
    let (c, keep) = if c > 0.0 { (c, 1.0) } else { (1.0, 0.0) };
    if precision == OnnxPrecision::ExactDouble {
        exact::add_path_sum(g, &iso.trees, keep, input, "iso_path_sum_raw");
    } else {
        let mut ensemble = Ensemble::default();
        for (t, tree) in iso.trees.iter().enumerate() {
            ensemble.add_tree(t, tree, |leaf| vec![(0, leaf.threshold * keep)]);
        }
        let mut attributes = ensemble.attributes("target", precision);
        attributes.push(attr_int("n_targets", 1));
        attributes.push(attr_string("aggregate_function", "SUM"));
        g.node(
            "TreeEnsembleRegressor",
            ML_DOMAIN,
            &[input],
            &["iso_path_sum_raw"],
            attributes,
        );
    }
    to_precision(g, "iso_path_sum_raw", "iso_path_sum_column", precision);
    let flat = g.ints("flat_shape", vec![-1], vec![1]);
    g.node(
        "Reshape",
        "",
        &["iso_path_sum_column", &flat],
        &["iso_path_sum"],
        vec![],
    );
    let trees = g.real("iso_tree_count", iso.n_trees() as f64, precision);
    let c = g.real("iso_c_psi", c, precision);
    let two = g.real("two", 2.0, precision);
    let offset = g.real("iso_offset", iso.offset(), precision);
    let zero = g.real("zero", 0.0, precision);
    g.node(
        "Div",
        "",
        &["iso_path_sum", &trees],
        &["iso_mean_path"],
        vec![],
    );
    g.node(
        "Div",
        "",
        &["iso_mean_path", &c],
        &["iso_relative_path"],
        vec![],
    );
    g.node("Neg", "", &["iso_relative_path"], &["iso_exponent"], vec![]);
    g.node("Pow", "", &[&two, "iso_exponent"], &["iso_power"], vec![]);
    g.node("Neg", "", &["iso_power"], &["iso_score"], vec![]);
    g.node(
        "Sub",
        "",
        &["iso_score", &offset],
        &["iso_decision"],
        vec![],
    );
    g.node("Less", "", &["iso_decision", &zero], &["iso_flag"], vec![]);
    IsolationValues {
        score: "iso_score".into(),
        decision: "iso_decision".into(),
        flag: "iso_flag".into(),
    }
}

/// Makes a tree operator's output `from` (float32, or float64 for `ExactDouble`)
/// available as `to` in `precision`'s type: a `Cast` for `Double`, else a rename.
fn to_precision(g: &mut Graph, from: &str, to: &str, precision: OnnxPrecision) {
    match precision {
        OnnxPrecision::Double => g.node(
            "Cast",
            "",
            &[from],
            &[to],
            vec![attr_int("to", i64::from(proto::DOUBLE))],
        ),
        _ => rename(g, from, to),
    }
}

/// Renames value `from` to `to` wherever a node produces or reads it.
fn rename(g: &mut Graph, from: &str, to: &str) {
    for node in &mut g.nodes {
        for v in node.input.iter_mut().chain(node.output.iter_mut()) {
            if v == from {
                *v = to.to_string();
            }
        }
    }
}

/// Checks the names, wraps the graph in a model and encodes it.
fn finish_model(
    mut g: Graph,
    output: Vec<proto::ValueInfoProto>,
    n_features: usize,
    options: &OnnxOptions,
    kind: &str,
) -> Result<Vec<u8>> {
    check_name("input name", &options.input_name)?;
    let computed = g.nodes.iter().flat_map(|n| &n.output);
    let constants = g.initializers.iter().map(|t| &t.name);
    if computed.chain(constants).any(|v| *v == options.input_name) {
        return Err(ForestError::InvalidOnnxName {
            what: "input name".into(),
            name: options.input_name.clone(),
            reason: "is the name of a value the model computes",
        });
    }
    rename(&mut g, INPUT, &options.input_name);
    let mut metadata = vec![entry("vigil_model", kind)];
    let mut doc = format!("Vigil {kind}, {n_features} features");
    if let Some(names) = &options.feature_names {
        check_feature_names(names, n_features)?;
        let json = serde_json::to_string(names).map_err(|_| ForestError::InvalidOnnxName {
            what: "feature names".into(),
            name: names.join(", "),
            reason: "cannot be written as JSON",
        })?;
        doc.push_str(&format!(": {}", names.join(", ")));
        metadata.push(entry("feature_names", &json));
    }
    let input = graph::value_info(
        &options.input_name,
        elem(options.precision),
        &[None, Some(n_features as i64)],
    );
    let (ir_version, opset, ml_opset) = options.precision.versions();
    let model = ModelProto {
        ir_version,
        producer_name: "vigil".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.clone(),
        graph: Some(proto::GraphProto {
            node: g.nodes,
            name: "vigil".into(),
            initializer: g.initializers,
            doc_string: doc,
            input: vec![input],
            output,
        }),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            },
            OperatorSetIdProto {
                domain: ML_DOMAIN.into(),
                version: ml_opset,
            },
        ],
        metadata_props: metadata,
    };
    check_size(model.encoded_len())?;
    Ok(model.encode_to_vec())
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    }
}

fn check_size(bytes: usize) -> Result<()> {
    if bytes > MAX_PROTO_BYTES {
        return Err(ForestError::OnnxTooLarge {
            bytes,
            max: MAX_PROTO_BYTES,
        });
    }
    Ok(())
}

/// A name ONNX and MLflow accept: not empty, no control characters, no
/// surrounding white space.
fn check_name(what: &str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "is empty"
    } else if name.chars().any(char::is_control) {
        "holds a control character"
    } else if name.trim() != name {
        "starts or ends with white space"
    } else {
        return Ok(());
    };
    Err(ForestError::InvalidOnnxName {
        what: what.into(),
        name: name.into(),
        reason,
    })
}

fn check_feature_names(names: &[String], n_features: usize) -> Result<()> {
    if names.len() != n_features {
        return Err(ForestError::FeatureNameCount {
            names: names.len(),
            columns: n_features,
        });
    }
    let mut seen = HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        check_name(&format!("feature name {i}"), name)?;
        if !seen.insert(name.as_str()) {
            return Err(ForestError::InvalidOnnxName {
                what: format!("feature name {i}"),
                name: name.clone(),
                reason: "is a duplicate of an earlier feature name",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_feature_names_are_refused() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_feature_names(&names(&["a", "b"]), 2).is_ok());
        assert_eq!(
            check_feature_names(&names(&["a"]), 2),
            Err(ForestError::FeatureNameCount {
                names: 1,
                columns: 2
            })
        );
        for (bad, reason) in [
            ("", "is empty"),
            ("a\nb", "holds a control character"),
            ("tab\t", "holds a control character"),
            (" pad", "starts or ends with white space"),
            ("a", "is a duplicate of an earlier feature name"),
        ] {
            let e = check_feature_names(&names(&["a", bad]), 2).unwrap_err();
            assert_eq!(
                e,
                ForestError::InvalidOnnxName {
                    what: "feature name 1".into(),
                    name: bad.into(),
                    reason
                },
                "{bad:?}"
            );
        }
        assert!(check_name("input name", "").is_err());
    }

    #[test]
    fn models_over_two_gib_are_refused() {
        assert!(check_size(MAX_PROTO_BYTES).is_ok());
        let e = check_size(MAX_PROTO_BYTES + 1).unwrap_err();
        assert!(
            matches!(e, ForestError::OnnxTooLarge { bytes, .. } if bytes == MAX_PROTO_BYTES + 1)
        );
        assert!(e.to_string().contains("2 GiB"), "{e}");
    }

    fn models() -> (RandomForest, IsolationForest, IsolationForest) {
        use crate::{IsolationForestParams, RandomForestParams};
        let x = ndarray::Array2::from_shape_fn((40, 2), |(i, j)| ((i * 5 + j) % 9) as f64);
        let y: Vec<u8> = (0..40).map(|i| u8::from(x[[i, 0]] > 4.0)).collect();
        let forest = RandomForestParams {
            n_estimators: 3,
            ..Default::default()
        }
        .fit(&x, &y)
        .unwrap();
        let params = IsolationForestParams {
            n_estimators: 3,
            ..Default::default()
        };
        let iso = params.fit(&x).unwrap();
        let wide = ndarray::Array2::from_shape_fn((40, 3), |(i, j)| (i * j) as f64);
        (forest, iso, params.fit(&wide).unwrap())
    }

    #[test]
    fn exports_refuse_what_they_cannot_write() {
        let (forest, iso, wide) = models();
        let export = || OnnxExport::new(OnnxOptions::default());
        assert_eq!(export().to_bytes(), Err(ForestError::OnnxNothingToExport));
        assert_eq!(
            export().random_forest(&forest, 2).to_bytes(),
            Err(ForestError::UnknownClass {
                class: 2,
                classes: vec![0, 1]
            })
        );
        assert_eq!(
            export()
                .random_forest(&forest, 1)
                .isolation_forest(&wide)
                .to_bytes(),
            Err(ForestError::FeatureCountMismatch {
                expected: 2,
                found: 3
            })
        );
        let bad_input = OnnxOptions {
            input_name: "in\u{7}put".into(),
            ..Default::default()
        };
        assert!(matches!(
            iso.to_onnx(&bad_input),
            Err(ForestError::InvalidOnnxName {
                reason: "holds a control character",
                ..
            })
        ));
        for taken in ["label", "score_samples", "two"] {
            let options = OnnxOptions {
                input_name: taken.into(),
                ..Default::default()
            };
            assert!(matches!(
                iso.to_onnx(&options),
                Err(ForestError::InvalidOnnxName {
                    reason: "is the name of a value the model computes",
                    ..
                })
            ));
        }
        let three_names = OnnxOptions {
            feature_names: Some(vec!["a".into(), "b".into(), "c".into()]),
            ..Default::default()
        };
        assert_eq!(
            forest.to_onnx(&three_names),
            Err(ForestError::FeatureNameCount {
                names: 3,
                columns: 2
            })
        );
        for precision in [
            OnnxPrecision::Float,
            OnnxPrecision::Double,
            OnnxPrecision::ExactDouble,
        ] {
            let options = OnnxOptions {
                precision,
                ..Default::default()
            };
            let bytes = OnnxExport::new(options.clone())
                .random_forest(&forest, 1)
                .isolation_forest(&iso)
                .to_bytes()
                .unwrap();
            let model = ModelProto::decode(bytes.as_slice()).unwrap();
            assert_eq!(model.producer_name, "vigil");
            let outputs: Vec<&str> = model
                .graph
                .as_ref()
                .unwrap()
                .output
                .iter()
                .map(|o| o.name.as_str())
                .collect();
            assert_eq!(
                outputs,
                [
                    "failure_probability",
                    "score_samples",
                    "decision_function",
                    "is_anomaly"
                ]
            );
            let forest_model =
                ModelProto::decode(forest.to_onnx(&options).unwrap().as_slice()).unwrap();
            assert_eq!(forest_model.ir_version, precision.versions().0);
        }
    }

    #[test]
    fn class_labels_beyond_int64_are_refused() {
        assert_eq!(label_i64(7), Ok(7));
        let big = i64::MAX as usize + 1;
        assert_eq!(
            label_i64(big),
            Err(ForestError::OnnxClassLabel { class: big })
        );
    }
}
