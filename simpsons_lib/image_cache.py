"""Decode every image once, at a fixed square size, into a uint8 array ``(N, 3, size, size)``.

The array is saved as a ``.npy`` file under ``outputs/cache`` and memory-mapped on later loads, keyed by
a fingerprint of the files (path, size in bytes, modification time) and the size, so every run and
notebook that reads the same images at the same size decodes them once. Resizing matches the
recipe's ``Resize((size, size))`` on a PIL image (bilinear, antialiased); JPEGs are first reduced by
the decoder's DCT scaling while staying at least twice the target size, which changes nothing
visible at the target size.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from . import paths
from .data import files_fingerprint, load_rgb
from .io_utils import atomic_path

CACHE_FORMAT = 1  # bump when decoding or resizing changes


def fingerprint(paths_: Sequence[str], size: int) -> str:
    """The files' fingerprint with the target size and the cache format."""
    return files_fingerprint(paths_, f"v{CACHE_FORMAT}|{size}|")


def decode_resized(path: str, size: int) -> np.ndarray:
    """One image as RGB uint8 ``(3, size, size)``."""
    with Image.open(path) as probe:
        is_jpeg = probe.format == "JPEG"
    if is_jpeg:
        with Image.open(path) as img:
            img.draft("RGB", (2 * size, 2 * size))
            img = img.convert("RGB")
    else:
        img = load_rgb(path)
    img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def decode_images(paths_: Sequence[str], size: int, out: np.ndarray | None = None,
                  workers: int | None = None, progress: bool = True) -> np.ndarray:
    """Decode ``paths_`` in threads (PIL releases the GIL while decoding) into ``out``."""
    out = np.empty((len(paths_), 3, size, size), np.uint8) if out is None else out
    workers = workers or min(32, os.cpu_count() or 1)

    def work(i: int) -> None:
        out[i] = decode_resized(paths_[i], size)

    with ThreadPoolExecutor(workers) as pool:
        for _ in tqdm(pool.map(work, range(len(paths_))), total=len(paths_), disable=not progress,
                      desc=f"decode {size}px", mininterval=2.0):
            pass
    return out


def load_image_array(paths_: Sequence[str], size: int, cache: bool | str | os.PathLike = True,
                     progress: bool = True) -> np.ndarray:
    """The decoded images of ``paths_`` at ``size``; from the cache when it holds them.

    ``cache``: True for ``outputs/cache``, a folder, or False to decode in memory only.
    """
    paths_ = list(paths_)
    if cache is False:
        return decode_images(paths_, size, progress=progress)
    folder = paths.cache_dir() if cache is True else Path(cache)
    target = folder / f"images_{size}px_{len(paths_)}_{fingerprint(paths_, size)}.npy"
    if not target.exists():
        with atomic_path(target) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths_), 3, size, size))
            decode_images(paths_, size, out=arr, progress=progress)
            arr.flush()
            del arr
    return np.load(target, mmap_mode="r")
