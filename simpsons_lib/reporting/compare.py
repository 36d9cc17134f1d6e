"""Runs compared by what changed: the parameters in which two runs differ, and their metric deltas.

    python -m simpsons_lib.pipeline compare mid_cnn mid_cnn-3fa9c2 --profile demo     # make compare A=.. B=..

Any two runs with saved metrics compare: the pipeline's, override runs (``<run>-<hash>``) and sweep
points. ``changed_params`` is also the evolution table's "what changed" cell (``tables.metrics_table``).
"""

from __future__ import annotations

import csv
import json
from typing import Any, Mapping

from ..config.files import read_json
from ..config.params import RUN_NAMES, changed_values
from ..config.paths import StudyPaths

# what names or places a run rather than configuring it: never a difference worth showing
IGNORED = (*RUN_NAMES, "title")
METRICS = (("micro_f1", "val micro-F1 (best epoch)"), ("macro_f1", "val macro-F1 (best epoch)"),
           ("accuracy", "val accuracy"), ("last_epoch_val_micro_f1", "val micro-F1 (last epoch)"),
           ("test_micro_f1", "test micro-F1"), ("test_macro_f1", "test macro-F1"),
           ("epochs_trained", "epochs"), ("train_seconds", "training seconds"))
SECONDS = ("train_seconds",)


def changed_params(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, tuple]:
    """``{key: (old, new)}`` for every parameter whose value differs (``params.changed_values``: a key only
    one side has counts as ``None`` on the other); the keys that only name the run are left out."""
    return changed_values(before, after, ignore=IGNORED)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value)


def what_changed(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, limit: int = 6) -> str:
    """A compact cell: ``arch mid_cnn, worst_k 12, +2 more`` (the new values); ``–`` when nothing differs."""
    diff = changed_params(before, after)
    parts = [f"{k} {_show(new)}" for k, (_, new) in diff.items()]
    if len(parts) > limit:
        parts = parts[:limit] + [f"+{len(parts) - limit} more"]
    return ", ".join(parts) or "–"


def run_record(study: StudyPaths, run: str) -> dict:
    """A run's parameters and metrics (its metrics JSON, test scores from the evolution table or its
    sweep's record); a run without saved metrics fails naming the file."""
    rp = study.run(run)
    if not rp.metrics_json.is_file():
        raise FileNotFoundError(f"no metrics for run {run!r} at {rp.metrics_json} (runs with metrics: "
                                f"{', '.join(known_runs(study)) or 'none'})")
    metrics = read_json(rp.metrics_json)
    p = metrics.get("params")
    if p is None and rp.manifest.is_file():
        p = read_json(rp.manifest).get("parameters")
    out = {"run": run, "params": p or {}, "metrics": {k: metrics.get(k) for k, _ in METRICS}}
    out["metrics"].update({k: v for k, v in _test_scores(study, run).items() if v is not None})
    return out


def known_runs(study: StudyPaths) -> list[str]:
    folder = study.metrics
    return sorted(p.stem for p in folder.glob("*.json") if not p.stem.endswith(("_test", "submission"))
                  and p.stem != "ensemble") if folder.is_dir() else []


def _test_scores(study: StudyPaths, run: str) -> dict:
    found: dict = {}
    if study.evolution_csv.is_file():
        with open(study.evolution_csv, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("run") == run:
                    found = {k: _float(row.get(k)) for k in ("test_micro_f1", "test_macro_f1")}
    sweeps = study.dir / "sweeps"
    for record in sorted(sweeps.glob("*.json")) if sweeps.is_dir() and not any(found.values()) else []:
        try:
            for point in read_json(record).get("points", []):
                if point.get("run_name") == run:
                    found = {k: point.get(k) for k in ("test_micro_f1", "test_macro_f1")}
        except (OSError, ValueError):
            continue
    return found


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compare(study: StudyPaths, run_a: str, run_b: str) -> str:
    """The parameter diff (A -> B) and the metric deltas (B - A) of two runs, as text."""
    a, b = run_record(study, run_a), run_record(study, run_b)
    diff = changed_params(a["params"], b["params"])
    lines = [f"{run_a} -> {run_b} (profile {study.profile})", "", "parameters that differ:"]
    width = max([len(k) for k in diff] + [9])
    lines += [f"  {k:<{width}}  {_show(old):>14} -> {_show(new)}" for k, (old, new) in diff.items()] or ["  (none)"]
    lines += ["", f"  {'metric':<26} {run_a[:14]:>14} {run_b[:14]:>14} {'delta':>10}"]
    for key, label in METRICS:
        va, vb = a["metrics"].get(key), b["metrics"].get(key)
        if va is None and vb is None:
            continue
        digits = 1 if key in SECONDS else 4  # a time to a tenth of a second, a score to 4 places
        delta = f"{vb - va:+.{digits}f}" if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else "–"
        if key in ("epochs_trained",) and delta != "–":
            delta = f"{vb - va:+d}" if isinstance(va, int) and isinstance(vb, int) else delta
        lines.append(f"  {label:<26} {_num(va, digits):>14} {_num(vb, digits):>14} {delta:>10}")
    return "\n".join(lines)


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
