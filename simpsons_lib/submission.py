"""The Kaggle submission: predict the test set, write ``Id,Expected`` in ``sample_submission.csv`` order,
refuse anything Kaggle would reject, and score it when true labels exist (demo data)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
from sklearn.metrics import f1_score

from . import evaluate, train
from .io_utils import write_csv
from .study import StudyData
from .transforms import eval_transform


class SubmissionError(ValueError):
    """The submission would be rejected; nothing was written."""


def read_ids(path: str | Path) -> list[str]:
    frame = pd.read_csv(path, dtype=str)
    if "Id" not in frame.columns:
        raise SubmissionError(f"{path}: no 'Id' column (columns: {', '.join(frame.columns)})")
    return list(frame["Id"])


def expected_ids(study: StudyData) -> list[str]:
    """The Ids a submission must cover, in order: ``sample_submission.csv``'s, or the test files' when
    the data has no sample submission."""
    if study.layout.sample_submission is not None:
        return read_ids(study.layout.sample_submission)
    return list(study.test["Id"])


def predict_test(model: torch.nn.Module, study: StudyData, image_size: int, device: torch.device | str,
                 batch_size: int = 256, amp: bool = False) -> pd.DataFrame:
    """``Id``, ``Expected`` (class name) and ``confidence`` for every test image."""
    device = torch.device(device)
    loader = train.make_loader(study.dataset("test", eval_transform(image_size)), batch_size, False, 0, 0, device)
    probs, ids, _ = evaluate.predict(model, loader, device, amp, desc="test")
    names = [study.classes[i] for i in probs.argmax(1)]
    return pd.DataFrame({"Id": ids, "Expected": names, "confidence": probs.max(1).round(6)})


def check_submission(frame: pd.DataFrame, expected_ids: Sequence[str], classes: Sequence[str]) -> None:
    """Raise ``SubmissionError`` naming what is wrong: missing columns, duplicated, missing or extra
    Ids, or class names the model does not know."""
    for col in ("Id", "Expected"):
        if col not in frame.columns:
            raise SubmissionError(f"submission has no {col!r} column")
    dup = frame["Id"][frame["Id"].duplicated()].unique().tolist()
    if dup:
        raise SubmissionError(f"duplicated Id(s): {', '.join(map(str, dup[:10]))}")
    got, want = set(frame["Id"]), set(expected_ids)
    if want - got:
        raise SubmissionError(f"{len(want - got)} Id(s) missing, e.g. {', '.join(sorted(want - got)[:5])}")
    if got - want:
        raise SubmissionError(f"{len(got - want)} Id(s) not in the sample submission, e.g. "
                              f"{', '.join(sorted(map(str, got - want))[:5])}")
    unknown = sorted(set(frame["Expected"]) - set(classes))
    if unknown:
        raise SubmissionError(f"unknown class name(s): {', '.join(map(str, unknown[:10]))}")


def write_submission(frame: pd.DataFrame, path: str | Path, sample_ids: Sequence[str],
                     classes: Sequence[str]) -> Path:
    """Check, then write ``Id,Expected`` with rows in ``sample_ids`` order (atomically)."""
    check_submission(frame, sample_ids, classes)
    ordered = frame.set_index("Id").loc[list(sample_ids)].reset_index()[["Id", "Expected"]]
    return write_csv(path, ordered)


def score_submission(path: str | Path, answers: str | Path) -> dict:
    """Micro-F1 (Kaggle's score), macro-F1 and the number of errors against the true labels."""
    sub = pd.read_csv(path, dtype=str).set_index("Id")
    truth = pd.read_csv(answers, dtype=str).set_index("Id")
    missing = truth.index.difference(sub.index)
    if len(missing):
        raise SubmissionError(f"{len(missing)} answer Id(s) missing from {path}")
    pred = sub.loc[truth.index, "Expected"]
    return {
        "micro_f1": float(f1_score(truth["Expected"], pred, average="micro")),
        "macro_f1": float(f1_score(truth["Expected"], pred, average="macro", zero_division=0)),
        "n_images": int(len(truth)),
        "errors": int((truth["Expected"] != pred).sum()),
    }


def summarize(run: str, path: str | Path, answers: str | Path | None, out: str | Path) -> dict:
    """Write ``metrics/submission.json``: which run made the submission, its rows, and its score against
    ``answers`` (the profile's true test labels) when given; Kaggle scores the real one."""
    from .io_utils import write_json

    rows = len(pd.read_csv(path))
    summary = {"run": run, "path": str(path), "rows": rows, "answers": str(answers) if answers else None,
               "score": score_submission(path, answers) if answers else None}
    write_json(out, summary)
    return summary


def describe(summary: dict) -> str:
    """The submission's record in words (``summarize``)."""
    text = f"submission.csv from run {summary['run']}: {summary['rows']} rows."
    score = summary.get("score")
    if score:
        text += (f"\nScored against {Path(summary['answers']).name}: micro-F1 {score['micro_f1']:.4f}, macro-F1 "
                 f"{score['macro_f1']:.4f}, {score['errors']} errors of {score['n_images']} images.")
    return text
