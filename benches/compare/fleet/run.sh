#!/usr/bin/env bash
# The fleet scaling table: `simulate --to postgres` for each size, then the
# streamed pipeline end to end from PostgreSQL, each under /usr/bin/time -v
# (wall time, peak RSS). Starts its own throwaway PostgreSQL (scripts/services.sh),
# tracks into a local store under the output folder, registers nothing.
#
#   benches/compare/fleet/run.sh [--sizes "10x7 100x7 1000x1 1000x7"] [--trials 2]
#                                [--downsample 1] [--out DIR] [--features-compare] [--skip-pipeline]
#                                [--ingestion streamed|memory]
#
# A size is MACHINESxDAYS. Results: DIR/results.tsv (one line per size) and
# each run's logs and run_summary.json. --features-compare also times the 42
# features in the database vs in memory on the first size (fleet_features);
# --skip-pipeline only simulates (and compares features); --ingestion memory
# runs the in-memory pipeline on the same tables instead (default streamed).
set -euo pipefail
cd "$(dirname "$0")/../../.."
SIZES="10x7 100x7 1000x1 1000x7"
TRIALS=2
DOWNSAMPLE=1
OUT="${TMPDIR:-/tmp}/vigil-fleet-$(date +%Y%m%d-%H%M%S)"
FEATURES_COMPARE=""
SKIP_PIPELINE=""
INGESTION=streamed
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --trials) TRIALS="$2"; shift 2 ;;
    --downsample) DOWNSAMPLE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --features-compare) FEATURES_COMPARE=1; shift ;;
    --skip-pipeline) SKIP_PIPELINE=1; shift ;;
    --ingestion) INGESTION="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cargo build --release -q -p vigil-examples --bin simulate --bin pipeline
[ -z "$FEATURES_COMPARE" ] || cargo build --release -q -p vigil-benches --bin fleet_features
# A copy of the binaries: a rebuild during a long run must not change them.
mkdir -p "$OUT/bin"
for b in simulate pipeline fleet_features; do
  [ ! -x "${CARGO_TARGET_DIR:-target}/release/$b" ] || cp "${CARGO_TARGET_DIR:-target}/release/$b" "$OUT/bin/"
done
BIN="$OUT/bin"
git rev-parse HEAD > "$OUT/commit" 2>/dev/null || true
# shellcheck source=/dev/null
source scripts/services.sh
VIGIL_SERVICE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/vigil-fleet-pg.XXXXXX")"
trap 'rc=$?; vigil_stop_services; exit $rc' EXIT
trap 'exit 130' INT TERM
vigil_start_postgres
PGPASSWORD=vigil psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U vigil -d postgres -qtA -c "CREATE DATABASE vigil_fleet" >/dev/null
export POSTGRES_DB=vigil_fleet
unset MLFLOW_TRACKING_URI

# Elapsed seconds and peak RSS (KiB) from a /usr/bin/time -v log.
time_of() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
rss_of() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

echo -e "size\trows\tsimulate_s\tsimulate_rss_kib\tpipeline_s\tpipeline_rss_kib\tsummary" > "$OUT/results.tsv"
for size in $SIZES; do
  machines="${size%x*}"; days="${size#*x}"; table="fleet_${machines}x${days}"
  dir="$OUT/$size"; mkdir -p "$dir"
  echo "[fleet] $size: simulate" >&2
  /usr/bin/time -v "$BIN/simulate" --to postgres --table "$table" --machines "$machines" --days "$days" \
    >"$dir/simulate.log" 2>"$dir/simulate.time"
  rows="$(PGPASSWORD=vigil psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U vigil -d vigil_fleet -qtA -c "SELECT count(*) FROM $table")"
  echo "[fleet] $size: $rows rows" >&2
  [ -n "$SKIP_PIPELINE" ] || (cd "$dir" && /usr/bin/time -v "$BIN/pipeline" --source postgres --ingestion "$INGESTION" --table "$table" --trials "$TRIALS" \
    --downsample "$DOWNSAMPLE" --no-register --no-progress --output-dir "$dir/out" \
    >"$dir/pipeline.log" 2>"$dir/pipeline.time") || { echo "[fleet] $size: pipeline failed (see $dir)" >&2; tail -5 "$dir/pipeline.time" >&2; }
  summary="$(ls "$dir"/out/*/run_summary.json 2>/dev/null | head -1)"
  echo -e "$size\t$rows\t$(time_of "$dir/simulate.time")\t$(rss_of "$dir/simulate.time")\t$(time_of "$dir/pipeline.time")\t$(rss_of "$dir/pipeline.time")\t$summary" >> "$OUT/results.tsv"
  if [ -n "$FEATURES_COMPARE" ]; then
    "$BIN/fleet_features" --table "$table" > "$dir/features_compare.json"
    FEATURES_COMPARE=""
  fi
done
cat "$OUT/results.tsv"
