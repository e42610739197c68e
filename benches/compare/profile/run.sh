#!/usr/bin/env bash
# Which release profile pays: builds two hot kernels, the forest fit
# (forest/examples/fit_synthetic.rs) and the 42 features batch + online
# (features/examples/compute_speed.rs), under four profile settings, each into
# its own target dir, and prints the timings (1 thread) of each: wall seconds of
# each kernel as the examples report them, and the user-CPU seconds of each whole
# process (robust when other jobs share the machine).
#
#   benches/compare/profile/run.sh [repeats]      (default 3; median reported)
#
# The settings compared: cargo's default release (lto off, 16 codegen units),
# thin LTO, one codegen unit, and both (the workspace's choice).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
repeats="${1:-3}"
targets="${VIGIL_PROFILE_TARGETS:-$root/target/profile-compare}"
profiles=("off:16" "thin:16" "off:1" "thin:1")

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-18s %10s %14s %16s %17s %15s %15s\n' "profile (lto, cgu)" "rf fit s" "if fit+score s" "features batch s" "features online s" "forest CPU s" "features CPU s"
for p in "${profiles[@]}"; do
  lto="${p%%:*}" cgu="${p##*:}"
  dir="$targets/lto-$lto-cgu-$cgu"
  CARGO_TARGET_DIR="$dir" cargo build --release -q \
    --config "profile.release.lto=\"$lto\"" --config "profile.release.codegen-units=$cgu" \
    -p vigil-forest --example fit_synthetic -p vigil-features --example compute_speed
  rf=() iso=() batch=() online=() cpu_forest=() cpu_features=()
  for _ in $(seq 1 "$repeats"); do
    out="$(/usr/bin/time -f 'cpu %U' "$dir/release/examples/fit_synthetic" 100000 20 1 2>&1)"
    cpu_forest+=("$(sed -n 's/^cpu \([0-9.]*\)$/\1/p' <<<"$out")")
    rf+=("$(sed -n 's/^rf fit .*: \([0-9.]*\) s .*/\1/p' <<<"$out")")
    iso+=("$(sed -n 's/^if fit+score: \([0-9.]*\) s.*/\1/p' <<<"$out")")
    out="$(/usr/bin/time -f 'cpu %U' "$dir/release/examples/compute_speed" 4 7 1 2>&1)"
    cpu_features+=("$(sed -n 's/^cpu \([0-9.]*\)$/\1/p' <<<"$out")")
    batch+=("$(sed -n 's/.*batch 42 features (1 thread) \([0-9.]*\) s.*/\1/p' <<<"$out")")
    online+=("$(sed -n 's/.*online \([0-9.]*\) s.*/\1/p' <<<"$out")")
  done
  printf '%-18s %10s %14s %16s %17s %15s %15s\n' "lto=$lto cgu=$cgu" \
    "$(printf '%s\n' "${rf[@]}" | median)" "$(printf '%s\n' "${iso[@]}" | median)" \
    "$(printf '%s\n' "${batch[@]}" | median)" "$(printf '%s\n' "${online[@]}" | median)" \
    "$(printf '%s\n' "${cpu_forest[@]}" | median)" "$(printf '%s\n' "${cpu_features[@]}" | median)"
done
