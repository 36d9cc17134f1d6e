"""Running one function over many files on every core, with the results in input order.

Opening a small image is partly Python (header parsing, object set-up) holding the GIL, so threads
stop scaling after a few cores; with many files and cores on Linux the work goes to forked processes
instead, as PyTorch's DataLoader workers do (the workers run PIL and NumPy only, never CUDA).
The number of workers is, by default, the CPUs this process may use (``available_cpus``), not the
machine's: a notebook platform or a container often grants fewer than the host has.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

PROCESS_MIN_ITEMS = 2000  # below this, starting processes costs more than it saves
FORK = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def available_cpus() -> int:
    """The CPUs this process may use: those it may run on (``os.sched_getaffinity``, where the system
    has it; else ``os.cpu_count``), no more than a container's CPU quota (cgroup v2 ``cpu.max``, as
    ``docker --cpus`` sets it) rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cpus = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, -(-int(quota) // int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        pass
    return max(1, cpus)


def map_chunks(func: Callable[[list[T]], R], items: Sequence[T], chunk: int = 64, workers: int | None = None,
               processes: bool | None = None) -> Iterator[R]:
    """``func(items[i:i + chunk])`` for consecutive chunks, yielded in order while later chunks are
    computed ``workers`` at a time (default: ``available_cpus``; at most ``2 * workers`` chunks ahead
    of the consumer).

    ``processes``: True for forked worker processes (``func`` must be a module-level function or a
    ``functools.partial`` of one), False for threads, None for processes when fork is available (Linux)
    and there are more than two cores and at least ``PROCESS_MIN_ITEMS`` items."""
    items = list(items)
    workers = workers or available_cpus()
    if processes is None:
        processes = FORK and workers > 2 and len(items) >= PROCESS_MIN_ITEMS
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    pool: Executor = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) if processes
                      else ThreadPoolExecutor(workers))
    window = 2 * workers
    with pool:
        pending = deque(pool.submit(func, c) for c in chunks[:window])
        for i in range(len(chunks)):
            result = pending.popleft().result()
            if i + window < len(chunks):
                pending.append(pool.submit(func, chunks[i + window]))
            yield result
