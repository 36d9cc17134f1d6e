"""``reports/index.html``: a profile's runs in study order, their headline figures and every report."""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from ..config import paths
from ..config.files import read_json, write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _notes(manifests: list[dict], weights_used: dict[str, dict] | None = None) -> list[str]:
    """Lines the reader must see first: demo data, and transfer runs without pretrained weights, by their
    parameters (``weights: null``) or by their metrics (``weights_used: null``: the named weights could
    not be had and ``weights_fallback: random`` trained from random weights; ``weights_used`` maps a run
    to its metrics' ``weights_used`` and ``weights_fallback_reason``)."""
    notes = []
    if any(m["data"].get("demo") for m in manifests):
        notes.append("These runs used the drawn demo data, a procedural stand-in: its scores say nothing "
                     "about The Simpsons. Its characters are drawn to be told apart by their look and the runs "
                     "are a few CPU epochs at 64–96 px, so the recipe's ranking need not hold here: the table "
                     "shows the ranking as it came out, and the report says what each step changed.")
    for m in manifests:
        p = m["parameters"]
        used = (weights_used or {}).get(m["run"], {})
        if p.get("arch") == "transfer" and not p.get("weights"):
            notes.append(f"{m['run']}: {p.get('backbone')} without pretrained weights (random frozen features): "
                         "it shows the mechanics of fine-tuning, not transfer learning.")
        elif p.get("arch") == "transfer" and "weights_used" in used and used["weights_used"] is None:
            notes.append(f"{m['run']}: {p.get('backbone')} trained from random weights, not {p.get('weights')} "
                         f"({used.get('weights_fallback_reason') or 'the weights could not be had'}; "
                         "weights_fallback: random): it shows the mechanics of fine-tuning, not transfer learning.")
    return notes


def _is_stale(study: paths.StudyPaths, manifest: dict) -> bool:
    key = study.run(manifest["run"]).key_file
    return key.is_file() and manifest.get("keys") is not None and read_json(key) != manifest["keys"]


def _test_scores(study: paths.StudyPaths) -> dict[str, str]:
    """Each run's test micro-F1 from the report's evolution table (scored on the test answers), or the
    table's word for why there is none; empty before the report ran."""
    if not study.evolution_csv.is_file():
        return {}
    with open(study.evolution_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for row in rows:
        value = row.get("test_micro_f1")
        try:
            out[row["run"]] = f"{float(value):.4f}"
        except (TypeError, ValueError):
            out[row["run"]] = value or "–"
    return out


def build(study: paths.StudyPaths, order: list[str] | None = None) -> Path:
    """Write the index page of ``study`` (runs in ``order``, then any others by start time)."""
    import jinja2

    found = {p.stem: read_json(p) for p in study.manifests.glob("*.json")} if study.manifests.is_dir() else {}
    runs = list(order or [])
    order = [r for r in runs if r in found]
    order += sorted((r for r in found if r not in order), key=lambda r: found[r]["started"])
    manifests = [found[r] for r in order]
    rows, thumbs, weights_used, tested = [], [], {}, _test_scores(study)
    failed = [r for r in runs if study.run(r).failed_notebook.is_file() and not study.run(r).notebook.is_file()]
    for m in manifests:
        rp = study.run(m["run"])
        if m["kind"] != "train" or not rp.metrics_json.is_file():
            continue
        met = read_json(rp.metrics_json)
        weights_used[m["run"]] = {k: met[k] for k in ("weights_used", "weights_fallback_reason") if k in met}
        rows.append({"run": m["run"], "page": rp.reader_html.name, "title": met["title"], "micro": f"{met['micro_f1']:.4f}",
                     "macro": f"{met['macro_f1']:.4f}", "accuracy": f"{met['accuracy']:.4f}",
                     "test": tested.get(m["run"], "–"), "epochs": met["epochs_trained"], "seconds": met["train_seconds"],
                     "device": met["device"]})
        figure = rp.figure("confusion_matrix")
        if figure.is_file():
            thumbs.append({"run": m["run"], "src": f"../figures/{figure.name}", "report": rp.reader_html.name,
                           "caption": f"{met['title']} — micro-F1 {met['micro_f1']:.3f}"})
    ensemble = study.run("ensemble").metrics_json
    if ensemble.is_file():
        met = read_json(ensemble)
        report_run = next((m["run"] for m in manifests if m["kind"] == "report"), "report")
        rows.append({"run": "ensemble", "page": study.run(report_run).reader_html.name, "title": met["title"], "micro": f"{met['micro_f1']:.4f}",
                     "macro": f"{met['macro_f1']:.4f}", "accuracy": f"{met['accuracy']:.4f}",
                     "test": tested.get("ensemble", "–"), "epochs": "–",
                     "seconds": "–", "device": "mean of the runs' probabilities"})
    links = [{"run": m["run"], "seconds": m["seconds"], "device": m.get("device_name") or m.get("device"),
              "stale": _is_stale(study, m)} for m in manifests]
    submission = read_json(study.submission_json) if study.submission_json.is_file() else None
    chart = next((f"../figures/{f.name}" for f in [study.figures / "report_f1_evolution.png"] if f.is_file()), None)
    files = [(f.name, f"../metrics/{f.name}") for f in [study.evolution_csv] if f.is_file()]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    page = env.get_template("index.html.j2").render(
        profile=study.profile, notes=[*(f"{r} failed: its executed notebook is notebooks/{r}.FAILED.ipynb; its "
                                        "results, and those of the runs that read them, are removed until it runs "
                                        "again" for r in failed), *_notes(manifests, weights_used)], rows=rows, thumbs=thumbs, links=links, chart=chart,
        headers=["run", "title", "val micro-F1", "val macro-F1", "accuracy", "test micro-F1 (on the test answers)",
                 "epochs", "train s", "device"],
        submission=submission, files=files, generated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return write_text(study.index_html, page)
