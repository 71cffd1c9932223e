"""FD2Talk's trainable components, stage 1 (3.4.1 "Motion Generation Stage") and the ablations of Tables 2-3.

FD2Talk trains the Expression Transformer and the Pose Transformer, two DiTs of one architecture
(:class:`talkinghead.motion.fd2talk.model.MotionDiT`); one solver module serves both:

- :mod:`.motion` the ``fd2talk.expression`` solver (``lambda_exp * L_exp + lambda_sync * L_sync`` with the frozen
  lip expert, Eq. 8, 10-12) and the ``fd2talk.pose`` solver (``lambda_pose * L_pose``, Eq. 9).

The ablations are options recorded in the checkpoint (``extra["variant"]``), so the generator feeds each variant
what it was trained with: ``--single-dit`` (Table 2, one DiT for expression and pose together, trained by
``fd2talk.expression``), ``--no-alignment-mask`` and ``--no-sync-loss`` (Table 3).

This module only declares them (no torch at import): :data:`COMPONENTS` is read by
:mod:`talkinghead.training.registry`, whose ``talkinghead train`` builds one sub-command per component.
"""

from __future__ import annotations

from talkinghead.training.registry import ComponentSpec, Option

ABLATIONS = "ablations (FD2Talk Tables 2 and 3)"
_NO_MASK = Option("no_alignment_mask", "plain cross-attention without the alignment mask of Eq. 4 (Table 3 "
                  "'w/o alignment')", group=ABLATIONS)
_NO_SYNC = Option("no_sync_loss", "without the lip expert's sync loss L_sync (Table 3 'w/o L_sync')",
                  group=ABLATIONS)
_SINGLE = Option("single_dit", "one DiT for expression and head pose together (Table 2 'Single Diffusion "
                 "Transformer'); the folder then needs no pose model", group=ABLATIONS)
_LIP_EXPERT = Option("lip_expert", "the frozen lip expert of the sync loss (default: the shipped "
                     "weights/dreamtalk/lip_expert)", "path", metavar="DIR")

COMPONENTS = (
    ComponentSpec(
        "fd2talk.expression", "talkinghead.motion.fd2talk.training.motion:build_expression",
        "FD2Talk's Expression Transformer: a DiT over the expression channels, with the lip expert's sync loss",
        options=(_LIP_EXPERT, _NO_SYNC, _NO_MASK, _SINGLE)),
    ComponentSpec(
        "fd2talk.pose", "talkinghead.motion.fd2talk.training.motion:build_pose",
        "FD2Talk's Pose Transformer: a DiT over the 6 head-pose channels",
        options=(_NO_MASK,)),
)
