"""The papers' evaluation metrics (DESIGN.md, "metrics"; issue 7 item 1).

One module per metric family:

- :mod:`.image`: PSNR, SSIM (Wang et al. 2004) and CPBD (Narvekar & Karam 2011) over video frames
  (DreamTalk Tab. 1, FD2Talk Tab. 1).
- :mod:`.landmarks`: Kabsch-Umeyama similarity alignment, F-LMD and M-LMD on MediaPipe face-mesh
  landmarks with Dimitra's per-frame normalisation (Dimitra SM, "Metrics").
- :mod:`.frechet`: the Frechet distance between Gaussians, E-FID (EMO Sec. 4.2), FID/FVD and Frechet
  distances over the features of any encoder.
- :mod:`.inception` and :mod:`.i3d`: the FID Inception-v3 and FVD's I3D, loaded from local weights.
- :mod:`.motion`: head-motion diversity and Beat Align Score (FD2Talk Sec. 4.2), head rotation
  velocity mean/variance/VMV (EMO Tab. 2).
- :mod:`.style`: SCD, MD and SA for style prediction (DreamTalk App. A).
- :mod:`.clustering`: clustering strength d_inter / d_intra (DICE-Talk Sec. 4.5, Tab. 5).
- :mod:`.classifier` and :mod:`.emotion`: a small motion-sequence classifier trained on labelled
  clips, emotion accuracy and Emo-Score (DICE-Talk Sec. 4.2), also the style classifier behind SA.

Every function checks its inputs and raises :class:`~talkinghead.errors.TalkingHeadError` with one
sentence on bad ones.

The names below are imported on first use (PEP 562), so ``talkinghead --help`` does not pay for
torch and scipy.
"""

from __future__ import annotations

from talkinghead.lazy import lazy_getattr

_WHERE = {
    "ClusteringStrength": "clustering",
    "EmotionAccuracy": "emotion",
    "FACE_INDICES": "landmarks",
    "FIDInceptionV3": "inception",
    "I3DConfig": "i3d",
    "InceptionConfig": "inception",
    "InceptionI3D": "i3d",
    "MOUTH_INDICES": "landmarks",
    "MotionClassifier": "classifier",
    "MotionClassifierConfig": "classifier",
    "SimilarityFit": "landmarks",
    "VelocityStatistics": "motion",
    "align_landmarks": "landmarks",
    "audio_beats": "motion",
    "beat_align_score": "motion",
    "clustering_strength": "clustering",
    "cpbd": "image",
    "emotion_accuracy": "emotion",
    "encoder_frechet_distance": "frechet",
    "expression_fid": "frechet",
    "f_lmd": "landmarks",
    "fid": "frechet",
    "frechet_distance": "frechet",
    "frechet_distance_from_features": "frechet",
    "fvd": "frechet",
    "gaussian_statistics": "frechet",
    "head_motion_diversity": "motion",
    "head_rotation_velocity": "motion",
    "kabsch_umeyama": "landmarks",
    "landmark_distance": "landmarks",
    "load_i3d": "i3d",
    "load_inception": "inception",
    "m_lmd": "landmarks",
    "motion_beats": "motion",
    "motion_distance": "style",
    "motion_features": "classifier",
    "psnr": "image",
    "psnr_per_frame": "image",
    "rotation_matrices": "motion",
    "split_clips": "i3d",
    "ssim": "image",
    "ssim_per_frame": "image",
    "style_accuracy": "style",
    "style_code_distance": "style",
    "style_label": "style",
    "train_emotion_classifier": "emotion",
    "train_emotion_classifier_from_dataset": "emotion",
    "velocity_statistics": "motion",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
