#!/usr/bin/env bash
# The test command: set up .venv (if needed), then lint, type-check and run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow" tests/io).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff" >&2
.venv/bin/ruff check src tests scripts
echo "== mypy" >&2
.venv/bin/mypy src/talkinghead
echo "== numba warm-up" >&2
.venv/bin/python scripts/warm_numba.py
bash scripts/browser.sh
echo "== pytest" >&2
.venv/bin/python -m pytest -q -n 2 "$@"
