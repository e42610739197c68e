"""scipy on the data of drift_speed.rs (same SplitMix64 + Box-Muller generator).

    ~/.cache/vigil/mlflow-3.17.2/bin/python metrics/examples/drift_speed_scipy.py [n_ref n_cur n_features]

(the venv scripts/test.sh installs; it has numpy and scipy)

Times, per feature, what evidently's default rule runs for a reference of
more than 1,000 rows (scipy.stats.wasserstein_distance / max(np.std(ref),
0.001)) and scipy.stats.ks_2samp (auto: asymptotic at these sizes), looping
over the features in one process as evidently does. Data generation is not
timed. Versions: numpy 2.4.6, scipy 1.17.1.
"""

import sys
import time

import numpy as np
from scipy import stats

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uniform(seed, idx):
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (idx + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def column(j, current, n):
    seed = j * 2 + int(current)
    scale = 1.0 + (j % 3)
    shift = 0.2 * scale if current and j % 4 == 0 else 0.0
    i = np.arange(n, dtype=np.uint64)
    u1, u2 = uniform(seed, np.uint64(2) * i), uniform(seed, np.uint64(2) * i + np.uint64(1))
    z = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
    return j + shift + scale * z


def main():
    a = [int(x) for x in sys.argv[1:4]]
    n_ref, n_cur, n_feat = (a + [1_000_000, 100_000, 42][len(a):])[:3]
    refs = [column(j, False, n_ref) for j in range(n_feat)]
    curs = [column(j, True, n_cur) for j in range(n_feat)]
    print(f"data: {n_feat} features x {n_ref} reference x {n_cur} current rows")
    for label, small in [("1M reference", False), ("10k reference (first 10,000 rows)", True)]:
        rr = [r[:10_000] for r in refs] if small else refs
        t = time.perf_counter()
        w = [stats.wasserstein_distance(r, c) / max(float(np.std(r)), 0.001) for r, c in zip(rr, curs)]
        tw = time.perf_counter() - t
        t = time.perf_counter()
        k = [stats.ks_2samp(r, c).pvalue for r, c in zip(rr, curs)]
        tk = time.perf_counter() - t
        print(f"{label}: wasserstein_norm {tw:.3f} s (f0 {w[0]:.12e}, f1 {w[1]:.12e}); "
              f"ks_2samp {tk:.3f} s (f0 {k[0]:.12e}, f1 {k[1]:.12e})")


if __name__ == "__main__":
    main()
