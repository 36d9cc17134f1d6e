"""``make status``: for each run of a profile, whether it is current, will re-run (and why), or failed.

    python -m simpsons_lib.pipeline status --profile demo

It reads the record the pipeline keeps (each run's manifest: its keys, parameters, per-wing code digests
and products) and computes the keys the plan would write now, in the same way (``expected_keys``), but
runs no preflight, no notebook, and writes nothing. A re-run is explained by what differs from the
record: a training parameter (old -> new), a wing of the library's code, the data, the notebook, a
parameter that only renders, a product missing or changed (``runner.damaged_products``), or an upstream
run that re-runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..config import params, paths
from ..config.files import read_json
from . import record, runner

CURRENT, RERUN, FAILED, NEW = "current", "will re-run", "failed", "will run"
BLOCKED = "cannot run"  # it reads a run the profile has no file for: the plan stops, naming it


@dataclass
class RunStatus:
    run: str
    state: str                    # CURRENT, RERUN, FAILED, NEW or BLOCKED
    reasons: list[str] = field(default_factory=list)
    retrains: bool = False        # the training key changed (a re-run trains again)

    def line(self, width: int = 16) -> str:
        what = self.state
        if self.state == RERUN:
            what += " (retrains)" if self.retrains else " (renders only, no retraining)"
        return f"  {self.run:<{width}} {what}" + (f": {'; '.join(self.reasons)}" if self.reasons else "")


def expected_keys(profile: str) -> tuple[dict[str, params.Params], dict[str, dict]]:
    """Every run's resolved parameters and the keys ``runner.plan`` would write for it now
    (``record.study_keys``, without the preflight and without writing)."""
    resolved = {run: params.resolve(profile, run) for run in params.profile_runs(profile)}
    return resolved, record.study_keys(resolved)[1]


def _show(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


_ABSENT = object()  # a parameter the record does not have (added since)


def parameter_changes(old: dict, new: dict, keys) -> list[str]:
    """``key old -> new`` for each of ``keys`` whose value differs between two parameter sets
    (``params.changed_values``; ``key (new) -> value`` for one the old set lacks)."""
    return [f"{key} (new) -> {_show(b)}" if a is _ABSENT else f"{key} {_show(a)} -> {_show(b)}"
            for key, (a, b) in params.changed_values(old, new, keys, missing=_ABSENT).items()]


def explain(p: params.Params, keys: dict, manifest: dict) -> tuple[list[str], bool]:
    """Why a run whose recorded keys differ from ``keys`` re-runs, from its ``manifest``; and whether it
    retrains."""
    recorded, old = manifest.get("keys") or {}, manifest.get("parameters") or {}
    now_code, then_code = record.code_digests(), manifest.get("code")
    schema = params.SCHEMAS[p.kind]
    training = [k for k, s in schema.items() if s.trains]
    wings_changed = ([w for w in record.LIBRARY_WINGS if then_code.get(w) != now_code.get(w)]
                     if isinstance(then_code, dict) else None)
    reasons: list[str] = []
    retrains = recorded.get("training") != keys["training"]
    if retrains:
        reasons += [f"training parameter {c}" for c in parameter_changes(old, p, training)]
        if recorded.get("data") != keys["data"]:
            reasons.append("the data changed (file names or sizes)")
        if wings_changed is None:
            reasons.append("training code may have changed (this record has no per-wing code digests)")
        else:
            reasons += [f"code of the {w} wing changed (simpsons_lib/{w}/, shapes the weights)"
                        for w in wings_changed if w in record.WEIGHT_SHAPING_WINGS]
        if not reasons:
            reasons.append("its training key changed")
    if recorded.get("render") != keys["render"]:
        render = []
        render += [f"parameter {c}" for c in parameter_changes(old, p, [k for k in schema if k not in training])]
        if manifest.get("notebook_sha1") and manifest["notebook_sha1"] != _notebook_digest(p):
            render.append(f"the notebook {p.notebook} changed")
        if wings_changed is not None:
            render += [f"code of the {w} wing changed (simpsons_lib/{w}/)" for w in wings_changed
                       if not retrains or w not in record.WEIGHT_SHAPING_WINGS]
        elif not retrains:
            render.append("library code may have changed (this record has no per-wing code digests)")
        if not retrains:
            reasons.append("only the render side changed" + (": " + ", ".join(render) if render else ""))
        else:
            reasons += render
    return reasons, retrains


def _notebook_digest(p) -> str | None:
    try:
        return record.digest((paths.PROJECT_ROOT / p.notebook).read_bytes())
    except OSError:
        return None


def status(profile: str) -> list[RunStatus]:
    """Every run of ``profile``, in study order, with its state and reasons (see the module)."""
    study = paths.StudyPaths(profile)
    resolved, keys = expected_keys(profile)
    out: dict[str, RunStatus] = {}
    for run, p in resolved.items():
        rp = study.run(run)
        if rp.failed_notebook.is_file() and not rp.notebook.is_file():
            out[run] = RunStatus(run, FAILED, [f"FAILED notebook {rp.failed_notebook.relative_to(study.dir)}; "
                                               "make runs it again"], retrains=p.kind == "train")
            continue
        try:
            manifest = read_json(rp.manifest) if rp.notebook.is_file() and rp.manifest.is_file() else None
        except (OSError, ValueError):
            manifest = None
        if manifest is None:
            out[run] = RunStatus(run, NEW, ["no finished record (never ran, or its results were removed)"],
                                 retrains=p.kind == "train" and not rp.last_checkpoint.is_file())
            continue
        if manifest.get("keys") != keys[run]:
            reasons, retrains = explain(p, keys[run], manifest)
            out[run] = RunStatus(run, RERUN, reasons, retrains)
            continue
        damaged = runner.damaged_products(rp)
        out[run] = RunStatus(run, RERUN, [f"a product is missing or changed: {damaged}"],
                             retrains=p.kind == "train") if damaged else RunStatus(run, CURRENT)
    for run, p in resolved.items():  # a run named but without a file: the plan stops there, naming it
        missing = [u for u in params.upstream_runs(p) if u not in resolved]
        if missing:
            out[run].state = BLOCKED
            out[run].reasons.insert(0, f"reads {', '.join(missing)}, which {'has' if len(missing) == 1 else 'have'} no "
                                    f"params/{profile}/<run>.yaml: add the file, or take the name out of "
                                    f"params/{profile}/{run}.yaml (the plan stops here)")
    grew = True
    while grew:  # a run that re-runs re-runs what reads it (make's dependencies)
        grew = False
        for run, p in resolved.items():
            redo = [u for u in params.upstream_runs(p) if u in out and out[u].state != CURRENT]
            note = f"upstream run{'s' if len(redo) > 1 else ''} {', '.join(redo)} re-run{'' if len(redo) > 1 else 's'}"
            if redo and note not in out[run].reasons:
                if out[run].state == CURRENT:
                    out[run].state = RERUN
                out[run].reasons = [r for r in out[run].reasons if not r.startswith("upstream run")] + [note]
                grew = True
    return list(out.values())


def describe(profile: str, statuses: list[RunStatus]) -> str:
    width = max(len(s.run) for s in statuses)
    counts = {state: sum(s.state == state for s in statuses) for state in (CURRENT, RERUN, NEW, FAILED, BLOCKED)}
    head = f"profile {profile} ({paths.StudyPaths(profile).dir}): " + ", ".join(
        f"{n} {state}" for state, n in counts.items() if n)
    return "\n".join([head, *(s.line(width) for s in statuses)])


def main(profile: str) -> int:
    statuses = status(profile)
    print(describe(profile, statuses))
    return 0
