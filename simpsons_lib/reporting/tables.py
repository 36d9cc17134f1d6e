"""The study's tables, read from the runs' saved metrics: the evolution, per-class F1 across runs, the
best run, why the strong classes were chosen, the misclassified images, the optimizer's groups and a
model's stages. Nothing here shapes a model's weights."""

from __future__ import annotations

import html
from typing import Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config.files import read_json
from ..config.paths import RunPaths, StudyPaths
from ..training.class_scores import is_validated
from ..training.models import TransferModel
from . import compare
from .notes import NO_ANSWERS


def load_run_metrics(study: StudyPaths, runs: list[str]) -> dict[str, dict]:
    """Saved metrics of ``runs`` (in order); a missing one fails naming its file."""
    out = {}
    for run in runs:
        path = study.run(run).metrics_json
        if not path.exists():
            raise FileNotFoundError(f"runs: no metrics for run {run!r} at {path}; run its notebook first")
        out[run] = read_json(path)
    return out


def load_predictions(study: StudyPaths, run: str) -> pd.DataFrame:
    """A run's per-image validation predictions (``evaluate.prediction_frame``)."""
    return pd.read_csv(study.run(run).predictions_csv)


def metrics_table(metrics_by_run: dict[str, dict], test_scores: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per run: validation micro-F1, macro-F1, accuracy at the best epoch, the last epoch's
    validation micro- and macro-F1 beside them (the best epoch is chosen on the same split, so the gap
    is the selection effect), and, with ``test_scores`` (``report.test_scores``), the micro- and
    macro-F1 on the held-out test answers with the TTA each used (``test_tta``); ``test_scores={}`` (no test
    labels) leaves those columns empty and says why once, in the table's caption (``attrs["caption"]``, which
    ``show`` writes above it).
    ``what_changed``: the parameters in which each run differs from the run before it (``compare``);
    ``amp``: the mixed precision the run trained and was validated in (bf16, fp16 or off)."""
    changes, before = {}, None
    for run, m in metrics_by_run.items():
        if m.get("params") is None:
            changes[run] = "mean of " + " + ".join(m["members"]) if m.get("members") else "–"
            continue
        changes[run] = compare.what_changed(before, m["params"]) if before is not None else "–"
        before = m["params"]
    rows = [{"run": run, "title": m.get("title", run), "what_changed": changes[run], "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
             "accuracy": m["accuracy"], "last_epoch_micro_f1": m.get("last_epoch_val_micro_f1"),
             "last_epoch_macro_f1": m.get("last_epoch_val_macro_f1"), "epochs": m.get("epochs_trained"),
             "train_seconds": m.get("train_seconds"), "amp": m.get("amp")}
            for run, m in metrics_by_run.items()]
    table = pd.DataFrame(rows)
    if test_scores is not None:
        for key in ("test_micro_f1", "test_macro_f1"):
            table[key] = [test_scores[r][key] if r in test_scores else None for r in table["run"]]
        if not test_scores:
            table.attrs["caption"] = f"test_micro_f1, test_macro_f1: {NO_ANSWERS}, so no run has a test score."
        else:  # the TTA each run's test predictions used (``report.submission_tta``)
            table["test_tta"] = [test_scores[r].get("test_tta") if r in test_scores else None for r in table["run"]]
    return table


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and digits == 0):
        return f"{int(round(float(value))):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


COUNT_COLUMNS = ("epochs", "parameters", "validation images", "images", "train_images_per_s")
RATE_COLUMNS = ("lr",)  # a learning rate to 3 significant digits (1e-05, never 0.0000)


def _rate(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.3g}"


def show_values(values: pd.Series):
    """Named values (a Series) as a two-column table headed by the Series' name: what each value is, and
    the value; no index, no ``Name: …, dtype: object`` line."""
    return show(pd.DataFrame({values.name or "": [str(k) for k in values.index],
                              "value": pd.Series(list(values.values), dtype=object)}))


SECONDS_COLUMNS = ("train_seconds", "seconds")


def show(table: pd.DataFrame, digits: int = 4):
    """A table as a reader sees it: no index column, whole titles (never cut), scores to ``digits``,
    counts (``epochs``…) as integers, seconds to one decimal, and "–" where there is no value (the
    ensemble's epochs, a score the data has no labels for), under the table's ``attrs["caption"]`` if any."""
    caption = table.attrs.get("caption")
    if table.index.name is not None or not isinstance(table.index, pd.RangeIndex):
        table = table.reset_index()  # a named index (run) is a column like the others
    formats = {c: (lambda v: _cell(v, 0)) if c in COUNT_COLUMNS else (lambda v: _cell(v, 1))
               if c in SECONDS_COLUMNS else (lambda v: _rate(v) if isinstance(v, float) else _cell(v, digits))
               if c in RATE_COLUMNS else (lambda v: _cell(v, digits)) for c in table.columns}
    # Titles, run and class names are the user's text: escaped like every cell and heading (a Styler does
    # not escape on its own)
    styler = table.style.set_caption(html.escape(caption)) if caption else table.style
    return (styler.hide(axis="index").format(formats, escape="html")
            .format_index(escape="html", axis=0).format_index(escape="html", axis=1)
            .set_table_styles([{"selector": "td, th", "props": "text-align: right; padding: 2px 8px"},
                               {"selector": "td.col1, th.col1", "props": "text-align: left"}]))


def per_class_f1_table(metrics_by_run: dict[str, dict]) -> pd.DataFrame:
    """Classes × runs, validation F1; NaN where a run had no validation image of the class (not
    validated, not an F1 of 0)."""
    return pd.DataFrame({run: {c: float(v["f1"]) if is_validated(v) else np.nan for c, v in m["per_class"].items()}
                         for run, m in metrics_by_run.items()}, dtype=float)


def near_duplicate_validation(study: StudyPaths, metrics_by_run: dict[str, dict]) -> pd.DataFrame:
    """Per run: its split, its validation images, how many of them have a near-duplicate among its training
    images, and its accuracy (= micro-F1: one label per image) on those and on the others."""
    rows = []
    for run, m in metrics_by_run.items():
        predictions = load_predictions(study, run)
        if "near_duplicate_in_train" not in predictions:
            continue  # validated before the audit existed
        twin = predictions["near_duplicate_in_train"].astype(bool)
        rows.append({"run": run, "split": m.get("split", "random"), "validation images": len(predictions),
                     "with a near-duplicate in training": int(twin.sum()),
                     "micro-F1 on those": predictions["correct"][twin].mean() if twin.any() else np.nan,
                     "micro-F1 on the others": predictions["correct"][~twin].mean() if (~twin).any() else np.nan,
                     "micro-F1": m["micro_f1"]})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def split_partner(run: str, m: dict, metrics_by_run: dict[str, dict]) -> str:
    """The run of ``metrics_by_run`` trained like ``run`` (its metrics ``m``) but under the other split
    (``params.split_partner`` on the recorded parameters)."""
    from ..config.params import split_partner as partner_of

    values = {other: om.get("params") or {} for other, om in metrics_by_run.items() if other != run}
    partner = partner_of(run, {**values, run: m.get("params") or {}})
    if partner is None:
        raise ValueError(f"split_runs: run {run!r} ({(m.get('params') or {}).get('split')} split) differs in more "
                         f"than its split from every run of runs ({', '.join(metrics_by_run)}); give it the same "
                         "parameters as one of them but split")
    return partner


def split_comparison(metrics_by_run: dict[str, dict], split_metrics: dict[str, dict],
                     validation: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each run of ``split_metrics`` beside its partner in ``metrics_by_run`` (``split_partner``): validation
    micro- and macro-F1 under the random and the grouped split, their difference, and, with ``validation``
    (``near_duplicate_validation``), the most of it the near-duplicates can explain: the random split's
    validation images with a near-duplicate in training, each worth 1/n of its micro-F1 (n: its validation
    images). The rest of the difference is the noise of validating on other images."""
    rows = []
    for run, m in split_metrics.items():
        partner = split_partner(run, m, metrics_by_run)
        by_split = {m.get("split", "random"): (run, m), metrics_by_run[partner].get("split", "random"):
                    (partner, metrics_by_run[partner])}
        (r_run, r), (g_run, g) = by_split["random"], by_split["grouped"]
        twins = (validation.loc[r_run, "with a near-duplicate in training"]
                 if validation is not None and r_run in getattr(validation, "index", ()) else None)
        rows.append({"model": r["title"], "random split run": r_run, "grouped split run": g_run,
                     "random: validation images": _val_images(r), "grouped: validation images": _val_images(g),
                     "random: micro-F1": r["micro_f1"], "grouped: micro-F1": g["micro_f1"],
                     "random: macro-F1": r["macro_f1"], "grouped: macro-F1": g["macro_f1"],
                     "micro-F1 difference (random - grouped)": r["micro_f1"] - g["micro_f1"],
                     "random: validation images with a near-duplicate in training":
                         None if twins is None else int(twins),
                     "at most explained by near-duplicates":
                         None if twins is None else int(twins) / max(1, _val_images(r))})
    return pd.DataFrame(rows)


def _val_images(m: dict) -> int:
    """A run's validation images (the sum of its classes' supports)."""
    return int(sum(c.get("support", 0) for c in (m.get("per_class") or {}).values()))


def best_run(table: pd.DataFrame, metric: str = "micro_f1") -> str:
    """The run with the highest ``metric`` in a ``metrics_table`` (the first of equals)."""
    return str(table.loc[table[metric].idxmax(), "run"])


def submission_run(name: str, table: pd.DataFrame) -> str:
    """``name``, or the best run by validation micro-F1 when ``name`` is ``"best"``."""
    if name == "best":
        return best_run(table)
    if name not in set(table["run"]):
        raise ValueError(f"submission_run: {name!r} is not one of the runs {list(table['run'])} (or 'best')")
    return name


def misclassified(predictions: pd.DataFrame) -> pd.DataFrame:
    """The wrong predictions, most confident first."""
    wrong = predictions[~predictions["correct"]]
    return wrong.sort_values("confidence", ascending=False).reset_index(drop=True)



def worst_classes_table(p, rp: RunPaths, worst: list[str]) -> pd.DataFrame:
    """Why the strong classes were chosen: their validation F1 and support in ``worst_from_run``, with that
    run's median over the classes it validated."""
    if not p["worst_from_run"]:
        return pd.DataFrame({"class": worst, "chosen by": "worst_classes"})
    per_class = read_json(rp.study.run(p["worst_from_run"]).metrics_json)["per_class"]
    validated = [v["f1"] for v in per_class.values() if is_validated(v)]
    median = float(pd.Series(validated).median()) if validated else float("nan")
    rows = [{"class": c, f"F1 in {p['worst_from_run']}": per_class[c]["f1"], "validation images":
             per_class[c]["support"], "median class F1": round(median, 4)} for c in worst if c in per_class]
    return pd.DataFrame(rows)


def param_groups_table(groups: torch.nn.Module | Iterable[dict]) -> pd.DataFrame:
    """What ``build_optimizer`` gets, one row per group: its name, trainable parameters and starting LR
    (the schedule scales every group alike). A model: one row, ``lr`` left empty (the run's ``lr``)."""
    if isinstance(groups, torch.nn.Module):
        n = sum(p.numel() for p in groups.parameters() if p.requires_grad)
        return pd.DataFrame([{"group": "all trainable parameters", "parameters": n, "lr": None}])
    return pd.DataFrame([{"group": g.get("name", str(i)), "parameters": sum(p.numel() for p in g["params"]),
                          "lr": g["lr"]} for i, g in enumerate(groups)])


def stage_table(model: nn.Module):
    """One row per top-level stage of the network: parameters, and whether they train or stay frozen."""
    net = model.net if isinstance(model, TransferModel) else model
    stages = []
    for name, child in net.named_children():
        if isinstance(child, nn.Sequential) and name == "features" and len(child) > 2:
            stages += [(f"features.{i}", block) for i, block in enumerate(child)]
        else:
            stages.append((name, child))
    rows = []
    for name, module in stages:
        n = sum(p.numel() for p in module.parameters())
        if n == 0:
            continue
        trains = sum(p.numel() for p in module.parameters() if p.requires_grad)
        rows.append({"stage": name, "parameters": n, "trains": "yes" if trains == n else "no" if trains == 0 else "partly"})
    return pd.DataFrame(rows)
