"""Motion generators (diffusion over face-motion coefficients) and the motion file format."""
