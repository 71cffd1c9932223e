#!/usr/bin/env bash
# Makes FD2Talk's stage-2 frame generator (3.3, 3.4.2; cpu preset) in weights/fd2talk/, next to the stage-1 DiTs of
# scripts/train_fd2talk.sh: the perceptual network trained here, the autoencoder (E and the reference-conditioned D,
# Eq. 13-15) and the Diffusion UNet (Eq. 16), in that order, each reading the one before, then the autoencoder's
# decoder fine-tuned on its own (--decoder-only: the encoder and so the UNet's latent space stay as they were; the
# shipped decoder since 2026-12-04, sharper than the 800-step one), then the UNet fine-tuned with its loss weighted on
# the mouth (--mouth-weight 9; the shipped UNet since 2026-12-04: it draws the mouth the motion asks for), then
# rewrites the folder's manifest with the exact commands and seed. Data: the video corpus and the prepared real videos of
# scripts/video_corpus.sh (VIDEO, default /tmp/talkinghead-video; made when missing); the last clip of each real video
# is held out for the self-reenactment test. About 3 h on the 2-core machine (the UNet about 50 min, the decoder
# fine-tuning about 30 min, the mouth-weighted UNet fine-tuning about 50 min).
# Intermediate files go to ${WORK:-/tmp/talkinghead-fd2talk-frames}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
TH=.venv/bin/talkinghead
VIDEO=${VIDEO:-/tmp/talkinghead-video}
WORK=${WORK:-/tmp/talkinghead-fd2talk-frames}
[ -d weights/fd2talk/expression ] || { echo "Train FD2Talk's DiTs first (scripts/train_fd2talk.sh)." >&2; exit 2; }
[ -f "$VIDEO/corpus/dataset.json" ] && [ -f "$VIDEO/real/dataset.json" ] || WORK=$VIDEO bash scripts/video_corpus.sh
mkdir -p "$WORK"
DATA="--data $VIDEO/corpus --real $VIDEO/real --preset cpu --seed 0"
$TH train fd2talk.perceptual $DATA --out "$WORK/perceptual" --steps 600 --batch-size 32 > "$WORK/perceptual.log" 2>&1
$TH train fd2talk.autoencoder $DATA --out "$WORK/autoencoder" --steps 800 \
    --perceptual "$WORK/perceptual" > "$WORK/autoencoder.log" 2>&1
$TH train fd2talk.unet $DATA --out "$WORK/unet" --steps "${UNET_STEPS:-1100}" --batch-size 16 --reference-input \
    --autoencoder "$WORK/autoencoder" > "$WORK/unet.log" 2>&1
$TH train fd2talk.autoencoder $DATA --out "$WORK/decoder" --steps 2000 --perceptual "$WORK/perceptual" \
    --decoder-only "$WORK/autoencoder" > "$WORK/decoder.log" 2>&1
$TH train fd2talk.unet $DATA --out "$WORK/unet_mouth" --steps 1200 --batch-size 16 --reference-input \
    --autoencoder "$WORK/autoencoder" --init "$WORK/unet" --mouth-weight 9 > "$WORK/unet_mouth.log" 2>&1
rm -rf weights/fd2talk/perceptual weights/fd2talk/autoencoder weights/fd2talk/unet
cp -r "$WORK/perceptual" weights/fd2talk/
cp -r "$WORK/decoder" weights/fd2talk/autoencoder
cp -r "$WORK/unet_mouth" weights/fd2talk/unet
.venv/bin/python - "${UNET_STEPS:-1100}" <<'PY'
import json
import sys

from talkinghead.motion.fd2talk.generator import write_fd2talk_manifest

manifest = json.load(open("weights/fd2talk/talkinghead.json"))
data = "--data VIDEO/corpus --real VIDEO/real --preset cpu --seed 0"
manifest["stage"] = "motion (FD2Talk 3.2, 3.4.1) and frames (3.3, 3.4.2)"
manifest["video_corpus"] = "scripts/video_corpus.sh (VIDEO=/tmp/talkinghead-video)"
manifest["frames"] = {"perceptual": "perceptual", "autoencoder": "autoencoder", "unet": "unet"}
manifest["frame_sampling"] = {"precision": "auto"}
manifest["frame_commands"] = [
    f"talkinghead train fd2talk.perceptual {data} --out perceptual --steps 600 --batch-size 32",
    f"talkinghead train fd2talk.autoencoder {data} --out autoencoder --steps 800 --perceptual perceptual",
    f"talkinghead train fd2talk.unet {data} --out unet --steps {sys.argv[1]} --batch-size 16 --autoencoder autoencoder --reference-input",
    f"talkinghead train fd2talk.autoencoder {data} --out decoder --steps 2000 --perceptual perceptual --decoder-only autoencoder  # shipped as autoencoder/",
    f"talkinghead train fd2talk.unet {data} --out unet_mouth --steps 1200 --batch-size 16 --autoencoder autoencoder --reference-input --init unet --mouth-weight 9  # shipped as unet/",
]
for key in ("version", "generator", "kind", "components"):
    manifest.pop(key)
write_fd2talk_manifest("weights/fd2talk", **manifest)
PY
echo "weights/fd2talk now holds the frame generator"
