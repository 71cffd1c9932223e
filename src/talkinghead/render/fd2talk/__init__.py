"""FD2Talk's frame generator (Sec. 3.3, 3.4.2): the perceptual network, the latent autoencoder with the
reference-conditioned decoder, the Diffusion UNet with two cross-attentions, their solvers and the renderer."""
