#!/usr/bin/env bash
# Same history, both samplers: vigil's and Optuna's next-trial proposals compared
# (see replay.py). Extra args go to replay.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
PY="$("$root/benches/compare/setup.sh")/bin/python"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p vigil-benches --bin tuning_replay)
exec "$PY" "$here/replay.py" --driver "$target/release/tuning_replay" "$@"
