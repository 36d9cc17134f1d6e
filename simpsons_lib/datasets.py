"""torch ``Dataset``s over the indexed images: from files, or from decoded uint8 arrays (``image_cache``).

Both always yield RGB and take a transform; a transform that wants the label (``PerClassTransform``)
is called as ``transform(image, label)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .data import load_rgb


class ImageDataset(Dataset):
    """Images from files, always RGB, with an optional transform.

    With ``labels`` it yields ``(image, label)``; with ``ids`` it yields ``(image, id)``. A transform
    that wants the label (``PerClassTransform``) is called as ``transform(image, label)``.
    """

    def __init__(self, paths_: Sequence[str], labels: Sequence[int] | None = None,
                 ids: Sequence[str] | None = None, transform: Callable | None = None):
        if (labels is None) == (ids is None):
            raise ValueError("give exactly one of labels (train/val) or ids (test)")
        self.paths = list(paths_)
        self.targets = list(labels) if labels is not None else list(ids)
        self.labelled = labels is not None
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int):
        return load_rgb(self.paths[i])

    def __getitem__(self, i: int):
        image, target = self.load(i), self.targets[i]
        if self.transform is not None:
            image = _apply(self.transform, image, target if self.labelled else None)
        return image, target


class ArrayImageDataset(ImageDataset):
    """The same, over decoded uint8 images ``(N, 3, H, W)`` (see ``image_cache``), yielded as tensors.

    ``rows`` picks which images of ``images`` this dataset holds (e.g. a split frame's index)."""

    def __init__(self, images: np.ndarray, rows: Sequence[int] | None = None, labels=None, ids=None,
                 transform=None):
        self.rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        super().__init__([""] * len(self.rows), labels=labels, ids=ids, transform=transform)
        self.images = images

    def load(self, i: int):
        return torch.from_numpy(np.array(self.images[self.rows[i]]))


def _apply(transform, image, label):
    if getattr(transform, "wants_label", False):
        return transform(image, label)
    return transform(image)
