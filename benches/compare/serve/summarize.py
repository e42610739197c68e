"""Collects one run of run.sh into results.json and prints the Markdown tables.

    python3 summarize.py RUN_DIR MLFLOW_DIR results.json
"""
import csv
import json
import pathlib
import sys


def cell_summary(raw: dict, batch: int) -> dict:
    w = raw["wrk"]
    errors = w["non_2xx"] + sum(w["socket_errors"].values())
    return {
        "samples_per_s": w["ok"] * batch / w["duration_s"],
        "requests_per_s": w["ok"] / w["duration_s"],
        "p50_ms": w["latency_ms"]["p50"],
        "p99_ms": w["latency_ms"]["p99"],
        "max_ms": w["latency_ms"]["max"],
        "requests_ok": w["ok"],
        "errors": errors,
        "status_codes": w["status_codes"],
        "socket_errors": w["socket_errors"],
        "first_error": w["first_error"],
        "server_cpu_s": raw["server_cpu_s"],
        "server_cores_busy": raw["server_cpu_s"] / w["duration_s"],
        # The server's own CPU per sample scored: the figure that load on the
        # shared cores disturbs least (wall-clock rates shrink with the CPU share).
        "server_cpu_us_per_sample": 1e6 * raw["server_cpu_s"] / max(w["ok"] * batch, 1),
        "wrk_cores_busy": raw["wrk_cpu_s"] / w["duration_s"],
        "server_rss_mib": raw["server_rss_kib"] / 1024,
        "machines_tracked_after": raw.get("machines_tracked"),
        "machines_warm_after": raw.get("machines_warm"),
        "load_before": raw["load_before"],
        "load_after": raw["load_after"],
    }


def parse_name(name: str) -> dict:
    out = {}
    for part in name.split("-")[1:]:
        key = {"m": "machines", "b": "batch", "c": "connections"}[part[0]]
        out[key] = int(part[1:])
    return out


