"""Property-based fuzzing of the project's own formats (issue 19): random corruptions of valid files (a value
replaced by any JSON value, a key removed or added, cells of the manifest, bytes of the file) must end in a
:class:`TalkingHeadError`, never in another exception; and what loads must hold what the format promises (finite
numbers, positive frame rates, ranges).

Covered: a checkpoint's ``config.json`` (loading a real component, DreamTalk's denoiser), motion files (their
``meta`` JSON, their arrays and their bytes), a dataset's ``dataset.json``, ``manifest.csv`` and clip files, a
video dataset's description and the training config. Hypothesis runs derandomized (the same examples on every
run), without its example database, and keeps its caches in the temporary folder, not in the repository.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from talkinghead.errors import TalkingHeadError

sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline"))
from pipeline_helpers import make_random_checkpoints  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "talkinghead-hypothesis")

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# any JSON value (NaN and infinities too: Python's json reads and writes them); integers small enough that a size
# made of one stays cheap to build
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path (keys and indices) of every node of a JSON tree, the root's ``()`` first."""
    yield prefix
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def corrupt(data: st.DataObject, tree: Any) -> Any:
    """``tree`` with one random corruption: a node replaced by any JSON value, a key removed, a key added."""
    tree = json.loads(json.dumps(tree))
    path = data.draw(st.sampled_from(list(_paths(tree))), label="path")
    action = data.draw(st.sampled_from(["replace", "remove", "add"]), label="action")
    if not path:
        return data.draw(JSON, label="root") if action == "replace" else tree
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[path[-1]] = data.draw(JSON, label="value")
    elif action == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=5), label="key")] = data.draw(JSON, label="value")
    return tree


def corrupt_bytes(data: st.DataObject, raw: bytes) -> bytes:
    """``raw`` truncated, with bytes overwritten, or replaced by random bytes."""
    action = data.draw(st.sampled_from(["truncate", "flip", "random"]), label="bytes")
    if action == "truncate":
        return raw[:data.draw(st.integers(0, len(raw) - 1), label="length")]
    if action == "flip":
        out = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
        return bytes(out)
    return data.draw(st.binary(max_size=200), label="random")


def loads_or_refuses(load: Callable[[], Any]) -> Any:
    """``load()``'s result, or None when it refused with the project's error (anything else fails the test)."""
    try:
        return load()
    except TalkingHeadError as err:
        assert str(err).endswith(".") and "\n" not in str(err)
        return None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_checkpoints(tmp_path_factory.mktemp("fuzz_ckpt"), bank=False) / "denoiser"


@pytest.fixture(scope="module")
def motion_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from talkinghead.face.model import ARKIT_LAYOUT
    from talkinghead.sequence import MotionSequence

    rng = np.random.default_rng(0)
    motion = MotionSequence(rng.normal(size=(12, ARKIT_LAYOUT.size)), rng.normal(size=(12, 6)), ARKIT_LAYOUT, 25.0,
                            {"descriptor": np.ones(4, np.float32)}, "fuzz")
    return motion.save(tmp_path_factory.mktemp("fuzz_motion") / "m.npz")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from talkinghead.training.toydata import make_toy_dataset

    root = tmp_path_factory.mktemp("fuzz_dataset") / "toy"
    make_toy_dataset(root, speakers=2, clips_per_speaker=2, frames=(20, 24))
    return root


class Replaced:
    """Files of a fixture replaced for one example and put back after it."""

    def __init__(self, *paths: Path) -> None:
        self.saved = {p: p.read_bytes() for p in paths}

    def __enter__(self) -> Replaced:
        return self

    def __exit__(self, *exc: object) -> None:
        for path, raw in self.saved.items():
            path.write_bytes(raw)


@FUZZ
@given(data=st.data())
def test_checkpoint_config(checkpoint: Path, data: st.DataObject) -> None:
    from talkinghead.checkpoint import read_checkpoint_info
    from talkinghead.motion.dreamtalk import DreamTalkDenoiser

    cfg = checkpoint / "config.json"
    with Replaced(cfg):
        if data.draw(st.booleans(), label="bytes?"):
            cfg.write_bytes(corrupt_bytes(data, cfg.read_bytes()))
        else:
            cfg.write_text(json.dumps(corrupt(data, json.loads(cfg.read_text()))))
        info = loads_or_refuses(lambda: read_checkpoint_info(checkpoint))
        model = loads_or_refuses(lambda: DreamTalkDenoiser.from_pretrained(checkpoint))
    if model is not None:
        assert info is not None and isinstance(model.audio_features, dict | None)
        assert all(isinstance(v, int) and v >= 0 for v in (model.config.d_model, model.config.heads))


