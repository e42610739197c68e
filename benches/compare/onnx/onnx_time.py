"""The Python side of compare/onnx/run.sh: scikit-learn's forest exported by
skl2onnx, and onnxruntime's prediction times on Vigil's and skl2onnx's files.

    python onnx_time.py fit --work DIR --params best_params.json [--seed 42]
        fits scikit-learn's RandomForestClassifier on DIR/train_x.npy, train_y.npy
        with the Vigil model's tuned parameters (as compare/serve does), exports it
        with skl2onnx (float input, zipmap off: how skl2onnx is normally used),
        writes DIR/sk_rf.onnx and DIR/sk_rf.pkl, prints sizes and how far
        onnxruntime's probabilities are from scikit-learn's on DIR/test_x.npy.
    python onnx_time.py time --onnx FILE --rows test_x.npy --mode batch|row
        [--threads N] [--float] [--repeats 5] [--row-count 2000]
    python onnx_time.py time-sklearn --pickle FILE --rows test_x.npy --mode batch|row ...

Each prints one JSON line. Batch: the best of --repeats calls on all rows.
Row: the first --row-count rows, one call each.
"""
import argparse
import json
import pathlib
import pickle
import sys
import time

import numpy as np


def fit(a):
    import onnx
    import onnxruntime as ort
    import sklearn
    import skl2onnx
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    work = pathlib.Path(a.work)
    x = np.load(work / "train_x.npy")
    y = np.load(work / "train_y.npy")
    test = np.load(work / "test_x.npy")
    p = json.loads(pathlib.Path(a.params).read_text())
    model = RandomForestClassifier(
        n_estimators=int(p["n_estimators"]),
        max_depth=int(p["max_depth"]),
        min_samples_split=int(p["min_samples_split"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        max_features=p["max_features"],
        max_samples=min(40_000, len(y)),
        random_state=a.seed,
        n_jobs=2,
    ).fit(x, y)
    exported = to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}})
    raw = exported.SerializeToString()
    (work / "sk_rf.onnx").write_bytes(raw)
    (work / "sk_rf.pkl").write_bytes(pickle.dumps(model))
    sess = ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
    probabilities = sess.run(None, {sess.get_inputs()[0].name: test.astype(np.float32)})[1][:, 1]
    reference = model.predict_proba(test)[:, 1]
    print(json.dumps({
        "sk_trees": len(model.estimators_),
        "sk_nodes": int(sum(t.tree_.node_count for t in model.estimators_)),
        "sk_onnx_bytes": len(raw),
        "sk_pickle_bytes": (work / "sk_rf.pkl").stat().st_size,
        "sk_onnx_max_abs_diff": float(np.max(np.abs(probabilities - reference))),
        "versions": {
            "sklearn": sklearn.__version__, "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__,
        },
    }))


def timed(call_batch, call_row, rows, a):
    if a.mode == "batch":
        best = float("inf")
        for _ in range(max(1, a.repeats)):
            start = time.perf_counter()
            call_batch(rows)
            best = min(best, time.perf_counter() - start)
        return 1, len(rows), best
    n = min(a.row_count, len(rows))
    singles = [rows[i:i + 1] for i in range(n)]
    start = time.perf_counter()
    for r in singles:
        call_row(r)
    return n, 1, time.perf_counter() - start


def report(side, a, calls, per_call, seconds):
    print(json.dumps({
        "side": side, "mode": a.mode, "rows": calls * per_call, "calls": calls,
        "threads": a.threads, "seconds": seconds,
        "us_per_row": seconds * 1e6 / (calls * per_call), "us_per_call": seconds * 1e6 / calls,
    }))


def time_onnx(a):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.onnx, options, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    rows = np.load(a.rows).astype(np.float32 if a.float else np.float64)
    run = lambda r: sess.run(None, {name: r})  # noqa: E731
    calls, per_call, seconds = timed(run, run, rows, a)
    report("onnxruntime:" + pathlib.Path(a.onnx).name, a, calls, per_call, seconds)


def time_sklearn(a):
    model = pickle.loads(pathlib.Path(a.pickle).read_bytes())
    model.set_params(n_jobs=a.threads)
    rows = np.load(a.rows)
    calls, per_call, seconds = timed(model.predict_proba, model.predict_proba, rows, a)
    report("sklearn", a, calls, per_call, seconds)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--work", required=True)
    f.add_argument("--params", required=True)
    f.add_argument("--seed", type=int, default=42)
    for name in ("time", "time-sklearn"):
        t = sub.add_parser(name)
        t.add_argument("--onnx")
        t.add_argument("--pickle")
        t.add_argument("--rows", required=True)
        t.add_argument("--mode", choices=["batch", "row"], required=True)
        t.add_argument("--threads", type=int, default=2)
        t.add_argument("--float", action="store_true", help="float32 input (skl2onnx's file)")
        t.add_argument("--repeats", type=int, default=5)
        t.add_argument("--row-count", type=int, default=2000)
    a = ap.parse_args()
    {"fit": fit, "time": time_onnx, "time-sklearn": time_sklearn}[a.command](a)


if __name__ == "__main__":
    sys.exit(main())
