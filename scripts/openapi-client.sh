#!/usr/bin/env bash
# The OpenAPI document as a client generator reads it: generates a Python client from
# openapi/scimgate.yaml with openapi-python-client (pinned, from PyPI), refusing any warning the
# generator reports, then drives a live `scimgate serve` with it on a fresh database per backend
# (scripts/openapi_client_check.py): create, list and patch a user, read the event feed.
#
# Usage: scripts/openapi-client.sh [sqlite|postgres|all]      (default: all)
#
# Environment:
#   SCIMGATE_BIN              use this scimgate binary instead of `cargo build --release`
#   CI=true                   an unreachable PostgreSQL is a failure instead of a skip
#   PGHOST/PGPORT/PGUSER      where PostgreSQL is (default 127.0.0.1 / 5432 / postgres, trust auth)
#   OPENAPI_CLIENT_KEEP_TMP=1 keep the temp dir (the generated client, server logs) for debugging
#
# Exit status: 0 when the client was generated cleanly and every check passed on every selected
# backend, 1 otherwise, 2 on bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIVE_NAME=openapi-client
KEEP_TMP=${OPENAPI_CLIENT_KEEP_TMP:-}
DOCUMENT="$ROOT/openapi/scimgate.yaml"
VENV="$ROOT/target/openapi-client-venv"
# The generator and what the generated client imports, pinned so that a run cannot change under us.
PIP_PINS=(openapi-python-client==0.29.1 httpx==0.28.1 attrs==26.1.0)
ORG=client

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

generate_client() {
  local out="$TMP/generate.out"
  mkdir -p "$TMP/python"
  # --meta none: the bare package, importable from $TMP/python. Its post-generation hooks run
  # ruff, installed in the same virtualenv.
  if ! PATH="$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate --path "$DOCUMENT" --meta none \
    --output-path "$TMP/python/scimgate_client" >"$out" 2>&1; then
    log "openapi-python-client could not generate a client:"
    cat "$out" >&2
    return 1
  fi
  # It generates what it can and reports the rest as warnings (a schema it dropped, a response
  # it cannot parse): any of them is a document a generator does not fully accept.
  if grep -qiE "warning|unable to|could not" "$out"; then
    log "openapi-python-client reported problems with the document:"
    grep -v '^[│╭╰]' "$out" >&2
    return 1
  fi
  echo "openapi-client: generated a Python client from $(realpath --relative-to="$ROOT" "$DOCUMENT")"
}

run_backend() {
  local backend=$1 dir="$TMP/$1"
  mkdir -p "$dir"
  prepare_gateway "$backend" "$dir" || { [[ $? == 2 ]] && return 0; return 1; }
  export SCIMGATE_WEBHOOK_WORKERS=0
  admin tenant create "$ORG" || return 1
  local tenant_token operator_token
  issue tenant_token token create "$ORG" || return 1
  issue operator_token admin-token create || return 1
  start_gateway "$backend" "$dir" || return 1

  local rc=0
  SCIMGATE_BASE="http://$SCIMGATE_LISTEN" SCIMGATE_ORG="$ORG" \
    SCIMGATE_TENANT_TOKEN="$tenant_token" SCIMGATE_OPERATOR_TOKEN="$operator_token" \
    PYTHONPATH="$TMP/python" PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/bin/python" "$ROOT/scripts/openapi_client_check.py" >"$dir/check.out" 2>&1 || rc=$?
  stop_server
  redact <"$dir/check.out" | sed "s/^/$backend: /"
  if ((rc != 0)); then
    echo "--- $backend: server log tail (OPENAPI_CLIENT_KEEP_TMP=1 keeps the whole log):"
    log_tail "$dir/server.log"
    return 1
  fi
}

ensure_venv "$VENV" openapi-python-client "${PIP_PINS[@]}"
generate_client
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
