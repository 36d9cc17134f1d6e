"""`make lab` lists each notebook once: with the Lab settings the Makefile passes, Jupyter's contents
manager (jupytext's, as `make setup` installs it) lists the six ``notebooks/*.ipynb`` as notebooks and
their paired ``.py`` as Python text files, still beside them for a reviewer. Without those settings
jupytext lists twelve notebooks."""

import re
from pathlib import Path

from traitlets.config import Config

REPO = Path(__file__).resolve().parent.parent


def lab_settings() -> dict:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    line = re.search(r"^LAB_SETTINGS\s*:?=\s*(.*)$", text, re.M)
    assert line and "$(LAB_SETTINGS)" in re.search(r"^lab:.*\n\t(.*)$", text, re.M).group(1)
    config: dict = {}
    for option in line.group(1).split():
        key, value = option.removeprefix("--").split("=", 1)
        section, name = key.rsplit(".", 1)
        config.setdefault(section, {})[name] = value
    return config


def listing(config: dict) -> dict[str, str]:
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    manager = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(REPO), config=Config(config))
    return {m["name"]: m["type"] for m in manager.get("notebooks", content=True)["content"]}


def test_lab_lists_each_notebook_once_and_its_pair_as_python_text():
    names = listing(lab_settings())
    notebooks = sorted(n for n, kind in names.items() if kind == "notebook")
    assert notebooks == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")) and len(notebooks) == 6
    assert all(names[Path(n).with_suffix(".py").name] == "file" for n in notebooks)  # the pairs stay, as text


def test_without_the_settings_jupytext_lists_every_pair_as_a_notebook():
    assert sum(kind == "notebook" for kind in listing({}).values()) == 12  # what the settings prevent
