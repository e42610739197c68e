"""The fleet scaling plot: pipeline wall time and peak RSS against rows, from
the results.tsv that run.sh writes (and each size's run_summary.json for the
stage times).

    python benches/compare/fleet/plot.py DIR/results.tsv OUT.png

Needs matplotlib (the MLflow venv of scripts/services.sh has it).
"""
import csv
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["summary"]]
rows.sort(key=lambda r: int(r["rows"]))
n = [int(r["rows"]) / 1e6 for r in rows]
stages = ["stream", "tuning", "final_fit", "failure_modes", "evaluation"]
summaries = [json.load(open(r["summary"])) for r in rows]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
bottom = [0.0] * len(rows)
for stage in stages:
    seconds = [s["stage_seconds"].get(stage, 0.0) for s in summaries]
    left.bar([r["size"] for r in rows], seconds, bottom=bottom, label=stage)
    bottom = [b + x for b, x in zip(bottom, seconds)]
left.set_ylabel("seconds (pipeline stages)")
left.set_title("Streamed pipeline: time per stage")
left.legend()
rss = [int(r["pipeline_rss_kib"]) / 2**20 for r in rows]
right.plot(n, rss, "o-", label="peak RSS (GiB)")
for x, y, r in zip(n, rss, rows):
    right.annotate(r["size"], (x, y), textcoords="offset points", xytext=(4, 4))
right.axhline(8, color="red", linestyle="--", label="8 GiB bound")
right.set_xlabel("rows (millions)")
right.set_ylabel("GiB")
right.set_title("Peak RSS against rows")
right.legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
