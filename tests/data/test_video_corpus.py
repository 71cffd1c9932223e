"""The video dataset (issue 14): build, format round trips, every kind of loader sample, resume and shards,
real-video prepare, bad input, and ``dataset-info`` / ``preview`` on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.data.dataset import Dataset
from talkinghead.data.video.build import PortraitRenderer, VideoCorpusConfig, build_video_corpus
from talkinghead.data.video.format import MANIFEST_FIELDS, VideoDataset
from talkinghead.data.video.frames import (
    ClipFrames,
    boxes_in_crop,
    encode_frames,
    face_boxes,
    follow_crop,
    head_speed,
)
from talkinghead.data.video.loader import StepBatches, VideoSampler
from talkinghead.errors import TalkingHeadError


@pytest.fixture(scope="module")
def motion(make_corpus: Callable[..., Path]) -> Path:
    """The tiny motion corpus: speakers s000 (test) and s001 (train), neutral and happy, one sentence."""
    return make_corpus("tiny", "video_motion")


@pytest.fixture(scope="module")
def portraits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One portrait besides the built-in astronaut: the astronaut mirrored, another identity."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("portraits")
    Image.fromarray(np.ascontiguousarray(data.astronaut()[:, ::-1])).save(folder / "mirror.png")
    return folder


@pytest.fixture(scope="module")
def video(motion: Path, portraits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("video") / "corpus"
    report = build_video_corpus(motion, portraits, out, VideoCorpusConfig.preset("tiny"))
    assert report.made == report.clips == 4 and not report.failed_portraits
    return out


# ------------------------------------------------------------------------------------------ frames

def test_head_speed_is_degrees_between_frames() -> None:
    pose = np.zeros((10, 6))
    pose[:, 1] = np.radians(np.arange(10) * 1.5)  # yaw turning 1.5 degrees a frame
    pose[5:, 0] = np.radians(2.0)  # and a 2-degree pitch step at frame 5
    speed = head_speed(pose)
    assert speed.shape == (10,)
    assert np.allclose(speed[[1, 2, 3, 4, 6, 7, 8, 9]], 1.5, atol=1e-4) and speed[0] == speed[1]
    assert 2.0 < speed[5] < 1.5 + 2.0


def test_crop_follows_the_smoothed_face() -> None:
    boxes = np.zeros((50, 4))
    boxes[:, 0] = np.linspace(100, 150, 50)  # the face drifts right by 50 px
    boxes[:, 1], boxes[:, 2], boxes[:, 3] = 80, boxes[:, 0] + 60, 140
    crops = follow_crop(boxes, 120.0, 25.0, follow=0.2)
    assert np.all(crops[:, 2] == 120.0)
    centre = crops[:, :2] + 60
    assert np.allclose(centre[20:30, 0], boxes[20:30, 0] + 30, atol=0.5) and np.allclose(centre[:, 1], 110)
    in_crop = boxes_in_crop(boxes, crops, 128)
    assert np.allclose(in_crop[25], [32, 32, 96, 96], atol=1.0)


def _mean_of_frame(reader: ClipFrames, index: int) -> float:
    return float(reader.read([index]).mean())


def test_clip_frames_random_access(tmp_path: Path) -> None:
    frames = np.zeros((40, 64, 64, 3), np.uint8)
    for t in range(40):
        frames[t] = 5 * t  # every frame its own grey level
    assert encode_frames(tmp_path / "c.mp4", frames, 25.0) == 40
    reader = ClipFrames.from_file(tmp_path / "c.mp4", 25.0, 40, gop=16)
    for wanted in ([0], [39], [17, 3, 17, 30], list(range(39, -1, -6))):
        got = reader.read(wanted)
        assert [int(np.argmin(np.abs(frames[:, 0, 0, 0].astype(int) - g.mean()))) for g in got] == wanted
    with pytest.raises(TalkingHeadError):
        reader.read([40])
    # a forked child (a DataLoader worker) decodes after the parent did: no scaler threads are inherited
    import multiprocessing as mp

    with mp.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_mean_of_frame, (reader, 21)).get(timeout=60) == pytest.approx(105, abs=3)
    with pytest.raises(TalkingHeadError):
        encode_frames(tmp_path / "odd.mp4", np.zeros((2, 63, 64, 3), np.uint8), 25.0)
    assert not (tmp_path / "odd.mp4").exists()


# ------------------------------------------------------------------------------------- video corpus

def test_video_corpus_format_and_round_trips(video: Path, motion: Path) -> None:
    from talkinghead.face.model import project

    ds = VideoDataset(video)
    assert (video / "manifest.csv").read_text().splitlines()[0] == ",".join(MANIFEST_FIELDS)
    assert json.loads((video / "dataset.json").read_text())["schema_version"] == 1
    # splits by identity: the test speaker's clips are on the test identity, never seen in training
    assert {ds.meta(i).identity for i in ds.ids("train")} == {"astronaut"}
    assert {ds.meta(i).identity for i in ds.ids("test")} == {"mirror"}
    source = Dataset(motion)
    for clip_id in ds.ids():
        clip = ds.clip(clip_id)
        truth = source.clip(clip.extra["motion_clip"])
        t = len(truth.motion)
        assert len(clip) == t == clip.meta.num_frames and clip.meta.has_audio
        np.testing.assert_array_equal(clip.audio, truth.audio)
        np.testing.assert_array_equal(clip.features["logmel"], truth.features["logmel"])
        np.testing.assert_array_equal(clip.arrays["drive_expression"], truth.motion.expression)
        assert [p.label for p in clip.phones] == [p.label for p in truth.phones]
        # the stored boxes and speeds are those of the stored motion
        vertices = project(clip.motion.identity, clip.motion.expression, clip.motion.pose)
        np.testing.assert_allclose(clip.box, boxes_in_crop(face_boxes(vertices), clip.crop, ds.info.size), atol=1e-3)
        np.testing.assert_allclose(clip.speed, head_speed(clip.motion.pose), atol=1e-5)
        np.testing.assert_allclose(clip.motion.pose - clip.arrays["portrait_pose"], truth.motion.pose, atol=1e-6)
        assert ds.frames(clip_id).shape == (t, 128, 128, 3)
    # the frames are what the renderer drew (H.264 at crf 14: within a few grey levels)
    clip_id = ds.ids("train")[0]
    clip = ds.clip(clip_id)
    from talkinghead.data.video.portraits import find_portraits, fit_portraits

    fitted, _ = fit_portraits([p for p in find_portraits(None) if p.id == "astronaut"], video / "portraits")
    renderer = PortraitRenderer(fitted[0], 128, 2.0)
    k = len(clip) // 2
    offsets, placed = renderer.place(clip.crop[k:k + 1].astype(np.float64))
    np.testing.assert_allclose(placed, clip.crop[k:k + 1], atol=1e-3)
    drawn = next(renderer.frames(project(clip.motion.identity, clip.motion.expression[k:k + 1],
                                         clip.motion.pose[k:k + 1]), offsets))
    stored = ds.frames(clip_id, [k])[0]
    assert np.abs(drawn.astype(float) - stored).mean() < 3.0


def test_stored_box_is_where_the_face_is(video: Path) -> None:
    import cv2

    from talkinghead.face.landmarks import detect_landmarks

    ds = VideoDataset(video)
    clip_id = ds.ids("test")[0]
    k = 10
    frame = cv2.resize(ds.frames(clip_id, [k])[0], (256, 256), interpolation=cv2.INTER_CUBIC)
    found = face_boxes(detect_landmarks(frame).points[None, :468, :2])[0] / 2
    box = ds.clip(clip_id).box[k]
    inter = np.prod(np.clip(np.minimum(box[2:], found[2:]) - np.maximum(box[:2], found[:2]), 0, None))
    union = np.prod(box[2:] - box[:2]) + np.prod(found[2:] - found[:2]) - inter
    assert inter / union > 0.8


def test_loader_serves_every_kind_of_sample(video: Path) -> None:
    ds = VideoDataset(video)
    sampler = VideoSampler(ds, split=None)
    rng = np.random.default_rng(0)
    pairs = sampler.pairs(rng, 3)
    assert pairs.target.shape == pairs.reference.shape == (3, 128, 128, 3) and pairs.box.shape == (3, 4)
    assert np.all(pairs.index != pairs.ref_index)
    labels = ds.clip(pairs.clip_ids[0], audio=False)
    np.testing.assert_array_equal(pairs.target[0], ds.frames(pairs.clip_ids[0], [pairs.index[0]])[0])
    np.testing.assert_array_equal(pairs.expression[0], labels.motion.expression[pairs.index[0]])
    assert pairs.speed[0] == labels.speed[pairs.index[0]]

    dims = sum(sampler.dataset.info.audio_features["kinds"].values())
    win = sampler.windows(rng, 2, motion_frames=2, frames=4, context=1)
    assert win.frames.shape == (2, 6, 128, 128, 3) and win.reference.shape == (2, 128, 128, 3)
    assert win.audio_features.shape == (2, 4, 3, dims) and win.speed_window.shape == (2, 4, 3)
    assert win.audio.shape == (2, 6 * 640) and win.boxes.shape == (2, 6, 4)
    clip = ds.clip(win.clip_ids[0])
    s = int(win.start[0])
    np.testing.assert_array_equal(win.frames[0], ds.frames(win.clip_ids[0], range(s, s + 6)))
    np.testing.assert_array_equal(win.speed[0], clip.speed[s:s + 6])
    first_target = s + 2
    feats = np.concatenate([clip.features[n] for n in sampler.features], axis=1)
    np.testing.assert_array_equal(win.audio_features[0, 0], feats[first_target - 1:first_target + 2])
    a = (first_target - 1) * 640
    np.testing.assert_array_equal(win.audio[0][max(0, -a):], clip.audio[max(a, 0):a + 6 * 640])
    assert np.all(win.region[0, :2] <= clip.box[s + 2:s + 6, :2].min(0))

    emo = sampler.emotion_pairs(rng, 2, frames=4, context=1)
    for b in range(2):
        assert emo.clip.emotions[b] == emo.reference.emotions[b]
        assert emo.clip.identities[b] != emo.reference.identities[b]
    assert emo.clip.frames.shape == (2, 4, 128, 128, 3)

    batches = StepBatches(sampler, lambda smp, r: smp.pairs(r, 2), steps=10, seed=3)
    first, again = batches[7], batches[7]
    assert first["target"].shape == (2, 3, 128, 128) and float(first["target"].abs().max()) <= 1.0
    assert first["clip_ids"] == again["clip_ids"] and bool((first["target"] == again["target"]).all())


def test_shards_resume_and_cleanup(video: Path, motion: Path, portraits: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharded"
    config = VideoCorpusConfig.preset("tiny")
    made = [build_video_corpus(motion, portraits, out, config, shard=(i, 2)).made for i in range(2)]
    assert sum(made) == 4 and min(made) >= 1  # the two shards split the clips and together make them all
    assert VideoDataset(out).ids() == VideoDataset(video).ids()
    victim = VideoDataset(out).ids()[1]
    (out / "clips" / f"{victim}.npz").unlink()
    leftover = out / "clips" / f".{victim}.abc123.part.mp4"
    leftover.write_bytes(b"half")
    report = build_video_corpus(motion, portraits, out, config)
    assert report.made == 1 and not leftover.exists()
    assert VideoDataset(out).ids() == VideoDataset(video).ids()


def test_a_pool_of_spawned_workers_makes_the_same_clips(video: Path, motion: Path, portraits: Path,
                                                        tmp_path: Path) -> None:
    """``workers = 2`` (a pool of spawned processes, given the fitted portraits once) writes the clips one process
    writes: the same ids, boxes and drive motion (the frames are H.264, so compared by their boxes)."""
    out = tmp_path / "pooled"
    report = build_video_corpus(motion, portraits, out, VideoCorpusConfig.preset("tiny", workers=2))
    assert report.made == 4
    pooled, single = VideoDataset(out), VideoDataset(video)
    assert pooled.ids() == single.ids()
    for clip_id in single.ids():
        a, b = pooled.clip(clip_id), single.clip(clip_id)
        np.testing.assert_array_equal(a.arrays["drive_expression"], b.arrays["drive_expression"])
        np.testing.assert_allclose(a.box, b.box)


def test_bad_input_is_one_sentence_and_exit_2(motion: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    out = tmp_path / "out"
    assert main(["video-corpus", "--motion-data", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert main(["video-corpus", "--motion-data", str(motion), "--out", str(out), "--size", "300"]) == 2
    blank = tmp_path / "blank"
    blank.mkdir()
    from PIL import Image

    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank / "wall.png")
    assert main(["video-corpus", "--motion-data", str(motion), "--portraits", str(blank), "--no-astronaut",
                 "--out", str(out)]) == 2
    assert main(["dataset-info", str(tmp_path / "missing")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and all(line.count(". ") == 0 for line in errors)
    assert "No face was found" in errors[2]
    assert not out.exists()


def test_dataset_info_and_preview_work_on_a_video_corpus(video: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from talkinghead.io.video import probe_video

    assert main(["dataset-info", str(video), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "video" and summary["clips"] == 4 and summary["bytes_on_disk"] > 0
    assert summary["identities_per_split"] == {"train": 1, "test": 1}
    clip_id = VideoDataset(video).ids()[0]
    out = tmp_path / "preview.mp4"
    assert main(["preview", str(video), "--clip", clip_id, "-o", str(out)]) == 0
    info = probe_video(out)
    assert info.has_audio and abs(info.num_frames - VideoDataset(video).meta(clip_id).num_frames) <= 1
    sheet = tmp_path / "sheet.png"
    assert main(["video-sheet", str(video), "--split", "test", "--clips", "2", "-o", str(sheet)]) == 0
    assert sheet.stat().st_size > 0


def test_prepare_real_videos_with_and_without_audio(motion: Path, tmp_path: Path) -> None:
    """Videos rendered from motion clips (one with its audio, one silent) are tracked back into clips."""
    from skimage import data

    from talkinghead.data.video.prepare import VideoPrepareConfig, prepare_video_corpus
    from talkinghead.face.model import ARKIT_LAYOUT, fit_image
    from talkinghead.io.audio import Audio
    from talkinghead.io.video import write_video
    from talkinghead.render.warp_renderer import WarpRenderer, WarpRendererConfig

    source = Dataset(motion)
    image = data.astronaut()
    fit = fit_image(image)
    renderer = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                                     WarpRendererConfig(size=256, paste_back=False))
    folder = tmp_path / "videos" / "anna"
    folder.mkdir(parents=True)
    truth = {}
    for clip_id, with_audio in zip(source.ids("train"), (True, False), strict=True):
        clip = source.clip(clip_id)
        frames = list(renderer.render(clip.motion.expression, fit.pose[None] + clip.motion.pose))
        write_video(folder / f"{clip_id}.mp4", frames, 25.0, audio=Audio(clip.audio) if with_audio else None)
        truth[clip_id] = (clip, with_audio)
    report = prepare_video_corpus(tmp_path / "videos", tmp_path / "real",
                                  VideoPrepareConfig.preset("tiny", min_segment=1.0))
    assert report.done == 2 and not report.failed and report.clips == 2
    ds = VideoDataset(tmp_path / "real")
    jaw = ARKIT_LAYOUT.channels.index("jawOpen")
    for clip_id, (clip, with_audio) in truth.items():
        got = ds.clip(f"anna__{clip_id}_000")
        assert got.meta.has_audio == with_audio and got.meta.identity == "anna"
        assert abs(len(got) - len(clip.motion)) <= 1 and ds.frames(got.meta.id).shape[1:] == (128, 128, 3)
        assert bool(got.features) == with_audio and (len(got.audio) > 0) == with_audio
        n = min(len(got), len(clip.motion))
        assert np.corrcoef(got.motion.expression[:n, jaw], clip.motion.expression[:n, jaw])[0, 1] > 0.6
        assert np.all((got.box[:, :2] > 0) & (got.box[:, 2:] < 128))
    again = prepare_video_corpus(tmp_path / "videos", tmp_path / "real", VideoPrepareConfig.preset("tiny",
                                                                                                   min_segment=1.0))
    assert again.skipped == 2 and again.done == 0
    sampler = VideoSampler(ds)
    assert sampler.pairs(np.random.default_rng(0), 2).target.shape == (2, 128, 128, 3)
    with pytest.raises(TalkingHeadError):  # no audio in one clip and too short windows: refused clearly
        sampler.windows(np.random.default_rng(0), 1, motion_frames=400, frames=12)
