"""Clustering strength d_cls = d_inter / d_intra (DICE-Talk Sec. 4.5, Tab. 5).

DICE-Talk: "We define clustering strength d_cls = d_inter / d_intra as the ratio between inter-cluster
distance d_inter and intra-cluster distance d_intra. A larger ratio indicates better clustering
performance ... with different emotions of the same identity as categories", reported per emotion.

The paper does not spell out the two distances; this module uses the usual reading:
for a class c with members x_i and centroid mu_c (within one identity),

- ``d_intra(c) = mean_i ||x_i - mu_c||_2`` (how tight the class is),
- ``d_inter(c) = mean_{c' != c} ||mu_c - mu_c'||_2`` (how far it lies from the other classes),

and ``d_cls(c) = d_inter(c) / d_intra(c)``. With ``groups`` (identities) the ratio is computed inside
each group that holds at least two classes and averaged over groups for each class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import as_array


@dataclass(frozen=True)
class ClusteringStrength:
    """Per-class ``d_cls``, ``d_inter`` and ``d_intra`` (averaged over groups) and their mean ``d_cls``."""

    per_class: dict[str, float]
    d_inter: dict[str, float]
    d_intra: dict[str, float]
    mean: float


def _within(x: np.ndarray, labels: np.ndarray) -> dict[str, tuple[float, float]]:
    classes = sorted(set(labels.tolist()))
    centroids = np.stack([x[labels == c].mean(axis=0) for c in classes])
    out = {}
    for k, c in enumerate(classes):
        members = x[labels == c]
        d_intra = float(np.linalg.norm(members - centroids[k], axis=1).mean())
        others = np.delete(centroids, k, axis=0)
        d_inter = float(np.linalg.norm(others - centroids[k], axis=1).mean())
        out[c] = (d_inter, d_intra)
    return out


def clustering_strength(embeddings: Any, labels: Sequence[Any], groups: Sequence[Any] | None = None,
                        ) -> ClusteringStrength:
    """Clustering strength of ``embeddings: [N, D]`` under class ``labels`` (N), optionally per group.

    A class whose members all coincide (``d_intra = 0``) gets ``inf``.
    """
    x = as_array(embeddings, "The embeddings", (2,))
    lab = np.array([str(v) for v in labels])
    if lab.shape[0] != x.shape[0]:
        raise TalkingHeadError(f"Got {x.shape[0]} embeddings but {lab.shape[0]} labels.")
    grp = np.zeros(len(lab), dtype=object) if groups is None else np.array([str(g) for g in groups], dtype=object)
    if grp.shape[0] != x.shape[0]:
        raise TalkingHeadError(f"Got {x.shape[0]} embeddings but {grp.shape[0]} group names.")
    inter: dict[str, list[float]] = {}
    intra: dict[str, list[float]] = {}
    ratio: dict[str, list[float]] = {}
    for g in sorted(set(grp.tolist()), key=str):
        mask = grp == g
        if len(set(lab[mask].tolist())) < 2:
            continue
        for c, (d_inter, d_intra) in _within(x[mask], lab[mask]).items():
            inter.setdefault(c, []).append(d_inter)
            intra.setdefault(c, []).append(d_intra)
            ratio.setdefault(c, []).append(d_inter / d_intra if d_intra > 0 else float("inf"))
    if not ratio:
        raise TalkingHeadError("Clustering strength needs at least two classes within a group.")
    per_class = {c: float(np.mean(v)) for c, v in ratio.items()}
    return ClusteringStrength(per_class, {c: float(np.mean(v)) for c, v in inter.items()},
                              {c: float(np.mean(v)) for c, v in intra.items()},
                              float(np.mean(list(per_class.values()))))
