"""Using a trained model: a slim export file, predictions for any image files or folders, test-time
augmentation (TTA) and ensembles of probabilities.

    python -m simpsons_lib.predict --model outputs/demo/models/resnet50/model.pt IMAGE_OR_FOLDER... \\
        [--top-k 3] [--tta] [--tta-mode flip+scales] [--out predictions.csv]
    python -m simpsons_lib.predict --profile demo --run best IMAGE_OR_FOLDER...
    python -m simpsons_lib.predict export outputs/demo/models/resnet50/best.pt [--out model.pt] [--half]

The export (``model.pt``) holds the weights, the class names and the parameters that rebuild the
model, and nothing else (no optimizer state, no RNG states): ``torch.load(..., weights_only=True)``
reads it, so loading it runs no pickled code.
"""

from __future__ import annotations

import argparse
import functools
import logging
import pickle
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import parallel
from .data import IMAGE_SUFFIXES, BadImageError, load_rgb, natural_key
from .evaluate import autocast, to_device
from .io_utils import atomic_path, progress_enabled, read_json, write_csv
from .models import build_model
from .transforms import eval_transform

log = logging.getLogger(__name__)

EXPORT_FORMAT = "simpsons-lib-model/1"
REBUILD_KEYS = ("arch", "image_size", "backbone", "head_hidden", "head_dropout", "dropout")
TTA_MODES = ("none", "flip", "flip+scales")
TTA_SCALES = (0.9, 1.1)


class ExportError(ValueError):
    """A file is not a model export of this library (foreign, corrupt or incomplete); names the file."""


# --- the slim export ------------------------------------------------------------------------------

def export_model(path: str | Path, model: torch.nn.Module, classes: Sequence[str], params,
                 half: bool = False) -> Path:
    """Write ``model``'s weights, ``classes`` and the parameters that rebuild it (``REBUILD_KEYS``,
    plus ``run_name`` and ``title`` when ``params`` has them) to ``path``, atomically.

    ``half``: store floating-point weights as float16 (half the file; ``load_model`` brings them back
    to float32, so predictions differ slightly from the original model's)."""
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
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def export_checkpoint(checkpoint: str | Path, path: str | Path | None = None, half: bool = False) -> Path:
    """Export a training checkpoint (``models/<run>/best.pt``, written by ``train.fit``) as
    ``model.pt`` next to it (or at ``path``)."""
    from .train import load_checkpoint

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no such checkpoint: {checkpoint}")
    ckpt = load_checkpoint(checkpoint, required=("model_state", "classes", "params"))  # weights_only
    p = ckpt["params"]
    model = build_model(p["arch"], len(ckpt["classes"]), p["image_size"], backbone=p["backbone"], weights=None,
                        head_hidden=p["head_hidden"], head_dropout=p["head_dropout"], dropout=p["dropout"])
    model.load_state_dict(ckpt["model_state"])
    return export_model(path or checkpoint.with_name("model.pt"), model, ckpt["classes"], p, half=half)


def _read_export(path: Path) -> dict:
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
    return payload


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load an export's weights into ``model`` (of the same architecture), in place."""
    payload = _read_export(Path(path))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    return model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild an exported model on ``device``, in eval mode. ``info``: ``classes``, ``params``,
    ``run``, ``title``, ``path``. Anything but an export of this library raises ``ExportError``."""
    path = Path(path)
    payload = _read_export(path)
    p, classes = payload["params"], list(payload["classes"])
    model = build_model(p["arch"], len(classes), p["image_size"], backbone=p["backbone"], weights=None,
                        head_hidden=p["head_hidden"], head_dropout=p["head_dropout"], dropout=p["dropout"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ExportError(f"{path}: weights do not fit a {p['arch']} model "
                          f"({str(exc).splitlines()[0][:200]})") from None
    info = {"classes": classes, "params": dict(p), "run": payload.get("run"), "title": payload.get("title"),
            "path": str(path)}
    return model.to(device).eval(), info


# --- test-time augmentation -----------------------------------------------------------------------

def tta_mode(tta: bool | str | None) -> str:
    """``False``/``None`` → ``"none"``, ``True`` → ``"flip"``, or one of ``TTA_MODES``."""
    if tta is None or tta is False:
        return "none"
    if tta is True:
        return "flip"
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)} (or True/False), not {tta!r}")
    return tta


def rescale(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom a normalised batch by ``factor`` about its centre, keeping its size: enlarge then
    centre-crop (factor > 1), or shrink then pad with zeros, the dataset's mean colour (factor < 1)."""
    h, w = images.shape[-2:]
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    scaled = torch.nn.functional.interpolate(images, size=(nh, nw), mode="bilinear", align_corners=False,
                                             antialias=factor < 1)
    if factor >= 1:
        top, left = (nh - h) // 2, (nw - w) // 2
        return scaled[..., top:top + h, left:left + w]
    top, left = (h - nh) // 2, (w - nw) // 2
    return torch.nn.functional.pad(scaled, (left, w - nw - left, top, h - nh - top))


