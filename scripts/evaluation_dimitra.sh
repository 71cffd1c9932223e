#!/usr/bin/env bash
# Re-makes docs/evaluation/dimitra/: Dimitra's Tables I-II layout and its ablations (issue 13 item 5), all with
# the one `talkinghead evaluate` command, on the test split of the corpus with emotional text that Dimitra is
# trained on (scripts/train_dimitra.sh), with the judges of weights/judges
# (scripts/evaluation_tables.sh). The full model is the shipped weights/dimitra (scripts/train_dimitra.sh).
# Trains the five ablated parts first (cpu preset, seed 0; about 25 minutes of CPU in two one-thread queues),
# then about 15 minutes of evaluation on a quiet 2-core machine. Intermediate files go to
# ${WORK:-/tmp/talkinghead-eval}; CORPUS may point at an existing corpus made by the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
TH=.venv/bin/talkinghead
PY=.venv/bin/python
WORK=${WORK:-/tmp/talkinghead-eval}
D=${CORPUS:-$WORK/corpus_emotional}
A=$WORK/dimitra
mkdir -p "$A"
[ -f "$D/dataset.json" ] || $TH corpus --out "$D" --speakers 40 --sentences 3 --seed 0 --workers 2 --effort 0 --text emotional

train() {  # NAME PART FLAG...: one ablated part, skipped when it is already trained
    local name=$1 part=$2; shift 2
    [ -f "$A/$name/talkinghead.json" ] || [ -f "$A/$name/config.json" ] && return 0
    $TH train "dimitra.$part" --data "$D" --out "$A/$name" --preset cpu --seed 0 "$@" > "$A/$name.log" 2>&1
}
# the ablated lips models keep the shipped lips' training flags (scripts/train_dimitra.sh): sync loss, phoneme noise,
# speech dropout
{ train lips_nophon lips --no-phonemes --sync-loss --speech-dropout-percent 10
  train lips_notext lips --no-transcript --sync-loss --phoneme-noise-percent 50 --speech-dropout-percent 10; } &
{ train pose_nofirst pose --no-first-loss; train face_notext face --no-transcript; train pose_notext pose --no-transcript; } &
wait %1 && wait %2

# Each variant is a Dimitra folder: the ablated parts, the shipped ones for the rest (and the shipped recogniser).
# Its manifest may set the sampling: overlap 0 is the paper's plain recursion (no cross-fade at window joins).
assemble() {  # NAME OVERLAP SPEECH_GUIDANCE PART=FOLDER...
    local name=$1 overlap=$2 speech=$3; shift 3
    rm -rf "${A:?}/$name" && mkdir -p "$A/$name"
    for part in lips face pose phonemes; do cp -r "weights/dimitra/$part" "$A/$name/"; done
    for spec in "$@"; do rm -rf "${A:?}/$name/${spec%%=*}" && cp -r "$A/${spec#*=}" "$A/$name/${spec%%=*}"; done
    # guidance 1: the paper's sampling (the shipped manifest sets transcript and speech guidance 3, compared at
    # the end)
    $PY -c "from talkinghead.motion.dimitra.generator import write_dimitra_manifest as w
w('$A/$name', sampling={'overlap': $overlap, 'guidance': 1.0, 'speech_guidance': $speech},
  made_by='scripts/evaluation_dimitra.sh')"
}
assemble v_paper 8 1
assemble v_full_plain 0 1
assemble v_nophon 8 1 lips=lips_nophon
assemble v_notext 8 1 lips=lips_notext face=face_notext pose=pose_notext
assemble v_nofirst_plain 0 1 pose=pose_nofirst
assemble v_speech3 8 3

JUDGES=(--sync-judge weights/judges/syncnet_motion --video-judge weights/judges/syncnet_video)
# Tables I and II in one layout: ground truth, DreamTalk, Dimitra with and without head pose.
$TH evaluate --data "$D" --split test --checkpoint "$A/v_paper" --name "Dimitra (ours)" "${JUDGES[@]}" \
    --baselines ground-truth "DreamTalk=weights/dreamtalk" "fixed-pose:Dimitra w/o head pose=$A/v_paper" \
    -o docs/evaluation/dimitra/main
# Ablations: phonemes (lips), transcript (all three parts); motion only (no rendered-video table).
$TH evaluate --data "$D" --split test --checkpoint "$A/v_paper" --name "Dimitra (full)" "${JUDGES[@]}" \
    --video-clips 0 --baselines ground-truth "w/o phonemes (lips)=$A/v_nophon" "w/o transcript=$A/v_notext" \
    -o docs/evaluation/dimitra/ablations
# The first-pose loss, with the paper's plain recursion (overlap 0), where frame 1 of a window is the join.
$TH evaluate --data "$D" --split test --checkpoint "$A/v_full_plain" --name "Dimitra, plain recursion" \
    "${JUDGES[@]}" --video-clips 0 --baselines "w/o L_first, plain recursion=$A/v_nofirst_plain" \
    "Dimitra, cross-faded joins (default)=$A/v_paper" -o docs/evaluation/dimitra/first_loss
# Transcript and speech guidance (extensions): the shipped weights/dimitra samples with both at 3.
$TH evaluate --data "$D" --split test --checkpoint "$A/v_paper" --name "Dimitra (guidance 1, the paper)" \
    --sync-judge weights/judges/syncnet_motion --video-clips 0 \
    --baselines "Dimitra, speech guidance 3=$A/v_speech3" \
    "Dimitra, transcript and speech guidance 3 (shipped)=weights/dimitra" -o docs/evaluation/dimitra/guidance
# Seeds and transcripts (issue 13's "head pose differs between two seeds; expression changes with the
# transcript's content more than between two seeds"), and the seams on long real speech.
$PY scripts/dimitra_checks.py --data "$D" --variants "$A" --out docs/evaluation/dimitra/checks
$PY scripts/dimitra_checks.py --data "$D" --guidance 3 --out docs/evaluation/dimitra/checks_guidance3
