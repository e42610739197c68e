#!/usr/bin/env bash
# ONNX: the size of the exported default model against the postcard format,
# and prediction times of onnxruntime on Vigil's export, side by side with
# Vigil's own prediction and with onnxruntime on skl2onnx's export of the
# scikit-learn forest (the Python reference pipeline's model, same data, same
# tuned parameters), on the test split of the pipeline's default run.
#
#   benches/compare/onnx/run.sh [--pairs 5] [--trials 20] [--row-count 1000] [--results FILE]
#
# Trains the default model once (release `pipeline`, embedded defaults, seed 42,
# cached under target/onnx-bench or VIGIL_ONNX_BENCH_DIR), rebuilds its data with
# `onnx_compare export`, fits and exports the scikit-learn forest
# (`onnx_time.py fit`, the reference venv of compare/setup.sh), then runs
# --pairs rounds in which every side is timed once, in the same order: batch
# (all test rows per call, 2 threads) and one row per call (1 thread, the first
# --row-count rows). Writes one JSON line per timing into --results.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"
pairs=5 trials=20 row_count=1000 results="$here/results.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs="$2"; shift 2 ;;
    --trials) trials="$2"; shift 2 ;;
    --row-count) row_count="$2"; shift 2 ;;
    --results) results="$(realpath -m "$2")"; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
log() { echo "[onnx-bench] $*" >&2; }
work="${VIGIL_ONNX_BENCH_DIR:-$root/target/onnx-bench}"
target="${CARGO_TARGET_DIR:-$root/target}/release"
log "building release pipeline and onnx_compare"
cargo build --release -q -p vigil-examples --bin pipeline
cargo build --release -q -p vigil-benches --bin onnx_compare
py="$("$here/../setup.sh")/bin/python"

commit="$(git rev-parse --short HEAD)"
model_run="$work/model-$commit-t$trials"
if [ ! -f "$model_run/.complete" ]; then
  log "training the default model (pipeline --trials $trials, seed 42)"
  rm -rf "$model_run"; mkdir -p "$model_run"
  (cd "$model_run" && MLFLOW_TRACKING_URI="$model_run/mlruns" "$target/pipeline" --trials "$trials" \
    --output-dir "$model_run/out" --no-progress) >"$model_run/pipeline.log" 2>&1
  touch "$model_run/.complete"
fi
model="$(ls -d "$model_run"/out/*/model | head -1)"
data="$model_run/data"
mkdir -p "$data"
log "exporting the data and the Random Forest alone ($data)"
vigil_sizes="$("$target/onnx_compare" export --model "$model" --out "$data")"
"$py" "$here/../serve/best_params.py" "$model_run/out" >"$data/best_params.json"
log "fitting scikit-learn's forest and exporting it with skl2onnx"
sk_sizes="$("$py" "$here/onnx_time.py" fit --work "$data" --params "$data/best_params.json")"

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }
record() { # pair mode forests json
  echo "{\"pair\":$1,\"forests\":\"$3\",\"load\":$(load),\"result\":$4}" >>"$tmp"
}
rows="$data/test_x.npy"
for pair in $(seq 1 "$pairs"); do
  for mode in batch row; do
    threads=2; [ "$mode" = row ] && threads=1
    t=(--mode "$mode" --threads "$threads" --row-count "$row_count")
    log "pair $pair/$pairs, $mode (load $(load))"
    record "$pair" "$mode" rf "$(RAYON_NUM_THREADS=$threads "$target/onnx_compare" time --model "$model" \
      --rows "$rows" --mode "$mode" --forests rf --row-count "$row_count")"
    record "$pair" "$mode" rf "$("$py" "$here/onnx_time.py" time --onnx "$data/rf_exact.onnx" --rows "$rows" "${t[@]}")"
    record "$pair" "$mode" rf "$("$py" "$here/onnx_time.py" time --onnx "$data/rf_double.onnx" --rows "$rows" "${t[@]}")"
    record "$pair" "$mode" rf "$("$py" "$here/onnx_time.py" time --onnx "$data/sk_rf.onnx" --float --rows "$rows" "${t[@]}")"
    record "$pair" "$mode" rf "$("$py" "$here/onnx_time.py" time-sklearn --pickle "$data/sk_rf.pkl" --rows "$rows" "${t[@]}")"
    record "$pair" "$mode" both "$(RAYON_NUM_THREADS=$threads "$target/onnx_compare" time --model "$model" \
      --rows "$rows" --mode "$mode" --forests both --row-count "$row_count")"
    record "$pair" "$mode" both "$("$py" "$here/onnx_time.py" time --onnx "$model/model.onnx" --rows "$rows" "${t[@]}")"
  done
done
{
  echo "{\"commit\":\"$(git rev-parse HEAD)\",\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\","
  echo "\"pairs\":$pairs,\"trials\":$trials,\"row_count\":$row_count,"
  echo "\"vigil_sizes\":$vigil_sizes,\"sklearn_sizes\":$sk_sizes,\"timings\":["
  paste -sd, "$tmp"
  echo "]}"
} >"$results"
log "wrote $results"
"$py" "$here/summarize.py" "$results"
