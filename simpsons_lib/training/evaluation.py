"""Predictions and metrics (scikit-learn): the one prediction loop (probabilities, targets, loss, with
optional test-time augmentation), micro-F1 (the Kaggle metric), macro-F1, accuracy, per-class
precision/recall/F1/support, confusion matrices, and the one rule for which classes are validated and
which are the worst."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from tqdm.auto import tqdm

from ..config.choices import TTA_MODES
from ..config.console import progress_enabled
from .class_scores import ranked_classes
from .devices import amp_mode, autocast, to_device

TTA_SCALES = (0.9, 1.1)


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
def predict(model: torch.nn.Module, loader, device: torch.device | str = "cpu", amp: str = "off",
            tta: bool | str = "none", progress: bool | None = None,
            desc: str = "predict") -> tuple[np.ndarray, list, float]:
    """The one prediction loop: class probabilities ``(N, C)``, the loader's targets (labels or Ids),
    and the mean cross-entropy (NaN when the targets are not labels), of a validation, test or
    ``DeviceBatchLoader`` loader.

    With ``tta`` (``flip``, ``flip+scales``) the probabilities are the mean over ``tta_views`` and the
    loss is the negative log of that mean at the true class; without, the loss is computed from the
    logits. Results stay on the device until the end (one transfer, no wait after each batch).

    ``amp``: the run's ``amp`` parameter; ``devices.amp_mode`` decides it for ``device`` as in training,
    so every view of TTA runs under the same autocast as the training did."""
    device = torch.device(device)
    amp = amp_mode(amp, device)
    mode = tta_mode(tta)
    model.eval()
    probs, targets, labels, loss_sum = [], [], [], torch.zeros((), device=device)
    label = desc if mode == "none" else f"{desc} (tta {mode})"
    for images, target in tqdm(loader, desc=label, disable=not progress_enabled(progress), leave=False):
        images = to_device(images, device)
        if mode == "none":
            with autocast(device, amp):
                logits = model(images).float()
            batch_probs = torch.softmax(logits, dim=1)
        else:
            views = tta_views(images, mode)
            batch_probs = sum(_softmax(model, view, device, amp) for view in views) / len(views)
        if isinstance(target, torch.Tensor):
            target = target.to(device, non_blocking=True)
            if mode == "none":
                loss_sum += torch.nn.functional.cross_entropy(logits, target, reduction="sum")
            labels.append(target)
        else:
            targets.extend(target)
        probs.append(batch_probs)
    if not probs:  # an empty loader (e.g. every file given to predict was bad)
        return np.zeros((0, 0), dtype=np.float32), [], float("nan")
    probs = torch.cat(probs).cpu().numpy()
    if not labels:
        return probs, targets, float("nan")
    targets = torch.cat(labels).tolist()
    if mode == "none":
        return probs, targets, loss_sum.item() / len(targets)
    picked = probs[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)]
    return probs, targets, float(-np.log(np.clip(picked, 1e-12, None)).mean())


def _softmax(model: torch.nn.Module, images: torch.Tensor, device: torch.device, amp: str) -> torch.Tensor:
    with autocast(device, amp):
        return torch.softmax(model(images).float(), dim=1)


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


def prediction_frame(frame: pd.DataFrame, probs: np.ndarray, classes: Sequence[str],
                     near_duplicate_in_train: np.ndarray | None = None) -> pd.DataFrame:
    """One row per image: path, true and predicted class, confidence, correct; with
    ``near_duplicate_in_train`` (``StudyData.val_near_duplicate_in_train``), that column too."""
    pred = probs.argmax(axis=1)
    out = pd.DataFrame({
        "path": frame["path"].to_numpy(),
        "true": frame["class_name"].to_numpy(),
        "predicted": np.asarray(classes, dtype=object)[pred],
        "confidence": probs.max(axis=1).round(6),
    })
    out["correct"] = out["true"] == out["predicted"]
    if near_duplicate_in_train is not None:
        out["near_duplicate_in_train"] = np.asarray(near_duplicate_in_train, bool)
    return out
