"""Golden vectors from Optuna 5.0.0 for vigil-tuning's TPE and MedianPruner.

For fixed, hand-built histories this asks Optuna's own objects for:
  * the relative (intersection) search space,
  * the below/above split (trial numbers), via optuna.samplers._tpe.sampler._split_trials,
  * the Parzen estimators l and g (mixture weights, per-dimension mu/sigma or
    categorical tables), via TPESampler._build_parzen_estimator,
  * log l(x) and log g(x) at probe points drawn from l,
  * gamma(n) and default_weights(m),
  * MedianPruner decisions for randomly built studies.

Run (writes golden.json next to this file):
    PY="$(benches/compare/setup.sh)/bin/python"
    "$PY" tuning/tests/golden/make_golden.py
"""

import json
import math
import os

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._tpe import sampler as tpe_mod
from optuna.samplers._tpe.probability_distributions import _BatchedCategoricalDistributions
from optuna.trial import TrialState, create_trial

assert optuna.__version__ == "5.0.0", optuna.__version__
optuna.logging.set_verbosity(optuna.logging.ERROR)

# Optuna assigns bandwidths through np.argsort, whose default kind is not stable: with
# tied observations, which of two equal values gets which neighbour gap depends on
# numpy's SIMD sort and so on the CPU (checked: on an AVX2 machine it differs from the
# stable order for most arrays of 5+ ties). The mixture is the same multiset of kernels
# either way, but under g's ramp weights the densities differ in the 5th digit. vigil
# uses the stable order; to compare everything else exactly, Optuna's parzen_estimator
# module gets a numpy whose argsort is stable while these vectors are generated.
from optuna.samplers._tpe import parzen_estimator as _pe  # noqa: E402


class _StableArgsortNumpy:
    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def argsort(a, *args, **kwargs):
        kwargs.setdefault("kind", "stable")
        return np.argsort(a, *args, **kwargs)


_pe.np = _StableArgsortNumpy()

RELATIVE_KEY = "tpe:relative_params:0"


def dist_json(d):
    if isinstance(d, CategoricalDistribution):
        return {"type": "categorical", "choices": list(d.choices)}
    if isinstance(d, IntDistribution):
        return {"type": "int", "low": d.low, "high": d.high, "step": d.step, "log": d.log}
    return {"type": "float", "low": d.low, "high": d.high, "step": d.step, "log": d.log}


