"""Where and how a model runs: the device, the seed, seeded loaders, autocast and memory layout."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from ..config.choices import DEVICES


def select_device(name: str = "auto") -> torch.device:
    """``auto``: cuda, then mps, then cpu. Asking for an absent accelerator is an error."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but no CUDA GPU is available (use device: auto or cpu)")
    if name == "mps" and not has_mps:
        raise RuntimeError("device 'mps' was asked for, but Apple MPS is not available (use device: auto or cpu)")
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_loader(dataset, batch_size: int, *, shuffle: bool, seed: int, num_workers: int = 0,
                device: torch.device | None = None, weights: torch.Tensor | None = None) -> DataLoader:
    """A loader whose order (and workers' augmentation seeds) follow ``seed``. ``weights``: draw
    ``len(dataset)`` images per epoch with replacement by these weights (torch's ``WeightedRandomSampler``,
    on the loader's seeded generator) instead of shuffling."""
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if weights is not None:
        sampler = WeightedRandomSampler(weights, num_samples=len(weights), replacement=True, generator=generator)
        shuffle = False
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, generator=generator,
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      pin_memory=device is not None and device.type == "cuda", drop_last=False)


def to_training_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on ``device``; on CUDA in channels-last layout, with cuDNN picking its fastest kernels."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        return model.to(device, memory_format=torch.channels_last)
    return model.to(device)


def autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    return images
