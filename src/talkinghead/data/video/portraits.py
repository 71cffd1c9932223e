"""The portraits a video corpus is rendered on: found in a folder, split by identity, fitted once.

A folder of portraits holds images (``.png``, ``.jpg``, ...). An image directly in the folder is its own
identity (named by its file stem); the images of a sub-folder are photos of one identity named by the
sub-folder (``woman/neutral.png``, ``woman/smile.png``), so several photos of one person always fall into
the same split. Portrait ids are the file stems and must be unique. scikit-image's astronaut (the
portrait the demo and the motion corpus use) is added as identity ``astronaut`` unless asked not to.

Splits are by identity (:func:`identity_splits`): a test identity is never seen in training; the
astronaut is always a training identity (it is the demo's face).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.data.speakers import seed_for
from talkinghead.errors import TalkingHeadError
from talkinghead.face.track import IMAGE_SUFFIXES
from talkinghead.io.files import atomic_path
from talkinghead.log import logger

ASTRONAUT = "astronaut"


@dataclass(frozen=True)
class PortraitSource:
    """One portrait: ``id`` (file stem), ``identity`` (whose face), ``path`` (None: the built-in astronaut)."""

    id: str
    identity: str
    path: Path | None


@dataclass
class FittedPortrait:
    """A portrait and its face-model fit: ``image [H, W, 3] uint8``, ``identity`` arrays, its own
    ``expression [E]`` and ``pose [6]``."""

    source: PortraitSource
    image: np.ndarray
    identity: dict[str, np.ndarray]
    expression: np.ndarray
    pose: np.ndarray


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "portrait"


def find_portraits(folder: str | Path | None, astronaut: bool = True) -> list[PortraitSource]:
    """The portraits in ``folder`` (images, and one level of identity sub-folders), sorted by id."""
    found: list[PortraitSource] = []
    if folder is not None:
        root = Path(folder)
        if not root.is_dir():
            raise TalkingHeadError(f"The portrait folder {root} does not exist or is not a folder.")
        for path in sorted(root.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                found.extend(PortraitSource(_name(p.stem), _name(path.name), p) for p in sorted(path.iterdir())
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(PortraitSource(_name(path.stem), _name(path.stem), path))
    if astronaut:
        found.append(PortraitSource(ASTRONAUT, ASTRONAUT, None))
    ids = [p.id for p in found]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise TalkingHeadError(f"Two portraits share the name {twice[0]}; rename one of them.")
    if not found:
        raise TalkingHeadError(f"No portraits (.png, .jpg, ...) were found in {folder}.")
    return sorted(found, key=lambda p: p.id)


def identity_splits(identities: list[str], seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                    test: tuple[str, ...] = (), val: tuple[str, ...] = ()) -> dict[str, str]:
    """Split of each identity: ``test`` / ``val`` as given, else drawn (seeded) with at least one test
    identity from 2 identities on and one validation identity from 3 on; the astronaut stays in training."""
    names = sorted(set(identities))
    unknown = sorted(set(test + val) - set(names))
    if unknown:
        raise TalkingHeadError(f"There is no portrait identity '{unknown[0]}'; the identities are {', '.join(names)}.")
    if set(test) & set(val):
        raise TalkingHeadError("An identity cannot be in both the test and the validation split.")
    splits = {n: "test" if n in test else "val" if n in val else "train" for n in names}
    if test or val:
        return splits
    n = len(names)
    n_test = max(1, round(test_fraction * n)) if n >= 2 and test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * n)) if n >= 3 and val_fraction > 0 else 0
    order = [names[i] for i in np.random.default_rng(seed_for("identity-splits", seed, n)).permutation(n)]
    order = [x for x in order if x != ASTRONAUT]
    for k, name in enumerate(order[:n_test + n_val]):
        splits[name] = "test" if k < n_test else "val"
    return splits


def load_portrait_image(source: PortraitSource) -> np.ndarray:
    if source.path is None:
        from skimage import data

        return np.ascontiguousarray(data.astronaut())
    from talkinghead.io.image import load_image

    return load_image(source.path)


def fit_portraits(sources: list[PortraitSource], cache: Path | None = None
                  ) -> tuple[list[FittedPortrait], dict[str, str]]:
    """Fit every portrait (MediaPipe + the face model); portraits where no face is found are left out and
    returned with the reason. ``cache``: a folder of fits (``<id>.npz``, keyed by the image's SHA-256), so a
    resumed build or another shard does not fit again."""
    from talkinghead.face.model import fit_image
    from talkinghead.log import progress

    fitted: list[FittedPortrait] = []
    failed: dict[str, str] = {}
    for source in progress(sources, "fitting portraits"):
        try:
            image = load_portrait_image(source)
            digest = hashlib.sha256(image.tobytes()).hexdigest()
            arrays = _read_fit(cache / f"{source.id}.npz", digest) if cache is not None else None
            if arrays is None:
                fit = fit_image(image)
                arrays = {"expression": fit.expression, "pose": fit.pose,
                          **{f"identity/{k}": v for k, v in fit.identity.items()}}
                if cache is not None:
                    with atomic_path(cache / f"{source.id}.npz") as tmp:
                        with open(tmp, "wb") as fh:
                            np.savez(fh, sha256=np.array(digest), **arrays)
        except TalkingHeadError as err:
            failed[source.id] = str(err)
            logger.warning(f"portrait {source.id} left out: {err}")
            continue
        identity = {k[len("identity/"):]: v for k, v in arrays.items() if k.startswith("identity/")}
        fitted.append(FittedPortrait(source, image, identity, np.asarray(arrays["expression"], np.float32),
                                     np.asarray(arrays["pose"], np.float32)))
    return fitted, failed


def _read_fit(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["sha256"]) != digest:
                return None
            return {k: data[k] for k in data.files if k != "sha256"}
    except (OSError, ValueError, KeyError):
        return None
