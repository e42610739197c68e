"""The alarm-policy table of benches/RESULTS.md from run.sh's run_summary.json files.

usage: table.py OUT_DIR SEED...
"""
import glob
import json
import statistics
import sys

POLICIES = [
    ("f1", "f1", "off"),
    ("false-alarm-budget=0.5", "false-alarm-budget=0.5", "off"),
    ("recall=0.8", "recall=0.8", "off"),
    ("f1-s3of6", "f1", "3/6"),
    ("false-alarm-budget=0.5-s3of6", "false-alarm-budget=0.5", "3/6"),
]


def summary(out, seed, tag):
    (path,) = glob.glob(f"{out}/out-{seed}-{tag}/*/run_summary.json")
    with open(path) as f:
        return json.load(f)


def main():
    out, seeds = sys.argv[1], sys.argv[2:]
    print("| policy | smoothing | failures caught (all seeds) | per seed | median lead (min) | false alarms / machine-day, median (range) | event precision, median | test F1, mean | validation constraint met |")
    print("|---|---|---:|---|---:|---|---:|---:|---:|")
    for tag, policy, smoothing in POLICIES:
        runs = [summary(out, s, tag) for s in seeds]
        events = [r["events"] for r in runs]
        caught = sum(e["failures_caught"] for e in events)
        total = sum(e["failures_total"] for e in events)
        per_seed = " ".join(f'{e["failures_caught"]}/{e["failures_total"]}' for e in events)
        leads = [e["lead_time_minutes"]["median"] for e in events]
        leads = [x for x in leads if isinstance(x, float) and x == x]
        fa = [e["false_alarms_per_machine_day"] for e in events]
        precision = statistics.median(e["precision"] for e in events)
        f1 = statistics.mean(r["test"]["f1"] for r in runs)
        met = sum(bool(r["alarm"]["constraint_met"]) for r in runs)
        lead = f"{statistics.median(leads):.1f}" if leads else "–"
        print(
            f"| {policy} | {smoothing} | {caught}/{total} ({caught / total:.0%}) | {per_seed} | {lead} "
            f"| {statistics.median(fa):.2f} ({min(fa):.2f}–{max(fa):.2f}) | {precision:.2f} | {f1:.3f} | {met}/{len(runs)} |"
        )


if __name__ == "__main__":
    main()
