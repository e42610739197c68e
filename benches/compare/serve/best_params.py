"""Prints the tuned forest parameters of the vigil pipeline run in OUTPUT_DIR
(its run_summary.json), for the scikit-learn model to use the same ones.

    python best_params.py OUTPUT_DIR > best_params.json
"""
import json
import pathlib
import sys

summaries = sorted(pathlib.Path(sys.argv[1]).glob("*/run_summary.json"), key=lambda p: p.stat().st_mtime)
if not summaries:
    sys.exit(f"no */run_summary.json under {sys.argv[1]}: did the pipeline run?")
print(json.dumps(json.loads(summaries[-1].read_text())["best_params"]))
