"""Everything a notebook needs about the data of one run, from its parameters, in one call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .layout import (
    COPIES_FILE,
    data_fingerprint,
    DatasetLayout,
    DatasetNotFoundError,
    IndexReport,
    build_test_index,
    build_train_index,
    find_study_layout,
    split_train_val,
    write_index_report,
)
from .cache import load_image_array
from .near_duplicates import NearDuplicates, find_near_duplicates
from ..config.console import progress_enabled

if TYPE_CHECKING:
    from .datasets import ImageDataset


@dataclass
class StudyData:
    layout: DatasetLayout
    index: pd.DataFrame          # every usable training image: path, class_name, label
    train: pd.DataFrame          # rows of ``index`` in the training split (index = row in ``index``)
    val: pd.DataFrame
    test: pd.DataFrame | None    # path, Id
    classes: list[str]
    report: IndexReport
    image_size: int | None = None
    images: np.ndarray | None = None       # decoded ``index`` images (N, 3, size, size), uint8
    test_images: np.ndarray | None = None
    near_duplicates: NearDuplicates | None = None  # the audit (``near_duplicates``), when loaded with it
    split: str = "random"

    def near_duplicate_summary(self) -> dict | None:
        """The near-duplicate audit of this study's split in numbers (None when loaded without it)."""
        if self.near_duplicates is None:
            return None
        return {"split": self.split, **self.near_duplicates.summary(self.train, self.val)}

    def val_near_duplicate_in_train(self) -> np.ndarray | None:
        """For each validation image: whether a near-duplicate of it is among the training images."""
        if self.near_duplicates is None:
            return None
        return self.near_duplicates.has_twin_in(self.val.index, self.train.index)

    def describe_near_duplicates(self) -> str:
        from .near_duplicates import describe

        summary = self.near_duplicate_summary()
        return describe(summary, self.split) if summary else "near-duplicates: not audited"

    @property
    def fingerprint(self) -> str:
        """The training data's fingerprint (``layout.data_fingerprint``: file names, sizes and contents)."""
        return data_fingerprint([self.layout.train_dir])["sha1"]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> pd.DataFrame:
        counts = pd.DataFrame({
            "train": self.train["class_name"].value_counts(),
            "val": self.val["class_name"].value_counts(),
        }).reindex(self.classes).fillna(0).astype(int)
        counts["total"] = counts["train"] + counts["val"]
        return counts.sort_values("total", ascending=False)

    def describe(self) -> str:
        lines = [
            f"data: {self.layout.root}{' (drawn demo data)' if self.layout.is_demo else ''}",
            f"classes: {self.n_classes}; images: {len(self.index)} (train {len(self.train)}, val {len(self.val)})",
        ]
        if self.test is not None:
            lines.append(f"test images: {len(self.test)}")
        if self.report.bad_files or self.report.ignored_files or self.report.dropped_classes:
            lines.append(f"left out: {len(self.report.bad_files)} bad files, {len(self.report.ignored_files)} "
                         f"non-image files, {len(self.report.dropped_classes)} empty classes")
        return "\n".join(lines)

    def describe_split(self) -> str:
        """The split in words: its sizes, and the classes with no validation image (if any)."""
        counts = self.summary()
        missing = list(counts.index[counts["val"] == 0])
        return (f"train {len(self.train)} images, validation {len(self.val)} images ({len(self.classes)} classes); "
                + (f"no validation image for {len(missing)} classes: {', '.join(missing)}" if missing
                   else "every class has validation images"))

    def dataset(self, split: str, transform) -> ImageDataset:
        """``train``/``val`` (image, label) or ``test`` (image, Id), from the decoded cache when loaded."""
        from .datasets import ArrayImageDataset, ImageDataset  # torch: not needed to load and explore the data

        if split == "test":
            if self.test is None:
                raise ValueError("this study was loaded without the test set (with_test=False)")
            if self.test_images is not None:
                return ArrayImageDataset(self.test_images, ids=list(self.test["Id"]), transform=transform)
            return ImageDataset(list(self.test["path"]), ids=list(self.test["Id"]), transform=transform)
        frame = {"train": self.train, "val": self.val}[split]
        if self.images is not None:
            return ArrayImageDataset(self.images, rows=frame.index.to_numpy(), labels=list(frame["label"]),
                                     transform=transform)
        return ImageDataset(list(frame["path"]), labels=list(frame["label"]), transform=transform)


def _test_index(layout: DatasetLayout, p, report: IndexReport) -> pd.DataFrame:
    if layout.test_dir is None:
        raise DatasetNotFoundError(f"No test images found under {layout.root}")
    return build_test_index(layout.test_dir, p["on_bad_image"], report)[0]


def load_study(p, image_size: int | None = None, with_test: bool = False, bad_images_report: Path | None = None,
               progress: bool | None = None) -> StudyData:
    """Find, index and split the data of a run (``split``: random, or grouped by near-duplicates); audit its
    near-duplicates (hashes cached beside the images'); with ``image_size`` (and ``cache_images``) decode it
    once."""
    layout = find_study_layout(p)
    report = IndexReport()
    index, report = build_train_index(layout.train_dir, p["on_bad_image"], report)
    test = _test_index(layout, p, report) if with_test else None
    show = progress_enabled(progress)
    duplicates = find_near_duplicates(index, p["near_duplicate_bits"], test, progress=show)
    groups = duplicates.groups if p["split"] == "grouped" else None
    train, val = split_train_val(index, p["val_fraction"], p["seed"], groups)
    if bad_images_report is not None:
        write_index_report(report, bad_images_report)
    classes = sorted(index["class_name"].unique())
    study = StudyData(layout, index, train, val, test, classes, report, image_size,
                      near_duplicates=duplicates, split=p["split"])
    if image_size is not None and p.get("cache_images", True):
        study.images = load_image_array(list(index["path"]), image_size, progress=show)
        if test is not None:
            study.test_images = load_image_array(list(test["path"]), image_size, progress=show)
    return study


def near_duplicate_audit(s: StudyData, p) -> dict:
    """The near-duplicate audit of a study under both splits (the run's ``val_fraction`` and ``seed``):
    ``{"split": the run's, "random": ..., "grouped": ...}`` (``NearDuplicates.summary`` each), and on the
    drawn demo data, ``"planted"``: the audit scored against the copies the generator planted."""
    duplicates = s.near_duplicates
    record = {"split": p["split"]}
    for kind, groups in (("random", None), ("grouped", duplicates.groups)):
        record[kind] = duplicates.summary(*split_train_val(s.index, p["val_fraction"], p["seed"], groups))
    copies = s.layout.root / COPIES_FILE
    if s.layout.is_demo and copies.is_file():
        record["planted"] = duplicates.score_planted(copies)
    return record


def load_test_study(p, classes: list[str], image_size: int, progress: bool | None = None) -> StudyData:
    """Only the test set (for predictions with a trained model's ``classes``), decoded at ``image_size``."""
    layout = find_study_layout(p)
    report = IndexReport()
    test = _test_index(layout, p, report)
    empty = pd.DataFrame({"path": [], "class_name": [], "label": []})
    study = StudyData(layout, empty, empty, empty, test, list(classes), report, image_size)
    if p.get("cache_images", True):
        study.test_images = load_image_array(list(test["path"]), image_size, progress=progress_enabled(progress))
    return study
