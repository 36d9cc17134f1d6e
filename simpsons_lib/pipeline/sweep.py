"""Sweeps: one run of a profile over a grid or a list of overrides, each point an override run.

    python -m simpsons_lib.pipeline sweep --profile demo --run mid_cnn --grid "lr=1e-3,3e-4 epochs=6,12"
    python -m simpsons_lib.pipeline sweep --profile demo --file mid_cnn_lr   # params/demo/sweeps/mid_cnn_lr.yaml

A sweep file lives in ``params/<profile>/sweeps/`` (a sub-folder, so it is never taken for a run file)::

    run: mid_cnn
    grid:                 # every combination, in this order ...
      lr: [0.001, 0.0003]
      epochs: [6, 12]
    points:               # ... and/or a list of overrides, each a point
      - {lr: 0.003, batch_size: 32}
    max_points: 100       # optional: a sweep of more than MAX_POINTS (64) points is refused unless raised

Each point is the override run ``<run>-<hash>`` that ``params.resolve(profile, run, overrides)`` names:
it writes its own files beside the pipeline's, never over them. Every point is validated before any
trains (an unknown key or a bad value stops the sweep naming it). A point whose record (manifest keys,
products) matches its inputs is skipped; an interrupted one resumes from its last checkpoint. A failed
point is listed as failed and the others go on. The points run one at a time, under the profile's lock;
the sweep stops (its running point interrupted, as by Ctrl-C) when the make that started it is gone.
The roll-up is ``outputs/<profile>/sweeps/<name>.csv`` and ``reports/sweep_<name>.html``
(``reporting.sweeps``), rewritten after every point.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ..config import params, paths
from ..config.files import read_json, write_json
from ..config.params import ParameterError
from ..data.layout import answers_file, find_study_layout
from ..reporting import sweeps as rollup
from . import kernel, manifest, progress, record, runner

SWEEPS_DIR = "sweeps"  # params/<profile>/sweeps/<name>.yaml
MAX_POINTS = 64  # a sweep of more points is refused unless raised (sweep file's max_points, --max-points)


@dataclass
class Point:
    index: int
    overrides: dict
    p: params.Params
    keys: dict = field(default_factory=dict)
    status: str = "pending"   # pending, done, skipped (already done), failed, pipeline (the run itself)
    error: str | None = None

    @property
    def run_name(self) -> str:
        return self.p["run_name"]

    def label(self) -> str:
        return " ".join(f"{k}={_fmt(v)}" for k, v in self.overrides.items()) or "(the run's own values)"


def _fmt(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip() \
        if not isinstance(value, str) else value


# --- what a sweep is: a grid, a list of points, or a sweep file -------------------------------------

def parse_value(text: str) -> Any:
    """A value as typed on the command line: int, float (``1e-3`` too), true/false, null, a YAML list or
    mapping, else the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        value = params.parse_yaml(text, "grid: ")  # an alias is refused, as in every parameter file
    except params.AliasError:
        raise
    except ParameterError:
        return text
    return value if isinstance(value, (bool, list, dict)) or value is None else text


def parse_grid(text: str) -> dict[str, list]:
    """``"lr=1e-3,3e-4 epochs=6,12"`` -> ``{"lr": [0.001, 0.0003], "epochs": [6, 12]}``."""
    grid: dict[str, list] = {}
    for item in text.split():
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ParameterError(f"grid: {params.shown(item)} is not key=value[,value...] (e.g. lr=1e-3,3e-4)")
        if key in grid:
            raise ParameterError(f"grid: {params.shown(key)} is given twice")
        grid[key] = [parse_value(v) for v in values.split(",") if v != ""]
    if not grid:
        raise ParameterError("grid: empty (e.g. GRID=\"lr=1e-3,3e-4 epochs=6,12\")")
    return grid


