"""What the library says to a person while it works: log setup, whether progress bars show, and the
training progress events (torch-free).

``training.loop.fit`` calls ``report_epoch`` after each epoch. When the environment variable
``SIMPSONS_PROGRESS_FILE`` names a file (the pipeline sets it while papermill executes a notebook), the
event is appended to it as one JSON line, flushed at once, and nothing is printed into the notebook;
otherwise the line is logged (INFO). ``pipeline.progress.follow`` tails such a file and prints each
event as ``epoch_line`` formats it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

PROGRESS_FILE_ENV = "SIMPSONS_PROGRESS_FILE"
EVENT_FIELDS = ("run", "epoch", "total", "train_loss", "val_micro_f1", "images_per_s", "eta_seconds")


def format_duration(seconds: float | None) -> str:
    """``0:42``, ``12:05``, ``1:02:03``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_line(run: str, epoch: int, total: int, train_loss: float, val_micro_f1: float, images_per_s: float,
               eta_seconds: float | None) -> str:
    """One epoch in one line, e.g.
    ``[mid_cnn] epoch 3/6  loss 1.234  val micro-F1 0.456  812 img/s  ETA 0:42``."""
    return (f"[{run}] epoch {epoch}/{total}  loss {train_loss:.3f}  val micro-F1 {val_micro_f1:.3f}  "
            f"{images_per_s:.0f} img/s  ETA {format_duration(eta_seconds)}")


def report_epoch(run: str, epoch: int, total: int, train_loss: float, val_micro_f1: float, images_per_s: float,
                 eta_seconds: float | None) -> dict:
    """Report one finished epoch and return its event (the ``EVENT_FIELDS`` plus ``time``).

    With ``SIMPSONS_PROGRESS_FILE`` set, the event is appended to that file as one JSON line and flushed
    (nothing is printed); without it, its ``epoch_line`` is logged at INFO."""
    event = {"run": str(run), "epoch": int(epoch), "total": int(total), "train_loss": float(train_loss),
             "val_micro_f1": float(val_micro_f1), "images_per_s": float(images_per_s),
             "eta_seconds": None if eta_seconds is None else float(eta_seconds), "time": time.time()}
    target = os.environ.get(PROGRESS_FILE_ENV)
    if target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:  # one write per line: lines of concurrent runs don't mix
            f.write(json.dumps(event) + "\n")
            f.flush()
    else:
        log.info(epoch_line(**{k: event[k] for k in EVENT_FIELDS}))
    return event



def progress_enabled(progress: bool | None = None) -> bool:
    """Progress bars on, unless turned off here or by ``SIMPSONS_PROGRESS=0`` (the pipeline sets it, so
    executed notebooks don't fill up with progress lines)."""
    if progress is not None:
        return progress
    return os.environ.get("SIMPSONS_PROGRESS", "1") != "0"


def setup_logging(level: int = 20, width: int = 110) -> None:
    """Show the library's INFO/WARNING messages (e.g. skipped files, resume) in a notebook or terminal,
    wrapped at ``width`` characters so that a long list stays readable in a report."""
    import logging
    import sys
    import textwrap

    class Wrapped(logging.Formatter):
        def format(self, record):
            return textwrap.fill(super().format(record), width, subsequent_indent="    ", break_on_hyphens=False)

    logger = logging.getLogger("simpsons_lib")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(Wrapped("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
