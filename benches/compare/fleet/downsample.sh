#!/usr/bin/env bash
# Negative downsampling measured: the streamed pipeline on one simulated fleet
# in PostgreSQL at each --downsample fraction and seed (the seed of the tuner,
# the forests and the downsampling; the fleet is simulated once, seed 42).
# Starts its own throwaway PostgreSQL, tracks into a local store, registers nothing.
#
#   benches/compare/fleet/downsample.sh [--machines 100] [--days 7] [--fractions "1 0.3 0.1"]
#                                       [--seeds "1 2 3"] [--trials 3] [--out DIR]
#
# Results: DIR/downsample.tsv, one line per (fraction, seed), and a summary
# per fraction (mean and spread over the seeds) on stdout.
set -euo pipefail
cd "$(dirname "$0")/../../.."
MACHINES=100; DAYS=7; FRACTIONS="1 0.3 0.1"; SEEDS="1 2 3"; TRIALS=3
OUT="${TMPDIR:-/tmp}/vigil-downsample-$(date +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ]; do
  case "$1" in
    --machines) MACHINES="$2"; shift 2 ;;
    --days) DAYS="$2"; shift 2 ;;
    --fractions) FRACTIONS="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --trials) TRIALS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT/bin"
OUT="$(cd "$OUT" && pwd)"
cargo build --release -q -p vigil-examples --bin simulate --bin pipeline
for b in simulate pipeline; do cp "${CARGO_TARGET_DIR:-target}/release/$b" "$OUT/bin/"; done
git rev-parse HEAD > "$OUT/commit" 2>/dev/null || true
# shellcheck source=/dev/null
source scripts/services.sh
VIGIL_SERVICE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/vigil-downsample-pg.XXXXXX")"
trap 'rc=$?; vigil_stop_services; exit $rc' EXIT
trap 'exit 130' INT TERM
vigil_start_postgres
PGPASSWORD=vigil psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U vigil -d postgres -qtA -c "CREATE DATABASE vigil_fleet" >/dev/null
export POSTGRES_DB=vigil_fleet
unset MLFLOW_TRACKING_URI
table="fleet_${MACHINES}x${DAYS}"
"$OUT/bin/simulate" --to postgres --table "$table" --machines "$MACHINES" --days "$DAYS" > "$OUT/simulate.log"
echo -e "fraction\tseed\ttest_f1\ttest_roc_auc\ttest_pr_auc\ttrain_rows\tfailures_caught\tfailures_total\tfalse_alarms_per_machine_day\tseconds\tpeak_rss_kib" > "$OUT/downsample.tsv"
for fraction in $FRACTIONS; do
  for seed in $SEEDS; do
    dir="$OUT/f${fraction}_s${seed}"; mkdir -p "$dir"
    echo "[downsample] fraction $fraction seed $seed" >&2
    (cd "$dir" && /usr/bin/time -v "$OUT/bin/pipeline" --source postgres --ingestion streamed --table "$table" --trials "$TRIALS" \
      --seed "$seed" --downsample "$fraction" --no-register --no-progress --output-dir "$dir/out" \
      > "$dir/pipeline.log" 2> "$dir/pipeline.time")
    python3 - "$dir" "$fraction" "$seed" >> "$OUT/downsample.tsv" <<'PY'
import glob, json, re, sys
d, fraction, seed = sys.argv[1:4]
s = json.load(open(glob.glob(f"{d}/out/*/run_summary.json")[0]))
t = open(f"{d}/pipeline.time").read()
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)
e = s["events"]
print("\t".join(str(v) for v in [fraction, seed, s["test"]["f1"], s["test"]["roc_auc"], s["test"]["pr_auc"],
    s["rows"]["train"], e["failures_caught"], e["failures_total"], e["false_alarms_per_machine_day"],
    round(s["total_seconds"], 1), rss]))
PY
  done
done
python3 - "$OUT/downsample.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("| fraction | train rows | test ROC-AUC (mean ± sd) | test F1 (mean ± sd) | failures caught | seconds |")
print("| --- | --- | --- | --- | --- | --- |")
for f in dict.fromkeys(r["fraction"] for r in rows):
    g = [r for r in rows if r["fraction"] == f]
    ms = lambda k: (statistics.mean(float(r[k]) for r in g), statistics.pstdev(float(r[k]) for r in g))
    auc, f1 = ms("test_roc_auc"), ms("test_f1")
    caught = "/".join(f'{r["failures_caught"]}' for r in g) + f' of {g[0]["failures_total"]}'
    print(f'| {f} | {int(statistics.mean(int(r["train_rows"]) for r in g)):,} | {auc[0]:.4f} ± {auc[1]:.4f} | {f1[0]:.4f} ± {f1[1]:.4f} | {caught} | {statistics.mean(float(r["seconds"]) for r in g):.0f} |')
PY
