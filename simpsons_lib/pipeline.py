"""The papermill pipeline: validate a run's parameters, execute its notebook, write its manifest and
render its HTML reports; build the index page. The Makefile calls this, one run per target:

    python -m simpsons_lib.pipeline run notebooks/01_simple_cnn.ipynb params/demo/simple_cnn.yaml \\
        outputs/demo/notebooks/simple_cnn.ipynb --profile demo
    python -m simpsons_lib.pipeline index outputs/demo

A failed run leaves ``<run>.FAILED.ipynb`` (with papermill's error banner) and no ``<run>.ipynb``,
so make stops and nothing downstream runs.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import html
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

# nbformat imports jsonschema, which also imports rfc3987_syntax when it is installed (Jupyter's own
# dependencies bring it) and compiles its ~40 grammars there: 1.5 s in each run of this process.
# Notebook schemas use no IRI formats, so this process goes without it (jsonschema allows its absence).
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402

from . import paths  # noqa: E402
from .io_utils import read_json, write_json, write_text  # noqa: E402
from .params import ParameterError, load_run_params, validate  # noqa: E402

KERNEL_NAME = "simpsons-study"
PACKAGES = ("torch", "torchvision", "numpy", "pillow", "scikit-learn", "scikit-image", "pandas", "matplotlib",
            "seaborn", "papermill", "nbconvert", "simpsons-lib")


def notebook_kind(notebook: Path) -> str:
    """``eda``, ``train`` or ``report``, from the notebook's ``simpsons.kind`` metadata."""
    nb = nbformat.read(notebook, as_version=4)
    try:
        return nb.metadata["simpsons"]["kind"]
    except KeyError:
        raise ParameterError(f"{notebook}: no simpsons.kind in its metadata") from None


def notebook_defaults(notebook: Path) -> dict:
    """The literals of the notebook's ``parameters`` cell, as papermill reads them."""
    import papermill

    found = papermill.inspect_notebook(str(notebook))
    if not found:
        raise ParameterError(f"{notebook}: no cell tagged 'parameters'")
    out = {}
    for name, info in found.items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            raise ParameterError(f"{notebook}: parameter {name!r} is not a plain literal: {info['default']}") from None
    return out


def resolve_params(notebook: Path, params_file: Path, profile: str, run: str) -> tuple[str, dict]:
    """The complete, validated parameters of one run: the notebook's defaults under the profile's
    ``_common.yaml`` under the run's file, plus ``profile`` and (for training) ``run_name``."""
    kind = notebook_kind(notebook)
    defaults = notebook_defaults(notebook)
    overrides = load_run_params(params_file, kind)
    for key in overrides:
        if key not in defaults:
            raise ParameterError(f"{params_file}: parameter {key!r} is not in {notebook.name}'s parameters cell")
    for key, value in (("profile", profile), ("run_name", run)):
        if key in defaults:
            if key in overrides and overrides[key] != value:
                raise ParameterError(f"{params_file}: parameter {key!r} is {overrides[key]!r} but this run is {value!r}")
            overrides[key] = value
    try:
        validate(kind, {**defaults, **overrides})
    except ParameterError as exc:
        raise ParameterError(f"{params_file}: {exc}") from None
    return kind, {**defaults, **overrides}


