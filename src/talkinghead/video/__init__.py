"""Direct audio-to-video generators (DESIGN.md "Data flow"): frames straight from speech and one portrait.

- :mod:`.latent`: the latent VAE shared by the video generators (a diffusers ``AutoencoderKL``: Stable Diffusion's
  from a local folder, or a small one trained here);
- :mod:`.emo`: EMO (Tian et al. 2024), a Stable Diffusion 1.5-structured video diffusion UNet with ReferenceNet,
  audio layers, temporal modules, motion frames, face locator and speed layers.
"""
