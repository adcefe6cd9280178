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
LIVE_NAME=compliance
KEEP_TMP=${COMPLIANCE_KEEP_TMP:-}
VENV="$ROOT/target/scim2-venv"
# scim2-cli only puts floors on its SCIM dependencies; pin them too so the suite (which checks
# are run, and how) cannot change under us between runs.
PIP_PINS=(scim2-cli==0.6.0 scim2-tester==0.5.2 scim2-client==0.13.2 scim2-models==0.12.3)
ORG=compliance
CHECKER_TIMEOUT=900    # seconds for the whole `scim test` run
# One line per check result: "<STATUS> <check_name>" (Status enum of scim2-tester 0.5.x).
RESULT_RE='^(SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED) [A-Za-z_][A-Za-z0-9_]*$'

usage() { echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2; }

case "${1:-all}" in
  sqlite) BACKENDS=(sqlite) ;;
  postgres) BACKENDS=(postgres) ;;
  all) BACKENDS=(sqlite postgres) ;;
  -h | --help) echo "usage: $0 [sqlite|postgres|all]"; exit 0 ;;
  *) usage ;;
esac
[[ $# -le 1 ]] || usage

# The temp dir, cleanup on exit, redaction, and starting the gateway.
# shellcheck source=lib/live-gateway.sh
source "$ROOT/scripts/lib/live-gateway.sh"

# --- one backend -------------------------------------------------------------------------------
# Prints the result blocks (status line + its indented reason) of every non-SUCCESS check.
non_success_blocks() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk -v re="$RESULT_RE" '
    $0 ~ re { show = ($1 != "SUCCESS") }
    show' | head -n 200
}

# Called as `run_backend ... || ...`, where `set -e` is off: every step checks its own status.
run_backend() {
  local backend=$1 dir="$TMP/$1" token rc=0
  mkdir -p "$dir"

  prepare_gateway "$backend" "$dir" || { [[ $? == 2 ]] && return 0; return 1; }
  admin tenant create "$ORG" || return 1
  issue token token create "$ORG" || return 1
  # SCIM_CLI_HEADERS splits headers on ';', so such a token could not be passed whole.
  [[ "$token" != *";"* ]] || { log "the token contains ';', which SCIM_CLI_HEADERS cannot carry"; return 1; }
  start_gateway "$backend" "$dir" || return 1

  # The header goes through the environment, not argv, so `ps` cannot show the token.
  # Run in the background and `wait`, so that Ctrl-C/TERM reach the cleanup trap at once.
  SCIM_CLI_URL="http://$SCIMGATE_LISTEN/scim/v2/$ORG" \
    SCIM_CLI_HEADERS="Authorization: Bearer $token" \
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
}

# --- main --------------------------------------------------------------------------------------
ensure_venv "$VENV" scim "${PIP_PINS[@]}"
ensure_binary

failed=()
for backend in "${BACKENDS[@]}"; do
  run_backend "$backend" || failed+=("$backend")
  reset_gateway_env
done

if ((${#failed[@]} > 0)); then
  log "FAILED on: ${failed[*]}"
  exit 1
fi
