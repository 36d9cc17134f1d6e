"""The one place that knows where things live.

``SIMPSONS_DATA_DIR``, ``SIMPSONS_OUTPUTS_DIR`` and ``SIMPSONS_PARAMS_DIR`` override the defaults
(``data/``, ``outputs/`` and ``params/`` under the project root). Without ``data/kaggle``, the Kaggle data
is looked for where Kaggle Notebooks mount the competition (``SIMPSONS_KAGGLE_INPUT``, default
``/kaggle/input``). ``StudyPaths(profile)`` answers every
path of a profile's outputs, and ``StudyPaths.run(name)`` every path of one of its runs.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = PROJECT_ROOT / "params"


def data_dir() -> Path:
    """Root under which the Kaggle data (``data/kaggle``) and demo data (``data/demo``) live."""
    return Path(os.environ.get("SIMPSONS_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def outputs_dir() -> Path:
    """Root of everything the study generates; one sub-folder per profile."""
    return Path(os.environ.get("SIMPSONS_OUTPUTS_DIR", PROJECT_ROOT / "outputs")).resolve()


def params_dir() -> Path:
    """Root of the profiles' parameter files (``params/<profile>/``)."""
    return Path(os.environ.get("SIMPSONS_PARAMS_DIR", PARAMS_DIR)).resolve()


def kaggle_data_dir() -> Path:
    return data_dir() / "kaggle"


KAGGLE_COMPETITION = "journey-springfield"


def kaggle_input_dir() -> Path:
    """Where Kaggle Notebooks mount their inputs, read-only (``SIMPSONS_KAGGLE_INPUT`` overrides it)."""
    return Path(os.environ.get("SIMPSONS_KAGGLE_INPUT", "/kaggle/input"))


def mounted_kaggle_data(input_dir: str | os.PathLike | None = None) -> Path | None:
    """The competition's folder as Kaggle Notebooks mount it, or None: ``<input>/journey-springfield``
    (older sessions), ``<input>/competitions/journey-springfield`` (newer ones), else any
    ``<input>/*/journey-springfield``."""
    root = Path(input_dir) if input_dir is not None else kaggle_input_dir()
    try:
        found = [root / KAGGLE_COMPETITION, root / "competitions" / KAGGLE_COMPETITION,
                 *sorted(root.glob(f"*/{KAGGLE_COMPETITION}"))]
        return next((p for p in found if p.is_dir()), None)
    except OSError:  # an unreadable input folder: nothing mounted that the study can read
        return None


def kaggle_data_source() -> Path:
    """The Kaggle data the study reads: ``data/kaggle`` when it exists (``make data``), else the
    competition where Kaggle mounts it (``mounted_kaggle_data``), else ``data/kaggle`` (whose absence
    the layout reports, saying how to get the data)."""
    local = kaggle_data_dir()
    return local if local.exists() else (mounted_kaggle_data() or local)


def demo_data_dir() -> Path:
    return data_dir() / "demo"


def cache_dir() -> Path:
    """Decoded-image caches, shared by all runs and profiles (keyed by a data fingerprint): ``outputs/cache``,
    or ``$SIMPSONS_CACHE_DIR`` (the tests share one across their temp outputs folders)."""
    return Path(os.environ.get("SIMPSONS_CACHE_DIR") or outputs_dir() / "cache").resolve()


class StudyPaths:
    """Every path of one profile's outputs (``outputs/<profile>/``)."""

    def __init__(self, profile: str, root: str | os.PathLike | None = None):
        self.profile = profile
        self.dir = Path(root) if root is not None else outputs_dir() / profile

    notebooks = property(lambda self: self.dir / "notebooks")
    reports = property(lambda self: self.dir / "reports")
    figures = property(lambda self: self.dir / "figures")
    metrics = property(lambda self: self.dir / "metrics")
    models = property(lambda self: self.dir / "models")
    manifests = property(lambda self: self.dir / "manifests")
    plan = property(lambda self: self.dir / ".plan")  # make's view: run keys and dependencies
    lock = property(lambda self: self.dir / ".lock")
    submission_csv = property(lambda self: self.dir / "submission.csv")
    submission_json = property(lambda self: self.metrics / "submission.json")
    evolution_csv = property(lambda self: self.metrics / "evolution.csv")
    index_html = property(lambda self: self.reports / "index.html")

    def run(self, name: str) -> RunPaths:
        return RunPaths(self, name)

    def make_dirs(self) -> StudyPaths:
        for d in (self.notebooks, self.reports, self.figures, self.metrics, self.manifests):
            d.mkdir(parents=True, exist_ok=True)
        return self


