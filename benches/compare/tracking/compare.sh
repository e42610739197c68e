#!/usr/bin/env bash
# Side by side: 10,000 metric values (one key, steps 0..9999) logged to the same
# fresh local MLflow 3.17.2 server (sqlite, --workers 1, as scripts/services.sh
# starts it) by vigil-tracking-client and by MLflow's Python client.
#
# usage: benches/compare/tracking/compare.sh [n=10000] [repeats=5]
#        VIGIL_MLFLOW_WORKERS=4 benches/compare/tracking/compare.sh   (MLflow's default worker count)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
n="${1:-10000}"
repeats="${2:-5}"
workers="${VIGIL_MLFLOW_WORKERS:-1}"
# The MLflow venv the test harness uses (installed once per machine).
# shellcheck source=/dev/null
source "$root/scripts/services.sh"
vigil_ensure_mlflow
dir="$(mktemp -d)"
port="$(vigil_free_port)"
mkdir -p "$dir/artifacts"
(cd "$dir" && MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec "$VIGIL_MLFLOW_VENV/bin/mlflow" server \
  --backend-store-uri "sqlite:///$dir/mlflow.db" --artifacts-destination "$dir/artifacts" \
  --host 127.0.0.1 --port "$port" --workers "$workers") >"$dir/server.log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; sleep 3; pkill -KILL -P "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 240); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
uri="http://127.0.0.1:$port"
echo "# server $uri (MLflow $(curl -fsS "$uri/version"), sqlite, --workers $workers), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -q -p vigil-benches --bin tracking_log10k
target="${CARGO_TARGET_DIR:-$root/target}"
rust_json="$("$target/release/tracking_log10k" "$uri" "$n" "$repeats")"
# (MLflow prints "View run ..." lines on stdout: the JSON is the last line)
py_json="$("$VIGIL_MLFLOW_VENV/bin/python" "$here/python_log10k.py" "$uri" "$n" | tail -1)"
echo "$rust_json"
echo "$py_json"
python3 - "$rust_json" "$py_json" <<'PY'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"| client | {r['n']} values end to end | vs vigil |")
print("|---|---|---|")
print(f"| vigil-tracking-client (ActiveRun::log_metric_at, batched) | {r['median_s']:.3f} s (median of {len(r['runs_s'])}) | 1.0x |")
print(f"| MLflow Python, log_batch of 1000 | {p['log_batch_s']:.3f} s | {p['log_batch_s']/r['median_s']:.1f}x slower |")
print(f"| no client: raw log-batch requests of 1000, sequential (the server's floor) | {p['raw_log_batch_sequential_s']:.3f} s | {p['raw_log_batch_sequential_s']/r['median_s']:.1f}x |")
print(f"| no client: raw log-batch requests of 1000, 4 in flight | {p['raw_log_batch_4_parallel_s']:.3f} s | {p['raw_log_batch_4_parallel_s']/r['median_s']:.1f}x |")
print(f"| MLflow Python, log_metric per value | {p['log_metric_extrapolated_s']:.0f} s (extrapolated, {p['log_metric_per_call_s']*1000:.1f} ms/call) | {p['log_metric_extrapolated_s']/r['median_s']:.0f}x slower |")
PY
