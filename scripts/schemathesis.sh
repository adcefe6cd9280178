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
LIVE_NAME=schemathesis
KEEP_TMP=${SCHEMATHESIS_KEEP_TMP:-}
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
# One worker: with several, the cases each worker draws depend on thread timing, so the same seed
# did not always give the same run; and CPython 3.11's AST conversion is not thread-safe
# (CPython #106905, "AST constructor recursion depth mismatch"), which schemathesis hits when
# workers compile checks at once. With one worker and a fixed seed, a run is reproducible: the
# same document gives the same case count on any Python >= 3.11.
PASS_TIMEOUT=900    # seconds for one schemathesis pass, whatever it is doing
REQUEST_TIMEOUT=10  # seconds for one request

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

# The temp dir, cleanup on exit, redaction, and starting the gateway.
# shellcheck source=lib/live-gateway.sh
source "$ROOT/scripts/lib/live-gateway.sh"

# --- tools -------------------------------------------------------------------------------------
validate_document() {
  if "$VENV/bin/openapi-spec-validator" "$DOCUMENT" >"$TMP/validate.out" 2>&1; then
    echo "schemathesis: $(realpath --relative-to="$ROOT" "$DOCUMENT") is a valid OpenAPI document"
  else
    log "openapi/scimgate.yaml is not a valid OpenAPI document:"
    cat "$TMP/validate.out" >&2
    return 1
  fi
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
    --workers 1 \
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
  local backend=$1 dir="$TMP/$1" rc=0
  BACKEND_NAME=$backend
  mkdir -p "$dir"

  prepare_gateway "$backend" "$dir" || { [[ $? == 2 ]] && return 0; return 1; }
  # Generated webhook URLs point anywhere: no delivery is ever attempted from this server.
  export SCIMGATE_WEBHOOK_WORKERS=0
  # schemathesis sends requests without (valid) tokens on purpose, thousands of them from one
  # address: the failed-authentication limit may not turn the run into 429s either.
  export SCIMGATE_AUTH_FAILURE_BURST=1000000 SCIMGATE_AUTH_FAILURE_ADDRESS_BURST=1000000

  admin tenant create "$ORG" || return 1
  admin tenant create "$DOOMED_ORG" || return 1
  local tenant_token operator_token
  issue tenant_token token create "$ORG" || return 1
  issue operator_token admin-token create || return 1
  start_gateway "$backend" "$dir" || return 1

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
ensure_venv "$VENV" schemathesis "${PIP_PINS[@]}"
validate_document
((${#BACKENDS[@]} > 0)) || exit 0
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
echo "schemathesis: no failures on ${BACKENDS[*]}"
