"""DICE-Talk (Tan et al. 2025, "Disentangle Identity, Cooperate Emotion"): emotional talking heads on a video
diffusion backbone.

One module per component (Sec. 3, Fig. 2):

- :mod:`.embedder`: the disentangled emotion embedder (Sec. 3.1, Eq. 2-7): expression and audio features fused by
  cross-attention, attention-pooled into an identity-agnostic Gaussian emotion prior, trained with InfoNCE;
- :mod:`.bank`: the emotion bank (Sec. 3.2, Eq. 10-13, 17): learnable prototypes, retrieval by cross-attention,
  vector-quantisation loss;
- :mod:`.embedder_training`: the embedder's solver on the motion corpus (``dice.embedder``), its emotion prompts
  (the mean prior per emotion, Sec. 4.1) and its measurements;
- :mod:`.unet`: the Stable Video Diffusion-structured spatio-temporal UNet with reference-image, audio and emotion
  attention (Eq. 14);
- :mod:`.edm`: the EDM framework (preconditioning, training noise, 25-step sampler, multi-condition guidance);
- :mod:`.discriminator`: the emotion discrimination objective (Sec. 3.3, Eq. 16);
- :mod:`.network`: the UNet, the bank and the discriminator as one checkpoint (``dice.network``) and Eq. 15's training
  loss;
- :mod:`.training`: the diffusion model's solver on the talking-face video dataset (``dice.video``);
- :mod:`.pipeline`: :class:`~.pipeline.DICEGenerator`, the ``dice`` video generator (emotion from a reference video,
  a prompt, two mixed, or the speech itself; overlapping EDM clips; paste-back).

This module only declares the trainable components (no torch at import): :data:`COMPONENTS` is read by
:mod:`talkinghead.training.registry`.
"""

from __future__ import annotations

from talkinghead.training.registry import ComponentSpec, Option

VARIANTS = "variants (not in the paper)"
ABLATIONS = "ablations (DICE-Talk Table 4)"
TRAINING = "talkinghead.video.dice.training"

COMPONENTS: tuple[ComponentSpec, ...] = (
    ComponentSpec(
        "dice.embedder", "talkinghead.video.dice.embedder_training:build_embedder",
        "DICE-Talk's disentangled emotion embedder (Sec. 3.1) on the motion corpus; its checkpoint also holds the "
        "mean prior of every emotion (the emotion prompts of Sec. 4.1)",
        options=(Option("positives", "what makes a positive pair: the same identity and emotion (the paper, Eq. 7) "
                        "or the same emotion only", "choice", default="identity_emotion",
                        choices=("identity_emotion", "emotion"), group=VARIANTS),)),
    ComponentSpec(
        "dice.video", f"{TRAINING}:build_video",
        "DICE-Talk's video diffusion model (Sec. 3.2-3.3, Eq. 15): the SVD-structured UNet with audio and emotion "
        "attention, the emotion bank and the emotion discriminator, on the talking-face video dataset, with a frozen "
        "dice.embedder",
        options=(Option("real", "a second video dataset trained on too (real videos prepared by video-prepare; no "
                        "emotion labels, the last clip of each video held out)", "path", metavar="DIR"),
                 Option("vae", "the latent VAE (talkinghead train emo.vae, or a Stable Diffusion VAE folder)", "path",
                        metavar="DIR"),
                 Option("embedder", "the trained emotion embedder (talkinghead train dice.embedder; required)", "path",
                        metavar="DIR"),
                 Option("unet", "initialise the UNet from Stable Video Diffusion's in a local folder (diffusers "
                        "UNetSpatioTemporalConditionModel)", "path", metavar="DIR"),
                 Option("init", "warm start: copy the weights a dice.video checkpoint shares with this network "
                        "(names and shapes); the parts a variant changes start anew", "path", metavar="DIR"),
                 Option("no_bank", "w/o emotion bank: the prior goes to the emotion attention directly",
                        group=ABLATIONS),
                 Option("no_discriminator", "w/o the emotion discrimination objective (L_cls)", group=ABLATIONS),
                 Option("deterministic_prior", "train on the prior's mean instead of Eq. 6's sample (Sec. 4.5, "
                        "'w/o emotion prior')", group=ABLATIONS),
                 Option("learnable_ca", "'learnable CA': the prior attends to learnable embeddings (the bank's "
                        "inference path in training too, no L_vq, random initialisation)", group=ABLATIONS),
                 Option("prior_from", "the clip whose prior conditions a training clip: the clip itself (the paper, "
                        "Sec. 4.5) or another identity's clip with the same emotion", "choice", default="clip",
                        choices=("clip", "partner"), group=VARIANTS),
                 Option("discriminate", "what the emotion discriminator (Eq. 16) reads: the UNet's pooled features "
                        "(the paper) or the denoised prediction, through a latent classifier trained on the clean "
                        "clips only, so L_cls asks for the emotion to be drawn", "choice", default="features",
                        choices=("features", "prediction"), group=VARIANTS),
                 Option("reference_from", "the reference image of an emotion-labelled training clip: a frame of the "
                        "clip itself (the paper) or of another clip of the same identity, whose expression does not "
                        "give the clip's emotion away", "choice", default="clip", choices=("clip", "identity"),
                        group=VARIANTS))),
)
