"""Dimitra's trainable components (III-B.4 "Learning") and the condition ablations of issue 13 (item 5).

Dimitra trains three cMDTs with the same architecture on different channels (III-B.4): the lips (the mouth
channels), the rest of the face and the head pose; one solver module serves all three:

- :mod:`.motion` the ``dimitra.lips``, ``dimitra.face`` and ``dimitra.pose`` solvers (``L_G = lambda * L_diff``,
  plus the first-pose loss ``L_first`` for the pose model); ``dimitra.lips --sync-loss [--lip-expert DIR]`` adds
  DreamTalk's frozen lip expert's sync loss, as FD2Talk's Expression Transformer has it (an extension: the paper
  has no such loss);
- :mod:`.phonemes` the frame-level phoneme recogniser ``dimitra.phonemes``, which gives audio without a
  transcript its phoneme stream (III-B.2 uses a forced aligner, which needs the transcript).

This module only declares them (no torch at import): :data:`COMPONENTS` is read by
:mod:`talkinghead.training.registry`, whose ``talkinghead train`` builds one sub-command per component.
"""

from __future__ import annotations

from talkinghead.training.registry import ComponentSpec, Option

ABLATIONS = "condition ablations (issue 13, item 5)"
_NO_PHONEMES = Option("no_phonemes", "no phoneme condition: every frame's token is <pad> (lips should suffer)",
                      group=ABLATIONS)
_NO_TRANSCRIPT = Option("no_transcript", "no transcript condition: the null token only (expression and head "
                        "pose should suffer)", group=ABLATIONS)
_NO_FIRST_LOSS = Option("no_first_loss", "without the first-pose loss L_first (III-B.4): lambda * L_diff only "
                        "(the pose jump at window joins should grow)", group=ABLATIONS)

EXTENSIONS = "extensions (not in the paper)"
_SYNC_LOSS = Option("sync_loss", "add the frozen lip expert's sync loss lambda_sync * -log P_sync on the predicted "
                    "mouth, as FD2Talk's expression model has it (lips should follow the voice better)",
                    group=EXTENSIONS)
_AUDIO_CONTEXT = Option("audio_context", "the speech encoder's local context K: a temporal convolution over 2K+1 "
                        "frames of the speech features before its transformer (default: the preset's; frame "
                        "features carry no context, wav2vec's do)", "int", metavar="K", group=EXTENSIONS, low=0)
_PHONEME_NOISE = Option("phoneme_noise_percent", "replace this percentage of the training phonemes by random ones, as "
                        "the recogniser's errors on real speech (default 0)", "int", metavar="P", group=EXTENSIONS,
                        low=0, high=100)
_SPEECH_DROPOUT = Option("speech_dropout_percent", "train this percentage of samples without their speech (audio and "
                          "phonemes), so sampling can guide on the speech (--speech-guidance; default 0)", "int",
                          metavar="P", group=EXTENSIONS, low=0, high=100)
_LIP_EXPERT = Option("lip_expert", "the frozen lip expert of --sync-loss (default: the shipped "
                     "weights/dreamtalk/lip_expert)", "path", metavar="DIR", group=EXTENSIONS)

_WARP = Option("warp_percent", "vocal-tract length perturbation: each training window's log-mel bands read at "
               "frequencies scaled by a random factor within W per cent either way, as another speaker's "
               "(default 0)", "int", metavar="W", group=EXTENSIONS, low=0, high=50)
_TEMPO = Option("tempo_percent", "speaking-rate perturbation: each training window resampled in time by a random "
                "factor within T per cent either way, as faster or slower speech (default 0)", "int", metavar="T",
                group=EXTENSIONS, low=0, high=50)

COMPONENTS = (
    ComponentSpec(
        "dimitra.lips", "talkinghead.motion.dimitra.training.motion:build_lips",
        "Dimitra's lip model: a cMDT over the layout's mouth channels (13 in ARKit)",
        options=(_NO_PHONEMES, _NO_TRANSCRIPT, _SYNC_LOSS, _LIP_EXPERT, _AUDIO_CONTEXT, _PHONEME_NOISE,
                 _SPEECH_DROPOUT)),
    ComponentSpec(
        "dimitra.face", "talkinghead.motion.dimitra.training.motion:build_face",
        "Dimitra's facial-expression model: a cMDT over the other expression channels (27 in ARKit)",
        options=(_NO_PHONEMES, _NO_TRANSCRIPT)),
    ComponentSpec(
        "dimitra.pose", "talkinghead.motion.dimitra.training.motion:build_pose",
        "Dimitra's head-pose model: a cMDT over the 6 pose channels, with the first-pose loss",
        options=(_NO_PHONEMES, _NO_TRANSCRIPT, _NO_FIRST_LOSS)),
    ComponentSpec(
        "dimitra.phonemes", "talkinghead.motion.dimitra.training.phonemes:build",
        "Dimitra's frame-level phoneme recogniser (phonemes for audio without a transcript)",
        options=(_WARP, _TEMPO)),
)