@FUZZ
@given(data=st.data())
def test_motion_file(motion_file: Path, data: st.DataObject) -> None:
    from talkinghead.sequence import MotionSequence

    with np.load(motion_file) as npz:
        arrays = {k: npz[k] for k in npz.files}
    with Replaced(motion_file):
        kind = data.draw(st.sampled_from(["meta", "array", "bytes"]), label="what")
        if kind == "meta":
            arrays["meta"] = np.array(json.dumps(corrupt(data, json.loads(str(arrays["meta"])))))
        elif kind == "array":
            name = data.draw(st.sampled_from(["expression", "pose", "meta", "identity/descriptor"]), label="array")
            arrays[name] = data.draw(st.sampled_from([
                np.full_like(arrays["expression"], np.nan), np.full((3, 2), np.inf), np.zeros((0, 6)),
                np.array(["a", "b"]), np.array(3.0), arrays["pose"], np.full(arrays["pose"].shape, 1e39)]),
                label="value")
        if kind == "bytes":
            motion_file.write_bytes(corrupt_bytes(data, motion_file.read_bytes()))
        else:
            with open(motion_file, "wb") as fh:
                np.savez(fh, **arrays)
        motion = loads_or_refuses(lambda: MotionSequence.load(motion_file))
    if motion is not None:
        assert math.isfinite(motion.fps) and motion.fps > 0
        assert np.isfinite(motion.expression).all() and np.isfinite(motion.pose).all()
        assert motion.expression.shape == (len(motion), motion.layout.size) and motion.pose.shape == (len(motion), 6)


@FUZZ
@given(data=st.data())
def test_dataset_description_and_manifest(dataset: Path, data: st.DataObject) -> None:
    from talkinghead.data.dataset import Dataset

    description, manifest = dataset / "dataset.json", dataset / "manifest.csv"
    clip = next(p for p in sorted((dataset / "clips").glob("*.npz")))
    with Replaced(description, manifest, clip):
        kind = data.draw(st.sampled_from(["description", "cell", "row", "bytes", "clip"]), label="what")
        if kind == "description":
            description.write_text(json.dumps(corrupt(data, json.loads(description.read_text()))))
        elif kind in ("cell", "row"):
            lines = manifest.read_text().splitlines()
            row = data.draw(st.integers(1, len(lines) - 1), label="row")
            cells = lines[row].split(",")
            if kind == "cell":
                cells[data.draw(st.integers(0, len(cells) - 1), label="column")] = data.draw(
                    st.sampled_from(["", "abc", "-1", "nan", "inf", "1e999", "0", "4", "x/y", ".hidden", "s0_c1",
                                     "ünï", '"']), label="value")
            else:
                cells = cells[:data.draw(st.integers(0, len(cells) + 2), label="cells")] + ["extra"] * 3
            lines[row] = ",".join(cells)
            manifest.write_text("\n".join(lines) + "\n")
        elif kind == "bytes":
            target = data.draw(st.sampled_from([description, manifest]), label="file")
            target.write_bytes(corrupt_bytes(data, target.read_bytes()))
        else:
            clip.write_bytes(corrupt_bytes(data, clip.read_bytes()))

        def read_all() -> Dataset:
            ds = Dataset(dataset)
            for clip_id in ds.ids():
                ds.clip(clip_id)
            return ds

        ds = loads_or_refuses(read_all)
    if ds is not None:
        assert math.isfinite(ds.info.fps) and ds.info.fps > 0 and ds.info.sample_rate >= 1
        assert len(set(ds.ids())) == len(ds)
        for row in ds.rows:
            assert 1 <= row.intensity <= 3 and row.duration >= 0 and row.num_frames >= 0
            assert row.split in ("train", "val", "test")


@FUZZ
@given(data=st.data())
def test_video_dataset_description(data: st.DataObject) -> None:
    from talkinghead.data.video.format import VideoDatasetInfo
    from talkinghead.face.model import ARKIT_LAYOUT

    valid = VideoDatasetInfo(25.0, 128, ARKIT_LAYOUT).to_dict()
    info = loads_or_refuses(lambda: VideoDatasetInfo.from_dict(corrupt(data, valid)))
    if info is not None:
        assert info.fps > 0 and info.crop_scale > 0 and math.isfinite(info.fps) and math.isfinite(info.crop_scale)
        assert isinstance(info.size, int) and isinstance(info.extra, dict)


@FUZZ
@given(data=st.data())
def test_training_config(data: st.DataObject) -> None:
    from talkinghead.training.loop import TrainConfig

    config = loads_or_refuses(lambda: TrainConfig.from_dict(corrupt(data, TrainConfig.preset("tiny").to_dict())))
    if config is not None:
        assert config.steps >= 1 and config.batch_size >= 1 and config.lr > 0 and 0 <= config.ema_decay <= 1
        assert 0 <= config.seed < 2**32


def test_corruptions_reach_every_field() -> None:
    """The corruption strategy can touch every node of a file (no field is out of the fuzzer's reach)."""
    tree = {"a": [1, {"b": 2.0}], "c": None}
    assert set(_paths(tree)) == {(), ("a",), ("a", 0), ("a", 1), ("a", 1, "b"), ("c",)}
