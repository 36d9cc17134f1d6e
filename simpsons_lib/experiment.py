"""One training run of the study, wired from its validated parameters: the calls the notebooks make."""

from __future__ import annotations

import platform

import pandas as pd
import torch

from . import evaluate, train
from .datasets import DeviceBatchLoader
from .io_utils import read_json, write_csv, write_json
from .models import build_model, count_parameters
from .paths import RunPaths
from .study import StudyData
from .transforms import BatchAugment, PerClassTransform, eval_transform, labels_of, worst_classes_from_metrics


def worst_classes(p, rp: RunPaths, classes: list[str]) -> list[str]:
    """The classes that get strong augmentation: ``worst_classes`` plus those derived from
    ``worst_from_run``'s per-class validation F1 (``worst_k`` lowest and/or below ``worst_below``)."""
    chosen = list(p["worst_classes"])
    if p["worst_from_run"]:
        source = rp.metrics / f"{p['worst_from_run']}.json"
        if not source.exists():
            raise FileNotFoundError(
                f"worst_from_run: {source} does not exist; run {p['worst_from_run']!r} first "
                "(the pipeline runs it before this one)")
        chosen += worst_classes_from_metrics(source, k=p["worst_k"], below=p["worst_below"])
    labels_of(chosen, classes)  # unknown names fail here, naming them
    return sorted(set(chosen), key=chosen.index)


def make_model(p, study: StudyData) -> torch.nn.Module:
    train.seed_everything(p["seed"])  # the same seed gives the same initial weights
    return build_model(p["arch"], study.n_classes, p["image_size"], backbone=p["backbone"], weights=p["weights"],
                       head_hidden=p["head_hidden"], head_dropout=p["head_dropout"], dropout=p["dropout"])


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
    strong = labels_of(worst, study.classes)
    if loader_kind(p, device, study) == "device_batches":
        return DeviceBatchLoader(study.images, study.train.index, study.train["label"], p["batch_size"], True,
                                 p["seed"], device, BatchAugment(study.n_classes, strong, augment=p["augment"]))
    transform = PerClassTransform(p["image_size"], strong, augment=p["augment"])
    return train.make_loader(study.dataset("train", transform), p["batch_size"], True, p["seed"],
                             p["num_workers"], device)


def make_val_loader(p, study: StudyData, device: torch.device):
    if loader_kind(p, device, study) == "device_batches":
        return DeviceBatchLoader(study.images, study.val.index, study.val["label"], p["eval_batch_size"], False,
                                 p["seed"], device, BatchAugment(study.n_classes, augment=False))
    return train.make_loader(study.dataset("val", eval_transform(p["image_size"])), p["eval_batch_size"], False,
                             p["seed"], p["num_workers"], device)


def train_model(model: torch.nn.Module, study: StudyData, p, rp: RunPaths, worst: list[str],
                progress: bool | None = None, after_epoch=None) -> train.FitResult:
    device = train.select_device(p["device"])
    train.seed_everything(p["seed"])
    train_loader = make_train_loader(p, study, device, worst)
    val_loader = make_val_loader(p, study, device)
    optimizer = train.build_optimizer(model, p["optimizer"], p["lr"], p["weight_decay"], p["momentum"])
    scheduler = train.build_scheduler(optimizer, p["scheduler"], p["epochs"], p["step_size"], p["gamma"])
    meta = {k: v for k, v in p.items() if k not in ("resume", "num_workers", "device")}
    meta["worst_classes_used"] = worst
    meta["loader_used"] = loader_kind(p, device, study)
    return train.fit(model, train_loader, val_loader, epochs=p["epochs"], optimizer=optimizer, scheduler=scheduler,
                     device=device, amp=p["amp"], monitor=p["monitor"], patience=p["patience"],
                     checkpoint_dir=rp.models, history_csv=rp.history_csv, classes=study.classes, meta=meta,
                     resume=p["resume"], progress=progress, after_epoch=after_epoch)


def evaluate_model(model: torch.nn.Module, study: StudyData, p, rp: RunPaths, result: train.FitResult,
                   worst: list[str]) -> tuple[dict, pd.DataFrame]:
    """Validation metrics of the best checkpoint, saved as ``metrics/<run>.json`` with the
    per-image predictions as ``metrics/<run>_val_predictions.csv``."""
    device = torch.device(result.device)
    loader = make_val_loader(p, study, device)
    probs, targets, val_loss = evaluate.predict(model, loader, device, p["amp"])
    metrics = evaluate.compute_metrics(targets, probs.argmax(1), study.classes)
    predictions = evaluate.prediction_frame(study.val, probs, study.classes)
    write_csv(rp.predictions_csv, predictions)
    metrics.update({
        "run": p["run_name"], "title": p["title"], "arch": p["arch"], "val_loss": val_loss,
        "best_epoch": result.best_epoch, "epochs_trained": int(len(result.history)),
        "train_seconds": round(result.train_seconds, 2), "device": result.device,
        "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "parameters": count_parameters(model), "worst_classes_augmented": worst,
        "checkpoint": str(result.best_checkpoint), "params": dict(p),
    })
    write_json(rp.metrics_json, metrics)
    return metrics, predictions


def load_run_metrics(rp: RunPaths, runs: list[str]) -> dict[str, dict]:
    """Saved metrics of ``runs`` (in order); a missing one fails naming its file."""
    out = {}
    for run in runs:
        path = rp.metrics / f"{run}.json"
        if not path.exists():
            raise FileNotFoundError(f"runs: no metrics for run {run!r} at {path}; run its notebook first")
        out[run] = read_json(path)
    return out


def load_predictions(rp: RunPaths, run: str) -> pd.DataFrame:
    """A run's per-image validation predictions (``evaluate.prediction_frame``)."""
    return pd.read_csv(rp.metrics / f"{run}_val_predictions.csv")


def load_trained_model(rp: RunPaths, run: str, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Rebuild a run's model from its best checkpoint (architecture from the saved parameters)."""
    path = rp.profile_dir / "models" / run / "best.pt"
    if not path.exists():
        raise FileNotFoundError(f"submission_run: no checkpoint for run {run!r} at {path}")
    ckpt = train.load_checkpoint(path)
    p = ckpt["params"]
    # weights=None: the checkpoint holds every weight, pretrained ones included.
    model = build_model(p["arch"], len(ckpt["classes"]), p["image_size"], backbone=p["backbone"], weights=None,
                        head_hidden=p["head_hidden"], head_dropout=p["head_dropout"], dropout=p["dropout"])
    model.load_state_dict(ckpt["model_state"])
    return model.to(device).eval(), ckpt

