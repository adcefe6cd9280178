# Shared by the scripts that test a live gateway (compliance.sh, schemathesis.sh,
# openapi-client.sh): a release `scimgate serve` on a fresh SQLite file or PostgreSQL database,
# on free loopback ports (metrics included), provisioned by the CLI, its secrets kept out of every
# log, and everything it made removed on exit.
#
# Source it after setting ROOT (the repository) and LIVE_NAME (the caller's name, for messages and
# the temp dir). KEEP_TMP=1 keeps the temp dir. PGHOST/PGPORT/PGUSER say where PostgreSQL is
# (default 127.0.0.1 / 5432 / postgres, trust auth); CI=true turns an unreachable PostgreSQL from a
# skip into a failure. SCIMGATE_BIN names a binary to use instead of `cargo build --release`.

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
PG_ADMIN_DB="test"  # the existing database psql connects to for CREATE/DROP DATABASE
HEALTH_TIMEOUT=30   # seconds to wait for /healthz

TMP=$(mktemp -d "${TMPDIR:-/tmp}/scimgate-$LIVE_NAME.XXXXXX")
SERVER_PID=""
CHECKER_PID=""  # the checker the caller runs in the background, stopped on exit
PG_DBS=()
SECRETS=()      # every token issued: redact() removes them from anything shown

log() { echo "$LIVE_NAME: $*" >&2; }

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
    kill "$CHECKER_PID" 2>/dev/null || true  # `timeout` passes the TERM on to the checker
    wait "$CHECKER_PID" 2>/dev/null || true
  fi
  stop_server
  local db
  for db in "${PG_DBS[@]}"; do drop_pg_db "$db"; done
  if [[ "${KEEP_TMP:-}" == 1 ]]; then
    log "kept $TMP"
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

# Last lines of a server log, without colour codes, long span lines shortened, secrets redacted.
log_tail() {
  tail -n 40 "$1" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-500 | redact
}

# ensure_venv DIR EXECUTABLE PIN...: a virtualenv in DIR with exactly these pinned packages;
# reinstalls only when EXECUTABLE is missing or a version differs.
ensure_venv() {
  local venv=$1 executable=$2
  shift 2
  if [[ -x "$venv/bin/$executable" ]] && "$venv/bin/python" - "$@" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
    return 0
  fi
  log "installing $* into $venv"
  mkdir -p "$(dirname "$venv")"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

# Sets BIN to the scimgate binary, building the release one unless SCIMGATE_BIN names one.
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

# issue VAR ARGS...: runs a scimgate command that prints a token alone on its last stdout line
# and puts the token in VAR (and in SECRETS). Stdout is never shown, stderr only on failure.
issue() {
  # Underscored locals, so that no caller's VAR is shadowed by one of them.
  local _issue_var=$1 _issue_out _issue_token
  shift
  if ! _issue_out=$("$BIN" "$@" 2>"$TMP/issue.err"); then
    log "\`scimgate $*\` failed:"
    redact <"$TMP/issue.err" >&2
    return 1
  fi
  _issue_token=$(printf '%s\n' "$_issue_out" | tail -n 1 | tr -d '[:space:]')
  [[ -n "$_issue_token" ]] || { log "\`scimgate $*\` printed no token"; return 1; }
  SECRETS+=("$_issue_token")
  printf -v "$_issue_var" '%s' "$_issue_token"
}

# prepare_gateway BACKEND DIR: a fresh database for BACKEND (sqlite or postgres), migrated, and
# the environment `scimgate` reads pointed at it and at a free loopback port. Returns 0 when
# ready, 1 on failure, 2 when PostgreSQL is unreachable and that is a skip (said on stdout).
prepare_gateway() {
  local backend=$1 dir=$2 db_url port
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
        echo "SKIPPED $LIVE_NAME on postgres: PostgreSQL not reachable"
        return 2
      fi
      local db
      db="scimgate_${LIVE_NAME}_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
      PG_DBS+=("$db")  # registered before creation so the EXIT trap drops it
      psql -d "$PG_ADMIN_DB" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null \
        || { log "could not create database $db"; return 1; }
      db_url="postgres://$PGUSER@$PGHOST:$PGPORT/$db"
      ;;
  esac
  export SCIMGATE_DATABASE_URL="$db_url"
  port=$(free_port) || return 1
  export SCIMGATE_LISTEN="127.0.0.1:$port"
  # Metrics on a free port too, so that another gateway or a Prometheus on this machine (9464,
  # 9090) never stops the run; the checkers do not read them.
  local metrics_port
  metrics_port=$(free_port) || return 1
  [[ "$metrics_port" != "$port" ]] || metrics_port=$(free_port) || return 1
  export SCIMGATE_METRICS_LISTEN="127.0.0.1:$metrics_port"
  # meta.location (which checkers follow) must point at this server.
  export SCIMGATE_PUBLIC_URL="http://$SCIMGATE_LISTEN"
  # The checkers test conformance, not the tenant limit: they send requests as fast as they can
  # (scim2-tester's cleanup, hundreds of DELETEs back to back; schemathesis, thousands of cases).
  export SCIMGATE_RATE_LIMIT_PER_SECOND=100000 SCIMGATE_RATE_LIMIT_BURST=100000
  admin migrate
}

# start_gateway BACKEND DIR: `scimgate serve` in the background (log in DIR/server.log), waiting
# (bounded) until it answers /healthz and failing fast if it dies.
start_gateway() {
  local backend=$1 dir=$2
  "$BIN" serve >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "http://$SCIMGATE_LISTEN/healthz" 2>/dev/null; do
    local failure=""
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      failure="exited before answering /healthz"
    elif ((SECONDS >= deadline)); then
      failure="not healthy within ${HEALTH_TIMEOUT}s"
    fi
    if [[ -n "$failure" ]]; then
      log "$backend: scimgate serve $failure; server log tail:"
      log_tail "$dir/server.log" >&2
      stop_server
      return 1
    fi
    sleep 0.5
  done
}

# Forget the environment of the last backend.
reset_gateway_env() {
  unset SCIMGATE_DATABASE_URL SCIMGATE_LISTEN SCIMGATE_METRICS_LISTEN SCIMGATE_PUBLIC_URL SCIMGATE_RATE_LIMIT_PER_SECOND SCIMGATE_RATE_LIMIT_BURST
}
