"""What a run's record depends on, and so when it must be redone: the one place that states the rule.

Every run has two fingerprints:

- **training** — the parameters that shape the weights (``params.Spec.trains``), the library modules
  that train (``TRAINING_MODULES``) and the data (file names and sizes). A checkpoint is resumed or
  reused only when its training fingerprint matches: a change here retrains.
- **render** — the notebook, every library module, and every parameter. A change here (a figure, the
  report, the pipeline) re-executes the notebook, which reuses the finished checkpoint. The index
  page's own code (``INDEX_MODULES`` and its template) only rebuilds the index page.

``make`` sees both through ``outputs/<profile>/.plan/<run>.key``: the plan step rewrites a key file
only when its content changes, so a run re-executes exactly when its record no longer matches its
inputs. The runs a run reads (``worst_from_run``, ``runs``) are make prerequisites, so a re-run
upstream re-runs what depends on it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Mapping

LIBRARY_DIR = Path(__file__).resolve().parent

# Library modules whose code shapes the trained weights. Everything else (plots, report, index page,
# pipeline, manifest, kernel plumbing, submission, predict, params' help texts) only re-renders.
TRAINING_MODULES = ("data", "datasets", "demo_data", "image_cache", "models", "parallel", "study", "train",
                    "transforms", "experiment", "evaluate")
# Modules that only make the index page (make rebuilds it from their files, no notebook re-runs).
INDEX_MODULES = ("index_page",)


def _hash(*parts: bytes | str) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def code_fingerprint(modules: Iterable[str] | None = None) -> str:
    """Hash of the named library modules' source (all but ``INDEX_MODULES`` when None)."""
    files = ([f for f in sorted(LIBRARY_DIR.glob("*.py")) if f.stem not in INDEX_MODULES] if modules is None
             else [LIBRARY_DIR / f"{m}.py" for m in sorted(modules)])
    return _hash(*(f.name.encode() + f.read_bytes() for f in files if f.is_file()))


def data_fingerprint(folders: Iterable[Path | None]) -> dict:
    """File names and sizes of the data folders (not contents: fast on 21k files)."""
    h = hashlib.sha1()
    n = 0
    for folder in filter(None, folders):
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(folder)}|{p.stat().st_size}\n".encode())
                n += 1
    return {"files": n, "sha1": h.hexdigest()}


def training_fingerprint(training_values: Mapping, data_sha1: str | None = None) -> str:
    """What must match for a checkpoint to be resumed or reused (see the module's rule)."""
    return _hash(json.dumps(dict(training_values), sort_keys=True, default=str), code_fingerprint(TRAINING_MODULES),
                 data_sha1 or "")


def render_fingerprint(values: Mapping, notebook: Path) -> str:
    """What must match for an executed notebook and its reports to stand (see the module's rule)."""
    return _hash(json.dumps(dict(values), sort_keys=True, default=str), Path(notebook).read_bytes(),
                 code_fingerprint())


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` only when it differs (so make sees a change only when there is one)."""
    from .io_utils import write_text

    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(path, text)
    return True
