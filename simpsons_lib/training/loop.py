"""Training: one ``fit`` for every model, with checkpoints, resume, early stopping and a CSV history.

``fit`` reads as its parts: ``resumed_state`` (pick up a matching ``last.pt``), ``train_epoch`` (one pass),
``record_epoch`` (the history row, the best score, early stopping) and ``save_epoch`` (the checkpoints).
Seeding: ``devices.seed_everything`` plus a seeded loader generator make a CPU run repeatable; the RNG
states are saved in every unfinished ``last.pt`` so a resumed run continues exactly as an uninterrupted
one would. Checkpoints hold tensors and plain data only and are loaded with ``weights_only=True``.
Mixed precision: ``fit`` asks ``devices.amp_mode`` once; under fp16 a ``GradScaler`` scales the loss, its
state rides in ``last.pt`` and the steps it skipped (inf/NaN gradients) are the history's ``skipped_steps``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..config.console import progress_enabled, report_epoch
from ..config.files import write_csv
from ..config.files import read_json, write_json
from .checkpoints import (OPTIMIZER_KEYS, WEIGHTS_KEYS, CheckpointError, ExportError, load_checkpoint, load_weights,
                          read_export, rng_state, save_checkpoint, set_rng_state)
from .devices import amp_mode, autocast, grad_scaler, to_device, to_training_device
from .evaluation import compute_metrics, predict
from .fingerprint import training_fingerprint

log = logging.getLogger(__name__)

TIMING_COLUMNS = ("seconds", "train_images_per_s")
TIMINGS_FILE = "timings.json"  # beside last.pt: the epochs' times, which no checkpoint holds


class BestWeightsLost(CheckpointError):
    """The best epoch's weights cannot be had (``best.pt`` missing or of another epoch, and no export of
    that epoch): the run must be trained again. The one-line message says what was found."""


def params_fingerprint(meta: dict) -> str:
    """What must match for ``last.pt`` to be resumed: the run's training parameters (with the data's
    fingerprint, when given) and the weight-shaping code (``fingerprint.training_fingerprint``)."""
    return training_fingerprint(meta)


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
    fingerprint: str = ""   # the training fingerprint the checkpoints (and the export) carry
    weights_from: str = ""  # where the best epoch's weights came from: memory, best.pt or model.pt
    amp: str = "off"        # the mixed precision used (devices.amp_mode): bf16, fp16 or off

    @property
    def train_seconds(self) -> float:
        return float(self.history["seconds"].sum())


def _better(score: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return score < best if monitor == "val_loss" else score > best


def train_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
               loss_fn, device: torch.device, amp: str,
               scaler: torch.amp.GradScaler | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch already on ``device``, under ``amp`` (a mode of
    ``devices.amp_mode``), through ``scaler`` when given (fp16); returns (loss, logits)."""
    with autocast(device, amp):
        logits = model(images)
        loss = loss_fn(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # skipped when the scaled gradients hold inf/NaN
        scaler.update()
    return loss.detach(), logits.detach()


def train_epoch(model: torch.nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, loss_fn,
                device: torch.device, amp: str, batch_transform: Callable | None = None,
                step_scheduler=None, after_step: Callable[[], None] | None = None,
                scaler: torch.amp.GradScaler | None = None) -> tuple[float, float, int, int]:
    """One pass of ``train_step`` over ``batches``; returns (mean loss, accuracy, images seen, steps the
    fp16 ``scaler`` skipped). A batch of a single image (an epoch's remainder) is left out: BatchNorm
    layers cannot train on one sample.

    ``batch_transform(images, labels) -> (images, targets)`` (MixUp/CutMix: ``transforms.batch_mixing``)
    is applied to each batch on the device; the loss takes its (soft) targets, and the accuracy is
    always counted against the batch's own hard labels. ``step_scheduler`` is stepped after every batch,
    and ``after_step`` (the EMA's update) called. With ``scaler``, a step it skipped (its gradients
    overflowed) shows as a lowered scale, and is counted.

    The sums stay on the device and are read once at the end: reading them every step would make the
    host wait for each step, and the GPU would idle while the next batch is prepared."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = skipped = 0
    scale = scaler.get_scale() if scaler is not None else None
    for images, labels in batches:
        if len(labels) == 1:
            continue
        images, labels = to_device(images, device), labels.to(device, non_blocking=True)
        images, targets = batch_transform(images, labels) if batch_transform is not None else (images, labels)
        loss, logits = train_step(model, images, targets, optimizer, loss_fn, device, amp, scaler)
        if scaler is not None:  # the scaler's step has already waited for the device: no extra stall
            skipped += scaler.get_scale() < scale
            scale = scaler.get_scale()
        if step_scheduler is not None:
            step_scheduler.step()
        if after_step is not None:
            after_step()
        loss_sum += loss * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
    if seen == 0:
        raise ValueError("no training batch: the training split is empty")
    return loss_sum.item() / seen, correct.item() / seen, seen, int(skipped)


@dataclass
class FitState:
    """Where a run stands between epochs: its history, best score and epoch, epochs without
    improvement, and whether it is finished (what ``last.pt`` records)."""
    history: list[dict] = field(default_factory=list)
    best_score: float | None = None
    best_epoch: int = 0
    stale: int = 0
    next_epoch: int = 1
    resumed_from: int | None = None
    finished: bool = False


def resumed_state(last_path: Path, fingerprint: str, model: torch.nn.Module, optimizer, scheduler,
           train_loader, ema: torch.nn.Module | None = None, scaler: torch.amp.GradScaler | None = None) -> FitState:
    """The state to continue from: a ``last.pt`` with the same training fingerprint is picked up (the
    model, optimizer, scheduler, RNG and, under fp16, gradient scaler states of an unfinished run; the
    record of a finished one), anything else starts afresh."""
    if not last_path.exists():
        return FitState()
    state = load_checkpoint(last_path, required=("fingerprint",))
    if state.get("fingerprint") != fingerprint:
        log.info("Ignoring %s: it was made with other parameters", last_path)
        return FitState()
    finished = bool(state.get("finished"))
    needed = ("history", "best_score", "best_epoch", "stale", "epoch") + (() if finished else (
        "model_state", *OPTIMIZER_KEYS, *(("ema_state",) if ema is not None else ()),
        *(("scaler_state",) if scaler is not None else ())))
    missing = [k for k in needed if k not in state]
    if missing:
        raise CheckpointError(f"{last_path} cannot be resumed (missing {', '.join(missing)}); delete it "
                              "to retrain the run from scratch")
    if not finished:  # a finished run's weights are its best checkpoint's (or its export's)
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        if scheduler is not None and state.get("scheduler_state"):
            scheduler.load_state_dict(state["scheduler_state"])
        set_rng_state(state["rng"], train_loader)
        if ema is not None:
            ema.load_state_dict(state["ema_state"])
        if scaler is not None:
            scaler.load_state_dict(state["scaler_state"])
    if finished:
        log.info("Reusing the finished run in %s (epoch %d): nothing to train", last_path, state["epoch"])
    else:
        log.info("Resuming from %s (epoch %d done)", last_path, state["epoch"])
    return FitState(history=with_timings(state["history"], last_path.with_name(TIMINGS_FILE)),
                    best_score=state["best_score"], best_epoch=state["best_epoch"], stale=state["stale"],
                    next_epoch=state["epoch"] + 1, resumed_from=state["epoch"] + 1, finished=finished)


def without_timings(history: list[dict]) -> list[dict]:
    """The history as checkpoints hold it: no wall-clock columns, so two identical runs give the same bytes."""
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in history]


def with_timings(history: list[dict], timings_file: Path) -> list[dict]:
    """A checkpoint's history with the epochs' times from ``timings.json`` (NaN where none is recorded)."""
    try:
        times = {int(t["epoch"]): t for t in read_json(timings_file)}
    except (OSError, ValueError, KeyError, TypeError):
        times = {}
    return [{**row, **{k: times.get(row["epoch"], {}).get(k, float("nan")) for k in TIMING_COLUMNS}}
            for row in history]


def record_epoch(state: FitState, row: dict, monitor: str, patience: int, epochs: int) -> bool:
    """Add the epoch's row to the history, update the best score and the early-stopping count, and
    mark the run finished after its last epoch or an early stop; returns whether the epoch is the best."""
    state.history.append(row)
    improved = _better(row[monitor], state.best_score, monitor)
    if improved:
        state.best_score, state.best_epoch, state.stale = row[monitor], row["epoch"], 0
    else:
        state.stale += 1
    state.finished = row["epoch"] == epochs or (patience > 0 and state.stale >= patience)
    state.next_epoch = row["epoch"] + 1
    if patience > 0 and state.stale >= patience:
        log.info("Early stop: %s did not improve for %d epochs", monitor, patience)
    return improved


def save_epoch(state: FitState, improved: bool, model: torch.nn.Module, optimizer, scheduler, train_loader, *,
               best_path: Path, last_path: Path, classes: list[str], meta: dict, fingerprint: str,
               ema: torch.nn.Module | None = None, scaler: torch.amp.GradScaler | None = None) -> None:
    """``best.pt`` when the epoch is the best; ``last.pt`` always: with the optimizer, scheduler, RNG and
    (fp16) gradient scaler states while the run goes on, and once finished only the run's record (its
    weights are best.pt's).
    The epochs' times go to ``timings.json`` beside them, so the checkpoints depend on nothing but the
    run's inputs: two identical runs give byte-identical files. With an EMA (``ema``), ``best.pt`` holds
    the averaged weights (those validated) and ``last.pt`` the trained ones with the average's state."""
    history = without_timings(state.history)
    payload = {"model_state": (ema.module if ema is not None else model).state_dict(), "classes": list(classes), "params": meta,
               "fingerprint": fingerprint, "epoch": history[-1]["epoch"], "metrics": history[-1], "history": history,
               "best_score": state.best_score, "best_epoch": state.best_epoch, "stale": state.stale,
               "finished": state.finished}
    write_json(last_path.with_name(TIMINGS_FILE),
               [{"epoch": row["epoch"], **{k: row[k] for k in TIMING_COLUMNS if k in row}} for row in state.history])
    if improved:
        save_checkpoint(best_path, payload)
    if state.finished:
        payload.pop("model_state")
    else:
        payload.update({"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
                        **({"ema_state": ema.state_dict()} if ema is not None else {}),
                        **({"scaler_state": scaler.state_dict()} if scaler is not None else {}),
                        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
                        "rng": rng_state(train_loader)})
    save_checkpoint(last_path, payload)


def validate_epoch(model: torch.nn.Module, val_loader, device: torch.device, amp: str, classes: list[str]) -> dict:
    """The epoch's validation figures (without TTA: the best epoch is chosen on plain predictions)."""
    probs, targets, val_loss = predict(model, val_loader, device, amp, progress=False)
    m = compute_metrics(targets, probs.argmax(1), classes)
    return {"val_loss": val_loss, "val_micro_f1": m["micro_f1"], "val_macro_f1": m["macro_f1"],
            "val_accuracy": m["accuracy"]}


def fit(model: torch.nn.Module, train_loader: DataLoader, val_loader: DataLoader, *, epochs: int,
        optimizer: torch.optim.Optimizer, scheduler=None, device: torch.device | str = "cpu",
        amp: str = "off", monitor: str = "val_micro_f1", patience: int = 0,
        checkpoint_dir: str | Path, history_csv: str | Path | None = None, classes: list[str],
        meta: dict | None = None, resume: bool = True, progress: bool | None = None,
        after_epoch: Callable[[int], None] | None = None, label_smoothing: float = 0.0,
        batch_transform: Callable | None = None, export_path: str | Path | None = None,
        ema_decay: float = 0.0) -> FitResult:
    """Train ``model``; keep ``best.pt`` (by ``monitor``) and ``last.pt`` in ``checkpoint_dir``.

    Each checkpoint holds the model state, class names, ``meta`` (the run's parameters), the epoch,
    its metrics and the history, as tensors and plain data only (loaded with ``weights_only=True``).
    While the run goes on, ``last.pt`` also holds the optimizer, scheduler and RNG states; with
    ``resume``, a ``last.pt`` whose ``meta`` matches continues from the epoch after it, exactly as an
    uninterrupted run (``resumed_state``). Once the run is finished (last epoch or early stop), ``last.pt`` is
    rewritten without those states, still marked finished, so a re-run with the same parameters returns
    at once. The model ends with the best epoch's weights, provably (``load_best_weights``): those it
    holds when its last epoch was the best, else ``best.pt``'s, else those of the finished run's export
    ``export_path``, each only when it records the best epoch and the run's fingerprint; when none
    does, ``BestWeightsLost`` is raised (``experiment.train_model`` then trains the run again).

    ``ema_decay`` > 0 keeps an exponential moving average of the weights (torch's ``AveragedModel`` with
    ``get_ema_multi_avg_fn``, buffers included), updated after every step: each epoch validates the
    average, the best epoch is chosen on it, and the model ends with the best average's weights.

    ``amp`` (the ``amp`` parameter) is decided for ``device`` by ``devices.amp_mode``; the mode used is
    ``meta``'s ``amp_used`` (part of the fingerprint: a run is resumed only in the precision it began in)
    and the result's ``amp``. Under fp16, a ``torch.amp.GradScaler`` scales the loss, its state is saved in
    ``last.pt`` (a resumed run continues exactly) and the history gains ``skipped_steps``: the steps of
    each epoch the scaler skipped because their gradients overflowed.

    The loss is cross-entropy with ``label_smoothing``; ``batch_transform`` (MixUp/CutMix) mixes each
    training batch (see ``train_epoch``). A scheduler with ``per_step`` (``WarmupCosine``) is stepped
    after every batch, any other after every epoch. The history's ``lr`` is the largest group's LR at
    the start of the epoch.

    After each epoch ``console.report_epoch`` reports it under ``meta``'s ``run_name`` (else the
    checkpoint folder's name), with an ETA from the mean epoch time so far.
    """
    device = torch.device(device)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    best_path, last_path = checkpoint_dir / "best.pt", checkpoint_dir / "last.pt"
    amp = amp_mode(amp, device)
    scaler = grad_scaler(device, amp)
    meta = {**(meta or {}), "amp_used": amp}
    fingerprint = params_fingerprint({**meta, "epochs": epochs, "monitor": monitor, "patience": patience})
    show = progress_enabled(progress)
    run_name = str(meta.get("run_name") or checkpoint_dir.name)
    model = to_training_device(model, device)
    ema = averaged_model(model, ema_decay)
    evaluated = ema.module if ema is not None else model
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    per_step = bool(getattr(scheduler, "per_step", False))
    state = (resumed_state(last_path, fingerprint, model, optimizer, scheduler, train_loader, ema, scaler) if resume
             else FitState())
    trained_epoch = None  # the last epoch trained in this call: the weights the model holds

    for epoch in range(state.next_epoch, epochs + 1):
        if state.finished:
            break
        start = time.perf_counter()
        batches = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", disable=not show, leave=False)
        lr = max(group["lr"] for group in optimizer.param_groups)
        train_loss, train_accuracy, seen, skipped = train_epoch(
            model, batches, optimizer, loss_fn, device, amp, batch_transform, scheduler if per_step else None,
            (lambda: ema.update_parameters(model)) if ema is not None else None, scaler)
        train_seconds = time.perf_counter() - start
        if scheduler is not None and not per_step:
            scheduler.step()
        row = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
               **validate_epoch(evaluated, val_loader, device, amp, classes), "lr": lr,
               **({"skipped_steps": skipped} if scaler is not None else {}),
               "seconds": time.perf_counter() - start, "train_images_per_s": seen / train_seconds}
        improved = record_epoch(state, row, monitor, patience, epochs)
        trained_epoch = epoch
        save_epoch(state, improved, model, optimizer, scheduler, train_loader, best_path=best_path,
                   last_path=last_path, classes=classes, meta=meta, fingerprint=fingerprint, ema=ema, scaler=scaler)
        if history_csv is not None:
            write_csv(history_csv, pd.DataFrame(state.history))
        log.debug("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items() if k != "epoch"})
        done_seconds = [h["seconds"] for h in state.history]
        epochs_left = 0 if state.finished else epochs - epoch
        report_epoch(run_name, epoch, epochs, train_loss, row["val_micro_f1"], row["train_images_per_s"],
                     sum(done_seconds) / len(done_seconds) * epochs_left)
        if after_epoch is not None:
            after_epoch(epoch)

    if history_csv is not None and state.history:
        write_csv(history_csv, pd.DataFrame(state.history))  # also when a finished run was only reloaded
    weights_from = load_best_weights(model, state.best_epoch, fingerprint, trained_epoch=trained_epoch,
                                     best_path=best_path, export_path=export_path, device=device)
    if weights_from == "memory" and ema is not None:
        model.load_state_dict(ema.module.state_dict())  # the best epoch's weights are the average's
    return FitResult(pd.DataFrame(state.history), state.best_epoch, state.best_score, best_path, last_path,
                     str(device), state.resumed_from, state.finished, fingerprint, weights_from, amp)


def averaged_model(model: torch.nn.Module, decay: float) -> torch.nn.Module | None:
    """The exponential moving average of ``model``'s weights and buffers (``decay`` 0: none)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def load_best_weights(model: torch.nn.Module, best_epoch: int, fingerprint: str, *, trained_epoch: int | None,
                      best_path: Path, export_path: str | Path | None, device) -> str:
    """Put the best epoch's weights in ``model`` from a source that proves it is that epoch's: the model
    itself when ``trained_epoch`` (the epoch it last trained) is the best; ``best.pt`` or the export when it
    records ``best_epoch`` and ``fingerprint``. Returns the source; raises ``BestWeightsLost`` otherwise."""
    if trained_epoch is not None and trained_epoch == best_epoch:
        return "memory"
    found = []
    if best_path.exists():
        ckpt = load_checkpoint(best_path, map_location=device, required=WEIGHTS_KEYS)
        if ckpt.get("epoch") == best_epoch and ckpt.get("fingerprint") == fingerprint:
            model.load_state_dict(ckpt["model_state"])
            return best_path.name
        found.append(f"{best_path} holds epoch {ckpt.get('epoch')}"
                     + ("" if ckpt.get("fingerprint") == fingerprint else " of other parameters"))
    else:
        found.append(f"{best_path} is missing")
    if export_path is not None and Path(export_path).exists():
        try:
            payload = read_export(Path(export_path))
        except ExportError as exc:
            found.append(str(exc))
        else:
            if payload.get("epoch") == best_epoch and payload.get("fingerprint") == fingerprint:
                load_weights(model, export_path)
                return Path(export_path).name
            found.append(f"{export_path} holds epoch {payload.get('epoch')}"
                         + ("" if payload.get("fingerprint") == fingerprint else " of other parameters"))
    elif export_path is not None:
        found.append(f"{export_path} is missing")
    raise BestWeightsLost(f"the best epoch's (epoch {best_epoch}) weights cannot be had: {'; '.join(found)}")
