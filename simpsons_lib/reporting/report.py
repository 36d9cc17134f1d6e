"""What the report notebook computes from finished runs: their exported models on the validation split
(with and without test-time augmentation), ensembles of runs, and the test-set predictions for the
submission. Every model comes from its run's weights-only export (``models/<run>/model.pt``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import v2

from ..config.choices import TTA_AUTO, TTA_MODES
from ..config.files import read_json, write_csv, write_json
from ..config.params import is_cue_control
from ..config.paths import StudyPaths
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


_VALIDATED: dict[tuple, tuple] = {}  # validation_probs' results in this process, by model file and its mtime
_TESTED: dict[tuple, tuple] = {}  # predict_test_set's per-run results, by model file, its mtime and the parameters


def _export_key(study: StudyPaths, run: str) -> tuple:
    """A run's export as the caches above know it: its path and modification time (a new export, a new key)."""
    path = study.run(run).model_file
    return str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else None


def validation_probs(study: StudyPaths, run: str, device, tta: str = "none",
                     batch_size: int = 256) -> tuple[np.ndarray, StudyData, list[str]]:
    """A run's class probabilities on its validation split (with ``tta``), the split, and its classes.
    Computed once per process for one export (``model.pt``, by its modification time), device and ``tta``:
    the report weighs each run's TTA modes for its test score and shows them again in the TTA table."""
    key = (*_export_key(study, run), str(device), tta, batch_size)
    if key not in _VALIDATED:
        model, info = load_run_model(study, run, device)
        size = info["params"]["image_size"]
        data = validation_data(study, run, size)
        loader = make_loader(data.dataset("val", eval_transform(size)), batch_size, shuffle=False, seed=0,
                             device=torch.device(device))
        probs, _, _ = predict(model, loader, device, amp=_run_params(study, run)["amp"], tta=tta)
        probs.setflags(write=False)  # shared by the report's cells: nobody may change it
        _VALIDATED[key] = (probs, data, info["classes"])
    return _VALIDATED[key]


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


def tried_tta(setting: str) -> list[str]:
    """The TTA modes a ``submission_tta`` setting weighs on validation: ``auto`` every mode, cheapest first
    (``TTA_MODES``); a mode, none and itself."""
    return list(TTA_MODES) if setting == TTA_AUTO else list(dict.fromkeys(["none", setting]))


def tta_table(study: StudyPaths, runs: Sequence[str], tta: str, device) -> pd.DataFrame:
    """Validation micro- and macro-F1 and errors of ``runs`` (one run or an ensemble) with each mode that
    the ``submission_tta`` setting ``tta`` weighs (``tried_tta``), on the runs' own validation split
    (named in column ``split``: the images that chose their best epoch)."""
    rows = []
    for mode in tried_tta(tta):
        m = validation_metrics(study, runs, device, mode)
        rows.append({"run": " + ".join(runs), "split": m["split"], "validation images": m["n_images"], "tta": mode,
                     "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
                     "errors": int(round((1 - m["accuracy"]) * m["n_images"]))})
    return pd.DataFrame(rows)


def chosen_tta(table: pd.DataFrame, setting: str) -> str:
    """The TTA the test predictions use, the one rule of the report, the evolution table, the index and a
    sweep: ``setting`` itself when it names a mode; with ``auto``, the mode of ``table`` (``tta_table``)
    with the best validation micro-F1, of equal ones the cheaper (none, then flip, then flip+scales)."""
    if setting != TTA_AUTO:
        return setting
    if table.empty:
        raise ValueError("submission_tta auto: no validation figures to choose from")
    best = round(float(table["micro_f1"].max()), 10)
    tied = set(table.loc[table["micro_f1"].round(10) == best, "tta"])
    return next(mode for mode in TTA_MODES if mode in tied)


def submission_tta(study: StudyPaths, runs: Sequence[str], setting: str, device) -> str:
    """The TTA ``runs`` (one run or an ensemble's) predict the test set with, under the ``submission_tta``
    ``setting``: ``chosen_tta`` of their ``tta_table`` (a named mode needs no table)."""
    return setting if setting != TTA_AUTO else chosen_tta(tta_table(study, runs, setting, device), setting)


def predict_test_set(study: StudyPaths, p, runs: Sequence[str], device,
                     tta: str | None = None) -> tuple[pd.DataFrame, StudyData, list[str]]:
    """Test-set predictions of ``runs`` (mean probabilities when several) with ``tta`` (default: what the
    report's ``submission_tta`` gives them, ``submission_tta``): a row for every test Id (unreadable images
    get the fallback), the test data, and the classes."""
    tta = tta or submission_tta(study, runs, p["submission_tta"], device)
    probs, ids, classes, data = [], None, None, None
    for run in runs:
        key = (*_export_key(study, run), str(device), tta, json.dumps(dict(p), sort_keys=True, default=str))
        if key not in _TESTED:
            model, info = load_run_model(study, run, device)
            size = info["params"]["image_size"]
            test = load_test_study(p, info["classes"], size)
            run_probs, run_ids = test_probs(model, test, size, device, p["eval_batch_size"],
                                            amp=_run_params(study, run)["amp"], tta=tta)
            run_probs.setflags(write=False)
            _TESTED[key] = (run_probs, run_ids, test, info)
        run_probs, run_ids, test, info = _TESTED[key]
        if ids is not None and (run_ids != ids or info["classes"] != classes):
            raise ValueError(f"ensemble: run {run!r} predicts other test images or classes than {runs[0]!r}")
        probs.append(run_probs)
        ids, classes, data = run_ids, info["classes"], data or test
    return predictions_frame(ensemble(probs) if len(probs) > 1 else probs[0], ids, data), data, classes


