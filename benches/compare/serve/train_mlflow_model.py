"""The MLflow side of the serve benchmark: a scikit-learn RandomForestClassifier
on the same 42 features (pandas, shared with benches/compare/features/compare.py),
the same telemetry and the tuned hyper-parameters of the vigil model being served,
logged with mlflow.sklearn and registered, so `mlflow models serve -m
models:/NAME/1` serves it the way the seed deployed its model. Also writes the
request bodies (dataframe_split of precomputed feature rows from the last 20 % of
the telemetry) for batches of 1 and 100.

Runs in the MLflow venv (scripts/services.sh: vigil_ensure_mlflow), which has
mlflow, scikit-learn and pandas:

    python train_mlflow_model.py --csv telemetry.csv --params best_params.json \
        --tracking-uri sqlite:///DIR/mlflow.db --bodies DIR [--seed 42]
"""
import argparse
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
MODEL_NAME = "serve_bench_sklearn_rf"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--params", required=True, help="JSON of the vigil model's tuned parameters")
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--bodies", required=True, help="folder for body_1.json and body_100.json")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    import sklearn
    from sklearn.ensemble import RandomForestClassifier

    sys.path.insert(0, str(HERE.parent / "features"))
    from compare import pandas_features  # the 42 reference features

    t0 = time.perf_counter()
    df = pd.read_csv(a.csv)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    df = df.sort_values(["machine_id", "time"], kind="stable").reset_index(drop=True)
    features = pandas_features(df).replace([np.inf, -np.inf], np.nan).fillna(0.0).astype("float64")
    y = df["failure"].to_numpy(dtype=np.int64)
    cut = df["time"].quantile(0.8)
    train = (df["time"] < cut).to_numpy()

    p = json.loads(pathlib.Path(a.params).read_text())
    model = RandomForestClassifier(
        n_estimators=int(p["n_estimators"]),
        max_depth=int(p["max_depth"]),
        min_samples_split=int(p["min_samples_split"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        max_features=p["max_features"],
        max_samples=min(40_000, int(train.sum())),
        random_state=a.seed,
        n_jobs=2,
    ).fit(features[train], y[train])
    print(f"fitted in {time.perf_counter() - t0:.1f} s (features included)", file=sys.stderr)
    # Served with one job: joblib's thread pool costs ~80 ms a call on small batches.
    model.set_params(n_jobs=1)

    mlflow.set_tracking_uri(a.tracking_uri)
    mlflow.set_experiment("serve_bench")
    test = features[~train]
    with mlflow.start_run():
        mlflow.log_params({k: str(v) for k, v in p.items()})
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=MODEL_NAME,
            input_example=test.head(5),
            # Probabilities, as vigil answers (predict() computes them too).
            pyfunc_predict_fn="predict_proba",
            # Our own model, just trained: its tree storage is trusted (skops asks).
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    bodies = pathlib.Path(a.bodies)
    bodies.mkdir(parents=True, exist_ok=True)
    for n in (1, 100):
        rows = test.head(n)
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
        (bodies / f"body_{n}.json").write_text(json.dumps(body))
    print(json.dumps({
        "model_uri": f"models:/{MODEL_NAME}/1",
        "n_features": features.shape[1],
        "train_rows": int(train.sum()),
        "params": p,
        "versions": {"mlflow": mlflow.__version__, "scikit-learn": sklearn.__version__, "pandas": pd.__version__},
    }))


if __name__ == "__main__":
    main()
