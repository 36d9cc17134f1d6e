"""``reports/index.html``: the study read as steps, in order. Every run of the profile is listed with its
state as its files say (current, out of date, failed, running, not run yet), what it tried, its scores
(never a failed run's, an out-of-date run's marked as such), its gain over the step before, the original
write-up's figure where there is one (labelled as the original's, on the Kaggle data; the column is shown
only on the Kaggle data and its drawn stand-in), where it errs most,
and links to its pages: only to files that exist. It renders from whatever a study folder holds, however
partial (a run that failed, results removed, no report yet)."""

from __future__ import annotations

import csv
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy

from ..config import params, paths
from ..config.files import read_json, write_text
from . import compare
from . import notes as page_notes
from . import original
from . import sweeps

TEMPLATES = Path(__file__).resolve().parent / "templates"
BEYOND_THE_RECIPE = ("04_modern_finetune",)  # notebooks whose runs go beyond the original's recipe

CURRENT, STALE, FAILED, RUNNING, NOT_RUN = "current", "out of date", "failed", "running", "not run yet"
SHOWN = (CURRENT, STALE)  # states whose scores are shown (out of date: marked)


def _notes(manifests: list[dict], weights_used: dict[str, dict] | None = None) -> list[str]:
    """Lines the reader must see first: demo data, and transfer runs without pretrained weights, by their
    parameters (``weights: null``) or by their metrics (``weights_used: null``: the named weights could
    not be had and ``weights_fallback: random`` trained from random weights; ``weights_used`` maps a run
    to its metrics' ``weights_used`` and ``weights_fallback_reason``)."""
    notes = []
    if any(m.get("data", {}).get("demo") for m in manifests):
        notes.append(page_notes.DEMO + " The table shows the ranking as it came out on the demo data, and the "
                     "report says what each step changed.")
    for m in manifests:
        p = m.get("parameters", {})
        used = (weights_used or {}).get(m["run"], {})
        if p.get("arch") == "transfer" and not p.get("weights"):
            notes.append(f"{m['run']}: {p.get('backbone')} without pretrained weights (random frozen features): "
                         "it shows the mechanics of fine-tuning, not transfer learning.")
        elif p.get("arch") == "transfer" and "weights_used" in used and used["weights_used"] is None:
            notes.append(page_notes.random_weights_note(
                m["run"], p, used.get("weights_fallback_reason") or "the weights could not be had"))
    return notes


def _is_stale(study: paths.StudyPaths, manifest: dict) -> bool:
    key = study.run(manifest["run"]).key_file
    return key.is_file() and manifest.get("keys") is not None and read_json(key) != manifest["keys"]


def _read(path: Path) -> dict | None:
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        return None


def run_state(study: paths.StudyPaths, run: str, manifest: dict | None) -> str:
    """A run's state, read from its files: ``current`` (its executed notebook and manifest, with the keys
    the plan now gives it), ``out of date`` (its ``.plan/<run>.key`` differs from its manifest's keys, or
    its manifest is missing), ``failed`` (a ``<run>.FAILED.ipynb`` and no ``<run>.ipynb``), ``running``
    (a ``<run>.running.ipynb``: running now, or killed) or ``not run yet``."""
    rp = study.run(run)
    if rp.notebook.is_file():
        return STALE if manifest is None or _is_stale(study, manifest) else CURRENT
    if rp.failed_notebook.is_file():
        return FAILED
    if rp.running_notebook.is_file():
        return RUNNING
    return NOT_RUN


