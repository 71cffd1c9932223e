"""The papers' evaluation metrics (DESIGN.md, "metrics"; issue 7 item 1).

One module per metric family:

- :mod:`.image`: PSNR, SSIM (Wang et al. 2004) and CPBD (Narvekar & Karam 2011) over video frames
  (DreamTalk Tab. 1, FD2Talk Tab. 1).
- :mod:`.landmarks`: Kabsch-Umeyama similarity alignment, F-LMD and M-LMD on MediaPipe face-mesh
  landmarks with Dimitra's per-frame normalisation (Dimitra SM, "Metrics").
- :mod:`.frechet`: the Frechet distance between Gaussians, E-FID (EMO Sec. 4.2) and Frechet distances
  over the features of any encoder (FID/FVD when their weights are given).
- :mod:`.motion`: head-motion diversity and Beat Align Score (FD2Talk Sec. 4.2), head rotation
  velocity mean/variance/VMV (EMO Tab. 2).
- :mod:`.style`: SCD, MD and SA for style prediction (DreamTalk App. A).
- :mod:`.clustering`: clustering strength d_inter / d_intra (DICE-Talk Sec. 4.5, Tab. 5).
- :mod:`.classifier` and :mod:`.emotion`: a small motion-sequence classifier trained on labelled
  clips, emotion accuracy and Emo-Score (DICE-Talk Sec. 4.2), also the style classifier behind SA.

Every function checks its inputs and raises :class:`~talkinghead.errors.TalkingHeadError` with one
sentence on bad ones.
"""

from talkinghead.evaluation.classifier import MotionClassifier, MotionClassifierConfig, motion_features
from talkinghead.evaluation.clustering import ClusteringStrength, clustering_strength
from talkinghead.evaluation.emotion import (
    EmotionAccuracy,
    emotion_accuracy,
    train_emotion_classifier,
    train_emotion_classifier_from_dataset,
)
from talkinghead.evaluation.frechet import (
    encoder_frechet_distance,
    expression_fid,
    frechet_distance,
    frechet_distance_from_features,
    gaussian_statistics,
)
from talkinghead.evaluation.image import cpbd, psnr, psnr_per_frame, ssim, ssim_per_frame
from talkinghead.evaluation.landmarks import (
    FACE_INDICES,
    MOUTH_INDICES,
    SimilarityFit,
    align_landmarks,
    f_lmd,
    kabsch_umeyama,
    landmark_distance,
    m_lmd,
)
from talkinghead.evaluation.motion import (
    VelocityStatistics,
    audio_beats,
    beat_align_score,
    head_motion_diversity,
    head_rotation_velocity,
    motion_beats,
    rotation_matrices,
    velocity_statistics,
)
from talkinghead.evaluation.style import motion_distance, style_accuracy, style_code_distance, style_label

__all__ = [
    "FACE_INDICES", "MOUTH_INDICES", "ClusteringStrength", "EmotionAccuracy", "MotionClassifier",
    "MotionClassifierConfig", "SimilarityFit", "VelocityStatistics", "align_landmarks", "audio_beats",
    "beat_align_score", "clustering_strength", "cpbd", "emotion_accuracy", "encoder_frechet_distance",
    "expression_fid", "f_lmd", "frechet_distance", "frechet_distance_from_features", "gaussian_statistics",
    "head_motion_diversity", "head_rotation_velocity", "kabsch_umeyama", "landmark_distance", "m_lmd",
    "motion_beats", "motion_distance", "motion_features", "psnr", "psnr_per_frame", "rotation_matrices",
    "ssim", "ssim_per_frame", "style_accuracy", "style_code_distance", "style_label", "train_emotion_classifier",
    "train_emotion_classifier_from_dataset", "velocity_statistics",
]
