#!/usr/bin/env bash
# The Rust reference pipeline vs the Python reference pipeline (pandas, scikit-learn,
# Optuna) on the same simulated telemetry, in one run. See compare.py.
#
#   benches/compare/pipeline/run.sh [--machines 4] [--days 7] [--seed 42] [compare.py options]
#
# Defaults are the pipeline's own embedded defaults (4 machines x 7 days at 10 s).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
machines=4 days=7 seed=42 rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    --machines) machines="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done
cargo build --release -q -p vigil-examples --bin pipeline --bin simulate
work="$(mktemp -d "${TMPDIR:-/tmp}/vigil-pipeline-data.XXXXXX")"
trap 'rm -rf "$work"' EXIT
target/release/simulate --to csv --output "$work/telemetry.csv" \
  --machines "$machines" --days "$days" --seed "$seed" >&2
python3 benches/compare/pipeline/compare.py --csv "$work/telemetry.csv" --seed "$seed" "${rest[@]}"
