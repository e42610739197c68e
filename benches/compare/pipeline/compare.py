"""The Rust reference pipeline vs a Python reference pipeline, on the same
telemetry and the same splits, in one run.

Python side (what the reference pipeline is built from): pandas features (the
same 42 rolling-window features as vigil-features; the implementation is shared
with benches/compare/features/compare.py), inf/NaN -> 0, the same time-ordered
train / validation / test split with a 30-minute embargo, scikit-learn's
IsolationForest (contamination 0.1) and RandomForestClassifier tuned by Optuna's
TPE (default TPESampler(seed), 20 trials, maximise validation F1 at its best
threshold, MedianPruner(n_startup_trials=5, n_warmup_steps=0) on a quarter-forest
first step, exactly like the Rust pipeline), the final forest refitted on train +
validation and scored once on the test split. Both sides use 2 threads and draw at
most 40,000 rows per tree.

Rust side: `target/release/pipeline --source csv` on the same CSV, tracking to a
throwaway local store, as a user runs it (tracking, plots and registration are
included in its time; the Python side does no tracking, which favours Python).

    benches/compare/pipeline/run.sh [--machines 4] [--days 7] [--trials 20] [--seed 42]

Prints a JSON summary and a Markdown table.
"""
import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EMBARGO_US = 30 * 60 * 1_000_000  # the label horizon: no training label looks into a later split
VALIDATION_FRACTION = 0.2
TEST_FRACTION = 0.2


def ensure_venv() -> None:
    """Re-run under the pinned reference venv (benches/compare/setup.sh)."""
    if os.environ.get("VIGIL_PYREF_ACTIVE") == "1":
        return
    venv = subprocess.check_output([str(ROOT / "benches/compare/setup.sh")], text=True).strip()
    env = dict(os.environ, VIGIL_PYREF_ACTIVE="1")
    os.execve(f"{venv}/bin/python", [f"{venv}/bin/python", __file__, *sys.argv[1:]], env)


def cutoff_at_fraction(sorted_time, fraction):
    """vigil_features::cutoff_at_fraction: a time quantile, same float arithmetic."""
    n = len(sorted_time)
    return sorted_time[min(int(n * fraction), n - 1)]


