"""The emotion style bank: mean style codes per (emotion, intensity) over a dataset's training split,
its files, lookups, the denoiser check and the build-style-bank command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead.cli import main
from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dreamtalk import DenoiserConfig, DreamTalkDenoiser
from talkinghead.motion.dreamtalk.style_bank import BANK_META, BANK_WEIGHTS, StyleBank, build_style_bank
from talkinghead.training.toydata import make_toy_dataset, toy_layout


def _denoiser(seed: int = 0) -> DreamTalkDenoiser:
    torch.manual_seed(seed)
    return DreamTalkDenoiser(DenoiserConfig.preset("tiny", audio_dim=8, expression_dim=10),
                             toy_layout().to_dict(), {"names": ["toy"], "dims": [8]}).eval()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data", speakers=3, clips_per_speaker=4).root


def test_bank_is_the_mean_of_clip_codes(toy: Path, tmp_path: Path) -> None:
    den = _denoiser()
    bank = build_style_bank(toy, den)
    data = Dataset(toy)
    ids = data.ids("train")
    assert sum(bank.counts.values()) == len(ids)
    key = max(bank.counts, key=lambda k: bank.counts[k])
    members = [data.clip(i) for i in ids if (data.meta(i).emotion, data.meta(i).intensity) == key]
    codes = [den.encode_style(torch.from_numpy(np.concatenate([c.motion.expression, c.motion.pose], 1))[None])[0]
             for c in members]
    np.testing.assert_allclose(bank.codes[key], torch.stack(codes).mean(0).detach().numpy(), atol=1e-5)
    # save / load round trip and lookups
    bank.save(tmp_path)
    assert (tmp_path / BANK_WEIGHTS).exists() and (tmp_path / BANK_META).exists()
    loaded = StyleBank.load(tmp_path)
    assert loaded.counts == bank.counts and loaded.fingerprint == bank.fingerprint
    np.testing.assert_array_equal(loaded.lookup(*key), bank.codes[key])
    emotion = key[0]
    levels = [k for k in bank.codes if k[0] == emotion]
    weights = np.array([bank.counts[k] for k in levels], float)
    mean = sum(w * bank.codes[k] for w, k in zip(weights, levels, strict=True)) / weights.sum()
    np.testing.assert_allclose(loaded.lookup(emotion), mean, atol=1e-6)
    # the bank belongs to its denoiser
    loaded.check_denoiser(den)
    with pytest.raises(TalkingHeadError, match="another denoiser"):
        loaded.check_denoiser(_denoiser(seed=1))
    with pytest.raises(TalkingHeadError, match="no emotion"):
        loaded.lookup("bored")


def test_bank_codes_separate_emotions(toy: Path) -> None:
    """Toy emotions shift the face channels, so their mean codes differ while one emotion's codes agree."""
    bank = build_style_bank(toy, _denoiser())
    codes = np.stack(list(bank.codes.values()))
    assert np.linalg.norm(codes - codes.mean(0), axis=1).min() > 1e-3


def test_build_style_bank_command(toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _denoiser().save_pretrained(tmp_path / "ck" / "denoiser")
    assert main(["build-style-bank", "--data", str(toy), "--checkpoint", str(tmp_path / "ck")]) == 0
    assert "style bank in" in capsys.readouterr().out
    assert StyleBank.load(tmp_path / "ck").codes
    from talkinghead.generators import read_manifest  # the folder now says what it holds

    assert read_manifest(tmp_path / "ck") == {"version": 1, "generator": "dreamtalk", "kind": "motion",
                                              "components": {"denoiser": "denoiser", "style_bank": "style_bank.json"}}
    assert main(["build-style-bank", "--data", str(toy), "--checkpoint", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["build-style-bank", "--data", str(toy), "--checkpoint", str(tmp_path / "ck"), "--split", "x"]) == 2
    assert "split 'x'" in capsys.readouterr().err
