"""One training run of the study, wired from its validated parameters: the calls the notebooks make."""

from __future__ import annotations

import logging
import platform

import pandas as pd
import torch

from ..config import params
from ..config.files import write_csv, write_json
from ..config.paths import RunPaths
from ..data.datasets import DeviceBatchLoader, balanced_weights
from ..data.study import StudyData
from . import devices, loop, optim
from .checkpoints import export_model
from .class_scores import worst_classes_from_metrics
from .evaluation import compute_metrics, predict, prediction_frame
from .models import build_model_from_params, count_parameters
from .transforms import BatchAugment, PerClassTransform, batch_mixing, eval_transform, labels_of

log = logging.getLogger(__name__)


def worst_classes(p, rp: RunPaths, classes: list[str]) -> list[str]:
    """The classes that get strong augmentation: ``worst_classes`` plus those derived from
    ``worst_from_run``'s per-class validation F1 (``worst_k`` lowest and/or below ``worst_below``)."""
    chosen = list(p["worst_classes"])
    if p["worst_from_run"]:
        source = rp.study.run(p["worst_from_run"]).metrics_json
        if not source.exists():
            raise FileNotFoundError(
                f"worst_from_run: {source} does not exist; run {p['worst_from_run']!r} first "
                "(the pipeline runs it before this one)")
        chosen += worst_classes_from_metrics(source, k=p["worst_k"], below=p["worst_below"])
    labels_of(chosen, classes)  # unknown names fail here, naming them
    return sorted(set(chosen), key=chosen.index)


def make_model(p, study: StudyData) -> torch.nn.Module:
    """The run's model. When its named weights cannot be had and ``weights_fallback`` is ``random``, the
    run's ``title`` gets the short tag " (random weights)" (the metrics record ``weights_used: null`` and
    ``weights_fallback_reason``; the reason is said once, in the note at the top of the run's page)."""
    devices.seed_everything(p["seed"])  # the same seed gives the same initial weights
    model = build_model_from_params(p, study.n_classes)
    if getattr(model, "weights_fallback_reason", None) and RANDOM_WEIGHTS_TAG not in p["title"]:
        p["title"] = f"{p['title']} {RANDOM_WEIGHTS_TAG}"
    return model


RANDOM_WEIGHTS_TAG = "(random weights)"


def loader_kind(p, device: torch.device, study: StudyData) -> str:
    """``device_batches`` (decoded split on the device, batch augmentation there) or ``per_sample``
    (DataLoader, per-image v2 transforms). ``auto``: device batches on a CUDA GPU."""
    kind = p["loader"]
    if kind == "auto":
        kind = "device_batches" if device.type == "cuda" and study.images is not None else "per_sample"
    if kind == "device_batches" and study.images is None:
        raise ValueError("loader: device_batches needs the decoded images (cache_images: true)")
    return kind


def make_train_loader(p, study: StudyData, device: torch.device, worst: list[str]):
    """The training loader: shuffled (``sampling: natural``) or drawn with class-balancing weights
    (``balanced``: ``datasets.balanced_weights``), on the GPU-resident or the per-sample path alike."""
    strong = labels_of(worst, study.classes)
    weights = balanced_weights(study.train["label"], p["balance_power"]) if p["sampling"] == "balanced" else None
    if loader_kind(p, device, study) == "device_batches":
        return DeviceBatchLoader(study.images, study.train.index, study.train["label"], p["batch_size"], shuffle=True,
                                 seed=p["seed"], device=device, weights=weights,
                                 transform=BatchAugment(study.n_classes, strong, augment=p["augment"],
                                                        geometry_for_all=p["strong_geometry"] == "all"))
    transform = PerClassTransform(p["image_size"], strong, augment=p["augment"],
                                  geometry_for_all=p["strong_geometry"] == "all")
    return devices.make_loader(study.dataset("train", transform), p["batch_size"], shuffle=True, seed=p["seed"],
                               num_workers=devices.loader_workers(p["num_workers"]), device=device, weights=weights)


def make_val_loader(p, study: StudyData, device: torch.device):
    if loader_kind(p, device, study) == "device_batches":
        return DeviceBatchLoader(study.images, study.val.index, study.val["label"], p["eval_batch_size"],
                                 shuffle=False, seed=p["seed"], device=device,
                                 transform=BatchAugment(study.n_classes, augment=False))
    return devices.make_loader(study.dataset("val", eval_transform(p["image_size"])), p["eval_batch_size"],
                               shuffle=False, seed=p["seed"], num_workers=devices.loader_workers(p["num_workers"]),
                               device=device)