def best_f1_threshold(y, proba):
    """The threshold maximising F1 over the PR curve (vigil_metrics::best_threshold_f1)."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, proba)
    p, r = precision[:-1], recall[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    i = int(np.argmax(f1))
    return float(f1[i]), float(thresholds[i])


def python_pipeline(csv, trials, seed, contamination, max_samples, pruning):
    import numpy as np
    import optuna
    import pandas as pd
    from sklearn.ensemble import IsolationForest, RandomForestClassifier
    from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

    sys.path.insert(0, str(ROOT / "benches/compare/features"))
    from compare import pandas_features  # the 42 features, shared with the features comparison

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stages = {}
    t = time.perf_counter()
    df = pd.read_csv(csv)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    stages["load"] = time.perf_counter() - t

    t = time.perf_counter()
    df = df.sort_values(["machine_id", "time"], kind="stable").reset_index(drop=True)
    features = pandas_features(df)
    x = features.replace([np.inf, -np.inf], np.nan).fillna(0.0).to_numpy(dtype=np.float64)
    y = df["failure"].to_numpy(dtype=np.int64)
    # pandas 3 infers the resolution from the strings (ms here): ask for µs explicitly.
    us = df["time"].dt.as_unit("us").astype("int64").to_numpy()
    stages["features"] = time.perf_counter() - t

    sorted_us = np.sort(us)
    test_cut = cutoff_at_fraction(sorted_us, 1.0 - TEST_FRACTION)
    val_cut = cutoff_at_fraction(sorted_us, 1.0 - TEST_FRACTION - VALIDATION_FRACTION)
    test = us >= test_cut
    train_val = us < test_cut - EMBARGO_US
    val = train_val & (us >= val_cut)
    train = train_val & (us < val_cut - EMBARGO_US)
    x_train, y_train = x[train], y[train]
    x_val, y_val = x[val], y[val]
    per_tree = min(max_samples, len(y_train)) if max_samples else None

    t = time.perf_counter()
    iso = IsolationForest(n_estimators=100, contamination=contamination, random_state=seed, n_jobs=2)
    iso.fit(x_train)
    stages["isolation_forest"] = time.perf_counter() - t

    def forest(params, n_estimators, rows):
        return RandomForestClassifier(
            n_estimators=n_estimators,
            max_depth=params["max_depth"],
            min_samples_split=params["min_samples_split"],
            min_samples_leaf=params["min_samples_leaf"],
            max_features=params["max_features"],
            max_samples=min(max_samples, rows) if max_samples else None,
            n_jobs=2,
            random_state=seed,
        )

    def objective(trial):
        params = {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300),
            "max_depth": trial.suggest_int("max_depth", 3, 20),
            "min_samples_split": trial.suggest_int("min_samples_split", 2, 20),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2"]),
        }
        if pruning:
            quick = forest(params, max(params["n_estimators"] // 4, 10), len(y_train)).fit(x_train, y_train)
            f1, _ = best_f1_threshold(y_val, quick.predict_proba(x_val)[:, 1])
            trial.report(f1, 0)
            if trial.should_prune():
                raise optuna.TrialPruned()
        model = forest(params, params["n_estimators"], len(y_train)).fit(x_train, y_train)
        f1, threshold = best_f1_threshold(y_val, model.predict_proba(x_val)[:, 1])
        if pruning:
            trial.report(f1, 1)
        trial.set_user_attr("threshold", threshold)
        return f1

    t = time.perf_counter()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0) if pruning else optuna.pruners.NopPruner()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    study.optimize(objective, n_trials=trials)
    stages["tuning"] = time.perf_counter() - t
    best = study.best_trial
    threshold = best.user_attrs["threshold"]
    states = [tr.state.name for tr in study.trials]

    t = time.perf_counter()
    final = forest(best.params, best.params["n_estimators"], int(train_val.sum())).fit(x[train_val], y[train_val])
    stages["final_fit"] = time.perf_counter() - t

    t = time.perf_counter()
    x_test, y_test = x[test], y[test]
    proba = final.predict_proba(x_test)[:, 1]
    pred = (proba >= threshold).astype(np.int64)
    anomaly = -iso.score_samples(x_test)
    scores = {
        "f1": float(f1_score(y_test, pred, zero_division=0)),
        "precision": float(precision_score(y_test, pred, zero_division=0)),
        "recall": float(recall_score(y_test, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_test, proba)),
        "pr_auc": float(average_precision_score(y_test, proba)),
        "anomaly_roc_auc": float(roc_auc_score(y_test, anomaly)),
    }
    stages["evaluation"] = time.perf_counter() - t
    return {
        "rows": {"train": int(train.sum()), "validation": int(val.sum()), "test": int(test.sum())},
        "best_params": best.params,
        "best_validation_f1": best.value,
        "trials": {s.lower(): states.count(s) for s in ("COMPLETE", "PRUNED", "FAIL")},
        "threshold": threshold,
        "test": scores,
        "stage_seconds": stages,
        "total_seconds": sum(stages.values()),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def rust_pipeline(binary, csv, trials, seed, contamination, max_samples, pruning, work):
    out = work / "rust-output"
    cmd = [
        str(binary), "--source", "csv", "--input", str(csv), "--trials", str(trials), "--seed", str(seed),
        "--contamination", str(contamination), "--max-samples-per-tree", str(max_samples or 0),
        "--output-dir", str(out), "--no-progress",
    ]
    if not pruning:
        cmd.append("--no-pruning")
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the embedded default: a local store in the working folder
    env["RAYON_NUM_THREADS"] = "2"
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"the Rust pipeline failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    summary = json.loads((next(out.glob("*/run_summary.json"))).read_text())
    summary["wall_seconds"] = wall
    summary["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return summary


def main() -> None:
    ensure_venv()
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True, help="telemetry CSV (written by the simulate binary)")
    ap.add_argument("--pipeline", default=str(ROOT / "target/release/pipeline"))
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--contamination", type=float, default=0.1)
    ap.add_argument("--max-samples-per-tree", type=int, default=40_000)
    ap.add_argument("--no-pruning", action="store_true")
    ap.add_argument("--skip-python", action="store_true")
    args = ap.parse_args()
    pruning = not args.no_pruning
    import numpy, optuna, pandas, sklearn  # noqa: E401 (versions for the record)

    with tempfile.TemporaryDirectory(prefix="vigil-pipeline-compare-") as tmp:
        work = pathlib.Path(tmp)
        rust = rust_pipeline(args.pipeline, args.csv, args.trials, args.seed, args.contamination,
                             args.max_samples_per_tree, pruning, work)
    py = None if args.skip_python else python_pipeline(
        args.csv, args.trials, args.seed, args.contamination, args.max_samples_per_tree, pruning)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.platform()}",
        "load_average": os.getloadavg(),
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__,
                     "scikit-learn": sklearn.__version__, "optuna": optuna.__version__},
        "rust": rust,
        "python": py,
    }
    print(json.dumps(result, indent=2, default=str))
    print()
    print("| stage | Python (s) | Rust (s) | Rust is … faster |")
    print("|---|---:|---:|---:|")
    for stage in ["load", "features", "isolation_forest", "tuning", "final_fit", "evaluation", "tracking"]:
        r = rust["stage_seconds"].get(stage)
        p = py["stage_seconds"].get(stage) if py else None
        ratio = f"{p / r:.1f}×" if (p is not None and r) else "–"
        fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"| {stage} | {fmt(p)} | {fmt(r)} | {ratio} |")
    if py:
        print(f"| **end to end** | {py['total_seconds']:.1f} | {rust['wall_seconds']:.1f} (process wall) | "
              f"**{py['total_seconds'] / rust['wall_seconds']:.1f}×** |")
        print()
        print("| test metric | Python | Rust |")
        print("|---|---:|---:|")
        for m in ["f1", "precision", "recall", "roc_auc", "pr_auc", "anomaly_roc_auc"]:
            print(f"| {m} | {py['test'][m]:.4f} | {rust['test'][m]:.4f} |")
        print(f"| trials complete / pruned | {py['trials'].get('complete')} / {py['trials'].get('pruned')} | "
              f"{rust['trials']['complete']} / {rust['trials']['pruned']} |")
        print(f"| peak RSS (MiB) | {py['peak_rss_mib']:.0f} | {rust['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
