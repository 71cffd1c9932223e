"""Shared test fixtures (nothing is downloaded)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TALKINGHEAD_QUIET", "1")


@pytest.fixture
def portrait() -> np.ndarray:
    """skimage's astronaut: a real public-domain portrait, RGB uint8 [512, 512, 3]."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest single-threaded (and the 2 cores are shared). A module asks for it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``, so it holds for the module's own fixtures too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def make_corpus(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A builder of small synthetic corpora, each written into a fresh temporary folder:
    ``make_corpus(kind, folder)`` returns ``<tmp>/<folder>N/<kind>``, where ``kind`` is ``"toy"`` for the
    structured toy dataset (talkinghead.training.toydata) or a preset of the synthetic corpus
    (talkinghead.data.corpus, e.g. ``"tiny"``: espeak speech with phone timings and transcripts, real features);
    ``folder`` defaults to ``kind``."""

    def make(kind: str, folder: str | None = None) -> Path:
        root = tmp_path_factory.mktemp(folder or kind) / kind
        if kind == "toy":
            from talkinghead.training.toydata import make_toy_dataset

            make_toy_dataset(root)
        else:
            from talkinghead.data.corpus import CorpusConfig, generate_corpus

            generate_corpus(root, CorpusConfig.preset(kind))
        return root

    return make
