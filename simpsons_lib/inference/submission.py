"""The Kaggle submission: predict the test set, write ``Id,Expected`` in ``sample_submission.csv`` order,
refuse anything Kaggle would reject, and score it when true labels exist (demo data).

Every test Id gets a row: an image that could not be read (``on_bad_image: skip``) is predicted as the
most frequent training class and listed (``fallback_ids``, ``submission.json``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score

from ..config.files import write_csv, write_json
from ..data.layout import IMAGE_SUFFIXES, natural_key
from ..data.study import StudyData
from ..training.devices import make_loader
from ..training.evaluation import predict
from ..training.transforms import eval_transform


log = logging.getLogger(__name__)


class SubmissionError(ValueError):
    """The submission would be rejected; nothing was written."""


def read_ids(path: str | Path) -> list[str]:
    frame = pd.read_csv(path, dtype=str)
    if "Id" not in frame.columns:
        raise SubmissionError(f"{path}: no 'Id' column (columns: {', '.join(frame.columns)})")
    return list(frame["Id"])


def test_image_ids(test_dir: str | Path) -> list[str]:
    """The name of every image file in ``test_dir`` (natural order), readable or not: each one is a
    test Id that Kaggle expects a row for."""
    files = [p for p in Path(test_dir).iterdir()
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return [p.name for p in sorted(files, key=lambda p: natural_key(p.name))]


def expected_ids(study: StudyData) -> list[str]:
    """The Ids a submission must cover, in order: ``sample_submission.csv``'s, or, when the data has no
    sample submission, every image file in the test folder, including those that could not be read."""
    if study.layout.sample_submission is not None:
        return read_ids(study.layout.sample_submission)
    if study.layout.test_dir is None:
        raise SubmissionError(f"no sample_submission.csv and no test folder under {study.layout.root}")
    return test_image_ids(study.layout.test_dir)


def bad_test_ids(study: StudyData) -> list[str]:
    """Ids (file names) of the test images that could not be read and were skipped
    (``on_bad_image: skip``; listed in the study's report)."""
    test_dir = study.layout.test_dir
    if test_dir is None:
        return []
    return [Path(p).name for p, _ in study.report.bad_files if Path(p).parent == Path(test_dir)]


def most_frequent_class(study: StudyData) -> str:
    """The training class with the most images (ties: the first by name), among ``study.classes``.

    Counted from the study's training index when it was loaded, else (``study.load_test_study``) from
    the image files in each class folder of the training folder, which needs no decoding."""
    if len(study.index):
        counts = study.index["class_name"].value_counts()
    else:
        train_dir = Path(study.layout.train_dir)
        counts = pd.Series({c: len(test_image_ids(train_dir / c)) if (train_dir / c).is_dir() else 0
                            for c in study.classes})
    counts = counts.reindex(list(study.classes)).fillna(0)
    if counts.max() <= 0:
        raise SubmissionError(f"no training images of the model's classes in {study.layout.train_dir} to pick "
                              "a fallback class from; give fallback_class")
    return str(sorted(counts.index, key=lambda c: (-counts[c], c))[0])


def test_probs(model: torch.nn.Module, study: StudyData, image_size: int, device: torch.device | str,
               batch_size: int = 256, amp: str = "off", tta: str = "none") -> tuple[np.ndarray, list[str]]:
    """Class probabilities ``(N, C)`` of the readable test images, and their Ids, with ``tta``
    (``predict.TTA_MODES``), under the run's ``amp`` (as ``evaluation.predict`` takes it)."""
    device = torch.device(device)
    if not len(study.test):
        return np.zeros((0, len(study.classes))), []
    loader = make_loader(study.dataset("test", eval_transform(image_size)), batch_size, shuffle=False, seed=0,
                         device=device)
    probs, ids, _ = predict(model, loader, device, amp, tta=tta)
    return probs, [str(i) for i in ids]


def predictions_frame(probs: np.ndarray, ids: Sequence[str], study: StudyData,
                      fallback_class: str | None = None) -> pd.DataFrame:
    """``Id``, ``Expected`` (class name), ``confidence`` and ``fallback`` for every test image.

    A test image that could not be read (skipped under ``on_bad_image: skip``, see ``bad_test_ids``)
    still gets a row, so the submission covers every Id: its prediction is the fallback class,
    ``fallback_class`` or by default the most frequent training class (``most_frequent_class``, the
    best guess without the image), with ``confidence`` NaN and ``fallback`` True. ``fallback_ids``
    lists them; print them and pass them to ``summarize``."""
    names = [study.classes[i] for i in np.asarray(probs).argmax(1)] if len(ids) else []
    frame = pd.DataFrame({"Id": list(ids), "Expected": names,
                          "confidence": np.asarray(probs).max(1).round(6) if len(ids) else [], "fallback": False})
    bad = [i for i in bad_test_ids(study) if i not in set(frame["Id"])]
    if bad:
        guess = fallback_class if fallback_class is not None else most_frequent_class(study)
        if guess not in study.classes:
            raise SubmissionError(f"fallback_class {guess!r} is not one of the model's classes")
        log.warning("%d test image(s) could not be read; predicted as %s (the fallback): %s", len(bad), guess,
                    ", ".join(bad))
        rows = pd.DataFrame({"Id": bad, "Expected": guess, "confidence": float("nan"), "fallback": True})
        frame = pd.concat([frame, rows], ignore_index=True) if len(frame) else rows
    return frame.astype({"fallback": bool})


def predict_test(model: torch.nn.Module, study: StudyData, image_size: int, device: torch.device | str,
                 batch_size: int = 256, amp: str = "off", fallback_class: str | None = None,
                 tta: str = "none") -> pd.DataFrame:
    """``predictions_frame`` of one model's ``test_probs``: a row for every test image."""
    probs, ids = test_probs(model, study, image_size, device, batch_size, amp, tta)
    return predictions_frame(probs, ids, study, fallback_class)


def fallback_ids(predictions: pd.DataFrame) -> list[str]:
    """The Ids that ``predict_test`` gave the fallback prediction (unreadable test images)."""
    if "fallback" not in predictions.columns:
        return []
    return [str(i) for i in predictions.loc[predictions["fallback"].astype(bool), "Id"]]


def check_submission(frame: pd.DataFrame, expected_ids: Sequence[str], classes: Sequence[str],
                     bad_ids: Sequence[str] = ()) -> None:
    """Raise ``SubmissionError`` naming what is wrong: missing columns, duplicated, missing or extra
    Ids, or class names the model does not know. ``bad_ids``: test images known to be unreadable
    (``bad_test_ids``); missing Ids among them are named as such, with what to do."""
    for col in ("Id", "Expected"):
        if col not in frame.columns:
            raise SubmissionError(f"submission has no {col!r} column")
    dup = frame["Id"][frame["Id"].duplicated()].unique().tolist()
    if dup:
        raise SubmissionError(f"duplicated Id(s): {', '.join(map(str, dup[:10]))}")
    got, want = set(frame["Id"]), set(expected_ids)
    if want - got:
        missing = sorted(want - got, key=natural_key)
        known_bad = [i for i in missing if i in set(bad_ids)]
        hint = (f"; {len(known_bad)} of them are test images that could not be read and were skipped "
                f"(on_bad_image: skip): {', '.join(known_bad[:5])}. Predict with submission.predict_test, which "
                "gives them the fallback class, or fix the files" if known_bad else "")
        raise SubmissionError(f"{len(missing)} Id(s) missing, e.g. {', '.join(missing[:5])}{hint}")
    if got - want:
        raise SubmissionError(f"{len(got - want)} Id(s) not in the sample submission, e.g. "
                              f"{', '.join(sorted(map(str, got - want))[:5])}")
    unknown = sorted(set(frame["Expected"]) - set(classes))
    if unknown:
        raise SubmissionError(f"unknown class name(s): {', '.join(map(str, unknown[:10]))}")


def write_submission(frame: pd.DataFrame, path: str | Path, sample_ids: Sequence[str],
                     classes: Sequence[str], bad_ids: Sequence[str] = ()) -> Path:
    """Check, then write ``Id,Expected`` with rows in ``sample_ids`` order (atomically)."""
    check_submission(frame, sample_ids, classes, bad_ids)
    ordered = frame.set_index("Id").loc[list(sample_ids)].reset_index()[["Id", "Expected"]]
    return write_csv(path, ordered)


def score_submission(path: str | Path, answers: str | Path) -> dict:
    """Micro-F1 (Kaggle's score), macro-F1 and the number of errors against the true labels."""
    return score_predictions(pd.read_csv(path, dtype=str), pd.read_csv(answers, dtype=str), where=str(path))


def score_predictions(predictions: pd.DataFrame, answers: pd.DataFrame, where: str = "the predictions") -> dict:
    """``score_submission`` of frames: ``Id``, ``Expected`` predictions against the true ``Id``, ``Expected``."""
    sub = predictions.astype({"Id": str, "Expected": str}).set_index("Id")
    truth = answers.astype({"Id": str, "Expected": str}).set_index("Id")
    missing = truth.index.difference(sub.index)
    if len(missing):
        raise SubmissionError(f"{len(missing)} answer Id(s) missing from {where}")
    pred = sub.loc[truth.index, "Expected"]
    return {
        "micro_f1": float(f1_score(truth["Expected"], pred, average="micro")),
        "macro_f1": float(f1_score(truth["Expected"], pred, average="macro", zero_division=0)),
        "n_images": int(len(truth)),
        "errors": int((truth["Expected"] != pred).sum()),
    }


def summarize(run: str, path: str | Path, answers: str | Path | None, out: str | Path,
              fallback_ids: Sequence[str] = (), layout=None, tta: str | None = None) -> dict:
    """Write ``metrics/submission.json``: which run made the submission, its rows, the Ids that got the
    fallback prediction (``fallback_ids``: unreadable test images, with the class they were given), the
    data it was made from (``layout``: whether it is the drawn demo data, its sample submission), and
    its score against ``answers`` (the profile's true test labels) when given; Kaggle scores the real one."""
    sub = pd.read_csv(path, dtype=str)
    fallback = sub[sub["Id"].isin(set(fallback_ids))]
    summary = {"run": run, "path": str(path), "rows": int(len(sub)), "tta": tta,
               "fallback_ids": list(fallback["Id"]),
               "fallback_class": str(fallback["Expected"].iloc[0]) if len(fallback) else None,
               "data": str(layout.root) if layout is not None else None,
               "demo": bool(layout.is_demo) if layout is not None else False,
               "sample_submission": str(layout.sample_submission) if layout is not None and layout.sample_submission else None,
               "answers": str(answers) if answers else None,
               "score": score_submission(path, answers) if answers else None}
    write_json(out, summary)
    return summary


def describe(summary: dict) -> str:
    """The submission's record in words (``summarize``)."""
    tta = f", test-time augmentation {summary['tta']}" if summary.get("tta") not in (None, "none") else ""
    text = f"submission.csv from run {summary['run']}{tta}: {summary['rows']} rows."
    if summary.get("fallback_ids"):
        text += (f"\n{len(summary['fallback_ids'])} unreadable test image(s) got the fallback prediction "
                 f"{summary['fallback_class']} (the fallback class): {', '.join(summary['fallback_ids'])}")
    score = summary.get("score")
    if score:
        text += (f"\nScored against {Path(summary['answers']).name}: micro-F1 {score['micro_f1']:.4f}, macro-F1 "
                 f"{score['macro_f1']:.4f}, {score['errors']} errors of {score['n_images']} images.")
    return text