def ensure_kernel() -> str:
    """The project environment's own kernel (installed into this environment if missing)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL_NAME not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install

        install(kernel_name=KERNEL_NAME, display_name="Python (simpsons-study)", prefix=sys.prefix)
    return KERNEL_NAME


def prepare_kernel_environment() -> None:
    """Set what the notebook kernels inherit from this process: no progress-bar lines in executed
    notebooks, and this checkout first on their ``PYTHONPATH``, so they import the same library as
    this process (otherwise a kernel imports whichever ``simpsons_lib`` its environment finds, e.g. an
    editable install made from another copy of the repository)."""
    os.environ["SIMPSONS_PROGRESS"] = "0"
    root = str(paths.PROJECT_ROOT)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *rest])


def kernel_client_config():
    """Encrypt the local kernel connection (CurveZMQ) where pyzmq and jupyter_client support it; recent
    ipykernels otherwise warn at every start that the connection is plain TCP."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
        config.KernelManager.transport_encryption = "auto"  # only for kernelspecs that declare support
    return config


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=paths.PROJECT_ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--", "simpsons_lib", "notebooks", "params"))}


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def data_fingerprint(params: dict) -> dict:
    """Hash of the dataset's file names and sizes (not contents: fast on 21k files)."""
    from .data import find_study_layout

    layout = find_study_layout(params)
    h = hashlib.sha1()
    n = 0
    for folder in filter(None, (layout.train_dir, layout.test_dir)):
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(folder)}|{p.stat().st_size}\n".encode())
                n += 1
    return {"root": str(layout.root), "files": n, "sha1": h.hexdigest(), "demo": layout.is_demo}


def render_html(executed: Path, reports_dir: Path, run: str) -> list[Path]:
    """``<run>.html`` (with code) and ``<run>_reader.html`` (code-free, nbconvert's --no-input)."""
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    written = []
    for suffix, exclude in (("", False), ("_reader", True)):
        exporter = HTMLExporter(exclude_input=exclude, exclude_input_prompt=exclude, exclude_output_prompt=exclude)
        body, _ = exporter.from_notebook_node(nb)
        written.append(write_text(reports_dir / f"{run}{suffix}.html", body))
    return written


