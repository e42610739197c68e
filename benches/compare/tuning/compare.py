"""vigil-tuning vs Optuna 5.0.0, side by side in one run.

Quality: Optuna's default TPESampler(seed), Optuna's RandomSampler(seed) and vigil's
default TPE (via the Rust driver) minimise the same functions (--seeds runs each; the
seeds of vigil and Optuna draw different random streams, so runs are not paired); the
table gives the median best value and the median regret (best - f*) after 20, 50 and
100 trials (a 20-trial run is the prefix of a 100-trial run: the samplers never see the
budget), and, because a median over few runs of a multi-modal outcome is noisy, a
bootstrap interval of the difference of median regrets, the probability that a vigil
run ends better than an Optuna run, and the Mann-Whitney p-value. For the mixed space it
also counts the runs whose best trial lies in each category.

Speed: wall time per trial of a whole study (trivial objective on the mixed space):
in memory at 100 and 1000 trials, and vigil's PostgreSQL storage (Optuna's SQLite
storage for reference).

Variants: --n-ei-candidates / --n-startup-trials set vigil's TPE (default: Optuna's, 24
and 10; Optuna always runs its defaults). --save-reference FILE writes the Optuna and
random runs to a JSON file and --load-reference FILE reuses them instead of running
Optuna again (a file with more seeds or trials serves as its prefix), so that vigil
variants are compared against the same reference runs. With 40+ seeds the verdict also
splits the seeds into disjoint blocks of 20 and counts the blocks in which vigil's median
regret is no worse than Optuna's in every cell.

Usage: benches/compare/tuning/run.sh [--seeds 20] [--trials 100] [--speed-trials 1000]
       [--skip-quality] [--skip-speed] [--n-ei-candidates N] [--n-startup-trials N]
       [--save-reference FILE | --load-reference FILE]
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import numpy as np
import optuna

assert optuna.__version__ == "5.0.0", optuna.__version__
optuna.logging.set_verbosity(optuna.logging.ERROR)

# ---- benchmark functions (all minimised) -------------------------------------------

def branin(t):
    x0 = t.suggest_float("x0", -5.0, 10.0)
    x1 = t.suggest_float("x1", 0.0, 15.0)
    b, c, r, s, tt = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return (x1 - b * x0**2 + c * x0 - r) ** 2 + s * (1 - tt) * math.cos(x0) + s


H_ALPHA = [1.0, 1.2, 3.0, 3.2]
H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
H_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(t):
    x = [t.suggest_float(f"x{j}", 0.0, 1.0) for j in range(6)]
    f = 0.0
    for i in range(4):
        inner = sum(H_A[i][j] * (x[j] - H_P[i][j] * 1e-4) ** 2 for j in range(6))
        f -= H_ALPHA[i] * math.exp(-inner)
    return f


def rosenbrock5(t):
    x = [t.suggest_float(f"x{j}", -5.0, 10.0) for j in range(5)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(4))


def ackley5(t):
    x = [t.suggest_float(f"x{j}", -32.768, 32.768) for j in range(5)]
    s2 = sum(v * v for v in x) / 5
    sc = sum(math.cos(2 * math.pi * v) for v in x) / 5
    return -20 * math.exp(-0.2 * math.sqrt(s2)) - math.exp(sc) + 20 + math.e


def mixed(t):
    """The mixed space, exactly (suggest order matters for nothing but readability):
    x1 float [-5, 5]; x2 float [1e-4, 1] log; n1 int [50, 300]; n2 int [3, 20];
    c categorical {A, B, C}. With u = (n1 - 217)/50, v = (n2 - 7)/4:
    f = (x1 - s(c))^2/4 + (log10 x2 + 2)^2 + u^2 + v^2 + u*v + d(c),
    s = {A: -1, B: 1.5, C: 0}, d = {A: 0.5, B: 0, C: 1}; f* = 0 at c=B, x1=1.5,
    x2=0.01, n1=217, n2=7."""
    x1 = t.suggest_float("x1", -5.0, 5.0)
    x2 = t.suggest_float("x2", 1e-4, 1.0, log=True)
    n1 = t.suggest_int("n1", 50, 300)
    n2 = t.suggest_int("n2", 3, 20)
    c = t.suggest_categorical("c", ["A", "B", "C"])
    s = {"A": -1.0, "B": 1.5, "C": 0.0}[c]
    d = {"A": 0.5, "B": 0.0, "C": 1.0}[c]
    u, v = (n1 - 217) / 50, (n2 - 7) / 4
    return (x1 - s) ** 2 / 4 + (math.log10(x2) + 2) ** 2 + u * u + v * v + u * v + d


FUNCTIONS = {
    "branin": (branin, 0.39788735772973816),
    "hartmann6": (hartmann6, -3.3223680114155147),
    "rosenbrock5": (rosenbrock5, 0.0),
    "ackley5": (ackley5, 0.0),
    "mixed": (mixed, 0.0),
}


CHOICES = ["A", "B", "C"]


def optuna_values(fn, sampler, n_trials):
    """Values per trial, and the mixed space's category per trial (None elsewhere)."""
    study = optuna.create_study(sampler=sampler)
    study.optimize(fn, n_trials=n_trials)
    return [t.value for t in study.trials], [t.params.get("c") for t in study.trials]


