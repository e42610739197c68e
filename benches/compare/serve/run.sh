#!/usr/bin/env bash
# Load and soak benchmark of `serve` on loopback, with MLflow's own model server
# (`mlflow models serve`, scikit-learn on precomputed features) side by side in
# the same run. The load generator is Debian's wrk with vigil.lua / mlflow.lua.
#
#   benches/compare/serve/run.sh [--duration 10] [--machines "1000 10000"] [--batches "1 100"]
#       [--connections "1 8 64"] [--soak-samples 10000000] [--soak-max-seconds 1200]
#       [--soak-batch 100] [--soak-connections 8] [--soak-machines 1000] [--rss-every 5]
#       [--no-mlflow] [--no-soak] [--no-cells] [--rev COMMIT | --no-build] [--baseline COMMIT]
#       [--results FILE]
#
# --baseline COMMIT also builds that revision's serve and runs every vigil cell
# against it too, alternating cell by cell with the serve under test (each on
# its own server, same model, same wrk settings): a same-run before/after.
#
# Writes benches/compare/serve/results.json (overwritten; --results FILE for a
# partial run; the soak's files go beside it), soak_rss.csv and soak_rss.png,
# and prints a Markdown table.
# Builds the release binaries, trains both models once (by the baseline's pipeline
# when there is one, so that both servers can read the model; cached under
# target/serve-bench, or VIGIL_SERVE_BENCH_DIR), and stops every server it
# started on exit. Everything binds 127.0.0.1; every wrk run is bounded in time
# (10 s cells, the soak by --soak-samples and --soak-max-seconds).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"

duration=10 machines_list="1000 10000" batches="1 100" connections="1 8 64"
soak_samples=10000000 soak_max_seconds=1200 soak_batch=100 soak_connections=8 soak_machines=1000
rss_every=5 do_mlflow=1 do_soak=1 do_cells=1 step=10 rev="" build=1 baseline=""
results="$(cd "$(dirname "$0")" && pwd)/results.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --machines) machines_list="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --soak-samples) soak_samples="$2"; shift 2 ;;
    --soak-max-seconds) soak_max_seconds="$2"; shift 2 ;;
    --soak-batch) soak_batch="$2"; shift 2 ;;
    --soak-connections) soak_connections="$2"; shift 2 ;;
    --soak-machines) soak_machines="$2"; shift 2 ;;
    --rss-every) rss_every="$2"; shift 2 ;;
    --no-mlflow) do_mlflow=0; shift ;;
    --no-soak) do_soak=0; shift ;;
    --no-cells) do_cells=0; shift ;;
    --rev) rev="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    --results) results="$(realpath -m "$2")"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

log() { echo "[serve-bench] $*" >&2; }
out_dir="$(dirname "$results")" # the soak's CSV and plot go beside the results
mkdir -p "$out_dir"
work="${VIGIL_SERVE_BENCH_DIR:-$root/target/serve-bench}"
run_dir="$work/run"
rm -rf "$run_dir"
mkdir -p "$work" "$run_dir/cells"

