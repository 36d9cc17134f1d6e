"""Training progress for the terminal: one event per epoch.

``train.fit`` calls ``report_epoch`` after each epoch. When the environment variable
``SIMPSONS_PROGRESS_FILE`` names a file (the pipeline sets it while papermill executes a notebook), the
event is appended to it as one JSON line, flushed at once, and nothing is printed into the notebook;
otherwise the line is logged (``simpsons_lib.progress``, INFO). ``follow`` tails such a file and prints
each event as ``epoch_line`` formats it; the pipeline runs it in a thread beside the notebook.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

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


def format_event(line: str) -> str | None:
    """The ``epoch_line`` of one JSON line of a progress file; None when it is not an event."""
    try:
        event = json.loads(line)
        return epoch_line(**{k: event[k] for k in EVENT_FIELDS})
    except (ValueError, TypeError, KeyError):
        return None


def follow(path: str | os.PathLike, stop_event: threading.Event, out: TextIO | None = None,
           poll_seconds: float = 0.2) -> int:
    """Print the ``epoch_line`` of each event appended to ``path`` as it arrives, until ``stop_event`` is
    set; the lines written before it is set are all printed. Returns the number of events printed.

    Meant for a thread: ``threading.Thread(target=follow, args=(path, stop), daemon=True)``. The file
    need not exist yet; a line is printed only once it is complete (ends in a newline); lines that are
    not events are skipped; a file that shrinks (replaced by a new run) is read again from its start.
    """
    out = out if out is not None else sys.stdout
    path = Path(path)
    offset, pending, printed = 0, b"", 0
    while True:
        stopping = stop_event.is_set()  # read before the file, so a last line written before stop is seen
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = None
        if size is not None:
            if size < offset:
                offset, pending = 0, b""
            if size > offset:
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read(size - offset)
                offset += len(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    text = format_event(raw.decode("utf-8", errors="replace"))
                    if text is not None:
                        print(text, file=out, flush=True)
                        printed += 1
        if stopping:
            return printed
        stop_event.wait(poll_seconds)