def soak_summary(run: pathlib.Path, soak: dict) -> dict:
    with open(run / "soak_rss.csv", newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    w = soak["wrk"]
    scored = int(rows[-1]["samples_scored"])
    machines = soak["machines"]
    # Warm-up: every machine's windows full and at least a tenth of the target scored.
    warm_at = next(
        (i for i, r in enumerate(rows)
         if r["machines_warm"] >= machines and r["samples_scored"] >= soak["samples_target"] / 10),
        None,
    )
    out = {
        "samples_target": soak["samples_target"],
        "samples_scored": scored,
        "seconds": rows[-1]["elapsed_s"],
        "stopped_by": "samples" if scored >= soak["samples_target"] else "time limit",
        "batch": soak["batch"],
        "connections": soak["connections"],
        "machines": machines,
        "samples_per_s": w["ok"] * soak["batch"] / w["duration_s"],
        "p50_ms": w["latency_ms"]["p50"],
        "p99_ms": w["latency_ms"]["p99"],
        "errors": w["non_2xx"] + sum(w["socket_errors"].values()),
        "status_codes": w["status_codes"],
        "rss_points": len(rows),
        "rss_first_mib": rows[0]["rss_kib"] / 1024,
        "rss_last_mib": rows[-1]["rss_kib"] / 1024,
        "rss_peak_hwm_mib": max(r["hwm_kib"] for r in rows) / 1024,
    }
    if warm_at is not None:
        after = [r["rss_kib"] for r in rows[warm_at:]]
        base = after[0]
        out.update({
            "warmup_end_samples": int(rows[warm_at]["samples_scored"]),
            "rss_at_warmup_end_mib": base / 1024,
            "rss_after_warmup_min_mib": min(after) / 1024,
            "rss_after_warmup_max_mib": max(after) / 1024,
            "rss_after_warmup_drift_pct": 100 * (max(after) - base) / base,
            "rss_after_warmup_drop_pct": 100 * (base - min(after)) / base,
            "within_10_pct": max(after) <= 1.1 * base and min(after) >= 0.9 * base,
        })
    return out


def main() -> None:
    run, mlflow_dir, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    meta = json.loads((run / "meta.json").read_text())
    cells = []
    for path in sorted((run / "cells").glob("*.json")):
        if path.name.endswith(".wrk.json") or path.name.startswith("warmup"):
            continue
        raw = json.loads(path.read_text())
        key = parse_name(raw["name"])
        cells.append({"server": raw["name"].split("-")[0], **key, **cell_summary(raw, key["batch"])})
    order = {"vigil": 0, "baseline": 1, "mlflow": 2}
    cells.sort(key=lambda c: (order[c["server"]], c.get("machines", 0), c["batch"], c["connections"]))
    vigil = [c for c in cells if c["server"] == "vigil"]
    mlflow = {(c["batch"], c["connections"]): c for c in cells if c["server"] == "mlflow"}
    baseline = {(c["machines"], c["batch"], c["connections"]): c for c in cells if c["server"] == "baseline"}
    for c in vigil:
        m = mlflow.get((c["batch"], c["connections"]))
        c["vs_mlflow"] = c["samples_per_s"] / m["samples_per_s"] if m and m["samples_per_s"] > 0 else None
        c["cpu_per_sample_vs_mlflow"] = (
            m["server_cpu_us_per_sample"] / c["server_cpu_us_per_sample"] if m else None)
        b = baseline.get((c["machines"], c["batch"], c["connections"]))
        c["vs_baseline"] = c["samples_per_s"] / b["samples_per_s"] if b and b["samples_per_s"] > 0 else None
        c["cpu_per_sample_vs_baseline"] = (
            c["server_cpu_us_per_sample"] / b["server_cpu_us_per_sample"] if b else None)
    result = {"meta": meta, "cells": cells}
    if (mlflow_dir / "train.json").exists():
        result["mlflow_model"] = json.loads((mlflow_dir / "train.json").read_text().strip().splitlines()[-1])
    if (run / "mlflow_server.json").exists():
        result["mlflow_server"] = json.loads((run / "mlflow_server.json").read_text())
    # Per-sample cost through the HTTP path at one connection, and the queueing
    # bound it implies at 64 connections: connections x batch x cost / cores.
    cores = meta["cores"]
    bounds = []
    for m in sorted({c["machines"] for c in vigil}):
        one = {(c["batch"], c["connections"]): c for c in vigil if c["machines"] == m}
        for batch in sorted({b for b, _ in one}):
            base, wide = one.get((batch, 1)), one.get((batch, 64))
            if not base or not wide:
                continue
            per_sample_ms = base["p50_ms"] / batch
            bounds.append({
                "machines": m, "batch": batch, "per_sample_ms_at_1_connection": per_sample_ms,
                "bound_p_ms_at_64": 64 * batch * per_sample_ms / cores, "p50_ms_at_64": wide["p50_ms"],
                "p99_ms_at_64": wide["p99_ms"],
            })
    result["queueing_bound"] = bounds
    if (run / "soak.json").exists():
        result["soak"] = soak_summary(run, json.loads((run / "soak.json").read_text()))
    dst.write_text(json.dumps(result, indent=1) + "\n")
    print_tables(result)


def print_tables(r: dict) -> None:
    print("| server | machines | batch | conns | samples/s | p50 ms | p99 ms | errors | server CPU (cores) "
          "| server CPU µs/sample | wrk CPU (cores) | vs mlflow: samples/s (CPU/sample) "
          "| vs baseline: samples/s (CPU/sample) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in r["cells"]:
        ratio = (f"{c['vs_mlflow']:.0f}x ({c['cpu_per_sample_vs_mlflow']:.0f}x)"
                 if c.get("vs_mlflow") else "")
        base = (f"{c['vs_baseline']:.2f} ({c['cpu_per_sample_vs_baseline']:.2f})"
                if c.get("vs_baseline") else "")
        machines = c.get("machines", "(features)")
        print(f"| {c['server']} | {machines} | {c['batch']} | {c['connections']} | {c['samples_per_s']:,.0f} | "
              f"{c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['errors']} | {c['server_cores_busy']:.2f} | "
              f"{c['server_cpu_us_per_sample']:.1f} | {c['wrk_cores_busy']:.2f} | {ratio} | {base} |")
    for b in r["queueing_bound"]:
        print(f"bound m{b['machines']} b{b['batch']}: {b['per_sample_ms_at_1_connection']*1000:.1f} us/sample at 1 conn -> "
              f"64 conns bound {b['bound_p_ms_at_64']:.1f} ms; measured p50 {b['p50_ms_at_64']:.1f} p99 {b['p99_ms_at_64']:.1f}")
    if "soak" in r:
        print(json.dumps(r["soak"], indent=1))


if __name__ == "__main__":
    main()
