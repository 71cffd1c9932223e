"""The generate pipeline end to end on tiny random checkpoints: the video and its audio, seeds, the
windowed path for long audio, head motion, styles (emotion bank, mixing, style video), feature parity
with the dataset, and one-sentence errors for every bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead import api
from talkinghead.audio.features import extract_features
from talkinghead.audio.frames import frame_count
from talkinghead.audio.spec import checkpoint_spec, select_kinds
from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio, load_audio, save_wav
from talkinghead.io.video import probe_video
from talkinghead.motion.dreamtalk.generator import DreamTalkGenerator, DreamTalkSampling
from talkinghead.motion.dreamtalk.windowed import window_starts
from talkinghead.pipeline import GenerateInputs, generate

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_helpers import make_random_checkpoints  # noqa: E402


def speechlike(seconds: float, seed: int = 0) -> Audio:
    """Syllable-rate amplitude-modulated harmonics with pauses (16 kHz)."""
    sr = 16_000
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.5)
    return Audio((0.2 * voice * envelope + 0.003 * rng.normal(size=t.size)).astype(np.float32))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_checkpoints(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def models(ckpt: Path) -> DreamTalkGenerator:
    return api.load_models(ckpt)


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_wav(tmp_path_factory.mktemp("audio") / "speech.wav", speechlike(2.03))


@pytest.fixture(scope="module")
def image_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    from talkinghead.io.image import save_image

    return save_image(tmp_path_factory.mktemp("img") / "portrait.png", data.astronaut())


def test_video_frames_and_audio_match_the_input(tmp_path: Path, wav: Path, image_path: Path, ckpt: Path) -> None:
    out = tmp_path / "out.mp4"
    assert main(["generate", "--image", str(image_path), "--audio", str(wav), "--checkpoint", str(ckpt),
                 "-o", str(out), "--save-motion", str(tmp_path / "m.npz")]) == 0
    speech = load_audio(wav)
    info = probe_video(out)
    expected = frame_count(len(speech.samples), 25.0)
    assert info.num_frames == expected == 51 and info.fps == 25.0 and info.has_audio
    assert (info.width, info.height) == (512, 512)                       # the whole photo, pasted back
    track = load_audio(out)
    assert abs(track.duration - speech.duration) < 0.07                  # one frame + AAC padding
    # the audio track is the input speech (AAC round trip): envelopes correlate
    n = min(len(track.samples), len(speech.samples)) // 400 * 400
    env = [np.abs(x[:n]).reshape(-1, 400).mean(1) for x in (track.samples, speech.samples)]
    assert np.corrcoef(*env)[0, 1] > 0.95
    from talkinghead.sequence import MotionSequence

    assert len(MotionSequence.load(tmp_path / "m.npz")) == expected


def test_seed_reproduces_and_varies(models: DreamTalkGenerator, image_path: Path, wav: Path) -> None:
    a = api.generate_motion(image_path, wav, seed=3, models=models, style=np.ones(32, np.float32))
    b = api.generate_motion(image_path, wav, seed=3, models=models, style=np.ones(32, np.float32))
    c = api.generate_motion(image_path, wav, seed=4, models=models, style=np.ones(32, np.float32))
    np.testing.assert_array_equal(a.motion.expression, b.motion.expression)
    np.testing.assert_array_equal(a.motion.pose, b.motion.pose)
    assert np.abs(a.motion.expression - c.motion.expression).max() > 1e-4
    # a predicted style depends on the seed too, and is reproducible
    p1 = api.predict_style(image_path, wav, seed=1, models=models)
    assert np.array_equal(p1, api.predict_style(image_path, wav, seed=1, models=models))
    assert not np.allclose(p1, api.predict_style(image_path, wav, seed=2, models=models))


def sample_motion(den: torch.nn.Module, audio: np.ndarray, style: np.ndarray, cfg: DreamTalkSampling,
                  seed: int = 0) -> np.ndarray:
    from talkinghead.motion.dreamtalk.windowed import sample_motion as windowed

    return windowed(den, audio, style, steps=cfg.steps, cfg_scale=cfg.cfg_scale, seed=seed,
                    window_frames=cfg.window_frames, batch_windows=cfg.batch_windows,
                    audio_cache_mb=cfg.audio_cache_mb)


def _lively(models: DreamTalkGenerator) -> torch.nn.Module:
    """The denoiser with a 20x output layer, so its samples move a lot from frame to frame."""
    import copy

    den = copy.deepcopy(models.denoiser)
    with torch.no_grad():
        den.head.weight.mul_(20.0)
    return den


def test_long_audio_windows_join_seamlessly(models: DreamTalkGenerator) -> None:
    from scipy.ndimage import gaussian_filter1d

    from talkinghead.motion.dreamtalk import generate_motion

    den = _lively(models)
    audio = (2 * gaussian_filter1d(np.random.default_rng(0).normal(size=(120, 19)), 2, axis=0)).astype(np.float32)
    style = np.random.default_rng(1).normal(size=32).astype(np.float32)
    cfg = DreamTalkSampling.preset("tiny", cfg_scale=1.5)      # windows of 40 frames, two per batch
    starts = window_starts(120, cfg.window_frames)
    assert starts == [0, 40, 80]
    windowed = sample_motion(den, audio, style, cfg)
    # reference: the library's one-pass sampler over the whole clip with the same seed
    whole = generate_motion(den, torch.from_numpy(audio)[None], torch.from_numpy(style)[None], steps=cfg.steps,
                            guidance_scale=cfg.cfg_scale, generator=torch.Generator().manual_seed(0))[0].numpy()
    sd = den.motion_norm.std.numpy()
    assert windowed.shape == whole.shape == (120, den.config.motion_dim)
    assert np.abs((whole - whole.mean(0)) / sd).mean() > 0.1                 # the motion does move
    np.testing.assert_allclose(windowed / sd, whole / sd, atol=2e-4)        # exact up to float rounding
    # hence no jump at the joins beyond the frame-to-frame steps inside windows
    steps = np.abs(np.diff(windowed / sd, axis=0)).mean(1)
    joins = np.zeros(len(steps), bool)
    joins[[s - 1 for s in starts[1:]]] = True
    assert steps[joins].max() <= steps[~joins].max()
    # a last window that does not fit the tiling overlaps its neighbour and still agrees
    odd = sample_motion(den, audio[:110], style, cfg)
    ref = generate_motion(den, torch.from_numpy(audio[:110])[None], torch.from_numpy(style)[None], steps=cfg.steps,
                          guidance_scale=cfg.cfg_scale, generator=torch.Generator().manual_seed(0))[0].numpy()
    np.testing.assert_allclose(odd / sd, ref / sd, atol=2e-4)


def test_regression_denoiser_runs_once_and_matches_the_library(models: DreamTalkGenerator) -> None:
    """A denoiser trained with --regression is run in one pass from its fixed input, window by window,
    and gives what the library's one-pass regression sampler gives over the whole clip, for any seed."""
    import copy
    import dataclasses

    from talkinghead.motion.dreamtalk import generate_motion

    den = _lively(models)
    reg = copy.deepcopy(den)
    object.__setattr__(reg, "config", dataclasses.replace(den.config, regression=True))
    audio = np.random.default_rng(0).normal(size=(120, 19)).astype(np.float32)
    style = np.random.default_rng(1).normal(size=32).astype(np.float32)
    cfg = DreamTalkSampling.preset("tiny", cfg_scale=1.0)
    out = sample_motion(reg, audio, style, cfg)
    assert np.array_equal(out, sample_motion(reg, audio, style, cfg, seed=7))
    whole = generate_motion(reg, torch.from_numpy(audio)[None], torch.from_numpy(style)[None], steps=cfg.steps,
                            guidance_scale=1.0)[0].numpy()
    sd = reg.motion_norm.std.numpy()
    np.testing.assert_allclose(out / sd, whole / sd, atol=2e-4)
    assert not np.allclose(out, sample_motion(den, audio, style, cfg), atol=1e-2)  # the diffusion path differs