class RunPaths:
    """Every path of one run (e.g. ``simple_cnn_aug``) of a profile."""

    def __init__(self, study: StudyPaths, run: str):
        self.study = study
        self.run = run

    @property
    def profile(self) -> str:
        return self.study.profile

    @property
    def profile_dir(self) -> Path:
        return self.study.dir

    figures = property(lambda self: self.study.figures)
    metrics = property(lambda self: self.study.metrics)
    reports = property(lambda self: self.study.reports)
    models = property(lambda self: self.study.models / self.run)
    best_checkpoint = property(lambda self: self.models / "best.pt")
    last_checkpoint = property(lambda self: self.models / "last.pt")
    model_file = property(lambda self: self.models / "model.pt")  # the weights-only export
    metrics_json = property(lambda self: self.metrics / f"{self.run}.json")
    history_csv = property(lambda self: self.metrics / f"{self.run}_history.csv")
    predictions_csv = property(lambda self: self.metrics / f"{self.run}_val_predictions.csv")
    bad_images_csv = property(lambda self: self.metrics / f"{self.run}_bad_images.csv")
    manifest = property(lambda self: self.study.manifests / f"{self.run}.json")
    notebook = property(lambda self: self.study.notebooks / f"{self.run}.ipynb")
    running_notebook = property(lambda self: self.study.notebooks / f"{self.run}.running.ipynb")
    failed_notebook = property(lambda self: self.study.notebooks / f"{self.run}.FAILED.ipynb")
    report_html = property(lambda self: self.reports / f"{self.run}.html")
    reader_html = property(lambda self: self.reports / f"{self.run}_reader.html")
    key_file = property(lambda self: self.study.plan / f"{self.run}.key")

    def figure(self, name: str) -> Path:
        return self.figures / f"{self.run}_{name}.png"

    def table(self, name: str) -> Path:
        """A table the run writes beside its metrics: ``metrics/<run>_<name>.csv``."""
        return self.metrics / f"{self.run}_{name}.csv"

    def files(self) -> list[Path]:
        """Everything this run has written so far (figures, metrics, checkpoints), sorted; never the files
        of a run whose name extends this one's (``simple_cnn_aug`` is not ``simple_cnn``'s)."""
        longer = {p.stem for d in (self.study.metrics, self.study.manifests) if d.is_dir() for p in d.glob("*.json")}
        longer |= {p.name for p in self.study.models.iterdir()} if self.study.models.is_dir() else set()
        longer = [r for r in longer if r.startswith(f"{self.run}_")]
        found = [p for d in (self.figures, self.metrics) if d.is_dir() for p in d.glob(f"{self.run}[_.]*")
                 if not any(p.name.startswith((f"{r}_", f"{r}.")) for r in longer)]
        found += list(self.models.glob("*")) if self.models.is_dir() else []
        return sorted(p for p in found if p.is_file() and not p.name.startswith("."))

    def listing(self, extra: list[Path] = ()) -> str:
        """The run's files (and ``extra``) as lines ``path-in-profile  size``, for the notebooks' last cell."""
        files = [*self.files(), *(p for p in extra if p.is_file())]
        width = max((len(str(p.relative_to(self.profile_dir))) for p in files), default=0)
        return "\n".join(f"{str(p.relative_to(self.profile_dir)):<{width}}  {p.stat().st_size / 1024:>9,.1f} kB"
                         for p in files) or "(nothing yet)"

    def results(self) -> list[Path]:
        """What a finished run presents as its results (not its checkpoints): removed when it starts
        again, so a failure never leaves the previous results looking current."""
        own = [p for p in self.files() if p.parent != self.models]
        return own + [self.manifest, self.notebook, self.report_html, self.reader_html]

    def make_dirs(self) -> RunPaths:
        self.study.make_dirs()  # models/<run>/ is made by training, for training runs only
        return self


def run_paths(p) -> RunPaths:
    """The folders of the run ``p`` (validated parameters) writes to, created."""
    return StudyPaths(p["profile"]).run(p["run_name"]).make_dirs()
