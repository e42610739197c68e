"""Writes the MLmodel (and env files) MLflow 3.17.2 writes for an ONNX model with
an input example and a signature: the golden text tracking-client's model.rs
tests compare against (src/model.rs, `golden_mlmodel_matches_mlflow`).

Run with the test venv (mlflow 3.17.2, onnx 1.23.2, onnxruntime 1.32.0):
    ~/.cache/vigil/mlflow-3.17.2/bin/python tracking-client/tests/mlmodel/make_golden.py
Output: tracking-client/tests/mlmodel/onnx_model/{MLmodel,input_example.json,
serving_input_example.json,python_env.yaml,conda.yaml,requirements.txt} (model.onnx removed).
"""

import os
import shutil

import mlflow
import numpy as np
import onnx
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx_model")

# y = x[:, 0] (one value per row), double in and out.
x = helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, 2])
y = helper.make_tensor_value_info("first", TensorProto.DOUBLE, [None])
index = helper.make_tensor("index", TensorProto.INT64, [], [0])
node = helper.make_node("Gather", ["input", "index"], ["first"], axis=1)
graph = helper.make_graph([node], "g", [x], [y], initializer=[index])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8

example = pd.DataFrame({"speed": [1.5, 2.0], "vibration": [0.25, -1.0]})
signature = ModelSignature(
    inputs=Schema([ColSpec("double", "speed"), ColSpec("double", "vibration")]),
    outputs=Schema([ColSpec("double", "first")]),
)

shutil.rmtree(OUT, ignore_errors=True)
mlflow.onnx.save_model(
    model,
    OUT,
    signature=signature,
    input_example=example,
    pip_requirements=["mlflow==3.17.2", "onnx==1.23.2", "onnxruntime==1.32.0"],
    metadata={"threshold": "0.5"},
)
os.remove(os.path.join(OUT, "model.onnx"))
print(open(os.path.join(OUT, "MLmodel")).read())
# The folder loads and predicts once the model file is back (checked here, then removed again).
onnx.save_model(model, os.path.join(OUT, "model.onnx"))
got = mlflow.pyfunc.load_model(OUT).predict(example)
assert np.array_equal(got["first"].to_numpy(), example["speed"].to_numpy()), got
os.remove(os.path.join(OUT, "model.onnx"))
