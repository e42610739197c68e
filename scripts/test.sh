#!/usr/bin/env bash
# The whole test suite, with the real services it needs.
#
#   scripts/test.sh            format, lint, all tests (PostgreSQL and MLflow started here)
#   scripts/test.sh -p vigil-metrics    extra arguments go to `cargo test`
#
# It installs what is missing (PostgreSQL server binaries from Debian, an MLflow
# venv cached under ~/.cache/vigil), starts throwaway servers on free loopback
# ports, and stops them on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/services.sh
source scripts/services.sh

step() { echo; echo "==> $*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "building tests"
cargo test --workspace --all-features --no-run

step "starting PostgreSQL and MLflow"
vigil_start_services
export VIGIL_REQUIRE_SERVICES=1

step "cargo test --workspace --all-features"
cargo test --workspace --all-features "$@"