def expand(grid: dict[str, list] | None, points: list[dict] | None = None) -> list[dict]:
    """Every combination of ``grid`` (the first key varies slowest), then ``points``; duplicates once."""
    out: list[dict] = []
    if grid:
        keys = list(grid)
        out += [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    for point in points or []:
        if not isinstance(point, dict):
            raise ParameterError(f"points: each point must be a mapping of overrides, got {params.shown(point)}")
        out.append(dict(point))
    unique: list[dict] = []
    for point in out:
        if point not in unique:
            unique.append(point)
    if not unique:
        raise ParameterError("a sweep needs a grid or a list of points")
    return unique


def default_name(run: str, grid: dict) -> str:
    """A grid's roll-up name: the run and the parameters it varies (``mid_cnn_lr_epochs``), so that
    sweeps of one run over other parameters keep pages of their own."""
    return "_".join([run, *grid])


def sweep_file(profile: str, name: str) -> Path:
    return paths.params_dir() / params.check_profile_name(profile) / SWEEPS_DIR / f"{name}.yaml"


def load_sweep_file(profile: str, name: str, max_points: int | None = None) -> tuple[str, list[dict]]:
    """The run and the points of ``params/<profile>/sweeps/<name>.yaml``; more points than ``max_points``, else
    the file's ``max_points``, else ``MAX_POINTS``, are refused (``check_size``)."""
    path = sweep_file(profile, name)
    if not path.is_file():
        folder = path.parent
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) if folder.is_dir() else "none"
        raise ParameterError(f"{path}: no such sweep file (sweeps of profile {profile!r}: {known})")
    data = params.load_yaml(path)
    unknown = set(data) - {"run", "grid", "points", "max_points"}
    if unknown:
        raise ParameterError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (a sweep file holds run, grid, "
                             "points, max_points)")
    cap = data.get("max_points")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= 100_000):
        raise ParameterError(f"{path}: max_points must be a whole number from 1 to 100000, got {str(cap)[:40]!r}")
    if not isinstance(data.get("run"), str):
        raise ParameterError(f"{path}: a sweep file names its run (e.g. 'run: mid_cnn')")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        raise ParameterError(f"{path}: grid must map parameters to lists of values")
    try:
        points = expand(grid, data.get("points") or [])
        check_size(points, max_points or cap)
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from None
    return data["run"], points


def _coerce(kind: str, overrides: dict) -> dict:
    """Whole numbers given for a float parameter become floats (``lr=1`` and ``lr=1.0`` are one point)."""
    schema = params.SCHEMAS[kind]
    return {k: float(v) if k in schema and schema[k].types == params.FLOAT and isinstance(v, int)
            and not isinstance(v, bool) else v for k, v in overrides.items()}


def resolve_points(profile: str, run: str, overrides: list[dict]) -> list[Point]:
    """Every point validated (``params.resolve``), before anything runs; a bad one names its point."""
    base = params.resolve(profile, run)
    if base.kind != "train":
        raise ParameterError(f"sweep: {run!r} is a {base.kind} run; a sweep varies a training run")
    out = []
    for i, point in enumerate(overrides, 1):
        point = _coerce(base.kind, point)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # resolve's "writes as ..." line, once per point
                p = params.resolve(profile, run, point)
        except ParameterError as exc:
            raise ParameterError(f"sweep point {i} ({point}): {exc}") from None
        out.append(Point(i, point, p))
    names = [pt.run_name for pt in out]
    for pt in out:
        if names.count(pt.run_name) > 1:
            raise ParameterError(f"sweep point {pt.index} ({pt.label()}): the same run as another point "
                                 f"({pt.run_name}); give each point different values")
    return out


def varied_keys(points: list[Point]) -> list[str]:
    """The parameters the sweep varies (overridden somewhere, and not one value at every point), in the
    order first given."""
    keys = dict.fromkeys(k for pt in points for k in pt.overrides)
    return [k for k in keys if len({repr(pt.p[k]) for pt in points}) > 1 or len(points) == 1]


