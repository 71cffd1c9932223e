#!/usr/bin/env bash
# Makes FD2Talk's stage-1 checkpoints in weights/fd2talk/ (cpu preset) from the standard synthetic corpus: the
# Expression Transformer (with the sync loss of the frozen, shipped DreamTalk lip expert in
# weights/dreamtalk/lip_expert) and the Pose Transformer, with the exact commands and seed behind the weights.
# One thread per training, the two side by side (about 10-11 minutes each on the 2-core machine).
# Intermediate files go to ${WORK:-/tmp/talkinghead-fd2talk}; CORPUS may point at an existing corpus made by the
# same command (e.g. the one the DreamTalk lip expert was trained on).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
TH=.venv/bin/talkinghead
WORK=${WORK:-/tmp/talkinghead-fd2talk}
CORPUS=${CORPUS:-$WORK/corpus}
LIP_EXPERT=weights/dreamtalk/lip_expert
[ -d "$LIP_EXPERT" ] || { echo "FD2Talk's sync loss needs the shipped lip expert in $LIP_EXPERT." >&2; exit 2; }
mkdir -p "$WORK"
[ -f "$CORPUS/dataset.json" ] || $TH corpus --out "$CORPUS" --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0
$TH train fd2talk.expression --data "$CORPUS" --out "$WORK/expression" --preset cpu --seed 0 \
    --lip-expert "$LIP_EXPERT" > "$WORK/expression.log" 2>&1 &
$TH train fd2talk.pose --data "$CORPUS" --out "$WORK/pose" --preset cpu --seed 0 > "$WORK/pose.log" 2>&1 &
wait %1 && wait %2
rm -rf weights/fd2talk.new && mkdir -p weights/fd2talk.new
cp -r "$WORK/expression" "$WORK/pose" weights/fd2talk.new/
.venv/bin/python - <<'PY'
from talkinghead.motion.fd2talk.generator import write_fd2talk_manifest

write_fd2talk_manifest(
    "weights/fd2talk.new", seed=0, preset="cpu", stage="motion (FD2Talk 3.2, 3.4.1); frames: the default renderer",
    corpus="talkinghead corpus --out CORPUS --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0",
    lip_expert="weights/dreamtalk/lip_expert",
    commands=["talkinghead train fd2talk.expression --data CORPUS --out expression --preset cpu --seed 0 "
              "--lip-expert weights/dreamtalk/lip_expert",
              "talkinghead train fd2talk.pose --data CORPUS --out pose --preset cpu --seed 0"])
PY
rm -rf weights/fd2talk && mv weights/fd2talk.new weights/fd2talk
