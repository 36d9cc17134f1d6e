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
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..config import paths
from ..config.files import atomic_path
from . import parallel
from .layout import files_fingerprint, load_rgb

CACHE_FORMAT = 2  # bump when decoding or resizing changes (2: EXIF orientation applied)


def fingerprint(paths_: Sequence[str], size: int) -> str:
    """The files' fingerprint with the target size and the cache format."""
    return files_fingerprint(paths_, f"v{CACHE_FORMAT}|{size}|")


def decode_resized(path: str, size: int) -> np.ndarray:
    """One image as RGB uint8 ``(3, size, size)``; a JPEG is decoded at a reduced scale of at least
    twice ``size``, which the bilinear resize then brings down."""
    img = load_rgb(path, draft_size=2 * size)
    img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def decode_images(paths_: Sequence[str], size: int, workers: int | None = None,
                  progress: bool = True) -> np.ndarray:
    """Decode ``paths_`` on every core (``parallel.map_chunks``) into one array in memory."""
    out = np.empty((len(paths_), 3, size, size), np.uint8)
    start = 0
    for block in _decoded_blocks(paths_, size, workers, progress):
        out[start:start + len(block)] = block
        start += len(block)
    return out


def write_decoded_npy(path: str | os.PathLike, paths_: Sequence[str], size: int, workers: int | None = None,
                      progress: bool = True) -> None:
    """Decode ``paths_`` straight into the ``.npy`` file ``path``, a block at a time: the host holds a
    few blocks, never the whole array (a 224 px cache of the Kaggle data is 3.3 GB)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (len(paths_), 3, size, size)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for block in _decoded_blocks(paths_, size, workers, progress):
            f.write(block.data)


def decode_block(paths_: Sequence[str], size: int) -> np.ndarray:
    """``(len(paths_), 3, size, size)`` uint8: one block of ``decode_resized`` images."""
    return np.ascontiguousarray(np.stack([decode_resized(p, size) for p in paths_]))


def _decoded_blocks(paths_: Sequence[str], size: int, workers: int | None, progress: bool):
    with tqdm(total=len(paths_), disable=not progress, desc=f"decode {size}px", mininterval=2.0) as bar:
        for block in parallel.map_chunks(partial(decode_block, size=size), paths_, workers=workers):
            bar.update(len(block))
            yield block


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
            write_decoded_npy(tmp, paths_, size, progress=progress)
    return np.load(target, mmap_mode="r")
