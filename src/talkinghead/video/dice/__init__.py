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
- :mod:`.discriminator`: the emotion discrimination objective (Sec. 3.3, Eq. 16).

This module only declares the trainable components (no torch at import): :data:`COMPONENTS` is read by
:mod:`talkinghead.training.registry`.
"""

from __future__ import annotations

from talkinghead.training.registry import ComponentSpec, Option

VARIANTS = "variants (not in the paper)"

COMPONENTS: tuple[ComponentSpec, ...] = (
    ComponentSpec(
        "dice.embedder", "talkinghead.video.dice.embedder_training:build_embedder",
        "DICE-Talk's disentangled emotion embedder (Sec. 3.1) on the motion corpus; its checkpoint also holds the "
        "mean prior of every emotion (the emotion prompts of Sec. 4.1)",
        options=(Option("positives", "what makes a positive pair: the same identity and emotion (the paper, Eq. 7) "
                        "or the same emotion only", "choice", default="identity_emotion",
                        choices=("identity_emotion", "emotion"), group=VARIANTS),)),
)
