#!/usr/bin/env bash
# Event metrics of the default pipeline under each alarm policy, seeds 1-5:
# failures caught, lead time, false alarms per machine-day (test split).
#   benches/compare/alarm/run.sh [--seeds "1 2 3 4 5"] [--out DIR]
# Builds the release pipeline, runs every (seed, policy, smoothing) with
# --no-register into DIR (default target/alarm-policies), then prints the
# table benches/RESULTS.md records (table.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
seeds="1 2 3 4 5"
out="$root/target/alarm-policies"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
cargo build --release -q -p vigil-examples --bin pipeline --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/pipeline"
mkdir -p "$out"
cd "$out"
export MLFLOW_TRACKING_URI="file://$out/mlruns"
for seed in $seeds; do
  for spec in "f1|" "false-alarm-budget=0.5|" "recall=0.8|" "f1|3/6" "false-alarm-budget=0.5|3/6"; do
    policy=${spec%%|*}; smoothing=${spec##*|}
    dir="out-$seed-$policy${smoothing:+-s${smoothing/\//of}}"
    args=(--seed "$seed" --alarm-policy "$policy" --no-register --no-progress --output-dir "$dir")
    [ -n "$smoothing" ] && args+=(--alarm-smoothing "$smoothing")
    "$bin" "${args[@]}" > "$dir.log" 2>&1
    echo "seed $seed policy $policy smoothing ${smoothing:-off}: done" >&2
  done
done
python3 "$root/benches/compare/alarm/table.py" "$out" $seeds
