"""A sweep's roll-up (``pipeline.sweep`` runs the points): one row per point, sorted by validation
micro-F1, as ``outputs/<profile>/sweeps/<name>.csv`` and the page ``reports/sweep_<name>.html`` with a
line plot per varied parameter (and a heat map when two are varied). ``sweep_pages`` lists the pages
for the index."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import pandas as pd

from ..config.files import read_json, write_csv, write_text
from ..config.paths import StudyPaths

SWEEPS_DIR = "sweeps"
COLUMNS = ("val_micro_f1", "val_macro_f1", "test_micro_f1", "test_macro_f1", "test_tta", "epochs_trained",
           "train_seconds", "run_seconds")


def page_path(study: StudyPaths, name: str) -> Path:
    return study.reports / f"sweep_{name}.html"


def csv_path(study: StudyPaths, name: str) -> Path:
    return study.dir / SWEEPS_DIR / f"{name}.csv"


def table(rows: list[dict], varied: list[str]) -> pd.DataFrame:
    """One row per point: the varied values, its status, scores, epochs and times; the best validation
    micro-F1 first, failed points last."""
    frame = pd.DataFrame(rows)
    for col in ["point", *varied, "run_name", "status", *COLUMNS, "error"]:
        if col not in frame:
            frame[col] = None
    frame = frame[["point", *varied, "run_name", "status", *COLUMNS, "error"]]
    for col in varied:  # a list or mapping value (worst_classes: [...]) is shown, grouped and plotted as text
        frame[col] = frame[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    frame["_failed"] = frame["status"].eq("failed")
    frame["_score"] = pd.to_numeric(frame["val_micro_f1"], errors="coerce")
    frame = frame.sort_values(["_failed", "_score", "point"], ascending=[True, False, True], na_position="last")
    frame = frame.drop(columns=["_failed", "_score"])
    if not frame["test_micro_f1"].notna().any():
        frame = frame.drop(columns=["test_micro_f1", "test_macro_f1", "test_tta"])
    if not frame["error"].notna().any():
        frame = frame.drop(columns=["error"])
    return frame.reset_index(drop=True)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def figures(frame: pd.DataFrame, varied: list[str]) -> list[tuple[str, str]]:
    """(title, base64 PNG): validation micro-F1 (and test micro-F1 where scored) against each varied
    parameter, one line per combination of the others; a heat map of the two when two are varied."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[pd.to_numeric(frame["val_micro_f1"], errors="coerce").notna()].copy()
    out: list[tuple[str, str]] = []
    if ok.empty or not varied:
        return out
    for key in varied:
        values = list(dict.fromkeys(sorted(ok[key].dropna().unique(), key=lambda v: (str(type(v)), v))))
        if len(values) < 2:  # one value among the scored points: nothing to plot against
            continue
        position = {v: i for i, v in enumerate(values)}
        others = [k for k in varied if k != key]
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        groups = ok.groupby(others, dropna=False) if others else [((), ok)]
        for group, rows in groups:
            rows = rows.assign(_x=rows[key].map(position)).sort_values("_x")
            name = ", ".join(f"{k}={_label(v)}" for k, v in zip(others, group if isinstance(group, tuple) else (group,)))
            ax.plot(rows["_x"], rows["val_micro_f1"], marker="o", label=f"val {name}".strip())
            if "test_micro_f1" in rows and rows["test_micro_f1"].notna().any():
                ax.plot(rows["_x"], rows["test_micro_f1"], marker="s", linestyle="--", alpha=0.7,
                        label=f"test {name}".strip())
        ax.set_xticks(range(len(values)), [_label(v) for v in values])
        ax.set_xlabel(key)
        ax.set_ylabel("micro-F1")
        ax.set_title(f"micro-F1 against {key}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        out.append((f"micro-F1 against {key}", _png(fig)))
    if len(varied) == 2:
        a, b = varied
        grid = ok.pivot_table(index=a, columns=b, values="val_micro_f1", aggfunc="max")
        fig, ax = plt.subplots(figsize=(1.4 + 1.1 * len(grid.columns), 1.2 + 0.7 * len(grid.index)))
        image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(grid.columns)), [_label(v) for v in grid.columns])
        ax.set_yticks(range(len(grid.index)), [_label(v) for v in grid.index])
        ax.set_xlabel(b)
        ax.set_ylabel(a)
        for (i, j), v in pd.DataFrame(grid.to_numpy()).stack().items():
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="white" if v < grid.to_numpy().mean() else "black")
        fig.colorbar(image, ax=ax, label="val micro-F1")
        ax.set_title(f"val micro-F1: {a} × {b}")
        out.append((f"val micro-F1: {a} × {b}", _png(fig)))
    return out


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"
    return html.escape(str(value))


