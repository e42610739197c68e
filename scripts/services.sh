# shellcheck shell=bash
# Throwaway PostgreSQL and MLflow servers on loopback, for tests and for the
# end-to-end pipeline. Source this file, then call `vigil_start_services`; the
# servers stop when the shell that sourced it exits (trap).
#
# Exports:
#   VIGIL_TEST_DATABASE_URL   postgres://vigil:vigil@127.0.0.1:<port>/vigil_test
#   VIGIL_TEST_MLFLOW_URI     http://127.0.0.1:<port>
#   VIGIL_MLFLOW_VENV         the Python venv that has mlflow (for interop tests)
#   POSTGRES_HOST/PORT/USER/PASSWORD/DB   the same database, as the reference pipeline reads it
#
# Knobs:
#   VIGIL_CACHE_DIR   where the MLflow venv is cached (default ~/.cache/vigil)
#   VIGIL_NO_SERVICES=1  start nothing (tests that need a service then skip, or
#                        fail when VIGIL_REQUIRE_SERVICES=1)

VIGIL_MLFLOW_VERSION="3.17.2"
VIGIL_CACHE_DIR="${VIGIL_CACHE_DIR:-$HOME/.cache/vigil}"
VIGIL_MLFLOW_VENV="${VIGIL_MLFLOW_VENV:-$VIGIL_CACHE_DIR/mlflow-$VIGIL_MLFLOW_VERSION}"

vigil_log() { echo "[services] $*" >&2; }