def num(x):
    """JSON-safe float: NaN and infinities as strings."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def sample_value(rng, d):
    if isinstance(d, CategoricalDistribution):
        return d.choices[rng.randint(len(d.choices))]
    if isinstance(d, IntDistribution):
        if d.log:
            return int(min(d.high, max(d.low, round(math.exp(rng.uniform(math.log(d.low), math.log(d.high)))))))
        k = rng.randint((d.high - d.low) // d.step + 1)
        return d.low + k * d.step
    if d.step is not None:
        k = rng.randint(int(round((d.high - d.low) / d.step)) + 1)
        return d.low + k * d.step
    if d.log:
        return float(math.exp(rng.uniform(math.log(d.low), math.log(d.high))))
    return float(rng.uniform(d.low, d.high))


def build_study(direction, trials_spec):
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=0))
    for spec in trials_spec:
        kw = dict(
            state=spec["state"],
            params=spec["params"],
            distributions=spec["dists"],
            intermediate_values=spec.get("intermediate", {}),
        )
        if spec["state"] == TrialState.COMPLETE:
            kw["value"] = spec["value"]
        if spec.get("relative") is not None:
            kw["system_attrs"] = {RELATIVE_KEY: json.dumps(spec["relative"])}
        study.add_trial(create_trial(**kw))
    return study


def trial_json(t, dists):
    params = {}
    for name, value in t.params.items():
        d = t.distributions[name]
        params[name] = {"internal": float(d.to_internal_repr(value)), "dist": dist_json(d)}
    out = {
        "number": t.number,
        "state": t.state.name,
        "value": None if t.value is None else num(t.value),
        "params": params,
        "intermediate": {str(k): num(v) for k, v in t.intermediate_values.items()},
        "pending": {},
    }
    if RELATIVE_KEY in t.system_attrs:
        rel = json.loads(t.system_attrs[RELATIVE_KEY])
        out["pending"] = {k: float(dists[k].to_internal_repr(v)) for k, v in rel.items()}
    return out


def mixture_json(mpe):
    mix = mpe._mixture_distribution
    dims = []
    for d in mix.distributions:
        if isinstance(d, _BatchedCategoricalDistributions):
            dims.append({"probs": d.weights.tolist()})
        else:
            dims.append({"mu": d.mu.tolist(), "sigma": d.sigma.tolist()})
    return {"weights": mix.weights.tolist(), "dims": dims}


def make_case(name, direction, space, trials_spec, rng):
    """Adds a RUNNING current trial and records what TPE computes for it."""
    study = build_study(direction, trials_spec)
    current = study.ask()
    frozen_current = study._storage.get_trial(current._trial_id)
    sampler = optuna.samplers.TPESampler(seed=0)  # Optuna 5 defaults.
    relative_space = sampler.infer_relative_search_space(study, frozen_current)
    trials = study._get_trials(
        deepcopy=False,
        states=[TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING],
        use_cache=False,
    )
    trials = [t for t in trials if t.number != frozen_current.number]
    n = sum(t.state != TrialState.RUNNING for t in trials)
    n_below = tpe_mod.default_gamma(n)
    below, above = tpe_mod._split_trials(study, trials, n_below)
    l = sampler._build_parzen_estimator(study, space, below, handle_below=True)
    g = sampler._build_parzen_estimator(study, space, above, handle_below=False)
    probes_dict = l.sample(np.random.RandomState(rng.randint(2**31)), 24)
    names = list(space.keys())
    probes = [[float(probes_dict[k][i]) for k in names] for i in range(24)]
    log_l = l.log_pdf(probes_dict)
    log_g = g.log_pdf(probes_dict)
    all_trials = study.get_trials(deepcopy=False)
    return {
        "name": name,
        "direction": direction,
        "current_number": frozen_current.number,
        "space": {k: dist_json(v) for k, v in space.items()},
        "trials": [trial_json(t, space) for t in all_trials],
        "expected": {
            "relative_space": sorted(relative_space.keys()),
            "n_below": n_below,
            "below": [t.number for t in below],
            "above": [t.number for t in above],
            "l": mixture_json(l),
            "g": mixture_json(g),
            "probes": probes,
            "log_l": [num(v) for v in log_l],
            "log_g": [num(v) for v in log_g],
        },
    }


def random_trials(rng, space, n, states, objective, n_steps=0, plateau=False):
    out = []
    for i in range(n):
        params = {k: sample_value(rng, d) for k, d in space.items()}
        state = states[i % len(states)]
        value = objective(params)
        if plateau:
            value = round(value, 0)  # many ties
        spec = {"state": state, "params": params, "dists": dict(space)}
        if state == TrialState.COMPLETE:
            spec["value"] = value
        if n_steps and state in (TrialState.COMPLETE, TrialState.PRUNED):
            last = n_steps if state == TrialState.COMPLETE else rng.randint(0, n_steps + 1)
            iv = {s: value + rng.normal() for s in range(last)}
            if iv and rng.rand() < 0.2:
                iv[max(iv)] = float("nan")
            spec["intermediate"] = iv
        if state == TrialState.RUNNING:
            spec["relative"] = {k: sample_value(rng, d) for k, d in space.items()}
            # A running trial has suggested only some of its params so far.
            keep = list(space.keys())[: rng.randint(0, len(space) + 1)]
            spec["params"] = {k: v for k, v in params.items() if k in keep}
            spec["dists"] = {k: space[k] for k in keep}
        out.append(spec)
    return out


def tpe_cases():
    rng = np.random.RandomState(20260501)
    C, P, F, R = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING
    cases = []

    s1 = {"x": FloatDistribution(-5.0, 5.0)}
    cases.append(make_case("float_1d_min", "minimize", s1,
                           random_trials(rng, s1, 15, [C], lambda p: (p["x"] - 1) ** 2), rng))

    mixed = {
        "c": CategoricalDistribution(["A", "B", "C"]),
        "fs": FloatDistribution(0.0, 1.0, step=0.1),
        "n1": IntDistribution(50, 300),
        "n2": IntDistribution(3, 20),
        "nl": IntDistribution(1, 1000, log=True),
        "x1": FloatDistribution(-5.0, 5.0),
        "x2": FloatDistribution(1e-4, 1.0, log=True),
    }

    def fmix(p):
        u = (p["n1"] - 217) / 50
        v = (p["n2"] - 7) / 4
        s = {"A": -1.0, "B": 1.5, "C": 0.0}[p["c"]]
        return ((p["x1"] - s) ** 2 / 4 + (math.log10(p["x2"]) + 2) ** 2 + u * u + v * v + u * v
                + p["fs"] + math.log(p["nl"]) / 10)

    cases.append(make_case("mixed_7d_max_liar", "maximize", mixed,
                           random_trials(rng, mixed, 40, [C, C, C, P, C, F, C, R], fmix, n_steps=4), rng))
    cases.append(make_case("mixed_7d_min_plateau", "minimize", mixed,
                           random_trials(rng, mixed, 33, [C], fmix, plateau=True), rng))
    cases.append(make_case("pruned_fill_below", "minimize", mixed,
                           random_trials(rng, mixed, 30, [C, P, P, P, P, P, P, P, P, P], fmix, n_steps=5), rng))
    cases.append(make_case("pruned_fill_below_max", "maximize", mixed,
                           random_trials(rng, mixed, 30, [C, P, P, P, P, P, P, P, P, P], fmix, n_steps=5), rng))

    s3 = {"a": FloatDistribution(0.0, 1.0), "b": FloatDistribution(1e-3, 10.0, log=True),
          "k": IntDistribution(0, 40, step=4)}
    cases.append(make_case("big_history_ramp_weights", "minimize", s3,
                           random_trials(rng, s3, 130, [C, C, C, C, P, R],
                                         lambda p: p["a"] + math.log(p["b"]) ** 2 + p["k"] / 40,
                                         n_steps=3), rng))

    dup = {"d": IntDistribution(1, 6)}
    cases.append(make_case("duplicate_ints_min_sigma", "maximize", dup,
                           random_trials(rng, dup, 20, [C], lambda p: -abs(p["d"] - 3)), rng))

    # A conditional parameter present in only some trials (independent TPE's 1-D step).
    cond_space = {"y": FloatDistribution(-2.0, 2.0)}
    specs = random_trials(rng, {"x": FloatDistribution(-5.0, 5.0)}, 25, [C], lambda p: p["x"] ** 2)
    for i, s in enumerate(specs):
        if i % 3 != 0:
            y = float(rng.uniform(-2, 2))
            s["params"] = dict(s["params"], y=y)
            s["dists"] = dict(s["dists"], y=cond_space["y"])
            s["value"] = s["value"] + y * y
    cases.append(make_case("conditional_param_1d", "minimize", cond_space, specs, rng))
    return cases


def pruner_cases():
    rng = np.random.RandomState(77)
    out = []
    settings_list = [
        dict(n_startup_trials=5, n_warmup_steps=0, interval_steps=1, n_min_trials=1),
        dict(n_startup_trials=2, n_warmup_steps=2, interval_steps=3, n_min_trials=1),
        dict(n_startup_trials=3, n_warmup_steps=1, interval_steps=1, n_min_trials=4),
        dict(n_startup_trials=0, n_warmup_steps=0, interval_steps=2, n_min_trials=1),
    ]
    for case in range(80):
        settings = settings_list[case % len(settings_list)]
        direction = "minimize" if case % 2 == 0 else "maximize"
        study = optuna.create_study(direction=direction)
        n_hist = int(rng.randint(0, 9))
        history = []
        for _ in range(n_hist):
            state = [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED][rng.randint(3)]
            steps = sorted(rng.choice(8, size=rng.randint(0, 6), replace=False).tolist())
            iv = {int(s): float(rng.normal()) for s in steps}
            for s in list(iv):
                if rng.rand() < 0.1:
                    iv[s] = float("nan")
            kw = dict(state=state, params={}, distributions={}, intermediate_values=iv)
            if state == TrialState.COMPLETE:
                kw["value"] = float(rng.normal())
            study.add_trial(create_trial(**kw))
            history.append({"state": state.name, "intermediate": {str(k): num(v) for k, v in iv.items()}})
        trial = study.ask()
        pruner = optuna.pruners.MedianPruner(**settings)
        reports = []
        decisions = []
        steps = sorted(rng.choice(9, size=rng.randint(1, 6), replace=False).tolist())
        for s in steps:
            v = float("nan") if rng.rand() < 0.1 else float(rng.normal() + 0.3 * rng.randn())
            trial.report(v, int(s))
            reports.append([int(s), num(v)])
            decisions.append(bool(pruner.prune(study, study._storage.get_trial(trial._trial_id))))
        out.append({"direction": direction, "settings": settings, "history": history,
                    "reports": reports, "decisions": decisions})
    return out


def main():
    doc = {
        "optuna_version": optuna.__version__,
        "gamma": [[n, tpe_mod.default_gamma(n)] for n in [0, 1, 9, 10, 11, 99, 100, 240, 250, 251, 1000]],
        "default_weights": {str(m): tpe_mod.default_weights(m).tolist() for m in [0, 1, 24, 25, 26, 27, 40, 100]},
        "tpe_cases": tpe_cases(),
        "pruner_cases": pruner_cases(),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(doc['tpe_cases'])} TPE cases, {len(doc['pruner_cases'])} pruner cases")


if __name__ == "__main__":
    main()
