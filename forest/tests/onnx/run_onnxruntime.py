"""Runs Vigil's exported ONNX models through onnxruntime (the reference).

Usage: run_onnxruntime.py MANIFEST OUT

MANIFEST is a JSON list of cases {"name", "model", "input", "rows", "columns",
"dtype"}: "model" an .onnx file, "input" raw little-endian float64 values
(rows x columns, row-major), fed as "dtype" ("float32" or "float64"). Every
model is checked with onnx.checker.check_model(full_check=True) first.
OUT gets a JSON object: case name -> {output name -> flat list of values,
"<output>.shape" -> shape, "<output>.dtype" -> numpy dtype name}, plus
"versions".
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    manifest_path, out_path = sys.argv[1], sys.argv[2]
    with open(manifest_path) as f:
        cases = json.load(f)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    results = {"versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__}}
    for case in cases:
        model = onnx.load(case["model"])
        onnx.checker.check_model(model, full_check=True)
        x = np.fromfile(case["input"], dtype="<f8").reshape(case["rows"], case["columns"])
        x = x.astype(case["dtype"])
        session = ort.InferenceSession(
            case["model"], options, providers=["CPUExecutionProvider"]
        )
        input_name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, {input_name: x})
        out = {}
        for name, value in zip(names, values):
            value = np.asarray(value)
            out[name + ".shape"] = list(value.shape)
            out[name + ".dtype"] = str(value.dtype)
            if value.dtype == np.bool_:
                out[name] = [bool(v) for v in value.ravel()]
            elif np.issubdtype(value.dtype, np.integer):
                out[name] = [int(v) for v in value.ravel()]
            else:
                # float32 values widen exactly to Python floats.
                out[name] = [float(v) for v in value.ravel()]
        out["metadata"] = {p.key: p.value for p in model.metadata_props}
        out["ir_version"] = model.ir_version
        results[case["name"]] = out
    with open(out_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
