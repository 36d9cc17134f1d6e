"""The training key: what must match for a checkpoint to be resumed or reused.

It is the run's training parameters (``params.Spec.trains``), the data's fingerprint, and the source
of the wings that shape the weights: every module of ``simpsons_lib.data`` and ``simpsons_lib.training``
(``WEIGHT_SHAPING_WINGS``), found by package membership, never by a hand-kept list. Editing any other
wing (config's texts, inference, reporting, pipeline) changes no training key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Mapping

LIBRARY_DIR = Path(__file__).resolve().parents[1]
WEIGHT_SHAPING_WINGS = ("data", "training")


def digest(*parts: bytes | str) -> str:
    """A short SHA-1 of the parts, each separated (the library's one hash for keys)."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def wing_files(wings: Iterable[str], library_dir: Path | None = None) -> list[Path]:
    """Every Python file of the given wings (sub-packages), sorted by their path in the library."""
    root = Path(library_dir or LIBRARY_DIR)
    return sorted((f for wing in wings for f in (root / wing).rglob("*.py")), key=lambda f: f.relative_to(root))


def code_fingerprint(files: Iterable[Path], library_dir: Path | None = None) -> str:
    """Hash of the files' paths (relative to the library) and source."""
    root = Path(library_dir or LIBRARY_DIR)
    return digest(*(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() for f in files))


def training_code_fingerprint(library_dir: Path | None = None) -> str:
    """Hash of the weight-shaping wings' source (``WEIGHT_SHAPING_WINGS``)."""
    return code_fingerprint(wing_files(WEIGHT_SHAPING_WINGS, library_dir), library_dir)


def training_fingerprint(training_values: Mapping, data_sha1: str | None = None,
                         library_dir: Path | None = None) -> str:
    """What must match for a checkpoint to be resumed or reused (see the module's rule)."""
    return digest(json.dumps(dict(training_values), sort_keys=True, default=str),
                  training_code_fingerprint(library_dir), data_sha1 or "")
