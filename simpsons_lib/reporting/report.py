"""What the report notebook computes from finished runs: their exported models on the validation split
(with and without test-time augmentation), ensembles of runs, and the test-set predictions for the
submission. Every model comes from its run's weights-only export (``models/<run>/model.pt``).

The report asks for some predictions more than once (an ensemble member's validation probabilities for the
ensemble and the TTA table, a run's test probabilities for the evolution table and the submission): each is
computed once per run, TTA and device (``functools.lru_cache``), and again whenever the run's export or
metrics file changes (their paths, sizes and modification times are part of the key).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import v2

from ..config.files import read_json, write_csv, write_json
from ..config.paths import StudyPaths
from ..data.layout import find_study_layout
from ..data.study import StudyData, load_study, load_test_study
from ..inference.predict import ensemble
from ..inference.submission import predictions_frame, score_predictions, test_probs
from ..training.checkpoints import load_model
from ..training.devices import make_loader
from ..training.class_scores import is_validated
from ..training.evaluation import compute_metrics, predict, prediction_frame
from ..training.transforms import STRONG, StrongGeometry, eval_transform

ENSEMBLE = "ensemble"


def members(run: str, ensemble_runs: Sequence[str]) -> list[str]:
    """The runs whose models make ``run``'s predictions: the ensemble's, or the run itself."""
    if run == ENSEMBLE:
        if not ensemble_runs:
            raise ValueError("submission_run: 'ensemble' needs the runs of the ensemble (parameter ensemble)")
        return list(ensemble_runs)
    return [run]


def load_run_model(study: StudyPaths, run: str, device) -> tuple[torch.nn.Module, dict]:
    """A finished run's exported model (``model.pt``) on ``device``, with its classes and parameters."""
    path = study.run(run).model_file
    if not path.is_file():
        raise FileNotFoundError(f"run {run!r}: no exported model at {path}; run its notebook first")
    return load_model(path, device)


def _run_params(study: StudyPaths, run: str) -> dict:
    return read_json(study.run(run).metrics_json)["params"]


def validation_data(study: StudyPaths, run: str, image_size: int) -> StudyData:
    """The validation split exactly as ``run`` was validated (its own data parameters and seed)."""
    return load_study(_run_params(study, run), image_size=image_size)


def _run_files(study: StudyPaths, run: str) -> tuple:
    """What a cached prediction of ``run`` depends on besides its arguments: its export and its metrics
    file (the parameters it was validated with), each as path, size and modification time."""
    stamp = []
    for path in (study.run(run).model_file, study.run(run).metrics_json):
        try:
            stat = path.stat()
        except OSError:  # the uncached call says what is missing
            stamp.append((str(path), None, None))
        else:
            stamp.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return tuple(stamp)


def _read_only(probs: np.ndarray) -> np.ndarray:
    probs.setflags(write=False)  # shared by every caller of the cache: nobody may change it
    return probs


def validation_probs(study: StudyPaths, run: str, device, tta: str = "none",
                     batch_size: int = 256) -> tuple[np.ndarray, StudyData, list[str]]:
    """A run's class probabilities on its validation split (with ``tta``), the split, and its classes;
    computed once while the run's files are unchanged (read-only: they are shared)."""
    return _validation_probs(study.profile, study.dir, run, str(device), tta, batch_size, _run_files(study, run))


@functools.lru_cache(maxsize=8)
def _validation_probs(profile: str, folder: Path, run: str, device: str, tta: str, batch_size: int,
                      _files: tuple) -> tuple[np.ndarray, StudyData, list[str]]:
    study = StudyPaths(profile, folder)
    model, info = load_run_model(study, run, device)
    size = info["params"]["image_size"]
    data = validation_data(study, run, size)
    loader = make_loader(data.dataset("val", eval_transform(size)), batch_size, shuffle=False, seed=0,
                         device=torch.device(device))
    probs, _, _ = predict(model, loader, torch.device(device), amp=_run_params(study, run)["amp"], tta=tta)
    return _read_only(probs), data, info["classes"]


