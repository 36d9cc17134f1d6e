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
