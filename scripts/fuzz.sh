#!/usr/bin/env bash
# Fuzz the pure protocol crate (crates/proto) with cargo-fuzz / libFuzzer, one target after the
# other, each for a bounded time. Run by hand (`make fuzz`), not part of `make test`.
#
# Usage: scripts/fuzz.sh [TARGET...]          (default: every target in crates/proto/fuzz)
#
# Environment:
#   FUZZ_SECONDS=60       how long each target runs
#   FUZZ_SANITIZER=address  cargo-fuzz sanitizer (address, none, ...)
#   CARGO_TARGET_DIR      where cargo-fuzz builds (default: target/ of the repository)
#
# cargo-fuzz needs nightly-only compiler flags (-Zsanitizer, sanitizer coverage). On a stable
# toolchain this script sets RUSTC_BOOTSTRAP=1, which lets stable rustc accept them.
#
# Each target reads its committed seeds (crates/proto/fuzz/seeds/<target>, requests real IdPs
# send) and keeps what it learns in crates/proto/fuzz/corpus/<target> (not committed). A crash
# stops the run: libFuzzer prints the panic, cargo-fuzz the reproducer command, and the input
# is saved under crates/proto/fuzz/artifacts/<target>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_DIR="$ROOT/crates/proto/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-address}"
CARGO_FUZZ_VERSION=0.13.2

log() { echo "fuzz: $*" >&2; }

[[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]] || { log "FUZZ_SECONDS must be a positive integer"; exit 2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

cd "$ROOT/crates/proto"
if (($# > 0)); then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi

summary=()
for target in "${TARGETS[@]}"; do
  corpus="$FUZZ_DIR/corpus/$target"
  seeds="$FUZZ_DIR/seeds/$target"
  mkdir -p "$corpus"
  dirs=("$corpus")
  [[ -d "$seeds" ]] && dirs+=("$seeds")
  # Grammar inputs may pass the 8 KiB filter limit, so the size check is exercised too.
  max_len=()
  case "$target" in filter | path) max_len=(-max_len=8448) ;; esac
  log "$target: ${SECONDS_EACH}s"
  out="$FUZZ_DIR/corpus/$target.log"
  set +e
  cargo fuzz run --sanitizer "$SANITIZER" "$target" "${dirs[@]}" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -dict="$FUZZ_DIR/scim.dict" -print_final_stats=1 \
    "${max_len[@]}" 2>&1 | tee "$out" | grep --line-buffered -E '^#[0-9]+[[:space:]]+(INITED|DONE)|panicked|ERROR|SUMMARY'
  rc=${PIPESTATUS[0]}
  set -e
  runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$out" | grep -oE '[0-9]+$' || echo "?")
  speed=$(grep -oE '^stat::average_exec_per_sec: *[0-9]+' "$out" | grep -oE '[0-9]+$' || echo "?")
  files=$(find "$corpus" -type f | wc -l)
  if ((rc != 0)); then
    log "$target FAILED (exit $rc); full log: $out"
    tail -n 40 "$out" >&2
    exit 1
  fi
  summary+=("$(printf '%-18s %4ss  %10s runs  %7s exec/s  corpus %s files' "$target" "$SECONDS_EACH" "$runs" "$speed" "$files")")
done

echo "fuzz summary (no crash):"
printf '  %s\n' "${summary[@]}"
