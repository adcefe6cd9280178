#!/usr/bin/env bash
# Says which backing services the test suite will use. Tests that need a missing service skip
# with a message on a developer machine; under CI=true a missing service fails the run instead.
set -euo pipefail

pg_url="${SCIMGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
missing=0

if command -v pg_isready >/dev/null 2>&1; then
  if pg_isready -d "$pg_url" -q; then
    echo "services: PostgreSQL reachable ($pg_url)"
  else
    echo "services: PostgreSQL NOT reachable at $pg_url: PostgreSQL tests and compliance will be SKIPPED"
    missing=1
  fi
elif (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "services: PostgreSQL port 5432 open"
else
  echo "services: PostgreSQL NOT reachable on 127.0.0.1:5432: PostgreSQL tests and compliance will be SKIPPED"
  missing=1
fi

if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "services: Redis reachable (127.0.0.1:6379)"
else
  echo "services: Redis NOT reachable on 127.0.0.1:6379: shared-limit tests will be SKIPPED"
  missing=1
fi

if command -v redis-server >/dev/null 2>&1; then
  echo "services: redis-server found (the Redis outage test runs its own)"
else
  echo "services: redis-server NOT found: the Redis outage test will be SKIPPED"
  missing=1
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "services: python3 NOT found: the scim2-tester compliance run will be SKIPPED"
  missing=1
fi

if [[ "$missing" == 1 && "${CI:-}" == "true" ]]; then
  echo "services: CI=true and a required service is missing: failing" >&2
  exit 1
fi