vigil_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# PostgreSQL server binaries: Debian's postgresql package. Installed when missing.
vigil_pg_bindir() {
  local dir=""
  if command -v pg_config >/dev/null 2>&1; then dir="$(pg_config --bindir)"; fi
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ] || [ ! -x "$dir/postgres" ]; then
    for d in /usr/lib/postgresql/*/bin; do
      if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then dir="$d"; fi
    done
  fi
  echo "$dir"
}

vigil_ensure_postgres() {
  local dir
  dir="$(vigil_pg_bindir)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then return 0; fi
  vigil_log "PostgreSQL server binaries not found: installing Debian's postgresql"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  else
    sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
}

vigil_ensure_mlflow() {
  if [ -x "$VIGIL_MLFLOW_VENV/bin/mlflow" ] && [ -f "$VIGIL_MLFLOW_VENV/.complete" ]; then return 0; fi
  vigil_log "installing mlflow[auth]==$VIGIL_MLFLOW_VERSION into $VIGIL_MLFLOW_VENV (about 80 s, once per machine)"
  rm -rf "$VIGIL_MLFLOW_VENV"
  mkdir -p "$(dirname "$VIGIL_MLFLOW_VENV")"
  python3 -m venv "$VIGIL_MLFLOW_VENV" >&2
  "$VIGIL_MLFLOW_VENV/bin/pip" install -q --disable-pip-version-check "mlflow[auth]==$VIGIL_MLFLOW_VERSION" >&2
  touch "$VIGIL_MLFLOW_VENV/.complete"
}

# Python packages the interop tests check against, installed into the same venv
# (from the package registry, pinned). Bump VIGIL_TEST_PY_SET when the list changes.
VIGIL_TEST_PY_PACKAGES="prometheus_client==0.26.0 onnx==1.23.2 onnxruntime==1.32.0 shap==0.51.0"
VIGIL_TEST_PY_SET="2"

vigil_ensure_test_python_packages() {
  local marker="$VIGIL_MLFLOW_VENV/.test-packages-$VIGIL_TEST_PY_SET"
  if [ -f "$marker" ]; then return 0; fi
  vigil_log "installing $VIGIL_TEST_PY_PACKAGES into $VIGIL_MLFLOW_VENV"
  # shellcheck disable=SC2086 # the list is space-separated on purpose
  "$VIGIL_MLFLOW_VENV/bin/pip" install -q --disable-pip-version-check $VIGIL_TEST_PY_PACKAGES >&2
  touch "$marker"
}

VIGIL_SERVICE_DIR=""
VIGIL_PG_PID=""
VIGIL_MLFLOW_PID=""

vigil_stop_services() {
  if [ -n "$VIGIL_MLFLOW_PID" ]; then
    # Every step may find the process already gone: that is success, not an error
    # (under `set -e` a failing command here would turn a green run red).
    kill -TERM "$VIGIL_MLFLOW_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$VIGIL_MLFLOW_PID" 2>/dev/null || break; sleep 0.2; done
    pkill -KILL -P "$VIGIL_MLFLOW_PID" 2>/dev/null || true
    kill -KILL "$VIGIL_MLFLOW_PID" 2>/dev/null || true
    VIGIL_MLFLOW_PID=""
  fi
  if [ -n "$VIGIL_PG_PID" ] && [ -n "$VIGIL_SERVICE_DIR" ]; then
    vigil_as_pg "$(vigil_pg_bindir)/pg_ctl" -D "$VIGIL_SERVICE_DIR/pg" -m immediate stop >/dev/null 2>&1 || true
    VIGIL_PG_PID=""
  fi
  if [ -n "$VIGIL_SERVICE_DIR" ] && [ -z "${VIGIL_KEEP_SERVICE_DIR:-}" ]; then
    rm -rf "$VIGIL_SERVICE_DIR" || true
  fi
  return 0
}

# initdb refuses to run as root (and CI runs as root): run the server as `postgres`.
vigil_as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

vigil_start_postgres() {
  vigil_ensure_postgres
  local bindir port
  bindir="$(vigil_pg_bindir)"
  port="$(vigil_free_port)"
  mkdir -p "$VIGIL_SERVICE_DIR/pg" "$VIGIL_SERVICE_DIR/pgsock" "$VIGIL_SERVICE_DIR/pglog"
  echo "vigil" > "$VIGIL_SERVICE_DIR/pgpass"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$VIGIL_SERVICE_DIR/pg" "$VIGIL_SERVICE_DIR/pgsock" "$VIGIL_SERVICE_DIR/pglog" "$VIGIL_SERVICE_DIR/pgpass"
    chmod 755 "$VIGIL_SERVICE_DIR"
  fi
  vigil_as_pg "$bindir/initdb" -D "$VIGIL_SERVICE_DIR/pg" -U vigil --pwfile="$VIGIL_SERVICE_DIR/pgpass" \
    --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$VIGIL_SERVICE_DIR/initdb.log" 2>&1 \
    || { cat "$VIGIL_SERVICE_DIR/initdb.log" >&2; return 1; }
  vigil_as_pg "$bindir/pg_ctl" -D "$VIGIL_SERVICE_DIR/pg" -w -t 60 -l "$VIGIL_SERVICE_DIR/pglog/pg.log" \
    -o "-p $port -k $VIGIL_SERVICE_DIR/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$VIGIL_SERVICE_DIR/pglog/pg.log" >&2; return 1; }
  VIGIL_PG_PID="$(head -1 "$VIGIL_SERVICE_DIR/pg/postmaster.pid")"
  PGPASSWORD=vigil "$bindir/psql" -h 127.0.0.1 -p "$port" -U vigil -d postgres -qtA \
    -c "CREATE DATABASE vigil_test" >/dev/null || return 1
  export VIGIL_TEST_DATABASE_URL="postgres://vigil:vigil@127.0.0.1:$port/vigil_test"
  export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT="$port" POSTGRES_USER=vigil POSTGRES_PASSWORD=vigil POSTGRES_DB=vigil_test
  vigil_log "PostgreSQL on 127.0.0.1:$port (database vigil_test)"
}

vigil_start_mlflow() {
  vigil_ensure_mlflow
  vigil_ensure_test_python_packages
  local port
  port="$(vigil_free_port)"
  mkdir -p "$VIGIL_SERVICE_DIR/mlflow/artifacts"
  (
    cd "$VIGIL_SERVICE_DIR/mlflow" || exit 1
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec "$VIGIL_MLFLOW_VENV/bin/mlflow" server \
      --backend-store-uri "sqlite:///$VIGIL_SERVICE_DIR/mlflow/mlflow.db" \
      --artifacts-destination "$VIGIL_SERVICE_DIR/mlflow/artifacts" \
      --host 127.0.0.1 --port "$port" --workers 1
  ) >"$VIGIL_SERVICE_DIR/mlflow.log" 2>&1 &
  VIGIL_MLFLOW_PID=$!
  local i
  for i in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
      export VIGIL_TEST_MLFLOW_URI="http://127.0.0.1:$port"
      export VIGIL_MLFLOW_VENV
      vigil_log "MLflow $VIGIL_MLFLOW_VERSION on $VIGIL_TEST_MLFLOW_URI (ready after about $((i / 2)) s)"
      return 0
    fi
    if ! kill -0 "$VIGIL_MLFLOW_PID" 2>/dev/null; then break; fi
    sleep 0.5
  done
  vigil_log "MLflow did not become healthy; its log:"
  tail -50 "$VIGIL_SERVICE_DIR/mlflow.log" >&2
  return 1
}

vigil_start_services() {
  if [ -n "${VIGIL_NO_SERVICES:-}" ]; then
    vigil_log "VIGIL_NO_SERVICES set: starting no services"
    return 0
  fi
  VIGIL_SERVICE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/vigil-services.XXXXXX")"
  # Keep the shell's own exit status: stopping the services must never change it.
  trap 'vigil_rc=$?; vigil_stop_services; exit $vigil_rc' EXIT
  trap 'exit 130' INT TERM
  vigil_start_postgres || return 1
  vigil_start_mlflow || return 1
}
