"""Where and how a model runs: the device, the seed, seeded loaders and their workers, mixed precision
(``amp_mode`` decides it, ``autocast`` and ``grad_scaler`` apply it) and memory layout."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from ..config.choices import AMP_MODES, DEVICES
from ..config.params import amp_setting
from ..data.parallel import available_cpus

MAX_LOADER_WORKERS = 8  # what the full profile used to fix; more processes mostly add memory
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


def loader_workers(setting: int | str) -> int:
    """The DataLoader worker processes for ``num_workers``: a count as given; ``auto``: the CPUs this
    process may use (``parallel.available_cpus``: 4 on Kaggle's notebooks) less one, which the main
    process needs to collate batches and drive the model, at most ``MAX_LOADER_WORKERS``; 0 (load in the
    main process) on a single CPU."""
    if setting == "auto":
        return max(0, min(MAX_LOADER_WORKERS, available_cpus() - 1))
    return int(setting)


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


def native_bf16(device: torch.device) -> bool:
    """Whether the CUDA GPU computes bf16 in hardware (compute capability 8.0 and later: A100, L4, H100).
    ``torch.cuda.is_bf16_supported()`` also counts software emulation and says True on a T4 (7.5), where
    cuDNN has no bf16 convolution; ``including_emulation=False`` gives the real answer. A torch without
    that argument is answered from the compute capability."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:
        return tuple(torch.cuda.get_device_capability(device)) >= (8, 0)


def amp_mode(setting, device: torch.device | str) -> str:
    """The mixed precision a run uses on ``device``, from its ``amp`` parameter: ``bf16``, ``fp16`` or
    ``off``. The one place that decides; training, validation, prediction and TTA all ask it.

    ``auto``:

    - a CUDA GPU with native bf16 (``native_bf16``): ``bf16`` (fp32's range: no loss scaling);
    - an older CUDA GPU (a T4, 7.5): ``fp16``, with ``grad_scaler``'s loss scaling;
    - the CPU: ``off`` (autocast seldom pays there without bf16 hardware; fp32 runs compare alike);
    - Apple MPS: ``off``. Across the torch versions the study supports (2.4 on), autocast on MPS is
      missing (before 2.5), fp16 has no gradient scaler there before 2.8, and bf16 needs macOS 14 and is
      emulated in fp32 on M1/M2; fp32 is the one choice that trains alike on every Mac.

    An explicit ``bf16`` or ``fp16`` is honoured on any device torch has autocast for, except ``bf16`` on a
    CUDA GPU without native bf16, which is refused in one line (it fails on convolutions or crawls there);
    ``off`` is always honoured. ``true``/``false`` (the earlier boolean) mean ``auto``/``off``."""
    setting = amp_setting(setting)
    if setting not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, not {setting!r}")
    device = torch.device(device)
    if setting == "off":
        return "off"
    if device.type == "cuda":
        native = native_bf16(device)
        if setting == "auto":
            return "bf16" if native else "fp16"
        if setting == "bf16" and not native:
            major, minor = torch.cuda.get_device_capability(device)
            raise RuntimeError(f"amp 'bf16' was asked for, but {torch.cuda.get_device_name(device)} (compute "
                               f"capability {major}.{minor}) has no native bf16 (from 8.0 on); use amp: auto or fp16")
        return setting
    if setting == "auto":
        return "off"
    available = getattr(torch.amp, "is_autocast_available", None)
    if available is None or not available(device.type):
        raise RuntimeError(f"amp {setting!r} was asked for, but this torch ({torch.__version__}) has no autocast on "
                           f"{device.type}; use amp: auto or off")
    return setting


def autocast(device: torch.device, amp: str):
    """``torch.autocast`` to the dtype of a mode ``amp_mode`` chose (``bf16``, ``fp16``); nothing for ``off``."""
    dtype = AMP_DTYPES.get(amp) if isinstance(amp, str) else None
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler | None:
    """fp16's loss scaling (``torch.amp.GradScaler``), None for any other mode. fp16 keeps 5 exponent bits:
    small gradients underflow to zero unless the loss is scaled up first; a step whose scaled gradients
    overflow (inf/NaN) is skipped and the scale halved, so skipped steps are normal at the start of a run
    and rare after. bf16 has fp32's exponent range and needs no scaling."""
    return torch.amp.GradScaler(device.type) if amp == "fp16" else None


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    return images
