"""Opt-in experiment tracking: parameter ``tracking: none | tensorboard`` (default ``none``).

With ``tracking: tensorboard`` a training run's last cells log, to a local store under
``outputs/<profile>/tracking/<run>/`` (TensorBoard event files; no server, no network):

- its parameters (TensorBoard's HParams tab, beside the final metrics, so runs and sweep points compare
  in one table; and as a text table),
- every epoch's metrics from the run's history (``epoch/val_micro_f1``, ``epoch/train_loss``, ... at
  step = epoch, with the epochs' own wall-clock times),
- the final metrics (``final/micro_f1``, ``final/macro_f1``, ``final/accuracy``, ...),
- the run's figures (learning curves, confusion matrix, ...) in the Images tab.

The store is written into a temporary folder and moved into place when complete; a run that executes
again replaces its own store. ``make tracking-ui PROFILE=demo`` opens it (TensorBoard comes with the
``tracking`` extra: ``pip install -e '.[tracking]'``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..config.files import read_json
from ..config.paths import RunPaths

FINAL = ("micro_f1", "macro_f1", "accuracy", "last_epoch_val_micro_f1", "last_epoch_val_macro_f1", "best_epoch",
         "epochs_trained", "train_seconds")


def store_dir(rp: RunPaths) -> Path:
    """The profile's tracking store (``outputs/<profile>/tracking``): TensorBoard's ``--logdir``."""
    return rp.profile_dir / "tracking"


def run_dir(rp: RunPaths) -> Path:
    return store_dir(rp) / rp.run


def _hparam_value(value):
    if isinstance(value, bool) or isinstance(value, (int, float, str)):
        return value
    return json.dumps(value)


def log_run(p: Mapping, rp: RunPaths) -> Path | None:
    """Log the finished run ``rp`` (parameters ``p``) to the tracking store; None when tracking is off."""
    if p.get("tracking", "none") == "none":
        return None
    if p["tracking"] != "tensorboard":
        raise ValueError(f"parameter 'tracking': {p['tracking']!r} is not supported here (none or tensorboard)")
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    metrics = read_json(rp.metrics_json)
    history = pd.read_csv(rp.history_csv) if rp.history_csv.is_file() else pd.DataFrame()
    target = run_dir(rp)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{rp.run}.", dir=target.parent))
    try:
        writer = SummaryWriter(log_dir=str(partial))
        final = {f"final/{k}": float(metrics[k]) for k in FINAL if isinstance(metrics.get(k), (int, float))}
        values = {k: _hparam_value(v) for k, v in p.items() if k not in ("profile",)}
        for summary in hparams(values, final):
            writer.file_writer.add_summary(summary)
        rows = "\n".join(f"| {k} | `{json.dumps(v)}` |" for k, v in p.items())
        writer.add_text("parameters", f"| parameter | value |\n|---|---|\n{rows}")
        for _, row in history.iterrows():
            epoch = int(row["epoch"])
            for col, value in row.items():
                if col != "epoch" and pd.notna(value):
                    writer.add_scalar(f"epoch/{col}", float(value), global_step=epoch)
        for key, value in final.items():
            writer.add_scalar(key, value, global_step=int(metrics.get("epochs_trained") or 0))
        for figure in sorted(rp.figures.glob(f"{rp.run}_*.png")):
            with Image.open(figure) as img:
                writer.add_image(f"figures/{figure.stem.removeprefix(rp.run + '_')}",
                                 np.asarray(img.convert("RGB")), dataformats="HWC")
        writer.close()
        old = target.with_name(f".{rp.run}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        partial.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"tracked in {target} (TensorBoard: make tracking-ui PROFILE={rp.profile})")
    return target
