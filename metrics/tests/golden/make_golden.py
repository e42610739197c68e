"""Golden values for vigil-metrics, produced by scikit-learn.

Run from the repository root:

    PY="$(benches/compare/setup.sh)/bin/python"
    "$PY" metrics/tests/golden/make_golden.py

It writes metrics/tests/golden/sklearn_golden.json next to this script. The
Rust test metrics/tests/golden.rs checks every value to 1e-12. Non-finite
floats are written as the strings "nan", "inf", "-inf" (JSON has no NaN).
"""

import json
import math
import pathlib
import warnings

import numpy as np
import sklearn
from sklearn import metrics as M

warnings.simplefilter("ignore")  # UndefinedMetricWarning etc. are part of the cases
rng = np.random.default_rng(20261126)


def enc(x):
    """JSON-safe floats (and nested lists/dicts)."""
    if isinstance(x, dict):
        return {k: enc(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [enc(v) for v in x]
    if isinstance(x, np.ndarray):
        return enc(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return x


def best_threshold(y, s, beta):
    """The F-beta-maximising threshold, the usual scikit-learn recipe."""
    p, r, t = M.precision_recall_curve(y, s)
    b2 = beta * beta
    num = (1 + b2) * p * r
    den = b2 * p + r
    f = np.divide(num, den, out=np.zeros_like(den), where=den != 0)
    i = int(np.argmax(f[:-1]))
    return {"threshold": t[i], "f_score": f[i], "precision": p[i], "recall": r[i]}


# ---------------------------------------------------------------- binary scores
def binary_cases():
    cases = []
    n = 60
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), 1)  # heavy ties
    cases.append(("random_ties", y, s))
    y = rng.integers(0, 2, 40)
    cases.append(("all_equal_scores", y, np.full(40, 0.5)))
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1, 0, 1])
    cases.append(("perfect", y, np.where(y == 1, 0.9, 0.1) + rng.random(10) * 0.05))
    cases.append(("inverted", y, np.where(y == 1, 0.1, 0.9) + rng.random(10) * 0.05))
    y = np.zeros(300, dtype=int)
    y[rng.choice(300, 7, replace=False)] = 1
    s = rng.random(300) * 0.8 + 0.2 * y
    cases.append(("imbalanced", y, s))
    y = rng.integers(0, 2, 80)
    s = rng.choice([0.0, 0.5, 1.0], 80)
    cases.append(("three_levels", y, s))
    y = rng.integers(0, 2, 50)
    s = rng.normal(0, 3, 50)
    s[:5] = 0.0
    s[5:10] = -0.0
    s[10] = 1e300
    s[11] = -1e300
    cases.append(("signed_scores", y, s))
    y = np.array([-1, 1, 1, -1, 1, -1, -1, 1, 1, 1])
    cases.append(("minus_one_labels", y, np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.6, 0.9, 0.35, 0.05])))
    y = np.array([0, 1])
    cases.append(("two_samples", y, np.array([0.3, 0.7])))
    y = rng.integers(0, 2, 1000)
    s = rng.random(1000) * 0.6 + 0.4 * y * rng.random(1000)
    cases.append(("large_continuous", y, s))

    out = []
    for name, y, s in cases:
        c = {"name": name, "y_true": y, "y_score": s}
        fpr, tpr, thr = M.roc_curve(y, s)
        c["roc"] = {"fpr": fpr, "tpr": tpr, "thresholds": thr}
        fpr, tpr, thr = M.roc_curve(y, s, drop_intermediate=False)
        c["roc_all"] = {"fpr": fpr, "tpr": tpr, "thresholds": thr}
        c["roc_auc"] = M.roc_auc_score(y, s)
        c["roc_auc_partial"] = {str(m): M.roc_auc_score(y, s, max_fpr=m) for m in (0.1, 0.3, 0.5)}
        p, r, t = M.precision_recall_curve(y, s)
        c["pr"] = {"precision": p, "recall": r, "thresholds": t}
        p, r, t = M.precision_recall_curve(y, s, drop_intermediate=True)
        c["pr_drop"] = {"precision": p, "recall": r, "thresholds": t}
        c["average_precision"] = M.average_precision_score(y, s)
        c["best_f1"] = best_threshold(y, s, 1.0)
        c["best_f2"] = best_threshold(y, s, 2.0)
        c["best_f05"] = best_threshold(y, s, 0.5)
        if s.min() >= 0 and s.max() <= 1:
            c["log_loss"] = M.log_loss(y, s, labels=np.unique(y) if len(np.unique(y)) == 2 else [0, 1])
            c["brier"] = M.brier_score_loss(y, s, pos_label=1)
        out.append(c)

    # No positives: the PR curve and average precision are still defined.
    y = np.zeros(12, dtype=int)
    s = rng.random(12)
    p, r, t = M.precision_recall_curve(y, s)
    out.append({
        "name": "no_positives",
        "y_true": y,
        "y_score": s,
        "pr": {"precision": p, "recall": r, "thresholds": t},
        "average_precision": M.average_precision_score(y, s),
        "log_loss": M.log_loss(y, s, labels=[0, 1]),
        "brier": M.brier_score_loss(y, s, pos_label=1),
    })
    # Probabilities at 0 and 1 exercise log-loss clipping.
    y = np.array([0, 1, 1, 0, 1, 0])
    s = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-20])
    out.append({
        "name": "clipping",
        "y_true": y,
        "y_score": s,
        "log_loss": M.log_loss(y, s),
        "brier": M.brier_score_loss(y, s),
    })
    return out


