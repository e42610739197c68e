"""Per-block detail, 20-seed bootstrap and a hold-out check for vigil TPE variants.
Usage: blocks.py REF.json DRIVER first_seed n_seeds name[:opts] ..."""
import json, subprocess, sys
import numpy as np
from scipy import stats

ref_path, driver, first, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ref = json.load(open(ref_path))["functions"]
FSTAR = {"branin": 0.39788735772973816, "hartmann6": -3.3223680114155147, "rosenbrock5": 0.0, "ackley5": 0.0, "mixed": 0.0}
BUDGETS = (20, 50, 100)
rng = np.random.default_rng(1)

def best(values):  # runs x trials -> runs x budgets
    a = np.minimum.accumulate(np.asarray(values, dtype=float), axis=1)
    return a[:, [b - 1 for b in BUDGETS]]

for spec in sys.argv[5:]:
    name, _, opts = spec.partition(":")
    vig, opt = {}, {}
    for f in FSTAR:
        out = subprocess.run([driver, "quality", f, str(first + n), "100", "tpe", *opts.split()],
                             check=True, capture_output=True, text=True).stdout
        rows = [json.loads(l) for l in out.splitlines() if l.strip()][first:]
        vig[f] = best([[v if v is not None else np.inf for v in r["values"]] for r in rows])
        opt[f] = best(ref[f]["optuna"][:n])
    # full-sample cells
    ok, pbs, worse_sig = 0, [], []
    fails = []
    for f in FSTAR:
        for j, b in enumerate(BUDGETS):
            v, o = vig[f][:, j], opt[f][:, j]
            u = stats.mannwhitneyu(v, o, alternative="two-sided")
            pb = 1 - u.statistic / (len(v) * len(o))  # P(v < o) with ties half
            if np.median(v) <= np.median(o): ok += 1
            else: fails.append(f"{f}@{b}")
            pbs.append(pb)
            if pb < 0.5 and u.pvalue < 0.05: worse_sig.append(f"{f}@{b} (P={pb:.2f}, p={u.pvalue:.2g})")
    # disjoint blocks of 20 (vigil block k vs Optuna block k)
    blocks = []
    for k in range(n // 20):
        s = slice(20 * k, 20 * k + 20)
        bad = [f"{f}@{b}" for f in FSTAR for j, b in enumerate(BUDGETS)
               if np.median(vig[f][s, j]) > np.median(opt[f][s, j])]
        blocks.append(bad)
    # bootstrap: 20 vigil runs and 20 Optuna runs drawn from the 100 each
    reps = 4000
    allok = np.ones(reps, bool)
    cell_ok = {}
    for f in FSTAR:
        iv = rng.integers(0, vig[f].shape[0], (reps, 20))
        io = rng.integers(0, opt[f].shape[0], (reps, 20))
        mv = np.median(vig[f][iv], axis=1)  # reps x budgets
        mo = np.median(opt[f][io], axis=1)
        good = mv <= mo
        for j, b in enumerate(BUDGETS): cell_ok[f"{f}@{b}"] = good[:, j].mean()
        allok &= good.all(axis=1)
    print(f"## {name} ({opts or 'defaults'}), vigil seeds {first}..{first + n - 1}")
    print(f"cells no worse: {ok}/15; worse: {', '.join(fails) or 'none'}")
    print(f"significantly worse (p<0.05): {', '.join(worse_sig) or 'none'}; mean P(beats) {np.mean(pbs):.3f}")
    print("blocks: " + "; ".join(f"{15 - len(b)}/15" + (f" (fails {', '.join(b)})" if b else "") for b in blocks))
    print(f"bootstrap P(all 15 no worse at 20 seeds): {allok.mean():.3f}; per cell: " +
          ", ".join(f"{k} {v:.2f}" for k, v in cell_ok.items()))
    print()
