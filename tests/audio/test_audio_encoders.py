from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from talkinghead.audio.encoders import SpeechEncoder
from talkinghead.audio.features import extract_features
from talkinghead.audio.frames import frame_count, frame_times, to_frames
from talkinghead.audio.spec import AudioFeatureSpec, check_compatible
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio

SR = 16_000


def _save(model: torch.nn.Module, path: Path) -> Path:
    model.save_pretrained(str(path))
    return path


def tiny_wav2vec2(path: Path, cls: str = "wav2vec2") -> Path:
    torch.manual_seed(0)
    kwargs = dict(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                  conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=8)
    if cls == "hubert":
        return _save(transformers.HubertModel(transformers.HubertConfig(**kwargs)), path)
    return _save(transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**kwargs)), path)


def tiny_whisper(path: Path, positions: int = 100) -> Path:
    torch.manual_seed(0)
    cfg = transformers.WhisperConfig(d_model=16, encoder_layers=2, encoder_attention_heads=2, decoder_layers=1,
                                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                     num_mel_bins=80, max_source_positions=positions, max_target_positions=16,
                                     vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                     decoder_start_token_id=1)
    return _save(transformers.WhisperModel(cfg), path)


def speech(seconds: float, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(t.size)
    return Audio(x.astype(np.float32))


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_ctc_encoders_load_from_a_saved_tiny_config_and_give_T_by_D(tmp_path: Path, kind: str) -> None:
    enc = SpeechEncoder(tiny_wav2vec2(tmp_path / kind, kind))
    assert enc.model_type == kind and enc.hidden_size == 16 and enc.num_layers == 3
    for seconds in (0.3, 1.37, 2.0):
        audio = speech(seconds)
        out = enc.encode(audio, fps=25.0, layers=(-1,))
        assert out.shape == (frame_count(audio.samples.size, 25.0), 16)
    both = enc.encode(speech(1.0), layers=(1, 3))
    np.testing.assert_allclose(both[:, 16:], enc.encode(speech(1.0), layers=(-1,)), atol=1e-5)
    assert both.shape == (25, 32)
    assert enc.encode(speech(1.0), fps=30.0).shape == (30, 16)


def test_ctc_encoder_output_is_the_model_interpolated_at_frame_centres(tmp_path: Path) -> None:
    path = tiny_wav2vec2(tmp_path / "w")
    audio = speech(1.5)
    enc = SpeechEncoder(path)
    model = transformers.Wav2Vec2Model.from_pretrained(str(path), local_files_only=True).eval()
    x = audio.samples
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)[None]).last_hidden_state[0].numpy()
    assert ref.shape[0] == 74  # 49 Hz: floor((N - 400) / 320) + 1
    times = (np.arange(ref.shape[0]) * 320 + 200) / SR
    expected = to_frames(ref, times, 38, 25.0, mode="linear")
    np.testing.assert_allclose(enc.encode(audio), expected, atol=1e-4)
    centres = frame_times(38)
    assert np.all(np.diff(centres) > 0)


def test_long_audio_is_chunked_with_small_edge_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import talkinghead.audio.encoders as encoders

    enc = SpeechEncoder(tiny_wav2vec2(tmp_path / "w"))
    audio = speech(6.0)
    whole = enc.encode(audio)
    monkeypatch.setattr(encoders, "CTC_CHUNK_SECONDS", 2.5)
    monkeypatch.setattr(encoders, "CTC_CONTEXT_SECONDS", 0.5)
    chunked = enc.encode(audio)
    assert chunked.shape == whole.shape == (150, 16)
    rel = np.linalg.norm(chunked - whole, axis=1) / np.linalg.norm(whole, axis=1)
    assert np.median(rel) < 0.1


def test_whisper_pads_each_chunk_and_keeps_valid_frames(tmp_path: Path) -> None:
    # max_source_positions=100 -> the encoder takes exactly 200 mel frames (2 s): 5.3 s needs chunks.
    enc = SpeechEncoder(tiny_whisper(tmp_path / "wh"))
    assert enc.model_type == "whisper" and enc._extractor.n_samples == 32_000
    for seconds in (0.7, 5.3):
        audio = speech(seconds)
        out = enc.encode(audio, layers=(-1, 0))
        assert out.shape == (frame_count(audio.samples.size, 25.0), 32)
        assert np.isfinite(out).all()
    # A short clip in one chunk equals the encoder run on the padded mel, sliced and interpolated.
    audio = speech(1.2)
    fe = enc._extractor
    mel = fe(audio.samples, sampling_rate=SR, return_tensors="np", padding="max_length").input_features
    with torch.no_grad():
        ref = enc.model(torch.from_numpy(mel)).last_hidden_state[0, :60].numpy()  # 1.2 s at 50 Hz
    expected = to_frames(ref, np.arange(60) * 0.02, 30, 25.0, mode="linear")
    np.testing.assert_allclose(enc.encode(audio), expected, atol=1e-4)


def test_feature_spec_with_an_encoder_and_compatibility(tmp_path: Path) -> None:
    enc = SpeechEncoder(tiny_wav2vec2(tmp_path / "hub", "hubert"))
    spec = enc.spec(AudioFeatureSpec.preset("dreamtalk_style", layers=(-1,)))
    assert spec.encoder_dim == 16 and spec.dims == 16 + 13 + 26 + 1 + 1
    out = extract_features(speech(1.0), spec, enc)
    assert out.shape == (25, spec.dims)
    stored = json.loads(json.dumps(spec.to_dict()))
    check_compatible(stored, spec)
    with pytest.raises(TalkingHeadError, match="do not match"):
        check_compatible(stored, spec.replace(layers=(2,)))
    with pytest.raises(TalkingHeadError, match="need"):
        extract_features(speech(1.0), spec, None)
    w2v = SpeechEncoder(tiny_wav2vec2(tmp_path / "w2v"))
    with pytest.raises(TalkingHeadError, match="hubert"):
        extract_features(speech(1.0), spec, w2v)


def test_clear_errors_for_missing_or_unsupported_models(tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError, match="does not exist"):
        SpeechEncoder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TalkingHeadError, match="config.json"):
        SpeechEncoder(tmp_path / "empty")
    bert = tmp_path / "bert"
    transformers.BertModel(transformers.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                                   intermediate_size=8, vocab_size=10)).save_pretrained(str(bert))
    with pytest.raises(TalkingHeadError, match="supported speech encoders"):
        SpeechEncoder(bert)
    broken = tiny_wav2vec2(tmp_path / "broken")
    for f in broken.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(TalkingHeadError, match="could not be loaded"):
        SpeechEncoder(broken)
    enc = SpeechEncoder(tiny_wav2vec2(tmp_path / "ok"))
    with pytest.raises(TalkingHeadError, match="Layer 9"):
        enc.encode(speech(0.5), layers=(9,))
