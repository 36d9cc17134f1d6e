"""Reviewable notebooks: each .ipynb has a paired percent-format .py kept in sync (`make pair`)."""

import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

from simpsons_lib.pipeline import pairing

REPO = Path(__file__).resolve().parent.parent


def copy_notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", folder)
    return folder


def test_every_notebook_and_its_py_are_in_sync():
    assert sorted(p.stem for p in (REPO / "notebooks").glob("*.py")) == sorted(
        p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert pairing.differing() == [], "run `make pair`"


def test_an_unsynced_pair_is_named(tmp_path):
    folder = copy_notebooks(tmp_path)
    script = folder / "02_mid_cnn.py"
    script.write_text(script.read_text().replace("console.setup_logging()", "console.setup_logging(level=10)", 1))
    (folder / "03_resnet50.py").unlink()
    nb = nbformat.read(folder / "00_eda.ipynb", as_version=4)
    nb.cells[0].source += "\n\nA sentence added to the notebook only."
    nbformat.write(nb, folder / "00_eda.ipynb")
    problems = pairing.differing(folder)
    assert [p.split(":")[0] for p in problems] == ["00_eda.py", "02_mid_cnn.py", "03_resnet50.py"]
    assert "missing" in problems[2]
    check = subprocess.run([sys.executable, "-m", "simpsons_lib.pipeline.pairing", "check", "--folder", str(folder)],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "02_mid_cnn.py: differs from 02_mid_cnn.ipynb" in check.stdout


def test_pair_is_idempotent_and_restores_the_pairs(tmp_path):
    folder = copy_notebooks(tmp_path)
    assert pairing.write(folder) == []  # in sync: nothing written
    (folder / "01_simple_cnn.py").write_text("# stale\n")
    assert pairing.write(folder) == [folder / "01_simple_cnn.py"]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert pairing.write(folder) == [] and {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert pairing.differing(folder) == []


def test_an_edited_py_goes_into_its_notebook_keeping_ids_tags_and_metadata(tmp_path):
    folder = copy_notebooks(tmp_path)
    script = folder / "02_mid_cnn.py"
    script.write_text(script.read_text().replace("console.setup_logging()", "console.setup_logging(level=10)", 1))
    old = nbformat.read(folder / "02_mid_cnn.ipynb", as_version=4)
    assert pairing.update(folder) == [folder / "02_mid_cnn.ipynb"]
    new = nbformat.read(folder / "02_mid_cnn.ipynb", as_version=4)
    nbformat.validate(new)
    assert new.metadata.simpsons.kind == "train" and new.metadata.kernelspec.name == "simpsons-study"
    changed = [i for i, (a, b) in enumerate(zip(old.cells, new.cells)) if a.source != b.source]
    assert len(changed) == 1 and "level=10" in new.cells[changed[0]].source
    assert [c.get("id") for i, c in enumerate(new.cells) if i not in changed] == \
           [c.get("id") for i, c in enumerate(old.cells) if i not in changed]
    assert [c.metadata.get("tags") for c in new.cells] == [c.metadata.get("tags") for c in old.cells]
    assert all(not c.get("outputs") for c in new.cells if c.cell_type == "code")
    assert pairing.differing(folder) == []
    assert jupytext.read(script).cells[2].source == new.cells[2].source