def vigil_values(driver, name, seeds, n_trials, sampler="tpe", tpe_options=()):
    out = subprocess.run([driver, "quality", name, str(seeds), str(n_trials), sampler, *tpe_options],
                         check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    values = [[float(v) if v is not None else math.inf for v in r["values"]] for r in rows]
    cats = [[CHOICES[int(p["c"])] if "c" in p else None for p in r["params"]] for r in rows]
    return values, cats


def prob_better(a, b):
    """P(a run from `a` ends strictly better than one from `b`), ties counting half: the
    Mann-Whitney U statistic over len(a)·len(b)."""
    wins = sum((x < y) + 0.5 * (x == y) for x in a for y in b)
    return wins / (len(a) * len(b))


def median_diff_ci(a, b, rng, reps=2000, level=0.9):
    """Bootstrap interval of median(a) - median(b), resampling runs."""
    a, b = np.asarray(a), np.asarray(b)
    d = [np.median(rng.choice(a, a.size)) - np.median(rng.choice(b, b.size)) for _ in range(reps)]
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
    return lo, hi


def category_counts(cats, values, budget):
    """How many runs have their best trial (within `budget`) in each category."""
    counts = {c: 0 for c in CHOICES}
    for cs, vs in zip(cats, values):
        i = min(range(budget), key=lambda k: vs[k])
        counts[cs[i]] += 1
    return "/".join(str(counts[c]) for c in CHOICES)


def best_at(values, budget):
    return min(values[:budget])


def fmt(x):
    return f"{x:.4g}"


REFERENCE_FORMAT = 1
BLOCK_SEEDS = 20


def reference_runs(seeds, n_trials, load=None, save=None):
    """Optuna TPE and random runs per function: {name: {"optuna": [values per run],
    "optuna_cats": [...], "random": [...]}}; from `load` (a JSON file written by `save`)
    when given."""
    if load:
        with open(load) as f:
            data = json.load(f)
        if (data.get("format") != REFERENCE_FORMAT or data["optuna"] != optuna.__version__
                or data["seeds"] < seeds or data["trials"] < n_trials
                or set(data["functions"]) != set(FUNCTIONS)):
            sys.exit(f"{load}: not a reference for optuna {optuna.__version__}, "
                     f"{seeds} seeds, {n_trials} trials and these functions")
        print(f"[quality] reference runs from {load} ({data['seeds']} seeds, {data['trials']} trials)",
              file=sys.stderr)
        return {name: {k: [run[:n_trials] for run in runs[:seeds]] for k, runs in ref.items()}
                for name, ref in data["functions"].items()}
    out = {}
    for name, (fn, _) in FUNCTIONS.items():
        t0 = time.time()
        opt_runs = [optuna_values(fn, optuna.samplers.TPESampler(seed=s), n_trials) for s in range(seeds)]
        rnd_runs = [optuna_values(fn, optuna.samplers.RandomSampler(seed=s), n_trials) for s in range(seeds)]
        out[name] = {"optuna": [r[0] for r in opt_runs], "optuna_cats": [r[1] for r in opt_runs],
                     "random": [r[0] for r in rnd_runs]}
        print(f"[quality] {name}: Optuna and random {time.time() - t0:.1f} s", file=sys.stderr)
    if save:
        with open(save, "w") as f:
            json.dump({"format": REFERENCE_FORMAT, "optuna": optuna.__version__, "seeds": seeds,
                       "trials": n_trials, "functions": out}, f)
        print(f"[quality] reference runs saved to {save}", file=sys.stderr)
    return out


def quality(driver, seeds, n_trials, budgets, ref, tpe_options=()):
    from scipy import stats

    rng = np.random.default_rng(0)
    lines = []
    lines.append("| function | budget | Optuna TPE median best | vigil TPE median best | random median best "
                 "| Optuna regret | vigil regret | random regret | vigil − Optuna median regret, 90% CI "
                 "| P(vigil run beats Optuna run) | Mann-Whitney p | vigil ≤ Optuna | vigil < random |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    verdict = {"optuna": True, "random": True, "significantly_worse": []}
    notes = []
    # Disjoint blocks of BLOCK_SEEDS seeds (the same seeds on both sides; runs are not
    # paired anyway): does "no worse than Optuna in every cell" hold within each block?
    n_blocks = seeds // BLOCK_SEEDS if seeds >= 2 * BLOCK_SEEDS else 0
    block_ok = [True] * n_blocks
    for name, (fn, fstar) in FUNCTIONS.items():
        t0 = time.time()
        opt, opt_cats, rnd = ref[name]["optuna"], ref[name]["optuna_cats"], ref[name]["random"]
        vig, vig_cats = vigil_values(driver, name, seeds, n_trials, tpe_options=tpe_options)
        print(f"[quality] {name}: vigil {time.time() - t0:.1f} s", file=sys.stderr)
        for b in budgets:
            bo = [best_at(v, b) for v in opt]
            br = [best_at(v, b) for v in rnd]
            bv = [best_at(v, b) for v in vig]
            mo, mr, mv = statistics.median(bo), statistics.median(br), statistics.median(bv)
            ro, rr, rv = mo - fstar, mr - fstar, mv - fstar
            lo, hi = median_diff_ci(bv, bo, rng)
            pb = prob_better(bv, bo)
            p = stats.mannwhitneyu(bv, bo, alternative="two-sided").pvalue
            ok_opt = rv <= ro
            ok_rnd = rv < rr
            if not ok_opt:
                verdict["optuna"] = False
            if pb < 0.5 and p < 0.05:
                verdict["significantly_worse"].append(f"{name}@{b}")
            if b >= 50 and not ok_rnd:
                verdict["random"] = False
            for k in range(n_blocks):
                blk = slice(k * BLOCK_SEEDS, (k + 1) * BLOCK_SEEDS)
                if statistics.median(bv[blk]) > statistics.median(bo[blk]):
                    block_ok[k] = False
            lines.append(f"| {name} | {b} | {fmt(mo)} | {fmt(mv)} | {fmt(mr)} | {fmt(ro)} | {fmt(rv)} | "
                         f"{fmt(rr)} | {fmt(lo)} … {fmt(hi)} | {pb:.2f} | {p:.2g} | "
                         f"{'yes' if ok_opt else 'NO'} | {'yes' if ok_rnd else 'no'} |")
            if name == "mixed":
                notes.append(f"mixed @ {b}: runs whose best trial is in category A/B/C — "
                             f"Optuna {category_counts(opt_cats, opt, b)}, "
                             f"vigil {category_counts(vig_cats, vig, b)}")
    lines.append("")
    lines.extend(f"- {n}" for n in notes)
    verdict["blocks"] = (sum(block_ok), n_blocks)
    return lines, verdict


def optuna_speed(n_trials, storage=None):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), storage=storage)
    marks = [time.perf_counter()]
    cpu0 = time.process_time()
    study.optimize(mixed, n_trials=n_trials, callbacks=[lambda s, t: marks.append(time.perf_counter())])
    cpu = time.process_time() - cpu0
    total = marks[-1] - marks[0]
    last = max(0, n_trials - 100)
    return {"mean_ms_per_trial": total / n_trials * 1e3,
            "cpu_ms_per_trial": cpu / n_trials * 1e3,
            "last100_ms_per_trial": (marks[-1] - marks[last]) / (n_trials - last) * 1e3}


