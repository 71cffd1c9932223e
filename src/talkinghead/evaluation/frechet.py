"""Frechet distances: FID-style statistics, E-FID (EMO) and distances over any encoder's features.

The Frechet distance between Gaussians N(mu1, S1) and N(mu2, S2) (Dowson & Landau 1982; used as FID by
Heusel et al. 2017, Eq. 6)::

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

- FID (DreamTalk, FD2Talk Tab. 1, EMO Tab. 1, DICE-Talk Tab. 1) and FVD (Unterthiner et al. 2019; EMO,
  DICE-Talk) are this distance over Inception-v3 pool features of frames and I3D features of clips.
- E-FID (EMO Sec. 4.2, Tab. 1): the same distance over 3D face-reconstruction *expression parameters*
  of every frame, "to quantitatively measure the divergence between the expressions in the synthesized
  videos and those in the ground truth dataset". Here the parameters are the expression channels of
  the project's face model (MotionSequence.expression) instead of Deep3DFace's 64 coefficients.

Inception and I3D weights do not ship here. :func:`fid` and :func:`fvd` compute the distances with the
networks of :mod:`.inception` and :mod:`.i3d` loaded from a local directory (``load_inception`` /
``load_i3d``). :func:`encoder_frechet_distance` computes the distance over the features of any other
encoder the caller supplies (e.g. one trained in this project); its result must be reported under
that encoder's name, not as "FID"/"FVD".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from scipy import linalg

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import as_array, clip_list, expression_of


def gaussian_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` of ``features: [N, D]`` (N >= 2)."""
    x = as_array(features, "The features", (2,))
    if x.shape[0] < 2:
        raise TalkingHeadError("Frechet statistics need at least two feature vectors.")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, Eq. 6).

    ``mu: [D]``, ``sigma: [D, D]`` symmetric positive semi-definite. ``(S1 S2)^{1/2}`` is computed with
    ``scipy.linalg.sqrtm``; when it is not finite (a singular product) ``eps * I`` is added to both
    covariances, and a negligible imaginary part from round-off is dropped. When round-off leaves a
    large imaginary part (rank-deficient covariances, e.g. fewer samples than feature dimensions, the
    usual case for FID's 2048-d features), the trace is taken in the equivalent symmetric form
    ``Tr((S1^{1/2} S2 S1^{1/2})^{1/2})`` from eigenvalues (:func:`_trace_sqrt_product`).
    """
    m1 = as_array(mu1, "mu1", (1,))
    m2 = as_array(mu2, "mu2", (1,))
    s1 = np.atleast_2d(as_array(sigma1, "sigma1", (0, 1, 2)))
    s2 = np.atleast_2d(as_array(sigma2, "sigma2", (0, 1, 2)))
    d = m1.shape[0]
    if m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise TalkingHeadError(f"Frechet statistics disagree in size: mu {m1.shape}/{m2.shape}, sigma "
                               f"{s1.shape}/{s2.shape}.")
    diff = m1 - m2
    with warnings.catch_warnings():  # singular products are expected and handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(d) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    trace_covmean = None
    if np.iscomplexobj(covmean):
        scale = max(1.0, float(np.abs(covmean).max()))
        if np.abs(covmean.imag).max() > 1e-3 * scale:
            trace_covmean = _trace_sqrt_product(s1, s2)
        covmean = covmean.real
    if trace_covmean is None:
        trace_covmean = float(np.trace(covmean))
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_covmean)
    return max(value, 0.0)


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """``Tr((S1 S2)^{1/2})`` for symmetric PSD ``S1``, ``S2`` ``[D, D]`` as ``Tr((R S2 R)^{1/2})`` with
    ``R = S1^{1/2}`` (``S1 S2`` is similar to ``R S2 R``, which is symmetric PSD, so its eigenvalues are
    real and >= 0 up to round-off)."""
    def psd_eigen(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, v = np.linalg.eigh((m + m.T) / 2)
        if w.min() < -1e-6 * max(1.0, float(np.abs(w).max())):
            raise TalkingHeadError("The covariance product has a large imaginary square root; the "
                                   "covariances are not positive semi-definite.")
        return np.clip(w, 0.0, None), v

    w, v = psd_eigen(s1)
    root = (v * np.sqrt(w)) @ v.T
    inner, _ = psd_eigen(root @ s2 @ root)
    return float(np.sqrt(inner).sum())


def frechet_distance_from_features(features1: Any, features2: Any) -> float:
    """Frechet distance between the Gaussians fitted to ``features1: [N1, D]`` and ``features2: [N2, D]``."""
    mu1, s1 = gaussian_statistics(features1)
    mu2, s2 = gaussian_statistics(features2)
    return frechet_distance(mu1, s1, mu2, s2)


def _stack_expressions(clips: Any, name: str) -> np.ndarray:
    frames = [expression_of(c, f"{name} clip") for c in clip_list(clips, name)]
    widths = {f.shape[1] for f in frames}
    if len(widths) != 1:
        raise TalkingHeadError(f"{name} clips have different numbers of expression channels: {sorted(widths)}.")
    return np.concatenate(frames, axis=0)


def expression_fid(generated: Any, reference: Any) -> float:
    """E-FID (EMO Sec. 4.2): Frechet distance of per-frame expression parameters.

    ``generated``, ``reference``: a list of clips, each a MotionSequence or an ``[T, E]`` expression
    array (one clip alone is accepted too). All frames of all clips are pooled into ``[sum T, E]``
    before fitting each Gaussian, as FID pools all frames.
    """
    gen = _stack_expressions(generated, "The generated")
    ref = _stack_expressions(reference, "The reference")
    if gen.shape[1] != ref.shape[1]:
        raise TalkingHeadError(f"The generated and reference expressions have {gen.shape[1]} and "
                               f"{ref.shape[1]} channels.")
    return frechet_distance_from_features(gen, ref)


def encoder_frechet_distance(encoder: Callable[[np.ndarray], Any], generated: Iterable[Any],
                             reference: Iterable[Any]) -> float:
    """Frechet distance over the features of ``encoder`` (FID with Inception, FVD with I3D, or an
    encoder trained here, reported under its own name).

    ``encoder`` maps one batch (e.g. frames ``[B, H, W, 3]`` or clips ``[B, T, H, W, 3]``) to features
    ``[B, D]`` (numpy or torch); ``generated`` and ``reference`` iterate over such batches.
    """
    def collect(batches: Iterable[Any], name: str) -> np.ndarray:
        feats = []
        for batch in batches:
            out = encoder(batch)
            if hasattr(out, "detach"):
                out = out.detach().cpu().numpy()
            feats.append(as_array(out, f"The encoder output for the {name} batch", (2,)))
        if not feats:
            raise TalkingHeadError(f"The {name} set holds no batches.")
        return np.concatenate(feats, axis=0)

    return frechet_distance_from_features(collect(generated, "generated"), collect(reference, "reference"))


def fid(generated_frames: Any, reference_frames: Any, net: Any, batch_size: int = 32) -> float:
    """FID (Heusel et al. 2017): the Frechet distance of the FID Inception-v3's pool_3 features.

    ``generated_frames``, ``reference_frames``: RGB uint8 frames ``[N, H, W, 3]`` or a list of such
    arrays (e.g. one per video; all frames are pooled); ``net``: a
    :class:`~talkinghead.evaluation.inception.FIDInceptionV3` (``load_inception(dir)``). The forward
    passes run ``batch_size`` frames at a time.
    """
    return frechet_distance_from_features(net.features(generated_frames, batch_size),
                                          net.features(reference_frames, batch_size))


def fvd(generated_clips: Any, reference_clips: Any, net: Any, batch_size: int = 8) -> float:
    """FVD (Unterthiner et al. 2018): the Frechet distance of I3D's clip features (Kinetics logits).

    ``generated_clips``, ``reference_clips``: RGB uint8 clips ``[N, T, H, W, 3]`` (T = 16 in the
    reference protocol; :func:`~talkinghead.evaluation.i3d.split_clips` cuts videos into them) or a list
    of such arrays; ``net``: an :class:`~talkinghead.evaluation.i3d.InceptionI3D` (``load_i3d(dir)``).
    """
    return frechet_distance_from_features(net.features(generated_clips, batch_size),
                                          net.features(reference_clips, batch_size))
