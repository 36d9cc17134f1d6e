"""One training run of the study, wired from its validated parameters: the calls the notebooks make."""

from __future__ import annotations

import platform

import numpy as np
import pandas as pd
import torch

from . import evaluate, params, train
from .datasets import DeviceBatchLoader
from .io_utils import read_json, write_csv, write_json
from .models import TransferModel, backbone_stages, build_model, count_parameters
from .predict import export_model, load_weights, predict_loader
from .paths import RunPaths, StudyPaths
from .study import StudyData
from .transforms import BatchAugment, PerClassTransform, eval_transform, labels_of, worst_classes_from_metrics
from .transforms import batch_mixing


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
    run's ``title`` gets " (random weights: <reason>)" (the metrics record ``weights_used: null``)."""
    train.seed_everything(p["seed"])  # the same seed gives the same initial weights
    model = build_model(p["arch"], study.n_classes, p["image_size"], backbone=p["backbone"], weights=p["weights"],
                        head_hidden=p["head_hidden"], head_dropout=p["head_dropout"], dropout=p["dropout"],
                        finetune=p["finetune"], weights_fallback=p["weights_fallback"])
    reason = getattr(model, "weights_fallback_reason", None)
    if reason and "(random weights:" not in p["title"]:
        p["title"] = f"{p['title']} (random weights: {reason})"
    return model


def parameter_groups(model: torch.nn.Module, p):
    """What the optimizer trains: layer-wise LR groups of a transfer model's stages when ``lr_decay`` < 1
    (``models.backbone_stages``), else the model itself (one LR)."""
    if p["lr_decay"] == 1.0 or not isinstance(model, TransferModel):
        return model
    return train.layerwise_param_groups(backbone_stages(model), p["lr"], p["lr_decay"])


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
    optimizer = train.build_optimizer(parameter_groups(model, p), p["optimizer"], p["lr"], p["weight_decay"],
                                      p["momentum"])
    scheduler = train.build_scheduler(optimizer, p["scheduler"], p["epochs"], p["step_size"], p["gamma"],
                                      p["warmup_epochs"], len(train_loader))
    meta = {**params.training_values(p), "worst_classes_used": worst, "loader_used": loader_kind(p, device, study),
            "data": study.fingerprint, "weights_used": getattr(model, "weights_used", None)}
    result = train.fit(model, train_loader, val_loader, epochs=p["epochs"], optimizer=optimizer, scheduler=scheduler,
                     device=device, amp=p["amp"], monitor=p["monitor"], patience=p["patience"],
                     checkpoint_dir=rp.models, history_csv=rp.history_csv, classes=study.classes, meta=meta,
                     resume=p["resume"], progress=progress, after_epoch=after_epoch,
                     label_smoothing=p["label_smoothing"],
                     batch_transform=batch_mixing(p["mixup_alpha"], p["cutmix_alpha"], study.n_classes))
    if not result.best_checkpoint.exists() and rp.model_file.exists():  # finished and exported before
        load_weights(model, rp.model_file)
    return result


def evaluate_model(model: torch.nn.Module, study: StudyData, p, rp: RunPaths, result: train.FitResult,
                   worst: list[str]) -> tuple[dict, pd.DataFrame]:
    """Validation metrics of the best checkpoint, saved as ``metrics/<run>.json`` with the
    per-image predictions as ``metrics/<run>_val_predictions.csv``."""
    device = torch.device(result.device)
    loader = make_val_loader(p, study, device)
    probs, targets, val_loss = predict_validation(model, loader, device, p)
    metrics = evaluate.compute_metrics(targets, probs.argmax(1), study.classes)
    predictions = evaluate.prediction_frame(study.val, probs, study.classes)
    write_csv(rp.predictions_csv, predictions)
    metrics.update({
        "run": p["run_name"], "title": p["title"], "arch": p["arch"], "val_loss": val_loss,
        "best_epoch": result.best_epoch, "epochs_trained": int(len(result.history)),
        "train_seconds": round(result.train_seconds, 2), "device": result.device,
        "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "parameters": count_parameters(model), "worst_classes_augmented": worst,
        "checkpoint": str(rp.model_file), "params": dict(p), "tta": p["tta"],
        "weights_used": getattr(model, "weights_used", None),
        "weights_fallback_reason": getattr(model, "weights_fallback_reason", None),
    })
    write_json(rp.metrics_json, metrics)
    # The finished run's weights-only export, what predict and the report load, replaces best.pt (the
    # same weights); last.pt keeps the run's record (history, fingerprint), so a re-run does not train.
    export_model(rp.model_file, model, study.classes, p)
    if result.finished:
        result.best_checkpoint.unlink(missing_ok=True)
    return metrics, predictions