def validation_metrics(study: StudyPaths, runs: Sequence[str], device, tta: str = "none", name: str | None = None,
                       save: bool = False) -> dict:
    """Validation metrics of one run, or of the mean probabilities of several (an ensemble), with ``tta``.
    ``save``: write them as run ``name``'s metrics and predictions (so the report treats it like a run)."""
    outputs = [validation_probs(study, run, device, tta) for run in runs]
    data, classes = outputs[0][1], outputs[0][2]
    for run, (_, other, other_classes) in zip(runs, outputs):
        if other_classes != classes or list(other.val["path"]) != list(data.val["path"]):
            raise ValueError(f"ensemble: run {run!r} was validated on other images or classes than {runs[0]!r}")
    probs = ensemble([o[0] for o in outputs], classes=[o[2] for o in outputs])
    metrics = compute_metrics(list(data.val["label"]), probs.argmax(1), classes)
    name = name or (runs[0] if len(runs) == 1 else ENSEMBLE)
    titles = [read_json(study.run(r).metrics_json)["title"] for r in runs]
    metrics.update({"run": name, "title": titles[0] if len(runs) == 1 else "Ensemble: " + " + ".join(titles),
                    "members": list(runs), "tta": tta, "epochs_trained": None, "train_seconds": None,
                    "split": data.split, "near_duplicates": data.near_duplicate_summary()})
    if save:
        rp = study.run(name)
        write_csv(rp.predictions_csv, prediction_frame(data.val, probs, classes, data.val_near_duplicate_in_train()))
        write_json(rp.metrics_json, metrics)
    return metrics


def ensemble_metrics(study: StudyPaths, runs: Sequence[str], device, tta: str = "none") -> dict[str, dict]:
    """``{"ensemble": metrics}`` of the mean of ``runs``' probabilities (saved as run ``ensemble``), or
    ``{}`` when ``runs`` is empty: ready to join the runs' metrics in the evolution table."""
    if not runs:
        return {}
    return {ENSEMBLE: validation_metrics(study, runs, device, tta, name=ENSEMBLE, save=True)}


def tta_table(study: StudyPaths, runs: Sequence[str], tta: str, device) -> pd.DataFrame:
    """Validation micro- and macro-F1 of ``runs`` (one run or an ensemble) without and with ``tta``."""
    rows = []
    for mode in dict.fromkeys(["none", tta]):
        m = validation_metrics(study, runs, device, mode)
        rows.append({"run": " + ".join(runs), "tta": mode, "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
                     "errors": int(round((1 - m["accuracy"]) * m["n_images"]))})
    return pd.DataFrame(rows)


def predict_test_set(study: StudyPaths, p, runs: Sequence[str], device) -> tuple[pd.DataFrame, StudyData, list[str]]:
    """Test-set predictions of ``runs`` (mean probabilities when several), with the report's ``tta``:
    a row for every test Id (unreadable images get the fallback), the test data, and the classes."""
    probs, ids, classes, data = [], None, None, None
    data_key = (str(find_study_layout(p).root), json.dumps(dict(p), sort_keys=True, default=str))
    for run in runs:
        run_probs, run_ids, run_classes, test = _test_probs(study.profile, study.dir, run, str(device), data_key,
                                                            _run_files(study, run))
        if ids is not None and (run_ids != ids or run_classes != classes):
            raise ValueError(f"ensemble: run {run!r} predicts other test images or classes than {runs[0]!r}")
        probs.append(run_probs)
        ids, classes, data = run_ids, run_classes, data or test
    return predictions_frame(ensemble(probs) if len(probs) > 1 else probs[0], ids, data), data, classes


@functools.lru_cache(maxsize=16)
def _test_probs(profile: str, folder: Path, run: str, device: str, data_key: tuple,
                _files: tuple) -> tuple[np.ndarray, list[str], list[str], StudyData]:
    """One run's test probabilities with the report's ``submission_tta`` (``p``: the report's parameters,
    in ``data_key`` with the data folder they name), its test Ids, classes and test data; computed once
    while the run's files are unchanged."""
    study, p = StudyPaths(profile, folder), json.loads(data_key[1])
    model, info = load_run_model(study, run, device)
    size = info["params"]["image_size"]
    test = load_test_study(p, info["classes"], size)
    run_probs, run_ids = test_probs(model, test, size, torch.device(device), p["eval_batch_size"],
                                    amp=_run_params(study, run)["amp"], tta=p["submission_tta"])
    return _read_only(run_probs), run_ids, info["classes"], test


# --- every run scored on the held-out test answers ------------------------------------------------

def score_frame(predictions: pd.DataFrame, answers: pd.DataFrame) -> dict:
    """Micro- and macro-F1 of test ``predictions`` (``Id``, ``Expected``) against ``answers``, scored as
    the submission is (``submission.score_predictions``)."""
    score = score_predictions(predictions[["Id", "Expected"]], answers, where="the test predictions")
    return {"test_micro_f1": score["micro_f1"], "test_macro_f1": score["macro_f1"], "test_images": score["n_images"]}


