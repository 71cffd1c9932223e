#!/usr/bin/env bash
# EMO's tables (issue 16; docs/evaluation/emo/), from the shipped weights/emo and the stage-2 network of
# scripts/train_emo.sh (WORK, default /tmp/talkinghead-emo: its video/ folder, the network before the speed stage):
#   Table 1 layout: evaluate-frames on the video corpus's test split (identities never seen in training), EMO's own
#     face crops against the dataset's, next to the ground truth, the still portrait and DreamTalk + warp;
#   Table 2 (the speed layers): the same command, EMO's head rotation velocity (tracked from its frames) at several
#     assigned speeds (degrees a frame; the training median is about 0.16) and without speed layers (the stage-2
#     network, whose speed layers have not been trained and add nothing), with the shipped model's sampling.
# Set MAIN=0 to skip the first table.
# VIDEO: scripts/video_corpus.sh's output.
set -euo pipefail
cd "$(dirname "$0")/.."
TH=.venv/bin/talkinghead
VIDEO=${VIDEO:-/tmp/talkinghead-video}
WORK=${WORK:-/tmp/talkinghead-emo}
W=weights/emo
[ -f "$W/talkinghead.json" ] || { echo "No EMO model in $W: run scripts/train_emo.sh first." >&2; exit 2; }
[ "${MAIN:-1}" = 0 ] || $TH evaluate-frames --data "$VIDEO/corpus" --split test --max-clips 10 --max-frames 75 \
    --row "Ground truth=dataset" --row "Static=static" --row "DreamTalk + warp=dreamtalk+warp" \
    --row "EMO=$W+self" -o docs/evaluation/emo/frames
NOSPEED=()
if [ -d "$WORK/video" ]; then
    rm -rf "$WORK/nospeed" && mkdir -p "$WORK/nospeed"
    cp -r "$W/vae" "$WORK/nospeed/vae" && cp -r "$WORK/video" "$WORK/nospeed/network"
    .venv/bin/python -c "import json; from talkinghead.video.emo.pipeline import write_emo_manifest as w; \
w('$WORK/nospeed', json.load(open('$W/talkinghead.json')).get('sampling'))"
    NOSPEED=(--row "No speed layers=$WORK/nospeed+self")
fi
$TH evaluate-frames --data "$VIDEO/corpus" --split test --max-clips 5 --max-frames 50 \
    --row "Ground truth=ground-truth+warp" "${NOSPEED[@]}" \
    --row "Speed 0.05=$W+self@speed=0.05" --row "Speed 0.16=$W+self@speed=0.16" \
    --row "Speed 0.5=$W+self@speed=0.5" --row "Speed 1.0=$W+self@speed=1.0" -o docs/evaluation/emo/speed
