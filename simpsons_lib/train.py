"""Training: one ``fit`` for every model, with checkpoints, resume, early stopping and a CSV history.

Seeding: ``seed_everything`` plus a seeded loader generator make a CPU run repeatable; the RNG states
are saved in every unfinished ``last.pt`` so a resumed run continues exactly as an uninterrupted one
would. Checkpoints hold tensors and plain data only and are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import record
from .evaluate import autocast, compute_metrics, predict, to_device
from .io_utils import atomic_path, progress_enabled, write_csv
from .progress import report_epoch

log = logging.getLogger(__name__)

TIMING_COLUMNS = ("seconds", "train_images_per_s")


def select_device(name: str = "auto") -> torch.device:
    """``auto``: cuda, then mps, then cpu. Asking for an absent accelerator is an error."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but no CUDA GPU is available (use device: auto or cpu)")
    if name == "mps" and not has_mps:
        raise RuntimeError("device 'mps' was asked for, but Apple MPS is not available (use device: auto or cpu)")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be auto, cpu, cuda or mps, not {name!r}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_loader(dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0,
                device: torch.device | None = None) -> DataLoader:
    """A loader whose order (and workers' augmentation seeds) follow ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      pin_memory=device is not None and device.type == "cuda", drop_last=False)


def layerwise_param_groups(stages: Sequence[tuple[str, Sequence[torch.nn.Parameter]]], lr: float,
                           decay: float) -> list[dict]:
    """Optimizer parameter groups from ``stages`` (input first, head last: ``models.backbone_stages``):
    the last stage gets ``lr``, each stage before it ``decay`` times the next one's (layer-wise LR
    decay). Only parameters that train are included; stages without any are left out. Each group is
    named after its stage (``name``)."""
    groups = []
    for depth, (name, stage_params) in enumerate(reversed(list(stages))):
        trainable = [p for p in stage_params if p.requires_grad]
        if trainable:
            groups.append({"params": trainable, "lr": lr * decay ** depth, "name": name})
    return groups[::-1]


def param_groups_table(groups: torch.nn.Module | Iterable[dict]) -> pd.DataFrame:
    """What ``build_optimizer`` gets, one row per group: its name, trainable parameters and starting LR
    (the schedule scales every group alike). A model: one row, ``lr`` left empty (the run's ``lr``)."""
    if isinstance(groups, torch.nn.Module):
        n = sum(p.numel() for p in groups.parameters() if p.requires_grad)
        return pd.DataFrame([{"group": "all trainable parameters", "parameters": n, "lr": None}])
    return pd.DataFrame([{"group": g.get("name", str(i)), "parameters": sum(p.numel() for p in g["params"]),
                          "lr": g["lr"]} for i, g in enumerate(groups)])


def build_optimizer(model: torch.nn.Module | Iterable[dict], name: str, lr: float, weight_decay: float = 0.0,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """The optimizer over ``model``'s trainable parameters (one group at ``lr``), or over parameter
    groups (``layerwise_param_groups``: each group's own ``lr``)."""
    params = ([p for p in model.parameters() if p.requires_grad] if isinstance(model, torch.nn.Module)
              else list(model))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be adam, adamw or sgd, not {name!r}")


class WarmupCosine(torch.optim.lr_scheduler.LambdaLR):
    """Per-step schedule (``fit`` steps it after every batch, ``per_step``): each group's LR rises
    linearly from ``1/warmup_steps`` of its own to all of it over ``warmup_steps``, then follows a
    cosine to 0 at ``total_steps``."""

    per_step = True

    def __init__(self, optimizer, total_steps: int, warmup_steps: int):
        if total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(f"warmup_cosine needs 0 <= warmup steps < total steps, got {warmup_steps} and "
                             f"{total_steps}")
        self.total_steps, self.warmup_steps = total_steps, warmup_steps

        def factor(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))))
        super().__init__(optimizer, factor)