def test_scores(study: StudyPaths, p, runs: Sequence[str], ensemble_runs: Sequence[str], device,
                answers: str | Path | None) -> dict[str, dict]:
    """Each run's (and the ensemble's) micro- and macro-F1 on the test images against the profile's
    true test labels (``answers``), predicted with the report's ``submission_tta``; ``{}`` when there
    are no test labels (the Kaggle data: only Kaggle scores the test set)."""
    if answers is None:
        return {}
    truth = pd.read_csv(answers, dtype=str)
    names = list(runs) + ([ENSEMBLE] if ensemble_runs else [])
    return {name: score_frame(predict_test_set(study, p, members(name, ensemble_runs), device)[0], truth)
            for name in names}


# --- does the per-class augmentation plant a cue? -------------------------------------------------

def tilted_validation_probs(study: StudyPaths, run: str, device, seed: int = 0,
                            batch_size: int = 256) -> tuple[np.ndarray, StudyData]:
    """``run``'s probabilities on its validation images given the strong policy's geometry (rotation,
    flip, translation; no colour jitter), seeded: a model that learned "tilted means a strongly
    augmented class" predicts those classes here far more often than they occur."""
    model, info = load_run_model(study, run, device)
    size = info["params"]["image_size"]
    data = validation_data(study, run, size)
    final = eval_transform(size)
    tilt = StrongGeometry(STRONG["degrees"], STRONG["flip"], STRONG["translate"])
    resize = v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True)])
    torch.manual_seed(seed)
    loader = make_loader(data.dataset("val", v2.Compose([resize, tilt, final])), batch_size, shuffle=False, seed=seed,
                         device=torch.device(device))
    probs, _, _ = predict(model, loader, device, amp=_run_params(study, run)["amp"])
    return probs, data


def strong_class_cue(study: StudyPaths, metrics_by_run: dict[str, dict], device) -> pd.DataFrame:
    """For every run that gave some classes the strong policy: those classes' validation images, how
    often the run predicts them (on the plain validation images, and on the same images given the
    strong geometry), how many of those are right, and their mean F1 in the run they were chosen from
    and in this run. Without a cue, the predicted share follows the true share in both columns."""
    rows = []
    for run, m in metrics_by_run.items():
        strong = list(m.get("worst_classes_augmented") or [])
        if not strong or not (m.get("params") or {}).get("augment"):
            continue
        predictions = pd.read_csv(study.run(run).predictions_csv)
        is_strong_true, is_strong_pred = predictions["true"].isin(strong), predictions["predicted"].isin(strong)
        probs, data = tilted_validation_probs(study, run, device)
        tilted = np.isin(np.asarray(m["classes"], dtype=object)[probs.argmax(1)], strong)
        source = (m.get("params") or {}).get("worst_from_run")
        before = metrics_by_run.get(source) or (_read_metrics(study, source) if source else None)
        rows.append({
            "run": run, "strong classes": len(strong), "taken from": source or "worst_classes",
            "validation images of them": int(is_strong_true.sum()), "predicted as them": int(is_strong_pred.sum()),
            "right": int((is_strong_true & (predictions["true"] == predictions["predicted"])).sum()),
            "true share": round(float(is_strong_true.mean()), 4),
            "predicted share, tilted images": round(float(tilted.mean()), 4),
            "classes it predicts": int(predictions["predicted"].nunique()), "classes": len(m["classes"]),
            "their F1 before": _mean_f1(before, strong) if before else None,
            "their F1 after": _mean_f1(m, strong)})
    return pd.DataFrame(rows, columns=CUE_COLUMNS)


CUE_COLUMNS = ["run", "strong classes", "taken from", "validation images of them", "predicted as them", "right",
               "true share", "predicted share, tilted images", "classes it predicts", "classes", "their F1 before",
               "their F1 after"]


def _read_metrics(study: StudyPaths, run: str) -> dict | None:
    path = study.run(run).metrics_json
    return read_json(path) if path.is_file() else None


def _mean_f1(metrics: dict, classes: Sequence[str]) -> float | None:
    scores = [metrics["per_class"][c]["f1"] for c in classes if c in metrics["per_class"]
              and is_validated(metrics["per_class"][c])]
    return round(float(np.mean(scores)), 4) if scores else None


def explained_run(metrics_by_run: dict[str, dict]) -> str:
    """The run whose Grad-CAM maps the report shows: the best by validation micro-F1 among the runs that
    really used pretrained weights (``weights_used``); without one, among the runs that did not fall back
    to random weights (a transfer run that did shows the mechanics, not what transfer learned)."""
    runs = {r: m for r, m in metrics_by_run.items() if r != ENSEMBLE}
    pretrained = {r: m for r, m in runs.items() if m.get("weights_used")}
    own = {r: m for r, m in runs.items() if (m.get("params") or {}).get("arch") != "transfer"}
    pool = pretrained or own or runs
    return max(pool, key=lambda r: pool[r]["micro_f1"])
