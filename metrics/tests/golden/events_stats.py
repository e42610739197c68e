"""Golden lead-time percentiles and histograms for tests/events.rs.

numpy==2.3.5 (python3 -m venv /tmp/venv-events; pip install numpy==2.3.5).
Run: python tests/golden/events_stats.py > tests/golden/events_stats.json
"""
import json

import numpy as np

cases = [
    [12.5],
    [1.0, 2.0, 4.0, 10.0],
    [30.0, 0.5, 7.25, 7.25, 19.0, 3.0, 28.75],
    [float(x) for x in np.random.default_rng(7).uniform(0.0, 30.0, 101).round(3)],
]
out = []
for v in cases:
    a = np.array(v)
    counts, edges = np.histogram(a, bins=6, range=(0.0, 30.0))
    out.append({
        "minutes": v,
        "p10": float(np.percentile(a, 10)),
        "median": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "mean": float(a.mean()),
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
    })
print(json.dumps(out, indent=1))