def vigil_speed(driver, n_trials, storage="memory", url=None):
    args = [driver, "speed", str(n_trials), storage] + ([url] if url else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def speed(driver, n_speed, pg_url, sqlite_trials):
    lines = ["| storage | trials | Optuna ms/trial wall mean / last 100 / CPU mean | vigil ms/trial wall mean / last 100 / CPU mean | vigil faster (CPU) |",
             "|---|---|---|---|---|"]
    for n in sorted({100, n_speed}):
        o = optuna_speed(n)
        v = vigil_speed(driver, n)
        lines.append(f"| memory | {n} | {o['mean_ms_per_trial']:.2f} / {o['last100_ms_per_trial']:.2f} / {o['cpu_ms_per_trial']:.2f} | "
                     f"{v['mean_ms_per_trial']:.3f} / {v['last100_ms_per_trial']:.3f} / {v['cpu_ms_per_trial']:.3f} | "
                     f"{o['cpu_ms_per_trial'] / v['cpu_ms_per_trial']:.0f}× |")
        print(f"[speed] memory {n}: optuna {o} vigil {v}", file=sys.stderr)
    if sqlite_trials:
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            o = optuna_speed(sqlite_trials, storage=f"sqlite:///{os.path.join(d, 'o.db')}")
        vpg = vigil_speed(driver, sqlite_trials, "postgres", pg_url) if pg_url else None
        lines.append(f"| Optuna SQLite file / vigil PostgreSQL | {sqlite_trials} | "
                     f"{o['mean_ms_per_trial']:.1f} / {o['last100_ms_per_trial']:.1f} | "
                     + (f"{vpg['mean_ms_per_trial']:.2f} / {vpg['last100_ms_per_trial']:.2f} | "
                        f"{o['mean_ms_per_trial'] / vpg['mean_ms_per_trial']:.0f}× |" if vpg else "not run | |"))
        print(f"[speed] sqlite {sqlite_trials}: optuna {o} vigil-pg {vpg}", file=sys.stderr)
    if pg_url:
        v = vigil_speed(driver, n_speed, "postgres", pg_url)
        lines.append(f"| vigil PostgreSQL | {n_speed} | – | {v['mean_ms_per_trial']:.2f} / "
                     f"{v['last100_ms_per_trial']:.2f} | |")
        print(f"[speed] postgres {n_speed}: vigil {v}", file=sys.stderr)
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--speed-trials", type=int, default=1000)
    ap.add_argument("--sqlite-trials", type=int, default=100)
    ap.add_argument("--pg-url", default=None)
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--n-ei-candidates", type=int, default=None,
                    help="vigil TPE's n_ei_candidates (default: Optuna's, 24)")
    ap.add_argument("--n-startup-trials", type=int, default=None,
                    help="vigil TPE's n_startup_trials (default: Optuna's, 10)")
    refs = ap.add_mutually_exclusive_group()
    refs.add_argument("--save-reference", metavar="FILE",
                      help="write the Optuna and random runs to FILE (JSON)")
    refs.add_argument("--load-reference", metavar="FILE",
                      help="reuse the Optuna and random runs of FILE instead of running them")
    args = ap.parse_args()
    budgets = [b for b in (20, 50, 100) if b <= args.trials]
    tpe_options = []
    if args.n_ei_candidates is not None:
        tpe_options += ["--n-ei-candidates", str(args.n_ei_candidates)]
    if args.n_startup_trials is not None:
        tpe_options += ["--n-startup-trials", str(args.n_startup_trials)]
    print(f"optuna {optuna.__version__}, numpy {np.__version__}; seeds {args.seeds}, trials {args.trials}; "
          f"vigil TPE options: {' '.join(tpe_options) or 'none (Optuna defaults)'}")
    if not args.skip_quality:
        ref = reference_runs(args.seeds, args.trials, args.load_reference, args.save_reference)
        lines, verdict = quality(args.driver, args.seeds, args.trials, budgets, ref, tpe_options)
        print("\n".join(lines))
        ok_blocks, n_blocks = verdict["blocks"]
        blocks = (f"; {BLOCK_SEEDS}-seed blocks where vigil is no worse everywhere: {ok_blocks} of {n_blocks}"
                  if n_blocks else "")
        print(f"\nvigil median regret no worse than Optuna's everywhere: {verdict['optuna']}; "
              f"vigil significantly worse than Optuna (Mann-Whitney p < 0.05) at: "
              f"{', '.join(verdict['significantly_worse']) or 'none'}; "
              f"better than random at 50 and 100 everywhere: {verdict['random']}{blocks}\n")
    if not args.skip_speed:
        print("\n".join(speed(args.driver, args.speed_trials, args.pg_url, args.sqlite_trials)))


if __name__ == "__main__":
    main()
