"""The repository's shape and conventions: what a user copies."""

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import papermill
import yaml

REPO = Path(__file__).resolve().parent.parent


def test_top_level_layout():
    for name in ["notebooks", "simpsons_lib", "params", "outputs", "Makefile", "environment.yml", "tests",
                 "README.md", "pyproject.toml", ".ci/run", "outputs/.gitkeep", "data/.gitkeep"]:
        assert (REPO / name).exists(), name
    ignored = subprocess.run(["git", "check-ignore", "outputs/demo/x.png", "data/kaggle/x.jpg", ".venv/x"],
                             cwd=REPO, capture_output=True, text=True).stdout.split()
    assert ignored == ["outputs/demo/x.png", "data/kaggle/x.jpg", ".venv/x"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert sorted(r.replace(" ", "") for r in pip if not r.startswith("-e")) == sorted(r.replace(" ", "") for r in wanted)
    assert "-e .[dev]" in pip
    for package in ["torch", "torchvision", "jupyterlab", "papermill", "scikit-learn", "scikit-image", "pandas",
                    "seaborn", "matplotlib"]:
        assert package in {_name(r) for r in wanted}


def test_make_help_lists_every_target_with_a_description():
    out = subprocess.run(["make", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for target in ["setup", "test", "lab", "data", "demo-data", "demo", "all", "clean", "bench"]:
        assert re.search(rf"^\s+(\x1b\[\d+m)?{re.escape(target)}\b.*\S", out, re.M), target
    assert subprocess.run(["make"], cwd=REPO, capture_output=True, text=True).stdout == out


def test_notebooks_are_committed_clean_with_literal_parameters():
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))  # the study's; the launcher has its own test
    assert [n.stem for n in notebooks] == ["00_eda", "01_simple_cnn", "02_mid_cnn", "03_resnet50", "04_modern_finetune", "05_report"]
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "simpsons-study"
        assert nb.metadata.simpsons.kind in ("eda", "train", "report")
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and code[0] is tagged[0], path.name
        for node in ast.parse(tagged[0].source).body:
            assert isinstance(node, ast.AnnAssign), f"{path.name}: parameters cell holds only typed assignments"
            ast.literal_eval(node.value)  # plain literals only
        inspected = papermill.inspect_notebook(str(path))
        assert set(inspected) == {n.target.id for n in ast.parse(tagged[0].source).body}
        assert all(info["inferred_type_name"] != "None" for info in inspected.values())  # `--help-notebook` types
        assert all(len(c.source.splitlines()) <= 8 for c in code[1:]), f"{path.name}: cells stay short"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci/run").read_text()
    assert "drawn" in readme.lower()


def test_exploring_the_data_loads_no_deep_learning_libraries():
    """The EDA notebook's imports (its first code cell after the parameters) load neither torch nor
    scikit-learn: exploring the data starts in a second, and the pipeline's own process, which only
    finds the data, stays light too."""
    nb = nbformat.read(REPO / "notebooks" / "00_eda.ipynb", as_version=4)
    imports = next(c.source for c in nb.cells if c.cell_type == "code" and "import" in c.source)
    probe = (f"{imports}\nimport simpsons_lib.pipeline.runner, sys\n"
             "print(sorted(m for m in ('torch', 'torchvision', 'sklearn') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's library, as the pipeline gives its kernels
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO / "notebooks", env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_make_lab_opens_the_repository_root_works_as_root_and_takes_arguments():
    out = subprocess.run(["make", "-n", "lab", "LAB_ARGS=--no-browser --port 8890", "STAMP=Makefile"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    # each word of LAB_ARGS reaches the shell single-quoted (a user's text is never shell)
    assert "jupyter lab --notebook-dir=. " in out and "'--no-browser' '--port' '8890'" in out
    assert ("--allow-root" in out) == (os.getuid() == 0)


def test_an_active_conda_environment_is_used_instead_of_the_venv(tmp_path):
    env = {**os.environ, "CONDA_PREFIX": str(tmp_path / "conda"), "CONDA_DEFAULT_ENV": "simpsons-study"}
    out = subprocess.run(["make", "-n", "setup"], cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    assert f"{tmp_path}/conda/bin/python -m pip install" in out and "ipykernel install --sys-prefix" in out
    assert ".venv/bin/python" not in out
    base = {**env, "CONDA_DEFAULT_ENV": "base"}
    out = subprocess.run(["make", "-n", "setup"], cwd=REPO, env=base, capture_output=True, text=True).stdout
    assert str(tmp_path) not in out


def test_make_data_checks_credentials_before_installing_anything(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SIMPSONS_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(["make", "--no-print-directory", "data", "STAMP=/nonexistent/stamp"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "No Kaggle API token found" in result.stderr and "pip install" not in result.stdout


def test_make_all_without_kaggle_data_stops_before_installing_anything(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SIMPSONS_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(["make", "--no-print-directory", "all", "STAMP=/nonexistent/stamp"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"no Kaggle data in {tmp_path}/data/kaggle" in result.stderr and "make data" in result.stderr
    assert "pip install" not in result.stdout
