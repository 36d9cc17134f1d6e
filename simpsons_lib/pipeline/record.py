"""What a run's record depends on, and so when it must be redone: the one place that states the rule.

Every run has two fingerprints:

- **training** — the parameters that shape the weights (``params.Spec.trains``), the data (file names
  and sizes) and the code of the wings that shape weights (``simpsons_lib.data`` and
  ``simpsons_lib.training``, by package membership: ``training.fingerprint``). A checkpoint is resumed
  or reused only when its training fingerprint matches: a change here retrains.
- **render** — the notebook, every parameter and the library's code except the index page's
  (``reporting/index_page.py`` and its templates, ``INDEX_PAGE_FILES``). A change here (a figure, the
  report, a table's wording, the pipeline) re-executes the notebook, which reuses the finished
  checkpoint. The index page's own code only rebuilds the index page.

``make`` sees both through ``outputs/<profile>/.plan/<run>.key``: the plan step rewrites a key file
only when its content changes, so a run re-executes exactly when its record no longer matches its
inputs. The runs a run reads (``worst_from_run``, ``runs``) are make prerequisites, so a re-run
upstream re-runs what depends on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from ..config import params, paths
from ..config.files import write_text
from ..data.layout import data_fingerprint, find_study_layout, resolve_data_dir
from ..training.fingerprint import (LIBRARY_DIR, WEIGHT_SHAPING_WINGS, code_fingerprint, digest,  # noqa: F401
                                   training_fingerprint, wing_files)

# The index page's own code: make rebuilds the index page from these, no notebook re-runs.
INDEX_PAGE_FILES = ("reporting/index_page.py",)


def render_code_files(library_dir: Path | None = None) -> list[Path]:
    """Every library file a notebook's output depends on: all ``*.py`` but the index page's."""
    root = Path(library_dir or LIBRARY_DIR)
    return sorted((f for f in root.rglob("*.py") if f.relative_to(root).as_posix() not in INDEX_PAGE_FILES),
                  key=lambda f: f.relative_to(root))


def render_fingerprint(values: Mapping, notebook: Path, library_dir: Path | None = None) -> str:
    """What must match for an executed notebook and its reports to stand (see the module's rule)."""
    return digest(json.dumps(dict(values), sort_keys=True, default=str), Path(notebook).read_bytes(),
                  code_fingerprint(render_code_files(library_dir), library_dir))


def run_keys(p: params.Params, data_sha1: str) -> dict:
    """A run's keys, the module's rule: its training fingerprint (a training run's; None otherwise), its
    render fingerprint and its data's fingerprint. The plan writes them, a manifest records them, ``status``
    and the sweeps compare them."""
    return {"training": training_fingerprint(params.training_values(p), data_sha1) if p.kind == "train" else None,
            "render": render_fingerprint(p, paths.PROJECT_ROOT / p.notebook), "data": data_sha1}


def study_keys(resolved: Mapping[str, params.Params]) -> tuple[dict, dict[str, dict]]:
    """Every run's keys (``run_keys``), each data folder found and fingerprinted once (file names and
    sizes): ``({data folder: its layout}, {run: keys})``."""
    layouts, sha1 = {}, {}
    for p in resolved.values():
        root = resolve_data_dir(p)
        if root not in layouts:
            layouts[root] = layout = find_study_layout(p)
            sha1[root] = data_fingerprint([layout.train_dir, layout.test_dir])["sha1"]
    return layouts, {run: run_keys(p, sha1[resolve_data_dir(p)]) for run, p in resolved.items()}


LIBRARY_WINGS = ("config", "data", "training", "inference", "reporting", "pipeline")


def code_digests(library_dir: Path | None = None) -> dict[str, str]:
    """One digest per wing of the library (its modules' paths and source; the index page's own files left
    out, as in the render fingerprint): a manifest records them, so ``status`` can say which wing changed."""
    root = Path(library_dir or LIBRARY_DIR)
    render = set(render_code_files(root))
    return {wing: code_fingerprint([f for f in wing_files([wing], root) if f in render], root) for wing in LIBRARY_WINGS}


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` only when it differs (so make sees a change only when there is one)."""
    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(path, text)
    return True
