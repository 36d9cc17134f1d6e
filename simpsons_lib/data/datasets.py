"""torch ``Dataset``s over the indexed images: from files, or from decoded uint8 arrays (``image_cache``).

Both always yield RGB and take a transform; a transform that wants the label (``PerClassTransform``)
is called as ``transform(image, label)``.
"""

from __future__ import annotations

import mmap
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .layout import load_rgb


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

    def __getstate__(self):
        # A memory-mapped cache travels to DataLoader workers as its file name, not as a copy
        # (matters where workers are spawned, as on macOS and Windows).
        state = self.__dict__.copy()
        if isinstance(self.images, np.memmap) and self.images.filename:
            state["images"] = ("memmap", self.images.filename)
        return state

    def __setstate__(self, state):
        if isinstance(state["images"], tuple) and state["images"][0] == "memmap":
            state["images"] = np.load(state["images"][1], mmap_mode="r")
        self.__dict__.update(state)


def _apply(transform, image, label):
    if getattr(transform, "wants_label", False):
        return transform(image, label)
    return transform(image)


class DeviceBatchLoader:
    """Batches of decoded images held as one uint8 tensor on ``device``, with a batch transform applied
    there: the fast path on a GPU, where per-image decoding and augmentation would starve the model.

    Yields ``(images, labels)`` like a DataLoader over ``ArrayImageDataset``; the order follows a seeded
    CPU ``generator`` (saved and restored with checkpoints, like a DataLoader's), which also drives the
    augmentation (``transforms.BatchAugment``)."""

    def __init__(self, images: np.ndarray, rows: Sequence[int], labels: Sequence[int], batch_size: int, *,
                 shuffle: bool, seed: int, device, transform: Callable, weights: torch.Tensor | None = None):
        self.images = copy_rows_to_device(images, np.asarray(rows), device)
        self.host_labels = torch.from_numpy(np.array(labels, dtype=np.int64))
        self.labels = self.host_labels.to(device)
        self.batch_size, self.shuffle, self.transform = batch_size, shuffle, transform
        self.generator = torch.Generator().manual_seed(seed)
        self.weights = weights  # a weighted draw with replacement (sampling: balanced), as WeightedRandomSampler

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        # Indices are drawn on the host and sent without waiting; the transform gets the host copy of
        # the labels, so nothing in a batch makes the host wait for the GPU's previous step.
        n = len(self.labels)
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=self.generator)
        else:
            order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            host_idx = order[start:start + self.batch_size]
            idx = to_device_async(host_idx, self.images.device)
            yield self.transform(self.images[idx], self.host_labels[host_idx], self.generator), self.labels[idx]


def balanced_weights(labels: Sequence[int], power: float) -> torch.Tensor:
    """Each image's draw weight for class-balanced sampling: ``count(class) ** -power`` (1: every class
    drawn equally often; 0.5: in proportion to the square root of its count; 0: as it comes)."""
    labels = torch.from_numpy(np.array(labels, dtype=np.int64))  # a copy: the frame may be read-only
    counts = torch.bincount(labels).double()
    return counts[labels] ** -float(power)


def copy_rows_to_device(images: np.ndarray, rows: np.ndarray, device, chunk: int = 1024) -> torch.Tensor:
    """``images[rows]`` as one uint8 tensor on ``device``, copied a chunk at a time in file order; the
    memory map's pages are let go after each chunk, so the host never holds the whole split."""
    out = torch.empty((len(rows), *images.shape[1:]), dtype=torch.uint8, device=device)
    order = np.argsort(rows, kind="stable")
    for start in range(0, len(rows), chunk):
        positions = order[start:start + chunk]
        block = torch.from_numpy(np.ascontiguousarray(images[rows[positions]]))
        out[torch.from_numpy(positions).to(device)] = block.to(device)
        release_pages(images)
    return out


def release_pages(images: np.ndarray) -> None:
    """Drop a read-only memory map's pages from this process (they stay in the OS file cache and come
    back on the next read); a no-op for arrays in memory."""
    mapped = getattr(images, "_mmap", None)
    if isinstance(images, np.memmap) and mapped is not None and images.mode == "r" and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def to_device_async(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on ``device`` without a host-side wait: through pinned memory on CUDA."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
