#!/usr/bin/env bash
# Makes sure a headless Chromium and its driver are there for the browser tests (tests/serve/test_serve_browser.py):
# Debian's chromium and chromium-driver (STACK.md). When they are missing and this runs as root with apt-get, it
# installs them; otherwise it says so and the browser tests are skipped with that reason. Never fails the caller.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium and chromium-driver (apt-get) for the browser tests ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 ||
    { timeout 300 apt-get update -q >/dev/null 2>&1 &&
      timeout 900 apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } ||
    echo "setup: could not install chromium; the browser tests will be skipped." >&2
else
  echo "setup: no chromium/chromedriver and no way to install them here; the browser tests will be skipped." >&2
fi
exit 0
