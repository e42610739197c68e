#!/usr/bin/env bash
# vigil-tuning vs Optuna 5.0.0: quality and speed, one run. Extra args go to compare.py
# (e.g. --seeds 5 --trials 50 --speed-trials 300; --pg-url URL times the PostgreSQL
# storage, by default VIGIL_TEST_DATABASE_URL when set).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
PY="$("$root/benches/compare/setup.sh")/bin/python"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p vigil-benches --bin tuning_driver)
pg=()
if [ -n "${VIGIL_TEST_DATABASE_URL:-}" ]; then pg=(--pg-url "$VIGIL_TEST_DATABASE_URL"); fi
exec "$PY" "$here/compare.py" --driver "$target/release/tuning_driver" "${pg[@]}" "$@"
