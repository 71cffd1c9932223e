"""EMO (Tian et al. 2024, "EMO: Emote Portrait Alive"): audio-to-video latent diffusion under weak conditions.

One module per component (Sec. 3.2, Fig. 2):

- :mod:`.unet`: the Stable Diffusion 1.5-structured UNet shared by the Backbone and ReferenceNet (SD weights load
  unchanged; reference-attention in the self-attention; no text cross-attention);
- :mod:`.reference_net`: ReferenceNet, run once per clip on the reference image and the motion frames;
- :mod:`.backbone`: the Backbone Network (epsilon prediction, Eq. 1) with audio-attention and temporal layers;
- :mod:`.audio`: voice feature windows (``m = 2``), their projection and the audio-attention layers;
- :mod:`.temporal`: AnimateDiff-style temporal modules with motion frames and the speed cross-attention;
- :mod:`.face_locator`: the face-region mask encoder; :mod:`.speed`: the speed buckets ``s_i`` and their MLP;
- :mod:`.network`: all of them as one checkpoint (``emo.network``);
- :mod:`.pipeline`: :class:`~.pipeline.EMOGenerator`, the ``emo`` video generator (cascaded clips, DDIM, paste-back);
- :mod:`.training`: the VAE trained here and the paper's three training stages (Sec. 3.3).

This module only declares the trainable components (no torch at import): :data:`COMPONENTS` is read by
:mod:`talkinghead.training.registry`.
"""

from __future__ import annotations

from talkinghead.training.registry import ComponentSpec, Option

TRAINING = "talkinghead.video.emo.training"
_REAL = Option("real", "a second video dataset trained on too (e.g. real videos prepared by video-prepare)", "path",
               metavar="DIR")
_VAE = Option("vae", "the latent VAE (talkinghead train emo.vae, or a Stable Diffusion VAE folder)", "path",
              metavar="DIR")

COMPONENTS = (
    ComponentSpec(
        "emo.vae", f"{TRAINING}:build_vae",
        "EMO: the latent VAE trained here on the video dataset's face crops (stand-in for Stable Diffusion's VAE)",
        options=(_REAL, Option("perceptual", "a perceptual network for the reconstruction loss (fd2talk.perceptual, "
                               "or VGG16 weights)", "path", metavar="DIR"),
                 Option("vae", "start from a Stable Diffusion VAE in a local folder (diffusers AutoencoderKL)", "path",
                        metavar="DIR"),
                 Option("decoder_only", "fine-tune only the decoder of the VAE in DIR (trained here): its encoder, "
                        "latent space and scale are kept, so networks trained on it stay valid", "path",
                        metavar="DIR"),
                 Option("augment", "change each frame's colours, flip and zoom it at random (not in the paper: the "
                        "shipped set has ten identities; talkinghead.data.video.appearance)"),
                 Option("init", "fine-tune all of the VAE in DIR (a new latent space: the diffusion networks must be "
                        "trained on it)", "path", metavar="DIR"))),
    ComponentSpec(
        "emo.image", f"{TRAINING}:build_image",
        "EMO stage 1 (image pretraining): Backbone, ReferenceNet and Face Locator on frame pairs (Sec. 3.3)",
        options=(_REAL, _VAE, Option("unet", "initialise Backbone and ReferenceNet from a Stable Diffusion 1.5 UNet "
                                     "in a local folder (diffusers UNet2DConditionModel)", "path", metavar="DIR"))),
    ComponentSpec(
        "emo.video", f"{TRAINING}:build_video",
        "EMO stage 2 (video): temporal modules and audio layers on motion frames + clips, the rest frozen",
        options=(_REAL, _VAE, Option("init", "the stage-1 network (talkinghead train emo.image)", "path",
                                     metavar="DIR"),
                 Option("motion_module", "start the temporal modules from an AnimateDiff motion module in a local "
                        "folder (diffusers MotionAdapter) or file (.safetensors/.ckpt)", "path", metavar="PATH"))),
    ComponentSpec(
        "emo.speed", f"{TRAINING}:build_speed",
        "EMO stage 3 (speed): temporal modules and speed layers, the audio layers frozen",
        options=(_REAL, _VAE, Option("init", "the stage-2 network (talkinghead train emo.video)", "path",
                                     metavar="DIR"))),
)
