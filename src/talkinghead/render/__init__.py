"""Renderers: face motion + portrait -> frames. The default is the training-free mesh warp."""

from talkinghead.render.warp_renderer import (
    CropBox,
    WarpRenderer,
    WarpRendererConfig,
    render_motion,
    render_video,
)

__all__ = ["CropBox", "WarpRenderer", "WarpRendererConfig", "render_motion", "render_video"]