# --- running the points -----------------------------------------------------------------------------

class _Prefixed(io.TextIOBase):
    """A text stream that puts ``prefix`` before every line written to ``out``."""

    def __init__(self, prefix: str, out):
        self.prefix, self.out, self.at_start = prefix, out, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self.at_start:
                self.out.write(self.prefix)
            self.out.write(piece)
            self.at_start = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def is_done(rp: paths.RunPaths, keys: dict) -> bool:
    """The point ran with exactly these inputs and its products are as it wrote them."""
    if not (rp.notebook.is_file() and rp.manifest.is_file()):
        return False
    try:
        if read_json(rp.manifest).get("keys") != keys:
            return False
    except (OSError, ValueError):
        return False
    return runner.damaged_products(rp) is None


def execute_point(profile: str, point: Point, total: int) -> None:
    """Execute one point's notebook with ``profile``, ``run`` and ``overrides`` injected (the notebook's
    parameters cell takes them), then its manifest and HTML reports; the executed notebook appears last.
    A failure removes the point's results, keeps ``<point>.FAILED.ipynb`` and raises ``PipelineError``."""
    import papermill

    study, p = paths.StudyPaths(profile), point.p
    rp = study.run(point.run_name).make_dirs()
    runner._remove(runner._results(rp, p.kind) + [rp.failed_notebook, rp.running_notebook])
    notebook = paths.PROJECT_ROOT / p.notebook
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    try:
        layout = find_study_layout(p)
        prefixed = _Prefixed(f"[{point.index}/{total} {point.label()}] ", sys.stdout)
        with progress.printing(study.plan, point.run_name, prefixed) as progress_file:
            kernel.prepare_environment(progress_file)
            papermill.execute_notebook(str(notebook), str(rp.running_notebook),
                                       parameters={"profile": profile, "run": p["run"], "overrides": point.overrides},
                                       kernel_name=kernel.ensure_kernel(), cwd=str(notebook.parent),
                                       progress_bar=False, config=kernel.client_config(),
                                       shutdown_kernel="immediate")
        if not rp.metrics_json.is_file():
            raise runner.PipelineError(f"[{point.run_name}] the notebook wrote no {rp.metrics_json.name}")
        manifest.write(rp.manifest, run=point.run_name, kind=p.kind, notebook=p.notebook, parameters=dict(p),
                       keys=point.keys, data={"root": str(layout.root), "demo": layout.is_demo,
                                              "sha1": point.keys["data"]},
                       metrics=read_json(rp.metrics_json), started=started.isoformat(timespec="seconds"),
                       finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       seconds=time.perf_counter() - t0, products=runner.products(rp, p.kind))
        runner.render_html(rp.running_notebook, rp)
        os.replace(rp.running_notebook, rp.notebook)
    except BaseException as exc:
        runner._remove(runner._results(rp, p.kind))
        runner._keep_failed_notebook(rp.running_notebook, rp.failed_notebook)
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, papermill.PapermillExecutionError):
            cause = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue.splitlines()[0] if exc.evalue else ''}"
        else:
            cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise runner.PipelineError(cause) from None


def report_tta(profile: str) -> str:
    """The profile's report's ``submission_tta`` setting, by which every run's test predictions are scored
    (``reporting.report.submission_tta``: a mode, or ``auto``, each run's choice on its validation split, as in
    ``evolution.csv``); ``none`` when the profile has no report run."""
    for run in params.profile_runs(profile):
        with contextlib.suppress(ParameterError, OSError):
            p = params.resolve(profile, run)
            if p.kind == "report":
                return p["submission_tta"]
    return "none"