def test_long_audio_through_the_pipeline(models: DreamTalkGenerator, image_path: Path) -> None:
    inputs = GenerateInputs(image_path, speechlike(7.0, seed=2))
    models.sampling = DreamTalkSampling.preset("tiny")
    try:
        result = generate(inputs, None, models=models)
    finally:
        models.sampling = DreamTalkSampling()
    assert result.num_frames == 175 and np.isfinite(result.motion.expression).all()


def test_head_motion_zero_keeps_the_portrait_pose(models: DreamTalkGenerator, image_path: Path, wav: Path) -> None:
    from talkinghead.face.model import fit_image
    from talkinghead.io.image import load_image

    fitted = fit_image(load_image(image_path)).pose
    still = api.generate_motion(image_path, wav, head_motion=0.0, models=models).motion.pose
    np.testing.assert_allclose(still, np.repeat(fitted[None], len(still), 0), atol=1e-6)
    moving = api.generate_motion(image_path, wav, head_motion=1.0, models=models).motion.pose
    double = api.generate_motion(image_path, wav, head_motion=2.0, models=models).motion.pose
    assert moving.std(0).max() > 1e-4
    np.testing.assert_allclose(double - fitted, 2 * (moving - fitted), atol=1e-5)
    np.testing.assert_allclose(moving.mean(0), fitted, atol=1e-5)   # the portrait's orientation is kept


