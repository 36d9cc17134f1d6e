"""Training progress for the terminal: ``follow`` tails a run's progress file (``config.console``'s
events, one JSON line per epoch) and prints each event as ``epoch_line`` formats it; the pipeline runs
it in a thread beside the notebook.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from ..config.console import EVENT_FIELDS, epoch_line


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


@contextlib.contextmanager
def printing(folder: str | os.PathLike, name: str, out: TextIO | None = None):
    """A new progress file in ``folder`` (named after ``name``) that a kernel appends epoch events to,
    printed to ``out`` (stdout) as they arrive (``follow``, in a thread); removed at the end."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=f"{name}.", suffix=".progress", dir=folder)
    os.close(fd)
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(path, stop, out), daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(timeout=5)
        Path(path).unlink(missing_ok=True)
