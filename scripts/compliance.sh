#!/usr/bin/env bash
# SCIM 2.0 compliance run: starts a real `scimgate serve` on a fresh database and runs the
# scim2-tester suite (through `scim test` from the pinned PyPI package scim2-cli) against it.
#
# Usage: scripts/compliance.sh [sqlite|postgres|all]      (default: all)
#
# Environment:
#   SCIMGATE_BIN          use this scimgate binary instead of `cargo build --release`
#   CI=true               an unreachable PostgreSQL is a failure instead of a skip
#   PGHOST/PGPORT/PGUSER  where PostgreSQL is (default 127.0.0.1 / 5432 / postgres, trust auth)
#   COMPLIANCE_KEEP_TMP=1 keep the temp dir (checker outputs, server logs) for debugging
#
# Exit status: 0 when every check of every selected backend is SUCCESS, 1 otherwise, 2 on bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/target/scim2-venv"
# scim2-cli only puts floors on its SCIM dependencies; pin them too so the suite (which checks
# are run, and how) cannot change under us between runs.
PIP_PINS=(scim2-cli==0.6.0 scim2-tester==0.5.2 scim2-client==0.13.2 scim2-models==0.12.3)
ORG=compliance
HEALTH_TIMEOUT=30      # seconds to wait for /healthz
CHECKER_TIMEOUT=900    # seconds for the whole `scim test` run
# One line per check result: "<STATUS> <check_name>" (Status enum of scim2-tester 0.5.x).
RESULT_RE='^(SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED) [A-Za-z_][A-Za-z0-9_]*$'

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
PG_ADMIN_DB="test"  # the existing database psql connects to for CREATE/DROP DATABASE

usage() { echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2; }

case "${1:-all}" in
  sqlite) BACKENDS=(sqlite) ;;
  postgres) BACKENDS=(postgres) ;;
  all) BACKENDS=(sqlite postgres) ;;
  -h | --help) echo "usage: $0 [sqlite|postgres|all]"; exit 0 ;;
  *) usage ;;
