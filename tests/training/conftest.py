"""Fixtures shared by the training tests: one torch thread and a toy dataset per module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from talkinghead.training.toydata import make_toy_dataset


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> object:
    """Tiny models run fastest single-threaded (and the 2 cores are shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small structured toy dataset (talkinghead.training.toydata), made once per test module."""
    root = tmp_path_factory.mktemp("toy") / "toy"
    make_toy_dataset(root)
    return root
