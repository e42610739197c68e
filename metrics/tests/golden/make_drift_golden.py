"""Golden values for vigil-metrics' drift module, from scipy and evidently.

Versions (pip install into /tmp/venv-drift, Python 3.11.7; pandas 3 breaks evidently 0.7.23's import):
    numpy==2.4.6 scipy==1.17.1 pandas==2.3.3 evidently==0.7.23

Run from the repository root:

    python3 -m venv /tmp/venv-drift
    /tmp/venv-drift/bin/pip install numpy==2.4.6 scipy==1.17.1 pandas==2.3.3 evidently==0.7.23
    /tmp/venv-drift/bin/python metrics/tests/golden/make_drift_golden.py

It writes metrics/tests/golden/drift_golden.json next to this script; the
Rust test metrics/tests/drift.rs checks it. The per-column statistics call
evidently's own stattest functions (legacy.calculations.stattests); the
dataset case runs evidently's (legacy) Report with DataDriftPreset.
"""

import json
import math
import pathlib
import warnings

import numpy as np
import pandas as pd
import scipy
import evidently
from scipy import stats
from scipy.spatial import distance

from evidently.legacy.core import ColumnType
from evidently.legacy.calculations.stattests import registry
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test
from evidently.legacy.report import Report
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.pipeline.column_mapping import ColumnMapping

warnings.simplefilter("ignore")
rng = np.random.default_rng(20261202)


