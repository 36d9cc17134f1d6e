"""The papermill pipeline behind ``make``: plan a profile, execute its runs' notebooks, render reports.

    python -m simpsons_lib.pipeline plan  --profile demo   # validate every run, find the data, write .plan/
    python -m simpsons_lib.pipeline run   --profile demo --run mid_cnn
    python -m simpsons_lib.pipeline index --profile demo
    python -m simpsons_lib.pipeline locked --profile demo -- make study PROFILE=demo
    python -m simpsons_lib.pipeline demo-data --profile demo

``plan`` is the preflight: it resolves and validates every run of the profile, checks that the runs a
run reads exist, finds the data and fingerprints it, and writes each run's key file (``record``) and
the dependencies between runs for make. ``run`` executes one notebook with ``profile`` and ``run`` as
its only parameters (the kernel resolves the same values from the same files). A run that starts
removes its previous results; a failed run leaves ``<run>.FAILED.ipynb`` and no results that look
current. One pipeline at a time per outputs folder: ``locked`` holds the profile's lock while make runs.
With several GPUs, make runs one job per GPU and each run holds one of them (``slots``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

# nbformat imports jsonschema, which also imports rfc3987_syntax when it is installed (Jupyter's own
# dependencies bring it) and compiles its ~40 grammars there: 1.5 s in each run of this process.
# Notebook schemas use no IRI formats, so this process goes without it (jsonschema allows its absence).
sys.modules.setdefault("rfc3987_syntax", None)

from ..config import params, paths  # noqa: E402
from ..config.files import (describe_os_error, lock_or_holder, product_change, read_json, sha1_file,  # noqa: E402
                            write_text)
from ..config.params import ParameterError  # noqa: E402
from . import demo as generator  # noqa: E402
from ..data.layout import (DEMO_MARKER, DatasetNotFoundError, demo_scale_of, demo_version_of,  # noqa: E402
                           find_study_layout, resolve_data_dir)
from ..reporting import index_page  # noqa: E402
from . import kernel, manifest, preflight, progress, record, slots  # noqa: E402

LOCK_ENV = "SIMPSONS_PIPELINE_LOCK"
GPU_KINDS = ("train", "report")  # the notebooks that put models on a GPU (the EDA loads no torch)


class PipelineError(RuntimeError):
    """A run cannot start or did not finish; the message is one line naming the run and the cause."""


# --- the lock ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def profile_lock(study: paths.StudyPaths):
    """Hold ``outputs/<profile>/.lock`` (re-entrant for the pipeline's own child processes)."""
    lock = study.lock
    if os.environ.get(LOCK_ENV) == str(lock):
        yield
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+")
    except OSError as exc:
        raise PipelineError(f"cannot take the profile's lock: {describe_os_error(exc, lock)}") from None
    with handle as f:
        holder = lock_or_holder(f)
        if holder is not None:
            raise PipelineError(f"another pipeline is running on {study.dir} ({holder}); wait for it to finish "
                                "or stop it, then run make again") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, started {datetime.now().isoformat(timespec='seconds')}\n")
        f.flush()
        os.environ[LOCK_ENV] = str(lock)
        try:
            yield
        finally:
            os.environ.pop(LOCK_ENV, None)
            f.truncate(0)


def locked(profile: str, command: list[str], plan_first: bool = False, gpu_jobs: bool = False) -> int:
    """Run ``command`` (make) while holding the profile's lock, after the ``plan`` when ``plan_first``;
    its children inherit the lock, the number of GPU slots (``slots``) and the job server of a make above
    (``make -j4 pipeline``). ``gpu_jobs``: the command is a make that runs one job per GPU slot, unless
    the make above was given ``-j`` (with one GPU or none, one job, as without it).

    The command runs in a process group of its own, and this process takes it down with it: Ctrl-C,
    ``kill`` (SIGTERM) and a closed terminal (SIGHUP) are passed on to the group, and when this process's
    parent dies (``kill -9`` of the top ``make``), the group is stopped too, so no orphaned run goes on
    holding the study. The lock is released only when every process of the group has ended."""
    params.profile_runs(profile)  # the profile's name is checked before any file is written
    with profile_lock(paths.StudyPaths(profile)):
        if plan_first:
            keys = plan(profile, announce=True)
            print(f"plan: {len(keys)} runs of profile {profile} checked", flush=True)
        n = slots.count()
        if gpu_jobs:
            command = slots.make_command(command, n)
            if n > 1:
                print(f"plan: {n} GPU slots: the runs that do not read each other run {n} at a time", flush=True)
        parent = os.getppid()
        # the runs take their slots without counting the GPUs again
        child = subprocess.Popen(command, process_group=0, pass_fds=slots.jobserver_fds(),
                                 env={**os.environ, slots.ENV: str(n)})
        stop = threading.Event()

        def pass_on(signum, _frame):
            _signal_group(child.pid, signum)

        previous = {s: signal.signal(s, pass_on) for s in (signal.SIGTERM, signal.SIGHUP)}
        watcher = threading.Thread(target=_stop_with_parent, args=(parent, child.pid, stop), daemon=True)
        watcher.start()
        try:
            while True:
                try:
                    code = child.wait()
                    break
                except KeyboardInterrupt:  # Ctrl-C reached this process: the runs end cleanly too
                    _signal_group(child.pid, signal.SIGINT)
            if os.getppid() != parent or not stop.is_set() and not watcher.is_alive():
                code = code or 1
            return code if code >= 0 else 128 - code
        finally:
            stop.set()
            for s, handler in previous.items():
                signal.signal(s, handler)
            _wait_for_group(child.pid)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _ancestors() -> list[int]:
    """This process's parent, its parent and so on (``make demo`` -> ``make pipeline`` -> here, then the
    shell), up to but not including pid 1; just the parent where ``/proc`` is missing."""
    chain, pid = [], os.getppid()
    while pid > 1 and len(chain) < 64:
        chain.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2:].split()[1])  # the field after the state: the parent's pid
    return chain or [os.getppid()]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def _stop_with_parent(parent: int, pgid: int, stop: threading.Event, every: float = 0.5) -> None:
    """Stop the command's process group when a ``make`` above this process is gone (``kill -9``): this
    process is re-parented, or one of its ancestors no longer exists."""
    watched = _ancestors()
    while not stop.wait(every):
        if os.getppid() != parent or not all(map(_alive, watched)):
            print("error: the make that started the pipeline has ended; stopping its runs", file=sys.stderr,
                  flush=True)
            _signal_group(pgid, signal.SIGTERM)
            return


