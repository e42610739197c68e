"""Golden TreeSHAP values from the `shap` package for vigil-forest's explanations.

Reads the models and rows that the Rust test `golden_inputs_explain_additively`
writes (vigil-forest's own JSON format, with node covers), exports every tree into
shap's custom tree format (a dict per tree: children_left / children_right /
children_default / features / thresholds / 2-D values / node_sample_weight, leaves
with child -1), runs `shap.TreeExplainer(feature_perturbation="tree_path_dependent",
model_output="raw")` on it and writes, per model, the shap export, the rows, shap's
expected values and SHAP values (`golden.json`). `tests/shap.rs` compares against it.

    VIGIL_SHAP_GOLDEN_INPUT=/tmp/shap_input.json \
        cargo test -p vigil-forest --test shap golden_inputs_explain_additively
    $VENV/bin/python forest/tests/shap/make_golden.py /tmp/shap_input.json forest/tests/shap/golden.json

(shap==0.51.0, numpy, in the test venv of scripts/services.sh.) With `--check FILE`
it instead recomputes shap's values for the golden file and exits non-zero unless
they equal the stored ones within 1e-12 (the live test runs that).
"""

import json
import sys

import numpy as np
import shap


def covers_of(wire):
    """A tree's covers from their stored form (whole counts or weights)."""
    (kind, values), = wire.items()
    return [float(v) for v in values]


def export_tree(nodes, covers, n_outputs, leaf_values, scale):
    """One vigil tree (list of stored nodes) in shap's custom tree format."""
    n = len(nodes)
    left = np.full(n, -1, dtype=np.int32)
    right = np.full(n, -1, dtype=np.int32)
    default = np.full(n, -1, dtype=np.int32)
    features = np.full(n, -2, dtype=np.int32)
    thresholds = np.full(n, -2.0, dtype=np.float64)
    values = np.zeros((n, n_outputs), dtype=np.float64)
    for i, node in enumerate(nodes):
        if "Split" in node:
            s = node["Split"]
            left[i] = i + s["left_offset"]
            right[i] = left[i] + 1
            default[i] = left[i] if s["missing_left"] else right[i]
            features[i] = s["feature"]
            thresholds[i] = s["threshold"]
        else:
            values[i] = leaf_values(node["Leaf"])
    weight = np.asarray(covers, dtype=np.float64)
    # Split nodes hold the cover-weighted mean of their children (what scikit-learn
    # stores, and what shap's expected value reads at the root); children follow
    # their parent, so a backward pass sees children first.
    for i in reversed(range(n)):
        if left[i] >= 0:
            l, r = left[i], right[i]
            values[i] = (values[l] * weight[l] + values[r] * weight[r]) / weight[i]
    return {
        "children_left": left,
        "children_right": right,
        "children_default": default,
        "features": features,
        "thresholds": thresholds,
        "values": values * scale,
        "node_sample_weight": weight,
    }


def export_model(wire):
    """A vigil model (its JSON `model` object) as a shap model dict, and its output count."""
    if "RandomForest" in wire:
        m = wire["RandomForest"]
        k = len(m["classes"])

        def leaf_values(leaf):
            v = np.zeros(k)
            for c, p in leaf["probabilities"]:
                # Stored as f32s, written as their shortest decimal: read them back
                # as those f32s, exactly the values vigil-forest holds.
                v[c] = float(np.float32(p))
            return v
    else:
        m = wire["IsolationForest"]
        k = 1

        def leaf_values(leaf):
            return np.array([leaf["path_length"]])

    scale = 1.0 / len(m["trees"])
    trees = [
        export_tree(nodes, covers_of(c), k, leaf_values, scale)
        for nodes, c in zip(m["trees"], m["covers"])
    ]
    return {"trees": trees, "base_offset": 0.0, "input_dtype": np.float64, "internal_dtype": np.float64}, k


def explain(model, rows):
    x = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent", model_output="raw")
    values = np.asarray(explainer.shap_values(x))
    if values.ndim == 2:
        values = values[:, :, None]
    # rows x features x outputs -> outputs x rows x features
    values = np.transpose(values, (2, 0, 1))
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    return expected, values


def listed(tree):
    return {k: np.asarray(v).tolist() for k, v in tree.items()}


def main():
    if sys.argv[1] == "--check":
        golden = json.load(open(sys.argv[2]))
        worst = 0.0
        for name, g in golden.items():
            if name == "about":
                continue
            model, _ = export_model(g["vigil_model"]["model"])
            expected, values = explain(model, g["rows"])
            worst = max(worst, float(np.max(np.abs(values - np.array(g["shap_values"])))))
            worst = max(worst, float(np.max(np.abs(expected - np.array(g["expected_value"])))))
        print(f"largest difference from the golden file: {worst:.3e}")
        sys.exit(0 if worst <= 1e-12 else 1)
    inputs = json.load(open(sys.argv[1]))
    out = {
        "about": f"shap {shap.__version__}, numpy {np.__version__}; written by forest/tests/shap/make_golden.py",
    }
    for name, item in inputs.items():
        model, k = export_model(item["model"]["model"])
        expected, values = explain(model, item["rows"])
        out[name] = {
            "vigil_model": item["model"],
            "shap_export": [listed(t) for t in model["trees"]],
            "rows": item["rows"],
            "expected_value": expected.tolist(),
            "shap_values": values.tolist(),
        }
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
