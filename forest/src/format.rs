//! The versioned model file format: compact binary (postcard) and JSON.
//!
//! Both encodings carry the same [`Envelope`]. The binary form starts with the magic
//! bytes `VGLF`. Nodes are stored as a tagged enum: a split keeps its feature, the
//! side missing values take, its threshold and the distance to its left child; a
//! classification leaf keeps only its non-zero class probabilities (a pure leaf is
//! one `(class, p)` pair). A fully grown forest takes about 10 bytes per node.
//!
//! Version 2 adds each tree's node covers (the training weight that reached each
//! node, which explanations need) as a list beside the trees: whole counts as
//! varints, other weights as `f64`s. Version-1 files still load and predict
//! identically; they have no covers, so explaining such a model is
//! [`ForestError::NoCovers`].
//!
//! Loading decodes into these plain structs (nothing is executed) and then checks
//! every invariant the predictors rely on before building a model, so a corrupted or
//! hostile file yields a [`ForestError`], never a panic or an out-of-bounds walk.

use serde::{Deserialize, Serialize};

use crate::error::{ForestError, Result};
use crate::isolation::{Contamination, IsolationForest, Scorer, iso_covers};
use crate::random_forest::RandomForest;
use crate::samples::MAX_FEATURES;
use crate::shap::{TreeCovers, check_covers};
use crate::tree::{ClassTree, FEATURE_MASK, LEAF, MISSING_LEFT, Node};

/// The format version this build writes (it also reads version 1, whose models
/// have no node covers).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads.
const OLDEST_VERSION: u32 = 1;
const MAGIC: &[u8; 4] = b"VGLF";
/// Most leaf probabilities (leaves x classes) a loaded model may hold (256 MiB).
const MAX_LEAF_VALUES: usize = 1 << 26;

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u32,
    model: ModelWire,
}

#[derive(Serialize, Deserialize)]
enum ModelWire {
    RandomForest(RandomForestWire),
    IsolationForest(IsolationForestWire),
}

