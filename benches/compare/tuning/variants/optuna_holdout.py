"""Optuna TPE + random runs for seeds 100..199 (hold-out), in compare.py's reference format.
Usage (from any directory, with the venv of benches/compare/setup.sh):
    python optuna_holdout.py [OUT.json]   (default reference-seeds100-199.json)"""
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import compare, optuna
out = {}
for name, (fn, _) in compare.FUNCTIONS.items():
    t0 = time.time()
    o = [compare.optuna_values(fn, optuna.samplers.TPESampler(seed=s), 100) for s in range(100, 200)]
    r = [compare.optuna_values(fn, optuna.samplers.RandomSampler(seed=s), 100) for s in range(100, 200)]
    out[name] = {"optuna": [x[0] for x in o], "optuna_cats": [x[1] for x in o], "random": [x[0] for x in r]}
    print(name, f"{time.time() - t0:.1f} s", file=sys.stderr)
json.dump({"format": 1, "optuna": optuna.__version__, "seeds": 100, "trials": 100, "first_seed": 100, "functions": out},
          open(sys.argv[1] if len(sys.argv) > 1 else "reference-seeds100-199.json", "w"))
