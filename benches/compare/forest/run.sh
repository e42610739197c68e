#!/usr/bin/env bash
# Side-by-side comparison of vigil-forest with scikit-learn, LightGBM (rf mode) and
# isotree on the same data in the same run. Usage:
#   benches/compare/forest/run.sh [--quick] [--seeds N] [--only a,b] [--speed-rows N]
#       [--skip-speed] [--skip-accuracy] [--speed-models vigil,lightgbm,...] [--lightgbm-timeout S]
#       [--paired-rf-fits N] [--paired-predictions N] [--out FILE]
# Prints one JSON line per result and overwrites the benchmark's one result file in
# benches/compare/forest/: results_accuracy.json (results_accuracy_<N>seeds.json for
# --seeds N other than 5), and results_speed.json, results_paired_predict.json or
# results_paired_rf_fits.json for the speed modes. Partial runs (--only,
# --speed-models) should name their own file with --out.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
PY="$("$root/benches/compare/setup.sh")/bin/python"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p vigil-benches --bin forest_compare --bin forest_telemetry_csv)
exec "$PY" "$here/compare.py" --driver "$CARGO_TARGET_DIR/release/forest_compare" \
    --csv-driver "$CARGO_TARGET_DIR/release/forest_telemetry_csv" "$@"
