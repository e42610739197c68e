#!/usr/bin/env bash
# vigil-forest scaling grid (vigil only, synthetic make_classification-like data, see
# benches/src/bin/forest_scale.rs): Random Forest and Isolation Forest fit and predict
# times over rows x trees on 2 threads. Overwrites the two current result files,
# benches/compare/forest/scaling_rf.jsonl and scaling_if.jsonl (one JSON line per cell),
# only when the whole grid of a model has finished.
#
#   benches/compare/forest/scaling.sh [rows=50000,200000,400000,1000000] [trees=50,100,300]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
rows="${1:-50000,200000,400000,1000000}"
trees="${2:-50,100,300}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p vigil-benches --bin forest_scale)
tmp=""
trap 'rm -f "$tmp"' EXIT
for model in rf if; do
  tmp="$(mktemp "$here/.scaling_$model.XXXXXX")"
  "$CARGO_TARGET_DIR/release/forest_scale" --rows "$rows" --trees "$trees" --threads 2 --model "$model" \
    | tee "$tmp"
  mv "$tmp" "$here/scaling_$model.jsonl"
done