def _test_scores(study: paths.StudyPaths, p: dict) -> tuple[dict[str, str], str | None]:
    """Each run's test micro-F1 from the report's evolution table (scored on the test answers), and why a
    run has none when no run has one (``no test labels ...``, in the words of the data of ``p``), said once
    under the table rather than in every row; empty before the report ran."""
    if not study.evolution_csv.is_file():
        return {}, None
    with open(study.evolution_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        column = "test_micro_f1" in (reader.fieldnames or [])
    out, why = {}, None
    for row in rows:
        value = row.get("test_micro_f1")
        try:
            out[row["run"]] = f"{float(value):.4f}"
        except (TypeError, ValueError):
            out[row["run"]] = "–"
            why = why or value or None  # an evolution table that wrote its reason in every row
    if column and rows and why is None and all(v == "–" for v in out.values()):
        why = page_notes.no_test_labels(p)
    return out, why


def _test_header(study: paths.StudyPaths, setting: str | None) -> str:
    """What the test column's footnote says of its TTA: the modes the report's evolution table recorded
    (``test_tta``, chosen by ``report.submission_tta``), else the report's ``submission_tta`` when it names
    a mode (a table written before ``test_tta`` was recorded)."""
    modes = set()
    if study.evolution_csv.is_file():
        with open(study.evolution_csv, newline="", encoding="utf-8") as f:
            modes = {row.get("test_tta") for row in csv.DictReader(f)} - {None, ""}
    if not modes and setting not in (None, "auto"):
        modes = {setting}
    if len(modes) > 1:
        return ("test micro-F1 (on the test answers, each run with the test-time augmentation its validation "
                "micro-F1 chose: evolution.csv's test_tta)")
    mode = next(iter(modes), "none")
    return f"test micro-F1 (on the test answers, {mode} TTA)" if mode != "none" else "test micro-F1 (on the test answers)"


def _link(study: paths.StudyPaths, path: Path, label: str) -> dict | None:
    """A link from the reports folder to ``path``, only when the file exists."""
    if not path.is_file():
        return None
    return {"href": os.path.relpath(path, study.reports).replace(os.sep, "/"), "label": label}


def _pages(study: paths.StudyPaths, run: str, state: str) -> list[dict]:
    rp = study.run(run)
    links = [_link(study, rp.reader_html, "page"), _link(study, rp.report_html, "with code"),
             _link(study, rp.notebook, "notebook")]
    if state == FAILED:
        links.append(_link(study, rp.failed_notebook, "failed notebook"))
    return [link for link in links if link]


def _resolved(study: paths.StudyPaths, run: str) -> dict:
    """A run's parameters as the profile gives them now (for runs with no manifest), or {}."""
    try:
        p = params.resolve(study.profile, run)
    except (params.ParameterError, OSError):
        return {}
    return {**p, "kind": p.kind, "notebook": p.notebook}


def _no_tta_score(study: paths.StudyPaths, run: str, metrics: dict) -> float | None:
    """The best epoch's validation micro-F1 without TTA (the history's), for a run validated with TTA."""
    history, best = study.run(run).history_csv, metrics.get("best_epoch")
    if not history.is_file() or best is None:
        return None
    with open(history, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if str(row.get("epoch")) == str(best):
                try:
                    return float(row["val_micro_f1"])
                except (KeyError, TypeError, ValueError):
                    return None
    return None


def _varied(study: paths.StudyPaths, p: dict, info: dict) -> str:
    """What an override run (a sweep point, ``<run>-<hash>``) sets differently from its run as the profile
    gives it now (else as its run last ran), as ``lr 0.001, epochs 6``; empty for a run of the profile."""
    base = p.get("run")
    if not base or base == p.get("run_name", base):
        return ""
    try:
        before = dict(params.resolve(study.profile, base))
    except (params.ParameterError, OSError):
        before = (info.get(base) or {}).get("p")
    return compare.what_changed(before, p) if before else ""


def _state_text(state: str, waits_for: list[str]) -> str:
    return {CURRENT: "current", STALE: "out of date: its inputs changed since it ran (run make again)",
            FAILED: "failed: its notebook shows where", RUNNING: "running (or stopped while running)",
            NOT_RUN: "not run yet" + (f" (needs {', '.join(waits_for)})" if waits_for else "")}[state]


def build(study: paths.StudyPaths, order: list[str] | None = None) -> Path:
    """Write the index page of ``study``: the runs of ``order`` (the profile's runs, in study order), then
    any other run that left a manifest, by start time."""
    import jinja2

    found = ({p.stem: m for p in study.manifests.glob("*.json") if (m := _read(p)) is not None}
             if study.manifests.is_dir() else {})
    runs = list(dict.fromkeys(order or []))
    runs += sorted((r for r in found if r not in runs), key=lambda r: found[r].get("started", ""))
    info = {}
    for run in runs:
        manifest = found.get(run)
        p = dict(manifest.get("parameters", {})) if manifest else _resolved(study, run)
        kind = (manifest or {}).get("kind") or p.get("kind", "")
        notebook = Path((manifest or {}).get("notebook") or p.get("notebook") or "").stem
        info[run] = {"manifest": manifest, "p": p, "kind": kind, "notebook": notebook,
                     "state": run_state(study, run, manifest)}
    first = next((i["p"] for i in info.values() if i["p"]), {"dataset": "kaggle"})
    title = page_notes.study_title(first)
    tested, untested = _test_scores(study, first)

    def shown(state):
        return state in SHOWN

    steps, weights_used, errs, previous = {"data": [], "recipe": [], "beyond": [], "report": []}, {}, [], None
    other_split = False  # a run on another split than the step before: no gain, said once under the table
    for run, i in info.items():
        p, state, kind = i["p"], i["state"], i["kind"]
        upstream = [u for u in (params.upstream_runs(_as_params(p, kind)) if p else []) if u in info
                    and info[u]["state"] != CURRENT]
        row = {"run": run, "notebook": i["notebook"], "state": state, "state_text": _state_text(state, upstream),
               "pages": _pages(study, run, state), "tried": "", "val": "–", "val_note": "", "test": "–", "gain": "–",
               "original": original.short(run, p) if kind == "train" else None,
               "title": p.get("title") or {"eda": "Exploring the data", "report": "The report"}.get(kind, run),
               "varied": _varied(study, p, info)}
        met = _read(study.run(run).metrics_json) if kind == "train" else None
        if kind == "train":
            row["tried"] = page_notes.describe_step(p, met) if p else ""
        if met is not None and shown(state):
            weights_used[run] = {k: met[k] for k in ("weights_used", "weights_fallback_reason") if k in met}
            row.update(title=met.get("title", run), val=f"{met['micro_f1']:.4f}", details={
                "macro": f"{met['macro_f1']:.4f}", "accuracy": f"{met['accuracy']:.4f}",
                "epochs": met.get("epochs_trained", "–"), "seconds": met.get("train_seconds", "–"),
                "device": met.get("device_name") or met.get("device", "")})
            if met.get("tta") not in (None, "none"):
                plain = _no_tta_score(study, run, met)
                row["val_note"] = f"with {met['tta']} TTA" + (f"; {plain:.4f} without" if plain is not None else "")
            if run in tested and shown(info.get(_report_run(info), {}).get("state")):
                row["test"] = tested[run]
            split = met.get("split", "random")  # a gain only over a run validated on the same split
            if previous is not None and split == previous[2]:
                row["gain"], row["gain_note"] = f"{met['micro_f1'] - previous[1]:+.4f}", f"over {previous[0]}"
            elif previous is not None:
                row["gain_note"], other_split = f"{split} split †", True
            if previous is None or split == previous[2]:
                previous = (run, met["micro_f1"], split)
            errs.append(_errs(study, run, met, state))
        if kind == "eda":
            row["tried"] = "the data: classes, counts, sizes, samples, the test set"
            steps["data"].append(row)
        elif kind == "train":
            steps["beyond" if i["notebook"] in BEYOND_THE_RECIPE else "recipe"].append(row)
        else:
            row["tried"] = "the runs side by side, the ensemble, Grad-CAM, test-time augmentation, the submission"
            steps["report"].append(row)
    report_run = _report_run(info)
    report_state = info[report_run]["state"] if report_run else NOT_RUN
    ensemble = _ensemble_row(study, report_run, report_state, tested, info) if report_run else None
    submission = _read(study.submission_json) if shown(report_state) else None
    if submission is not None:
        submission["stale"] = report_state == STALE
        submission["answers_name"] = Path(submission["answers"]).name if submission.get("answers") else None
    figures = study.figures
    chart = (_link(study, figures / "report_f1_evolution.png", "evolution") if shown(report_state) else None)
    heatmap = (_link(study, figures / "report_per_class_f1_across_runs.png", "per-class F1 across runs")
               if shown(report_state) else None)
    files = [link for link in [_link(study, study.evolution_csv, "evolution.csv")] if link and shown(report_state)]
    submission_link = _link(study, study.submission_csv, "submission.csv")
    tta = info[report_run]["p"].get("submission_tta") if report_run else None
    manifests = [i["manifest"] for i in info.values() if i["manifest"]]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["breakable"] = breakable
    page = env.get_template("index.html.j2").render(
        title=title, profile=study.profile, untested=untested, kaggle=original.applies(first), other_split=other_split, notes=_notes(manifests, weights_used), steps=steps, ensemble=ensemble,
        errs=errs, submission_original=original.describe_submission(first), chart=chart, heatmap=heatmap, files=files, submission=submission, submission_link=submission_link,
        test_header=_test_header(study, tta), report_state=report_state,
        all_runs=[{"run": r, "state": i["state"], "pages": _pages(study, r, i["state"]),
                   "seconds": (i["manifest"] or {}).get("seconds"),
                   "device": (i["manifest"] or {}).get("device_name") or (i["manifest"] or {}).get("device")}
                  for r, i in info.items()],
        sweeps=[{**w, "best_varied": _varied(study, info[w["best"]]["p"], info) if w.get("best") in info else ""}
                for w in sweeps.sweep_pages(study)], generated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return write_text(study.index_html, page)


def breakable(name: str):
    """A run name that may wrap after ``_`` or ``-`` (``simple_cnn_`` / ``grouped``), never inside a
    word; escaped."""
    import markupsafe

    parts = re.split(r"(?<=[_-])", str(name))
    return markupsafe.Markup("<wbr>").join(markupsafe.escape(part) for part in parts)


def top_confusions(metrics: dict, k: int = 3) -> list[dict]:
    """A run's ``k`` largest confusions on validation, largest first: ``true``, ``predicted``, the images
    of ``true`` predicted as ``predicted`` and ``of`` (the validation images of ``true``)."""
    cm = numpy.asarray(metrics["confusion_matrix"], dtype=int)
    off = cm.copy()
    numpy.fill_diagonal(off, 0)
    rows = []
    for flat in numpy.argsort(off, axis=None, kind="stable")[::-1][:k]:
        true, predicted = divmod(int(flat), cm.shape[1])
        if off[true, predicted] == 0:
            break
        rows.append({"true": metrics["classes"][true], "predicted": metrics["classes"][predicted],
                     "images": int(off[true, predicted]), "of": int(cm[true].sum())})
    return rows


def predicted_classes(metrics: dict) -> int:
    """How many classes a run predicts at all on validation (1: it predicts one class for every image)."""
    return int((numpy.asarray(metrics["confusion_matrix"]).sum(axis=0) > 0).sum())


def _as_params(p: dict, kind: str):
    """Saved parameters as ``params.upstream_runs`` reads them (their kind's schema)."""
    out = params.Params(p)
    out.kind = kind if kind in params.SCHEMAS else ""
    return out


def _report_run(info: dict) -> str | None:
    return next((r for r, i in info.items() if i["kind"] == "report"), None)


def _errs(study: paths.StudyPaths, run: str, met: dict, state: str) -> dict:
    """Where a run errs, readable at a glance: how many classes it predicts at all, its largest
    confusions, and links to its full figures."""
    rp = study.run(run)
    return {"run": run, "stale": state == STALE, "title": met.get("title", run),
            "predicted": predicted_classes(met), "classes": len(met.get("classes", [])),
            "pairs": top_confusions(met, 3),
            "links": [link for link in (_link(study, rp.figure("confusion_matrix"), "confusion matrix"),
                                        _link(study, rp.figure("per_class_f1"), "per-class F1"),
                                        _link(study, rp.figure("misclassified"), "mistakes")) if link]}


def _ensemble_row(study: paths.StudyPaths, report_run: str, state: str, tested: dict, info: dict) -> dict | None:
    met = _read(study.run("ensemble").metrics_json)
    if met is None or state not in SHOWN:
        return None
    singles = [(r, m["micro_f1"]) for r in met.get("members", []) if (m := _read(study.run(r).metrics_json))]
    others = [(r, m["micro_f1"]) for r, i in info.items() if i["kind"] == "train" and i["state"] in SHOWN
              and (m := _read(study.run(r).metrics_json))]
    best = max(others or singles, key=lambda x: x[1], default=None)
    tta = met.get("tta")
    return {"run": "ensemble", "title": met.get("title", "ensemble"), "state": state,
            "state_text": _state_text(state, []), "val": f"{met['micro_f1']:.4f}",
            "val_note": f"with {tta} TTA" if tta not in (None, "none") else "",
            "test": tested.get("ensemble", "–"), "tried": "the mean of " + ", ".join(met.get("members", [])) +
            "'s probabilities", "gain": f"{met['micro_f1'] - best[1]:+.4f}" if best else "–",
            "gain_note": f"over {best[0]}, the best run" if best else "",
            "pages": _pages(study, report_run, state), "notebook": info[report_run]["notebook"]}