def train_model(model: torch.nn.Module, study: StudyData, p, rp: RunPaths, worst: list[str],
                progress: bool | None = None, after_epoch=None) -> loop.FitResult:
    """Train (or resume, or reuse the finished) run ``p`` with ``loop.fit``. When the best epoch's weights
    cannot be had (``loop.BestWeightsLost``: ``best.pt`` or ``model.pt`` deleted or of another epoch), the
    run says so in one line and trains again from its initial weights, as a fresh run would."""
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    device = devices.select_device(p["device"])
    for attempt in (1, 2):
        devices.seed_everything(p["seed"])
        train_loader = make_train_loader(p, study, device, worst)
        val_loader = make_val_loader(p, study, device)
        optimizer = optim.build_optimizer(optim.parameter_groups(model, p), p["optimizer"], p["lr"],
                                          p["weight_decay"], p["momentum"])
        scheduler = optim.build_scheduler(optimizer, p["scheduler"], p["epochs"], p["step_size"], p["gamma"],
                                          p["warmup_epochs"], len(train_loader))
        meta = {**params.training_values(p), "worst_classes_used": worst,
                "loader_used": loader_kind(p, device, study), "data": study.fingerprint,
                "weights_used": getattr(model, "weights_used", None)}
        try:
            return loop.fit(model, train_loader, val_loader, epochs=p["epochs"], optimizer=optimizer,
                            scheduler=scheduler, device=device, amp=p["amp"], monitor=p["monitor"],
                            patience=p["patience"], checkpoint_dir=rp.models, history_csv=rp.history_csv,
                            classes=study.classes, meta=meta, resume=p["resume"] and attempt == 1,
                            progress=progress, after_epoch=after_epoch, label_smoothing=p["label_smoothing"],
                            batch_transform=batch_mixing(p["mixup_alpha"], p["cutmix_alpha"], study.n_classes),
                            export_path=rp.model_file, ema_decay=p["ema_decay"])
        except loop.BestWeightsLost as exc:
            if attempt == 2:
                raise
            log.warning("%s: %s; training the run again from scratch", p["run_name"], exc)
            model.load_state_dict(initial)
            for stale in (rp.last_checkpoint, rp.best_checkpoint, rp.model_file):
                stale.unlink(missing_ok=True)


def evaluate_model(model: torch.nn.Module, study: StudyData, p, rp: RunPaths, result: loop.FitResult,
                   worst: list[str]) -> tuple[dict, pd.DataFrame]:
    """Validation metrics of the best checkpoint, saved as ``metrics/<run>.json`` with the
    per-image predictions as ``metrics/<run>_val_predictions.csv``."""
    device = torch.device(result.device)
    loader = make_val_loader(p, study, device)
    probs, targets, val_loss = predict(model, loader, device, p["amp"], tta=p["tta"])
    metrics = compute_metrics(targets, probs.argmax(1), study.classes)
    predictions = prediction_frame(study.val, probs, study.classes, study.val_near_duplicate_in_train())
    write_csv(rp.predictions_csv, predictions)
    metrics.update({
        "run": p["run_name"], "title": p["title"], "arch": p["arch"], "val_loss": val_loss,
        "best_epoch": result.best_epoch, "epochs_trained": int(len(result.history)),
        "last_epoch_val_micro_f1": _last(result, "val_micro_f1"), "last_epoch_val_macro_f1": _last(result, "val_macro_f1"),
        "train_seconds": round(result.train_seconds, 2), "device": result.device, "amp": result.amp,
        "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "parameters": count_parameters(model), "worst_classes_augmented": worst,
        "checkpoint": str(rp.model_file), "params": dict(p), "tta": p["tta"],
        "weights_used": getattr(model, "weights_used", None),
        "weights_fallback_reason": getattr(model, "weights_fallback_reason", None),
        "split": p["split"], "near_duplicates": study.near_duplicate_summary(),
    })
    write_json(rp.metrics_json, metrics)
    # The finished run's weights-only export, what predict and the report load, replaces best.pt (the
    # same weights); last.pt keeps the run's record (history, fingerprint), so a re-run does not train.
    export_model(rp.model_file, model, study.classes, p, epoch=result.best_epoch, fingerprint=result.fingerprint)
    if result.finished:
        result.best_checkpoint.unlink(missing_ok=True)
    return metrics, predictions


def _last(result: loop.FitResult, column: str) -> float | None:
    """The last epoch's validation score (beside the best epoch's: the selection effect, visible)."""
    if result.history.empty or column not in result.history:
        return None
    value = result.history[column].iloc[-1]
    return None if pd.isna(value) else float(value)