impl ModelWire {
    fn kind(&self) -> &'static str {
        match self {
            ModelWire::RandomForest(_) => "RandomForest",
            ModelWire::IsolationForest(_) => "IsolationForest",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RandomForestWire {
    n_features: u32,
    classes: Vec<u64>,
    feature_importances: Vec<f64>,
    oob_score: Option<f64>,
    trees: Vec<Vec<ClassNodeWire>>,
    /// One per tree (version 2; `None` for a model that came from version 1).
    covers: Option<Vec<CoversWire>>,
}

/// A tree's node covers: whole numbers (the usual case: bootstrap counts, or
/// Isolation Tree row counts) as varints, anything else as `f64`s.
#[derive(Serialize, Deserialize)]
enum CoversWire {
    Counts(Vec<u64>),
    Weights(Vec<f64>),
}

impl CoversWire {
    fn of(covers: &[f64]) -> Self {
        let whole = |c: &f64| c.fract() == 0.0 && *c >= 0.0 && *c < 9.0e15;
        if covers.iter().all(whole) {
            CoversWire::Counts(covers.iter().map(|&c| c as u64).collect())
        } else {
            CoversWire::Weights(covers.to_vec())
        }
    }

    fn into_f64(self) -> Vec<f64> {
        match self {
            CoversWire::Counts(c) => c.into_iter().map(|c| c as f64).collect(),
            CoversWire::Weights(w) => w,
        }
    }
}

/// Version 1's model, without covers.
#[derive(Deserialize)]
enum ModelWireV1 {
    RandomForest(RandomForestWireV1),
    IsolationForest(IsolationForestWireV1),
}

#[derive(Deserialize)]
struct RandomForestWireV1 {
    n_features: u32,
    classes: Vec<u64>,
    feature_importances: Vec<f64>,
    oob_score: Option<f64>,
    trees: Vec<Vec<ClassNodeWire>>,
}

#[derive(Deserialize)]
struct IsolationForestWireV1 {
    n_features: u32,
    max_samples: u64,
    offset: f64,
    contamination: Option<f64>,
    trees: Vec<Vec<IsoNodeWire>>,
}

/// Version 1's envelope (`format` and `version` were checked from the header).
#[derive(Deserialize)]
struct EnvelopeV1 {
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: u32,
    model: ModelWireV1,
}

impl From<ModelWireV1> for ModelWire {
    fn from(m: ModelWireV1) -> Self {
        match m {
            ModelWireV1::RandomForest(w) => ModelWire::RandomForest(RandomForestWire {
                n_features: w.n_features,
                classes: w.classes,
                feature_importances: w.feature_importances,
                oob_score: w.oob_score,
                trees: w.trees,
                covers: None,
            }),
            ModelWireV1::IsolationForest(w) => ModelWire::IsolationForest(IsolationForestWire {
                n_features: w.n_features,
                max_samples: w.max_samples,
                offset: w.offset,
                contamination: w.contamination,
                trees: w.trees,
                covers: None,
            }),
        }
    }
}

/// A split node of either kind. (A newtype variant of this struct encodes exactly
/// as a struct variant with these fields did, in postcard and in JSON.)
#[derive(Serialize, Deserialize)]
struct SplitWire {
    feature: u32,
    missing_left: bool,
    threshold: f64,
    left_offset: u32,
}

#[derive(Serialize, Deserialize)]
enum ClassNodeWire {
    Split(SplitWire),
    Leaf { probabilities: Vec<(u16, f32)> },
}

#[derive(Serialize, Deserialize)]
struct IsolationForestWire {
    n_features: u32,
    max_samples: u64,
    offset: f64,
    contamination: Option<f64>,
    trees: Vec<Vec<IsoNodeWire>>,
    /// One per tree (version 2; `None` for a model that came from version 1).
    covers: Option<Vec<CoversWire>>,
}

#[derive(Serialize, Deserialize)]
enum IsoNodeWire {
    Split(SplitWire),
    Leaf { path_length: f64 },
}

fn corrupt(msg: impl Into<String>) -> ForestError {
    ForestError::CorruptModel(msg.into())
}

fn encode_binary(env: &Envelope) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    // Serialising plain structs of numbers into a Vec cannot fail.
    out.extend(postcard::to_stdvec(env).unwrap_or_default());
    out
}

fn decode_binary(bytes: &[u8]) -> Result<ModelWire> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| ForestError::Decode {
            format: "binary",
            message: "missing VGLF magic bytes: not a vigil-forest model".into(),
        })?;
    // Peek at the header first so a newer file says "version" rather than "garbage".
    #[derive(Deserialize)]
    struct Header {
        format: String,
        version: u32,
    }
    let (head, _) = postcard::take_from_bytes::<Header>(body).map_err(|e| ForestError::Decode {
        format: "binary",
        message: e.to_string(),
    })?;
    check_header(&head.format, head.version)?;
    let decode_error = |e: postcard::Error| ForestError::Decode {
        format: "binary",
        message: e.to_string(),
    };
    if head.version == 1 {
        let env: EnvelopeV1 = postcard::from_bytes(body).map_err(decode_error)?;
        return Ok(env.model.into());
    }
    let env: Envelope = postcard::from_bytes(body).map_err(decode_error)?;
    Ok(env.model)
}

fn decode_json(text: &str) -> Result<ModelWire> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ForestError::Decode {
        format: "JSON",
        message: e.to_string(),
    })?;
    let format = value
        .get("format")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    check_header(format, u32::try_from(version).unwrap_or(u32::MAX))?;
    let decode_error = |e: serde_json::Error| ForestError::Decode {
        format: "JSON",
        message: e.to_string(),
    };
    if version == 1 {
        let env: EnvelopeV1 = serde_json::from_value(value).map_err(decode_error)?;
        return Ok(env.model.into());
    }
    let env: Envelope = serde_json::from_value(value).map_err(decode_error)?;
    Ok(env.model)
}

