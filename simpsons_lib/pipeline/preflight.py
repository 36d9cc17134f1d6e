"""Checks that run before any notebook, for the runs that are about to run: what would otherwise fail late,
inside a notebook, after earlier runs have trained.

- the device a run asks for exists (``device: cuda`` without a GPU fails here, not in a notebook);
- a transfer run's backbone is a supported torchvision model and its ``weights`` can be had: a known
  weights name (fetched now into ``TORCH_HOME`` when not cached) or an existing state-dict file; with
  ``weights_fallback: random`` weights that cannot be fetched are a warning (the run trains from random
  weights and says so), not a failure;
- the test set exists and every test image decodes (``on_bad_image: raise``), or the unreadable ones
  are listed (``skip``: the submission gives them the documented fallback prediction);
- the test images and ``sample_submission.csv`` (when the data has one) name the same Ids, so the
  report's submission cannot fail after all the training;
- an ``answers`` file named by a run exists.

Each failure is a ``PreflightError`` whose message names the parameter or the file and says what to do.
Structural checks (keys, values, runs that name runs, input size for the architecture) are in ``params``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..config import paths
from ..config.params import ParameterError
from ..data import layout as data

TRANSFER_FAMILIES = ("resnet", "resnext", "wide_resnet", "mobilenet_v2", "mobilenet_v3", "efficientnet", "convnext")


class PreflightError(ParameterError):
    """A run would fail; the message names the parameter or file and says what to do."""


def check_device(p, where: str) -> None:
    if p.get("device") not in ("cuda", "mps"):
        return
    import torch

    if p["device"] == "cuda" and not torch.cuda.is_available():
        raise PreflightError(f"{where}parameter 'device': 'cuda' is asked for, but no CUDA GPU is available here "
                             "(use device: auto, which picks a GPU when there is one, or cpu)")
    mps = getattr(torch.backends, "mps", None)
    if p["device"] == "mps" and not (mps and mps.is_available()):
        raise PreflightError(f"{where}parameter 'device': 'mps' is asked for, but Apple MPS is not available "
                             "(use device: auto or cpu)")


def check_transfer(p, where: str) -> str | None:
    """Backbone and weights of a transfer run; returns a line to print when weights were fetched, or a
    warning when they cannot be had and the run falls back to random weights (``weights_fallback``)."""
    if p["arch"] != "transfer":
        return None
    import torchvision  # torch: only for transfer runs, so the plan of a CNN-only profile stays light

    from ..training.models import (WeightsUnavailableError, fetch_weights, named_weights, weights_cache_file,
                                   weights_file)

    name = p["backbone"]
    try:
        torchvision.models.get_model_builder(name)
    except ValueError:
        raise PreflightError(f"{where}parameter 'backbone': {name!r} is not a torchvision model") from None
    if not name.startswith(TRANSFER_FAMILIES):
        raise PreflightError(f"{where}parameter 'backbone': {name!r} is not a supported family "
                             f"({', '.join(TRANSFER_FAMILIES)})")
    weights = p["weights"]
    if weights is None:
        return None
    try:
        if weights_file(weights) is not None:  # a local state-dict file, there
            return None
        enum = named_weights(name, weights)
    except (FileNotFoundError, ValueError) as exc:
        raise PreflightError(f"{where}parameter 'weights': {str(exc).removeprefix('weights: ')}") from None
    cached = weights_cache_file(enum)
    if cached.is_file():
        return None
    try:
        fetch_weights(enum)  # torch.hub's "Downloading" line only when something was downloaded
    except Exception as exc:  # noqa: BLE001 - any download failure is reported the same way
        if p.get("weights_fallback") == "random":
            return (f"warning: {name} {weights} weights are not in {cached} and could not be fetched "
                    f"({type(exc).__name__}): the run trains from random weights (weights_fallback: random) and "
                    "says so in its title, metrics and the index page")
        raise PreflightError(f"{where}parameter 'weights': " + str(WeightsUnavailableError(
            f"could not fetch {name} {enum} ({type(exc).__name__}). Download {enum.url} on a machine with network "
            f"access and put it at {cached}, or set weights to the path of a local state-dict file (or "
            "weights_fallback: random to train from random weights, saying so)."))) from None
    return f"fetched {name} {weights} weights into {cached}"


def check_test_set(p, layout: data.DatasetLayout, where: str) -> list[str]:
    """The test set exists and decodes; returns the names of the test files skipped under ``skip``."""
    if layout.test_dir is None:
        raise PreflightError(f"{where}no test images found under {layout.root} (looked for "
                             f"{', '.join(data.TEST_CANDIDATES)}); set test_dir, or add the test folder")
    report = data.IndexReport()
    try:
        data.build_test_index(layout.test_dir, p["on_bad_image"], report)
    except data.BadImageError as exc:
        raise PreflightError(f"{where}{exc}") from None
    return [Path(path).name for path, _ in report.bad_files]


def check_sample_submission(layout: data.DatasetLayout, where: str) -> None:
    """Every test image has a row in ``sample_submission.csv`` and every row an image (Kaggle scores
    exactly the sample's Ids; the report's submission holds one row per test image)."""
    sample = layout.sample_submission
    if sample is None or layout.test_dir is None:
        return
    try:
        with open(sample, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PreflightError(f"{where}{sample}: cannot be read ({exc})") from None
    if not rows or "Id" not in rows[0]:
        raise PreflightError(f"{where}{sample}: no 'Id' column (the Kaggle sample submission has Id,Expected)")
    ids = {r["Id"] for r in rows}
    images = {p.name for p in layout.test_dir.iterdir()
              if p.suffix.lower() in data.IMAGE_SUFFIXES and not p.name.startswith(".")}
    for found, there, missing_from in ((images - ids, layout.test_dir, sample), (ids - images, sample, layout.test_dir)):
        if found:
            names = sorted(found, key=data.natural_key)
            raise PreflightError(f"{where}{len(found)} Id(s) of {there} are not in {missing_from}, e.g. "
                                 f"{', '.join(names[:5])}: the submission must hold exactly the sample "
                                 "submission's Ids (add the rows or the images, or remove the extra ones)")


def check_demo_scale(p, layout: data.DatasetLayout, where: str) -> None:
    """The drawn demo data was generated at the profile's ``demo_scale`` (two profiles may share data/demo)."""
    if p["dataset"] != "demo" or p.get("data_dir") or not layout.is_demo:
        return
    found = data.demo_scale_of(layout.root)
    if found is not None and found != p["demo_scale"]:
        raise PreflightError(f"{where}parameter 'demo_scale': {p['demo_scale']}, but {layout.root} holds demo data "
                             f"drawn at scale {found}; run `make demo-data PROFILE={p['profile']}` to draw it again")


def set_in(p, key: str, where: str) -> str:
    """``where`` for a problem with ``key``: the file that set its value (``_common.yaml`` or the run file,
    as ``python -m simpsons_lib.config.params show`` says), else ``where`` (the run's file)."""
    source = getattr(p, "sources", {}).get(key, "")
    if not source.endswith(".yaml"):
        return where
    return f"{paths.params_dir() / p['profile'] / source}: "


def check_run(p, layout: data.DatasetLayout, where: str) -> list[str]:
    """Every check that applies to run ``p``; returns lines worth printing (fetched weights, skipped files)."""
    notes = []
    check_demo_scale(p, layout, where)
    check_device(p, where)
    if p.kind == "train":
        fetched = check_transfer(p, where)
        if fetched:
            notes.append(fetched)
    if p.kind in ("report", "eda"):
        skipped = check_test_set(p, layout, where)
        check_sample_submission(layout, where)
        if skipped:
            notes.append(f"{len(skipped)} unreadable test image(s) will get the fallback prediction: {', '.join(skipped)}")
        try:
            data.answers_file(p, layout)
        except FileNotFoundError as exc:
            raise PreflightError(f"{set_in(p, 'answers', where)}{exc}") from None
    return notes
