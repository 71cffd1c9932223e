"""Configs with presets, checkpoint directories, version checks and the refusal of pickle."""

from __future__ import annotations

import json
import pickle
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin, load_checkpoint, read_checkpoint_info
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError


@dataclass(frozen=True)
class TinyNetConfig(Config):
    width: int = 16
    depth: int = 2
    dropout: float = 0.1
    kind: str = "mlp"
    dims: tuple[int, ...] = (3, 4)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"width": 4, "depth": 1}, "paper": {"width": 256}}


class TinyNet(PretrainedMixin, nn.Module):
    component = "test.tiny_net"
    config_class = TinyNetConfig

    def __init__(self, config: TinyNetConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [nn.Linear(3, config.width)]
        layers += [nn.Linear(config.width, config.width) for _ in range(config.depth - 1)]
        self.net = nn.Sequential(*layers)
        self.layout = {"name": "test", "channels": ["a", "b"], "groups": {}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_presets_and_frozen() -> None:
    cfg = TinyNetConfig.preset("tiny")
    assert (cfg.width, cfg.depth, cfg.dropout) == (4, 1, 0.1)
    assert TinyNetConfig.preset("paper", depth=5).depth == 5
    with pytest.raises(FrozenInstanceError):
        cfg.width = 3  # type: ignore[misc]
    with pytest.raises(TalkingHeadError, match="no preset 'huge'"):
        TinyNetConfig.preset("huge")


def test_config_round_trip_and_strictness() -> None:
    cfg = TinyNetConfig(width=7, dims=(1, 2, 3))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert TinyNetConfig.from_dict(data) == cfg
    with pytest.raises(TalkingHeadError, match="does not know the key"):
        TinyNetConfig.from_dict({**data, "colour": "red"})
    with pytest.raises(TalkingHeadError, match="lacks the key"):
        TinyNetConfig.from_dict({"width": 3})
    with pytest.raises(TalkingHeadError, match="should be an integer"):
        TinyNetConfig.from_dict({**data, "width": "wide"})


@dataclass(frozen=True)
class GrownConfig(TinyNetConfig):
    gate: bool = True  # a field added after checkpoints without it were shipped
    added_fields: ClassVar[tuple[str, ...]] = ("gate",)


def test_a_config_written_before_an_added_field_loads_with_its_default() -> None:
    old = TinyNetConfig(width=7).to_dict()  # complete, but without "gate"
    assert GrownConfig.from_dict(old) == GrownConfig(width=7, gate=True)
    assert GrownConfig.from_dict({**old, "gate": False}).gate is False
    del old["depth"]  # any other missing key is still refused
    with pytest.raises(TalkingHeadError, match=r"lacks the key\(s\) depth;"):
        GrownConfig.from_dict(old)


def test_save_and_load_pretrained(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyNet(TinyNetConfig.preset("tiny"))
    model.preset_name = "tiny"
    model.save_pretrained(tmp_path / "ckpt", extra={"seed": 0})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    loaded = TinyNet.from_pretrained(tmp_path / "ckpt")
    x = torch.randn(5, 3)
    assert torch.equal(model(x), loaded(x))
    assert loaded.config == model.config and loaded.preset_name == "tiny"
    info = read_checkpoint_info(tmp_path / "ckpt")
    assert info.layout == model.layout and info.extra == {"seed": 0}
    # Saving again replaces the directory atomically.
    model.save_pretrained(tmp_path / "ckpt")
    assert TinyNet.from_pretrained(tmp_path / "ckpt").config == model.config


def test_refuses_pickle(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(TalkingHeadError, match="pickle"):
        TinyNet.from_pretrained(tmp_path / "model.pt")
    ckpt = tmp_path / "dir"
    ckpt.mkdir()
    (ckpt / "pytorch_model.bin").write_bytes(pickle.dumps({"w": 1}))
    (ckpt / "config.json").write_text("{}")
    with pytest.raises(TalkingHeadError, match="refuses pickle"):
        TinyNet.from_pretrained(ckpt)


def test_version_component_and_corruption(tmp_path: Path) -> None:
    model = TinyNet(TinyNetConfig.preset("tiny"))
    ckpt = model.save_pretrained(tmp_path / "c")
    meta = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(TalkingHeadError, match="format version 99"):
        TinyNet.from_pretrained(ckpt)
    (ckpt / "config.json").write_text(json.dumps({**meta, "component": "other"}))
    with pytest.raises(TalkingHeadError, match="'other' checkpoint"):
        TinyNet.from_pretrained(ckpt)
    (ckpt / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "extra_knob": 1}}))
    with pytest.raises(TalkingHeadError, match="another version"):
        TinyNet.from_pretrained(ckpt)
    (ckpt / "config.json").write_text(json.dumps(meta))
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(TalkingHeadError, match="corrupt"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(TalkingHeadError, match="not valid JSON"):
        read_checkpoint_info(ckpt)


def test_weights_that_do_not_match_config(tmp_path: Path) -> None:
    ckpt = TinyNet(TinyNetConfig.preset("tiny")).save_pretrained(tmp_path / "c")
    meta = json.loads((ckpt / "config.json").read_text())
    meta["config"]["width"] = 9
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(TalkingHeadError, match="does not match its config"):
        TinyNet.from_pretrained(ckpt)
