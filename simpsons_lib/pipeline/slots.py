"""GPU slots: with several GPUs visible, the runs that do not read each other train at the same time, one
per GPU.

``count()`` is the number of slots: ``SIMPSONS_GPU_SLOTS`` when set (0 or 1: no slots), else the number of
CUDA GPUs this process may use, counted by torch in a child process (this one never initialises CUDA), and 0
at once where no GPU driver is present. ``locked`` (the runner) gives make one job per slot and passes the
count on to the runs in their environment, so they do not count again. ``held`` is one run's slot: a lock
file per GPU under the profile's ``.plan/``, taken with ``fcntl.flock`` (the system frees it when the run's
process ends, however it ends), and the GPU it stands for, which the run's kernel sees as its only one
through ``CUDA_VISIBLE_DEVICES``. With no slots (one GPU or none), nothing is locked and nothing is set: the
runs see the GPUs as before.

Each hold is appended to ``.plan/gpu-slots.log`` when it ends: run, slot, device, and the times (Unix
seconds) the slot was taken and given back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..config.params import ParameterError

ENV = "SIMPSONS_GPU_SLOTS"
LOG_NAME = "gpu-slots.log"
# Where a GPU driver shows itself (NVIDIA, WSL's GPU bridge, ROCm); with none of them there is nothing to count.
_DRIVER_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")


@dataclass(frozen=True)
class Slot:
    index: int
    device: str  # what CUDA_VISIBLE_DEVICES is set to for the run

    def record(self) -> dict:
        return {"slot": self.index, "cuda_visible_devices": self.device}


def count() -> int:
    """The number of GPU slots (see the module's text)."""
    value = os.environ.get(ENV, "").strip()
    if value:
        if not value.isdigit():
            raise ParameterError(f"{ENV}={value!r}: must be a whole number of GPUs (0 or 1: one run at a time)")
        return int(value)
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    if not any(os.path.exists(node) for node in _DRIVER_NODES):
        return 0
    try:
        found = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                               capture_output=True, text=True, timeout=300)
        return int(found.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return 1  # unknown: one run at a time, as without slots


def devices(n: int) -> list[str]:
    """What each of ``n`` slots sets ``CUDA_VISIBLE_DEVICES`` to: this process's own list when it has one
    (``2,3`` gives slots ``2`` and ``3``; more slots than it names share its GPUs), else the GPUs' indices."""
    own = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return [own[i % len(own)] if own else str(i) for i in range(n)]


@contextlib.contextmanager
def held(folder: Path, run: str, n: int | None = None, poll_seconds: float = 0.2) -> Iterator[Slot | None]:
    """Take a free slot of ``n`` (``count()``) for ``run``, waiting while all are taken; set
    ``CUDA_VISIBLE_DEVICES`` to its GPU for the processes started meanwhile (the run's kernel); give it
    back at the end. Yields None, and does nothing, with fewer than two slots."""
    n = count() if n is None else n
    if n < 2:
        yield None
        return
    handle, slot = _take(folder, run, n, poll_seconds)
    acquired = time.time()
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = slot.device
    try:
        yield slot
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
        with handle:
            handle.truncate(0)
            with open(folder / LOG_NAME, "a", encoding="utf-8") as log:  # one short line: appended whole
                log.write(f"{run}\t{slot.index}\t{slot.device}\t{acquired:.3f}\t{time.time():.3f}\n")


def _take(folder: Path, run: str, n: int, poll_seconds: float):
    """The open, locked file of the first free slot, and the slot (waiting until one is free)."""
    folder.mkdir(parents=True, exist_ok=True)
    names, said = devices(n), False
    while True:
        for index in range(n):
            handle = open(folder / f"gpu-{index}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.truncate(0)
            handle.write(f"{run} pid {os.getpid()}\n")
            handle.flush()
            return handle, Slot(index, names[index])
        if not said:
            print(f"[{run}] waiting for a free GPU slot (all {n} taken)", flush=True)
            said = True
        time.sleep(poll_seconds)


def read_log(folder: Path) -> list[dict]:
    """The holds ``held`` logged in ``folder``, oldest first."""
    try:
        lines = (folder / LOG_NAME).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        run, index, device, acquired, released = line.split("\t")
        out.append({"run": run, "slot": int(index), "device": device, "acquired": float(acquired),
                    "released": float(released)})
    return out


def make_command(command: list[str], n: int, makeflags: str | None = None) -> list[str]:
    """``command`` (a make) with ``-j<n>`` added when there are several slots and the user's make was given
    no ``-j`` of its own (``MAKEFLAGS``: then its job server is passed on instead, ``jobserver_fds``)."""
    makeflags = os.environ.get("MAKEFLAGS", "") if makeflags is None else makeflags
    if n < 2 or not command or "--jobserver" in makeflags or any(w.startswith("-j") for w in makeflags.split()):
        return command
    return [command[0], f"-j{n}", *command[1:]]


def jobserver_fds(makeflags: str | None = None) -> tuple[int, ...]:
    """The job server's pipe of the make above (``make -j4 pipeline``: ``--jobserver-auth=3,4`` in GNU make
    4.3), to keep open in the command so that its make runs jobs in parallel too; () when there is none
    (or it is a named pipe, GNU make 4.4, which needs nothing)."""
    makeflags = os.environ.get("MAKEFLAGS", "") if makeflags is None else makeflags
    found = re.search(r"--jobserver-(?:auth|fds)=(\d+),(\d+)", makeflags)
    if not found:
        return ()
    fds = tuple(int(f) for f in found.groups())
    try:
        for fd in fds:
            os.fstat(fd)
    except OSError:
        return ()
    return fds
