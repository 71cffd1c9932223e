#!/usr/bin/env bash
# Builds the cpu-sized video corpus (issue 14; docs/video_corpus.md) into ${WORK:-/tmp/talkinghead-video}:
#   corpus/  the motion corpus's clips (1000 of them, drawn per split) rendered at 128 px on 14 identities:
#            the real portraits of ../shared/realdata (fetched, never committed), two faces taken from its
#            videos, and scikit-image's astronaut; identities split 10 train / 2 val / 2 test;
#   real/    the three real talking-face videos of ../shared/realdata (no audio), tracked and cropped;
#   sheets/  contact sheets of a few clips per split.
# With EXTRA_PORTRAITS=DIR (scripts/extra_portraits.py's --out; fetched and never committed either) the faces in
# DIR/faces join the training identities (test and validation identities stay the pinned four).
# Then prints both datasets' summaries, the build times and the sizes on disk.
# Needs the motion corpus of scripts/train_default.sh (made here when missing: about 10 more minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
TH=.venv/bin/talkinghead
PY=.venv/bin/python
REAL=${TALKINGHEAD_REALDATA:-$HOME/.cache/talkinghead-realdata}
MOTION=${MOTION:-/tmp/talkinghead-train/corpus}
WORK=${WORK:-/tmp/talkinghead-video}
CLIPS=${CLIPS:-1000}
[ -d "$REAL/faces" ] || REAL=$(bash ../shared/realdata/fetch.sh)
[ -f "$MOTION/manifest.csv" ] || $TH corpus --out "$MOTION" --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0

# Portraits: one folder per identity with several photos (the five expr_* photos are one woman; the two
# webcam clips one man), every other photo its own identity. Links only: nothing is copied.
P="$WORK/portraits"
rm -rf "$P" && mkdir -p "$P/expr_woman" "$P/clm_author"
for f in "$REAL"/faces/*.png; do
    case "$(basename "$f")" in
        expr_*) ln -s "$f" "$P/expr_woman/" ;;
        *) ln -s "$f" "$P/" ;;
    esac
done
if [ -n "${EXTRA_PORTRAITS:-}" ]; then
    [ -d "$EXTRA_PORTRAITS/faces" ] || $PY scripts/extra_portraits.py --out "$EXTRA_PORTRAITS"
    ln -s "$EXTRA_PORTRAITS"/faces/*.png "$P/"
fi
$PY - "$REAL/video" "$P" <<'EOF'
import sys
from pathlib import Path

from PIL import Image

from talkinghead.io.video import iter_frames

video, out = Path(sys.argv[1]), Path(sys.argv[2])
# frontal, mouth closed (looked at): franck at 6 s; the webcam man at 4 s and 0 s of his two clips
for name, second, target in (("franck_talking_face", 6.0, "franck.png"), ("clm_cap12_webcam", 4.0, "clm_author/cap12.png"),
                             ("clm_cap13_webcam", 0.0, "clm_author/cap13.png")):
    for k, frame in enumerate(iter_frames(video / f"{name}.mp4", 25.0)):
        if k == int(second * 25):
            Image.fromarray(frame).save(out / target)
            break
EOF

# Real videos: one folder per person (the two webcam clips are the same man).
V="$WORK/videos"
rm -rf "$V" && mkdir -p "$V/franck" "$V/clm_author"
ln -s "$REAL/video/franck_talking_face.mp4" "$V/franck/"
ln -s "$REAL/video/clm_cap12_webcam.mp4" "$REAL/video/clm_cap13_webcam.mp4" "$V/clm_author/"

start=$(date +%s)
$TH video-corpus --motion-data "$MOTION" --portraits "$P" --out "$WORK/corpus" --size 128 --clips "$CLIPS" \
    --test-identities grace_hopper,family_father --val-identities family_mother,child_boy --workers 2 --seed 0
corpus_s=$(( $(date +%s) - start ))
start=$(date +%s)
$TH video-prepare "$V" --out "$WORK/real" --size 128 --workers 2
real_s=$(( $(date +%s) - start ))

mkdir -p "$WORK/sheets"
for split in train val test; do
    $TH video-sheet "$WORK/corpus" --split "$split" --clips 4 -o "$WORK/sheets/corpus_$split.png"
done
$TH video-sheet "$WORK/real" --split train --clips 4 -o "$WORK/sheets/real_train.png"

$TH dataset-info "$WORK/corpus"
$TH dataset-info "$WORK/real"
echo "video-corpus: ${corpus_s} s; video-prepare: ${real_s} s"
du -sh "$WORK/corpus" "$WORK/real"