# ---------------------------------------------------------------- label cases
def label_cases():
    cases = []
    y = rng.integers(0, 2, 50)
    p = np.where(rng.random(50) < 0.8, y, 1 - y)
    cases.append(("binary", y, p, None))
    y = rng.integers(0, 3, 90)
    p = np.where(rng.random(90) < 0.6, y, rng.integers(0, 3, 90))
    cases.append(("three_classes", y, p, None))
    y = rng.integers(0, 5, 120)
    p = np.where(rng.random(120) < 0.5, y, rng.integers(0, 5, 120))
    cases.append(("five_classes", y, p, None))
    y = np.array([0, 1, 2, 2, 1, 0, 2, 1])
    p = np.array([0, 0, 2, 2, 0, 0, 2, 0])  # class 1 never predicted
    cases.append(("never_predicted", y, p, None))
    y = np.array([0, 0, 2, 2, 0, 0])
    p = np.array([0, 1, 2, 2, 1, 0])  # class 1 never true
    cases.append(("never_true", y, p, None))
    y = np.array([0, 1, 1, 0, 2])
    p = np.array([0, 1, 0, 0, 2])
    cases.append(("extra_label", y, p, [2, 0, 1, 7]))  # 7 absent, custom order
    y = np.array([-1, 1, 1, -1, 1, -1])
    p = np.array([-1, 1, -1, -1, 1, 1])
    cases.append(("signed_binary", y, p, None))
    y = np.zeros(10, dtype=int)
    p = np.zeros(10, dtype=int)
    cases.append(("single_class_all_right", y, p, None))
    y = np.array([0, 0, 0, 0])
    p = np.array([1, 1, 1, 1])
    cases.append(("all_wrong_binary", y, p, None))
    y = np.zeros(200, dtype=int)
    y[:6] = 1
    p = np.zeros(200, dtype=int)
    p[3:9] = 1
    cases.append(("imbalanced_binary", y, p, None))

    out = []
    for name, y, p, labels in cases:
        c = {"name": name, "y_true": y, "y_pred": p, "labels": labels}
        c["confusion_matrix"] = M.confusion_matrix(y, p, labels=labels)
        c["accuracy"] = M.accuracy_score(y, p)
        if labels is None:
            c["balanced_accuracy"] = M.balanced_accuracy_score(y, p)
            c["balanced_accuracy_adjusted"] = M.balanced_accuracy_score(y, p, adjusted=True) if len(np.unique(y)) > 1 else "skip"
            c["mcc"] = M.matthews_corrcoef(y, p)
        present = np.unique(np.concatenate([y, p]))
        prf = []
        for beta in (1.0, 0.5, 2.0):
            for zd in ("warn", 1.0, "nan"):
                zdv = np.nan if zd == "nan" else zd
                averages = [None, "micro", "macro", "weighted"]
                if len(present) <= 2:
                    averages.append("binary")
                for avg in averages:
                    pos_labels = [1] if avg == "binary" else [None]
                    if avg == "binary" and 0 in present and 1 in present:
                        pos_labels = [1, 0]
                    if avg == "binary" and 1 not in present and len(present) == 2:
                        pos_labels = [int(present[1])]
                    for pos in pos_labels:
                        kw = {"pos_label": pos} if pos is not None else {}
                        r = M.precision_recall_fscore_support(
                            y, p, beta=beta, labels=labels, average=avg, zero_division=zdv, **kw
                        )
                        prf.append({
                            "beta": beta,
                            "zero_division": str(zd),
                            "average": str(avg),
                            "pos_label": pos,
                            "precision": r[0],
                            "recall": r[1],
                            "f_score": r[2],
                            "support": None if r[3] is None else r[3],
                        })
        c["prf"] = prf
        reports = []
        for digits in (2, 4):
            for zd in ("warn", 1.0):
                reports.append({
                    "digits": digits,
                    "zero_division": str(zd),
                    "text": M.classification_report(y, p, labels=labels, digits=digits, zero_division=zd),
                    "dict": M.classification_report(y, p, labels=labels, output_dict=True, zero_division=zd),
                })
        c["reports"] = reports
        out.append(c)
    return out


