#!/usr/bin/env bash
# Installs what the browser test needs (crates/edge/tests/api/browser.rs): Debian's headless-capable
# `chromium` and the matching `chromium-driver`. Without apt or root it says what it skipped, and
# the browser test then skips with a message; under CI=true a missing browser fails the run.
set -euo pipefail

have_browser() {
  [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]
}

if have_browser; then
  echo "browser: $(/usr/bin/chromedriver --version | head -n1)"
  exit 0
fi

if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
  echo "browser: installing chromium and chromium-driver with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  echo "browser: installing chromium and chromium-driver with sudo apt-get"
  sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "browser: SKIPPED installing chromium and chromium-driver (no apt-get, or not root):" \
    "the browser test will be SKIPPED; install them with your package manager"
fi

if have_browser; then
  echo "browser: $(/usr/bin/chromedriver --version | head -n1)"
elif [[ "${CI:-}" == "true" ]]; then
  echo "browser: CI=true and /usr/bin/chromium or /usr/bin/chromedriver is missing: failing" >&2
  exit 1
fi
