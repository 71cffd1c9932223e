"""Progress display and structured logging."""

from __future__ import annotations

import io
import json
import logging

import pytest

from talkinghead import log


def test_progress_yields_everything_and_is_silent_off_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(log.progress(range(5), "counting")) == [0, 1, 2, 3, 4]
    assert list(log.progress(iter("abc"), "letters", total=3)) == ["a", "b", "c"]
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # stderr is not a terminal under pytest


def test_quiet_mode() -> None:
    before = log.is_quiet()
    log.set_quiet(True)
    assert log.is_quiet() and not log._show_bars()
    log.set_quiet(before)


def test_json_log_lines() -> None:
    log.configure_logging(json_lines=True)
    stream = io.StringIO()
    log.logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    log.log_event("trained", step=10, loss=0.5)
    record = json.loads(stream.getvalue().strip())
    assert record["message"].startswith("trained") and record["step"] == 10 and record["loss"] == 0.5
    assert record["level"] == "info"
    log.logger.handlers[:] = [logging.NullHandler()]