def run_notebook(notebook: Path, params_file: Path, output: Path, profile: str) -> Path:
    import papermill

    run = output.stem
    kind, values = resolve_params(notebook, params_file, profile, run)
    data = data_fingerprint(values)  # also fails early, saying how to get the data, when it is missing
    profile_dir = output.parent.parent
    failed = output.with_name(f"{run}.FAILED.ipynb")
    running = output.with_name(f"{run}.running.ipynb")
    for stale in (failed, running, output):
        stale.unlink(missing_ok=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    prepare_kernel_environment()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    print(f"[{run}] {notebook.name} with {params_file} ...", flush=True)
    try:
        # shutdown_kernel="immediate": every output has arrived and every file is written when the last
        # cell ends; a graceful exit of a kernel holding torch & co. only adds 2-3 s to each run.
        papermill.execute_notebook(str(notebook), str(running), parameters=values, kernel_name=ensure_kernel(),
                                   cwd=str(notebook.parent), progress_bar=False, config=kernel_client_config(),
                                   shutdown_kernel="immediate")
    except papermill.PapermillExecutionError as exc:
        os.replace(running, failed)
        raise SystemExit(f"[{run}] FAILED in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                         f"The executed notebook with the error is {failed}") from None
    seconds = time.perf_counter() - t0
    metrics_path = profile_dir / "metrics" / f"{run}.json"
    metrics = read_json(metrics_path) if metrics_path.exists() and kind == "train" else {}
    manifest = {
        "run": run, "kind": kind, "notebook": str(notebook.relative_to(paths.PROJECT_ROOT) if notebook.is_absolute() else notebook),
        "params_file": str(params_file), "parameters": values, "git": git_commit(), "packages": package_versions(),
        "device": metrics.get("device"), "device_name": metrics.get("device_name"), "host": platform.node(),
        "data": data, "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 1),
    }
    write_json(profile_dir / "manifests" / f"{run}.json", manifest)
    render_html(running, profile_dir / "reports", run)
    os.replace(running, output)  # last: the target exists only when everything above succeeded
    print(f"[{run}] done in {seconds:.0f} s -> {output}", flush=True)
    return output


def build_index(profile_dir: Path) -> Path:
    """``reports/index.html``: the headline table and links to every report."""
    import pandas as pd

    manifests = sorted((profile_dir / "manifests").glob("*.json"), key=lambda p: read_json(p)["started"])
    rows, links = [], []
    for m in map(read_json, manifests):
        run = m["run"]
        links.append(f'<li><a href="{run}.html">{html.escape(run)}</a> · <a href="{run}_reader.html">reader '
                     f'version (no code)</a> — {m["seconds"]} s{" on " + html.escape(str(m.get("device_name") or m["device"])) if m.get("device") else ""}</li>')
        metrics_path = profile_dir / "metrics" / f"{run}.json"
        if m["kind"] == "train" and metrics_path.exists():
            met = read_json(metrics_path)
            rows.append({"run": run, "title": met["title"], "val micro-F1": round(met["micro_f1"], 4),
                         "val macro-F1": round(met["macro_f1"], 4), "accuracy": round(met["accuracy"], 4),
                         "epochs": met["epochs_trained"], "train s": met["train_seconds"], "device": met["device"]})
    table = pd.DataFrame(rows).to_html(index=False, border=0, classes="runs") if rows else "<p>No training runs yet.</p>"
    sub = profile_dir / "metrics" / "submission.json"
    sub_html = ""
    if sub.exists():
        s = read_json(sub)
        score = s.get("score")
        sub_html = (f"<h2>Submission</h2><p><code>submission.csv</code> from run <b>{html.escape(s['run'])}</b>, "
                    f"{s['rows']} rows." + (f" Scored against the demo answers: micro-F1 <b>{score['micro_f1']:.4f}</b>, "
                    f"macro-F1 {score['macro_f1']:.4f}, {score['errors']} errors." if score else "") + "</p>")
    demo = any(read_json(p)["data"]["demo"] for p in manifests)
    note = ("<p class='note'>These runs used the <b>drawn demo data</b>, a procedural stand-in: its scores say "
            "nothing about The Simpsons.</p>" if demo else "")
    figures = sorted((profile_dir / "figures").glob("*confusion*.png"))
    thumbs = "".join(f'<figure><a href="../figures/{f.name}"><img src="../figures/{f.name}" alt="{f.stem}"></a>'
                     f'<figcaption>{html.escape(f.stem.replace("_confusion_matrix", ""))}</figcaption></figure>'
                     for f in figures)
    evolution = profile_dir / "figures" / "report_f1_evolution.png"
    chart = f'<img class="chart" src="../figures/{evolution.name}" alt="evolution of model quality">' if evolution.exists() else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Simpsons study — {profile_dir.name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table.runs{{border-collapse:collapse}} table.runs td,table.runs th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}
.note{{background:#fff4d6;padding:.5em 1em;border-left:4px solid #e0a800}} table.runs td:nth-child(-n+2),table.runs th:nth-child(-n+2){{text-align:left}}
figure{{display:inline-block;margin:4px;text-align:center}} figure img{{height:170px;border:1px solid #ccc}} img.chart{{max-width:640px}}</style>
</head><body><h1>Simpsons character study — profile <code>{html.escape(profile_dir.name)}</code></h1>{note}
<h2>Evolution of model quality (validation)</h2>{table}{chart}{sub_html}
<h2>Reports</h2><ul>{''.join(links)}</ul><h2>Confusion matrices</h2>{thumbs}
<p>Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}.</p></body></html>"""
    return write_text(profile_dir / "reports" / "index.html", page)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="validate, execute one notebook, write manifest and HTML")
    r.add_argument("notebook", type=Path)
    r.add_argument("params", type=Path)
    r.add_argument("output", type=Path)
    r.add_argument("--profile", required=True)
    c = sub.add_parser("check", help="validate a run's parameters (and find its data) without running it")
    c.add_argument("notebook", type=Path)
    c.add_argument("params", type=Path)
    c.add_argument("--profile", required=True)
    c.add_argument("--run", required=True)
    i = sub.add_parser("index", help="write reports/index.html for a profile's outputs")
    i.add_argument("profile_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "run":
            run_notebook(args.notebook.resolve(), args.params, args.output.resolve(), args.profile)
        elif args.cmd == "check":
            _, values = resolve_params(args.notebook.resolve(), args.params, args.profile, args.run)
            print(json.dumps(data_fingerprint(values)))
        else:
            print(build_index(args.profile_dir.resolve()))
    except (ParameterError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
