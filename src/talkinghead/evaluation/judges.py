"""The evaluation's trainable judges, declared for :mod:`talkinghead.training.registry` (no torch here).

- ``judge.sync``: the SyncNet-style lip-sync judge behind LSE-C/LSE-D
  (:mod:`.syncnet`, trained by :mod:`.sync_training`);
- ``judge.identity``: the identity embedding behind F-SIM (:mod:`.identity`, trained by :mod:`.identity_training`).
"""

from __future__ import annotations

from talkinghead.training.registry import ComponentSpec, Option

COMPONENTS = (
    ComponentSpec(
        "judge.sync", "talkinghead.evaluation.sync_training:build",
        "the SyncNet-style lip-sync judge (LSE-C/LSE-D) by offset discrimination",
        options=(Option("domain", "motion: mouth vertices of the face model; video: rendered mouth crops",
                        "choice", default="motion", choices=("motion", "video")),
                 Option("max_clips", "use at most this many training clips (video: rendering is slow)", "int",
                        metavar="N"))),
    ComponentSpec(
        "judge.identity", "talkinghead.evaluation.identity_training:build",
        "the identity embedding behind F-SIM (an IResNet, ArcFace loss) on a video dataset's train identities",
        options=(Option("real", "a second video dataset trained on too (e.g. real videos prepared by video-prepare)",
                        "path", metavar="DIR"),
                 Option("max_clips", "use at most this many clips (spread evenly) for training and for each "
                        "verification", "int", metavar="N"),
                 Option("train_on_all", "train on the identities shown in several portraits too (by default they are "
                        "left out, for the cross-photo verification)"))),
)
