"""Kaggle Notebooks and Colab: the competition's data where Kaggle mounts it (and nothing written beside it), the
platform's Python and torch kept, and the launcher notebook run end to end by papermill from a clone."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from simpsons_lib.config import params, paths
from simpsons_lib.data import layout
from simpsons_lib.pipeline import platform

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = "notebooks/run_on_kaggle_or_colab.ipynb"


def listing(folder: Path) -> dict[str, tuple]:
    """Every path under ``folder`` (folders too) with its type, size, modification time and mode: a file written,
    replaced, touched or removed (even one made and removed again, through its folder's time) shows."""
    out = {}
    for p in [folder, *sorted(folder.rglob("*"))]:
        st = p.lstat()
        out[str(p.relative_to(folder))] = (stat.S_IFMT(st.st_mode), st.st_size if p.is_file() else 0, st.st_mtime_ns,
                                           stat.S_IMODE(st.st_mode))
    return out


def kaggle_copy(demo: Path, target: Path) -> Path:
    """The drawn demo data as Kaggle mounts the competition: train, test and the sample submission, nothing else
    (no test labels, no generator's files)."""
    shutil.copytree(demo / "train", target / "train")
    shutil.copytree(demo / "testset", target / "testset")
    shutil.copy2(demo / "sample_submission.csv", target / "sample_submission.csv")
    return target


@pytest.mark.parametrize("mount", ["journey-springfield", "competitions/journey-springfield"])
def test_the_full_profile_finds_the_competition_where_kaggle_mounts_it(tiny_demo, tmp_path, monkeypatch, mount):
    data = kaggle_copy(tiny_demo, tmp_path / "input" / mount)
    monkeypatch.setenv("SIMPSONS_KAGGLE_INPUT", str(tmp_path / "input"))
    p = params.resolve("full", "simple_cnn")
    found = layout.find_study_layout(p)
    assert found.root == data and found.train_dir == data / "train" / "simpsons_dataset"
    assert found.test_dir == data / "testset" / "testset" and not found.is_demo
    local = kaggle_copy(tiny_demo, paths.kaggle_data_dir())  # `make data`'s copy, when there is one, comes first
    assert layout.find_study_layout(p).root == local


def test_without_any_kaggle_data_the_message_says_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPSONS_KAGGLE_INPUT", str(tmp_path / "input"))
    with pytest.raises(layout.DatasetNotFoundError, match="make data") as caught:
        layout.find_study_layout(params.resolve("full", "simple_cnn"))
    assert str(paths.kaggle_data_dir()) in str(caught.value) and "/kaggle/input" in str(caught.value)
    env = {**os.environ, "SIMPSONS_KAGGLE_INPUT": str(tmp_path / "input")}
    check = [sys.executable, "-m", "simpsons_lib.pipeline.kaggle", "--check-data"]
    result = subprocess.run(check, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "make data" in result.stderr and str(tmp_path / "input") in result.stderr
    (tmp_path / "input" / "competitions" / "journey-springfield").mkdir(parents=True)
    result = subprocess.run(check, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and str(tmp_path / "input" / "competitions" / "journey-springfield") in result.stdout


def test_the_plan_says_where_it_found_the_mounted_data_and_writes_nothing_there(tiny_demo, tmp_path, monkeypatch):
    from simpsons_lib.pipeline import runner

    data = kaggle_copy(tiny_demo, tmp_path / "input" / "competitions" / "journey-springfield")
    monkeypatch.setenv("SIMPSONS_KAGGLE_INPUT", str(tmp_path / "input"))
    profile = tmp_path / "params" / "mounted"
    profile.mkdir(parents=True)
    (profile / "_common.yaml").write_text("dataset: kaggle\ndevice: cpu\n")
    (profile / "eda.yaml").write_text("notebook: 00_eda\nimage_stats_sample: 20\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    before = listing(tmp_path / "input")
    out = subprocess.run([sys.executable, "-c", "from simpsons_lib.pipeline import runner; runner.plan('mounted', announce=True)"],
                         cwd=REPO, env=os.environ, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"plan: data: {data} (where Kaggle mounts the competition, under {tmp_path / 'input'})" in out.stdout
    assert listing(tmp_path / "input") == before
    assert runner  # the module the subprocess ran


def test_the_platform_is_detected_as_handson_ml3_does():
    assert platform.detect({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, {}) == "kaggle"
    assert platform.detect({}, {"kaggle_secrets": object()}) == "kaggle"
    assert platform.detect({}, {"google.colab": object()}) == "colab"
    assert platform.detect({"COLAB_RELEASE_TAG": "release-colab_20260101"}, {}) == "colab"
    assert platform.detect({}, {}) == "local"


def test_torch_below_the_minimum_stops_saying_which_and_above_the_range_warns():
    ok = {"torch": "2.6.0+cu124", "torchvision": "0.21.0+cu124"}
    assert platform.check_versions(REPO, (3, 11, 13), ok) == []
    with pytest.raises(SystemExit, match=r"torch is 2\.3\.1; the study needs torch 2\.4 or newer"):
        platform.check_versions(REPO, (3, 12, 1), {**ok, "torch": "2.3.1"})
    with pytest.raises(SystemExit, match=r"torchvision is 0\.18\.0.*0\.19 or newer"):
        platform.check_versions(REPO, (3, 12, 1), {**ok, "torchvision": "0.18.0"})
    with pytest.raises(SystemExit, match="has no torch.*does not install one"):
        platform.check_versions(REPO, (3, 12, 1), {**ok, "torch": None})
    with pytest.raises(SystemExit, match=r"Python is 3\.10\.12; the study needs Python 3\.11"):
        platform.check_versions(REPO, (3, 10, 12), ok)
    warned = platform.check_versions(REPO, (3, 12, 1), {"torch": "2.15.0", "torchvision": "0.30.1"})
    assert len(warned) == 2 and "torch 2.15.0 is newer than the range" in warned[0] and "going on" in warned[0]


def test_the_install_never_asks_pip_for_torch_and_pins_the_installed_one(tmp_path, monkeypatch):
    monkeypatch.setattr(platform, "missing", lambda requirements: requirements)  # as if nothing were installed
    commands = platform.pip_commands(REPO, ("dev",), tmp_path / "constraints.txt")
    assert all(isinstance(c, list) and all(isinstance(a, str) for a in c) for c in commands)
    deps, library = commands
    assert deps[deps.index("-c") + 1] == str(tmp_path / "constraints.txt")
    named = [platform._name(a) for a in deps[deps.index("-c") + 2:]]
    assert "torch" not in named and "torchvision" not in named and {"captum", "papermill", "pytest"} <= set(named)
    assert library[-4:] == ["--no-deps", "--no-build-isolation", "-e", str(REPO)]
    monkeypatch.setattr(platform, "missing", lambda requirements: [])  # all there (Kaggle offline): no pip call for them
    assert [c[-1] for c in platform.pip_commands(REPO, (), tmp_path / "c.txt")] == [str(REPO)]


def test_pyproject_accepts_the_platforms_python_and_torch():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    for have in ({"torch": "2.4.1", "torchvision": "0.19.1"}, {"torch": "2.14.0", "torchvision": "0.29.0"}):
        for python in ((3, 11, 13), (3, 12, 11)):
            assert platform.check_versions(REPO, python, have) == []


@pytest.mark.parametrize("env, system", [({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, True),
                                         ({"COLAB_RELEASE_TAG": "release-colab_20260101"}, True),
                                         ({"USE_SYSTEM_PYTHON": "1"}, True),
                                         ({"KAGGLE_KERNEL_RUN_TYPE": "Batch", "USE_SYSTEM_PYTHON": "0"}, False),
                                         ({}, False)])
def test_make_uses_the_platforms_python_on_kaggle_and_colab(tmp_path, env, system):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "CONDA", "KAGGLE", "COLAB", "USE_SYS"))}
    result = subprocess.run(["make", "-n", "-B", "setup", f"PYTHON_BASE={sys.executable}"], cwd=REPO, env={**clean, **env},
                            capture_output=True, text=True, check=True)
    out = result.stdout
    if system:
        assert f"{sys.executable} -m simpsons_lib.pipeline.platform install --extras dev --stamp " \
               ".system-python-setup-complete" in out
        assert "-m venv" not in out and "-m pip install" not in out  # no .venv, no pip asked for torch
    else:
        assert ".venv/bin/python -m pip install" in out and "simpsons_lib.pipeline.platform" not in out


def test_colab_takes_an_uploaded_kaggle_json_or_says_there_is_no_token(tmp_path):
    home, uploads = tmp_path / "home", tmp_path / "content"
    uploads.mkdir()
    assert platform.colab_token({}, home, uploads) == ""
    (uploads / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert platform.colab_token({}, home, uploads) == f"uploaded {uploads / 'kaggle.json'}"
    saved = home / ".kaggle" / "kaggle.json"
    assert saved.read_text() == '{"username": "u", "key": "k"}' and stat.S_IMODE(saved.stat().st_mode) == 0o600


# --- the launcher, end to end -------------------------------------------------------------------------

def _overlay_python(root: Path) -> Path:
    """A virtual environment whose packages are this one's (a ``.pth`` adds them) and whose installs stay in it:
    the launcher's pip installs into it as into the platform's Python, and this environment is left as it is."""
    venv = root / "platform-python"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "_parent_environment.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    return python


def _clone_source(root: Path) -> Path:
    """This checkout's files (as the working tree has them) committed in a repository of their own, with a small
    profile ``launcher`` on the Kaggle data: the repository the launcher clones."""
    source = root / "source"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    profile = source / "params" / "launcher"
    profile.mkdir(parents=True)
    (profile / "_common.yaml").write_text("dataset: kaggle\nseed: 0\nval_fraction: 0.25\ndevice: cpu\n")
    (profile / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\ntitle: SimpleCnn\narch: simple_cnn\n"
                                             "augment: false\nimage_size: 96\nepochs: 1\n")
    (profile / "report.yaml").write_text("notebook: 05_report\nruns: [simple_cnn]\nensemble: []\n"
                                         "submission_run: simple_cnn\ngallery_size: 4\n")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-C", str(source)]
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(source)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "the study"], check=True)
    return source


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_launcher_runs_the_study_from_a_clone_on_the_mounted_data(tiny_demo, tmp_path, monkeypatch):
    import papermill

    data = kaggle_copy(tiny_demo, tmp_path / "kaggle" / "input" / "competitions" / "journey-springfield")
    working = tmp_path / "kaggle" / "working"
    working.mkdir()
    source = _clone_source(tmp_path)
    python = _overlay_python(tmp_path)
    kernel = tmp_path / "jupyter" / "kernels" / "platform-python"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "platform", '
        '"language": "python"}' % python)
    # Jupyter's data (nbconvert's templates) lies under this environment's prefix, which the overlay's is not
    (tmp_path / "jupyter" / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for name in ("SIMPSONS_OUTPUTS_DIR", "SIMPSONS_DATA_DIR", "SIMPSONS_PARAMS_DIR", "SIMPSONS_PROGRESS",
                 "SIMPSONS_KAGGLE_INPUT", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    before = listing(tmp_path / "kaggle" / "input")
    executed = tmp_path / "launcher.ipynb"
    papermill.execute_notebook(
        str(REPO / LAUNCHER), str(executed), kernel_name="platform-python", cwd=str(working), progress_bar=False,
        parameters={"REPO_URL": str(source), "REF": "main", "WORKING_DIR": str(working),
                    "KAGGLE_INPUT": str(tmp_path / "kaggle" / "input"), "PROFILE": "launcher"})

    assert listing(tmp_path / "kaggle" / "input") == before  # nothing written, touched or removed beside the data
    clone = working / "simpsons-study"
    assert (clone / ".git").is_dir() and (clone / "params" / "launcher" / "report.yaml").is_file()
    submission = pd.read_csv(working / "submission.csv")
    assert list(submission.columns) == ["Id", "Expected"]
    assert sorted(submission["Id"]) == sorted(pd.read_csv(data / "sample_submission.csv")["Id"])
    assert (working / "submission.csv").read_bytes() == (clone / "outputs" / "launcher" / "submission.csv").read_bytes()
    text = "\n".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                     for c in __import__("nbformat").read(executed, as_version=4).cells if c.cell_type == "code"
                     for o in c.outputs if o.get("output_type") == "stream")
    assert f"plan: data: {data} (where Kaggle mounts the competition" in text
    assert "simple_cnn" in text and "epoch 1/1" in text  # the run's one line per epoch, in the cell
    assert "simpsons-lib installed from" in text and "torch" in text
    html = "\n".join(str(o.get("data", {}).get("text/html", "")) for c in
                     __import__("nbformat").read(executed, as_version=4).cells for o in c.get("outputs", []))
    assert "index.html" in html and "submission.csv" in html and "simple_cnn" in html
    installed = subprocess.run([str(python), "-c", "import simpsons_lib, torch; print(simpsons_lib.__file__, "
                                "torch.__version__)"], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert installed.stdout.split()[0].startswith(str(clone))  # the clone's library, installed in that Python
    import torch

    assert installed.stdout.split()[1] == torch.__version__  # its torch kept


def test_the_launcher_is_committed_clean_and_names_the_repository_where_the_readme_does():
    import ast
    import re

    import nbformat
    import papermill

    nb = nbformat.read(REPO / LAUNCHER, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", []) and nb.metadata.kernelspec.name == "python3"
    values = {n.target.id: ast.literal_eval(n.value) for n in ast.parse(code[0].source).body}
    assert set(papermill.inspect_notebook(str(REPO / LAUNCHER))) == set(values)
    assert values["PROFILE"] == "full" and values["KAGGLE_INPUT"] == "/kaggle/input"
    address = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", values["REPO_URL"]).group(1)
    readme = (REPO / "README.md").read_text()
    badges = re.findall(r"\]\((https://(?:kaggle\.com/kernels/welcome\?src=https://github\.com/|"
                        r"colab\.research\.google\.com/github/)[^)]+)\)", readme[:1000])
    assert len(badges) == 2 and all(f"/{address}/blob/main/{LAUNCHER}" in b for b in badges)
    assert not (set(re.findall(r"github\.com/([\w.-]+/[\w.-]+)", readme)) - {address})  # one address
