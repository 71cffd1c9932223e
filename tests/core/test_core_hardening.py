"""The hardening battery (issue 19): hostile and malformed inputs, tried as a new user or a careless script would,
across the commands. Each case must end in ``error: <one sentence>`` with its expected fragment and exit status 2,
with no traceback, within its time limit (no hang), and leave nothing behind: no output, temporary or folder in the
working folder, nothing new beside the inputs. A few cases must work instead (the corpus seed, global options after
the command), and SIGTERM must clean up like Ctrl-C.

Most cases run ``talkinghead.cli.main`` in-process (the same code path as the command, much faster); those that
hung before and the signal case run the real command in a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError

from media_helpers import make_video_file, tone

sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline"))
from pipeline_helpers import make_random_checkpoints  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

LIMIT = 60.0  # seconds a refusal may take (most take well under one)


# ---------------------------------------------------------------------------------------------- the inputs

def _edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_motion(source: Path, target: Path, meta: Any = None, expression: Any = None) -> None:
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta(json.loads(str(arrays["meta"])))))
    if expression is not None:
        arrays["expression"] = expression(arrays["expression"].copy())
    np.savez(target, **arrays)


def _nan_at(x: np.ndarray) -> np.ndarray:
    x[3, 2] = np.nan
    return x


def _edit_manifest(root: Path, change: Any) -> None:
    lines = (root / "manifest.csv").read_text().splitlines()
    (root / "manifest.csv").write_text("\n".join(change(lines)) + "\n")


def _cell(lines: list[str], column: int, value: str) -> list[str]:
    cells = lines[1].split(",")
    cells[column] = value
    return [lines[0], ",".join(cells), *lines[2:]]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The inputs of every case, made once: a tiny checkpoint and its broken copies, a portrait, speech, a motion
    file and its broken copies, a toy dataset and its broken copies, a pickle folder."""
    from PIL import Image
    from skimage import data

    from talkinghead.face.model import ARKIT_LAYOUT
    from talkinghead.io.audio import Audio, save_wav
    from talkinghead.sequence import MotionSequence
    from talkinghead.training.toydata import make_toy_dataset

    root = tmp_path_factory.mktemp("hardening")
    ckpt = make_random_checkpoints(root / "ckpt", bank=False)
    for name, change in (("ck_heads", lambda m: m["config"].update(heads=3)),
                         ("ck_negative", lambda m: m["config"].update(d_model=-4)),
                         ("ck_features", lambda m: m.update(audio_features="abc"))):
        shutil.copytree(ckpt, root / name)
        _edit_json(root / name / "denoiser" / "config.json", change)
    Image.fromarray(data.astronaut()).resize((256, 256)).save(root / "face.png")
    save_wav(root / "speech.wav", Audio(tone(1.0)))
    t = np.arange(16_000 * 4) / 16_000
    save_wav(root / "long.wav", Audio((0.2 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t))
                                      .astype(np.float32)))
    make_video_file(root / "clip.mp4", num_frames=10)
    motion = MotionSequence(np.zeros((10, ARKIT_LAYOUT.size)), np.zeros((10, 6)), ARKIT_LAYOUT).save(root / "m.npz")
    _edit_motion(motion, root / "fps_nan.npz", meta=lambda m: {**m, "fps": float("nan")})
    _edit_motion(motion, root / "fps_inf.npz", meta=lambda m: {**m, "fps": float("inf")})
    _edit_motion(motion, root / "meta_list.npz", meta=lambda m: [1, 2])
    _edit_motion(motion, root / "nan_motion.npz", expression=_nan_at)
    make_toy_dataset(root / "toy", speakers=2, clips_per_speaker=3, frames=(30, 40))
    for name in ("ds_abc", "ds_short", "ds_binary", "ds_no_fps", "ds_list"):
        shutil.copytree(root / "toy", root / name)
    _edit_manifest(root / "ds_abc", lambda lines: _cell(lines, 3, "abc"))
    _edit_manifest(root / "ds_short", lambda lines: [lines[0], ",".join(lines[1].split(",")[:3]), *lines[2:]])
    (root / "ds_binary" / "manifest.csv").write_bytes(b"\x00\xff\xfe\x89PNG\r\n" * 20)
    _edit_json(root / "ds_no_fps" / "dataset.json", lambda d: d.pop("fps"))
    (root / "ds_list" / "dataset.json").write_text("[1, 2, 3]")
    (root / "pickle").mkdir()
    (root / "pickle" / "model.pt").write_bytes(b"\x80\x04K\x01.")  # pickle.dumps(1)
    (root / "folder").mkdir()
    return root


