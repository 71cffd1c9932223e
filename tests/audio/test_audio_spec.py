from __future__ import annotations

from pathlib import Path

import pytest
import torch

from talkinghead.audio.spec import AudioFeatureSpec, check_compatible
from talkinghead.checkpoint import CheckpointInfo, read_checkpoint_info, save_checkpoint
from talkinghead.errors import TalkingHeadError


def test_presets_have_consistent_dims() -> None:
    assert AudioFeatureSpec.preset("lowlevel").dims == 80 + 13 + 26 + 3
    assert AudioFeatureSpec.preset("dreamtalk").dims == 1024 and AudioFeatureSpec.preset("dreamtalk").window == 5
    assert AudioFeatureSpec.preset("dreamtalk").window_dims == 11 * 1024
    assert AudioFeatureSpec.preset("emo").dims == 12 * 768
    assert AudioFeatureSpec.preset("dice").encoder == "whisper"
    spec = AudioFeatureSpec.preset("tiny")
    assert spec.slices()["f0"] == slice(16, 17)
    with pytest.raises(TalkingHeadError, match="kind"):
        AudioFeatureSpec(kinds=("loudness",))
    with pytest.raises(TalkingHeadError, match="encoder"):
        AudioFeatureSpec(kinds=("encoder",))
    with pytest.raises(TalkingHeadError, match="dims"):
        AudioFeatureSpec(kinds=("logmel",), dims=7)


def test_spec_travels_in_a_checkpoint_and_is_checked(tmp_path: Path) -> None:
    spec = AudioFeatureSpec.preset("cpu")
    save_checkpoint(tmp_path / "ck", CheckpointInfo(component="test.audio", config={}, audio_features=spec.to_dict()),
                    {"w": torch.zeros(2)})
    stored = read_checkpoint_info(tmp_path / "ck").audio_features
    assert AudioFeatureSpec.from_dict(stored) == spec
    check_compatible(stored, spec)
    for change in ({"fps": 30.0}, {"window": 2}, {"n_mels": 40}, {"normalization": "none"},
                   {"kinds": ("logmel",)}):
        with pytest.raises(TalkingHeadError, match="do not match"):
            check_compatible(stored, spec.replace(**change, dims=0))
    with pytest.raises(TalkingHeadError, match="no audio feature spec"):
        check_compatible(None, spec)
    with pytest.raises(TalkingHeadError, match="does not know"):
        check_compatible({**stored, "bogus": 1}, spec)
    # Encoder identity is compared when both sides name one.
    enc = AudioFeatureSpec.preset("dimitra").with_encoder("wav2vec2", "facebook/wav2vec2-base", 768)
    check_compatible(enc.to_dict(), enc.replace(encoder_id=""))
    with pytest.raises(TalkingHeadError, match="encoder_id"):
        check_compatible(enc.to_dict(), enc.replace(encoder_id="other"))
