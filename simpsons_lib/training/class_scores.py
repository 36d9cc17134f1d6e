"""The one rule for which classes a run validated and which are its worst, read from a metrics file's
``per_class`` entries (torch-free: the reports and the EDA use it without loading torch)."""

from __future__ import annotations

from pathlib import Path

from ..config.files import read_json


def is_validated(entry: dict) -> bool:
    """Whether a ``per_class`` entry was scored on validation images (metrics files written before
    unvalidated classes were marked have f1 0.0 with support 0 for them: not validated either)."""
    return entry.get("f1") is not None and int(entry.get("support", 0)) > 0


def ranked_classes(per_class: dict[str, dict]) -> list[str]:
    """The validated classes of a ``per_class`` dict, lowest F1 first (ties by name)."""
    return sorted((c for c, v in per_class.items() if is_validated(v)), key=lambda c: (per_class[c]["f1"], c))


def worst_classes_from_metrics(metrics: dict | str | Path, k: int | None = None,
                               below: float | None = None) -> list[str]:
    """Names of the weakest classes by validation F1 in a metrics file (``compute_metrics``).

    ``k``: the k lowest; ``below``: every class with F1 under the threshold; both: the union. Only
    validated classes are chosen: one with no validation image has no F1 (``None``; 0.0 with support 0
    in older files), which says nothing about how hard it is.
    """
    if k is None and below is None:
        raise ValueError("give k (the k lowest classes) and/or below (an F1 threshold)")
    if not isinstance(metrics, dict):
        metrics = read_json(metrics)
    per_class = metrics["per_class"]
    ranked = ranked_classes(per_class)
    chosen = set(ranked[:k]) if k else set()
    if below is not None:
        chosen |= {n for n in ranked if per_class[n]["f1"] < below}
    return [n for n in ranked if n in chosen]
