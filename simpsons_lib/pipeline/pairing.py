"""Reviewable notebooks: each ``notebooks/*.ipynb`` has a paired percent-format ``.py`` (jupytext) beside it.

    python -m simpsons_lib.pipeline.pairing write    # make pair: every .py written from its .ipynb
    python -m simpsons_lib.pipeline.pairing update   # make pair-from-py: every .ipynb's cells from its edited .py
    python -m simpsons_lib.pipeline.pairing check    # the pairs that differ (exit 1 when any)

The ``.ipynb`` is what papermill executes and stays the source of truth: ``write`` is idempotent (a pair
in sync is left untouched, byte for byte). The ``.py`` carries every cell, its type and tags, and the
notebook's kernel and ``simpsons`` metadata, without outputs and without the jupytext version (so a
newer jupytext does not unpair every notebook). ``update`` keeps the ids of the cells whose source is
unchanged, and writes no outputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import paths
from ..config.files import write_text

FORMAT = {"extension": ".py", "format_name": "percent", "cell_metadata_filter": "tags",
          "notebook_metadata_filter": "kernelspec,language_info,simpsons,-jupytext.text_representation.jupytext_version"}


def paired(notebook: Path) -> Path:
    return Path(notebook).with_suffix(".py")


def notebooks(folder: Path | None = None) -> list[Path]:
    return sorted(Path(folder or paths.NOTEBOOKS_DIR).glob("*.ipynb"))


def as_script(notebook: Path) -> str:
    """The percent-format text of ``notebook`` (what its paired ``.py`` must hold)."""
    import jupytext

    return jupytext.writes(jupytext.read(notebook), fmt=FORMAT)


def differing(folder: Path | None = None) -> list[str]:
    """One line for each notebook whose paired ``.py`` is missing or differs, and each ``.py`` left alone."""
    out = []
    for nb in notebooks(folder):
        script = paired(nb)
        if not script.is_file():
            out.append(f"{script.name}: missing (make pair)")
        elif script.read_text(encoding="utf-8") != as_script(nb):
            out.append(f"{script.name}: differs from {nb.name} (make pair writes it from the notebook; make "
                       "pair-from-py takes the .py's edits into the notebook)")
    known = {paired(nb) for nb in notebooks(folder)}
    out += [f"{s.name}: no {s.with_suffix('.ipynb').name} to pair with" for s in
            sorted(Path(folder or paths.NOTEBOOKS_DIR).glob("*.py")) if s not in known]
    return out


def write(folder: Path | None = None) -> list[Path]:
    """Write each ``.py`` that differs from its notebook; returns those written."""
    written = []
    for nb in notebooks(folder):
        text, script = as_script(nb), paired(nb)
        if not script.is_file() or script.read_text(encoding="utf-8") != text:
            write_text(script, text)
            written.append(script)
    return written


class PairingError(ValueError):
    """An edited ``.py`` cannot go into its notebook; the message names the file, the cell and the line."""


def check_code(script: Path, nb) -> None:
    """Every code cell of ``nb`` (read from ``script``) compiles as the kernel runs it: IPython's magics and
    shell escapes turned into Python first (IPython's own input transformer), top-level ``await`` allowed."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()
    for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        try:
            compile(transformer.transform_cell(cell.source), f"{script.name}, code cell {number}", "exec",
                    flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        except SyntaxError as exc:
            lines = cell.source.splitlines()
            text = lines[exc.lineno - 1].strip() if exc.lineno and 0 < exc.lineno <= len(lines) else ""
            raise PairingError(f"{script}: code cell {number}, line {exc.lineno}: {exc.msg}: {text[:80]!r}; no "
                               "notebook was changed (fix the .py and run make pair-from-py again)") from None


def update(folder: Path | None = None) -> list[Path]:
    """Take each edited ``.py``'s cells into its notebook (ids kept where the source is unchanged);
    returns the notebooks written. A ``.py`` whose code does not compile (``check_code``) stops it before
    any notebook is written."""
    import jupytext
    import nbformat

    edited = []
    for nb_path in notebooks(folder):
        script = paired(nb_path)
        if not script.is_file() or script.read_text(encoding="utf-8") == as_script(nb_path):
            continue
        new = jupytext.reads(script.read_text(encoding="utf-8"), fmt=FORMAT)
        check_code(script, new)
        edited.append((nb_path, new))
    written = []
    for nb_path, new in edited:
        old = nbformat.read(nb_path, as_version=4)
        ids = {(c.cell_type, c.source): c.get("id") for c in old.cells}
        cells = []
        for cell in new.cells:
            make = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
                    "raw": nbformat.v4.new_raw_cell}[cell.cell_type]
            fresh = make(cell.source, metadata=dict(cell.metadata))
            if ids.get((cell.cell_type, cell.source)):
                fresh["id"] = ids[(cell.cell_type, cell.source)]
            cells.append(fresh)
        old.cells = cells
        for key in ("kernelspec", "language_info", "simpsons"):
            if key in new.metadata:
                old.metadata[key] = new.metadata[key]
        nbformat.validate(old)
        write_text(nb_path, nbformat.writes(old) + "\n")
        written.append(nb_path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline.pairing", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("write", "update", "check"))
    parser.add_argument("--folder", type=Path, default=None, help="default: notebooks/")
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = differing(args.folder)
        print("\n".join(problems) or "every notebook and its .py are in sync")
        raise SystemExit(1 if problems else 0)
    try:
        changed = write(args.folder) if args.command == "write" else update(args.folder)
    except PairingError as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.command == "update":
        write(args.folder)  # the .py as the notebook now renders it
    print("\n".join(f"wrote {p.relative_to(p.parent.parent)}" for p in changed) or "every pair already in sync")


if __name__ == "__main__":
    main()
