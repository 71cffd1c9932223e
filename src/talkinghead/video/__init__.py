"""Direct audio-to-video generators (DESIGN.md "Data flow"): frames straight from speech and one portrait.

- :mod:`.emo`: EMO (Tian et al. 2024), a Stable Diffusion 1.5-structured video diffusion UNet with ReferenceNet,
  audio layers, temporal modules, motion frames, face locator and speed layers;
- :mod:`.dice`: DICE-Talk (Tan et al. 2025), a Stable Video Diffusion-structured UNet in the EDM framework with a
  disentangled emotion embedder, an emotion bank and emotion discrimination.

Both decode with the latent VAE of :mod:`talkinghead.nn.latent` (a diffusers ``AutoencoderKL``: Stable Diffusion's
from a local folder, or a small one trained here).
"""