def test_styles_emotion_mix_and_cfg(models: DreamTalkGenerator, image_path: Path, wav: Path, tmp_path: Path) -> None:
    assert models.style_bank is not None
    happy3 = api.style_from_emotion("happy", 3, models=models)
    np.testing.assert_array_equal(happy3, models.style_bank.codes[("happy", 3)])
    sad = api.style_from_emotion("sad", models=models)             # mean over intensities
    np.testing.assert_allclose(sad, np.mean([models.style_bank.codes[("sad", i)] for i in (1, 2, 3)], 0), atol=1e-6)
    np.testing.assert_allclose(api.mix_styles(happy3, sad, 0.25), 0.75 * happy3 + 0.25 * sad, atol=1e-6)
    r = api.generate_motion(image_path, wav, emotion="happy", intensity=3, models=models)
    assert r.style_source == "emotion:happy:3"
    np.testing.assert_array_equal(r.motion.expression,
                                  api.generate_motion(image_path, wav, style=happy3, models=models).motion.expression)
    mixed = generate(GenerateInputs(image_path, wav, emotion="happy", intensity=3, style_mix="sad", mix_alpha=1.0),
                     None, models=models)
    np.testing.assert_allclose(mixed.style, sad, atol=1e-6)
    # guidance: scale 0 ignores the style (the null style's motion), scale 1 follows it
    g0 = [api.generate_motion(image_path, wav, style=s, cfg_scale=0.0, models=models).motion.expression
          for s in (happy3, sad)]
    np.testing.assert_allclose(g0[0], g0[1], atol=1e-6)
    assert not np.allclose(r.motion.expression,
                           api.generate_motion(image_path, wav, style=sad, models=models).motion.expression)
    with pytest.raises(TalkingHeadError, match="no emotion 'bored'"):
        api.style_from_emotion("bored", models=models)


def test_style_from_a_video(models: DreamTalkGenerator, tmp_path: Path) -> None:
    from skimage import data

    from talkinghead.face.track import track_path
    from talkinghead.io.video import write_video

    base = data.astronaut()
    frames = [np.roll(base, k, axis=1) for k in range(0, 12, 2)]
    video = write_video(tmp_path / "ref.mp4", frames, 25.0)
    code = api.style_from_video(video, models=models)
    tracked = track_path(video, fps=25.0)
    ref = np.concatenate([tracked.expression, tracked.pose], 1)
    expected = models.denoiser.encode_style(torch.from_numpy(ref)[None])[0].detach().numpy()
    np.testing.assert_allclose(code, expected, atol=1e-5)


