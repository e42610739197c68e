"""Same history, both samplers: the distribution of the next proposal, vigil vs Optuna.

For a study history (taken from an Optuna run of one of compare.py's functions with seed
S after K trials), ask Optuna's default TPESampler(seed=s) and vigil's TpeSampler::new(s) for the
next trial, for s in 0..N, and compare the two samples: category frequencies
(chi-square) and each numeric parameter (two-sample Kolmogorov-Smirnov). A real
difference in the algorithm shows up as tiny p-values on some history; matching
algorithms give p-values spread uniformly on [0, 1].

Optuna assigns bandwidths through np.argsort, which is not stable: which of several tied
observations (ints repeat often) gets which neighbour gap depends on numpy's SIMD sort,
and so on the CPU. vigil uses the stable order. --stable-argsort gives Optuna's
estimator the stable order too, which isolates every other difference.

Usage: benches/compare/tuning/replay.sh [--function mixed] [--draws 2000]
       [--histories 0:10,0:20,1:30,...] [--stable-argsort] [--independent]
"""

import argparse
import json
import math
import subprocess
import sys

import numpy as np
import optuna
from scipy import stats

sys.path.insert(0, __import__("os").path.dirname(__file__))
from compare import FUNCTIONS  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


def stable_argsort():
    """Optuna assigns bandwidths through np.argsort (not stable): which of tied
    observations gets which neighbour gap then depends on numpy's SIMD sort. vigil uses
    the stable order; this makes Optuna's estimator use it too."""
    from optuna.samplers._tpe import parzen_estimator as pe

    class StableNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def argsort(a, *args, **kwargs):
            kwargs.setdefault("kind", "stable")
            return np.argsort(a, *args, **kwargs)

    pe.np = StableNumpy()


def history(fn, seed, k, independent=False):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, multivariate=not independent))
    study.optimize(fn, n_trials=k)
    return study.trials


def internal(t):
    return {name: t.distributions[name].to_internal_repr(v) for name, v in t.params.items()}


def dist_json(d):
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return {"type": "categorical", "n_choices": len(d.choices)}
    kind = "int" if isinstance(d, optuna.distributions.IntDistribution) else "float"
    return {"type": kind, "low": d.low, "high": d.high, "step": d.step, "log": d.log}


def to_json(trials):
    space = {}
    for t in trials:
        for name, d in t.distributions.items():
            space[name] = dist_json(d)
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": internal(t)}
            for t in trials]
    return {"space": space, "trials": rows}


def optuna_next(fn, trials, draws, independent=False):
    out = []
    for s in range(draws):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=s, multivariate=not independent))
        study.add_trials(trials)
        t = study.ask()
        fn(t)
        out.append(internal(t))
    return out


def vigil_next(driver, rows, draws, independent=False):
    args = [driver, str(draws)] + (["tpe-independent"] if independent else [])
    out = subprocess.run(args, input=json.dumps(rows), check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def compare(space, o, v):
    res = {}
    for name, d in sorted(space.items()):
        a = np.array([p[name] for p in o], dtype=float)
        b = np.array([p[name] for p in v], dtype=float)
        if d["type"] == "categorical":
            k = d["n_choices"]
            co = np.bincount(a.astype(int), minlength=k)
            cv = np.bincount(b.astype(int), minlength=k)
            table = np.array([co, cv])
            keep = table.sum(axis=0) > 0
            p = stats.chi2_contingency(table[:, keep])[1] if keep.sum() > 1 else 1.0
            res[name] = (p, f"counts optuna {co.tolist()} vigil {cv.tolist()}")
            continue
        if d["log"]:
            a, b = np.log10(a), np.log10(b)
        res[name] = (stats.ks_2samp(a, b).pvalue,
                     f"mean {a.mean():.4g} vs {b.mean():.4g}, sd {a.std():.4g} vs {b.std():.4g}")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--function", default="mixed", choices=sorted(FUNCTIONS))
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--histories", default="0:10,0:11,0:20,1:15,1:30,2:50,3:100")
    ap.add_argument("--independent", action="store_true")
    ap.add_argument("--stable-argsort", action="store_true",
                    help="give Optuna's Parzen estimator a stable argsort (as the golden generator does)")
    args = ap.parse_args()
    if args.stable_argsort:
        stable_argsort()
    pvals = []
    for spec in args.histories.split(","):
        seed, k = map(int, spec.split(":"))
        fn = FUNCTIONS[args.function][0]
        trials = history(fn, seed, k, args.independent)
        doc = to_json(trials)
        o = optuna_next(fn, trials, args.draws, args.independent)
        v = vigil_next(args.driver, doc, args.draws, args.independent)
        res = compare(doc["space"], o, v)
        print(f"{args.function}: history seed {seed}, {k} trials:")
        for name, (p, desc) in res.items():
            pvals.append(p)
            flag = "  <-- differs" if p < 1e-3 else ""
            print(f"  {name:4s} p={p:.3g}  {desc}{flag}")
    print(f"{len(pvals)} tests; smallest p {min(pvals):.3g}; "
          f"{sum(p < 0.01 for p in pvals)} below 0.01 (expected by chance: {0.01 * len(pvals):.1f})")


if __name__ == "__main__":
    main()
