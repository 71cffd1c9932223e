"""Pretrained speech encoders (wav2vec 2.0, HuBERT, Whisper) loaded from a local directory.

DreamTalk (App. C.2.2) uses wav2vec 2.0 for the denoiser and lip expert and HuBERT for the style
predictor; Dimitra (III-B.2) wav2vec features; EMO (3.2, "Audio Layers") concatenates the features
of several wav2vec blocks; DICE-Talk (3.1) the Whisper-Tiny encoder. :class:`SpeechEncoder` loads any
of them with ``transformers`` from a directory (``from_pretrained(dir, local_files_only=True)``;
nothing is downloaded), returns the chosen hidden states (``output_hidden_states``; index 0 is the
input embedding, ``i`` the output of block ``i``, negative indices count from the end) concatenated
along features, and brings them from the encoder's own rate to exactly ``T = frame_count(N, fps)``
video frames by linear interpolation at the frame centres, using each encoder frame's true centre
time (wav2vec 2.0 / HuBERT: receptive field 400 samples, hop 320, i.e. 49 frames a second;
Whisper: 20 ms hop, 50 a second).

Long audio is encoded in chunks with context on both sides (self-attention makes a chunk's edges
differ slightly from one long pass; the context keeps that away from the frames kept). Whisper's
encoder only accepts exactly 30 s of log-mel (3000 frames, ``2 * max_source_positions`` in general):
each chunk is padded to that length and only the frames covering real audio are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkinghead.audio.frames import frame_count, to_frames
from talkinghead.audio.spec import ENCODER_KIND, AudioFeatureSpec
from talkinghead.errors import TalkingHeadError, first_line
from talkinghead.io.audio import Audio
from talkinghead.log import progress

SUPPORTED = ("wav2vec2", "hubert", "whisper")
CTC_CHUNK_SECONDS = 20.0
CTC_CONTEXT_SECONDS = 1.0


def _model_class(model_type: str) -> Any:
    import transformers

    return {"wav2vec2": transformers.Wav2Vec2Model, "hubert": transformers.HubertModel,
            "whisper": transformers.WhisperModel}[model_type]


class SpeechEncoder:
    """A frozen pretrained speech encoder from ``directory`` (a transformers ``save_pretrained`` folder)."""

    def __init__(self, directory: str | Path, device: str | torch.device = "cpu") -> None:
        self.directory = Path(directory)
        config_path = self.directory / "config.json"
        if not self.directory.is_dir():
            raise TalkingHeadError(f"The speech encoder directory {self.directory} does not exist.")
        if not config_path.exists():
            raise TalkingHeadError(f"{self.directory} has no config.json; it is not a transformers model folder.")
        try:
            raw = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TalkingHeadError(f"{config_path} is not valid JSON.") from err
        model_type = raw.get("model_type") if isinstance(raw, dict) else None
        if model_type not in SUPPORTED:
            raise TalkingHeadError(
                f"{self.directory} holds a '{model_type}' model; supported speech encoders are "
                f"{', '.join(SUPPORTED)}."
            )
        self.model_type: str = model_type
        try:
            model = _model_class(model_type).from_pretrained(str(self.directory), local_files_only=True)
        except (OSError, ValueError, RuntimeError) as err:
            raise TalkingHeadError(
                f"The {model_type} encoder in {self.directory} could not be loaded ({first_line(err)})."
            ) from err
        self.model = (model.get_encoder() if model_type == "whisper" else model).to(device).eval()
        self.device = torch.device(device)
        self.config = model.config
        self.hidden_size = int(model.config.d_model if model_type == "whisper" else model.config.hidden_size)
        cfg = model.config
        self.num_layers = int(cfg.encoder_layers if model_type == "whisper" else cfg.num_hidden_layers)
        self.encoder_id = str(raw.get("_name_or_path") or self.directory.name)
        self._extractor = self._load_extractor()

    def _load_extractor(self) -> Any:
        import transformers

        has_pre = (self.directory / "preprocessor_config.json").exists()
        if self.model_type == "whisper":
            if has_pre:
                fe = transformers.WhisperFeatureExtractor.from_pretrained(str(self.directory), local_files_only=True)
            else:
                fe = transformers.WhisperFeatureExtractor(feature_size=int(self.config.num_mel_bins))
            n_mel = 2 * int(self.config.max_source_positions)  # the encoder's fixed input length
            fe.nb_max_frames = n_mel
            fe.n_samples = n_mel * fe.hop_length
            return fe
        if has_pre:
            return transformers.AutoFeatureExtractor.from_pretrained(str(self.directory), local_files_only=True)
        return None

    # ----------------------------------------------------------------- geometry
    def output_dim(self, layers: tuple[int, ...]) -> int:
        return self.hidden_size * len(layers)

    def resolve_layers(self, layers: tuple[int, ...]) -> list[int]:
        """Hidden-state indices in ``[0, num_layers]`` (negative ones count from the end)."""
        n = self.num_layers + 1
        out = []
        for layer in layers:
            idx = layer + n if layer < 0 else layer
            if not 0 <= idx < n:
                raise TalkingHeadError(
                    f"Layer {layer} does not exist in this {self.model_type} encoder "
                    f"(0 = embeddings, 1..{self.num_layers} = blocks, or negative from the end)."
                )
            out.append(idx)
        return out

    def _ctc_geometry(self) -> tuple[int, int]:
        """(receptive field, hop) in samples of the convolutional feature encoder."""
        field, hop = 1, 1
        for k, s in zip(self.config.conv_kernel, self.config.conv_stride, strict=True):
            field += (k - 1) * hop
            hop *= s
        return field, hop

    def spec(self, base: AudioFeatureSpec) -> AudioFeatureSpec:
        """``base`` bound to this encoder (type, identity, width)."""
        if ENCODER_KIND not in base.kinds:
            return base
        return base.with_encoder(self.model_type, self.encoder_id, self.hidden_size)

    # ----------------------------------------------------------------- encoding
    @torch.inference_mode()
    def encode(self, audio: Audio, fps: float = 25.0, layers: tuple[int, ...] = (-1,)) -> np.ndarray:
        """``audio`` (16 kHz) -> ``[T, hidden * len(layers)]`` float32 with ``T = frame_count(N, fps)``."""
        if audio.sample_rate != 16_000:
            raise TalkingHeadError(f"Speech encoders take 16 kHz audio, got {audio.sample_rate} Hz.")
        if audio.samples.size == 0:
            raise TalkingHeadError("The audio is empty: there is nothing to encode.")
        idx = self.resolve_layers(tuple(layers))
        T = frame_count(audio.samples.size, fps, audio.sample_rate)
        if self.model_type == "whisper":
            chunk = self._extractor.n_samples / audio.sample_rate
            context = min(1.0, chunk / 10)
        else:
            chunk, context = CTC_CHUNK_SECONDS, CTC_CONTEXT_SECONDS
        step_frames = max(1, int((chunk - 2 * context) * fps))
        starts = list(range(0, T, step_frames))
        parts = []
        for f_lo in progress(starts, f"{self.model_type} features", total=len(starts)):
            f_hi = min(T, f_lo + step_frames)
            s_lo = max(0, int(round((f_lo / fps - context) * audio.sample_rate)))
            s_hi = min(audio.samples.size, int(round((f_hi / fps + context) * audio.sample_rate)))
            times, values = self._run(audio.samples[s_lo:s_hi], idx)
            times = times + s_lo / audio.sample_rate - f_lo / fps
            parts.append(to_frames(values, times, f_hi - f_lo, fps, mode="linear"))
        return np.concatenate(parts).astype(np.float32)

    def _run(self, samples: np.ndarray, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """One chunk -> (centre times in s relative to the chunk start [S], hidden states [S, D])."""
        sr = 16_000
        x = np.asarray(samples, dtype=np.float32)
        if self.model_type == "whisper":
            fe = self._extractor
            x = x[: fe.n_samples]
            mel = fe(x, sampling_rate=sr, return_tensors="np", padding="max_length").input_features
            inputs = torch.from_numpy(np.asarray(mel, dtype=np.float32)).to(self.device)
            out = self.model(inputs, output_hidden_states=True)
            hop = 2 * fe.hop_length  # conv2 has stride 2 over 10 ms mel frames
            valid = max(1, -(-x.size // hop))
            times = np.arange(valid) * hop / sr
        else:
            field, hop = self._ctc_geometry()
            if x.size < field:
                x = np.pad(x, (0, field - x.size))
            do_norm = getattr(self._extractor, "do_normalize", True) if self._extractor is not None else True
            if do_norm:
                x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
            inputs = torch.from_numpy(x)[None].to(self.device)
            out = self.model(inputs, output_hidden_states=True)
            valid = out.hidden_states[0].shape[1]
            times = (np.arange(valid) * hop + field / 2) / sr
        hidden = torch.cat([out.hidden_states[i][0, :valid] for i in idx], dim=-1)
        return times, hidden.float().cpu().numpy()


def load_encoder(directory: str | Path, device: str = "cpu") -> SpeechEncoder:
    """Load a wav2vec 2.0, HuBERT or Whisper encoder from a local directory."""
    return SpeechEncoder(directory, device)
