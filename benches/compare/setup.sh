#!/usr/bin/env bash
# Creates (once) the Python venv the comparison scripts and golden generators use,
# and prints its path. Usage: PY="$(benches/compare/setup.sh)/bin/python"
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VIGIL_PYREF_VENV:-${VIGIL_CACHE_DIR:-$HOME/.cache/vigil}/pyref}"
stamp="$venv/.requirements.sha"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[pyref] installing the Python reference stack into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
