"""Cues outside the image content: can a file's metadata alone tell its class?

A fair dataset (and the drawn demo stand-in must be one) lets a model tell classes apart only by what
the images show. If width, height, file size or JPEG quality predicted the class, a network could learn
the cue instead of the character. ``metadata_cue_check`` fits a small random forest on those four
numbers, cross-validated, and compares its accuracy with the majority-class baseline of the same folds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

# The IJG (libjpeg) standard luminance quantization table at quality 50 (ITU-T T.81, Annex K).
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
])
METADATA_COLUMNS = ["width", "height", "file_bytes", "jpeg_quality"]


def jpeg_quality(img: Image.Image) -> float:
    """The IJG quality (1-100) whose scaled standard table best matches the file's luminance table
    (PIL ``img.quantization``); NaN for a file that is not a JPEG. Sums are compared, so the table's
    order (zigzag or natural) does not matter."""
    tables = getattr(img, "quantization", None)
    if not tables:
        return float("nan")
    scale = 100.0 * float(np.sum(tables[0])) / float(STD_LUMINANCE.sum())  # IJG: table = std * scale / 100
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(np.clip(quality, 1.0, 100.0))


def file_metadata(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Width, height, file size in bytes and estimated JPEG quality of each file, read from its
    header (nothing is decoded); one row per path, in order."""
    rows = []
    for p in paths:
        with Image.open(p) as img:
            rows.append((img.width, img.height, Path(p).stat().st_size, jpeg_quality(img)))
    return pd.DataFrame(rows, columns=METADATA_COLUMNS)


@dataclass(frozen=True)
class MetadataCueResult:
    """Cross-validated accuracy of the metadata classifier and of always predicting the majority class."""

    accuracy: float
    baseline: float
    n: int

    @property
    def standard_error(self) -> float:
        """Binomial standard error of an accuracy equal to the baseline, measured on ``n`` images."""
        return float(np.sqrt(self.baseline * (1.0 - self.baseline) / self.n))


def metadata_cue_check(paths: Sequence[str | os.PathLike], labels: Sequence, folds: int = 3,
                       seed: int = 0) -> MetadataCueResult:
    """Predict ``labels`` from ``file_metadata(paths)`` alone with a small random forest, in
    ``folds`` stratified folds, and return its accuracy beside the majority-class baseline on the same
    folds. Every class needs at least ``folds`` images."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    features = file_metadata(paths).fillna(-1.0).to_numpy()
    y = np.asarray(labels)
    smallest = pd.Series(y).value_counts().min()
    if smallest < folds:
        raise ValueError(f"metadata_cue_check: every class needs at least {folds} images (folds), "
                         f"the smallest has {smallest}")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    forest = RandomForestClassifier(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    accuracy = cross_val_score(forest, features, y, cv=cv, scoring="accuracy").mean()
    baseline = cross_val_score(DummyClassifier(strategy="most_frequent"), features, y, cv=cv,
                               scoring="accuracy").mean()
    return MetadataCueResult(accuracy=float(accuracy), baseline=float(baseline), n=len(y))


BORDER_FEATURES = ("corner mean", "corner std", "corner dark share", "edge mean", "edge std", "edge dark share")


def border_statistics(images: np.ndarray, border: float = 0.12) -> np.ndarray:
    """Per image ``(N, 6)``: the mean, standard deviation and share of near-black pixels of its four
    corner squares and of its four edge strips (``border`` of the side), on uint8 ``(N, 3, H, W)`` or
    ``(N, H, W, 3)`` arrays. What a constant fill of the uncovered pixels would change."""
    x = np.asarray(images, dtype=np.float32)
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.transpose(0, 3, 1, 2)
    gray = x.mean(axis=1)  # (N, H, W)
    n, h, w = gray.shape
    bh, bw = max(1, round(h * border)), max(1, round(w * border))
    corners = np.concatenate([gray[:, :bh, :bw], gray[:, :bh, -bw:], gray[:, -bh:, :bw], gray[:, -bh:, -bw:]],
                             axis=1).reshape(n, -1)
    edges = np.concatenate([gray[:, :bh, :].reshape(n, -1), gray[:, -bh:, :].reshape(n, -1),
                            gray[:, :, :bw].reshape(n, -1), gray[:, :, -bw:].reshape(n, -1)], axis=1)
    stats = [[part.mean(1), part.std(1), (part < 8).mean(1)] for part in (corners, edges)]
    return np.stack([s for group in stats for s in group], axis=1)


@dataclass(frozen=True)
class AugmentationCueResult:
    """Cross-validated accuracy of telling strongly from mildly augmented images by their borders alone,
    against chance (the share of the larger group)."""

    accuracy: float
    chance: float
    n: int

    @property
    def standard_error(self) -> float:
        return float(np.sqrt(self.chance * (1.0 - self.chance) / self.n))

    @property
    def cue(self) -> bool:
        """Whether the borders tell the policies apart by more than three standard errors."""
        return self.accuracy > self.chance + 3 * self.standard_error


def augmentation_cue_check(strong_images: np.ndarray, mild_images: np.ndarray, folds: int = 5,
                           seed: int = 0) -> AugmentationCueResult:
    """Can a small random forest on ``border_statistics`` alone tell the strongly augmented images from
    the mildly augmented ones (the same source images through each policy)? Accuracy in ``folds``
    stratified folds, beside chance."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    features = np.concatenate([border_statistics(strong_images), border_statistics(mild_images)])
    y = np.r_[np.ones(len(strong_images), int), np.zeros(len(mild_images), int)]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    forest = RandomForestClassifier(n_estimators=100, min_samples_leaf=3, random_state=seed, n_jobs=1)
    accuracy = cross_val_score(forest, features, y, cv=cv, scoring="accuracy").mean()
    return AugmentationCueResult(accuracy=float(accuracy), chance=float(max(y.mean(), 1 - y.mean())), n=len(y))
