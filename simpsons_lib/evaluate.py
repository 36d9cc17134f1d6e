"""Predictions and metrics (scikit-learn): micro-F1 (the Kaggle metric), macro-F1, accuracy, per-class
precision/recall/F1/support, confusion matrices, worst classes and the misclassified images."""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from tqdm.auto import tqdm

from .io_utils import progress_enabled


def autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    return images


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device | str = "cpu", amp: bool = False,
            progress: bool | None = None, desc: str = "predict") -> tuple[np.ndarray, list, float]:
    """Class probabilities ``(N, C)``, the loader's targets (labels or Ids), and the mean
    cross-entropy loss (NaN when the targets are not labels). Results stay on the device until the
    end (one transfer, no wait for the host after each batch)."""
    device = torch.device(device)
    model.eval()
    probs, targets, labels, loss_sum = [], [], [], torch.zeros((), device=device)
    for images, target in tqdm(loader, desc=desc, disable=not progress_enabled(progress), leave=False):
        with autocast(device, amp):
            logits = model(to_device(images, device)).float()
        if isinstance(target, torch.Tensor):
            target = target.to(device, non_blocking=True)
            loss_sum += torch.nn.functional.cross_entropy(logits, target, reduction="sum")
            labels.append(target)
        else:
            targets.extend(target)
        probs.append(torch.softmax(logits, dim=1))
    probs = torch.cat(probs).cpu().numpy()
    if labels:
        targets = torch.cat(labels).tolist()
        return probs, targets, loss_sum.item() / len(targets)
    return probs, targets, float("nan")


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str],
                    worst_k: int = 5) -> dict:
    """All validation metrics, JSON-serialisable.

    ``micro_f1`` (Kaggle's metric) and ``accuracy`` count every validation image. A class with no
    validation image (``support`` 0: too rare to split) has no F1: its ``per_class`` entry has
    precision, recall and f1 ``None``, it is listed in ``unvalidated_classes``, and it is left out of
    ``macro_f1`` (the mean F1 of the validated classes) and of ``worst_classes`` (the ``worst_k``
    validated classes with the lowest F1)."""
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    validated = [i for i in labels if support[i] > 0]
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    row_sums = cm.sum(axis=1, keepdims=True)
    cm_norm = np.divide(cm, row_sums, out=np.zeros(cm.shape, float), where=row_sums > 0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])} if support[i] > 0 else
              {"precision": None, "recall": None, "f1": None, "support": 0}
        for i, name in enumerate(classes)
    }
    macro = f1_score(y_true, y_pred, labels=validated, average="macro", zero_division=0) if validated else None
    return {
        "micro_f1": float(f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0)),
        "macro_f1": None if macro is None else float(macro),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n_images": int(len(y_true)),
        "classes": list(classes),
        "validated_classes": int(len(validated)),
        "unvalidated_classes": [classes[i] for i in labels if support[i] == 0],
        "per_class": per_class,
        "worst_classes": ranked_classes(per_class)[:worst_k],
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": cm_norm.round(6).tolist(),
    }


def is_validated(entry: dict) -> bool:
    """Whether a ``per_class`` entry was scored on validation images (metrics files written before
    unvalidated classes were marked have f1 0.0 with support 0 for them: not validated either)."""
    return entry.get("f1") is not None and int(entry.get("support", 0)) > 0


def ranked_classes(per_class: dict[str, dict]) -> list[str]:
    """The validated classes of a ``per_class`` dict, lowest F1 first (ties by name)."""
    return sorted((c for c, v in per_class.items() if is_validated(v)), key=lambda c: (per_class[c]["f1"], c))


def prediction_frame(frame: pd.DataFrame, probs: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """One row per image: path, true and predicted class, confidence, correct."""
    pred = probs.argmax(axis=1)
    out = pd.DataFrame({
        "path": frame["path"].to_numpy(),
        "true": frame["class_name"].to_numpy(),
        "predicted": np.asarray(classes, dtype=object)[pred],
        "confidence": probs.max(axis=1).round(6),
    })
    out["correct"] = out["true"] == out["predicted"]
    return out


def misclassified(predictions: pd.DataFrame) -> pd.DataFrame:
    """The wrong predictions, most confident first."""
    wrong = predictions[~predictions["correct"]]
    return wrong.sort_values("confidence", ascending=False).reset_index(drop=True)


def metrics_table(metrics_by_run: dict[str, dict]) -> pd.DataFrame:
    """One row per run: micro-F1, macro-F1, accuracy (the study's evolution table)."""
    rows = [{"run": run, "title": m.get("title", run), "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
             "accuracy": m["accuracy"], "epochs": m.get("epochs_trained"), "train_seconds": m.get("train_seconds")}
            for run, m in metrics_by_run.items()]
    return pd.DataFrame(rows)


def per_class_f1_table(metrics_by_run: dict[str, dict]) -> pd.DataFrame:
    """Classes × runs, validation F1; NaN where a run had no validation image of the class (not
    validated, not an F1 of 0)."""
    return pd.DataFrame({run: {c: float(v["f1"]) if is_validated(v) else np.nan for c, v in m["per_class"].items()}
                         for run, m in metrics_by_run.items()}, dtype=float)


def best_run(table: pd.DataFrame, metric: str = "micro_f1") -> str:
    """The run with the highest ``metric`` in a ``metrics_table`` (the first of equals)."""
    return str(table.loc[table[metric].idxmax(), "run"])


def submission_run(name: str, table: pd.DataFrame) -> str:
    """``name``, or the best run by validation micro-F1 when ``name`` is ``"best"``."""
    if name == "best":
        return best_run(table)
    if name not in set(table["run"]):
        raise ValueError(f"submission_run: {name!r} is not one of the runs {list(table['run'])} (or 'best')")
    return name
