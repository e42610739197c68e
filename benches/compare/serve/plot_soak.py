"""Plots the soak's RSS curve (soak_rss.csv from run.sh) to a PNG, with the end
of warm-up and the +/- 10 % band around the RSS there (from results.json).

    python plot_soak.py soak_rss.csv results.json soak_rss.png
"""
import csv
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    src, results, dst = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    soak = json.load(open(results))["soak"]
    samples = [int(float(r["samples_scored"])) / 1e6 for r in rows]
    rss = [int(r["rss_kib"]) / 1024 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    ax.plot(samples, rss, marker=".", markersize=3, linewidth=1, label="RSS (VmRSS)")
    if "rss_at_warmup_end_mib" in soak:
        base, warm = soak["rss_at_warmup_end_mib"], soak["warmup_end_samples"] / 1e6
        ax.axvline(warm, color="grey", linestyle=":", label="end of warm-up")
        ax.fill_between([warm, samples[-1]], 0.9 * base, 1.1 * base, color="green", alpha=0.12,
                        label="±10 % of RSS at end of warm-up")
    ax.set_xlabel("samples scored (millions)")
    ax.set_ylabel("serve RSS (MiB)")
    ax.set_ylim(0, max(rss) * 1.3)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"vigil serve soak: {soak['samples_scored'] / 1e6:.1f} M samples over {soak['machines']:,} machines, "
        f"batch {soak['batch']} x {soak['connections']} connections, {soak['seconds']:.0f} s",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(dst)


if __name__ == "__main__":
    main()
