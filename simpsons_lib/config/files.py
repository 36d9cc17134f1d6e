"""Atomic writes: a temp file in the same folder, then a rename, so no half-written file looks finished."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; finished files get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def describe_os_error(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for a failed file operation: the path and the cause (``Permission denied``, ``No space left
    on device``), without a traceback."""
    where = next((f for f in (exc.filename2, exc.filename, path) if f is not None), None)  # rename: its target
    cause = exc.strerror or type(exc).__name__
    return f"{where}: {cause}" if where is not None else cause


def sha1_file(path: str | os.PathLike) -> str:
    import hashlib

    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def product_change(path: str | os.PathLike, recorded: dict) -> str | None:
    """How ``path`` differs from what a run's manifest recorded of it (``size``, ``mtime_ns``, ``sha1``):
    ``"is missing"``, ``"changed since the run wrote it"`` (its size, or its SHA-1 when its time
    changed), or None when it is the file the run wrote."""
    try:
        st = os.stat(path)
    except OSError:
        return "is missing"
    if st.st_size != recorded["size"] or (st.st_mtime_ns != recorded["mtime_ns"] and sha1_file(path) != recorded["sha1"]):
        return "changed since the run wrote it"
    return None


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | os.PathLike, frame, index: bool = False) -> Path:
    """``frame`` as CSV at ``path``, atomically (``index``: with its index as the first column)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index)
    return Path(path)


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def lock_or_holder(handle) -> str | None:
    """Take an exclusive lock on the open lock file ``handle`` without waiting: None when taken, else who holds
    it (the text the holder wrote into the file)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        return handle.read().strip() or "another process"
    return None
