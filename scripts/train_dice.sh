#!/usr/bin/env bash
# Makes DICE-Talk's shipped model (issue 17; cpu preset) in weights/dice/: the disentangled emotion embedder on the
# motion corpus (Sec. 3.1, its own command), then the video diffusion model (UNet, emotion bank, emotion
# discriminator; Eq. 15, one stage as in the paper's 4.1) on the video corpus with EMO's VAE (weights/emo/vae) and the
# embedder frozen; then writes the folder's manifest with the exact commands and seed.
# Data: the motion corpus of scripts/train_default.sh (MOTION, default /tmp/talkinghead-train/corpus; made with the
# same command when missing) and the video corpus and prepared real videos of scripts/video_corpus.sh (VIDEO, default
# /tmp/talkinghead-video; made when missing); the last clip of each real video is held out. Steps: EMBEDDER_STEPS,
# DICE_STEPS (the shipped values are the defaults: 1500 and 500). The embedder takes about 15 minutes on one thread;
# a dice.video step (batch 4) takes 7.7 s on two free cores (15-25 s when other jobs share them), so 500 steps take
# about 65 minutes. Intermediate files go to ${WORK:-/tmp/talkinghead-dice}; an interrupted dice.video run continues
# with the same command plus --resume (constant learning rate, per-step seeding: the same weights).
# The embedder is trained with --positives emotion (positives share the emotion only), not the paper's positives
# (same identity and emotion, Eq. 7): with the paper's, the prior names the speaker of an unseen test clip 98% of the
# time (chance 25%); with emotion-only positives it carries no identity and 100% emotion accuracy (docs/dice.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
TH=.venv/bin/talkinghead
MOTION=${MOTION:-/tmp/talkinghead-train/corpus}
VIDEO=${VIDEO:-/tmp/talkinghead-video}
WORK=${WORK:-/tmp/talkinghead-dice}
EMBEDDER_STEPS=${EMBEDDER_STEPS:-1500} DICE_STEPS=${DICE_STEPS:-500}
[ -f weights/emo/vae/config.json ] || { echo "DICE-Talk learns in EMO's VAE latents (weights/emo/vae): run scripts/train_emo.sh first." >&2; exit 2; }
[ -f "$MOTION/dataset.json" ] || $TH corpus --out "$MOTION" --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0
[ -f "$VIDEO/corpus/dataset.json" ] && [ -f "$VIDEO/real/dataset.json" ] || WORK=$VIDEO bash scripts/video_corpus.sh
mkdir -p "$WORK"
$TH train dice.embedder --data "$MOTION" --out "$WORK/embedder" --preset cpu --seed 0 \
    --steps "$EMBEDDER_STEPS" --positives emotion > "$WORK/embedder.log" 2>&1
$TH train dice.video --data "$VIDEO/corpus" --real "$VIDEO/real" --preset cpu --seed 0 --out "$WORK/network" \
    --steps "$DICE_STEPS" --vae weights/emo/vae --embedder "$WORK/embedder" > "$WORK/network.log" 2>&1
rm -rf weights/dice.new && mkdir -p weights/dice.new
cp -r weights/emo/vae "$WORK/embedder" "$WORK/network" weights/dice.new/
.venv/bin/python - "$EMBEDDER_STEPS" "$DICE_STEPS" <<'PY'
import sys

from talkinghead.video.dice.pipeline import write_dice_manifest

embedder, dice = sys.argv[1:]
write_dice_manifest("weights/dice.new", {"precision": "auto"}, seed=0, preset="cpu",
                    motion_corpus="scripts/train_default.sh (MOTION=/tmp/talkinghead-train/corpus)",
                    video_corpus="scripts/video_corpus.sh (VIDEO=/tmp/talkinghead-video)",
                    vae="weights/emo/vae (scripts/train_emo.sh)",
                    commands=[f"talkinghead train dice.embedder --data MOTION --out embedder --preset cpu --seed 0 "
                              f"--steps {embedder} --positives emotion",
                              f"talkinghead train dice.video --data VIDEO/corpus --real VIDEO/real --preset cpu "
                              f"--seed 0 --out network --steps {dice} --vae weights/emo/vae --embedder embedder"])
PY
rm -rf weights/dice && mv weights/dice.new weights/dice
echo "weights/dice now holds DICE-Talk's model"
