"""What the optimizer trains and how its learning rate moves: parameter groups (layer-wise LRs, no
weight decay on normalisation weights and biases), the optimizers and the schedules."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

from ..config.choices import OPTIMIZERS, SCHEDULERS
from .models import TransferModel, backbone_stages


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


def no_decay_split(groups: list[dict], weight_decay: float) -> list[dict]:
    """Each group split in two, as current fine-tuning recipes do (timm's ``param_groups_weight_decay``,
    the ConvNeXt and DeiT recipes): its weights of two or more dimensions keep ``weight_decay``; its 1-D
    parameters (biases, BatchNorm and LayerNorm weights) get none. Empty halves are left out; each
    half keeps the group's other settings and is named ``<name>`` or ``<name> (no decay)``."""
    out = []
    for group in groups:
        decay = [p for p in group["params"] if p.ndim > 1]
        no_decay = [p for p in group["params"] if p.ndim <= 1]
        name = group.get("name", "all trainable parameters")
        if decay:
            out.append({**group, "params": decay, "weight_decay": weight_decay, "name": name})
        if no_decay:
            out.append({**group, "params": no_decay, "weight_decay": 0.0, "name": f"{name} (no decay)"})
    return out


def parameter_groups(model: torch.nn.Module, p) -> torch.nn.Module | list[dict]:
    """What the optimizer trains, from the run's parameters: layer-wise LR groups of a transfer model's
    stages when ``lr_decay`` < 1 (``models.backbone_stages``), else the model itself (one LR)."""
    if p["lr_decay"] == 1.0 or not isinstance(model, TransferModel):
        return model
    return layerwise_param_groups(backbone_stages(model), p["lr"], p["lr_decay"])


def build_optimizer(model: torch.nn.Module | Iterable[dict], name: str, lr: float, weight_decay: float = 0.0,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """The optimizer over ``model``'s trainable parameters (one group at ``lr``), or over parameter
    groups (``layerwise_param_groups``: each group's own ``lr``). With ``weight_decay`` > 0, each group
    is split so that its 1-D parameters (biases, normalisation weights) get no weight decay, as current
    fine-tuning recipes do (``no_decay_split``)."""
    params = ([p for p in model.parameters() if p.requires_grad] if isinstance(model, torch.nn.Module)
              else list(model))
    if weight_decay > 0:
        groups = params if params and isinstance(params[0], dict) else [{"params": params, "lr": lr}]
        params = no_decay_split(groups, weight_decay)
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


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
    raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, not {name!r}")
