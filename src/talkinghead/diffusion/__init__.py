"""Diffusion machinery shared by the motion generators: schedules, samplers, guidance (thin over diffusers).

Networks never see the schedule (DESIGN.md, "Style" 2): a network maps ``(x_t, t, cond) -> x0``; the
schedule adds noise in training (:func:`add_noise`), the samplers loop over timesteps, and guidance is
a wrapper around the network call.
"""

from talkinghead.diffusion.guidance import classifier_free_guidance, guided, interpolate_styles
from talkinghead.diffusion.samplers import sample
from talkinghead.diffusion.schedules import ScheduleConfig, add_noise, make_scheduler, sample_timesteps

__all__ = [
    "ScheduleConfig",
    "add_noise",
    "classifier_free_guidance",
    "guided",
    "interpolate_styles",
    "make_scheduler",
    "sample",
    "sample_timesteps",
]
