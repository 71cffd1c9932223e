"""Paper-neutral network blocks shared by the motion and video models (DESIGN.md, "Layout").

* :mod:`~talkinghead.nn.embeddings`: ``sinusoidal_positions``, ``StepEmbedding`` (diffusion step).
* :mod:`~talkinghead.nn.pooling`: ``SelfAttentionPooling`` (tokens -> one vector).
* :mod:`~talkinghead.nn.normalize`: ``Normalizer`` (per-channel statistics kept as checkpoint buffers).
* :mod:`~talkinghead.nn.attention`: ``transformer_encoder`` (a batch-first ``nn.TransformerEncoder``).

They came out of DreamTalk's networks (``motion/dreamtalk``), which use all four; nothing here knows a
paper, a noise schedule or a channel layout. Attribute names are part of the checkpoints' state-dict
keys, so renaming one breaks every shipped checkpoint.
"""

from talkinghead.nn.attention import transformer_encoder
from talkinghead.nn.embeddings import StepEmbedding, sinusoidal_positions
from talkinghead.nn.normalize import Normalizer
from talkinghead.nn.pooling import SelfAttentionPooling

__all__ = ["Normalizer", "SelfAttentionPooling", "StepEmbedding", "sinusoidal_positions", "transformer_encoder"]