def tta_views(images: torch.Tensor, tta: bool | str) -> list[torch.Tensor]:
    """The batches one TTA mode averages over: the original, its horizontal flip, and for
    ``flip+scales`` the original zoomed by 0.9 and 1.1."""
    mode = tta_mode(tta)
    views = [images]
    if mode in ("flip", "flip+scales"):
        views.append(torch.flip(images, dims=[-1]))
    if mode == "flip+scales":
        views += [rescale(images, f) for f in TTA_SCALES]
    return views


@torch.no_grad()
def tta_probs(model: torch.nn.Module, images: torch.Tensor, tta: bool | str = "none", amp: bool = False) -> torch.Tensor:
    """Softmax probabilities ``(N, C)`` of a normalised batch, averaged over the TTA views (the model
    should be in eval mode; the batch on its device)."""
    total = None
    views = tta_views(images, tta)
    for view in views:
        with autocast(view.device, amp):
            probs = torch.softmax(model(view).float(), dim=1)
        total = probs if total is None else total + probs
    return total / len(views)


@torch.no_grad()
def predict_loader(model: torch.nn.Module, loader, device: torch.device | str = "cpu", amp: bool = False,
                   tta: bool | str = "none", progress: bool | None = None) -> tuple[np.ndarray, list]:
    """Like ``evaluate.predict`` with TTA: probabilities ``(N, C)`` and the loader's targets (labels
    or Ids) of a validation, test or ``DeviceBatchLoader`` loader."""
    device = torch.device(device)
    model.eval()
    probs, targets = [], []
    for images, target in tqdm(loader, desc=f"predict (tta {tta_mode(tta)})", disable=not progress_enabled(progress),
                               leave=False):
        probs.append(tta_probs(model, to_device(images, device), tta, amp))
        targets.extend(target.tolist() if isinstance(target, torch.Tensor) else target)
    return torch.cat(probs).cpu().numpy(), targets


# --- ensembles ------------------------------------------------------------------------------------

