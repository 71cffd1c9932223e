#!/usr/bin/env bash
# Re-makes the shipped Dimitra checkpoints in weights/dimitra/ (cpu preset) from the synthetic corpus with
# emotional text (sentences that say the clip's emotion, so the transcript condition has something to learn):
# the frame-level phoneme recogniser and the three cMDTs (lips, face, head pose), with the exact
# commands and seeds behind the committed weights. One thread per training, two side by side. The lips model is
# trained with three extensions (docs/dimitra.md, "Extensions for the lips model"): DreamTalk's frozen lip expert's
# sync loss, half of the phoneme tokens replaced at random, so it follows real voices whose recognised
# phonemes are often wrong, and 10% of the samples without their speech, so sampling can guide on the speech
# (docs/mouth/dimitra/README.md). The recogniser is trained with speaker and rate perturbations (its log-mel
# bands warped within 25 %, its windows stretched within 30 %; docs/dimitra.md), for real voices.
# Intermediate files go to ${WORK:-/tmp/talkinghead-dimitra}; CORPUS may point at an existing corpus
# made by the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
TH=.venv/bin/talkinghead
WORK=${WORK:-/tmp/talkinghead-dimitra}
CORPUS=${CORPUS:-$WORK/corpus}
mkdir -p "$WORK"
[ -f "$CORPUS/dataset.json" ] || $TH corpus --out "$CORPUS" --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0 \
    --text emotional
LIPS=(--sync-loss --phoneme-noise-percent 50 --speech-dropout-percent 10)
PHONEMES=(--warp-percent 25 --tempo-percent 30)
train() {  # PART [FLAG...]
    local part=$1; shift
    $TH train "dimitra.$part" --data "$CORPUS" --out "$WORK/$part" --preset cpu --seed 0 "$@" > "$WORK/$part.log" 2>&1
}
{ train phonemes "${PHONEMES[@]}"; train pose; } &
{ train lips "${LIPS[@]}"; train face; } &
wait %1 && wait %2
rm -rf weights/dimitra.new && mkdir -p weights/dimitra.new
cp -r "$WORK/phonemes" "$WORK/lips" "$WORK/face" "$WORK/pose" weights/dimitra.new/
LIPS_FLAGS="${LIPS[*]}" PHONEME_FLAGS="${PHONEMES[*]}" .venv/bin/python - <<'PY'
import os

from talkinghead.motion.dimitra.generator import write_dimitra_manifest

# the manifest records exactly what ran above
flags = {"lips": " " + os.environ["LIPS_FLAGS"], "phonemes": " " + os.environ["PHONEME_FLAGS"]}

write_dimitra_manifest("weights/dimitra.new", seed=0, preset="cpu",
                       corpus="talkinghead corpus --out CORPUS --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0 "
                              "--text emotional",
                       # classifier-free guidance on the transcript (an extension; docs/evaluation/dimitra,
                       # "Transcript guidance"): no effect without a transcript; and on the speech, for the lips
                       # trained with speech dropout (docs/mouth/dimitra/README.md)
                       sampling={"guidance": 3.0, "speech_guidance": 3.0},
                       commands=[f"talkinghead train dimitra.{p} --data CORPUS --out {p} --preset cpu --seed 0"
                                 + flags.get(p, "")
                                 for p in ("phonemes", "lips", "face", "pose")])
PY
rm -rf weights/dimitra && mv weights/dimitra.new weights/dimitra
