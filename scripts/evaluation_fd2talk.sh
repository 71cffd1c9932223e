#!/usr/bin/env bash
# FD2Talk's tables (issue 15, item 5-6; docs/evaluation/fd2talk/), from the shipped weights/fd2talk and the
# ablation models made here:
#   Table 1 + Table 2's UNet rows + self-reenactment: evaluate-frames on the video corpus's test split (test
#     identities never seen in training) and on the held-out clips of the real videos;
#   Table 2's DiT row and Table 3: evaluate (motion) on the standard corpus's test split.
# Ablation models (same data, preset, seed and steps as the shipped ones) go to ${ABL:-/tmp/fd2abl}:
#   unet_paper (the two cross-attentions alone, as the paper, when the shipped UNet adds --reference-input),
#   unet_concat (--concat-conditions), nomask/expression (--no-alignment-mask), nosync/expression (--no-sync-loss),
#   single/joint (--single-dit). Set TRAIN=0 to use existing ones. VIDEO: scripts/video_corpus.sh's output.
set -euo pipefail
cd "$(dirname "$0")/.."
TH=.venv/bin/talkinghead
VIDEO=${VIDEO:-/tmp/talkinghead-video}
CORPUS=${CORPUS:-/tmp/talkinghead-eval/corpus}
ABL=${ABL:-/tmp/fd2abl}
W=weights/fd2talk
LE=weights/dreamtalk/lip_expert
mkdir -p "$ABL"
if [ "${TRAIN:-1}" = 1 ]; then
    for v in paper concat; do
        flag=$([ $v = concat ] && echo --concat-conditions || true)
        $TH train fd2talk.unet --data "$VIDEO/corpus" --real "$VIDEO/real" --preset cpu --seed 0 --out "$ABL/unet_$v" \
            --steps 1200 --batch-size 16 --autoencoder "$W/autoencoder" $flag
    done
    $TH train fd2talk.expression --data "$CORPUS" --out "$ABL/nomask/expression" --preset cpu --seed 0 \
        --lip-expert "$LE" --no-alignment-mask
    $TH train fd2talk.expression --data "$CORPUS" --out "$ABL/nosync/expression" --preset cpu --seed 0 --no-sync-loss
    $TH train fd2talk.expression --data "$CORPUS" --out "$ABL/single/joint" --preset cpu --seed 0 --lip-expert "$LE" \
        --single-dit
fi
# assemble: each ablated UNet with the shipped autoencoder; each ablated DiT with the shipped pose DiT
FRAME_ROWS=()
for v in paper concat; do
    [ -d "$ABL/unet_$v" ] || continue
    rm -rf "$ABL/frames_$v" && mkdir -p "$ABL/frames_$v"
    cp -r "$W/autoencoder" "$ABL/frames_$v/autoencoder" && cp -r "$ABL/unet_$v" "$ABL/frames_$v/unet"
done
[ -d "$ABL/frames_paper" ] && FRAME_ROWS+=(--row "UNet, true motion (two cross-attentions only, the paper)=ground-truth+$ABL/frames_paper")
[ -d "$ABL/frames_concat" ] && FRAME_ROWS+=(--row "UNet, true motion (Concat, Table 2)=ground-truth+$ABL/frames_concat")
for v in nomask nosync; do
    [ -d "$ABL/$v/expression" ] || continue
    rm -rf "$ABL/v_$v" && mkdir -p "$ABL/v_$v" && cp -r "$ABL/$v/expression" "$W/pose" "$ABL/v_$v/"
    .venv/bin/python -c "from talkinghead.motion.fd2talk.generator import write_fd2talk_manifest as w; w('$ABL/v_$v', seed=0)"
done
ROWS=()
[ -d "$ABL/single/joint" ] && ROWS+=("Single DiT (Table 2)=$ABL/single")
[ -d "$ABL/v_nomask" ] && ROWS+=("w/o alignment mask (Table 3)=$ABL/v_nomask")
[ -d "$ABL/v_nosync" ] && ROWS+=("w/o L_sync (Table 3)=$ABL/v_nosync")
$TH evaluate-frames --data "$VIDEO/corpus" --split test --max-clips 10 --max-frames 75 --self-reenactment "$VIDEO/real" \
    --row "Ground truth=dataset" --row "Static=static" --row "DreamTalk + warp=dreamtalk+warp" \
    --row "FD2Talk DiTs + warp=$W+warp" --row "FD2Talk (DiTs + UNet)=$W+fd2talk" \
    --row "UNet, true motion (shipped)=ground-truth+fd2talk" "${FRAME_ROWS[@]}" \
    -o docs/evaluation/fd2talk/frames
$TH evaluate --data "$CORPUS" --split test --checkpoint "$W" --name "FD2Talk (full)" --video-clips 0 \
    --sync-judge weights/judges/syncnet_motion --video-judge weights/judges/syncnet_video \
    --baselines ground-truth "${ROWS[@]}" -o docs/evaluation/fd2talk/ablations
