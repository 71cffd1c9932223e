"""The SyncNet-style lip-sync judge: LSE-D/LSE-C by hand, training, offsets, save/load, crops."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.syncnet import (
    SyncNet,
    SyncNetConfig,
    SyncTrainConfig,
    evaluate_offsets,
    mouth_crop,
    mouth_motion_features,
    offset_distances,
    prepare_clips,
    shift_audio,
    summarize,
    sync_scores,
    train_syncnet,
)
from talkinghead.sequence import ChannelLayout, MotionSequence

sys.path.insert(0, str(Path(__file__).parent))
from sync_helpers import speech_and_mouth, write_dataset  # noqa: E402

LAYOUT = ChannelLayout("t", ("open", "round", "brow", "blink"), {"mouth": ("open", "round")})


def test_scores_match_a_hand_computed_case() -> None:
    # 1-D embeddings: visual v_t = t, audio a_t = t - 2, so the distance is 0 at offset +2.
    v = np.arange(10, dtype=float)[:, None]
    a = v - 2.0
    offsets, d = offset_distances(v, a, max_offset=3)
    assert offsets.tolist() == [-3, -2, -1, 0, 1, 2, 3]
    # offset k compares v_t with a_(t+k) = t + k - 2: |k - 2| for every frame
    np.testing.assert_allclose(d, [5, 4, 3, 2, 1, 0, 1])
    s = sync_scores(v, a, max_offset=3)
    assert s.offset == 2 and s.lse_d == pytest.approx(0.0)
    assert s.lse_c == pytest.approx(2.0)  # median(5,4,3,2,1,0,1) - 0
    summary = summarize([s, s], expected=[2, 0])
    assert summary.offset_accuracy == pytest.approx(0.5) and summary.lse_c == pytest.approx(2.0)


def test_short_clips_limit_the_offsets_and_bad_shapes_fail() -> None:
    offsets, _ = offset_distances(np.zeros((6, 2)), np.zeros((6, 2)), 15)
    assert offsets.max() == 4  # at least a third of the frames stay in every average
    with pytest.raises(TalkingHeadError):
        offset_distances(np.zeros((6, 2)), np.zeros((5, 2)), 3)
    with pytest.raises(TalkingHeadError):
        SyncNetConfig(domain="audio")


def test_shift_audio_moves_samples_by_whole_frames() -> None:
    x = np.arange(1, 6401, dtype=np.float32)
    later = shift_audio(x, 2)
    assert np.all(later[:1280] == 0) and later[1280] == 1.0 and len(later) == len(x)
    earlier = shift_audio(x, -1)
    assert earlier[0] == 641.0 and np.all(earlier[-640:] == 0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyncNet, dict, Path]:
    torch.manual_seed(0)
    root = write_dataset(tmp_path_factory.mktemp("sync") / "ds", LAYOUT, {}, {"train": 24, "test": 8}, frames=60)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny layers: threads only add overhead on a shared machine
    try:
        model, report = train_syncnet(root, "motion", "tiny", SyncTrainConfig.preset("tiny"))
    finally:
        torch.set_num_threads(threads)
    return model, report, root


def test_training_discriminates_offsets_well_above_chance(trained: tuple[SyncNet, dict, Path]) -> None:
    model, report, _ = trained
    assert report["last_loss"] < 0.5 * report["first_loss"]
    assert report["eval_chance"] < 0.1
    assert report["eval_in_sync_accuracy"] >= 0.75
    assert report["eval_shifted_accuracy"] >= 0.75
    assert model.config.visual_source == "channels:mouth" and model.config.visual_dim == 2


def test_shifting_the_audio_moves_the_detected_offset(trained: tuple[SyncNet, dict, Path]) -> None:
    model, _, root = trained
    clips, _ = prepare_clips(root, "test", model.config)
    hits = 0
    for clip in clips[:4]:
        base = model.score(clip.audio, clip.visual).offset
        for k in (-4, 3):
            moved = model.score(shift_audio(clip.audio, k), clip.visual).offset
            hits += abs((moved - base) - k) <= 1
    assert hits >= 7  # of 8


def test_in_sync_pairs_are_closer_than_shuffled_pairs(trained: tuple[SyncNet, dict, Path]) -> None:
    model, _, root = trained
    clips, _ = prepare_clips(root, "test", model.config)
    lower = 0
    for i, clip in enumerate(clips):
        other = clips[(i + 1) % len(clips)]
        n = min(len(clip), len(other))
        synced = model.score(clip.audio[: n * 640], clip.visual[:n])
        shuffled = model.score(other.audio[: n * 640], clip.visual[:n])
        lower += synced.lse_d < shuffled.lse_d and synced.lse_c > shuffled.lse_c
    assert lower >= len(clips) - 1


def test_save_and_load_give_the_same_scores(trained: tuple[SyncNet, dict, Path], tmp_path: Path) -> None:
    model, _, root = trained
    model.save_pretrained(tmp_path / "judge")
    loaded = SyncNet.from_pretrained(tmp_path / "judge")
    clips, _ = prepare_clips(root, "test", model.config, limit=1)
    a = model.score(clips[0].audio, clips[0].visual)
    b = loaded.score(clips[0].audio, clips[0].visual)
    assert a.offset == b.offset and a.lse_d == pytest.approx(b.lse_d, rel=1e-5)
    assert evaluate_offsets(loaded, clips, shifts=())["clips"] == 1.0


def test_face_model_mouth_features_ignore_identity_and_pose() -> None:
    from talkinghead.data.speakers import base_identity
    from talkinghead.face.model import ARKIT_LAYOUT

    identity = {k: np.array(v) for k, v in base_identity().items()}
    expr = np.zeros((3, ARKIT_LAYOUT.size), np.float32)
    expr[1, ARKIT_LAYOUT.channels.index("jawOpen")] = 1.0
    pose = np.zeros((3, 6), np.float32)
    pose[:, 1] = [0.0, 0.3, -0.3]
    feats, source = mouth_motion_features(MotionSequence(expr, pose, ARKIT_LAYOUT, 25.0, identity))
    assert source == "face_model:lips" and feats.shape == (3, 120)
    assert np.allclose(feats[0], 0) and np.allclose(feats[2], 0) and np.abs(feats[1]).max() > 0.05


def test_mouth_crop_follows_a_rotated_and_scaled_face() -> None:
    # A bright disc at the lip centre must land in the crop centre whatever the face's rotation and scale.
    from talkinghead.face.model import mouth_vertex_indices

    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (468, 2))
    base[33], base[263] = (-1.0, 0.0), (1.0, 0.0)
    lips = mouth_vertex_indices()
    base[lips] = rng.normal(0, 0.05, (len(lips), 2)) + (0.0, 0.9)
    for angle, scale in ((0.0, 60.0), (0.4, 90.0)):
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = base @ rot.T * scale + (160.0, 150.0)
        frame = np.zeros((320, 320, 3), np.uint8)
        centre = pts[lips].mean(0) + 0.12 * scale * 2 * rot @ np.array([0.0, 1.0])
        yy, xx = np.mgrid[:320, :320]
        frame[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 < (0.1 * scale) ** 2] = 255
        crop = mouth_crop(frame, pts, pts, 32, 48)
        ys, xs = np.nonzero(crop > 128)
        assert abs(xs.mean() - 23.5) < 2 and abs(ys.mean() - 15.5) < 2


def test_video_judge_trains_on_rendered_crops(tmp_path: Path) -> None:
    from talkinghead.data.speakers import base_identity
    from talkinghead.face.model import ARKIT_LAYOUT

    identity = {k: np.array(v) for k, v in base_identity().items()}
    root = write_dataset(tmp_path / "ds", ARKIT_LAYOUT, identity, {"train": 3, "test": 1}, frames=30,
                         mouth=("jawOpen", "mouthFunnel"))
    model, report = train_syncnet(root, "video", "tiny", SyncTrainConfig.preset("tiny", steps=3, render_size=64))
    assert model.config.visual_source == "video:mouth_crops"
    assert np.isfinite(report["eval_lse_d"]) and report["eval_clips"] == 1.0
    audio, _ = speech_and_mouth(np.random.default_rng(1), 30)
    clips, _ = prepare_clips(root, "test", model.config, render_size=64)
    assert clips[0].visual.shape == (30, 32, 48) and clips[0].visual.dtype == np.uint8
    assert clips[0].visual.std() > 5  # a real image, not a constant
    assert np.isfinite(model.score(audio, clips[0].visual).lse_c)
