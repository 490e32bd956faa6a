#!/usr/bin/env bash
# Set up a fresh machine and run every check memlens has: lint, types, tests.
# Installs what the tests need itself: Debian's Chromium (HTML reports are checked
# in a real headless browser), Debian's redis-server (the Redis store is tested
# against a real server, which the tests start on a free port) and the package
# with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "== installing ${need_apt[*]} (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== installing memlens with its dev extras"
python3 -m pip install -q -e '.[dev]'
# The optional C accelerators, in place (the tests import from src/). Without a
# compiler memlens uses its pure-Python paths, so a failure here is not fatal.
python3 setup.py -q build_ext --inplace >/dev/null 2>&1 || echo "C extensions not built: pure-Python paths"

echo "== ruff"
python3 -m ruff check src tests benchmarks examples
echo "== mypy (public API)"
python3 -m mypy
echo "== pytest"
export MEMLENS_REQUIRE_BROWSER=1
export MEMLENS_REQUIRE_REDIS=1
python3 -m pytest "$@"