def build_scheduler(optimizer, name: str, epochs: int, step_size: int = 1, gamma: float = 0.1,
                    warmup_epochs: float = 0.0, steps_per_epoch: int | None = None):
    """``none``, ``cosine`` and ``step`` are stepped once per epoch; ``warmup_cosine`` once per batch
    (``WarmupCosine``; needs ``steps_per_epoch``, the training loader's length)."""
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "warmup_cosine":
        if not steps_per_epoch:
            raise ValueError("scheduler warmup_cosine needs steps_per_epoch (the training loader's length)")
        return WarmupCosine(optimizer, epochs * steps_per_epoch, round(warmup_epochs * steps_per_epoch))
    raise ValueError(f"scheduler must be none, cosine, step or warmup_cosine, not {name!r}")


def params_fingerprint(meta: dict) -> str:
    """What must match for ``last.pt`` to be resumed: the run's training parameters (with the data's
    fingerprint, when given) and the training code (``record.TRAINING_MODULES``)."""
    return record.training_fingerprint(meta)


@dataclass
class FitResult:
    history: pd.DataFrame
    best_epoch: int
    best_score: float
    best_checkpoint: Path
    last_checkpoint: Path
    device: str
    resumed_from: int | None = None
    finished: bool = False  # every epoch done (or stopped early): nothing left to resume

    @property
    def train_seconds(self) -> float:
        return float(self.history["seconds"].sum())