# --- every run scored on the held-out test answers ------------------------------------------------

def score_frame(predictions: pd.DataFrame, answers: pd.DataFrame) -> dict:
    """Micro- and macro-F1 of test ``predictions`` (``Id``, ``Expected``) against ``answers``, scored as
    the submission is (``submission.score_predictions``)."""
    score = score_predictions(predictions[["Id", "Expected"]], answers, where="the test predictions")
    return {"test_micro_f1": score["micro_f1"], "test_macro_f1": score["macro_f1"], "test_images": score["n_images"]}


def test_scores(study: StudyPaths, p, runs: Sequence[str], ensemble_runs: Sequence[str], device,
                answers: str | Path | None) -> dict[str, dict]:
    """Each run's (and the ensemble's) micro- and macro-F1 on the test images against the profile's
    true test labels (``answers``), predicted with the TTA the report's ``submission_tta`` gives it
    (``submission_tta``: with ``auto`` each run's own choice), recorded as ``test_tta``; ``{}`` when there
    are no test labels (the Kaggle data: only Kaggle scores the test set)."""
    if answers is None:
        return {}
    truth = pd.read_csv(answers, dtype=str)
    names = list(runs) + ([ENSEMBLE] if ensemble_runs else [])
    out = {}
    for name in names:
        tta = submission_tta(study, members(name, ensemble_runs), p["submission_tta"], device)
        out[name] = {**score_frame(predict_test_set(study, p, members(name, ensemble_runs), device, tta)[0], truth),
                     "test_tta": tta}
    return out


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


def cue_control(study: StudyPaths, run: str, metrics_by_run: dict[str, dict]) -> str | None:
    """The control of an augmented ``run``: a finished run trained like it without the strong policy
    (``params.is_cue_control``: ``augment: false``, every other parameter that shapes the weights equal) and
    validated on the same images; sought among ``metrics_by_run`` (the report's runs) first, then among the
    study's other finished runs (a sweep point such as ``make sweep RUN=mid_cnn GRID="augment=false"``).
    None when there is none."""
    mine = metrics_by_run[run]
    images = None  # the run's validation images, read once a candidate matches its parameters
    others = sorted(p.stem for p in study.manifests.glob("*.json")) if study.manifests.is_dir() else []
    for name in dict.fromkeys([*metrics_by_run, *others]):
        if name in (run, ENSEMBLE):
            continue
        m = metrics_by_run.get(name) or _read_metrics(study, name)
        rp = study.run(name)
        if (not m or not m.get("params") or not is_cue_control(m["params"], mine.get("params") or {})
                or not rp.model_file.is_file() or not rp.predictions_csv.is_file()):
            continue
        if images is None:
            images = list(pd.read_csv(study.run(run).predictions_csv)["path"])
        if list(pd.read_csv(rp.predictions_csv)["path"]) == images:
            return name
    return None


def _cue_row(study: StudyPaths, run: str, m: dict, strong: list[str], source: str | None, before: dict | None,
             device, control_of: str | None = None) -> dict:
    predictions = pd.read_csv(study.run(run).predictions_csv)
    is_strong_true, is_strong_pred = predictions["true"].isin(strong), predictions["predicted"].isin(strong)
    probs, _ = tilted_validation_probs(study, run, device)
    tilted = np.isin(np.asarray(m["classes"], dtype=object)[probs.argmax(1)], strong)
    return {"run": run, "control of": control_of, "strong classes": len(strong),
            "strong geometry": None if control_of else (m.get("params") or {}).get("strong_geometry", "worst"),
            "taken from": source or "worst_classes",
            "validation images of them": int(is_strong_true.sum()), "predicted as them": int(is_strong_pred.sum()),
            "right": int((is_strong_true & (predictions["true"] == predictions["predicted"])).sum()),
            "true share": round(float(is_strong_true.mean()), 4),
            "predicted share, tilted images": round(float(tilted.mean()), 4),
            "classes it predicts": int(predictions["predicted"].nunique()), "classes": len(m["classes"]),
            "their F1 before": _mean_f1(before, strong) if before else None, "their F1 after": _mean_f1(m, strong)}


def strong_class_cue(study: StudyPaths, metrics_by_run: dict[str, dict], device) -> pd.DataFrame:
    """For every run that gave some classes the strong policy, and right below it its control (``cue_control``,
    column ``control of``) when one exists: those classes' validation images, how often the run predicts
    them (on the plain validation images, and on the same images given the strong geometry), how many of
    those are right, and their mean F1 in the run they were chosen from and in this run. Without a cue,
    the augmented run predicts them as often as its control does, on both."""
    rows = []
    for run, m in metrics_by_run.items():
        strong = list(m.get("worst_classes_augmented") or [])
        if not strong or not (m.get("params") or {}).get("augment"):
            continue
        source = (m.get("params") or {}).get("worst_from_run")
        before = metrics_by_run.get(source) or (_read_metrics(study, source) if source else None)
        rows.append(_cue_row(study, run, m, strong, source, before, device))
        control = cue_control(study, run, metrics_by_run)
        if control is not None:
            cm = metrics_by_run.get(control) or _read_metrics(study, control)
            rows.append(_cue_row(study, control, cm, strong, source, before, device, control_of=run))
    return pd.DataFrame(rows, columns=CUE_COLUMNS)


CUE_COLUMNS = ["run", "control of", "strong classes", "strong geometry", "taken from", "validation images of them",
               "predicted as them", "right", "true share", "predicted share, tilted images", "classes it predicts",
               "classes", "their F1 before", "their F1 after"]


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
