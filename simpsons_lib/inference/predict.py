"""Using a trained model: predictions for any image files or folders, with test-time augmentation
(TTA), and ensembles of probabilities.

    python -m simpsons_lib.inference.predict --model outputs/demo/models/resnet50/model.pt IMAGE_OR_FOLDER... \\
        [--top-k 3] [--tta] [--tta-mode flip+scales] [--out predictions.csv]
    python -m simpsons_lib.inference.predict --profile demo --run best IMAGE_OR_FOLDER...
    python -m simpsons_lib.inference.predict --run best IMAGE_OR_FOLDER...   # the profile that has results
    python -m simpsons_lib.inference.predict export outputs/demo/models/resnet50/best.pt [--out model.pt] [--half]

A finished run's folder ``models/<run>/`` holds ``model.pt`` (its export) and ``last.pt`` (its record, no
weights): ``best.pt`` exists only while a run trains or after it was interrupted, which is what ``export``
is for. The export (``model.pt``, ``training.checkpoints``) holds the weights, the class names and the
parameters that rebuild the model, and nothing else: ``torch.load(..., weights_only=True)`` reads it,
so loading it runs no pickled code.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from ..config.choices import TTA_MODES
from ..config.files import describe_os_error, product_change, read_json, write_csv
from ..config.params import ParameterError, check_profile_name
from ..config.paths import StudyPaths, outputs_dir
from ..data import parallel
from ..data.layout import IMAGE_SUFFIXES, BadImageError, load_rgb, natural_key
from ..training.checkpoints import CheckpointError, ExportError, export_checkpoint, load_model
from ..training.devices import select_device
from ..training.evaluation import predict, tta_mode
from ..training.transforms import eval_transform

log = logging.getLogger(__name__)


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

def shown_path(path: str | Path) -> str:
    """A path as text that any terminal and CSV take: bytes that are not UTF-8 as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _unencodable(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def image_files(paths_: Iterable[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files given, plus every image file (``data.IMAGE_SUFFIXES``) under the folders given,
    recursively, in natural order; and the paths that do not exist or whose names are not UTF-8 (no
    CSV can hold them), with the reason."""
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
    bad_names = [p for p in files if _unencodable(p)]
    missing += [(p, "its name is not valid UTF-8; rename it") for p in bad_names]
    return [p for p in files if p not in bad_names] if bad_names else files, missing


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
                  tta: bool | str = False, batch_size: int = 64, amp: str = "auto",
                  progress: bool | None = None) -> tuple[pd.DataFrame, list[tuple[Path, str]]]:
    """Top-``k`` classes of every image in ``paths_`` (files and folders, recursively; any format and
    colour mode ``data.load_rgb`` reads). Returns a frame ``path, class_1, prob_1, …, class_k, prob_k``
    and the bad files ``(path, reason)``, which are skipped (with a warning) while the rest is predicted.
    ``amp``: as a run's parameter (``auto``: the model's device's mixed precision, ``devices.amp_mode``)."""
    files, bad = image_files(paths_)
    classes = np.asarray(info["classes"], dtype=object)
    k = max(1, min(int(top_k), len(classes)))
    device = next(model.parameters()).device
    decode = functools.partial(_decode_chunk, size=int(info["params"]["image_size"]))
    chunks = parallel.map_chunks(decode, files, chunk=batch_size, processes=False)

    def batches():  # (images, their paths) of every chunk that decoded; the bad files are collected
        for start, (ok, batch, chunk_bad) in zip(range(0, len(files), batch_size), chunks):
            bad.extend(chunk_bad)
            if batch is not None:
                yield batch, [files[start + i] for i in ok]

    probs, kept, _ = predict(model, batches(), device, amp, tta=tta, progress=progress)
    for p, reason in bad:
        log.warning("Skipping %s: %s", shown_path(p), reason)
    frame = pd.DataFrame({"path": [str(p) for p in kept]})
    if kept:
        top_p, top_i = torch.from_numpy(probs).topk(k, dim=1)
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


def check_model_is_the_runs(profile: str, model_path: Path) -> None:
    """Refuse (``FileNotFoundError`` with the reason) a run's ``model.pt`` that its manifest records as
    another file: changed since the run wrote it (the check ``make status`` makes). A model no manifest
    records (a run that has not finished) passes."""
    study = StudyPaths(profile)
    rp = study.run(model_path.parent.name)
    try:
        recorded = read_json(rp.manifest).get("products") or {}
    except (OSError, ValueError):
        return
    want = recorded.get(str(rp.model_file.relative_to(study.dir)))
    change = product_change(model_path, want) if isinstance(want, dict) else None
    if change:
        raise FileNotFoundError(f"{model_path} {change} (its manifest {rp.manifest} records another file), so it "
                                f"may not be run {rp.run!r}'s model: run the study again (`make pipeline "
                                f"PROFILE={profile}`), or, to use this file anyway, name it: --model {model_path}")


def profile_with_results(run: str) -> str:
    """The profile to predict with when none is named: ``full`` when it has a model for ``run``, else
    the only profile that has one; several or none is an error that says how to choose."""
    found = []
    for folder in sorted(p for p in outputs_dir().iterdir() if p.is_dir()) if outputs_dir().is_dir() else []:
        try:
            run_model_path(folder.name, run)
        except FileNotFoundError:
            continue
        found.append(folder.name)
    if "full" in found:
        return "full"
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no profile in {outputs_dir()} has a trained model for run {run!r} yet: run the "
                                "study first (`make demo`, then `make predict PROFILE=demo ...`)")
    raise FileNotFoundError(f"several profiles have a model for run {run!r} ({', '.join(found)}): name one, "
                            f"e.g. `make predict PROFILE={found[0]} ...` (or --profile {found[0]})")


def split_paths(text: str) -> list[str]:
    """The paths in one string (``make predict IMAGES="..."``): the whole string when it names a file or
    folder (spaces, quotes and all); else shell words (quote a name with spaces among several); else
    words joined back greedily into the longest names that exist."""
    text = text.strip()
    if not text or Path(text).exists():
        return [text] if text else []
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: part of a name
        words = text.split()
    if all(Path(w).exists() for w in words):
        return words
    raw, out, i = text.split(), [], 0
    while i < len(raw):
        for j in range(len(raw), i, -1):
            if Path(" ".join(raw[i:j])).exists():
                out.append(" ".join(raw[i:j]))
                i = j
                break
        else:
            out.append(raw[i])
            i += 1
    return out if sum(map(os.path.exists, out)) > sum(map(os.path.exists, words)) else words  # a tie: the quoting


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _check_writable(path: Path) -> None:
    """Fail before predicting when ``--out`` cannot be written (a read-only file or folder; missing
    folders are made, so the nearest existing one must be writable)."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(13, "Permission denied", str(folder))
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(13, "Permission denied", str(path))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        parser = argparse.ArgumentParser(prog="python -m simpsons_lib.inference.predict export",
                                         description="Export a training checkpoint as a slim model.pt")
        parser.add_argument("checkpoint", help="a training checkpoint with weights (models/<run>/best.pt of a run "
                            "still training or interrupted)")
        parser.add_argument("--out", help="default: model.pt next to the checkpoint")
        parser.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
        args = parser.parse_args(argv[1:])
        try:
            out = export_checkpoint(args.checkpoint, args.out, args.half)
        except (FileNotFoundError, CheckpointError) as exc:
            raise SystemExit(f"error: {exc}") from None
        except OSError as exc:
            raise SystemExit(f"error: {describe_os_error(exc)}") from None
        print(f"exported {args.checkpoint} -> {out} ({out.stat().st_size / 2**20:.1f} MiB)")
        return
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.inference.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", metavar="PATH", help="image files and/or folders (searched recursively)")
    parser.add_argument("--paths-from-env", metavar="VAR", help="also the paths in environment variable VAR "
                        "(what `make predict IMAGES=...` passes: see split_paths)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="an exported model.pt")
    source.add_argument("--profile", help="with --run: outputs/<profile>/models/<run>/model.pt (default: the "
                        "profile that has results, full first)")
    parser.add_argument("--run", help="run name, or 'best' (highest validation micro-F1)")
    parser.add_argument("--top-k", type=_positive, default=3)
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: original + horizontal flip")
    parser.add_argument("--tta-mode", choices=TTA_MODES, help="TTA views (overrides --tta)")
    parser.add_argument("--batch-size", type=_positive, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--out", help="CSV to write (default: outputs/<profile>/predictions.csv with --profile "
                        "or --run, else predictions.csv)")
    args = parser.parse_args(argv)
    paths_ = list(args.paths) + (split_paths(os.environ.get(args.paths_from_env, "")) if args.paths_from_env else [])
    if not paths_:
        parser.error("no image given (PATH..., or IMAGES='a.jpg folder/' with make predict)")
    if not args.model and not args.run:
        parser.error("--run (a run name or 'best') or --model is needed")
    try:
        if args.model:
            model_path, out = Path(args.model), Path(args.out or "predictions.csv")
        else:
            profile = check_profile_name(args.profile) if args.profile else profile_with_results(args.run)
            if not args.profile:
                print(f"profile {profile} (the one with results; PROFILE=... or --profile chooses)", file=sys.stderr)
            model_path = run_model_path(profile, args.run)
            check_model_is_the_runs(profile, model_path)
            out = Path(args.out) if args.out else StudyPaths(profile).dir / "predictions.csv"
        _check_writable(out)
        device = select_device(args.device)
        model, info = load_model(model_path, device)
    except (PermissionError, IsADirectoryError) as exc:
        raise SystemExit(f"error: cannot write the predictions: {describe_os_error(exc)}") from None
    except (FileNotFoundError, ExportError, ParameterError) as exc:
        raise SystemExit(f"error: {exc}") from None
    t0 = time.perf_counter()
    frame, bad = predict_files(model, info, paths_, top_k=args.top_k, tta=args.tta_mode or args.tta,
                               batch_size=args.batch_size, progress=False)
    seconds = time.perf_counter() - t0
    if frame.empty:  # nothing predicted: an error, and the previous predictions stay as they were
        reasons = "; ".join(f"{shown_path(p)}: {reason}" for p, reason in bad[:3]) + ("; …" if len(bad) > 3 else "")
        raise SystemExit(f"error: no image predicted ({len(bad)} skipped{': ' + reasons if bad else ''}); "
                         f"{out} is left as it was")
    try:
        write_csv(out, frame)
    except OSError as exc:
        raise SystemExit(f"error: cannot write the predictions: {describe_os_error(exc)}") from None
    print(format_table(frame))  # the skipped files were logged (on stderr) as warnings
    print(f"{len(frame)} image(s) predicted with {model_path} (run {info['run']}, tta {tta_mode(args.tta_mode or args.tta)}) "
          f"on {device} in {seconds:.1f} s, {len(bad)} skipped -> {out}")


if __name__ == "__main__":
    main()
