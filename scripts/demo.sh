#!/usr/bin/env bash
# The main command: set up .venv (if needed), then make the built-in demo video (out/demo.mp4):
# the astronaut portrait (shipped with scikit-image) speaking a built-in sentence, with the shipped
# default DreamTalk models. Extra arguments go to `talkinghead demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/talkinghead demo "$@"
