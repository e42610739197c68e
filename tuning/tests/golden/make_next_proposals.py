"""Golden next-trial proposals from Optuna 5.0.0 for `tests/next_proposals.rs`.

The per-step golden vectors (make_golden.py) pin the split, weights, kernels and
densities. This file pins what those tests cannot see: the *distribution of what gets
drawn* — kernel choice shared across dimensions, truncated-normal draws, categorical
draws, rounding to the grid, argmax over 24 candidates. For a few study histories it asks
Optuna's default TPESampler(seed=s) for the next trial, s = 0..N-1; the Rust test asks
vigil's TpeSampler::new(s) the same question and compares the two samples (two-sample
Kolmogorov-Smirnov per numeric parameter, a two-proportion test per category).

As in make_golden.py, Optuna's Parzen estimator gets a numpy whose argsort is stable:
numpy's default argsort orders tied observations by its SIMD sort (CPU-dependent), which
decides which of several equal int values gets which neighbour gap. vigil uses the stable
order. Without the patch the fixtures would pin this machine's tie order: measured with
benches/compare/tuning/replay.py, the next-proposal distributions then differ (e.g. KS
p = 5e-11 on a 40-trial mixed history) while with it they agree; whole-study quality of
Optuna with and without the patch is the same (paired over 100 seeds on the mixed space:
50/100 runs better each way at 100 trials).

Run: PY="$(benches/compare/setup.sh)/bin/python"; $PY tuning/tests/golden/make_next_proposals.py
"""

import json
import math
import os

import numpy as np
import optuna
from optuna.samplers._tpe import parzen_estimator as _pe

assert optuna.__version__ == "5.0.0", optuna.__version__
optuna.logging.set_verbosity(optuna.logging.ERROR)

DRAWS = 2000


class _StableArgsortNumpy:
    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def argsort(a, *args, **kwargs):
        kwargs.setdefault("kind", "stable")
        return np.argsort(a, *args, **kwargs)


_pe.np = _StableArgsortNumpy()


def mixed(t):
    x1 = t.suggest_float("x1", -5.0, 5.0)
    x2 = t.suggest_float("x2", 1e-4, 1.0, log=True)
    n1 = t.suggest_int("n1", 50, 300)
    n2 = t.suggest_int("n2", 3, 20)
    c = t.suggest_categorical("c", ["A", "B", "C"])
    s = {"A": -1.0, "B": 1.5, "C": 0.0}[c]
    d = {"A": 0.5, "B": 0.0, "C": 1.0}[c]
    u, v = (n1 - 217) / 50, (n2 - 7) / 4
    return (x1 - s) ** 2 / 4 + (math.log10(x2) + 2) ** 2 + u * u + v * v + u * v + d


H_ALPHA = [1.0, 1.2, 3.0, 3.2]
H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
H_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(t):
    x = [t.suggest_float(f"x{j}", 0.0, 1.0) for j in range(6)]
    return -sum(H_ALPHA[i] * math.exp(-sum(H_A[i][j] * (x[j] - H_P[i][j] * 1e-4) ** 2
                                            for j in range(6))) for i in range(4))


CASES = [("mixed_15", mixed, 2, 15), ("mixed_40", mixed, 4, 40), ("hartmann6_60", hartmann6, 3, 60)]


def dist_json(d):
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return {"type": "categorical", "n_choices": len(d.choices)}
    kind = "int" if isinstance(d, optuna.distributions.IntDistribution) else "float"
    return {"type": kind, "low": d.low, "high": d.high, "step": d.step, "log": d.log}


def internal(t):
    return {name: t.distributions[name].to_internal_repr(v) for name, v in t.params.items()}


def main():
    out = {"optuna_version": optuna.__version__, "draws": DRAWS, "cases": []}
    for name, fn, seed, k in CASES:
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(fn, n_trials=k)
        trials = study.trials
        space = {n: dist_json(d) for t in trials for n, d in t.distributions.items()}
        proposals = {n: [] for n in space}
        for s in range(DRAWS):
            st = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=s))
            st.add_trials(trials)
            t = st.ask()
            fn(t)
            for n, v in internal(t).items():
                proposals[n].append(float(f"{v:.10g}"))
        out["cases"].append({
            "name": name,
            "space": space,
            "trials": [{"number": t.number, "state": t.state.name, "value": t.value,
                        "params": internal(t)} for t in trials],
            "proposals": proposals,
        })
        print(name, "done")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "next_proposals.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