# ---------------------------------------------------------------- multi-class probabilities
def multiclass_prob_cases():
    out = []
    for name, n, k, seed_ties in (("k3", 90, 3, False), ("k4_ties", 120, 4, True), ("k5", 200, 5, False)):
        y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
        logits = rng.normal(0, 1, (n, k)) + 1.5 * np.eye(k)[y]
        if seed_ties:
            logits = np.round(logits)
        prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        c = {"name": name, "y_true": y, "y_prob": prob, "k": k}
        c["roc_auc_ovr_macro"] = M.roc_auc_score(y, prob, multi_class="ovr", average="macro")
        c["roc_auc_ovr_weighted"] = M.roc_auc_score(y, prob, multi_class="ovr", average="weighted")
        c["ap_macro"] = M.average_precision_score(y, prob, average="macro")
        c["ap_weighted"] = M.average_precision_score(y, prob, average="weighted")
        c["log_loss"] = M.log_loss(y, prob)
        c["brier"] = M.brier_score_loss(y, prob)
        out.append(c)
    # Labels given explicitly, with negative class values.
    y = np.array([-3, 5, 9, 5, -3, 9, 9, 5])
    prob = rng.dirichlet([1, 1, 1], 8)
    out.append({
        "name": "explicit_labels",
        "y_true": y,
        "y_prob": prob,
        "k": 3,
        "labels": [-3, 5, 9],
        "roc_auc_ovr_macro": M.roc_auc_score(y, prob, multi_class="ovr", labels=[-3, 5, 9]),
        "roc_auc_ovr_weighted": M.roc_auc_score(y, prob, multi_class="ovr", average="weighted", labels=[-3, 5, 9]),
        "log_loss": M.log_loss(y, prob, labels=[-3, 5, 9]),
        "brier": M.brier_score_loss(y, prob, labels=[-3, 5, 9]),
    })
    return out


fixture = {
    "sklearn_version": sklearn.__version__,
    "numpy_version": np.__version__,
    "binary_scores": enc(binary_cases()),
    "labels": enc(label_cases()),
    "multiclass_probs": enc(multiclass_prob_cases()),
}
path = pathlib.Path(__file__).with_name("sklearn_golden.json")
path.write_text(json.dumps(fixture, indent=1, allow_nan=False) + "\n")
print(f"wrote {path} (scikit-learn {sklearn.__version__})")