fn check_header(format: &str, version: u32) -> Result<()> {
    if format != "vigil-forest" {
        return Err(ForestError::Decode {
            format: "model",
            message: format!("format tag is {format:?}, expected \"vigil-forest\""),
        });
    }
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(ForestError::UnsupportedVersion {
            found: version,
            oldest: OLDEST_VERSION,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

fn envelope(model: ModelWire) -> Envelope {
    Envelope {
        format: "vigil-forest".into(),
        version: FORMAT_VERSION,
        model,
    }
}

/// Split node `i` as stored.
fn split_wire(i: usize, n: &Node) -> SplitWire {
    SplitWire {
        feature: n.feature & FEATURE_MASK,
        missing_left: n.feature & MISSING_LEFT != 0,
        threshold: n.threshold,
        left_offset: n.child - i as u32,
    }
}

/// Checks the shape of one stored tree as its nodes are decoded: every split's
/// feature and children in range, every node but the root the child of exactly
/// one split.
struct TreeShape {
    /// The tree's index in the model (for messages).
    tree: usize,
    len: usize,
    n_features: usize,
    /// Whether some split points to node `i`.
    has_parent: Vec<bool>,
}

impl TreeShape {
    /// The check for tree `tree` of `len` nodes, or an error for an impossible size.
    fn new(tree: usize, len: usize, n_features: usize) -> Result<Self> {
        if len == 0 || len >= LEAF as usize {
            return Err(corrupt(format!("tree {tree} has {len} nodes")));
        }
        Ok(TreeShape {
            tree,
            len,
            n_features,
            has_parent: vec![false; len],
        })
    }

    /// Checks split node `i` and returns it decoded.
    fn split(&mut self, i: usize, s: SplitWire) -> Result<Node> {
        let (t, len, n_features) = (self.tree, self.len, self.n_features);
        let feature = s.feature;
        if feature as usize >= n_features {
            return Err(corrupt(format!(
                "tree {t}: node {i} splits on feature {feature}, but the model has {n_features} features"
            )));
        }
        if s.threshold.is_nan() {
            return Err(corrupt(format!("tree {t}: node {i} has a NaN threshold")));
        }
        let child = i as u64 + u64::from(s.left_offset);
        if s.left_offset == 0 || child + 1 >= len as u64 {
            return Err(corrupt(format!(
                "tree {t}: node {i} points to children {child} and {} outside a tree of {len} nodes (or to itself)",
                child + 1
            )));
        }
        let child = child as usize;
        if self.has_parent[child] || self.has_parent[child + 1] {
            return Err(corrupt(format!("tree {t}: node {child} has two parents")));
        }
        self.has_parent[child] = true;
        self.has_parent[child + 1] = true;
        let mut f = feature;
        if s.missing_left {
            f |= MISSING_LEFT;
        }
        Ok(Node {
            threshold: s.threshold,
            feature: f,
            child: child as u32,
        })
    }

    /// Checks, once every node is decoded, that each node but the root has a parent.
    fn finish(self) -> Result<()> {
        if self.has_parent.iter().skip(1).any(|s| !s) {
            return Err(corrupt(format!(
                "tree {} has nodes no split points to",
                self.tree
            )));
        }
        Ok(())
    }
}

/// Decodes and checks the covers of trees of `nodes` (one list per tree).
fn decode_covers(nodes: &[&[Node]], covers: Vec<CoversWire>) -> Result<Vec<Vec<f64>>> {
    if covers.len() != nodes.len() {
        return Err(corrupt(format!(
            "{} lists of covers for {} trees",
            covers.len(),
            nodes.len()
        )));
    }
    covers
        .into_iter()
        .zip(nodes)
        .enumerate()
        .map(|(t, (c, nodes))| {
            let c = c.into_f64();
            check_covers(nodes, &c).map_err(|e| corrupt(format!("tree {t} covers: {e}")))?;
            Ok(c)
        })
        .collect()
}

fn check_common(n_features: u32, n_trees: usize) -> Result<usize> {
    let nf = n_features as usize;
    if nf == 0 || nf > MAX_FEATURES {
        return Err(corrupt(format!("n_features = {nf} is out of range")));
    }
    if n_trees == 0 {
        return Err(corrupt("the model has no trees"));
    }
    Ok(nf)
}

/// Checks a Random Forest's classes, importances and out-of-bag score; returns the
/// number of classes.
fn check_class_summary(w: &RandomForestWire, n_features: usize) -> Result<usize> {
    let k = w.classes.len();
    if k < 2 || k > u16::MAX as usize {
        return Err(corrupt(format!("{k} classes; a classifier has 2 to 65535")));
    }
    if !w.classes.windows(2).all(|p| p[0] < p[1]) {
        return Err(corrupt("class labels are not strictly ascending"));
    }
    if w.classes.iter().any(|&c| c > u64::from(u32::MAX)) {
        return Err(corrupt("a class label exceeds 4294967295"));
    }
    if w.feature_importances.len() != n_features
        || w.feature_importances
            .iter()
            .any(|v| !(v.is_finite() && *v >= 0.0))
    {
        return Err(corrupt(
            "feature importances must be one finite non-negative value per feature",
        ));
    }
    if let Some(s) = w.oob_score
        && !(0.0..=1.0).contains(&s)
    {
        return Err(corrupt(format!("oob score {s} is outside [0, 1]")));
    }
    // Leaves are stored sparse but held dense: bound the dense size so a small
    // hostile file cannot demand gigabytes.
    let leaves: usize = w
        .trees
        .iter()
        .map(|t| {
            t.iter()
                .filter(|n| matches!(n, ClassNodeWire::Leaf { .. }))
                .count()
        })
        .sum();
    if leaves.saturating_mul(k) > MAX_LEAF_VALUES {
        return Err(corrupt(format!(
            "{leaves} leaves x {k} classes exceeds the supported {MAX_LEAF_VALUES} leaf values"
        )));
    }
    Ok(k)
}

/// Decodes and checks tree `t` of a Random Forest with `k` classes.
fn decode_class_tree(
    t: usize,
    wire: Vec<ClassNodeWire>,
    n_features: usize,
    k: usize,
) -> Result<ClassTree> {
    let mut shape = TreeShape::new(t, wire.len(), n_features)?;
    let mut nodes = Vec::with_capacity(wire.len());
    let mut values = Vec::new();
    for (i, n) in wire.into_iter().enumerate() {
        nodes.push(match n {
            ClassNodeWire::Split(s) => shape.split(i, s)?,
            ClassNodeWire::Leaf { probabilities } => {
                let leaf = push_leaf(&mut values, k, probabilities)
                    .map_err(|e| corrupt(format!("tree {t} node {i}: {e}")))?;
                Node::leaf(leaf, 0.0)
            }
        });
    }
    shape.finish()?;
    Ok(ClassTree::new(nodes, values, k))
}

/// Appends a leaf's `k` dense class probabilities (from their sparse stored form)
/// to `values` and returns the leaf's index, or says what is wrong with them.
fn push_leaf(
    values: &mut Vec<f32>,
    k: usize,
    probabilities: Vec<(u16, f32)>,
) -> std::result::Result<u32, String> {
    let leaf = values.len() / k;
    values.resize(values.len() + k, 0.0f32);
    let row = &mut values[leaf * k..];
    let mut sum = 0.0f64;
    for (c, p) in probabilities {
        let c = c as usize;
        if c >= k || row[c] != 0.0 || !(p > 0.0 && p <= 1.0) {
            return Err(format!("bad class probability ({c}, {p})"));
        }
        row[c] = p;
        sum += f64::from(p);
    }
    if (sum - 1.0).abs() > 1e-3 {
        return Err(format!("class probabilities sum to {sum}, not 1"));
    }
    Ok(leaf as u32)
}

/// Decodes and checks tree `t` of an Isolation Forest.
fn decode_iso_tree(t: usize, wire: Vec<IsoNodeWire>, n_features: usize) -> Result<Vec<Node>> {
    let mut shape = TreeShape::new(t, wire.len(), n_features)?;
    let mut nodes = Vec::with_capacity(wire.len());
    for (i, n) in wire.into_iter().enumerate() {
        nodes.push(match n {
            IsoNodeWire::Split(s) => shape.split(i, s)?,
            IsoNodeWire::Leaf { path_length } => {
                if !(path_length.is_finite() && (0.0..=1e6).contains(&path_length)) {
                    return Err(corrupt(format!(
                        "tree {t} node {i}: path length {path_length} is out of range"
                    )));
                }
                Node::leaf(0, path_length)
            }
        });
    }
    shape.finish()?;
    Ok(nodes)
}

impl RandomForest {
    fn to_wire(&self) -> Envelope {
        let k = self.classes.len();
        let trees = self
            .trees
            .iter()
            .map(|t| {
                t.nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        if n.is_leaf() {
                            let v = &t.values[n.child as usize * k..(n.child as usize + 1) * k];
                            let probabilities = v
                                .iter()
                                .enumerate()
                                .filter(|(_, p)| **p != 0.0)
                                .map(|(c, p)| (c as u16, *p))
                                .collect();
                            ClassNodeWire::Leaf { probabilities }
                        } else {
                            ClassNodeWire::Split(split_wire(i, n))
                        }
                    })
                    .collect()
            })
            .collect();
        envelope(ModelWire::RandomForest(RandomForestWire {
            n_features: self.n_features as u32,
            classes: self.classes.iter().map(|&c| c as u64).collect(),
            feature_importances: self.feature_importances.clone(),
            oob_score: self.oob_score,
            trees,
            covers: self
                .covers
                .as_ref()
                .map(|c| c.iter().map(|t| CoversWire::of(&t.covers)).collect()),
        }))
    }

    fn from_wire(model: ModelWire) -> Result<Self> {
        let w = match model {
            ModelWire::RandomForest(w) => w,
            other => {
                return Err(ForestError::WrongModelKind {
                    expected: "RandomForest",
                    found: other.kind(),
                });
            }
        };
        let nf = check_common(w.n_features, w.trees.len())?;
        let k = check_class_summary(&w, nf)?;
        let trees = w
            .trees
            .into_iter()
            .enumerate()
            .map(|(t, wire)| decode_class_tree(t, wire, nf, k))
            .collect::<Result<Vec<_>>>()?;
        let covers = match w.covers {
            None => None,
            Some(covers) => {
                let nodes: Vec<&[Node]> = trees.iter().map(|t| t.nodes.as_slice()).collect();
                let covers = decode_covers(&nodes, covers)?;
                Some(
                    trees
                        .iter()
                        .zip(covers)
                        .map(|(tree, c)| TreeCovers::of_class_tree(tree, c, nf, k))
                        .collect(),
                )
            }
        };
        Ok(RandomForest {
            n_features: nf,
            classes: w.classes.iter().map(|&c| c as usize).collect(),
            trees,
            covers,
            feature_importances: w.feature_importances,
            oob_score: w.oob_score,
            oob_decision_function: None,
        })
    }

    /// The model in the compact binary format (postcard, with a `VGLF` header).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_binary(&self.to_wire())
    }

    /// Loads and validates a model written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_wire(decode_binary(bytes)?)
    }

    /// The model as JSON (same content as the binary format).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_wire()).unwrap_or_default()
    }

    /// Loads and validates a model written by [`to_json`](Self::to_json).
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_wire(decode_json(text)?)
    }
}

