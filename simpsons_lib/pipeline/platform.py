"""Kaggle Notebooks, Colab, or here: what the launcher notebook (``notebooks/run_on_kaggle_or_colab.ipynb``) and
``make`` on those platforms call.

- ``detect`` names the platform;
- ``install`` puts the library and its missing dependencies into the Python in use, keeping its torch and
  torchvision (never another torch: a constraints file pins the installed ones, and torch itself is never
  asked for);
- ``find_data`` finds the competition's data: mounted on Kaggle, downloaded with the kaggle CLI on Colab;
- ``run_study`` runs the study with ``make``, its one-line-per-epoch progress printed as it comes;
- ``show_results`` shows the evolution table and the submission's first rows, and leaves ``submission.csv``
  in the working folder (on Kaggle ``/kaggle/working``, where the notebook's "Submit" takes it).

Only the standard library is imported at the top: ``install`` runs before the library's dependencies are
there (``python -m simpsons_lib.pipeline.platform install``, as ``make setup`` does on those platforms).
"""

from __future__ import annotations

import argparse
import html
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PLATFORMS = ("kaggle", "colab", "local")
KEPT = ("torch", "torchvision")  # the platform's own builds, never replaced
MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def detect(env: dict | None = None, modules: dict | None = None) -> str:
    """``kaggle`` (``KAGGLE_KERNEL_RUN_TYPE`` set, or ``kaggle_secrets`` importable), ``colab``
    (``google.colab`` imported, or ``COLAB_RELEASE_TAG`` set), else ``local``."""
    env = os.environ if env is None else env
    modules = sys.modules if modules is None else modules
    if env.get("KAGGLE_KERNEL_RUN_TYPE") or "kaggle_secrets" in modules:
        return "kaggle"
    if "google.colab" in modules or env.get("COLAB_RELEASE_TAG"):
        return "colab"
    if modules is sys.modules:
        import importlib.util

        if importlib.util.find_spec("kaggle_secrets") is not None:
            return "kaggle"
    return "local"


# --- versions ----------------------------------------------------------------------------------------

def _version_tuple(text: str) -> tuple[int, ...]:
    """``2.6.0+cu124`` -> ``(2, 6, 0)``; ``2.15.0.dev20260101`` -> ``(2, 15, 0)``."""
    return tuple(int(n) for n in re.findall(r"\d+", text.split("+")[0])[:3])