# ---- processes this script started: each in its own session, stopped by group id
started_groups=()
stop_group() {
  local pid="$1"
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
cleanup() {
  for pid in "${started_groups[@]}"; do stop_group "$pid"; done
}
trap cleanup EXIT
start_group() { # start_group LOG CMD... ; sets $started
  local out="$1"; shift
  setsid "$@" >"$out" 2>&1 &
  started=$!
  started_groups+=("$started")
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { # wait_http URL PID SECONDS
  for _ in $(seq 1 $(($3 * 4))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { log "server $2 exited"; return 1; }
    sleep 0.25
  done
  log "no answer from $1 after $3 s"; return 1
}
# CPU seconds (user + system) of a process and all its descendants.
tree_cpu_s() {
  local pids=("$1") i=0 ticks=0
  while [ $i -lt ${#pids[@]} ]; do
    # shellcheck disable=SC2207
    pids+=($(cat "/proc/${pids[$i]}/task/"*/children 2>/dev/null || true))
    i=$((i + 1))
  done
  for p in "${pids[@]}"; do
    [ -r "/proc/$p/stat" ] || continue
    # fields 14 and 15 after the ")" that ends the command name
    ticks=$((ticks + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}'
}
tree_rss_kib() {
  local pids=("$1") i=0 kib=0
  while [ $i -lt ${#pids[@]} ]; do
    # shellcheck disable=SC2207
    pids+=($(cat "/proc/${pids[$i]}/task/"*/children 2>/dev/null || true))
    i=$((i + 1))
  done
  for p in "${pids[@]}"; do
    kib=$((kib + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "$kib"
}

# ---- tools, binaries, venv
if ! command -v wrk >/dev/null 2>&1; then
  log "installing Debian's wrk"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
# The binaries: from the working tree (default), from a committed revision
# (--rev; the working tree may hold someone's half-done edit), or as built
# (--no-build). A revision is exported with `git archive` into $work/src-COMMIT,
# built in $work/target (shared, so dependencies build once) and its binaries
# copied to $work/bin/COMMIT (revisions overwrite each other's target/release),
# where later runs find them.
build_rev() { # build_rev REV BIN... ; prints the folder holding the binaries
  local commit src out args=()
  commit="$(git rev-parse --verify "$1^{commit}")"; shift
  src="$work/src-${commit:0:7}" out="$work/bin/${commit:0:7}"
  local have=1
  for b in "$@"; do [ -x "$out/$b" ] || have=0; done
  if [ "$have" = 1 ]; then echo "$out"; return 0; fi # a commit's binaries do not change
  if [ "$(cat "$src/.exported" 2>/dev/null)" != "$commit" ]; then # re-exporting would rebuild
    rm -rf "$src"; mkdir -p "$src"
    git archive "$commit" | tar -x -C "$src"
    echo "$commit" >"$src/.exported"
  fi
  for b in "$@"; do args+=(--bin "$b"); done
  log "building ${*} of $commit (exported to $src)"
  (cd "$src" && CARGO_TARGET_DIR="$work/target" cargo build --release -q -p vigil-examples "${args[@]}")
  mkdir -p "$out"
  for b in "$@"; do cp "$work/target/release/$b" "$out/$b.tmp" && mv "$out/$b.tmp" "$out/$b"; done
  echo "$out"
}
if [ -n "$rev" ]; then
  target="$(build_rev "$rev" serve pipeline simulate)"
  built_from="$(git rev-parse "$rev^{commit}")"
else
  target="${CARGO_TARGET_DIR:-$root/target}/release"
  if [ "$build" = 1 ]; then
    log "building release binaries from the working tree"
    cargo build --release -q -p vigil-examples --bin serve --bin pipeline --bin simulate
  fi
  built_from="working tree at $(git rev-parse HEAD) ($(git status --porcelain | wc -l) files changed)"
fi
baseline_bin=""
if [ -n "$baseline" ]; then
  baseline_target="$(build_rev "$baseline" serve pipeline)"
  baseline_bin="$baseline_target/serve"
  baseline_commit="$(git rev-parse "$baseline^{commit}")"
fi
# The model both servers load: trained by the baseline's pipeline when there is
# one (newer builds read older model formats, not the other way round).
model_target="${baseline_target:-$target}"
model_from="${baseline_commit:-$built_from}"
# shellcheck source=/dev/null
source "$root/scripts/services.sh"
vigil_ensure_mlflow # mlflow, scikit-learn, pandas and matplotlib
py="$VIGIL_MLFLOW_VENV/bin/python"

# ---- models (trained once, cached in $work)
vigil_dir="$work/vigil-$(echo "$model_from" | tr -c 'a-zA-Z0-9\n' _ | cut -c1-12)"
if [ ! -f "$vigil_dir/.complete" ]; then
  log "training the vigil model (pipeline of $model_from, --trials 2, simulated data, seed 42)"
  rm -rf "$vigil_dir"; mkdir -p "$vigil_dir"
  (cd "$vigil_dir" && MLFLOW_TRACKING_URI="$vigil_dir/mlruns" "$model_target/pipeline" --trials 2 \
    --output-dir "$vigil_dir/out" --no-progress) >"$vigil_dir/pipeline.log" 2>&1
  touch "$vigil_dir/.complete"
fi
mlflow_dir="$work/mlflow-${vigil_dir##*/vigil-}"
if [ "$do_mlflow" = 1 ] && [ ! -f "$mlflow_dir/.complete" ]; then
  log "training the scikit-learn model for mlflow models serve (same telemetry, features, parameters)"
  rm -rf "$mlflow_dir"; mkdir -p "$mlflow_dir"
  "$target/simulate" --to csv --output "$mlflow_dir/telemetry.csv" --seed 42 >"$mlflow_dir/simulate.log" 2>&1
  "$py" "$here/best_params.py" "$vigil_dir/out" >"$mlflow_dir/best_params.json"
  # (in its folder: MLflow puts the artifacts in ./mlruns)
  (cd "$mlflow_dir" && "$py" "$here/train_mlflow_model.py" --csv telemetry.csv --params best_params.json \
    --tracking-uri "sqlite:///$mlflow_dir/mlflow.db" --bodies . >train.json 2>train.log)
  touch "$mlflow_dir/.complete"
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "{\"started\":\"$(date -u +%FT%TZ)\",\"load_start\":\"$(load)\",\"cores\":$(nproc),"
  echo "\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\","
  echo "\"serve_built_from\":\"$built_from\",\"baseline_built_from\":\"${baseline_commit:-}\",\"model_trained_by\":\"$model_from\","
  echo "\"wrk\":\"$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)\",\"rustc\":\"$(rustc --version)\","
  echo "\"duration_s\":$duration,\"step_s\":$step,\"vigil_model\":\"models:/predictive_maintenance_model/1\"}"
} >"$run_dir/meta.json"

# ---- one wrk cell: wrk_cell NAME SERVER_PID URL SCRIPT CONNECTIONS SECONDS SCRIPT_ARGS...
wrk_cell() {
  local name="$1" pid="$2" url="$3" script="$4" conns="$5" secs="$6"; shift 6
  local cpu0 cpu1 load0 out="$run_dir/cells/$name.wrk.json"
  load0="$(load)"; cpu0="$(tree_cpu_s "$pid")"
  local TIMEFORMAT='%U %S' wrk_cpu # the load generator's own CPU time (it shares the cores)
  wrk_cpu="$( { time VIGIL_WRK_OUT="$out" wrk -t "$conns" -c "$conns" -d "${secs}s" --timeout 10s -s "$script" \
    "$url" -- "$@" >"$run_dir/cells/$name.wrk.txt" 2>&1; } 2>&1 | awk '{printf "%.2f", $1 + $2}')"
  cpu1="$(tree_cpu_s "$pid")"
  local tracked=null warm=null
  if [[ "$url" == */predict ]]; then # vigil: how many machines it tracks, how many are warm
    local m; m="$(curl -fsS "${url%/predict}/metrics" 2>/dev/null || true)" # (a baseline may have none)
    tracked="$(echo "$m" | awk '/^vigil_serve_machines_tracked /{print $2}')"
    warm="$(echo "$m" | awk '/^vigil_serve_machines_warm /{print $2}')"
    tracked="${tracked:-null}" warm="${warm:-null}"
  fi
  echo "{\"name\":\"$name\",\"machines_tracked\":$tracked,\"machines_warm\":$warm,\"load_before\":\"$load0\",\"load_after\":\"$(load)\",\"wrk_cpu_s\":$wrk_cpu,\"server_cpu_s\":$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.2f", b - a}'),\"server_rss_kib\":$(tree_rss_kib "$pid"),\"wrk\":$(cat "$out")}"
}

start_serve() { # start_serve BINARY LABEL MACHINES [EXTRA FLAGS] ; sets $serve_pid $serve_url
  local bin="$1" label="$2" machines="$3" port; shift 3
  port="$(free_port)"
  start_group "$run_dir/serve-$label-$machines.log" env MLFLOW_TRACKING_URI="$vigil_dir/mlruns" "$bin" \
    --model-uri models:/predictive_maintenance_model/1 --host 127.0.0.1 --port "$port" \
    --allow-new-machines --poll-interval 1h --scratch-dir "$run_dir/serving-$label-$machines" "$@"
  serve_pid=$started serve_url="http://127.0.0.1:$port"
  wait_http "$serve_url/health" "$serve_pid" 60
}
# The serve under test bounds its machines (the baseline may predate the flag).
start_vigil() { start_serve "$target/serve" vigil "$1" --max-machines "$(($1 + 1000))"; }

# Sample times start a week back and each run on a server starts after the last
# one's latest sample, so no machine's clock ever goes backwards or past now.
week_ago() { echo $(($(date +%s) - 7 * 86400)); }
next_start() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wrk"]["latest_sample_time"] + int(sys.argv[2]))' "$1" "$step"; }

# cell LABEL PID URL MACHINES BATCH CONNECTIONS SECONDS [warmup]: one wrk run
# against a serve, starting after that server's latest sample (clock_LABEL).
cell() {
  local label="$1" pid="$2" url="$3" machines="$4" batch="$5" c="$6" secs="$7" var="clock_$1"
  local name="$label-m$machines-b$batch-c$c"
  [ "${8:-}" != warmup ] || name="warmup-$name"
  log "$name"
  wrk_cell "$name" "$pid" "$url/predict" "$here/vigil.lua" "$c" "$secs" \
    "$batch" "$machines" "$c" "${!var}" "$step" >"$run_dir/cells/$name.json"
  printf -v "$var" %s "$(next_start "$run_dir/cells/$name.json")"
  if [ "${!var}" -gt "$(($(date +%s) - 3600))" ]; then log "sample clock too close to now"; exit 1; fi
}

if [ "$do_cells" = 1 ]; then
  for machines in $machines_list; do
    start_vigil "$machines"
    vigil_pid=$serve_pid vigil_url=$serve_url clock_vigil="$(week_ago)"
    log "serve on $vigil_url (pid $vigil_pid), $machines machines"
    if [ -n "$baseline_bin" ]; then
      start_serve "$baseline_bin" baseline "$machines"
      base_pid=$serve_pid base_url=$serve_url clock_baseline="$(week_ago)"
      log "baseline serve ${baseline_commit:0:7} on $base_url (pid $base_pid)"
    fi
    # Warm-up: every machine tracked, allocator and caches settled.
    cell vigil "$vigil_pid" "$vigil_url" "$machines" 100 8 5 warmup
    [ -z "$baseline_bin" ] || cell baseline "$base_pid" "$base_url" "$machines" 100 8 5 warmup
    for batch in $batches; do
      for c in $connections; do
        cell vigil "$vigil_pid" "$vigil_url" "$machines" "$batch" "$c" "$duration"
        [ -z "$baseline_bin" ] || cell baseline "$base_pid" "$base_url" "$machines" "$batch" "$c" "$duration"
      done
    done
    stop_group "$vigil_pid"
    [ -z "$baseline_bin" ] || stop_group "$base_pid"
  done

  if [ "$do_mlflow" = 1 ]; then
    port="$(free_port)"
    mlflow_workers="$(nproc)"
    start_group "$run_dir/mlflow-serve.log" env MLFLOW_TRACKING_URI="sqlite:///$mlflow_dir/mlflow.db" \
      PATH="$VIGIL_MLFLOW_VENV/bin:$PATH" \
      "$VIGIL_MLFLOW_VENV/bin/mlflow" models serve -m "models:/serve_bench_sklearn_rf/1" \
      --env-manager local -h 127.0.0.1 -p "$port" -w "$mlflow_workers"
    mlflow_pid=$started mlflow_url="http://127.0.0.1:$port"
    wait_http "$mlflow_url/ping" "$mlflow_pid" 120
    log "mlflow models serve on $mlflow_url (pid $mlflow_pid, $mlflow_workers workers)"
    wrk_cell "warmup-mlflow" "$mlflow_pid" "$mlflow_url/invocations" "$here/mlflow.lua" 8 5 \
      "$mlflow_dir/body_100.json" >"$run_dir/cells/warmup-mlflow.json"
    for batch in $batches; do
      for c in $connections; do
        name="mlflow-b$batch-c$c"
        log "$name"
        wrk_cell "$name" "$mlflow_pid" "$mlflow_url/invocations" "$here/mlflow.lua" "$c" "$duration" \
          "$mlflow_dir/body_$batch.json" >"$run_dir/cells/$name.json"
      done
    done
    echo "{\"workers\":$mlflow_workers}" >"$run_dir/mlflow_server.json"
    stop_group "$mlflow_pid"
  fi
fi

# ---- soak: a fresh server, one wrk run, RSS and samples scored every few seconds
if [ "$do_soak" = 1 ]; then
  start_vigil "$soak_machines"
  log "soak: $soak_samples samples over $soak_machines machines (at most $soak_max_seconds s) on $serve_url"
  per_machine=$(((soak_samples / soak_machines + 1) * step))
  clock=$(($(date +%s) - per_machine - 86400))
  [ "$clock" -lt "$(week_ago)" ] || clock="$(week_ago)"
  csv="$run_dir/soak_rss.csv"
  echo "elapsed_s,rss_kib,hwm_kib,samples_scored,machines_warm,load1" >"$csv"
  VIGIL_WRK_OUT="$run_dir/soak.wrk.json" wrk -t "$soak_connections" -c "$soak_connections" \
    -d "$((soak_max_seconds + 30))s" --timeout 10s -s "$here/vigil.lua" "$serve_url/predict" -- \
    "$soak_batch" "$soak_machines" "$soak_connections" "$clock" "$step" >"$run_dir/soak.wrk.txt" 2>&1 &
  wrk_pid=$!
  t0=$(date +%s.%N)
  soak_cpu0="$(tree_cpu_s "$serve_pid")"
  while kill -0 "$wrk_pid" 2>/dev/null; do
    now=$(date +%s.%N)
    elapsed=$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.1f", b - a}')
    metrics="$(curl -fsS "$serve_url/metrics" 2>/dev/null || true)"
    scored="$(echo "$metrics" | awk '/^vigil_serve_samples_scored_total /{print $2}')"
    warm="$(echo "$metrics" | awk '/^vigil_serve_machines_warm /{print $2}')"
    rss="$(awk '/^VmRSS:/{print $2}' "/proc/$serve_pid/status")"
    hwm="$(awk '/^VmHWM:/{print $2}' "/proc/$serve_pid/status")"
    echo "$elapsed,$rss,$hwm,${scored:-0},${warm:-0},$(cut -d' ' -f1 /proc/loadavg)" >>"$csv"
    if [ "${scored:-0}" -ge "$soak_samples" ] || awk -v e="$elapsed" -v m="$soak_max_seconds" 'BEGIN{exit !(e >= m)}'; then
      kill -INT "$wrk_pid" 2>/dev/null || true
      break
    fi
    sleep "$rss_every"
  done
  wait "$wrk_pid" || true
  echo "{\"samples_target\":$soak_samples,\"max_seconds\":$soak_max_seconds,\"batch\":$soak_batch,\"connections\":$soak_connections,\"machines\":$soak_machines,\"server_cpu_s\":$(awk -v a="$soak_cpu0" -v b="$(tree_cpu_s "$serve_pid")" 'BEGIN{printf "%.2f", b - a}'),\"wrk\":$(cat "$run_dir/soak.wrk.json")}" >"$run_dir/soak.json"
  stop_group "$serve_pid"
  cp "$csv" "$out_dir/soak_rss.csv"
fi

python3 "$here/summarize.py" "$run_dir" "$mlflow_dir" "$results"
if [ "$do_soak" = 1 ]; then
  "$py" "$here/plot_soak.py" "$out_dir/soak_rss.csv" "$results" "$out_dir/soak_rss.png"
fi
