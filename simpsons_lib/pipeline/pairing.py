"""Reviewable notebooks: each ``notebooks/*.ipynb`` has a paired percent-format ``.py`` that jupytext keeps
from ``jupytext.toml`` at the repository root (``make pair``: ``jupytext --to py:percent``; ``make
pair-from-py``: ``jupytext --to ipynb --update``, which keeps the cell ids, then ``nbconvert
--clear-output``). What jupytext does not do is here: ``make pair-from-py`` first refuses a ``.py`` whose
code does not parse, naming the file and the cell, before any notebook is touched::

    python -m simpsons_lib.pipeline.pairing notebooks/*.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterable


def syntax_errors(scripts: Iterable[str | Path]) -> list[str]:
    """One line for each code cell of the percent-format ``scripts`` that does not parse as Python after
    IPython's own input transformations (magics, ``!`` shell lines; a top-level ``await`` parses too)."""
    import jupytext
    from IPython.core.inputtransformer2 import TransformerManager

    ipython, out = TransformerManager(), []
    for script in scripts:
        cells = [c for c in jupytext.read(script).cells if c.cell_type == "code"]
        for number, cell in enumerate(cells, 1):
            try:
                compile(ipython.transform_cell(cell.source), f"<cell {number}>", "exec", dont_inherit=True,
                        flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            except SyntaxError as exc:
                text = (exc.text or "").strip()
                out.append(f"{script}: code cell {number}, line {exc.lineno}: {exc.msg}" + (f": {text}" if text else ""))
    return out


def main(argv: list[str] | None = None) -> None:
    problems = syntax_errors(sys.argv[1:] if argv is None else argv)
    if problems:
        raise SystemExit("\n".join(f"error: {p} (no notebook was changed)" for p in problems))


if __name__ == "__main__":
    main()
