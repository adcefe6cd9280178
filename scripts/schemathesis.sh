#!/usr/bin/env bash
# The OpenAPI document against a live gateway: validates openapi/scimgate.yaml against the
# OpenAPI specification, then starts a release `scimgate serve` on a fresh database per backend,
# provisions a tenant, a tenant token and an operator token, and runs schemathesis (pinned, from
# PyPI) against the document: first the SCIM and health routes, then the admin API.
#
# Usage: scripts/schemathesis.sh [sqlite|postgres|all|validate]      (default: all)
#
# Environment:
#   SCIMGATE_BIN              use this scimgate binary instead of `cargo build --release`
#   SCHEMATHESIS_MAX_EXAMPLES test cases per operation and phase (default 25)
#   CI=true                   an unreachable PostgreSQL is a failure instead of a skip
#   PGHOST/PGPORT/PGUSER      where PostgreSQL is (default 127.0.0.1 / 5432 / postgres, trust auth)
#   SCHEMATHESIS_KEEP_TMP=1   keep the temp dir (reports, server logs) for debugging
#
# Exit status: 0 when the document is valid and no check failed on any selected backend, 1
# otherwise, 2 on bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCUMENT="$ROOT/openapi/scimgate.yaml"
CONFIG="$ROOT/scripts/schemathesis.toml"
VENV="$ROOT/target/schemathesis-venv"
PIP_PINS=(schemathesis==4.32.5 openapi-spec-validator==0.9.0)
# Every check that holds for this API. Not run: negative_data_rejection (the gateway accepts on
# purpose what IdPs really send: "True" strings for booleans, a lone object for an array, any
# letter case in names), positive_data_acceptance (a generated member id names no user: 400),
# allow_header_conformance (405 answers carry no Allow header), and the stateful checks
# (use_after_free, ensure_resource_availability), which need links the document does not have.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,missing_required_header,ignored_auth
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
ORG=schemathesis
DOOMED_ORG=schemathesis-doomed
HEALTH_TIMEOUT=30   # seconds to wait for /healthz
PASS_TIMEOUT=600    # seconds for one schemathesis pass, whatever it is doing
REQUEST_TIMEOUT=10  # seconds for one request

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
PG_ADMIN_DB="test"  # the existing database psql connects to for CREATE/DROP DATABASE

usage() { echo "usage: $0 [sqlite|postgres|all|validate]" >&2; exit 2; }

case "${1:-all}" in
  sqlite) BACKENDS=(sqlite) ;;
  postgres) BACKENDS=(postgres) ;;
  all) BACKENDS=(sqlite postgres) ;;
  validate) BACKENDS=() ;;
  -h | --help) echo "usage: $0 [sqlite|postgres|all|validate]"; exit 0 ;;
  *) usage ;;
