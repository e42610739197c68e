#!/usr/bin/env bash
# vigil-forest's TreeSHAP against shap's TreeExplainer (tree_path_dependent, raw) on
# the same 100-tree forest (depth 8, 42 features), one thread each, alternating
# pairs; then the one-row latency of a pipeline-sized forest (175 trees, depth 19).
#
#   benches/compare/shap/run.sh [--pairs N] [--shap-rows N] [--python VENV_PYTHON]
#
# shap's rows default to 1,000 of the 10,000 (it is the slow side); per-row times
# are compared. Results: one JSON line per run on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pairs=3
shap_rows=1000
python="${VIGIL_MLFLOW_VENV:-$HOME/.cache/vigil/mlflow-3.17.2}/bin/python"
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs="$2"; shift 2 ;;
    --shap-rows) shap_rows="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
target="${CARGO_TARGET_DIR:-/tmp/vigil-shap-bench-target}"
(cd "$here/bench" && CARGO_TARGET_DIR="$target" cargo build -j 2 --release -q)
bench="$target/release/vigil-shap-bench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bench" fit "$work"
for _ in $(seq "$pairs"); do
  "$bench" batch "$work" 1
  "$python" "$here/shap_time.py" "$work" "$shap_rows"
done
"$bench" row "$work"