def test_features_are_the_datasets(models: DreamTalkGenerator) -> None:
    """The pipeline's denoiser input equals what the corpus stores per kind and training concatenates."""
    audio = speechlike(1.5)
    spec = checkpoint_spec(models.denoiser.audio_features, "denoiser", 25.0)
    stacked = extract_features(audio, spec)
    per_kind = {kind: stacked[:, cols] for kind, cols in spec.slices().items()}       # corpus.synthesize_clip
    names = models.denoiser.audio_features["names"]
    dims = models.denoiser.audio_features["dims"]
    expected = np.concatenate([per_kind[n] for n in names], 1)                         # training.data.MotionCorpus
    np.testing.assert_array_equal(select_kinds(stacked, spec, names, dims, "denoiser"), expected)
    # what the generator reads from its conditions, extracted once per spec
    from talkinghead.generators import Conditions, Portrait

    conditions = Conditions(audio, Portrait(None, {}, np.zeros(0, np.float32), np.zeros(6, np.float32)))
    np.testing.assert_array_equal(conditions.features(models.denoiser.audio_features, "denoiser"), expected)
    assert len(conditions._stacked) == 1
    assert len(stacked) == frame_count(len(audio.samples), 25.0)


def test_stale_feature_spec_is_refused(tmp_path: Path) -> None:
    import json

    folder = make_random_checkpoints(tmp_path / "ck", bank=False)
    cfg = folder / "denoiser" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["audio_features"]["dataset"]["spec"]["version"] = 99
    cfg.write_text(json.dumps(meta))
    with pytest.raises(TalkingHeadError, match="version"):
        checkpoint_spec(DreamTalkGenerator.from_pretrained(folder).denoiser.audio_features, "denoiser", 25.0)


