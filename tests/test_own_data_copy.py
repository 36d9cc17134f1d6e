"""A profile of one's own made as docs/own-data.md says: the files it copies name no run left out, the
rename instructions list every parameter that names a run, and ``make status`` on a profile that names a
run without a file says so for that run (the plan stops there) instead of crashing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from simpsons_lib.config import params
from simpsons_lib.pipeline import status

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "own-data.md"


def copied_runs() -> list[str]:
    match = re.search(r"cp params/demo/\{([^}]*)\}\.yaml params/mine/", GUIDE.read_text(encoding="utf-8"))
    assert match, "docs/own-data.md no longer copies the demo's run files"
    return match.group(1).split(",")


def make_profile(tmp_path, monkeypatch, data: Path, runs: list[str]) -> None:
    mine = tmp_path / "params" / "mine"
    mine.mkdir(parents=True)
    for run in runs:
        shutil.copy(REPO / "params" / "demo" / f"{run}.yaml", mine / f"{run}.yaml")
    (mine / "_common.yaml").write_text(f"data_dir: {data}\nseed: 0\nval_fraction: 0.25\ndevice: cpu\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))


def test_the_copy_list_names_every_run_the_copied_files_name(tmp_path, monkeypatch):
    runs = copied_runs()
    assert sorted(runs) == sorted(params.profile_runs("demo"))  # every run file of the demo, no other
    make_profile(tmp_path, monkeypatch, tmp_path / "data", runs)
    named = {u for run in params.profile_runs("mine") for u in params.upstream_runs(params.resolve("mine", run))}
    assert named <= set(runs), f"copied files name runs not copied: {sorted(named - set(runs))}"


def test_the_rename_instructions_list_every_parameter_that_names_a_run():
    text = GUIDE.read_text(encoding="utf-8")
    for key in ("runs", "ensemble", "split_runs", "submission_run", "worst_from_run"):
        assert f"`{key}`" in text.split("Every parameter that names a run", 1)[1].split(")", 1)[0]
        assert key in params.SCHEMAS["report"] or key in params.SCHEMAS["train"]


def test_status_names_the_missing_run_instead_of_crashing(tmp_path, monkeypatch, tiny_demo, capsys):
    runs = [r for r in copied_runs() if r != "simple_cnn_grouped"]  # report.yaml still names it in split_runs
    make_profile(tmp_path, monkeypatch, tiny_demo, runs)
    states = {s.run: s for s in status.status("mine")}
    assert states["report"].state == status.BLOCKED
    assert "simple_cnn_grouped" in states["report"].reasons[0] and "mine/report.yaml" in states["report"].reasons[0]
    assert {r: s.state for r, s in states.items() if r != "report"} == dict.fromkeys(set(states) - {"report"}, "will run")
    assert status.main("mine") == 0
    out = capsys.readouterr().out
    assert "1 cannot run" in out and "report" in out
