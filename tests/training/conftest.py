"""Fixtures shared by the training tests: one torch thread and a toy dataset per module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def _single_threaded(one_thread: None) -> None:
    """Every training test module runs single-threaded (tests/conftest.py's ``one_thread``)."""


@pytest.fixture(scope="module")
def data(make_corpus: Callable[..., Path]) -> Path:
    """A small structured toy dataset (talkinghead.training.toydata), made once per test module."""
    return make_corpus("toy")
