"""The library's structure: wings that import down the layers only, a training key drawn by the layout,
and the cells the training notebooks share kept identical."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from simpsons_lib.pipeline import record
from simpsons_lib.training import fingerprint

REPO = Path(__file__).resolve().parent.parent
TRAINING_NOTEBOOKS = ["01_simple_cnn", "02_mid_cnn", "03_resnet50", "04_modern_finetune"]


def lint_imports(repo: Path) -> subprocess.CompletedProcess:
    """import-linter's contracts of ``repo``'s pyproject.toml, on ``repo``'s library."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)


def library_copy(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(REPO / "simpsons_lib", target / "simpsons_lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def test_the_wings_import_down_the_layers_only():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    repo = library_copy(tmp_path)
    stats = repo / "simpsons_lib" / "training" / "class_scores.py"
    stats.write_text(stats.read_text() + "\n\ndef _late():\n    from ..reporting import tables  # noqa: F401\n")
    result = lint_imports(repo)
    assert result.returncode != 0
    assert "simpsons_lib.training.class_scores -> simpsons_lib.reporting.tables" in result.stdout


def test_each_library_file_belongs_to_a_wing():
    loose = [p.name for p in (REPO / "simpsons_lib").glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    wings = {p.name for p in (REPO / "simpsons_lib").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert wings == {"config", "data", "training", "inference", "reporting", "pipeline"}
    assert fingerprint.WEIGHT_SHAPING_WINGS == ("data", "training")


def edit(path: Path, text: str = "\n# an edit\n") -> None:
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize("module", ["reporting/narrative.py", "reporting/tables.py", "inference/predict.py",
                                    "inference/submission.py", "pipeline/manifest.py", "config/files.py"])
def test_editing_a_module_that_shapes_no_weights_keeps_every_training_key(tmp_path, module):
    lib = library_copy(tmp_path) / "simpsons_lib"
    values, nb = {"lr": 0.001, "epochs": 3}, REPO / "notebooks" / "01_simple_cnn.ipynb"
    before = (fingerprint.training_fingerprint(values, "data", lib), record.render_fingerprint(values, nb, lib))
    edit(lib / module, '\n\ndef describe_more() -> str:\n    """A docstring only a reader sees."""\n    return ""\n')
    after = (fingerprint.training_fingerprint(values, "data", lib), record.render_fingerprint(values, nb, lib))
    assert after[0] == before[0]  # no run retrains ...
    assert after[1] != before[1]  # ... and the notebooks re-render


@pytest.mark.parametrize("module", ["training/loop.py", "training/transforms.py", "data/layout.py",
                                    "data/cache.py", "training/new_module.py"])
def test_editing_or_adding_a_weight_shaping_module_changes_every_training_key(tmp_path, module):
    lib = library_copy(tmp_path) / "simpsons_lib"
    runs = [{"lr": 0.001, "epochs": 3}, {"lr": 0.01, "epochs": 5, "arch": "mid_cnn"}]
    before = [fingerprint.training_fingerprint(v, "data", lib) for v in runs]
    path = lib / module
    if path.exists():
        edit(path)
    else:
        path.write_text('"""A new module of the wing: part of the key by membership."""\n')
    after = [fingerprint.training_fingerprint(v, "data", lib) for v in runs]
    assert all(a != b for a, b in zip(after, before))


def test_the_index_page_code_only_rebuilds_the_index(tmp_path):
    lib = library_copy(tmp_path) / "simpsons_lib"
    values, nb = {"lr": 0.001}, REPO / "notebooks" / "01_simple_cnn.ipynb"
    before = record.render_fingerprint(values, nb, lib)
    edit(lib / "reporting" / "index_page.py")
    assert record.render_fingerprint(values, nb, lib) == before
    edit(lib / "reporting" / "plots.py")
    assert record.render_fingerprint(values, nb, lib) != before


def shared_cells(name: str) -> list[str]:
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and "shared" in c.metadata.get("tags", [])]


def test_the_cells_the_training_notebooks_share_are_identical():
    """Cells tagged ``shared`` are the training notebooks' common steps: the same cells, in the same order,
    in each of 01-04 (edit them in all four, or the test names the one that drifted)."""
    reference = shared_cells(TRAINING_NOTEBOOKS[0])
    assert len(reference) >= 10
    for name in TRAINING_NOTEBOOKS[1:]:
        cells = shared_cells(name)
        assert len(cells) == len(reference), f"{name}: {len(cells)} shared cells, {len(reference)} in 01"
        for i, (a, b) in enumerate(zip(reference, cells)):
            assert a == b, f"{name}: shared cell {i} differs from 01_simple_cnn's:\n{b}\n---\n{a}"


def test_a_shared_cell_that_drifts_is_not_left_untagged():
    """Every code cell found in all four training notebooks carries the tag (so the test above guards it)."""
    sources = [set(c.source for c in nbformat.read(REPO / "notebooks" / f"{n}.ipynb", as_version=4).cells
                   if c.cell_type == "code") for n in TRAINING_NOTEBOOKS]
    common = set.intersection(*sources)
    assert common == set(shared_cells(TRAINING_NOTEBOOKS[0]))


def test_no_import_cycle_between_modules():
    """No import cycle between the library's modules, lazy (function-level) imports included: acyclicity
    does not rest on an import hidden in a function."""
    import grimp

    graph = grimp.build_graph("simpsons_lib")
    modules = [m for m in graph.modules if m.count(".") >= 2]  # the wings' modules, not their packages
    cycles = [(a, b) for a in modules for b in graph.find_modules_directly_imported_by(a)
              if b in modules and graph.chain_exists(importer=b, imported=a)]
    assert cycles == []
    assert len(modules) >= 30