def test_scores(profile: str, point: Point) -> dict:
    """The point's micro- and macro-F1 on the profile's test answers (``{}`` without labels), predicted
    with the TTA the report's evolution table would give it (``report.test_scores`` under ``report_tta``:
    the mode used recorded as ``test_tta``, the setting as ``test_tta_setting``): one run, one test score,
    on the index, in the evolution table and in the sweep. No progress bar (the sweep prints one line per
    point)."""
    from ..reporting import report
    from ..training import devices

    p = point.p
    answers = answers_file(p, find_study_layout(p))
    if answers is None:
        return {}
    tta = report_tta(profile)
    quiet = os.environ.get("SIMPSONS_PROGRESS")
    os.environ["SIMPSONS_PROGRESS"] = "0"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            scores = report.test_scores(paths.StudyPaths(profile), {**p, "submission_tta": tta}, [point.run_name], [],
                                        devices.select_device(p["device"]), answers)
    finally:
        if quiet is None:
            os.environ.pop("SIMPSONS_PROGRESS", None)
        else:
            os.environ["SIMPSONS_PROGRESS"] = quiet
    return {"test_tta": tta, **scores[point.run_name], "test_tta_setting": tta} if point.run_name in scores else {}


def record_path(study: paths.StudyPaths, name: str) -> Path:
    return study.dir / SWEEPS_DIR / f"{name}.json"


def _row(study: paths.StudyPaths, point: Point, varied: list[str], test: dict) -> dict:
    rp = study.run(point.run_name)
    row = {"point": point.index, **{k: point.p[k] for k in varied}, "run_name": point.run_name,
           "status": point.status, "error": point.error}
    if point.status in ("done", "skipped", "pipeline") and rp.metrics_json.is_file():
        m = read_json(rp.metrics_json)
        seconds = read_json(rp.manifest).get("seconds") if rp.manifest.is_file() else None
        row.update(val_micro_f1=m.get("micro_f1"), val_macro_f1=m.get("macro_f1"), **test,
                   epochs_trained=m.get("epochs_trained"), train_seconds=m.get("train_seconds"), run_seconds=seconds)
    return row


