"""Audio frontend: frame-aligned features, pretrained speech encoders, phonemes and alignment, TTS.

* :mod:`~talkinghead.audio.frames`: ``frame_count`` (the one definition of T), ``frame_windows``, ``to_frames``.
* :mod:`~talkinghead.audio.spec`: ``AudioFeatureSpec`` (stored in checkpoints), ``check_compatible``.
* :mod:`~talkinghead.audio.features`: log-mel, MFCC, FBANK, f0, voicing, energy (``extract_features``).
* :mod:`~talkinghead.audio.encoders`: wav2vec 2.0 / HuBERT / Whisper from a local folder (``SpeechEncoder``).
* :mod:`~talkinghead.audio.phonemes`: ``PHONEME_VOCAB``, ``ipa_to_arpabet``, ``phoneme_to_viseme``, ``frame_tokens``.
* :mod:`~talkinghead.audio.align`: pocketsphinx forced alignment (``align``).
* :mod:`~talkinghead.audio.preprocess`: DC, clipping, loudness, silence, streaming of long files.
* :mod:`~talkinghead.audio.tts`: espeak-ng speech synthesis with phoneme timings.

Heavy dependencies (librosa, transformers, pocketsphinx) are imported by the submodules that need them.
"""

from talkinghead.audio.frames import DEFAULT_FPS, frame_count, frame_windows
from talkinghead.audio.spec import AudioFeatureSpec, check_compatible

__all__ = ["DEFAULT_FPS", "AudioFeatureSpec", "check_compatible", "frame_count", "frame_windows"]
