#!/usr/bin/env bash
# Re-makes the shipped default DreamTalk checkpoints in weights/dreamtalk/ (cpu preset) from the
# synthetic corpus: the exact commands and seeds that made the committed weights.
# Takes about 25 minutes on a quiet 2-core CPU. Intermediate files go to ${WORK:-/tmp/talkinghead-train}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TH=.venv/bin/talkinghead
WORK=${WORK:-/tmp/talkinghead-train}
mkdir -p "$WORK"
$TH corpus --out "$WORK/corpus" --speakers 40 --sentences 3 --seed 0 --workers 2
$TH train lip-expert --data "$WORK/corpus" --out "$WORK/lip_expert" --preset cpu --seed 0
$TH train denoiser --data "$WORK/corpus" --out "$WORK/denoiser" --preset cpu --seed 0 --lip-expert "$WORK/lip_expert"
$TH train style-predictor --data "$WORK/corpus" --out "$WORK/style_predictor" --preset cpu --seed 0 \
    --denoiser "$WORK/denoiser"
rm -rf weights/dreamtalk.new && mkdir -p weights/dreamtalk.new
cp -r "$WORK/lip_expert" "$WORK/denoiser" "$WORK/style_predictor" weights/dreamtalk.new/
$TH build-style-bank --data "$WORK/corpus" --checkpoint weights/dreamtalk.new
rm -rf weights/dreamtalk && mv weights/dreamtalk.new weights/dreamtalk