def predict_validation(model: torch.nn.Module, loader, device: torch.device, p) -> tuple[np.ndarray, list, float]:
    """Validation probabilities, labels and mean cross-entropy; with ``tta`` (flip, flip+scales) the
    probabilities are ``predict.predict_loader``'s averages over the views, and the loss theirs."""
    if p["tta"] == "none":
        return evaluate.predict(model, loader, device, p["amp"])
    probs, targets = predict_loader(model, loader, device, p["amp"], p["tta"])
    picked = probs[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)]
    return probs, targets, float(-np.log(np.clip(picked, 1e-12, None)).mean())


def load_run_metrics(study: StudyPaths, runs: list[str]) -> dict[str, dict]:
    """Saved metrics of ``runs`` (in order); a missing one fails naming its file."""
    out = {}
    for run in runs:
        path = study.run(run).metrics_json
        if not path.exists():
            raise FileNotFoundError(f"runs: no metrics for run {run!r} at {path}; run its notebook first")
        out[run] = read_json(path)
    return out


def load_predictions(study: StudyPaths, run: str) -> pd.DataFrame:
    """A run's per-image validation predictions (``evaluate.prediction_frame``)."""
    return pd.read_csv(study.run(run).predictions_csv)


def describe_augmentation(p, worst: list[str]) -> str:
    """What the run's augmentation does, in words."""
    from .transforms import describe_policies

    if not p["augment"]:
        return "No augmentation: every training image is only resized and normalised."
    rule = " and ".join(filter(None, [f"the {p['worst_k']} weakest" if p["worst_k"] else "",
                                      f"those below F1 {p['worst_below']}" if p["worst_below"] is not None else ""]))
    source = f" ({rule} of run {p['worst_from_run']})" if p["worst_from_run"] else ""
    return (f"Per-class augmentation ({describe_policies()}).\nStrong policy for {len(worst)} classes{source}: "
            f"{', '.join(worst) or 'none'}; mild for the others.")


def worst_classes_table(p, rp: RunPaths, worst: list[str]) -> pd.DataFrame:
    """Why the strong classes were chosen: their validation F1 and support in ``worst_from_run``, with that
    run's median over the classes it validated."""
    if not p["worst_from_run"]:
        return pd.DataFrame({"class": worst, "chosen by": "worst_classes"})
    per_class = read_json(rp.study.run(p["worst_from_run"]).metrics_json)["per_class"]
    validated = [v["f1"] for v in per_class.values() if v.get("support", 0) > 0 and v["f1"] is not None]
    median = float(pd.Series(validated).median()) if validated else float("nan")
    rows = [{"class": c, f"F1 in {p['worst_from_run']}": per_class[c]["f1"], "validation images":
             per_class[c]["support"], "median class F1": round(median, 4)} for c in worst if c in per_class]
    return pd.DataFrame(rows)


def describe_runs(metrics_by_run: dict[str, dict]) -> str:
    """The evolution in words, as measured: each run's micro- and macro-F1 against the first run's, and
    which transfer runs had no pretrained weights (so show mechanics, not transfer)."""
    runs = list(metrics_by_run)
    if not runs:
        return "No runs."
    base = metrics_by_run[runs[0]]
    lines = []
    for run in runs:
        m = metrics_by_run[run]
        delta = "" if run == runs[0] else f" ({m['micro_f1'] - base['micro_f1']:+.3f} micro-F1 against {runs[0]})"
        lines.append(f"{m['title']}: micro-F1 {m['micro_f1']:.3f}, macro-F1 {m['macro_f1']:.3f}{delta}")
        p = m.get("params", {})
        if p.get("arch") == "transfer" and not m.get("weights_used", p.get("weights")):
            why = f" ({m['weights_fallback_reason']})" if m.get("weights_fallback_reason") else ""
            lines.append(f"  {run} ran without pretrained weights{why}: its {p.get('backbone')} features started "
                         "random, so it shows the mechanics of fine-tuning, not transfer learning.")
    best = max(runs, key=lambda r: metrics_by_run[r]["micro_f1"])
    lines.append(f"Best by validation micro-F1: {metrics_by_run[best]['title']}.")
    return "\n".join(lines)