def enc(x):
    if isinstance(x, dict):
        return {k: enc(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [enc(v) for v in x]
    if isinstance(x, np.ndarray):
        return enc(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return x


def samples():
    """(name, reference, current, numerical?) pairs."""
    out = []
    n = rng.normal
    out.append(("small_equal_n", n(0, 1, 40), n(0.3, 1, 40), True))
    out.append(("small_unequal", n(0, 1, 37), n(0.5, 1.2, 53), True))
    out.append(("tiny", n(0, 1, 5), n(1, 1, 7), True))
    out.append(("ties_integers", rng.integers(0, 8, 300).astype(float), rng.integers(0, 9, 250).astype(float), True))
    out.append(("discrete_3", rng.integers(0, 3, 500).astype(float), rng.integers(0, 3, 400).astype(float), True))
    out.append(("equal_samples", np.round(n(0, 1, 200), 2), None, True))
    out.append(("shifted_800", n(0, 1, 800), n(0.2, 1, 900), True))
    out.append(("exact_1000_vs_3000", n(0, 1, 1000), n(0.05, 1, 3000), True))
    out.append(("exact_9999_vs_10000", n(0, 1, 9999), n(0.02, 1, 10000), True))
    out.append(("asymp_12000_vs_10500", n(0, 1, 12000), n(0.01, 1, 10500), True))
    out.append(("asymp_small_current", n(0, 1, 12000), n(0.3, 1, 100), True))
    out.append(("asymp_tiny_current", n(0, 1, 12000), n(0.0, 1, 60), True))
    out.append(("asymp_large_shift", n(0, 1, 12000), n(0.1, 1, 11000), True))
    out.append(("asymp_mid", n(0, 1, 12000), n(0.03, 1, 11000), True))
    out.append(("large_no_shift", n(0, 1, 5000), n(0, 1, 4000), True))
    out.append(("constant_reference", np.full(1500, 2.5), n(2.5, 0.1, 700), True))
    out.append(("lognormal_2000", rng.lognormal(0, 1, 2000), rng.lognormal(0.1, 1, 1500), True))
    out.append(("few_values_ref_15", rng.integers(0, 15, 3000).astype(float), rng.integers(0, 16, 2000).astype(float), True))
    out.append(("categorical_4", rng.choice([1.0, 2.0, 3.0, 7.0], 600, p=[0.4, 0.3, 0.2, 0.1]),
                rng.choice([1.0, 2.0, 3.0, 7.0], 500, p=[0.3, 0.3, 0.3, 0.1]), False))
    out.append(("categorical_new_value", rng.choice([0.0, 1.0, 2.0], 400), rng.choice([0.0, 1.0, 2.0, 3.0], 300), False))
    out.append(("categorical_2", rng.choice([0.0, 1.0], 700, p=[0.7, 0.3]), rng.choice([0.0, 1.0], 650, p=[0.6, 0.4]), False))
    out.append(("categorical_large", rng.choice(np.arange(12.0), 5000), rng.choice(np.arange(12.0), 3000), False))
    res = []
    for name, r, c, num in out:
        if c is None:
            c = r.copy()
        res.append((name, np.asarray(r, float), np.asarray(c, float), num))
    return res


def one_case(name, r, c, num):
    rs, cs = pd.Series(r), pd.Series(c)
    ft = ColumnType.Numerical if num else ColumnType.Categorical
    case = {"name": name, "reference": r, "current": c, "numerical": num}
    for method in ["auto", "exact", "asymp"]:
        try:
            res = stats.ks_2samp(r, c, method=method)
            case[f"ks_{method}"] = {"statistic": res.statistic, "pvalue": res.pvalue}
        except Exception as e:  # noqa: BLE001 - recorded, not hidden
            case[f"ks_{method}_error"] = str(e)
    case["wasserstein"] = stats.wasserstein_distance(r, c)
    case["wasserstein_norm"] = _wasserstein_distance_norm(rs, cs, ft, 0.1)[0]
    case["psi"] = _psi(rs, cs, ft, 0.1)[0]
    case["jensenshannon"] = _jensenshannon(rs, cs, ft, 0.1)[0]
    if not num or rs.nunique() <= 20:
        case["chisquare"] = _chi_stat_test(rs, cs, ft, 0.05)[0]
    if len(set(r) | set(c)) <= 2:
        case["z"] = _z_stat_test(rs, cs, ft, 0.05)[0]
    st = registry.get_stattest(rs, cs, ft, None)
    case["default_method"] = st.name
    out = st(rs, cs, ft, None)
    case["default_statistic"] = out.drift_score
    case["default_threshold"] = out.actual_threshold
    case["default_drifted"] = bool(out.drifted)
    return case


def jensenshannon_vectors():
    cases = []
    for k in [2, 5, 17]:
        p, q = rng.random(k), rng.random(k)
        q[0] = 0.0
        for base in [None, 2.0, 10.0]:
            cases.append({"p": p, "q": q, "base": base, "value": distance.jensenshannon(p, q, base)})
    return cases


def chisquare_vectors():
    cases = []
    for k in [2, 3, 8, 40]:
        obs = rng.integers(1, 60, k).astype(float)
        exp = rng.random(k) + 0.1
        exp = exp / exp.sum() * obs.sum()
        r = stats.chisquare(obs, exp)
        cases.append({"f_obs": obs, "f_exp": exp, "statistic": r.statistic, "pvalue": r.pvalue})
    return cases


def dataset(n_ref, n_cur, shift):
    def frame(n, s):
        return pd.DataFrame({
            "temperature": rng.normal(70 + 8 * s, 5, n),
            "vibration": rng.lognormal(0, 0.5 + 0.5 * s, n),
            "pressure": np.round(rng.normal(3, 0.2, n), 1),
            "load_level": rng.integers(0, 4 + s, n).astype(float),
            "mode": rng.choice([0.0, 1.0, 2.0], n, p=[0.5, 0.3, 0.2] if not s else [0.2, 0.3, 0.5]),
            "door_open": rng.choice([0.0, 1.0], n, p=[0.9, 0.1]),
        })
    ref, cur = frame(n_ref, 0), frame(n_cur, shift)
    num = ["temperature", "vibration", "pressure", "load_level"]
    cat = ["mode", "door_open"]
    rep = Report(metrics=[DataDriftPreset()])
    rep.run(reference_data=ref, current_data=cur,
            column_mapping=ColumnMapping(numerical_features=num, categorical_features=cat))
    d = rep.as_dict()
    table = next(m["result"] for m in d["metrics"] if "drift_by_columns" in m["result"])
    summary = next(m["result"] for m in d["metrics"] if "share_of_drifted_columns" in m["result"])
    feats = []
    for col in ref.columns:
        e = table["drift_by_columns"][col]
        feats.append({"name": col, "method": e["stattest_name"], "statistic": e["drift_score"],
                      "threshold": e["stattest_threshold"], "drifted": e["drift_detected"]})
    return {
        "n_ref": n_ref, "n_cur": n_cur, "shift": shift,
        "columns": [{"name": c, "numerical": c in num, "reference": ref[c].to_numpy(), "current": cur[c].to_numpy()}
                    for c in ref.columns],
        "features": feats,
        "dataset_drift": summary["dataset_drift"],
        "share_drifted": summary["share_of_drifted_columns"],
    }


def main():
    out = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
                     "evidently": evidently.__version__},
        "cases": [one_case(*s) for s in samples()],
        "jensenshannon": jensenshannon_vectors(),
        "chisquare": chisquare_vectors(),
        "datasets": [dataset(600, 500, 0), dataset(600, 500, 1), dataset(3000, 2000, 0), dataset(3000, 2000, 1)],
    }
    path = pathlib.Path(__file__).with_name("drift_golden.json")
    path.write_text(json.dumps(enc(out), indent=None))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