impl IsolationForest {
    fn to_wire(&self) -> Envelope {
        let trees = self
            .trees
            .iter()
            .map(|t| {
                t.iter()
                    .enumerate()
                    .map(|(i, n)| {
                        if n.is_leaf() {
                            IsoNodeWire::Leaf {
                                path_length: n.threshold,
                            }
                        } else {
                            IsoNodeWire::Split(split_wire(i, n))
                        }
                    })
                    .collect()
            })
            .collect();
        envelope(ModelWire::IsolationForest(IsolationForestWire {
            n_features: self.n_features as u32,
            max_samples: self.max_samples as u64,
            offset: self.offset,
            contamination: match self.contamination {
                Contamination::Auto => None,
                Contamination::Fraction(c) => Some(c),
            },
            trees,
            covers: self
                .covers
                .as_ref()
                .map(|c| c.iter().map(|t| CoversWire::of(&t.covers)).collect()),
        }))
    }

    fn from_wire(model: ModelWire) -> Result<Self> {
        let w = match model {
            ModelWire::IsolationForest(w) => w,
            other => {
                return Err(ForestError::WrongModelKind {
                    expected: "IsolationForest",
                    found: other.kind(),
                });
            }
        };
        let nf = check_common(w.n_features, w.trees.len())?;
        if w.max_samples == 0 || w.max_samples > u64::from(u32::MAX) {
            return Err(corrupt(format!(
                "max_samples = {} is out of range",
                w.max_samples
            )));
        }
        if !w.offset.is_finite() {
            return Err(corrupt("offset is not finite"));
        }
        let contamination = match w.contamination {
            None => Contamination::Auto,
            Some(c) if c > 0.0 && c <= 0.5 => Contamination::Fraction(c),
            Some(c) => return Err(corrupt(format!("contamination {c} is outside (0, 0.5]"))),
        };
        let trees = w
            .trees
            .into_iter()
            .enumerate()
            .map(|(t, wire)| decode_iso_tree(t, wire, nf))
            .collect::<Result<Vec<_>>>()?;
        let covers = match w.covers {
            None => None,
            Some(covers) => {
                let nodes: Vec<&[Node]> = trees.iter().map(Vec::as_slice).collect();
                Some(iso_covers(&trees, decode_covers(&nodes, covers)?, nf))
            }
        };
        Ok(IsolationForest {
            covers,
            n_features: nf,
            max_samples: w.max_samples as usize,
            scorer: Scorer::new(&trees, nf),
            trees,
            offset: w.offset,
            contamination,
        })
    }

    /// The model in the compact binary format (postcard, with a `VGLF` header).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_binary(&self.to_wire())
    }

    /// Loads and validates a model written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_wire(decode_binary(bytes)?)
    }

    /// The model as JSON (same content as the binary format).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_wire()).unwrap_or_default()
    }

    /// Loads and validates a model written by [`to_json`](Self::to_json).
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_wire(decode_json(text)?)
    }
}