esac
[[ $# -le 1 ]] || usage

# --- cleanup: whatever happens, stop our server, drop our databases, remove our files ---------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scimgate-schemathesis.XXXXXX")
SERVER_PID=""
CHECKER_PID=""
PG_DBS=()
SECRETS=()

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

drop_pg_db() {
  psql -d "$PG_ADMIN_DB" -qAt -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 \
    || psql -d "$PG_ADMIN_DB" -qAt -c "DROP DATABASE IF EXISTS \"$1\"" >/dev/null 2>&1 || true
}

cleanup() {
  if [[ -n "$CHECKER_PID" ]]; then
    kill "$CHECKER_PID" 2>/dev/null || true  # `timeout` passes the TERM on to schemathesis
    wait "$CHECKER_PID" 2>/dev/null || true
  fi
  stop_server
  local db
  for db in "${PG_DBS[@]}"; do drop_pg_db "$db"; done
  if [[ "${SCHEMATHESIS_KEEP_TMP:-}" == 1 ]]; then
    echo "schemathesis: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Never let a token reach the terminal or CI logs, whatever prints it.
redact() {
  local line secret
  while IFS= read -r line || [[ -n "$line" ]]; do
    for secret in "${SECRETS[@]}"; do line=${line//"$secret"/[REDACTED]}; done
    printf '%s\n' "$line"
  done
}

log() { echo "schemathesis: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------
ensure_tools() {
  if [[ -x "$VENV/bin/schemathesis" ]] && "$VENV/bin/python" - "${PIP_PINS[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
    return 0
  fi
  log "installing ${PIP_PINS[*]} into $VENV"
  mkdir -p "$(dirname "$VENV")"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PINS[@]}"
}

validate_document() {
  if "$VENV/bin/openapi-spec-validator" "$DOCUMENT" >"$TMP/validate.out" 2>&1; then
    echo "schemathesis: $(realpath --relative-to="$ROOT" "$DOCUMENT") is a valid OpenAPI document"
  else
    log "openapi/scimgate.yaml is not a valid OpenAPI document:"
    cat "$TMP/validate.out" >&2
    return 1
  fi
}

ensure_binary() {
  if [[ -n "${SCIMGATE_BIN:-}" ]]; then
    BIN=$SCIMGATE_BIN
  else
    (cd "$ROOT" && cargo build --release -p scimgate-edge)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/scimgate"
  fi
  [[ -x "$BIN" ]] || { log "no executable scimgate at $BIN"; exit 1; }
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_reachable() {
  command -v psql >/dev/null 2>&1 && psql -d "$PG_ADMIN_DB" -qAt -c 'SELECT 1' >/dev/null 2>&1
}

# Runs a scimgate admin command quietly; shows its output (redacted) only when it fails.
admin() {
  local out="$TMP/admin.out"
  if ! "$BIN" "$@" >"$out" 2>&1; then
    log "\`scimgate $*\` failed:"
    redact <"$out" >&2
    return 1
  fi
}

# A command that prints a token alone on its last stdout line; the token.
issue() {
  local out token
  if ! out=$("$BIN" "$@" 2>"$TMP/issue.err"); then
    log "\`scimgate $*\` failed:"
    redact <"$TMP/issue.err" >&2
    return 1
  fi
  token=$(printf '%s\n' "$out" | tail -n 1 | tr -d '[:space:]')
  [[ -n "$token" ]] || { log "\`scimgate $*\` printed no token"; return 1; }
  printf '%s' "$token"
}

log_tail() {
  tail -n 40 "$1" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-500 | redact
}

# One schemathesis pass over the operations `filter` selects; its output goes to `out`.
run_pass() {
  local name=$1 out=$2 rc=0
  shift 2
  local started=$SECONDS
  timeout "$PASS_TIMEOUT" "$VENV/bin/schemathesis" --no-color --config-file "$CONFIG" run "$DOCUMENT" \
    --url "http://$SCIMGATE_LISTEN" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --request-timeout "$REQUEST_TIMEOUT" \
    --seed 1 \
    --workers 2 \
    --report ndjson --report-dir "$(dirname "$out")/report-$name" \
    "$@" >"$out" 2>&1 &
  CHECKER_PID=$!
  wait "$CHECKER_PID" || rc=$?
  CHECKER_PID=""
  # The summary's "Test cases:" line: "<n> generated, <n> passed, ..."
  echo "schemathesis $BACKEND_NAME $name: exit $rc in $((SECONDS - started)) s;" \
    "$(grep -A1 '^Test cases:' "$out" | tail -n 1 | sed 's/^ *//' | redact)"
  return "$rc"
}

# --- one backend -------------------------------------------------------------------------------
run_backend() {
  local backend=$1 dir="$TMP/$1" db_url port rc=0
  BACKEND_NAME=$backend
  mkdir -p "$dir"

  case "$backend" in
    sqlite)
      db_url="sqlite://$dir/scimgate.db"
      ;;
    postgres)
      if ! pg_reachable; then
        if [[ "${CI:-}" == true ]]; then
          log "PostgreSQL not reachable at $PGHOST:$PGPORT (CI=true, so this is a failure)"
          return 1
        fi
        echo "SKIPPED schemathesis on postgres: PostgreSQL not reachable"
        return 0
      fi
      local db
      db="scimgate_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
      PG_DBS+=("$db")  # registered before creation so the EXIT trap drops it
      psql -d "$PG_ADMIN_DB" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null \
        || { log "could not create database $db"; return 1; }
      db_url="postgres://$PGUSER@$PGHOST:$PGPORT/$db"
      ;;
  esac

  export SCIMGATE_DATABASE_URL="$db_url"
  port=$(free_port) || return 1
  export SCIMGATE_LISTEN="127.0.0.1:$port"
  export SCIMGATE_PUBLIC_URL="http://$SCIMGATE_LISTEN"
  # Generated webhook URLs point anywhere: no delivery is ever attempted from this server.
  export SCIMGATE_WEBHOOK_WORKERS=0
  # schemathesis sends requests without (valid) tokens on purpose, thousands of them from one
  # address, and requests as fast as it can: neither limit may turn the run into 429s.
  export SCIMGATE_AUTH_FAILURE_BURST=1000000 SCIMGATE_RATE_LIMIT_PER_SECOND=100000 SCIMGATE_RATE_LIMIT_BURST=100000

  admin migrate || return 1
  admin tenant create "$ORG" || return 1
  admin tenant create "$DOOMED_ORG" || return 1
  local tenant_token operator_token
  tenant_token=$(issue token create "$ORG") || return 1
  operator_token=$(issue admin-token create) || return 1
  SECRETS+=("$tenant_token" "$operator_token")

  "$BIN" serve >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "http://$SCIMGATE_LISTEN/healthz" 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      log "$backend: scimgate serve did not become healthy; server log tail:"
      log_tail "$dir/server.log" >&2
      stop_server
      return 1
    fi
    sleep 0.5
  done

  export SCHEMATHESIS_TENANT_TOKEN="$tenant_token" SCHEMATHESIS_OPERATOR_TOKEN="$operator_token"
  export SCHEMATHESIS_ORG="$ORG" SCHEMATHESIS_DOOMED_ORG="$DOOMED_ORG"
  # SCIM first: the admin pass regenerates (and so revokes) the tenant's tokens.
  run_pass scim "$dir/scim.out" --exclude-path-regex '^/admin/' || rc=1
  run_pass admin "$dir/admin.out" --include-path-regex '^/admin/' || rc=1
  stop_server
  unset SCHEMATHESIS_TENANT_TOKEN SCHEMATHESIS_OPERATOR_TOKEN

  if ((rc != 0)); then
    local pass
    for pass in scim admin; do
      echo "--- $backend $pass: schemathesis output (the end of it):"
      tail -n 150 "$dir/$pass.out" | redact
    done
    echo "--- $backend: server log tail (SCHEMATHESIS_KEEP_TMP=1 keeps the whole log):"
    log_tail "$dir/server.log"
    return 1
  fi
  if grep -q panicked "$dir/server.log"; then
    log "$backend: the server panicked:"
    grep -A5 panicked "$dir/server.log" | head -40 | redact >&2
    return 1
  fi
}

# --- main --------------------------------------------------------------------------------------
ensure_tools
validate_document
((${#BACKENDS[@]} > 0)) || exit 0
ensure_binary

failed=()
for backend in "${BACKENDS[@]}"; do
  run_backend "$backend" || failed+=("$backend")
  unset SCIMGATE_DATABASE_URL SCIMGATE_LISTEN SCIMGATE_PUBLIC_URL
done

if ((${#failed[@]} > 0)); then
  log "FAILED on: ${failed[*]}"
  exit 1
fi
echo "schemathesis: no failures on ${BACKENDS[*]}"