@pytest.fixture(scope="module")
def unwritable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder this process cannot write in: a read-only folder, or (as root, who writes anywhere) a folder of
    the kernel's read-only /sys."""
    import tempfile

    candidate = tmp_path_factory.mktemp("read_only")
    candidate.chmod(0o555)
    for folder in (candidate, Path("/sys/kernel")):
        try:
            fd, probe = tempfile.mkstemp(dir=folder)
        except OSError:
            return folder
        Path(probe).unlink()
    pytest.skip("no folder here refuses writes")


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---------------------------------------------------------------------------------------------- the cases

@dataclass(frozen=True)
class Case:
    """``args`` ({A}: the assets folder, {U}: an unwritable folder; relative outputs land in the empty working
    folder); ``fragment`` must be in the one sentence; ``subprocess``: run the real command."""

    name: str
    args: str
    fragment: str
    subprocess: bool = False


def _cases() -> list[Case]:
    gen = "generate --image {A}/face.png --audio {A}/speech.wav"
    cases = [
        # malformed files the toolkit itself defines
        Case("checkpoint heads do not divide the width", f"{gen} --checkpoint {{A}}/ck_heads -o out.mp4",
             "config.json describes a model that cannot be built (embed_dim must be divisible by num_heads)"),
        Case("checkpoint negative size", f"{gen} --checkpoint {{A}}/ck_negative -o out.mp4",
             "config.json describes a model that cannot be built"),
        Case("checkpoint audio_features of the wrong type", f"{gen} --checkpoint {{A}}/ck_features -o out.mp4",
             "config.json is not valid: audio_features should be a mapping"),
        Case("inspect checkpoint audio_features of the wrong type", "inspect {A}/ck_features/denoiser",
             "audio_features should be a mapping"),
    ]
    for name, fragment in (("fps_nan", "fps must be a finite number, got nan"),
                           ("fps_inf", "fps must be a finite number, got inf"),
                           ("meta_list", "is not a talkinghead motion file"),
                           ("nan_motion", "contains NaN or infinite values")):
        cases += [Case(f"motion {name}: render", f"render --image {{A}}/face.png --motion {{A}}/{name}.npz -o r.mp4",
                       fragment),
                  Case(f"motion {name}: inspect", f"inspect {{A}}/{name}.npz", fragment),
                  Case(f"motion {name}: export-arkit", f"export-arkit {{A}}/{name}.npz -o c.csv", fragment)]
    for name, fragment in (("ds_abc", "Row 2 of {A}/ds_abc/manifest.csv is not valid: intensity should be an "
                                      "integer, got 'abc'"),
                           ("ds_short", "Row 2 of {A}/ds_short/manifest.csv does not have the 8 columns"),
                           ("ds_binary", "manifest.csv is not a readable CSV file"),
                           ("ds_no_fps", "dataset.json is not valid: it lacks the key(s) fps"),
                           ("ds_list", "dataset.json is not a talkinghead dataset description")):
        cases += [Case(f"dataset {name}: dataset-info", f"dataset-info {{A}}/{name}", fragment),
                  Case(f"dataset {name}: inspect", f"inspect {{A}}/{name}", fragment),
                  Case(f"dataset {name}: train", f"train denoiser --data {{A}}/{name} --out ck --preset tiny",
                       fragment),
                  Case(f"dataset {name}: evaluate", f"evaluate --data {{A}}/{name} -o report --preset tiny", fragment)]
    cases += [
        # numeric options out of their declared ranges
        Case("track --fps inf", "track {A}/clip.mp4 -o t.npz --fps inf", "argument --fps: must be a finite number"),
        Case("track --fps nan", "track {A}/clip.mp4 -o t.npz --fps nan", "argument --fps: must be a finite number"),
        Case("features --fps nan", "features {A}/speech.wav -o f.npz --fps nan", "argument --fps: must be a finite"),
        Case("features --fps inf", "features {A}/speech.wav -o f.npz --fps inf", "argument --fps: must be a finite",
             subprocess=True),
        Case("prepare --fps 0", "prepare {A}/clip.mp4 --out prepared --fps 0", "argument --fps: must be above 0"),
        Case("prepare --fps -5", "prepare {A}/clip.mp4 --out prepared --fps -5", "argument --fps: must be above 0",
             subprocess=True),
        Case("train --batch-size 0", "train denoiser --data {A}/toy --out ck --batch-size 0",
             "argument --batch-size: must be at least 1"),
        Case("train --seed -1", "train denoiser --data {A}/toy --out ck --seed -1",
             "argument --seed: must be between 0 and"),
        Case("train --devices 0", "train denoiser --data {A}/toy --out ck --devices 0",
             "argument --devices: must be at least 1"),
        Case("train --strategy bogus", "train denoiser --data {A}/toy --out ck --strategy bogus",
             "argument --strategy: invalid choice: 'bogus'"),
        Case("generate --threads -1", f"{gen} --checkpoint {{A}}/ckpt -o out.mp4 --threads -1",
             "argument --threads: must be at least 0"),
        # output places
        Case("generate into an unwritable folder", f"{gen} --checkpoint {{A}}/ckpt -o {{U}}/out.mp4",
             "cannot write in the folder"),
        Case("tts into an unwritable folder", "tts hello -o {U}/s.wav", "cannot write in the folder"),
        Case("generate --save-motion a folder", f"{gen} --checkpoint {{A}}/ckpt -o out.mp4 --save-motion {{A}}/folder",
             "argument --save-motion: the output {A}/folder is a folder"),
        Case("tts --phones a folder", "tts hello -o s.wav --phones {A}/folder",
             "argument --phones: the output {A}/folder is a folder"),
        Case("evaluate with a pickle judge", "evaluate --data {A}/toy --split val --video-judge {A}/pickle -o report "
             "--preset tiny --judge-steps 1", "refuses pickle"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append(Case("train --accelerator cuda without one", "train denoiser --data {A}/toy --out ck "
                          "--accelerator cuda", "argument --accelerator: the accelerator 'cuda' is not available"))
    return cases


CASES = _cases()


class CaseTimedOut(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise CaseTimedOut(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _command(args: str, assets: Path, unwritable: Path | None) -> list[str]:
    return args.format(A=assets, U=unwritable).split()


def run_command(argv: list[str], work: Path, in_process: bool,
                capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run ``talkinghead ARGV`` in ``work`` (in-process or as a subprocess) within the time limit."""
    if in_process:
        monkeypatch.chdir(work)
        capsys.readouterr()
        with time_limit(LIMIT):
            code = main(argv)
        out, err = capsys.readouterr()
        return code, out, err
    proc = subprocess.run([sys.executable, "-m", "talkinghead", *argv], cwd=work, capture_output=True, text=True,
                          timeout=LIMIT)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refused_with_one_sentence_and_nothing_left(case: Case, assets: Path, unwritable: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    before = _listing(assets)
    unwritable_before = sorted(p.name for p in unwritable.iterdir()) if "{U}" in case.args else []
    start = time.perf_counter()
    code, _, err = run_command(_command(case.args, assets, unwritable), tmp_path, not case.subprocess, capsys,
                               monkeypatch)
    assert time.perf_counter() - start < LIMIT
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), err
    assert case.fragment.format(A=assets, U=unwritable) in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == [], "left behind in the working folder"
    assert _listing(assets) == before, "left behind beside the inputs"
    if "{U}" in case.args:
        assert sorted(p.name for p in unwritable.iterdir()) == unwritable_before


def test_sigterm_during_generate_removes_the_temporaries(assets: Path, tmp_path: Path) -> None:
    """SIGTERM (what process managers and container stops send) takes Ctrl-C's clean-up path: the hidden
    ``.part.mp4`` of the video being written (and the motion's) are removed, exit status 143."""
    argv = [sys.executable, "-m", "talkinghead", "generate", "--checkpoint", str(assets / "ckpt"), "--image",
            str(assets / "face.png"), "--audio", str(assets / "long.wav"), "-o", "out.mp4", "--save-motion", "m.npz"]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + LIMIT
        # the video being encoded: the command's temporary and write_video's own beside it
        while len(list(tmp_path.glob(".*.part.mp4"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "generate ended before the video was being written"
        assert list(tmp_path.glob(".*.part.npz")), "the motion's temporary is made with the video's"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "error: terminated." and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_global_options_go_after_the_command_too(assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_command(["inspect", str(assets / "m.npz"), "--quiet", "-v"], tmp_path, True, capsys,
                                 monkeypatch)
    assert code == 0 and "kind: motion" in out and err == ""
    # the flag takes effect where it stands: --debug after the command shows the traceback (raises in-process)
    with pytest.raises(TalkingHeadError, match="fps must be a finite number"):
        main(["inspect", str(assets / "fps_nan.npz"), "--debug"])
    code, _, err = run_command(["--quiet", "inspect", str(assets / "fps_nan.npz")], tmp_path, True, capsys,
                               monkeypatch)
    assert code == 2 and err.startswith("error: ")


def test_corpus_seed_one_works(tmp_path: Path) -> None:
    """``corpus --speakers 3 --sentences 2 --seed 1`` once crashed (ZeroDivisionError in timed_phones: an
    espeak segment with no ARPAbet phone)."""
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "corpus", "--out", "corpus", "--speakers", "3",
                           "--sentences", "2", "--seed", "1"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    from talkinghead.data.dataset import Dataset

    assert len(Dataset(tmp_path / "corpus")) == 3 * 2 * 8 * 3  # speakers x sentences x emotions x intensities


def test_outputs_of_one_command_appear_together(tmp_path: Path) -> None:
    """``atomic_outputs``: all the outputs appear when the block succeeds; when it fails none does, and neither do
    their temporaries or the folders made for them."""
    from talkinghead.io.files import atomic_outputs

    targets = (tmp_path / "new" / "deeper" / "a.mp4", tmp_path / "b.npz")
    with pytest.raises(TalkingHeadError, match="the motion failed"):
        with atomic_outputs(*targets) as (video, _):
            video.write_bytes(b"video")
            raise TalkingHeadError("the motion failed.")
    assert list(tmp_path.iterdir()) == []
    with atomic_outputs(*targets) as (video, motion):
        video.write_bytes(b"video")
        motion.write_bytes(b"motion")
    assert targets[0].read_bytes() == b"video" and targets[1].read_bytes() == b"motion"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.mp4", "b.npz", "deeper", "new"]
    with pytest.raises(TalkingHeadError, match="same file"):
        with atomic_outputs(tmp_path / "b.npz", tmp_path / "new" / ".." / "b.npz"):
            pass


def test_an_interrupt_while_a_temporary_is_made_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Ctrl-C (or SIGTERM) landing just after a temporary output is created, before the call that made it returns, must
    still leave nothing behind (the race behind a rare leftover ``.part.mp4`` on SIGTERM). The interrupt is raised
    right there, deterministically: a real signal's handler runs "at the next check" in the main thread, and when
    another thread takes the signal (an xdist worker, a server) that may be much later, so a real signal can neither
    be relied on to land at this point nor be blocked from landing there (the mask tried before is per thread)."""
    import os

    from talkinghead.io.files import atomic_outputs

    real = os.open

    def interrupted(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real(path, flags, *args, **kwargs)
        if ".part" in str(path):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", interrupted)
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt), atomic_outputs(tmp_path / "out.mp4", tmp_path / "m.npz"):
            pass
        assert list(tmp_path.iterdir()) == []