@contextlib.contextmanager
def stopped_with_parent(what: str = "sweep"):
    """End this process's work as Ctrl-C does when a ``make`` above it is gone (``kill -9`` of the top
    make): a watcher sends this process SIGTERM, which ``_terminated_as_interrupt`` (entered here too) turns
    into ``KeyboardInterrupt``, so the running notebook's kernel is shut down, its results removed and the
    lock released, as ``locked`` does for the pipeline's runs."""
    parent, stop = os.getppid(), threading.Event()

    def watch():
        watched = _ancestors()
        while not stop.wait(0.5):
            if os.getppid() != parent or not all(map(_alive, watched)):
                print(f"error: the make that started the {what} has ended; stopping it", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    with _terminated_as_interrupt():
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()


def _wait_for_group(pgid: int, timeout: float = 60.0) -> None:
    """Wait until no process of the group is left (a run cleaning up after a signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)


# --- plan (preflight) -------------------------------------------------------------------------------

def plan(profile: str, announce: bool = False) -> dict[str, dict]:
    """Validate every run of ``profile``, find its data, and write ``.plan/<run>.key`` (only when changed)
    and ``.plan/plan.mk`` (the run list and dependencies). Returns each run's keys. With ``announce``, prints
    where it found the data (``plan: data: <folder>``: the pipeline's plan, not each sweep point's)."""
    study = paths.StudyPaths(profile)
    runs = params.profile_runs(profile)
    resolved = {run: params.resolve(profile, run) for run in runs}
    for run, p in resolved.items():
        for upstream in params.upstream_runs(p):
            if upstream not in resolved:
                raise ParameterError(f"{paths.params_dir() / profile / (run + '.yaml')}: run {upstream!r} (named "
                                     f"by a parameter) is not a run of profile {profile!r}: {', '.join(runs)}")
        params.check_named_runs(run, p, resolved, f"{paths.params_dir() / profile / (run + '.yaml')}: ")
        if p.kind == "report":
            params.check_split_runs(p, resolved, f"{paths.params_dir() / profile / (run + '.yaml')}: ")
    layouts, keys = record.study_keys(resolved)
    if announce:
        for root, layout in layouts.items():
            mounted = ""
            if root == paths.mounted_kaggle_data():
                mounted = f" (where Kaggle mounts the competition, under {paths.kaggle_input_dir()})"
            print(f"plan: data: {layout.root}{mounted}", flush=True)
    texts = {run: json.dumps(k, indent=1) + "\n" for run, k in keys.items()}
    recorded = {run: _recorded_keys(study.run(run)) for run in runs}
    damaged = {}
    for run in runs:
        if recorded[run] == keys[run]:
            damaged[run] = damaged_products(study.run(run))
            if damaged[run]:
                print(f"plan: {run}: {damaged[run]}: the run executes again", flush=True)
    for run, p in resolved.items():  # the preflight, for the runs that are about to run
        if recorded[run] != keys[run]:
            where = f"{paths.params_dir() / profile / (run + '.yaml')}: "
            for note in preflight.check_run(p, layouts[resolve_data_dir(p)], where):
                print(f"plan: {run}: {note}", flush=True)
    for run in resolved:
        rp = study.run(run)
        record.write_if_changed(rp.key_file, texts[run])
        if damaged.get(run):  # newer than the executed notebook: make runs it again
            now = max(time.time_ns(), rp.notebook.stat().st_mtime_ns + 1_000_000)
            os.utime(rp.key_file, ns=(now, now))
        elif recorded[run] == keys[run]:  # as executed: the key is no newer than the executed notebook
            stamp = rp.notebook.stat().st_mtime_ns
            os.utime(rp.key_file, ns=(stamp, stamp))
    lines = [f"RUNS := {' '.join(runs)}"]
    for run, p in resolved.items():
        upstream = params.upstream_runs(p)
        if upstream:
            lines.append(f"$(NB)/{run}.ipynb: {' '.join(f'$(NB)/{u}.ipynb' for u in upstream)}")
    record.write_if_changed(study.plan / "plan.mk", "\n".join(lines) + "\n")
    return keys


_sha1 = sha1_file


def products(rp: paths.RunPaths, kind: str) -> dict[str, dict]:
    """What a finished run wrote (its results and its models folder), by path in the profile, with each
    file's size, modification time and SHA-1: the manifest records them, the plan checks them."""
    own = {rp.manifest, rp.notebook, rp.running_notebook, rp.report_html, rp.reader_html}
    files = [f for f in _results(rp, kind) if f not in own and f.is_file()]
    files += sorted(f for f in rp.models.glob("*") if f.is_file()) if rp.models.is_dir() else []
    out = {}
    for f in dict.fromkeys(files):
        st = f.stat()
        out[str(f.relative_to(rp.profile_dir))] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha1": _sha1(f)}
    return out


def damaged_products(rp: paths.RunPaths) -> str | None:
    """Why a current run's record no longer stands, or None: a product its manifest records is missing or
    changed (its size, or its SHA-1 when its time changed), or one of its HTML reports is missing."""
    try:
        recorded = read_json(rp.manifest).get("products")
    except (OSError, ValueError):
        return f"{rp.manifest} cannot be read"
    problems = [f"{p.relative_to(rp.profile_dir)} is missing" for p in (rp.report_html, rp.reader_html)
                if not p.is_file()]
    for name, want in (recorded or {}).items():
        change = product_change(rp.profile_dir / name, want)
        if change:
            problems.append(f"{name} {change}")
    return ", ".join(problems) or None


def _recorded_keys(rp: paths.RunPaths) -> dict | None:
    """The keys a run was executed with (its manifest), when its executed notebook exists."""
    if not (rp.notebook.is_file() and rp.manifest.is_file()):
        return None
    try:
        return read_json(rp.manifest).get("keys")
    except (OSError, ValueError):
        return None


# --- one run ----------------------------------------------------------------------------------------

def render_html(executed: Path, rp: paths.RunPaths) -> None:
    """``<run>.html`` (with code) and ``<run>_reader.html`` (code-free, nbconvert's --no-input)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    for target, exclude in ((rp.report_html, False), (rp.reader_html, True)):
        exporter = HTMLExporter(exclude_input=exclude, exclude_input_prompt=exclude, exclude_output_prompt=exclude)
        body, _ = exporter.from_notebook_node(nb)
        write_text(target, body)


def _remove(files) -> None:
    for f in files:
        Path(f).unlink(missing_ok=True)


def _results(rp: paths.RunPaths, kind: str) -> list[Path]:
    ensemble = rp.study.run("ensemble")
    extra = ([rp.study.submission_csv, rp.study.submission_json, rp.study.evolution_csv, ensemble.metrics_json,
              ensemble.predictions_csv] if kind == "report" else [])
    return rp.results() + extra


def dependants(profile: str, run: str) -> list[str]:
    """The runs of ``profile`` that read ``run``'s results, directly or through others, in study order."""
    runs = params.profile_runs(profile)
    reads = {}
    for r in runs:
        try:
            reads[r] = (params.resolve(profile, r).kind, set(params.upstream_runs(params.resolve(profile, r))))
        except ParameterError:
            continue
    found: list[str] = []
    grew = True
    while grew:
        grew = False
        for r, (_, upstream) in reads.items():
            if r != run and r not in found and upstream & {run, *found}:
                found.append(r)
                grew = True
    return [r for r in runs if r in found]


def invalidate_dependants(profile: str, run: str) -> list[str]:
    """Remove the results of every run that reads ``run`` (its report, submission, ensemble), as a failed
    run's own are: nothing built on a failed run stays looking current. Returns the runs affected."""
    study, affected = paths.StudyPaths(profile), []
    for r in dependants(profile, run):
        rp = study.run(r)
        present = [f for f in _results(rp, params.resolve(profile, r).kind) if f.exists()]
        _remove(present)
        if present:
            affected.append(r)
    return affected


def _rebuild_index(study: paths.StudyPaths, profile: str) -> None:
    """The index page after a failure: it shows the failed run and what is gone; never fails itself."""
    try:
        index_page.build(study, params.profile_runs(profile))
    except Exception as exc:  # noqa: BLE001 - the run's own error is the one to report
        print(f"[index] not rebuilt after the failure: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _terminated_as_interrupt():
    """SIGTERM and SIGHUP end a run as Ctrl-C does (its results removed, the kernel shut down)."""
    def interrupt(_signum, _frame):
        raise KeyboardInterrupt
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _keep_failed_notebook(running: Path, failed: Path) -> None:
    """Keep the executed notebook as ``<run>.FAILED.ipynb`` when it is valid JSON; else remove it."""
    try:
        json.loads(running.read_text(encoding="utf-8"))
        os.replace(running, failed)
    except (OSError, ValueError):
        running.unlink(missing_ok=True)


def run_notebook(profile: str, run: str) -> Path:
    """Execute ``run`` of ``profile``: its notebook with ``profile`` and ``run`` injected, then its manifest
    and HTML reports. The executed notebook appears last, only when everything succeeded."""
    import papermill

    study = paths.StudyPaths(profile)
    params.profile_runs(profile)  # the profile's name is checked before any file is written
    with profile_lock(study), _terminated_as_interrupt(), contextlib.ExitStack() as held:
        p = params.resolve(profile, run)
        layout = find_study_layout(p)
        keys = plan(profile)[run] if not study.run(run).key_file.is_file() else read_json(study.run(run).key_file)
        rp = study.run(run).make_dirs()
        _remove(_results(rp, p.kind) + [rp.failed_notebook, rp.running_notebook])
        notebook = paths.PROJECT_ROOT / p.notebook
        # papermill and nbclient log a dying kernel on their own; the one line below says it for this run
        for name in ("papermill", "traitlets", "nbclient"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            # a GPU of its own while it runs, when there are several (the kernel sees only that one)
            slot = held.enter_context(slots.held(study.plan, run)) if p.kind in GPU_KINDS else None
            started = datetime.now(timezone.utc)
            t0 = time.perf_counter()
            on = f" on GPU slot {slot.index} (CUDA_VISIBLE_DEVICES={slot.device})" if slot else ""
            print(f"[{run}] {p.notebook}{on} ...", flush=True)
            with progress.printing(study.plan, run) as progress_file:
                kernel.prepare_environment(progress_file)
                # shutdown_kernel="immediate": every output has arrived and every file is written when the
                # last cell ends; a graceful exit of a kernel holding torch & co. only adds 2-3 s a run.
                papermill.execute_notebook(str(notebook), str(rp.running_notebook),
                                           parameters={"profile": profile, "run": run},
                                           kernel_name=kernel.ensure_kernel(), cwd=str(notebook.parent),
                                           progress_bar=False, config=kernel.client_config(),
                                           shutdown_kernel="immediate")
            metrics = read_json(rp.metrics_json) if p.kind == "train" and rp.metrics_json.is_file() else None
            seconds = time.perf_counter() - t0
            manifest.write(rp.manifest, run=run, kind=p.kind, notebook=p.notebook, parameters=dict(p), keys=keys,
                           data={"root": str(layout.root), "demo": layout.is_demo, "sha1": keys["data"]},
                           metrics=metrics, started=started.isoformat(timespec="seconds"),
                           finished=datetime.now(timezone.utc).isoformat(timespec="seconds"), seconds=seconds,
                           products=products(rp, p.kind), gpu_slot=slot.record() if slot else None)
            render_html(rp.running_notebook, rp)
            os.replace(rp.running_notebook, rp.notebook)  # last: the target exists only when all succeeded
        except BaseException as exc:
            _remove(_results(rp, p.kind))
            dependants = invalidate_dependants(profile, run)
            _keep_failed_notebook(rp.running_notebook, rp.failed_notebook)
            _rebuild_index(study, profile)
            where = f" (the executed notebook is {rp.failed_notebook})" if rp.failed_notebook.exists() else ""
            if isinstance(exc, papermill.PapermillExecutionError):
                cause = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue.splitlines()[0] if exc.evalue else ''}"
            elif isinstance(exc, KeyboardInterrupt):
                cause = "interrupted"
            else:
                cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            also = f"; the results of {', '.join(dependants)}, which read it, are removed too" if dependants else ""
            cause = f": {cause}" if cause == "interrupted" else f" in {cause}"
            raise PipelineError(f"[{run}] FAILED{cause}{where}{also}") from None
    print(f"[{run}] done in {seconds:.0f} s -> {rp.notebook}", flush=True)
    return rp.notebook


# --- command line -----------------------------------------------------------------------------------

def demo_data(profile: str, scale: float | None = None, if_needed: bool = False) -> Path:
    """Generate the drawn demo data where ``profile`` reads it, at its ``demo_scale`` (or ``scale``), into a
    temporary folder that replaces the old data only when complete. ``if_needed``: only when the data is
    missing, was drawn at another scale or by an older generator, or lacks the characters' boxes
    (``demo.BOXES_FILE``)."""
    import shutil

    common = params.resolve(profile, params.profile_runs(profile)[0])
    if common["dataset"] != "demo" or common.get("data_dir"):
        raise ParameterError(f"profile {profile!r} does not read the demo data (dataset: {common['dataset']}, "
                             f"data_dir: {common.get('data_dir')}); nothing to generate")
    out, scale = resolve_data_dir(common), scale or common["demo_scale"]
    if (if_needed and demo_scale_of(out) == scale and demo_version_of(out) == generator.GENERATOR_VERSION
            and (out / generator.BOXES_FILE).is_file()):
        return out
    if out.exists() and any(out.iterdir()) and not (out / DEMO_MARKER).is_file():
        raise FileExistsError(f"{out} exists and is not the drawn demo data; refusing to replace it")
    with profile_lock(paths.StudyPaths(profile)):
        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        generator.generate(partial, scale=scale, seed=0)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(partial, out)
    return out


COMMANDS = (("plan", "preflight: validate every run, find the data, write the plan make reads"),
            ("run", "execute one run's notebook, write its manifest and HTML reports"),
            ("index", "write reports/index.html for a profile's outputs"),
            ("locked", "run a command (make) holding the profile's lock"),
            ("demo-data", "generate the drawn demo data the profile reads"))


@contextlib.contextmanager
def one_line_errors(cmd: str):
    """A command's expected failures as one line ``error: ...`` (exit status 1), never a traceback: bad
    parameters, missing data or files, a failed run, an OS error (its path and cause), Ctrl-C."""
    try:
        yield
    except (ParameterError, DatasetNotFoundError, FileNotFoundError, FileExistsError, PipelineError) as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"error: {describe_os_error(exc)}") from None
    except KeyboardInterrupt:
        raise SystemExit(f"error: {cmd} interrupted") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, text in COMMANDS:
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--profile", required=True)
        if name == "run":
            cmd.add_argument("--run", required=True)
        if name == "demo-data":
            cmd.add_argument("--scale", type=float, default=None, help="instead of the profile's demo_scale")
            cmd.add_argument("--if-needed", action="store_true", help="only when missing or at another scale")
        if name == "locked":
            cmd.add_argument("--plan", action="store_true", help="run the plan first, inside the lock")
            cmd.add_argument("--gpu-jobs", action="store_true", help="the command is a make: one job per GPU slot")
            cmd.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    with one_line_errors(args.cmd):
        if args.cmd == "plan":
            keys = plan(args.profile, announce=True)
            print(f"plan: {len(keys)} runs of profile {args.profile} checked", flush=True)
        elif args.cmd == "run":
            run_notebook(args.profile, args.run)
        elif args.cmd == "index":
            print(index_page.build(paths.StudyPaths(args.profile), params.profile_runs(args.profile)))
        elif args.cmd == "locked":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            raise SystemExit(locked(args.profile, command, plan_first=args.plan, gpu_jobs=args.gpu_jobs))
        else:
            print(f"demo data: {demo_data(args.profile, args.scale, args.if_needed)}")


if __name__ == "__main__":
    main()