def render(name: str, run: str, varied: list[str], frame: pd.DataFrame) -> str:
    failed = int(frame["status"].eq("failed").sum())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cls = ' class="failed"' if row["status"] == "failed" else ""
        cells = []
        for col in frame.columns:
            value = row[col]
            if col == "run_name" and row["status"] != "failed":
                cells.append(f'<td><a href="{html.escape(str(value))}_reader.html">{html.escape(str(value))}</a></td>')
            else:
                cells.append(f"<td>{_cell(value)}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    plots = "".join(f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b}"><figcaption>'
                    f"{html.escape(t)}</figcaption></figure>" for t, b in figures(frame, varied))
    summary = (f"{len(frame)} points of run <b>{html.escape(run)}</b>, varying "
               f"{', '.join(f'<code>{html.escape(k)}</code>' for k in varied) or 'nothing'}"
               + (f"; <b>{failed} failed</b>" if failed else "") + ". Each point is an override run "
               "(<code>&lt;run&gt;-&lt;hash&gt;</code>) with its own files; the best validation micro-F1 first."
               + (" Test scores: predicted with the test-time augmentation in <code>test_tta</code>, which the "
                  "report's <code>submission_tta</code> gives each run (<code>auto</code>: the mode with the run's "
                  "best validation micro-F1), as the evolution table and the index score every run."
                  if "test_tta" in frame else ""))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sweep {html.escape(name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }} th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} tr.failed td {{ background: #fde8e8; color: #8a1f1f; }}
figure {{ display: inline-block; margin: 1em 1em 0 0; }} figcaption {{ text-align: center; font-size: 13px; }}
</style></head><body>
<p><a href="index.html">← the study</a></p>
<h1>Sweep {html.escape(name)}</h1>
<p>{summary}</p>
<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
{plots}
</body></html>
"""


def write_rollup(study: StudyPaths, name: str, run: str, varied: list[str], rows: list[dict]) -> Path:
    """The sweep's CSV and page (atomically); returns the page."""
    frame = table(rows, varied)
    write_csv(csv_path(study, name), frame)
    return write_text(page_path(study, name), render(name, run, varied, frame))


def sweep_pages(study: StudyPaths) -> list[dict]:
    """The sweeps of a profile with a page, by name: ``name``, ``run``, ``href`` (relative to
    ``reports/``), ``points``, ``failed`` and the best point (``best``, ``best_val_micro_f1``)."""
    out = []
    for record in sorted((study.dir / SWEEPS_DIR).glob("*.json")) if (study.dir / SWEEPS_DIR).is_dir() else []:
        try:
            data = read_json(record)
        except (OSError, ValueError):
            continue
        page = page_path(study, data.get("name", record.stem))
        if not page.is_file():
            continue
        points = data.get("points", [])
        scored = [p for p in points if isinstance(p.get("val_micro_f1"), (int, float))]
        best = max(scored, key=lambda p: p["val_micro_f1"], default=None)
        out.append({"name": data.get("name", record.stem), "run": data.get("run"), "href": page.name,
                    "points": len(points), "failed": sum(p.get("status") == "failed" for p in points),
                    "best": best["run_name"] if best else None,
                    "best_val_micro_f1": best["val_micro_f1"] if best else None})
    return out
