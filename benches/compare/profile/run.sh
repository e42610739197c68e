#!/usr/bin/env bash
# Which release profile pays: builds two hot kernels, the forest fit
# (forest/examples/fit_synthetic.rs) and the 42 features batch + online
# (features/examples/compute_speed.rs), under four profile settings, each into
# its own target dir, and prints the CPU-bound timings (1 thread) of each.
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

printf '%-22s %12s %12s %14s %14s\n' "profile (lto, cgu)" "rf fit s" "if fit+score s" "features batch s" "features online s"
for p in "${profiles[@]}"; do
  lto="${p%%:*}" cgu="${p##*:}"
  dir="$targets/lto-$lto-cgu-$cgu"
  CARGO_TARGET_DIR="$dir" cargo build --release -q \
    --config "profile.release.lto=\"$lto\"" --config "profile.release.codegen-units=$cgu" \
    -p vigil-forest --example fit_synthetic -p vigil-features --example compute_speed
  rf=() iso=() batch=() online=()
  for _ in $(seq 1 "$repeats"); do
    out="$("$dir/release/examples/fit_synthetic" 100000 20 1)"
    rf+=("$(sed -n 's/^rf fit .*: \([0-9.]*\) s .*/\1/p' <<<"$out")")
    iso+=("$(sed -n 's/^if fit+score: \([0-9.]*\) s.*/\1/p' <<<"$out")")
    out="$("$dir/release/examples/compute_speed" 4 7 1)"
    batch+=("$(sed -n 's/.*batch 42 features (1 thread) \([0-9.]*\) s.*/\1/p' <<<"$out")")
    online+=("$(sed -n 's/.*online \([0-9.]*\) s.*/\1/p' <<<"$out")")
  done
  printf '%-22s %12s %12s %14s %14s\n' "lto=$lto cgu=$cgu" \
    "$(printf '%s\n' "${rf[@]}" | median)" "$(printf '%s\n' "${iso[@]}" | median)" \
    "$(printf '%s\n' "${batch[@]}" | median)" "$(printf '%s\n' "${online[@]}" | median)"
done
