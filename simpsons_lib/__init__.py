"""Shared library of the Simpsons character study, in wings by concern; imports go down the layers only
(checked by ``make test`` with import-linter's layers contract in ``pyproject.toml``):

- ``pipeline`` — plan, preflight, record (when a run is redone), manifests, the kernel, progress lines,
  the Kaggle CLI (``make data``, ``make submit``).
- ``reporting`` — tables, narrative text, plots, Grad-CAM, the report's computations, the index page.
- ``inference`` — predictions for any images, ensembles, the submission.
- ``training`` — models, transforms, the loop, optimizers and schedules, checkpoints and the export,
  the one prediction loop and metrics, the run wiring. Shapes the weights.
- ``data`` — the Kaggle layout, index, split, decode-once cache, datasets, the drawn demo data.
  Shapes the weights.
- ``config`` — parameters (schema, allowed values, resolution), paths, atomic files, console (torch-free).

A run's training key hashes the code of ``data`` and ``training`` (``training.fingerprint``): editing any
other wing re-renders the notebooks and never retrains.
"""

__version__ = "0.1.0"
