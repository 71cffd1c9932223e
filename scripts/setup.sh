#!/usr/bin/env bash
# Creates .venv at the repository root and installs the exact pinned dependencies.
# Needs only Python 3.11. Re-running when nothing changed returns at once (a stamp file holds the
# hash of the lock file and pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "talkinghead needs Python 3.11 (set PYTHON=/path/to/python3.11)." >&2
  return 1
}

stamp=.venv/.talkinghead-installed
want=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

PY=$(pick_python)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "setup: installing torch 2.13.0 (CPU build) ..." >&2
.venv/bin/python -m pip install -q torch==2.13.0
echo "setup: installing the pinned dependencies (requirements/lock.txt) ..." >&2
# --no-deps: the lock is complete; it keeps mediapipe from pulling jax and the libGL opencv build.
grep -v '^torch==' requirements/lock.txt > .venv/lock-without-torch.txt
.venv/bin/python -m pip install -q --no-deps -r .venv/lock-without-torch.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "setup: done (.venv)" >&2