def project_requirements(repo: str | os.PathLike, extras: tuple[str, ...] = ()) -> list[str]:
    """``pyproject.toml``'s dependencies (and those of ``extras``), as written."""
    import tomllib

    project = tomllib.loads((Path(repo) / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = list(project["dependencies"])
    for extra in extras:
        found += project.get("optional-dependencies", {})[extra]
    return found


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[\s]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _bounds(requirement: str) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    low = re.search(r">=\s*([\d.]+)", requirement)
    high = re.search(r"<\s*([\d.]+)", requirement)
    return _version_tuple(low.group(1)) if low else (0,), _version_tuple(high.group(1)) if high else None


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def check_versions(repo: str | os.PathLike, python: tuple[int, ...] | None = None,
                   installed: dict[str, str | None] | None = None) -> list[str]:
    """Stop (``SystemExit``, saying which) where this Python or its torch / torchvision is missing or older than
    ``pyproject.toml`` asks; return warnings for versions above the tested range (the study goes on)."""
    import tomllib

    project = tomllib.loads((Path(repo) / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    python = python or sys.version_info[:3]
    needed = _bounds(project["requires-python"])[0]
    if tuple(python) < needed:
        raise SystemExit(f"This Python is {_dotted(python)}; the study needs Python {_dotted(needed)} or newer.")
    warnings = []
    for requirement in project["dependencies"]:
        name = _name(requirement)
        if name not in KEPT:
            continue
        have = installed[name] if installed is not None else _installed(name)
        low, high = _bounds(requirement)
        if have is None:
            raise SystemExit(f"This Python has no {name}; the study needs {name} {_dotted(low)} or newer, installed "
                             f"for your GPU (https://pytorch.org/get-started/locally/). It does not install one.")
        if _version_tuple(have) < low:
            raise SystemExit(f"This Python's {name} is {have}; the study needs {name} {_dotted(low)} or newer. "
                             f"Upgrade it for your GPU (https://pytorch.org/get-started/locally/); the study does not "
                             "replace the platform's torch.")
        if high is not None and _version_tuple(have) >= high:
            warnings.append(f"warning: {name} {have} is newer than the range the study was tested with "
                            f"({requirement.replace(' ', '')}); going on with it")
    return warnings


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing(requirements: list[str]) -> list[str]:
    """The requirements this Python does not satisfy (all of them with a version check where ``packaging``,
    which pip itself needs, is importable; else by name only)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return [r for r in requirements if _installed(_name(r)) is None]
    out = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        have = _installed(req.name)
        if have is None or not req.specifier.contains(have, prereleases=True):
            out.append(text)
    return out


# --- install -----------------------------------------------------------------------------------------

def pip_commands(repo: str | os.PathLike, extras: tuple[str, ...], constraints: Path,
                 python: str = sys.executable) -> list[list[str]]:
    """The pip commands (argv lists) ``install`` runs: the missing dependencies other than torch and torchvision,
    under ``constraints`` (the installed torch and torchvision, pinned), then the library itself with no
    dependencies (editable, so the checkout's code is the code that runs)."""
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    wanted = missing([r for r in project_requirements(repo, extras) if _name(r) not in KEPT])
    commands = [[*pip, "-c", str(constraints), *wanted]] if wanted else []
    return commands + [[*pip, "--no-deps", "--no-build-isolation", "-e", str(Path(repo).resolve())]]


def install(repo: str | os.PathLike, extras: tuple[str, ...] = (), stamp: str | os.PathLike | None = None) -> None:
    """Install the library from ``repo`` into this Python, keeping its torch and torchvision (see the module's
    text); ``stamp`` is touched when it is done (``make``'s record that setup ran)."""
    for line in check_versions(repo):
        print(line, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{n}=={_installed(n)}\n" for n in KEPT if _installed(n)), encoding="utf-8")
        for command in pip_commands(repo, extras, constraints):
            print("$", " ".join(command[2:]), flush=True)
            if subprocess.run(command).returncode != 0:
                raise SystemExit(f"`{' '.join(command[2:])}` failed (see above). With the internet off (Kaggle: "
                                 "Settings > Internet), pip cannot fetch the missing packages.")
    if stamp is not None:
        Path(stamp).touch()
    print(f"simpsons-lib installed from {repo} (torch {_installed('torch')}, torchvision "
          f"{_installed('torchvision')}, Python {_dotted(sys.version_info[:3])})", flush=True)


# --- data --------------------------------------------------------------------------------------------

def colab_token(env: dict | None = None, home: Path | None = None, upload_dir: Path = Path("/content")) -> str:
    """Give the kaggle CLI the user's token on Colab: a Colab secret (``KAGGLE_API_TOKEN``, or ``KAGGLE_USERNAME``
    and ``KAGGLE_KEY``) into the environment, or an uploaded ``kaggle.json`` into ``~/.kaggle``. Returns where it
    came from, or ``""`` when there is none."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
            try:
                value = userdata.get(name)
            except Exception:  # noqa: BLE001 - a missing secret, or access not granted to this notebook
                value = None
            if value and not env.get(name):
                env[name] = value
    except ImportError:
        pass
    uploaded = upload_dir / "kaggle.json"
    target = home / ".kaggle" / "kaggle.json"
    if uploaded.is_file() and not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(uploaded, target)
        target.chmod(0o600)
        return f"uploaded {uploaded}"
    from .kaggle import has_token

    return "found" if has_token(env, home) else ""


def find_data(where: str, kaggle_input: str | os.PathLike | None = None) -> Path:
    """The competition's data folder: where Kaggle mounts it (``kaggle_input``, default ``/kaggle/input``, sets
    ``SIMPSONS_KAGGLE_INPUT`` for the study), else ``data/kaggle``; on Colab, downloaded there with the kaggle
    CLI and the user's token (``colab_token``), with ``make data``'s message when there is none."""
    from ..config import paths

    if kaggle_input is not None:
        os.environ["SIMPSONS_KAGGLE_INPUT"] = str(kaggle_input)
    found = paths.kaggle_data_source()
    if found.exists():
        print(f"Kaggle data: {found}", flush=True)
        return found
    from . import kaggle

    if where == "colab":
        colab_token()
        return kaggle.download(paths.kaggle_data_dir()).root  # NO_TOKEN (make data's message) without a token
    if where == "kaggle":
        raise SystemExit(f"No competition data under {paths.kaggle_input_dir()}: add it to this notebook (Add Input > "
                         f"Competitions > {paths.KAGGLE_COMPETITION}) and run again.")
    raise SystemExit(f"No Kaggle data in {found} (nor under {paths.kaggle_input_dir()}). "
                     + kaggle.NO_TOKEN.format(out=paths.kaggle_data_dir()))


# --- the study ---------------------------------------------------------------------------------------

def make_command(repo: str | os.PathLike, profile: str, stamp: str | os.PathLike) -> list[str]:
    """``make all`` (or ``pipeline`` for another profile) in ``repo`` with this Python (``PY``, ``STAMP``)."""
    target = "all" if profile == "full" else "pipeline"
    return ["make", "--no-print-directory", "-C", str(repo), target, f"PROFILE={profile}", f"PY={sys.executable}",
            f"STAMP={stamp}"]


def run_study(repo: str | os.PathLike, profile: str = "full", stamp: str | os.PathLike | None = None) -> None:
    """Run the study's notebooks with ``make``, printing its output line by line as it comes (one line per epoch
    of each run), so it shows in the notebook's cell. A failure ends with its last lines."""
    stamp = Path(stamp) if stamp is not None else Path(repo) / ".system-python-setup-complete"
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    env["USE_SYSTEM_PYTHON"] = "1"
    tail: list[str] = []
    with subprocess.Popen(make_command(repo, profile, stamp), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            tail = (tail + [line])[-20:]
    if process.returncode != 0:
        raise SystemExit(f"the study stopped (make exit {process.returncode}); its last lines:\n{''.join(tail)}")


def show_results(repo: str | os.PathLike, profile: str = "full", working_dir: str | os.PathLike | None = None,
                 rows: int = 5) -> Path:
    """Show the evolution table and the submission's first ``rows`` with links to the pages, and copy
    ``submission.csv`` into ``working_dir`` (atomically). Returns the copy's path."""
    import pandas as pd
    from IPython.display import HTML, display

    from ..config import paths
    from ..config.files import atomic_path

    study = paths.StudyPaths(profile)
    display(HTML(f"<p>The study's pages: <a href='{html.escape(_link(study.index_html))}' target='_blank'>"
                 f"{html.escape(str(study.index_html))}</a></p>"))
    display(pd.read_csv(study.evolution_csv))
    target = Path(working_dir or Path.cwd()) / "submission.csv"
    if study.submission_csv.resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(study.submission_csv, tmp)
    display(HTML(f"<p>Submission: <a href='{html.escape(_link(target))}'>{html.escape(str(target))}</a> "
                 f"(first {rows} rows)</p>"))
    display(pd.read_csv(target).head(rows))
    return target


def _link(path: Path) -> str:
    """A link the notebook's page can follow: relative to the notebook's folder where the file is under it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_uri()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline.platform",
                                     description="The library in the platform's Python (Kaggle, Colab), torch kept")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("install", help="install the library and its missing dependencies, keeping torch")
    cmd.add_argument("--extras", default="", help="comma-separated extras of pyproject.toml (e.g. dev,tracking)")
    cmd.add_argument("--stamp", help="file to touch when done")
    sub.add_parser("detect", help="print kaggle, colab or local")
    args = parser.parse_args(argv)
    if args.command == "detect":
        print(detect())
        return
    repo = Path(__file__).resolve().parents[2]
    install(repo, tuple(filter(None, args.extras.split(","))), args.stamp)


if __name__ == "__main__":
    main()
