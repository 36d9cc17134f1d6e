"""The one place that knows where things live.

``SIMPSONS_DATA_DIR`` and ``SIMPSONS_OUTPUTS_DIR`` override the defaults (``data/`` and ``outputs/``
under the project root); everything else is derived from these.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = PROJECT_ROOT / "params"


def data_dir() -> Path:
    """Root under which the Kaggle data (``data/kaggle``) and demo data (``data/demo``) live."""
    return Path(os.environ.get("SIMPSONS_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def outputs_dir() -> Path:
    """Root of everything the study generates; one sub-folder per profile."""
    return Path(os.environ.get("SIMPSONS_OUTPUTS_DIR", PROJECT_ROOT / "outputs")).resolve()


def kaggle_data_dir() -> Path:
    return data_dir() / "kaggle"


def demo_data_dir() -> Path:
    return data_dir() / "demo"


def cache_dir() -> Path:
    """Decoded-image caches, shared by all runs and profiles (keyed by a data fingerprint)."""
    return outputs_dir() / "cache"


class RunPaths:
    """Where one run (e.g. ``simple_cnn_aug``) of one profile (e.g. ``demo``) writes its outputs."""

    def __init__(self, profile: str, run: str, root: Path | None = None):
        self.profile = profile
        self.run = run
        self.profile_dir = Path(root) if root is not None else outputs_dir() / profile

    @property
    def figures(self) -> Path:
        return self.profile_dir / "figures"

    @property
    def metrics(self) -> Path:
        return self.profile_dir / "metrics"

    @property
    def models(self) -> Path:
        return self.profile_dir / "models" / self.run

    @property
    def reports(self) -> Path:
        return self.profile_dir / "reports"

    @property
    def manifests(self) -> Path:
        return self.profile_dir / "manifests"

    @property
    def notebooks(self) -> Path:
        return self.profile_dir / "notebooks"

    def figure(self, name: str) -> Path:
        return self.figures / f"{self.run}_{name}.png"

    @property
    def metrics_json(self) -> Path:
        return self.metrics / f"{self.run}.json"

    @property
    def history_csv(self) -> Path:
        return self.metrics / f"{self.run}_history.csv"

    @property
    def predictions_csv(self) -> Path:
        return self.metrics / f"{self.run}_val_predictions.csv"

    @property
    def submission_csv(self) -> Path:
        return self.profile_dir / "submission.csv"

    def files(self) -> list[Path]:
        """Everything this run has written so far (figures, metrics, checkpoints), sorted."""
        found = [p for d in (self.figures, self.metrics) for p in d.glob(f"{self.run}[_.]*")]
        found += list(self.models.glob("*")) if self.models.exists() else []
        return sorted(p for p in found if p.is_file() and not p.name.startswith("."))

    def make_dirs(self) -> "RunPaths":
        for d in (self.figures, self.metrics, self.models, self.reports, self.manifests, self.notebooks):
            d.mkdir(parents=True, exist_ok=True)
        return self


def run_paths(p, run: str | None = None) -> RunPaths:
    """Output folders of a run of profile ``p["profile"]`` (``outputs/<profile>/...``), created; ``run``
    defaults to ``p["run_name"]``."""
    return RunPaths(p["profile"], run or p["run_name"]).make_dirs()
