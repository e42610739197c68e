#!/usr/bin/env python3
"""Side-by-side timing of vigil-metrics against scikit-learn on the same data.

    benches/compare/metrics/compare.py [--n 10000000] [--repeats 3] [--pos-rate 0.2]

Generates n binary labels, probability-like scores (with some ties) and hard
predictions, writes them to a temp dir, times scikit-learn's roc_auc_score,
precision_recall_curve and confusion_matrix, then runs the Rust driver
(benches/src/bin/metrics_compare.rs, release build) on the same files in the
same run, checks both give the same answers, and prints the speed-up ratios.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def ensure_pyref():
    """Re-exec under the pinned reference venv (benches/compare/setup.sh)."""
    if os.environ.get("VIGIL_PYREF_ACTIVE") == "1":
        return
    venv = subprocess.run(
        [str(ROOT / "benches/compare/setup.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    env = dict(os.environ, VIGIL_PYREF_ACTIVE="1")
    os.execve(f"{venv}/bin/python", [f"{venv}/bin/python", __file__, *sys.argv[1:]], env)


def median_time(repeats, f):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pos-rate", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    ensure_pyref()

    import numpy as np
    import sklearn
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_auc_score

    rng = np.random.default_rng(args.seed)
    y_true = (rng.random(args.n) < args.pos_rate).astype(np.uint8)
    # Probability-like scores; rounding to 1e-7 leaves ties, as real models do.
    score = np.clip(rng.normal(0.35 + 0.3 * y_true, 0.2), 0.0, 1.0).round(7)
    y_pred = (score >= 0.5).astype(np.uint8)

    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "vigil-benches", "--bin", "metrics_compare"],
        cwd=ROOT, check=True, env=env,
    )
    driver = pathlib.Path(env["CARGO_TARGET_DIR"]) / "release" / "metrics_compare"

    with tempfile.TemporaryDirectory() as tmp:
        d = pathlib.Path(tmp)
        y_true.tofile(d / "y_true.u8")
        y_pred.tofile(d / "y_pred.u8")
        score.astype("<f8").tofile(d / "y_score.f64")

        py = {}
        py["roc_auc_score"], auc = median_time(args.repeats, lambda: roc_auc_score(y_true, score))
        py["precision_recall_curve"], (p, r, t) = median_time(
            args.repeats, lambda: precision_recall_curve(y_true, score)
        )
        py["confusion_matrix"], cm = median_time(args.repeats, lambda: confusion_matrix(y_true, y_pred))

        out = subprocess.run(
            [str(driver), str(d), str(args.repeats)], check=True, capture_output=True, text=True
        ).stdout
        rs = json.loads(out)

    # Same answers, or the timing means nothing.
    assert abs(rs["roc_auc_score"]["value"] - auc) < 1e-12, (rs["roc_auc_score"]["value"], auc)
    assert rs["precision_recall_curve"]["n_thresholds"] == len(t)
    assert abs(rs["precision_recall_curve"]["precision_mid"] - p[len(p) // 2]) < 1e-12
    assert abs(rs["precision_recall_curve"]["recall_mid"] - r[len(r) // 2]) < 1e-12
    assert rs["confusion_matrix"]["counts"] == cm.tolist()

    print(f"n = {args.n:,}, positives {args.pos_rate:.0%}, {len(t):,} distinct scores, "
          f"median of {args.repeats}; scikit-learn {sklearn.__version__}, numpy {np.__version__}; "
          f"vigil-metrics on {rs['threads']} rayon threads")
    print(f"{'metric':<26}{'scikit-learn s':>16}{'vigil s':>12}{'speed-up':>11}")
    for name in ("roc_auc_score", "precision_recall_curve", "confusion_matrix"):
        a, b = py[name], rs[name]["seconds"]
        print(f"{name:<26}{a:>16.3f}{b:>12.3f}{a / b:>10.1f}x")


if __name__ == "__main__":
    main()
