"""`make clean` removes what the study wrote, and nothing else: not a home folder, not the data, not
while a pipeline holds the lock."""

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simpsons_lib.config import paths
from simpsons_lib.config.files import write_json, write_text
from simpsons_lib.pipeline import runner

REPO = Path(__file__).resolve().parent.parent


def make_clean(env_extra: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "SIMPSONS_PIPELINE_LOCK"):
        env.pop(name, None)
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "clean", f"PY={sys.executable}"],
                          env=env, capture_output=True, text=True, timeout=120)


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def study(tmp_path, tiny_demo, monkeypatch, torch_home):
    """A planned study (profile smoke on the tiny demo data) with the products a finished run leaves."""
    shutil.copytree(REPO / "params" / "smoke", tmp_path / "params" / "smoke")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(tiny_demo.parent))
    runner.plan("smoke")
    s = paths.StudyPaths("smoke")
    rp = s.run("simple_cnn").make_dirs()
    for f in (rp.notebook, rp.report_html, rp.reader_html, s.submission_csv, s.dir / "sweeps" / "a.csv"):
        write_text(f, "x")
    rp.models.mkdir(parents=True)
    rp.model_file.write_bytes(b"weights")
    write_json(rp.manifest, {"run": "simple_cnn"})
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    (paths.cache_dir() / "images_64px_3_abc.npy").write_bytes(b"0")
    (paths.cache_dir() / "scan_3_abc.json").write_text("{}")
    return s


def test_a_real_studys_outputs_are_removed_and_the_rest_kept(study, capsys):
    outputs = paths.outputs_dir()
    (outputs / "my_notes.txt").write_text("mine")
    (outputs / "smoke" / "my_plot.png").write_bytes(b"mine")  # a user's file inside a profile folder
    from simpsons_lib.pipeline import clean

    clean.main(["clean"])
    assert tree(outputs) == {"my_notes.txt", "smoke", "smoke/my_plot.png"}
    assert "kept what the study did not make: my_notes.txt" in capsys.readouterr().out


def test_make_clean_removes_the_whole_study_and_nothing_of_the_data(study, tiny_demo):
    before = tree(tiny_demo)
    result = make_clean({"SIMPSONS_OUTPUTS_DIR": str(paths.outputs_dir()), "SIMPSONS_DATA_DIR": str(tiny_demo.parent),
                         "SIMPSONS_PARAMS_DIR": os.environ["SIMPSONS_PARAMS_DIR"]})
    assert result.returncode == 0, result.stderr
    assert not paths.outputs_dir().exists() or tree(paths.outputs_dir()) == set()
    assert tree(tiny_demo) == before


def test_a_home_like_folder_is_refused_and_keeps_everything(tmp_path):
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / "Documents" / "thesis.tex").write_text("years of work")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("key")
    (home / "models").mkdir()  # a name the study also uses, outside any profile folder
    before = tree(home)
    result = make_clean({"SIMPSONS_OUTPUTS_DIR": str(home), "SIMPSONS_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode != 0
    assert "does not look like the study's outputs" in result.stderr
    assert result.stderr.startswith("error: clean: ") and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if not line.startswith("make: ***")].__len__() == 1
    assert tree(home) == before


def test_outputs_and_data_in_one_folder_keeps_the_data(tmp_path, tiny_demo, monkeypatch, torch_home):
    """SIMPSONS_OUTPUTS_DIR == SIMPSONS_DATA_DIR: the demo profile's outputs land in the demo data folder."""
    shared = tmp_path / "shared"
    shutil.copytree(tiny_demo, shared / "demo")
    shutil.copytree(REPO / "params" / "smoke", tmp_path / "params" / "demo")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(shared))
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(shared))
    data_before = tree(shared / "demo")
    runner.plan("demo")
    rp = paths.StudyPaths("demo").run("eda").make_dirs()
    write_text(rp.notebook, "x")
    paths.cache_dir().mkdir(exist_ok=True)
    (paths.cache_dir() / "images_64px_3_abc.npy").write_bytes(b"0")
    result = make_clean({})
    assert result.returncode == 0, result.stderr
    assert tree(shared / "demo") == data_before
    assert not (shared / "cache").exists() and not (shared / "demo" / ".plan").exists()


def test_a_data_folder_inside_a_profile_folder_survives(study, tmp_path, monkeypatch):
    data = study.dir / "models" / "data"  # absurd, but clean must still not remove it
    data.mkdir()
    (data / "a.jpg").write_bytes(b"img")
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(data))
    from simpsons_lib.pipeline import clean

    clean.clean()
    assert (data / "a.jpg").is_file() and not study.notebooks.exists()


def test_clean_is_refused_while_the_lock_is_held(study):
    with open(study.lock, "a+") as held:
        before = tree(paths.outputs_dir())
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 1234, started now\n")
        held.flush()
        result = make_clean({"SIMPSONS_OUTPUTS_DIR": str(paths.outputs_dir()),
                             "SIMPSONS_DATA_DIR": os.environ["SIMPSONS_DATA_DIR"],
                             "SIMPSONS_PARAMS_DIR": os.environ["SIMPSONS_PARAMS_DIR"]})
    assert result.returncode != 0
    assert "a pipeline is running" in result.stderr and "pid 1234" in result.stderr
    assert tree(paths.outputs_dir()) == before


def test_a_cache_folder_of_other_files_is_not_the_studys(tmp_path, monkeypatch):
    outputs = tmp_path / "outputs"
    (outputs / "cache").mkdir(parents=True)
    (outputs / "cache" / "pip-wheel.whl").write_bytes(b"x")
    result = make_clean({"SIMPSONS_OUTPUTS_DIR": str(outputs)})
    assert result.returncode != 0 and (outputs / "cache" / "pip-wheel.whl").is_file()


def test_an_empty_or_missing_outputs_folder_is_nothing_to_do(tmp_path):
    assert make_clean({"SIMPSONS_OUTPUTS_DIR": str(tmp_path / "none")}).returncode == 0
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".gitkeep").touch()
    assert make_clean({"SIMPSONS_OUTPUTS_DIR": str(tmp_path / "empty")}).returncode == 0
    assert (tmp_path / "empty" / ".gitkeep").exists()
