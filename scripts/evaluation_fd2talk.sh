#!/usr/bin/env bash
# FD2Talk's tables (issue 15, item 5-6; docs/evaluation/fd2talk/), from the shipped weights/fd2talk and the
# ablation models made here:
#   Table 1 + Table 2's UNet rows + self-reenactment: evaluate-frames on the video corpus's test split (test
#     identities never seen in training) and on the held-out clips of the real videos;
#   Table 2's DiT row and Table 3: evaluate (motion) on the test split of the corpus the DiTs were trained on.
# Each ablation model is the shipped model's command with one thing changed (same data, preset, seed and steps),
# made in ${ABL:-/tmp/fd2abl}: nomask/expression (--no-alignment-mask), nosync/expression (--no-sync-loss),
# single/joint (--single-dit), unet_concat (--concat-conditions, with the shipped UNet's --reference-input and
# steps); UNETS="concat paper" adds unet_paper (the two cross-attentions without --reference-input, the paper's
# design as written). TRAIN=0 uses existing ones. The DiTs train two at a time, one thread each.
# CORPUS: the DiTs' training corpus (made when missing: the command in weights/fd2talk/talkinghead.json);
# VIDEO: scripts/video_corpus.sh's output on that corpus (made when missing, about 12 min).
set -euo pipefail
cd "$(dirname "$0")/.."
TH=.venv/bin/talkinghead
VIDEO=${VIDEO:-/tmp/talkinghead-video}
CORPUS=${CORPUS:-/tmp/talkinghead-train/corpus}
ABL=${ABL:-/tmp/fd2abl}
UNETS=${UNETS:-concat}
W=weights/fd2talk
LE=weights/dreamtalk/lip_expert
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$ABL"
[ -f "$CORPUS/manifest.csv" ] || $TH corpus --out "$CORPUS" --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0
[ -f "$VIDEO/corpus/dataset.json" ] && [ -f "$VIDEO/real/dataset.json" ] || MOTION=$CORPUS WORK=$VIDEO bash scripts/video_corpus.sh
if [ "${TRAIN:-1}" = 1 ]; then
    dit() { $TH train fd2talk.expression --data "$CORPUS" --preset cpu --seed 0 "$@"; }
    dit --out "$ABL/nomask/expression" --lip-expert "$LE" --no-alignment-mask > "$ABL/nomask.log" 2>&1 &
    dit --out "$ABL/nosync/expression" --no-sync-loss > "$ABL/nosync.log" 2>&1 &
    wait
    dit --out "$ABL/single/joint" --lip-expert "$LE" --single-dit > "$ABL/single.log" 2>&1 &
    for v in $UNETS; do
        case $v in
            concat) flags=(--concat-conditions --reference-input --steps 1100) ;;
            paper) flags=(--steps 1300) ;;
            *) echo "UNETS: concat or paper, not $v" >&2; exit 2 ;;
        esac
        $TH train fd2talk.unet --data "$VIDEO/corpus" --real "$VIDEO/real" --preset cpu --seed 0 --out "$ABL/unet_$v" \
            --batch-size 16 --autoencoder "$W/autoencoder" "${flags[@]}" > "$ABL/unet_$v.log" 2>&1
    done
    wait
fi
# assemble: each ablated UNet with the shipped autoencoder; each ablated DiT with the shipped pose DiT
FRAME_ROWS=()
for v in paper concat; do
    [ -d "$ABL/unet_$v" ] || continue
    rm -rf "$ABL/frames_$v" && mkdir -p "$ABL/frames_$v"
    cp -r "$W/autoencoder" "$ABL/frames_$v/autoencoder" && cp -r "$ABL/unet_$v" "$ABL/frames_$v/unet"
done
[ -d "$ABL/frames_paper" ] && FRAME_ROWS+=(--row "UNet, true motion (two cross-attentions only, the paper)=ground-truth+$ABL/frames_paper")
[ -d "$ABL/frames_concat" ] && FRAME_ROWS+=(--row "UNet, true motion (Concat + reference input, Table 2)=ground-truth+$ABL/frames_concat")
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