esac
[[ $# -le 1 ]] || usage

# --- cleanup: whatever happens, stop our server, drop our databases, remove our files ---------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scimgate-compliance.XXXXXX")
SERVER_PID=""
CHECKER_PID=""
PG_DBS=()
TOKEN=""

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  # Give it a few seconds to shut down gracefully, then insist.
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

drop_pg_db() {
  # WITH (FORCE) (PostgreSQL 13+) also ends connections a killed server may have left behind.
  psql -d "$PG_ADMIN_DB" -qAt -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 \
    || psql -d "$PG_ADMIN_DB" -qAt -c "DROP DATABASE IF EXISTS \"$1\"" >/dev/null 2>&1 || true
}

cleanup() {
  if [[ -n "$CHECKER_PID" ]]; then
    kill "$CHECKER_PID" 2>/dev/null || true  # `timeout` passes the TERM on to `scim test`
    wait "$CHECKER_PID" 2>/dev/null || true
  fi
  stop_server
  local db
  for db in "${PG_DBS[@]}"; do drop_pg_db "$db"; done
  if [[ "${COMPLIANCE_KEEP_TMP:-}" == 1 ]]; then
    echo "compliance: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Never let the bearer token reach the terminal or CI logs, whatever prints it.
redact() {
  local line
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ -n "$TOKEN" ]]; then line=${line//"$TOKEN"/[REDACTED]}; fi
    printf '%s\n' "$line"
  done
}

log() { echo "compliance: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------
ensure_checker() {
  # Reinstall only when the venv lacks one of the pinned versions.
  if [[ -x "$VENV/bin/scim" ]] && "$VENV/bin/python" - "${PIP_PINS[@]}" <<'PY' 2>/dev/null; then
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
  # Bind port 0 and report what the kernel picked; racy in theory, fine for a local run.
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_reachable() {
  command -v psql >/dev/null 2>&1 \
    && psql -d "$PG_ADMIN_DB" -qAt -c 'SELECT 1' >/dev/null 2>&1
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

# Last lines of a server log, without colour codes, long span lines shortened, token redacted.
log_tail() {
  tail -n 40 "$1" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-500 | redact
}

# --- one backend -------------------------------------------------------------------------------
# Prints the result blocks (status line + its indented reason) of every non-SUCCESS check.
non_success_blocks() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk -v re="$RESULT_RE" '
    $0 ~ re { show = ($1 != "SUCCESS") }
    show' | head -n 200
}

# Called as `run_backend ... || ...`, where `set -e` is off: every step checks its own status.
run_backend() {
  local backend=$1 dir="$TMP/$1" db_url port token_out rc=0
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
        echo "SKIPPED compliance on postgres: PostgreSQL not reachable"
        return 0
      fi
      local db
      db="scimgate_compliance_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
      PG_DBS+=("$db")  # registered before creation so the EXIT trap drops it
      psql -d "$PG_ADMIN_DB" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null \
        || { log "could not create database $db"; return 1; }
      db_url="postgres://$PGUSER@$PGHOST:$PGPORT/$db"
      ;;
  esac

  export SCIMGATE_DATABASE_URL="$db_url"
  port=$(free_port) || return 1
  export SCIMGATE_LISTEN="127.0.0.1:$port"
  # meta.location (which the suite turns into Group member references) must point at this server.
  export SCIMGATE_PUBLIC_URL="http://$SCIMGATE_LISTEN"

  admin migrate || return 1
  admin tenant create "$ORG" || return 1
  # The suite checks conformance, not the limit: its cleanup sends hundreds of DELETEs back to
  # back, faster than the default tenant limit allows.
  admin tenant set "$ORG" --rate-limit-per-second 100000 --rate-limit-burst 100000 || return 1
  # The token is alone on the last stdout line; stdout is never shown, stderr only on failure.
  if ! token_out=$("$BIN" token create "$ORG" 2>"$dir/token.err"); then
    log "\`scimgate token create $ORG\` failed:"
    redact <"$dir/token.err" >&2
    return 1
  fi
  TOKEN=$(printf '%s\n' "$token_out" | tail -n 1 | tr -d '[:space:]')
  [[ -n "$TOKEN" ]] || { log "\`scimgate token create\` printed no token"; return 1; }
  # SCIM_CLI_HEADERS splits headers on ';', so such a token could not be passed whole.
  [[ "$TOKEN" != *";"* ]] || { log "the token contains ';', which SCIM_CLI_HEADERS cannot carry"; return 1; }

  "$BIN" serve >"$dir/server.log" 2>&1 &
  SERVER_PID=$!

  # Wait (bounded) until the server answers /healthz, failing fast if it died.
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "http://$SCIMGATE_LISTEN/healthz" 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "$backend: scimgate serve exited before answering /healthz; server log tail:"
      log_tail "$dir/server.log" >&2
      stop_server
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$backend: scimgate serve not healthy within ${HEALTH_TIMEOUT}s; server log tail:"
      log_tail "$dir/server.log" >&2
      stop_server
      return 1
    fi
    sleep 0.5
  done

  # The header goes through the environment, not argv, so `ps` cannot show the token.
  # Run in the background and `wait`, so that Ctrl-C/TERM reach the cleanup trap at once.
  SCIM_CLI_URL="http://$SCIMGATE_LISTEN/scim/v2/$ORG" \
    SCIM_CLI_HEADERS="Authorization: Bearer $TOKEN" \
    timeout "$CHECKER_TIMEOUT" "$VENV/bin/scim" test >"$dir/checker.out" 2>&1 &
  CHECKER_PID=$!
  wait "$CHECKER_PID" || rc=$?
  CHECKER_PID=""
  stop_server

  # Count results per status; `scim test` exits 1 when any result is not SUCCESS, and also
  # when discovery itself fails (then it prints no result line at all).
  local results="$dir/results" success other summary
  sed 's/\x1b\[[0-9;]*m//g' "$dir/checker.out" | grep -E "$RESULT_RE" >"$results" || true
  success=$(grep -c '^SUCCESS ' "$results" || true)
  other=$(grep -vc '^SUCCESS ' "$results" || true)
  summary="compliance $backend: $success SUCCESS, $other other"
  if ((other > 0)); then
    summary+=" ($(grep -v '^SUCCESS ' "$results" | cut -d' ' -f1 | sort | uniq -c \
      | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}'))"
  fi
  echo "$summary"

  if ((rc != 0 || other > 0 || success == 0)); then
    if ((other > 0)); then
      echo "--- $backend: checks that did not succeed:"
      non_success_blocks "$dir/checker.out" | redact
    else
      echo "--- $backend: checker exited $rc; its output:"
      tail -n 60 "$dir/checker.out" | redact
    fi
    echo "--- $backend: server log tail (COMPLIANCE_KEEP_TMP=1 keeps the whole log):"
    log_tail "$dir/server.log"
    return 1
  fi
  TOKEN=""
}

# --- main --------------------------------------------------------------------------------------
ensure_checker
ensure_binary

failed=()
for backend in "${BACKENDS[@]}"; do
  run_backend "$backend" || failed+=("$backend")
  TOKEN=""
  unset SCIMGATE_DATABASE_URL SCIMGATE_LISTEN SCIMGATE_PUBLIC_URL
done

if ((${#failed[@]} > 0)); then
  log "FAILED on: ${failed[*]}"
  exit 1
fi
