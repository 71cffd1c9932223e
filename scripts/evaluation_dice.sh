#!/usr/bin/env bash
# DICE-Talk's tables (issue 17, item 7; docs/evaluation/dice/), from the shipped weights/dice:
#   Table 1 layout: evaluate-frames on the video corpus's test split (identities never seen in training), clips of
#     DICE-Talk's four emotions taken in turn (CLIPS of them, each cut to FRAMES frames), with the Emo-Score columns
#     from a video emotion judge trained on the tracked frames of JUDGE_CLIPS train clips per emotion: the ground
#     truth, the still portrait, DreamTalk + warp, and DICE-Talk with the emotion by prompt (@emotion=clip), by
#     video (@emotion=video: a same-emotion clip of another identity) and from the speech alone (no emotion asked);
#   Table 5: scripts/dice_embedder_table.py on the motion corpus's test split (weights/dice/embedder).
# Table 4 (without the emotion bank, without L_cls, learnable CA, without the emotion prior) needs four more
# dice.video trainings (the shipped command with --no-bank, --no-discriminator, --learnable-ca or
# --deterministic-prior, each folder assembled like weights/dice); ROWS4="NAME=DIR ..." adds each as a row (emotion
# by prompt) of the Table 1 run.
# JUDGE=DIR reuses a saved video emotion judge (e.g. docs/evaluation/dice/table1/emotion_judge) instead of training one,
# so two models are scored by the same judge; OUT (default docs/evaluation/dice/table1) is where Table 1 goes; W the
# model folder (default weights/dice); TABLES="1" or "5" makes only that table.
# VIDEO: scripts/video_corpus.sh's output; MOTION: the motion corpus (scripts/train_default.sh's command).
set -euo pipefail
cd "$(dirname "$0")/.."
TH=.venv/bin/talkinghead
VIDEO=${VIDEO:-/tmp/talkinghead-video}
MOTION=${MOTION:-/tmp/talkinghead-train/corpus}
CLIPS=${CLIPS:-16} FRAMES=${FRAMES:-50} JUDGE_CLIPS=${JUDGE_CLIPS:-12}
W=${W:-weights/dice} TABLES=${TABLES:-1 5}
[ -f "$W/talkinghead.json" ] || { echo "No DICE-Talk model in $W: run scripts/train_dice.sh first." >&2; exit 2; }
[ -f "$VIDEO/corpus/dataset.json" ] || { echo "No video corpus in $VIDEO: run scripts/video_corpus.sh." >&2; exit 2; }
OUT=${OUT:-docs/evaluation/dice/table1}
EXTRA=()
if [ -n "${JUDGE:-}" ]; then EXTRA+=(--emotion-judge "$JUDGE"); else EXTRA+=(--train-emotion-judge "$JUDGE_CLIPS"); fi
for spec in ${ROWS4:-}; do EXTRA+=(--row "${spec%%=*}=${spec#*=}+self@emotion=clip"); done
[[ " $TABLES " == *" 1 "* ]] && $TH evaluate-frames --data "$VIDEO/corpus" --split test --max-clips "$CLIPS" --max-frames "$FRAMES" \
    --emotions neutral happy surprised angry \
    --row "Ground truth=dataset" --row "Static=static" --row "DreamTalk + warp=dreamtalk+warp" \
    --row "DICE-Talk, emotion by prompt=$W+self@emotion=clip" \
    --row "DICE-Talk, emotion by video=$W+self@emotion=video" \
    --row "DICE-Talk, emotion from the speech=$W+self" "${EXTRA[@]}" -o "$OUT"
[[ " $TABLES " == *" 5 "* ]] || exit 0
[ -f "$MOTION/dataset.json" ] || $TH corpus --out "$MOTION" --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0
OMP_NUM_THREADS=1 .venv/bin/python scripts/dice_embedder_table.py --data "$MOTION" \
    --embedder "emotion positives (shipped)=$W/embedder" -o docs/evaluation/dice/embedder
