"""The evaluation's trainable judges, declared for :mod:`talkinghead.training.registry` (no torch here).

- ``judge.sync``: the SyncNet-style lip-sync judge behind LSE-C/LSE-D
  (:mod:`.syncnet`, trained by :mod:`.sync_training`).
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
)