def _rng_state(loader) -> dict:
    """Every RNG state as tensors and plain Python data (what ``weights_only`` loading accepts): numpy's
    MT19937 key becomes an int64 tensor, Python's state a list."""
    kind, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    generator = getattr(loader, "generator", None)
    return {"torch": torch.get_rng_state(),
            "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
            "python": [int(version), list(internal), gauss_next],
            "loader": generator.get_state() if generator is not None else None,
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict, loader) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    generator = getattr(loader, "generator", None)
    if state["loader"] is not None and generator is not None:
        generator.set_state(state["loader"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used (not a checkpoint, corrupt, truncated, or holding more than
    tensors and plain data); the one-line message names the file and says what to do."""


CHECKPOINT_KEYS = ("classes",)  # a finished run's last.pt holds its record, not its weights
WEIGHTS_KEYS = ("model_state", "classes")
OPTIMIZER_KEYS = ("optimizer_state", "scheduler_state", "rng")


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_checkpoint(path: str | Path, map_location="cpu", required: Iterable[str] = CHECKPOINT_KEYS) -> dict:
    """A checkpoint written by ``fit``, loaded with ``weights_only=True``: only tensors and plain data are
    unpickled, so a crafted file cannot run code. Anything else (a foreign pickle, a truncated or corrupt
    file, not a dict, a ``required`` key missing) raises ``CheckpointError`` naming the file; a missing
    file raises ``FileNotFoundError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    advice = "delete it to retrain the run from scratch"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError, zip/EOF errors, RuntimeError from the loader...
        raise CheckpointError(f"{path} is not a usable checkpoint ({type(exc).__name__}: {_one_line(exc)}); "
                              f"{advice}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint (it holds a {type(state).__name__}, not a dict); "
                              f"{advice}")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a complete checkpoint (missing {', '.join(missing)}); {advice}")
    return state


def _better(score: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return score < best if monitor == "val_loss" else score > best


def train_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
               loss_fn, device: torch.device, amp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch already on ``device``; returns (loss, logits)."""
    with autocast(device, amp):
        logits = model(images)
        loss = loss_fn(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()


def to_training_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on ``device``; on CUDA in channels-last layout, with cuDNN picking its fastest kernels."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        return model.to(device, memory_format=torch.channels_last)
    return model.to(device)


def train_epoch(model: torch.nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, loss_fn,
                device: torch.device, amp: bool, batch_transform: Callable | None = None,
                step_scheduler=None) -> tuple[float, float, int]:
    """One pass of ``train_step`` over ``batches``; returns (mean loss, accuracy, images seen). A batch
    of a single image (an epoch's remainder) is skipped: BatchNorm layers cannot train on one sample.

    ``batch_transform(images, labels) -> (images, targets)`` (MixUp/CutMix: ``transforms.batch_mixing``)
    is applied to each batch on the device; the loss takes its (soft) targets, and the accuracy is
    always counted against the batch's own hard labels. ``step_scheduler`` is stepped after every batch.

    The sums stay on the device and are read once at the end: reading them every step would make the
    host wait for each step, and the GPU would idle while the next batch is prepared."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for images, labels in batches:
        if len(labels) == 1:
            continue
        images, labels = to_device(images, device), labels.to(device, non_blocking=True)
        images, targets = batch_transform(images, labels) if batch_transform is not None else (images, labels)
        loss, logits = train_step(model, images, targets, optimizer, loss_fn, device, amp)
        if step_scheduler is not None:
            step_scheduler.step()
        loss_sum += loss * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
    if seen == 0:
        raise ValueError("no training batch: the training split is empty")
    return loss_sum.item() / seen, correct.item() / seen, seen


def fit(model: torch.nn.Module, train_loader: DataLoader, val_loader: DataLoader, *, epochs: int,
        optimizer: torch.optim.Optimizer, scheduler=None, device: torch.device | str = "cpu",
        amp: bool = False, monitor: str = "val_micro_f1", patience: int = 0,
        checkpoint_dir: str | Path, history_csv: str | Path | None = None, classes: list[str],
        meta: dict | None = None, resume: bool = True, progress: bool | None = None,
        after_epoch: Callable[[int], None] | None = None, keep_optimizer_state: bool = False,
        run_name: str | None = None, label_smoothing: float = 0.0,
        batch_transform: Callable | None = None) -> FitResult:
    """Train ``model``; keep ``best.pt`` (by ``monitor``) and ``last.pt`` in ``checkpoint_dir``.

    Each checkpoint holds the model state, class names, ``meta`` (the run's parameters), the epoch,
    its metrics and the history, as tensors and plain data only (loaded with ``weights_only=True``).
    While the run goes on, ``last.pt`` also holds the optimizer, scheduler and RNG states; with
    ``resume``, a ``last.pt`` whose ``meta`` matches continues from the epoch after it, exactly as an
    uninterrupted run. Once the run is finished (last epoch or early stop), ``last.pt`` is rewritten
    without those states (unless ``keep_optimizer_state``), still marked finished, so a re-run with the
    same parameters returns at once. The model ends with the best weights loaded when ``best.pt`` exists
    (a finished, evaluated run keeps them in its export instead: ``FitResult.finished`` tells).

    The loss is cross-entropy with ``label_smoothing``; ``batch_transform`` (MixUp/CutMix) mixes each
    training batch (see ``train_epoch``). A scheduler with ``per_step`` (``WarmupCosine``) is stepped
    after every batch, any other after every epoch. The history's ``lr`` is the largest group's LR at
    the start of the epoch.

    After each epoch ``progress.report_epoch`` reports it under ``run_name`` (default: ``meta``'s
    ``run_name``, else the checkpoint folder's name), with an ETA from the mean epoch time so far.
    """
    device = torch.device(device)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    best_path, last_path = checkpoint_dir / "best.pt", checkpoint_dir / "last.pt"
    meta = dict(meta or {})
    fingerprint = params_fingerprint({**meta, "epochs": epochs, "monitor": monitor, "patience": patience})
    show = progress_enabled(progress)
    run_name = run_name or str(meta.get("run_name") or checkpoint_dir.name)
    model = to_training_device(model, device)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    per_step = bool(getattr(scheduler, "per_step", False))

    history: list[dict] = []
    best_score, best_epoch, stale, start_epoch, resumed_from, finished = None, 0, 0, 1, None, False
    if resume and last_path.exists():
        state = load_checkpoint(last_path, required=("fingerprint",))
        if state.get("fingerprint") == fingerprint:
            finished = bool(state.get("finished"))
            needed = ("history", "best_score", "best_epoch", "stale", "epoch") + (() if finished else
                                                                                  ("model_state", *OPTIMIZER_KEYS))
            missing = [k for k in needed if k not in state]
            if missing:
                raise CheckpointError(f"{last_path} cannot be resumed (missing {', '.join(missing)}); delete it "
                                      "to retrain the run from scratch")
            if not finished:  # a finished run's weights are its best checkpoint's, loaded below
                model.load_state_dict(state["model_state"])
                optimizer.load_state_dict(state["optimizer_state"])
                if scheduler is not None and state.get("scheduler_state"):
                    scheduler.load_state_dict(state["scheduler_state"])
                _set_rng_state(state["rng"], train_loader)
            history = state["history"]
            best_score, best_epoch, stale = state["best_score"], state["best_epoch"], state["stale"]
            start_epoch = resumed_from = state["epoch"] + 1
            log.info("Resuming from %s (epoch %d done%s)", last_path, state["epoch"],
                     ", finished" if finished else "")
        else:
            log.info("Ignoring %s: it was made with other parameters", last_path)

    for epoch in range(start_epoch, epochs + 1):
        if finished:
            break
        start = time.perf_counter()
        batches = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", disable=not show, leave=False)
        lr = max(group["lr"] for group in optimizer.param_groups)
        train_loss, train_accuracy, seen = train_epoch(model, batches, optimizer, loss_fn, device, amp,
                                                       batch_transform, scheduler if per_step else None)
        train_seconds = time.perf_counter() - start
        if scheduler is not None and not per_step:
            scheduler.step()
        probs, targets, val_loss = predict(model, val_loader, device, amp, progress=False)
        m = compute_metrics(targets, probs.argmax(1), classes)
        row = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
               "val_loss": val_loss, "val_micro_f1": m["micro_f1"], "val_macro_f1": m["macro_f1"],
               "val_accuracy": m["accuracy"], "lr": lr, "seconds": time.perf_counter() - start,
               "train_images_per_s": seen / train_seconds}
        history.append(row)
        score = row[monitor]
        improved = _better(score, best_score, monitor)
        if improved:
            best_score, best_epoch, stale = score, epoch, 0
        else:
            stale += 1
        finished = epoch == epochs or (patience > 0 and stale >= patience)
        payload = {"model_state": model.state_dict(), "classes": list(classes), "params": meta,
                   "fingerprint": fingerprint, "epoch": epoch, "metrics": row, "history": history,
                   "best_score": best_score, "best_epoch": best_epoch, "stale": stale, "finished": finished}
        if improved:
            save_checkpoint(best_path, payload)
        if keep_optimizer_state or not finished:
            payload.update({"optimizer_state": optimizer.state_dict(),
                            "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
                            "rng": _rng_state(train_loader)})
        else:  # finished: the record of the run (history, fingerprint); its weights are best.pt's
            payload.pop("model_state")
        save_checkpoint(last_path, payload)
        if history_csv is not None:
            write_csv(history_csv, pd.DataFrame(history))
        log.debug("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if patience > 0 and stale >= patience:
            log.info("Early stop: %s did not improve for %d epochs", monitor, patience)
        done_seconds = [h["seconds"] for h in history]
        epochs_left = 0 if finished else epochs - epoch
        report_epoch(run_name, epoch, epochs, train_loss, row["val_micro_f1"], row["train_images_per_s"],
                     sum(done_seconds) / len(done_seconds) * epochs_left)
        if after_epoch is not None:
            after_epoch(epoch)

    if history_csv is not None and history:
        write_csv(history_csv, pd.DataFrame(history))  # also when a finished run was only reloaded
    if best_path.exists():
        model.load_state_dict(load_checkpoint(best_path, map_location=device, required=WEIGHTS_KEYS)["model_state"])
    return FitResult(pd.DataFrame(history), best_epoch, best_score, best_path, last_path, str(device),
                     resumed_from, finished)
