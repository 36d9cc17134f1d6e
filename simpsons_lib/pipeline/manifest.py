"""A run's manifest (``manifests/<run>.json``): what ran, with what, on what, and when."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

from ..config import paths
from ..config.files import write_json
from . import record

PACKAGES = ("torch", "torchvision", "numpy", "pillow", "scikit-learn", "scikit-image", "pandas", "matplotlib",
            "seaborn", "papermill", "nbconvert", "captum", "simpsons-lib")


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=paths.PROJECT_ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--", "simpsons_lib", "notebooks", "params"))}


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write(path: Path, *, run: str, kind: str, notebook: str, parameters: dict, keys: dict, data: dict,
          metrics: dict | None, started: str, finished: str, seconds: float, products: dict | None = None,
          gpu_slot: dict | None = None) -> Path:
    metrics = metrics or {}
    return write_json(path, {
        "run": run, "kind": kind, "notebook": notebook, "parameters": parameters, "keys": keys,
        "git": git_commit(), "packages": package_versions(), "device": metrics.get("device"),
        "device_name": metrics.get("device_name"), "amp": metrics.get("amp"), "host": platform.node(), "data": data,
        # the GPU slot the run held ({"slot", "cuda_visible_devices"}); None: it saw every GPU (one or none)
        "gpu_slot": gpu_slot,
        "started": started, "finished": finished, "seconds": round(seconds, 1),
        "products": products or {},
        # what ``status`` diffs against when a key changes: each wing's code digest and the notebook's
        "code": record.code_digests(), "notebook_sha1": _file_digest(paths.PROJECT_ROOT / notebook),
    })


def _file_digest(path: Path) -> str | None:
    try:
        return record.digest(Path(path).read_bytes())
    except OSError:
        return None
