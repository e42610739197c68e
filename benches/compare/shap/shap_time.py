"""Times shap's TreeExplainer (tree_path_dependent, raw) on the comparison forest.

    python shap_time.py DIR [ROWS]     prints one JSON line
Exports the vigil model (DIR/compare_model.json) to shap's custom tree format with
forest/tests/shap/make_golden.py's exporter, explains DIR/rows.json (the first ROWS).
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../forest/tests/shap"))
import make_golden  # noqa: E402
import shap  # noqa: E402

d = sys.argv[1]
model, _ = make_golden.export_model(json.load(open(os.path.join(d, "compare_model.json")))["model"])
rows = json.load(open(os.path.join(d, "rows.json")))
if len(sys.argv) > 2:
    rows = rows[: int(sys.argv[2])]
x = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent", model_output="raw")
start = time.perf_counter()
values = np.asarray(explainer.shap_values(x, check_additivity=False))
seconds = time.perf_counter() - start
print(json.dumps({"tool": "shap " + shap.__version__, "rows": len(rows), "seconds": seconds,
                  "expected_value": float(np.atleast_1d(explainer.expected_value)[1]),
                  "row0": values[0, :, 1].tolist()}))
