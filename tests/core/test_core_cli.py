"""The CLI's error policy: every bad input is one sentence on stderr and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from talkinghead.cli import main

from media_helpers import make_video_file, tone


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_sentence(code: int, err: str, fragment: str) -> None:
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in err


def _bad_inputs(tmp: Path) -> list[tuple[Path, str]]:
    cases = []
    (tmp / "empty.wav").write_bytes(b"")
    cases.append((tmp / "empty.wav", "is empty"))
    (tmp / "text.mp3").write_text("hello " * 100)
    cases.append((tmp / "text.mp3", "not a readable audio"))
    sf.write(str(tmp / "trunc.wav"), tone(1.0), 16_000)
    (tmp / "trunc.wav").write_bytes((tmp / "trunc.wav").read_bytes()[:44])
    cases.append((tmp / "trunc.wav", "no audio samples"))
    (tmp / "bad.png").write_text("not a png")
    cases.append((tmp / "bad.png", "not an image"))
    (tmp / "tiny.png").write_bytes(b"")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp / "tiny.png")
    cases.append((tmp / "tiny.png", "too small"))
    (tmp / "corrupt.mp4").write_bytes(b"\x00\x01" * 500)
    cases.append((tmp / "corrupt.mp4", "not a readable video"))
    torch.save({"w": torch.zeros(1)}, tmp / "weights.pt")
    cases.append((tmp / "weights.pt", "pickle"))
    cases.append((tmp / "missing.wav", "does not exist"))
    (tmp / "x.xyz").write_text("?")
    cases.append((tmp / "x.xyz", "does not know"))
    return cases


def test_every_bad_input_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path, fragment in _bad_inputs(tmp_path):
        code, _, err = _run(capsys, "inspect", str(path))
        _assert_one_sentence(code, err, fragment)


def test_good_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sf.write(str(tmp_path / "a.flac"), tone(2.0, 22_050), 22_050)
    code, out, _ = _run(capsys, "inspect", str(tmp_path / "a.flac"))
    assert code == 0 and "duration: 2.0" in out
    video = make_video_file(tmp_path / "v.mkv", num_frames=25)
    code, out, _ = _run(capsys, "inspect", "--json", str(video))
    assert code == 0 and '"frames": 25' in out


def test_debug_shows_traceback(tmp_path: Path) -> None:
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(Exception, match="is empty"):
        main(["--debug", "inspect", str(tmp_path / "e.wav")])


def test_module_entry_point(tmp_path: Path) -> None:
    (tmp_path / "e.wav").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "inspect", str(tmp_path / "e.wav")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "talkinghead", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "talkinghead" in proc.stdout


def test_help_does_not_import_the_heavy_libraries() -> None:
    """Building the parser (``talkinghead --help``) must not import torch, scipy or MediaPipe (seconds of
    start-up): commands import what they need when they run."""
    code = ("import sys; from talkinghead.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'scipy', 'mediapipe', 'librosa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
