"""Reviewable notebooks: each .ipynb has a paired percent-format .py that jupytext keeps from jupytext.toml
(`make pair`, `make pair-from-py`); pair-from-py refuses a .py that does not parse."""

import shutil
import subprocess
from pathlib import Path

import jupytext
import nbformat
from jupytext.config import load_jupytext_config

from simpsons_lib.pipeline import pairing

REPO = Path(__file__).resolve().parent.parent


def copy_notebooks(tmp_path: Path) -> Path:
    """The notebooks and the repository's jupytext.toml (jupytext finds it above the folder)."""
    folder = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(REPO / "jupytext.toml", tmp_path / "jupytext.toml")
    return folder


def differing(folder: Path) -> list[str]:
    """Each paired .py that is missing or is not what jupytext writes from its notebook, and each .py
    without a notebook."""
    out = []
    for nb in sorted(folder.glob("*.ipynb")):
        script = nb.with_suffix(".py")
        if not script.is_file():
            out.append(f"{script.name}: missing")
        elif script.read_text(encoding="utf-8") != jupytext.writes(jupytext.read(nb), fmt="py:percent",
                                                                    config=load_jupytext_config(str(nb))):
            out.append(f"{script.name}: differs from {nb.name}")
    out += [f"{s.name}: no notebook" for s in sorted(folder.glob("*.py")) if not s.with_suffix(".ipynb").is_file()]
    return out


def make(target: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), target, f"NOTEBOOKS={folder}"],
                          capture_output=True, text=True)


def test_every_notebook_and_its_py_are_in_sync():
    assert sorted(p.stem for p in (REPO / "notebooks").glob("*.py")) == sorted(
        p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert differing(REPO / "notebooks") == [], "run `make pair`"


def test_an_unsynced_pair_is_named(tmp_path):
    folder = copy_notebooks(tmp_path)
    assert differing(folder) == []
    script = folder / "02_mid_cnn.py"
    script.write_text(script.read_text().replace("console.setup_logging()", "console.setup_logging(level=10)", 1))
    (folder / "03_resnet50.py").unlink()
    nb = nbformat.read(folder / "00_eda.ipynb", as_version=4)
    nb.cells[0].source += "\n\nA sentence added to the notebook only."
    nbformat.write(nb, folder / "00_eda.ipynb")
    (folder / "99_orphan.py").write_text("# %%\nx = 1\n")
    assert differing(folder) == ["00_eda.py: differs from 00_eda.ipynb", "02_mid_cnn.py: differs from 02_mid_cnn.ipynb",
                                 "03_resnet50.py: missing", "99_orphan.py: no notebook"]


def test_pair_is_idempotent_and_restores_the_pairs(tmp_path):
    folder = copy_notebooks(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    (folder / "01_simple_cnn.py").write_text("# stale\n")
    (folder / "02_mid_cnn.py").unlink()
    result = make("pair", folder)
    assert result.returncode == 0, result.stderr
    # the notebook is the source: the two restored, every other pair (in sync) left as it was, byte for byte
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert differing(folder) == []


def test_an_edited_py_goes_into_its_notebook_keeping_ids_tags_and_metadata(tmp_path):
    folder = copy_notebooks(tmp_path)
    script = folder / "02_mid_cnn.py"
    script.write_text(script.read_text().replace("console.setup_logging()", "console.setup_logging(level=10)", 1))
    old = nbformat.read(folder / "02_mid_cnn.ipynb", as_version=4)
    ran = nbformat.read(folder / "01_simple_cnn.ipynb", as_version=4)  # a notebook saved with outputs
    code = next(c for c in ran.cells if c.cell_type == "code")
    code.outputs, code.execution_count = [nbformat.v4.new_output("stream", text="trained\n")], 3
    nbformat.write(ran, folder / "01_simple_cnn.ipynb")
    unchanged = {n: (folder / n).read_bytes() for n in ("00_eda.ipynb", "05_report.ipynb")}
    result = make("pair-from-py", folder)
    assert result.returncode == 0, result.stderr
    new = nbformat.read(folder / "02_mid_cnn.ipynb", as_version=4)
    nbformat.validate(new)
    assert new.metadata.simpsons.kind == "train" and new.metadata.kernelspec.name == "simpsons-study"
    changed = [i for i, (a, b) in enumerate(zip(old.cells, new.cells)) if a.source != b.source]
    assert len(changed) == 1 and "level=10" in new.cells[changed[0]].source
    assert [c.get("id") for c in new.cells] == [c.get("id") for c in old.cells]
    assert [c.metadata.get("tags") for c in new.cells] == [c.metadata.get("tags") for c in old.cells]
    cleared = nbformat.read(folder / "01_simple_cnn.ipynb", as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for nb_ in (new, cleared) for c in nb_.cells if c.cell_type == "code")
    assert {n: (folder / n).read_bytes() for n in unchanged} == unchanged  # pairs in sync: not rewritten
    assert differing(folder) == []
    assert jupytext.read(script).cells[2].source == new.cells[2].source


def test_pair_from_py_refuses_a_py_that_does_not_parse_and_changes_no_notebook(tmp_path):
    folder = copy_notebooks(tmp_path)
    script = folder / "02_mid_cnn.py"
    script.write_text(script.read_text().replace("console.setup_logging()", "console.setup_logging(", 1))
    other = folder / "01_simple_cnn.py"
    other.write_text(other.read_text().replace("console.setup_logging()", "console.setup_logging(level=10)", 1))
    before = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}
    result = make("pair-from-py", folder)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(lines) == 1 and f"{script}: code cell 2, line 6: '(' was never closed" in lines[0] and "setup_logging(" in lines[0], result.stderr
    assert {p.name: p.read_bytes() for p in folder.glob("*.ipynb")} == before


def test_the_syntax_check_takes_ipython_syntax(tmp_path):
    script = tmp_path / "nb.py"
    script.write_text("# %%\n# %matplotlib inline\nx = 1\n\n# %%\n%time y = x\n!ls\nawait_me = 2\n\n"
                      "# %%\nimport asyncio\nawait asyncio.sleep(0)\n\n# %% [markdown]\n# not code: (\n")
    assert pairing.syntax_errors([script]) == []
    script.write_text(script.read_text() + "\n# %%\nfor\n")
    assert pairing.syntax_errors([script]) == [f"{script}: code cell 4, line 1: invalid syntax: for"]


def test_jupyterlab_shows_each_notebook_once_and_its_save_writes_the_pair(tmp_path):
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    folder = copy_notebooks(tmp_path)
    lab = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(tmp_path))
    listed = {c["name"]: c["type"] for c in lab.get("notebooks", content=True)["content"]}
    assert {n for n, kind in listed.items() if kind == "notebook"} == {p.name for p in folder.glob("*.ipynb")}
    assert all(listed[p.name] == "file" for p in folder.glob("*.py"))
    model = lab.get("notebooks/02_mid_cnn.ipynb", content=True)
    model["content"].cells[0].source += "\n\nA sentence written in JupyterLab."
    lab.save(model, "notebooks/02_mid_cnn.ipynb")
    assert "A sentence written in JupyterLab." in (folder / "02_mid_cnn.py").read_text()
    assert differing(folder) == []
