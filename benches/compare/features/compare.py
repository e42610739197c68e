"""vigil-features vs polars 2.1 vs pandas 3.1: the 42 reference features on the
same 1,000,000-row CSV (20 machines x 50,000 simulated samples), in one run.

File reading is timed separately from feature computation. Every engine uses
the same CSV; polars is limited to 2 threads (POLARS_MAX_THREADS), vigil to a
2-thread rayon pool; pandas is single-threaded.

    python benches/compare/features/compare.py [--machines 20] [--samples 50000] [--repeat 3]

Prints a JSON summary and writes it next to the CSV (target dir).
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SENSORS = ["temperature", "vibration", "spindle_speed", "power_consumption"]


def ensure_venv() -> None:
    """Re-run under the pinned reference venv (benches/compare/setup.sh)."""
    if os.environ.get("VIGIL_PYREF_ACTIVE") == "1":
        return
    venv = subprocess.check_output([str(ROOT / "benches/compare/setup.sh")], text=True).strip()
    env = dict(os.environ, VIGIL_PYREF_ACTIVE="1", POLARS_MAX_THREADS="2")
    os.execve(f"{venv}/bin/python", [f"{venv}/bin/python", __file__, *sys.argv[1:]], env)


def pandas_features(df):
    import pandas as pd

    df = df.sort_values(["machine_id", "time"], kind="stable").reset_index(drop=True)
    groups = df.groupby("machine_id", sort=True)
    out = {}

    def rolling(column, window, how):
        return getattr(groups.rolling(window, on="time")[column], how)().to_numpy()

    for m in SENSORS:
        mean_30 = rolling(m, "30min", "mean")
        std_30 = rolling(m, "30min", "std")
        out[m] = df[m].to_numpy()
        out[f"{m}_mean_5m"] = rolling(m, "5min", "mean")
        out[f"{m}_std_5m"] = rolling(m, "5min", "std")
        out[f"{m}_max_5m"] = rolling(m, "5min", "max")
        out[f"{m}_min_5m"] = rolling(m, "5min", "min")
        out[f"{m}_mean_30m"] = mean_30
        out[f"{m}_std_30m"] = std_30
        out[f"{m}_diff"] = groups[m].diff().to_numpy()
        out[f"{m}_pct_change"] = groups[m].pct_change().to_numpy()
        out[f"{m}_zscore_30m"] = (df[m].to_numpy() - mean_30) / std_30
    out["temp_x_vibration"] = (df["temperature"] * df["vibration"]).to_numpy()
    out["power_per_speed"] = (df["power_consumption"] / df["spindle_speed"]).to_numpy()
    assert len(out) == 42
    return pd.DataFrame(out)


def polars_features(df):
    import polars as pl

    df = df.sort(["machine_id", "time"], maintain_order=True)
    exprs = []
    for m in SENSORS:
        c = pl.col(m)
        mean_30 = c.rolling_mean_by("time", window_size="30m").over("machine_id")
        std_30 = c.rolling_std_by("time", window_size="30m").over("machine_id")
        exprs += [
            c.alias(m),
            c.rolling_mean_by("time", window_size="5m").over("machine_id").alias(f"{m}_mean_5m"),
            c.rolling_std_by("time", window_size="5m").over("machine_id").alias(f"{m}_std_5m"),
            c.rolling_max_by("time", window_size="5m").over("machine_id").alias(f"{m}_max_5m"),
            c.rolling_min_by("time", window_size="5m").over("machine_id").alias(f"{m}_min_5m"),
            mean_30.alias(f"{m}_mean_30m"),
            std_30.alias(f"{m}_std_30m"),
            c.diff().over("machine_id").alias(f"{m}_diff"),
            c.pct_change().over("machine_id").alias(f"{m}_pct_change"),
            ((c - mean_30) / std_30).alias(f"{m}_zscore_30m"),
        ]
    exprs += [
        (pl.col("temperature") * pl.col("vibration")).alias("temp_x_vibration"),
        (pl.col("power_consumption") / pl.col("spindle_speed")).alias("power_per_speed"),
    ]
    out = df.select(exprs)
    assert out.width == 42
    return out


def timed(fn, repeat):
    runs = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    runs.sort()
    return runs[len(runs) // 2], runs, result


def main() -> None:
    ensure_venv()
    import pandas as pd
    import polars as pl

    parser = argparse.ArgumentParser()
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pandas-repeat", type=int, default=1)
    args = parser.parse_args()

    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "vigil-benches", "--bin", "features_compare"], cwd=ROOT)
    driver = target / "release" / "features_compare"
    data = target / f"features_bench_{args.machines}x{args.samples}.csv"
    if not data.exists():
        subprocess.check_call([str(driver), "generate", str(data), "--machines", str(args.machines), "--samples", str(args.samples)])

    vigil = json.loads(subprocess.check_output([str(driver), "run", str(data), "--repeat", str(max(args.repeat, 3)), "--threads", "2"]))

    def read_polars():
        return pl.read_csv(data, try_parse_dates=False).with_columns(
            pl.col("time").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC")
        )

    polars_read, _, pdf = timed(read_polars, args.repeat)
    polars_compute, polars_runs, pout = timed(lambda: polars_features(pdf), args.repeat)

    def read_pandas():
        df = pd.read_csv(data, dtype={"machine_id": str})
        df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
        return df

    pandas_read, _, df = timed(read_pandas, 1)
    pandas_compute, pandas_runs, dout = timed(lambda: pandas_features(df), args.pandas_repeat)
    assert len(dout) == len(pout) == vigil["rows"]

    summary = {
        "data": str(data),
        "rows": vigil["rows"],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": {"pandas": pd.__version__, "polars": pl.__version__},
        "vigil": vigil,
        "polars": {"read_s": polars_read, "compute_s": polars_compute, "compute_runs_s": polars_runs, "threads": pl.thread_pool_size()},
        "pandas": {"read_s": pandas_read, "compute_s": pandas_compute, "compute_runs_s": pandas_runs},
        "ratios": {
            "compute_vs_polars": polars_compute / vigil["compute_s"],
            "compute_vs_pandas": pandas_compute / vigil["compute_s"],
            "read_vs_polars": polars_read / vigil["read_s"],
            "read_vs_pandas": pandas_read / vigil["read_s"],
        },
    }
    text = json.dumps(summary, indent=2)
    (target / "features_compare.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