def ensemble(prob_arrays: Sequence[np.ndarray], weights: Sequence[float] | None = None,
             classes: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """The (weighted) mean of several models' probabilities ``(N, C)`` for the same images.

    ``classes``: each array's class names, in column order; they must all be the same."""
    if not prob_arrays:
        raise ValueError("ensemble: no probability arrays")
    arrays = [np.asarray(a, dtype=np.float64) for a in prob_arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"ensemble: arrays must all be (images, classes) of one shape, got {[a.shape for a in arrays]}")
    if classes is not None:
        if len(classes) != len(arrays):
            raise ValueError(f"ensemble: {len(classes)} class lists for {len(arrays)} arrays")
        for i, names in enumerate(classes[1:], start=1):
            if list(names) != list(classes[0]):
                raise ValueError(f"ensemble: array {i}'s classes differ from array 0's "
                                 f"({sorted(set(names) ^ set(classes[0]))[:5] or 'same names, other order'})")
        if len(classes[0]) != arrays[0].shape[1]:
            raise ValueError(f"ensemble: {len(classes[0])} class names for {arrays[0].shape[1]} columns")
    w = np.ones(len(arrays)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(arrays),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"ensemble: need one non-negative weight per array (not all zero), got {list(w)}")
    return np.tensordot(w / w.sum(), np.stack(arrays), axes=1)


# --- predicting files -----------------------------------------------------------------------------

def image_files(paths_: Iterable[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files given, plus every image file (``data.IMAGE_SUFFIXES``) under the folders given,
    recursively, in natural order; and the paths that do not exist, with the reason."""
    files, missing = [], []
    for p in map(Path, paths_):
        if p.is_dir():
            found = [q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES
                     and not any(part.startswith(".") for part in q.relative_to(p).parts)]
            files += sorted(found, key=lambda q: natural_key(str(q.relative_to(p))))
        elif p.is_file():
            files.append(p)
        else:
            missing.append((p, "no such file or folder"))
    return files, missing


def _decode_chunk(paths_: list[Path], size: int) -> tuple[list[int], torch.Tensor | None, list[tuple[Path, str]]]:
    """Decode a chunk of files for the model: positions that decoded, their batch, and the bad ones."""
    transform = eval_transform(size)
    ok, tensors, bad = [], [], []
    for i, p in enumerate(paths_):
        try:
            tensors.append(transform(load_rgb(p)))
            ok.append(i)
        except BadImageError as exc:
            bad.append((p, str(exc).removeprefix(f"Cannot read image {p}: ")))
    return ok, torch.stack(tensors) if tensors else None, bad


def predict_files(model: torch.nn.Module, info: dict, paths_: Iterable[str | Path], top_k: int = 3,
                  tta: bool | str = False, batch_size: int = 64, amp: bool = False,
                  progress: bool | None = None) -> tuple[pd.DataFrame, list[tuple[Path, str]]]:
    """Top-``k`` classes of every image in ``paths_`` (files and folders, recursively; any format and
    colour mode ``data.load_rgb`` reads). Returns a frame ``path, class_1, prob_1, …, class_k, prob_k``
    and the bad files ``(path, reason)``, which are skipped (with a warning) while the rest is predicted."""
    files, bad = image_files(paths_)
    classes = np.asarray(info["classes"], dtype=object)
    k = max(1, min(int(top_k), len(classes)))
    device = next(model.parameters()).device
    model.eval()
    kept, probs = [], []
    decode = functools.partial(_decode_chunk, size=int(info["params"]["image_size"]))
    chunks = parallel.map_chunks(decode, files, chunk=batch_size, processes=False)
    for start, (ok, batch, chunk_bad) in zip(range(0, len(files), batch_size),
                                             tqdm(chunks, total=-(-len(files) // batch_size), desc="predict",
                                                  disable=not progress_enabled(progress), leave=False)):
        bad += chunk_bad
        if batch is not None:
            kept += [files[start + i] for i in ok]
            probs.append(tta_probs(model, to_device(batch, device), tta, amp).cpu())
    for p, reason in bad:
        log.warning("Skipping %s: %s", p, reason)
    frame = pd.DataFrame({"path": [str(p) for p in kept]})
    if probs:
        top_p, top_i = torch.cat(probs).topk(k, dim=1)
        for j in range(k):
            frame[f"class_{j + 1}"] = classes[top_i[:, j].numpy()]
            frame[f"prob_{j + 1}"] = top_p[:, j].double().numpy().round(6)
    else:
        for j in range(k):
            frame[f"class_{j + 1}"], frame[f"prob_{j + 1}"] = pd.Series(dtype=object), pd.Series(dtype=float)
    return frame, bad


def format_table(frame: pd.DataFrame, width: int = 40) -> str:
    """A compact terminal table: the file (its tail when long) and ``class prob`` for each rank."""
    if frame.empty:
        return "(no images predicted)"
    k = sum(c.startswith("class_") for c in frame.columns)
    columns = {"image": [p if len(p) <= width else "…" + p[-(width - 1):] for p in frame["path"]]}
    for j in range(1, k + 1):
        columns[f"top-{j}"] = [f"{c} {p:.2f}" for c, p in zip(frame[f"class_{j}"], frame[f"prob_{j}"])]
    widths = {name: max(len(name), *map(len, cells)) for name, cells in columns.items()}
    lines = ["  ".join(name.ljust(widths[name]) for name in columns)]
    lines += ["  ".join(cells[i].ljust(widths[name]) for name, cells in columns.items()).rstrip()
              for i in range(len(frame))]
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------------------

def run_model_path(profile: str, run: str) -> Path:
    """``outputs/<profile>/models/<run>/model.pt``; ``run="best"``: the run with the highest validation
    ``micro_f1`` among the profile's runs that have a ``model.pt``."""
    from .paths import StudyPaths

    study = StudyPaths(profile)
    if run != "best":
        path = study.run(run).model_file
        if not path.is_file():
            raise FileNotFoundError(f"no exported model for run {run!r} of profile {profile!r}: {path} "
                                    "(it is written when the run's notebook finishes: run the study, e.g. `make demo`)")
        return path
    scores = {}
    for metrics_json in sorted(study.metrics.glob("*.json")):
        model_pt = study.run(metrics_json.stem).model_file
        if model_pt.is_file():
            score = read_json(metrics_json).get("micro_f1")
            if isinstance(score, (int, float)):
                scores[model_pt] = score
    if not scores:
        raise FileNotFoundError(f"run 'best': no run of profile {profile!r} has both {study.metrics}/<run>.json "
                                f"with a micro_f1 and models/<run>/model.pt")
    return max(scores, key=scores.get)  # the first of equals, in name order


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        parser = argparse.ArgumentParser(prog="python -m simpsons_lib.predict export",
                                         description="Export a training checkpoint as a slim model.pt")
        parser.add_argument("checkpoint", help="a training checkpoint with weights (models/<run>/best.pt of a run "
                            "still training or interrupted)")
        parser.add_argument("--out", help="default: model.pt next to the checkpoint")
        parser.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
        args = parser.parse_args(argv[1:])
        from .train import CheckpointError

        try:
            out = export_checkpoint(args.checkpoint, args.out, args.half)
        except (FileNotFoundError, CheckpointError) as exc:
            raise SystemExit(f"error: {exc}") from None
        print(f"exported {args.checkpoint} -> {out} ({out.stat().st_size / 2**20:.1f} MiB)")
        return
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders (searched recursively)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="an exported model.pt")
    source.add_argument("--profile", help="with --run: outputs/<profile>/models/<run>/model.pt")
    parser.add_argument("--run", help="run name, or 'best' (highest validation micro-F1)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: original + horizontal flip")
    parser.add_argument("--tta-mode", choices=TTA_MODES, help="TTA views (overrides --tta)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--out", default="predictions.csv", help="CSV to write (default predictions.csv)")
    args = parser.parse_args(argv)
    if args.profile and not args.run:
        parser.error("--profile needs --run (a run name or 'best')")
    from .train import select_device

    try:
        model_path = Path(args.model) if args.model else run_model_path(args.profile, args.run)
        device = select_device(args.device)
        model, info = load_model(model_path, device)
    except (FileNotFoundError, ExportError) as exc:
        raise SystemExit(f"error: {exc}") from None
    t0 = time.perf_counter()
    frame, bad = predict_files(model, info, args.paths, top_k=args.top_k, tta=args.tta_mode or args.tta,
                               batch_size=args.batch_size, amp=device.type == "cuda", progress=False)
    seconds = time.perf_counter() - t0
    print(format_table(frame))  # the skipped files were logged (on stderr) as warnings
    write_csv(args.out, frame)
    print(f"{len(frame)} image(s) predicted with {model_path} (run {info['run']}, tta {tta_mode(args.tta_mode or args.tta)}) "
          f"on {device} in {seconds:.1f} s, {len(bad)} skipped -> {args.out}")
    if bad and frame.empty:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
