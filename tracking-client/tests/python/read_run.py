"""Reads a run and a registered model logged by the Rust client with MLflow's
own Python client, and prints what it saw as JSON (checked by the Rust tests).

usage: read_run.py <run_id> <model_name> <metric_key>...   (MLFLOW_TRACKING_URI set)
"""
import json
import math
import sys
import tempfile
import os

import mlflow
from mlflow import MlflowClient


def num(v):
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return v


def main():
    run_id, model_name, *metric_keys = sys.argv[1:]
    client = MlflowClient()
    run = client.get_run(run_id)
    out = {
        "status": run.info.status,
        "run_name": run.info.run_name,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "params": run.data.params,
        "tags": run.data.tags,
        "latest": {k: num(v) for k, v in run.data.metrics.items()},
        "history": {
            k: [[m.step, num(m.value), m.timestamp] for m in client.get_metric_history(run_id, k)]
            for k in metric_keys
        },
        "artifacts": sorted(f.path for f in client.list_artifacts(run_id)),
        "model_artifacts": sorted(f.path for f in client.list_artifacts(run_id, "model")),
    }
    if model_name != "-":
        prod = client.get_latest_versions(model_name, stages=["Production"])
        out["production_version"] = prod[0].version if prod else None
        out["champion_version"] = client.get_model_version_by_alias(model_name, "champion").version
        with tempfile.TemporaryDirectory() as d:
            p = mlflow.artifacts.download_artifacts(f"models:/{model_name}/Production", dst_path=d)
            out["production_files"] = sorted(os.listdir(p))
        with tempfile.TemporaryDirectory() as d:
            p = mlflow.artifacts.download_artifacts(f"models:/{model_name}@champion", dst_path=d)
            out["champion_files"] = sorted(os.listdir(p))
        info = mlflow.models.get_model_info(f"models:/{model_name}@champion")
        out["flavors"] = sorted(info.flavors.keys())
        out["signature_inputs"] = [c["name"] for c in info.signature.inputs.to_dict()] if info.signature else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
