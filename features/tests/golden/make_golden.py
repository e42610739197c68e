"""Computes the reference pipeline's 42 features with pandas 3 for the golden test.

Reads input.csv (written by `cargo run -p vigil-features --example golden_input`),
computes every feature with `groupby('machine_id').rolling(..., on='time')` and
pandas' defaults, and writes expected.csv (same row order: machine, then time,
stable).

Vigil's admission rule (`FeatureSpec` docs, "Sample admission"; min_spacing
1 s) is applied first: per machine, a row less than 1 s after the last admitted
row (a duplicate timestamp included) does not enter the windows, and its
expected row is a copy of the machine's previous row. The features are
computed by pandas on the admitted rows only.

Run with the pinned reference stack:

    PY="$(benches/compare/setup.sh)/bin/python"
    "$PY" features/tests/golden/make_golden.py
"""
import pathlib
import sys

import numpy as np
import pandas as pd

HERE = pathlib.Path(__file__).resolve().parent
SENSORS = ["temperature", "vibration", "spindle_speed", "power_consumption"]
MIN_SPACING = pd.Timedelta(seconds=1)


def admitted(df: pd.DataFrame) -> np.ndarray:
    """Per row, whether it enters its machine's state (the admission rule)."""
    keep = np.zeros(len(df), dtype=bool)
    last = {}
    for i, (machine, time) in enumerate(zip(df["machine_id"], df["time"])):
        if machine not in last or time >= last[machine] + MIN_SPACING:
            keep[i] = True
            last[machine] = time
    return keep


def main() -> None:
    df = pd.read_csv(HERE / "input.csv", dtype={"machine_id": str})
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    df = df.sort_values(["machine_id", "time"], kind="stable").reset_index(drop=True)
    keep = admitted(df)
    features = compute(df[keep].reset_index(drop=True))
    # Every row takes the row of its machine's last admitted row at or before it
    # (each machine's first row is admitted, so this never crosses machines).
    source = np.cumsum(keep) - 1
    out = features.iloc[source].reset_index(drop=True)
    out.insert(0, "machine_id", df["machine_id"])
    out.insert(0, "time", df["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    assert len(out.columns) == 44, len(out.columns)
    out.to_csv(HERE / "expected.csv", index=False, float_format="%.17g", na_rep="nan")
    print(
        f"pandas {pd.__version__}: wrote {len(out)} rows x 42 features ({len(df) - keep.sum()} rows not admitted)",
        file=sys.stderr,
    )


def compute(df: pd.DataFrame) -> pd.DataFrame:
    """The 42 features of the (admitted) rows of `df`, in its row order."""
    out = pd.DataFrame(index=df.index)
    groups = df.groupby("machine_id", sort=True)

    def rolling(column: str, window: str, how: str) -> pd.Series:
        result = getattr(groups.rolling(window, on="time")[column], how)()
        # Rows come back grouped by machine (sorted) in their original order
        # within each machine, which is df's order since df is sorted.
        machines = result.index.get_level_values(0)
        assert (machines == df["machine_id"].to_numpy()).all()
        return pd.Series(result.to_numpy(), index=df.index)

    for m in SENSORS:
        mean_30 = rolling(m, "30min", "mean")
        std_30 = rolling(m, "30min", "std")
        out[m] = df[m]
        out[f"{m}_mean_5m"] = rolling(m, "5min", "mean")
        out[f"{m}_std_5m"] = rolling(m, "5min", "std")
        out[f"{m}_max_5m"] = rolling(m, "5min", "max")
        out[f"{m}_min_5m"] = rolling(m, "5min", "min")
        out[f"{m}_mean_30m"] = mean_30
        out[f"{m}_std_30m"] = std_30
        out[f"{m}_diff"] = groups[m].diff()
        out[f"{m}_pct_change"] = groups[m].pct_change()
        out[f"{m}_zscore_30m"] = (df[m] - mean_30) / std_30
    out["temp_x_vibration"] = df["temperature"] * df["vibration"]
    out["power_per_speed"] = df["power_consumption"] / df["spindle_speed"]
    assert len(out.columns) == 42, len(out.columns)
    return out


if __name__ == "__main__":
    main()
