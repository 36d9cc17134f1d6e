"""The original write-up's figures, the one place they live: what the recipe's steps reached on the Kaggle
data, keyed by the run of the study that repeats each step (the run names of ``params/full`` and
``params/demo``). They are the original's, never something this repository measured, and every page that
shows one says so. A run with no entry here (``modern``, or any run of a profile of one's own) has none,
and so does every run whose data is neither the Kaggle data nor its drawn stand-in (``data_dir``)."""

from __future__ import annotations

from typing import Mapping

SOURCE = "the original write-up's, on the Kaggle data"

# run -> the original's validation micro-F1 (and its Kaggle score, where the write-up submitted that step)
FIGURES: dict[str, dict[str, float]] = {
    "simple_cnn": {"val_micro_f1": 0.817},
    "simple_cnn_aug": {"val_micro_f1": 0.830},
    "mid_cnn": {"val_micro_f1": 0.856},
    "resnet50": {"val_micro_f1": 0.956, "kaggle": 0.993},
}


def applies(p: Mapping) -> bool:
    """Whether the original's figures can stand beside a run of these parameters: the Kaggle data, or the
    drawn demo stand-in of it (its scores are not comparable, and the pages say so), never a data folder
    of one's own (``data_dir``)."""
    return not p.get("data_dir") and p.get("dataset", "kaggle") in ("kaggle", "demo")


def figure(run: str, p: Mapping | None = None) -> dict[str, float] | None:
    """The original's figures for ``run`` (``val_micro_f1``, maybe ``kaggle``), or None (no such step, or
    data of one's own)."""
    if p is not None and not applies(p):
        return None
    return FIGURES.get(run)


def describe(run: str, p: Mapping | None = None) -> str | None:
    """The original's figures for ``run`` in words, labelled as the original's, or None."""
    found = figure(run, p)
    if not found:
        return None
    text = f"validation micro-F1 {found['val_micro_f1']:.3f}"
    if "kaggle" in found:
        text += f", Kaggle {found['kaggle']:.3f} for its submission"
    return f"{text} ({SOURCE})"


def describe_submission(p: Mapping | None = None) -> str | None:
    """The original's Kaggle score, labelled (it submitted its ResNet50 run), or None where it does not apply."""
    scored = [(run, f["kaggle"]) for run, f in FIGURES.items() if "kaggle" in f]
    if not scored or (p is not None and not applies(p)):
        return None
    run, score = scored[0]
    return f"Kaggle {score:.3f} (its {run} submission)"


def short(run: str, p: Mapping | None = None) -> str | None:
    """The original's figures for ``run`` in a table cell whose header says whose they are."""
    found = figure(run, p)
    if not found:
        return None
    return f"val {found['val_micro_f1']:.3f}" + (f" · Kaggle {found['kaggle']:.3f}" if "kaggle" in found else "")
