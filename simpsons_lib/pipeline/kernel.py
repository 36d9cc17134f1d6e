"""The Jupyter kernel the pipeline runs notebooks in: the project's own, with this checkout's library."""

from __future__ import annotations

import os
import sys

from ..config import paths

KERNEL_NAME = "simpsons-study"
DISPLAY_NAME = "Python (simpsons-study)"


def ensure_kernel() -> str:
    """The project environment's own kernel (installed into this environment if missing)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL_NAME not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install

        install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=sys.prefix)
    return KERNEL_NAME


def prepare_environment(progress_file: str | None = None) -> None:
    """Set what the kernels inherit from this process: no progress bars in executed notebooks (epoch
    lines go to ``progress_file``, which the pipeline prints), and this checkout first on their
    ``PYTHONPATH``, so they import the same library as this process (not an editable install made from
    another copy of the repository)."""
    os.environ["SIMPSONS_PROGRESS"] = "0"
    if progress_file:
        os.environ["SIMPSONS_PROGRESS_FILE"] = progress_file
    root = str(paths.PROJECT_ROOT)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *rest])


def client_config():
    """Encrypt the local kernel connection (CurveZMQ) where pyzmq and jupyter_client support it; recent
    ipykernels otherwise warn at every start that the connection is plain TCP."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
        config.KernelManager.transport_encryption = "auto"  # only for kernelspecs that declare support
    return config