def sweep(profile: str, run: str, overrides: list[dict], name: str | None = None) -> tuple[Path, list[Point]]:
    """Run every point of the sweep (see the module) and write the roll-up; returns its page and the points."""
    name = params.check_profile_name(name or run)  # a plain name, like a profile's
    study = paths.StudyPaths(profile)
    points = resolve_points(profile, run, overrides)
    varied = varied_keys(points)
    with runner.profile_lock(study), runner.stopped_with_parent("sweep"):
        keys = runner.plan(profile)
        upstream = params.upstream_runs(points[0].p)
        stale = [u for u in upstream if runner._recorded_keys(study.run(u)) != keys[u]
                 or runner.damaged_products(study.run(u))]
        if stale:
            raise runner.PipelineError(f"sweep: {run} reads {', '.join(stale)}, which {'is' if len(stale) == 1 else 'are'}"
                                       f" not current: run `make pipeline PROFILE={profile}` first")
        upstream_keys = {u: keys[u] for u in upstream}
        for pt in points:
            # the keys the plan gives a run, and those of the runs it reads (``worst_from_run``): an
            # upstream run that trains again redoes the point
            pt.keys = {**record.run_keys(pt.p, keys[run]["data"]), "upstream": upstream_keys}
        record_file = record_path(study, name)
        cached = {}
        if record_file.is_file():
            with contextlib.suppress(OSError, ValueError):
                cached = {r["run_name"]: r for r in read_json(record_file).get("points", [])}
        total, rows = len(points), {}
        print(f"sweep {name}: {total} points of {run} (profile {profile}), varying {', '.join(varied) or 'nothing'}",
              flush=True)
        for pt in points:
            head = f"[{pt.index}/{total} {pt.label()}]"
            rp = study.run(pt.run_name)
            test: dict = {}
            if pt.run_name == run:
                pt.status = "pipeline"
                print(f"{head} the run's own values: its results are the pipeline's {run} (never re-run here)",
                      flush=True)
            elif is_done(rp, pt.keys):
                pt.status = "skipped"
                print(f"{head} {pt.run_name} already done with these inputs: skipped", flush=True)
                old = cached.get(pt.run_name, {})
                test = {k: old[k] for k in ("test_micro_f1", "test_macro_f1", "test_tta", "test_tta_setting")
                        if old.get(k) is not None
                        and old.get("manifest_finished") == read_json(rp.manifest).get("finished")
                        and old.get("test_tta_setting", old.get("test_tta")) == report_tta(profile)}
            else:
                print(f"{head} {pt.run_name} ({pt.p.notebook}) ...", flush=True)
                t0 = time.perf_counter()
                try:
                    execute_point(profile, pt, total)
                    pt.status = "done"
                    print(f"{head} done in {time.perf_counter() - t0:.0f} s", flush=True)
                except runner.PipelineError as exc:
                    pt.status, pt.error = "failed", str(exc)
                    where = f" (the executed notebook is {rp.failed_notebook})" if rp.failed_notebook.is_file() else ""
                    print(f"{head} FAILED in {exc}{where}; the other points go on", file=sys.stderr, flush=True)
            if pt.status != "failed" and not test and rp.metrics_json.is_file():
                try:
                    test = test_scores(profile, pt)
                except Exception as exc:  # noqa: BLE001 - a test score is an extra; the point stands
                    print(f"{head} no test score: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            rows[pt.run_name] = _row(study, pt, varied, test)
            if rp.manifest.is_file() and pt.status != "failed":
                rows[pt.run_name]["manifest_finished"] = read_json(rp.manifest).get("finished")
            _write(study, name, run, profile, varied, points, rows)
        page = _write(study, name, run, profile, varied, points, rows)
    return page, points


def _write(study, name, run, profile, varied, points, rows) -> Path:
    ordered = [rows.get(pt.run_name) or {"point": pt.index, **{k: pt.p[k] for k in varied},
                                         "run_name": pt.run_name, "status": pt.status} for pt in points]
    write_json(record_path(study, name), {"name": name, "run": run, "profile": profile, "varied": varied,
                                          "points": ordered})
    return rollup.write_rollup(study, name, run, varied, ordered)


def check_size(points: list[dict], cap: int | None, where: str = "") -> None:
    """Refuse a sweep of more points than ``cap`` (``MAX_POINTS`` when None), saying how to raise it."""
    cap = MAX_POINTS if cap is None else cap
    if len(points) > cap:
        raise ParameterError(f"{where}{len(points)} points, more than the cap of {cap} a sweep may start; narrow the "
                             f"grid, or raise the cap: MAX_POINTS={len(points)} (make sweep), --max-points "
                             f"{len(points)}, or 'max_points: {len(points)}' in a sweep file")


def main(profile: str, run: str | None, grid: str | None, file: str | None, name: str | None,
         max_points: int | None = None) -> int:
    if file:
        if grid:
            raise ParameterError("sweep: give a grid or a sweep file, not both")
        file_run, points = load_sweep_file(profile, file, max_points)
        if run and run != file_run:
            raise ParameterError(f"sweep: {sweep_file(profile, file)} sweeps {file_run!r}, not {run!r}")
        run, name = file_run, name or file
    else:
        if not run or not grid:
            raise ParameterError("sweep: name a run and a grid (RUN=mid_cnn GRID=\"lr=1e-3,3e-4\"), or a sweep file "
                                 f"(SWEEP=<name>: {sweep_file(profile, '<name>')})")
        parsed = parse_grid(grid)
        points, name = expand(parsed), name or default_name(run, parsed)
        check_size(points, max_points, "sweep: the grid has ")
    page, done = sweep(profile, run, points, name)
    failed = [pt for pt in done if pt.status == "failed"]
    print(f"sweep: {len(done) - len(failed)} of {len(done)} points done"
          + (f", {len(failed)} failed ({', '.join(pt.run_name for pt in failed)})" if failed else "")
          + f" -> {page}", flush=True)
    return 1 if failed else 0
