"""talkinghead: a portrait and speech to an expressive talking-head video with diffusion models.

The package implements DreamTalk, Dimitra, FD2Talk, EMO and DICE-Talk as trainable components
behind one pipeline. See README.md for the commands and docs/ for the contracts.
"""

from talkinghead.errors import TalkingHeadError

__version__ = "0.1.0"
__all__ = ["TalkingHeadError", "__version__"]
