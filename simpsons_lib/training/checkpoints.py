"""What a run writes of its weights: training checkpoints (``best.pt``, ``last.pt``, with the RNG
states that make a resumed run continue exactly) and the slim export (``model.pt``: weights, class
names and the parameters that rebuild the model). Everything is tensors and plain data, loaded with
``weights_only=True``, so a crafted file cannot run code; every file is serialised in memory and then
written atomically, so two identical runs give byte-identical files.
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..config import params as parameters
from ..config.files import atomic_path
from .models import build_model_from_params

def rng_state(loader) -> dict:
    """Every RNG state as tensors and plain Python data (what ``weights_only`` loading accepts): numpy's
    MT19937 key becomes an int64 tensor, Python's state a list."""
    kind, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    generator = getattr(loader, "generator", None)
    return {"torch": torch.get_rng_state(),
            "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
            "python": [int(version), list(internal), gauss_next],
            "loader": generator.get_state() if generator is not None else None,
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict, loader) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    generator = getattr(loader, "generator", None)
    if state["loader"] is not None and generator is not None:
        generator.set_state(state["loader"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        # a run sees one GPU in a slot and every GPU without one: only the states of the GPUs it sees
        torch.cuda.set_rng_state_all(state["cuda"][:torch.cuda.device_count()])


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used (not a checkpoint, corrupt, truncated, or holding more than
    tensors and plain data); the one-line message names the file and says what to do."""


CHECKPOINT_KEYS = ("classes",)  # a finished run's last.pt holds its record, not its weights
WEIGHTS_KEYS = ("model_state", "classes")
OPTIMIZER_KEYS = ("optimizer_state", "scheduler_state", "rng")


def write_torch_file(path: str | Path, payload: dict) -> Path:
    """``torch.save`` into memory, then one atomic write: the zip's records are named after the final
    file, never after the random temporary name, so the same payload always gives the same bytes."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def save_checkpoint(path: Path, payload: dict) -> None:
    write_torch_file(path, payload)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_checkpoint(path: str | Path, map_location="cpu", required: Iterable[str] = CHECKPOINT_KEYS) -> dict:
    """A checkpoint written by ``fit``, loaded with ``weights_only=True``: only tensors and plain data are
    unpickled, so a crafted file cannot run code. Anything else (a foreign pickle, a truncated or corrupt
    file, not a dict, a ``required`` key missing) raises ``CheckpointError`` naming the file; a missing
    file raises ``FileNotFoundError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    advice = "delete it to retrain the run from scratch"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError, zip/EOF errors, RuntimeError from the loader...
        raise CheckpointError(f"{path} is not a usable checkpoint ({type(exc).__name__}: {_one_line(exc)}); "
                              f"{advice}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint (it holds a {type(state).__name__}, not a dict); "
                              f"{advice}")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a complete checkpoint (missing {', '.join(missing)}); {advice}")
    return state



EXPORT_FORMAT = "simpsons-lib-model/1"
REBUILD_KEYS = ("arch", "image_size", "backbone", "head_hidden", "head_dropout", "dropout")


class ExportError(ValueError):
    """A file is not a model export of this library (foreign, corrupt or incomplete); names the file."""


# --- the slim export ------------------------------------------------------------------------------

def export_model(path: str | Path, model: torch.nn.Module, classes: Sequence[str], params,
                 half: bool = False, epoch: int | None = None, fingerprint: str | None = None) -> Path:
    """Write ``model``'s weights, ``classes`` and the parameters that rebuild it (``REBUILD_KEYS``,
    plus ``run_name`` and ``title`` when ``params`` has them) to ``path``, atomically.

    ``half``: store floating-point weights as float16 (half the file; ``load_model`` brings them back
    to float32, so predictions differ slightly from the original model's). ``epoch`` and ``fingerprint``
    (the training fingerprint) say whose weights these are: a re-run reuses them only when they match."""
    missing = [k for k in REBUILD_KEYS if k not in params]
    if missing:
        raise KeyError(f"export_model: params lack {', '.join(missing)} (needed to rebuild the model)")
    payload = {
        "format": EXPORT_FORMAT,
        "state_dict": {k: v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()
                       for k, v in model.state_dict().items()},
        "classes": [str(c) for c in classes],
        "params": {k: params[k] for k in REBUILD_KEYS},
        "run": params.get("run_name"),
        "title": params.get("title"),
        "epoch": epoch,
        "fingerprint": fingerprint,
    }
    return write_torch_file(path, payload)


def export_checkpoint(checkpoint: str | Path, path: str | Path | None = None, half: bool = False) -> Path:
    """Export a training checkpoint (``models/<run>/best.pt``, written by ``train.fit``) as
    ``model.pt`` next to it (or at ``path``)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no such checkpoint: {checkpoint}")
    ckpt = load_checkpoint(checkpoint, required=("model_state", "classes", "params"))  # weights_only
    p = ckpt["params"]
    model = build_model_from_params(p, len(ckpt["classes"]), weights=None)
    model.load_state_dict(ckpt["model_state"])
    return export_model(path or checkpoint.with_name("model.pt"), model, ckpt["classes"], p, half=half,
                        epoch=ckpt.get("epoch"), fingerprint=ckpt.get("fingerprint"))


def read_export(path: Path) -> dict:
    """An export's payload, checked; anything but an export of this library raises ``ExportError``."""
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ExportError(f"{path} is not a model export of simpsons_lib (torch.load with weights_only=True "
                          f"cannot read it: {type(exc).__name__}); a training checkpoint (best.pt) is exported "
                          "with `python -m simpsons_lib.predict export <best.pt>`") from None
    if not isinstance(payload, dict) or payload.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path} is not a model export of simpsons_lib (no format {EXPORT_FORMAT!r} in it)")
    missing = [k for k in ("state_dict", "classes", "params") if k not in payload]
    missing += [f"params.{k}" for k in REBUILD_KEYS if k not in payload.get("params", {})]
    if missing:
        raise ExportError(f"{path}: model export lacks {', '.join(missing)}")
    classes = payload["classes"]
    if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(c, str) for c in classes):
        raise ExportError(f"{path}: model export's classes must be a non-empty list of names")
    p = payload["params"]
    try:
        for key in REBUILD_KEYS:
            parameters.check_value(key, parameters.TRAIN[key], p[key])
        if too_small := parameters.image_size_problem(p["arch"], p["image_size"]):
            raise parameters.ParameterError(too_small)
    except parameters.ParameterError as exc:
        raise ExportError(f"{path}: not a usable model export ({exc})") from None
    return payload


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load an export's weights into ``model`` (of the same architecture), in place."""
    payload = read_export(Path(path))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    return model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild an exported model on ``device``, in eval mode. ``info``: ``classes``, ``params``,
    ``run``, ``title``, ``path``. Anything but an export of this library raises ``ExportError``."""
    path = Path(path)
    payload = read_export(path)
    p, classes = payload["params"], list(payload["classes"])
    try:
        model = build_model_from_params(p, len(classes), weights=None)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExportError(f"{path}: its parameters build no model ({type(exc).__name__}: {_one_line(exc)})") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ExportError(f"{path}: weights do not fit a {p['arch']} model "
                          f"({str(exc).splitlines()[0][:200]})") from None
    info = {"classes": classes, "params": dict(p), "run": payload.get("run"), "title": payload.get("title"),
            "path": str(path)}
    return model.to(device).eval(), info