def _bad(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_sentence_and_no_file(tmp_path: Path, wav: Path, image_path: Path, ckpt: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mp4"
    base = ["generate", "--image", str(image_path), "--checkpoint", str(ckpt), "-o", str(out)]
    empty = tmp_path / "empty.wav"
    import soundfile as sf

    sf.write(str(empty), np.zeros(0, np.float32), 16_000)
    blank = tmp_path / "blank.png"
    from talkinghead.io.image import save_image

    save_image(blank, np.full((200, 200, 3), 128, np.uint8))
    cases = {
        "both": base + ["--audio", str(wav), "--text", "hello"],
        "neither": base,
        "empty audio": base + ["--audio", str(empty)],
        "missing audio": base + ["--audio", str(tmp_path / "nope.wav")],
        "size": base + ["--audio", str(wav), "--size", "300"],
        "steps": base + ["--audio", str(wav), "--steps", "0"],
        "cfg": base + ["--audio", str(wav), "--cfg-scale", "nan"],
        "head": base + ["--audio", str(wav), "--head-motion", "-1"],
        "intensity alone": base + ["--audio", str(wav), "--intensity", "2"],
        "intensity range": base + ["--audio", str(wav), "--emotion", "happy", "--intensity", "5"],
        "two styles": base + ["--audio", str(wav), "--emotion", "happy", "--style-video", str(wav)],
        "unknown emotion": base + ["--audio", str(wav), "--emotion", "bored"],
        "missing style video": base + ["--audio", str(wav), "--style-video", str(tmp_path / "v.mp4")],
        "no face": ["generate", "--image", str(blank), "--checkpoint", str(ckpt), "-o", str(out), "--audio", str(wav)],
        "missing image": ["generate", "--image", str(tmp_path / "x.png"), "--audio", str(wav), "-o", str(out),
                          "--checkpoint", str(ckpt)],
        "no checkpoint": base[:3] + ["--checkpoint", str(tmp_path), "-o", str(out), "--audio", str(wav)],
        "empty text": base + ["--text", "   "],
        "mix weight": base + ["--audio", str(wav), "--style-mix", "sad", "--mix-alpha", "2"],
    }
    messages = {name: _bad(args, capsys) for name, args in cases.items()}
    assert _bad(base[:-1] + [str(tmp_path / "out.avi"), "--audio", str(wav)], capsys).endswith("should end in .mp4.")
    assert not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())
    assert "exactly one" in messages["both"] and "exactly one" in messages["neither"]
    assert "256 or 512" in messages["size"] and "no emotion 'bored'" in messages["unknown emotion"]


def test_demo_runs_with_no_arguments_but_a_checkpoint(tmp_path: Path, ckpt: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--checkpoint", str(ckpt)]) == 0
    info = probe_video(tmp_path / "out" / "demo.mp4")
    assert info.has_audio and info.num_frames > 100 and (info.width, info.height) == (512, 512)
    assert "demo.mp4" in capsys.readouterr().out


def test_default_weights_missing_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import talkinghead.motion.dreamtalk.generator as dreamtalk

    monkeypatch.setattr(dreamtalk, "weights_root", lambda: tmp_path / "weights")
    with pytest.raises(TalkingHeadError, match="default weights are missing"):
        DreamTalkGenerator.from_pretrained()


def test_cached_audio_adapter_matches_the_denoiser(models: DreamTalkGenerator) -> None:
    from talkinghead.motion.dreamtalk.windowed import CachedAudioDenoiser

    den = _lively(models)
    torch.manual_seed(0)
    x, audio = torch.randn(2, 12, den.config.motion_dim), torch.randn(2, 22, den.config.audio_dim)
    style = torch.randn(2, den.config.d_model)
    net = CachedAudioDenoiser(den, budget_mb=1)
    for t in (torch.tensor([900, 900]), torch.tensor([10, 500])):        # second call uses the cache
        torch.testing.assert_close(net(0, x, t, audio, style), den(x, t, audio, style), atol=1e-5, rtol=1e-5)
    assert 0 in net.cache
    tight = CachedAudioDenoiser(den, budget_mb=0)                        # over budget: recomputed, same result
    torch.testing.assert_close(tight(0, x, torch.tensor([3, 3]), audio, style),
                               den(x, torch.tensor([3, 3]), audio, style), atol=1e-5, rtol=1e-5)
    assert not tight.cache


def test_a_render_worker_writes_the_same_video(models: DreamTalkGenerator, image_path: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A clip long enough for the render worker (talkinghead.render.parallel) gives the file that rendering in this
    process gives, byte for byte (FFmpeg's deterministic mpeg4 encoder stands in for libx264 here)."""
    from talkinghead.io import video as video_io
    from talkinghead.pipeline import GenerateConfig
    from talkinghead.render import parallel

    monkeypatch.setattr(video_io, "_VIDEO_CODEC", "mpeg4")
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(parallel, "PARALLEL_FROM", 150)  # a shorter clip than the default threshold: a faster test
    started: list[object] = []
    start = parallel.start_workers

    def spy(*args: object, **kwargs: object) -> object:
        started.append(pool := start(*args, **kwargs))  # type: ignore[arg-type]
        return pool

    monkeypatch.setattr(parallel, "start_workers", spy)
    speech = save_wav(tmp_path / "long.wav", speechlike(parallel.PARALLEL_FROM / 25 + 0.2, seed=3))
    files = {}
    for workers in (0, 1):
        out = tmp_path / f"w{workers}.mp4"
        generate(GenerateInputs(image_path, speech), out, GenerateConfig(render_workers=workers),
                 models=models)
        files[workers] = out.read_bytes()
    assert started[0] is None and started[1] is not None  # in this process, then with a worker
    assert files[0] == files[1]
