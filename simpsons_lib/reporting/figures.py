"""Every figure a document quotes comes from a results file, and stays equal to it.

A quoted figure sits between markers, invisible once rendered: ``<!--fig:KEY-->0.9438<!--/fig-->``. KEY is
a row of ``docs/results/demo.csv`` (copied from what ``make demo`` writes: ``evolution.RUN.COLUMN``, ...),
``recipe.RUN.WHAT`` (the original write-up's figures, ``original.FIGURES``) or ``bench`` (a figure of
``benchmarks/RESULTS.md``, quoted as it is written there). ``--write`` (``make figures``, after ``make demo``)
copies the demo's figures into ``docs/results/demo.csv`` and rewrites every marked figure from it; then,
and alone, ``--check`` lists each marked figure that differs from its file.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import platform
import re
import sys
from pathlib import Path

from ..config import files, params, paths
from . import original

MARKER = re.compile(r"<!--fig:(?P<key>[\w.:-]+)-->(?P<value>.*?)<!--/fig-->")
RESULTS = Path("docs") / "results" / "demo.csv"
BENCH = Path("benchmarks") / "RESULTS.md"
COMMAND = "make demo && make figures"


def documents(root: Path) -> list[Path]:
    """The documents that may quote a figure: the README, docs/, the benchmarks' record, the notebooks."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), root / BENCH,
            *sorted((root / "notebooks").glob("*.ipynb")), *sorted((root / "notebooks").glob("*.py"))]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def _format(column: str, value) -> str | None:
    """A figure as the documents quote it: scores with 4 decimals, counts with thousands separators."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    if any(word in column for word in ("f1", "accuracy", "explained")):
        return f"{value:.4f}"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _table(frame, prefix: str) -> dict[str, str]:
    """``PREFIX.ROW.COLUMN`` -> figure, for every number of a table (rows: its index)."""
    out = {}
    for row, values in frame.iterrows():
        for column, value in values.items():
            text = _format(_slug(column), value.item() if hasattr(value, "item") else value)
            if text is not None:
                out[f"{prefix}.{_slug(row)}.{_slug(column)}"] = text
    return out


def collect(profile: str = "demo") -> dict[str, str]:
    """The figures of a finished study of ``profile`` (``make demo``: ``outputs/demo``), by name: every number
    of the evolution table, of the EDA's near-duplicate audit, and of the report's two near-duplicate tables
    (each run's score with and without a near-duplicate in training; each split run beside its partner)."""
    import pandas as pd

    from . import tables

    study = paths.StudyPaths(profile)
    report = params.resolve(profile, "report")
    for needed in (study.evolution_csv, study.metrics / "eda_near_duplicates.csv", study.run("report").manifest):
        if not needed.is_file():
            raise FileNotFoundError(f"no finished study of profile {profile!r} ({needed} is missing): run make demo first")
    runs = tables.load_run_metrics(study, list(report["runs"]))
    split_runs = tables.load_run_metrics(study, list(report.get("split_runs") or []))
    audit = pd.read_csv(study.metrics / "eda_near_duplicates.csv", index_col=0)
    same = audit[audit.nunique(axis=1) == 1].iloc[:, :1]  # the audit's figures that no split changes
    validation = tables.near_duplicate_validation(study, {**runs, **split_runs})
    figures = {**_table(pd.read_csv(study.evolution_csv).set_index("run"), "evolution"),
               **{k.rpartition(".")[0]: v for k, v in _table(same.apply(pd.to_numeric, errors="coerce"), "eda").items()},
               **_table(pd.DataFrame({r: m["near_duplicates"] for r, m in {**runs, **split_runs}.items()
                                      if m.get("near_duplicates")}).T, "nd"),
               **_table(validation, "validation"),
               **_table(tables.split_comparison(runs, split_runs, validation).set_index("random split run"), "splits")}
    for run, val in validation.get("validation images", pd.Series(dtype=int)).items():
        figures[f"validation.{run}.one_image"] = f"{1 / val:.4f}"  # what one validation image weighs in micro-F1
    manifest = files.read_json(study.run("report").manifest)
    made = {"made.command": COMMAND, "made.finished": manifest.get("finished"),
            "made.commit": (manifest.get("git") or {}).get("commit"),
            "made.machine": f"{next(iter(runs.values())).get('device')}, {os.cpu_count()} CPU cores, {platform.system()} {platform.machine()}",
            "made.torch": (manifest.get("packages") or {}).get("torch")}
    return {**{k: str(v) for k, v in made.items()}, **figures}


def write_results(figures: dict[str, str], root: Path) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("figure", "value"), *figures.items()])
    return files.write_text(root / RESULTS, out.getvalue())


def read_results(root: Path) -> dict[str, str]:
    """Every figure a marker may name: the results file's and (``recipe.``) the original write-up's."""
    with open(root / RESULTS, newline="", encoding="utf-8") as f:
        figures = {row["figure"]: row["value"] for row in csv.DictReader(f)}
    for run, found in original.FIGURES.items():
        figures.update({f"recipe.{run}.{what}": f"{value:.3f}" for what, value in found.items()})
    return figures


def in_bench(value: str, bench: str) -> bool:
    """Whether ``value`` is written in the benchmarks' record as it is (a whole number, not part of one)."""
    return re.search(rf"(?<![\w.,]){re.escape(value)}(?![\w]|[.,]\d)", bench) is not None


def check(root: Path = paths.PROJECT_ROOT) -> list[str]:
    """One line per marked figure that differs from its results file (or names no figure)."""
    figures, bench = read_results(root), (root / BENCH).read_text(encoding="utf-8")
    wrong = []
    for doc in documents(root):
        for m in MARKER.finditer(doc.read_text(encoding="utf-8")):
            key, value = m["key"], m["value"]
            if key == "bench" and not in_bench(value, bench):
                wrong.append(f"{doc.relative_to(root)}: bench is {value!r}, which {BENCH} does not write")
            elif key != "bench" and figures.get(key) != value:
                wrong.append(f"{doc.relative_to(root)}: {key} is {value!r}, its results file says "
                             f"{figures.get(key, 'no such figure')!r}")
    return wrong


def rewrite(root: Path = paths.PROJECT_ROOT) -> list[Path]:
    """Every marked figure but ``bench`` set to its results file's value; the documents changed."""
    figures, changed = read_results(root), []
    for doc in documents(root):
        text = doc.read_text(encoding="utf-8")
        new = MARKER.sub(lambda m: f"<!--fig:{m['key']}-->{figures.get(m['key'], m['value'])}<!--/fig-->", text)
        if new != text:
            files.write_text(doc, new)
            changed.append(doc)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.reporting.figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"copy the figures of outputs/PROFILE into {RESULTS}, "
                        "then rewrite the documents' marked figures from it (after make demo)")
    parser.add_argument("--check", action="store_true", help="list each marked figure that differs from its file (the default)")
    parser.add_argument("--profile", default="demo", help="the study whose figures --write copies (default: demo)")
    parser.add_argument("--root", type=Path, default=paths.PROJECT_ROOT, help="the repository (default: this one)")
    args = parser.parse_args(argv)
    if args.write:
        try:
            figures = collect(args.profile)
        except (OSError, KeyError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {write_results(figures, args.root)} ({len(figures)} figures)")
        print("".join(f"rewrote {doc}\n" for doc in rewrite(args.root)), end="")
    wrong = check(args.root)
    print("".join(f"{line}\n" for line in wrong), end="", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
