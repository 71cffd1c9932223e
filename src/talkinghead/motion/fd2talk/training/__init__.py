"""FD2Talk's trainable components, stage 1 (3.4.1 "Motion Generation Stage") and the ablations of Tables 2-3.

FD2Talk trains the Expression Transformer and the Pose Transformer, two DiTs of one architecture
(:class:`talkinghead.motion.fd2talk.model.MotionDiT`); one solver module serves both:

- :mod:`.motion` the ``fd2talk.expression`` solver (``lambda_exp * L_exp + lambda_sync * L_sync`` with the frozen
  lip expert, Eq. 8, 10-12) and the ``fd2talk.pose`` solver (``lambda_pose * L_pose``, Eq. 9).

The ablations are options recorded in the checkpoint (``extra["variant"]``), so the generator feeds each variant
what it was trained with: ``--single-dit`` (Table 2, one DiT for expression and pose together, trained by
``fd2talk.expression``), ``--no-alignment-mask`` and ``--no-sync-loss`` (Table 3).

Stage 2 (3.4.2 "Frame Generation Stage", :mod:`talkinghead.render.fd2talk.training`) trains on a video dataset:
``fd2talk.perceptual`` (the perceptual network trained here), ``fd2talk.autoencoder`` (``E`` and the
reference-conditioned ``D``, Eq. 13-15) and ``fd2talk.unet`` (the Diffusion UNet, Eq. 16; ``--concat-conditions``
is Table 2's "Concat" row).

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

FRAMES = "talkinghead.render.fd2talk.training"
_REAL = Option("real", "a second video dataset trained on too (e.g. real videos prepared by video-prepare)", "path",
               metavar="DIR")

COMPONENTS = (
    ComponentSpec(
        "fd2talk.expression", "talkinghead.motion.fd2talk.training.motion:build_expression",
        "FD2Talk's Expression Transformer: a DiT over the expression channels, with the lip expert's sync loss",
        options=(_LIP_EXPERT, _NO_SYNC, _NO_MASK, _SINGLE)),
    ComponentSpec(
        "fd2talk.pose", "talkinghead.motion.fd2talk.training.motion:build_pose",
        "FD2Talk's Pose Transformer: a DiT over the 6 head-pose channels",
        options=(_NO_MASK,)),
    ComponentSpec(
        "fd2talk.perceptual", f"{FRAMES}:build_perceptual",
        "FD2Talk stage 2: the perceptual network trained here (stand-in for LPIPS' VGG) on a video dataset",
        options=(_REAL,)),
    ComponentSpec(
        "fd2talk.autoencoder", f"{FRAMES}:build_autoencoder",
        "FD2Talk stage 2: the latent encoder and the reference-conditioned decoder (Eq. 13-15) on a video dataset",
        options=(_REAL, Option("perceptual", "the perceptual network (fd2talk.perceptual, or VGG16 weights)", "path",
                               metavar="DIR"),
                 Option("vae", "start from a Stable Diffusion VAE in a local folder (diffusers AutoencoderKL)",
                        "path", metavar="DIR"),
                 Option("decoder_only", "fine-tune only the decoder of the autoencoder in DIR (trained here): its "
                        "encoder, latent space and scale are kept, so a UNet trained on it stays valid", "path",
                        metavar="DIR"),
                 Option("adversarial_percent", "add LDM's patch-adversarial loss at this weight in percent of its "
                        "adaptive balance (not in the paper, whose SD VAE was trained with it)", "int", metavar="P",
                        high=1000),
                 Option("augment", "change each frame pair's colours, flip and zoom at random (not in the paper: "
                        "the shipped set has ten identities; talkinghead.data.video.appearance)"),
                 Option("init", "fine-tune all of the autoencoder in DIR (a new latent space: a UNet must be "
                        "trained on it)", "path", metavar="DIR"))),
    ComponentSpec(
        "fd2talk.unet", f"{FRAMES}:build_unet",
        "FD2Talk stage 2: the Diffusion UNet with two cross-attentions (Eq. 6-7, 16) in the autoencoder's latents",
        options=(_REAL, Option("autoencoder", "the trained autoencoder (fd2talk.autoencoder)", "path", metavar="DIR"),
                 Option("concat_conditions", "one cross-attention over the concatenated coefficient and reference "
                        "tokens (Table 2 'Concat')", group=ABLATIONS),
                 Option("reference_input", "also concatenate the reference latent to the noisy latent at the input "
                        "(not in the paper: faster to learn on a CPU)"),
                 Option("mouth_weight", "weigh the loss 1 + W in the target's mouth region (not in the paper's Eq. 16)",
                        "int", metavar="W", high=100),
                 Option("init", "start from the trained UNet in DIR (a fine-tuning, e.g. with --mouth-weight)", "path",
                        metavar="DIR"),
                 Option("augment", "change each frame pair's colours at random (not in the paper: the shipped set "
                        "has ten identities; talkinghead.data.video.appearance)"),
                 Option("any_reference", "take the reference from any frame of the clip, not its first (not in the "
                        "paper: first frames mostly show the mouth at rest)"))),
)
