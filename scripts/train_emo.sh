#!/usr/bin/env bash
# Makes EMO's shipped model (issue 16; cpu preset) in weights/emo/: the latent VAE trained here (perceptual loss from
# FD2Talk's perceptual network in weights/fd2talk), then the paper's three stages (Sec. 3.3), each starting from the
# one before: image pretraining (Backbone, ReferenceNet, Face Locator), video (temporal modules and audio layers) and
# speed (temporal modules and speed layers); then writes the folder's manifest with the exact commands and seed.
# Data: the video corpus and the prepared real videos of scripts/video_corpus.sh (VIDEO, default
# /tmp/talkinghead-video; made when missing); the last clip of each real video is held out. Steps per part:
# VAE_STEPS, IMAGE_STEPS, VIDEO_STEPS, SPEED_STEPS (the shipped values are the defaults). Intermediate files go to
# ${WORK:-/tmp/talkinghead-emo}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
TH=.venv/bin/talkinghead
VIDEO=${VIDEO:-/tmp/talkinghead-video}
WORK=${WORK:-/tmp/talkinghead-emo}
VAE_STEPS=${VAE_STEPS:-200} IMAGE_STEPS=${IMAGE_STEPS:-1000} VIDEO_STEPS=${VIDEO_STEPS:-400} SPEED_STEPS=${SPEED_STEPS:-100}
[ -d weights/fd2talk/perceptual ] || { echo "EMO's VAE reads FD2Talk's perceptual network (weights/fd2talk/perceptual)." >&2; exit 2; }
[ -f "$VIDEO/corpus/dataset.json" ] && [ -f "$VIDEO/real/dataset.json" ] || WORK=$VIDEO bash scripts/video_corpus.sh
mkdir -p "$WORK"
DATA="--data $VIDEO/corpus --real $VIDEO/real --preset cpu --seed 0"
$TH train emo.vae $DATA --out "$WORK/vae" --steps "$VAE_STEPS" --batch-size 8 \
    --perceptual weights/fd2talk/perceptual > "$WORK/vae.log" 2>&1
$TH train emo.image $DATA --out "$WORK/image" --steps "$IMAGE_STEPS" --vae "$WORK/vae" > "$WORK/image.log" 2>&1
$TH train emo.video $DATA --out "$WORK/video" --steps "$VIDEO_STEPS" --vae "$WORK/vae" \
    --init "$WORK/image" > "$WORK/video.log" 2>&1
$TH train emo.speed $DATA --out "$WORK/network" --steps "$SPEED_STEPS" --vae "$WORK/vae" \
    --init "$WORK/video" > "$WORK/speed.log" 2>&1
rm -rf weights/emo && mkdir -p weights/emo
cp -r "$WORK/vae" "$WORK/network" weights/emo/
.venv/bin/python - "$VAE_STEPS" "$IMAGE_STEPS" "$VIDEO_STEPS" "$SPEED_STEPS" <<'PY'
import sys

from talkinghead.video.emo.pipeline import write_emo_manifest

vae, image, video, speed = sys.argv[1:]
data = "--data VIDEO/corpus --real VIDEO/real --preset cpu --seed 0"
write_emo_manifest("weights/emo", sampling={"strength": 0.7, "precision": "auto"}, seed=0, preset="cpu",
                   video_corpus="scripts/video_corpus.sh (VIDEO=/tmp/talkinghead-video)",
                   commands=[f"talkinghead train emo.vae {data} --out vae --steps {vae} --batch-size 8 "
                             "--perceptual weights/fd2talk/perceptual",
                             f"talkinghead train emo.image {data} --out image --steps {image} --vae vae",
                             f"talkinghead train emo.video {data} --out video --steps {video} --vae vae --init image",
                             f"talkinghead train emo.speed {data} --out network --steps {speed} --vae vae --init video"])
PY
echo "weights/emo now holds EMO's model"
