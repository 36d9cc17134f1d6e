"""One run, one test score: a sweep point is scored on the test answers with the TTA the report's
evolution table scores every run with (the report's ``submission_tta``), records it as ``test_tta``, and
its page says so; the scoring draws no progress bar in the sweep's terminal."""

import os
import shutil
from pathlib import Path

import pandas as pd

from simpsons_lib.config import params
from simpsons_lib.pipeline import sweep
from simpsons_lib.reporting import report, sweeps

REPO = Path(__file__).resolve().parent.parent


def test_the_sweep_scores_with_the_reports_tta(tmp_path, monkeypatch, tiny_demo):
    root = tmp_path / "params"
    shutil.copytree(REPO / "params" / "smoke", root / "smoke")
    with open(root / "smoke" / "report.yaml", "a") as f:
        f.write("submission_tta: flip+scales\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(root))
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(tiny_demo.parent))
    monkeypatch.setenv("SIMPSONS_PROGRESS", "1")
    assert sweep.report_tta("smoke") == "flip+scales" == params.resolve("smoke", "report")["submission_tta"]
    seen = {}

    def scored(study, p, runs, ensemble_runs, device, answers):
        seen.update(tta=p["submission_tta"], progress=os.environ.get("SIMPSONS_PROGRESS"), answers=answers)
        return {r: {"test_micro_f1": 0.5, "test_macro_f1": 0.4, "test_images": 42} for r in runs}

    monkeypatch.setattr(report, "test_scores", scored)
    point = sweep.resolve_points("smoke", "simple_cnn", [{"lr": 0.002}])[0]
    out = sweep.test_scores("smoke", point)
    assert seen["tta"] == "flip+scales" and out["test_tta"] == "flip+scales" and out["test_micro_f1"] == 0.5
    assert seen["progress"] == "0" and os.environ["SIMPSONS_PROGRESS"] == "1"  # no bar, and the setting restored
    assert seen["answers"] is not None


def test_a_profile_without_a_report_scores_without_tta(tmp_path, monkeypatch):
    root = tmp_path / "params" / "mine"
    root.mkdir(parents=True)
    shutil.copy(REPO / "params" / "smoke" / "simple_cnn.yaml", root)
    (root / "_common.yaml").write_text("dataset: demo\ndevice: cpu\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    assert sweep.report_tta("mine") == "none"


def test_the_sweep_page_labels_its_test_scores_with_their_tta():
    rows = [{"point": 1, "lr": 0.001, "run_name": "simple_cnn-aaaaaa", "status": "done", "val_micro_f1": 0.9,
             "test_micro_f1": 0.92, "test_macro_f1": 0.8, "test_tta": "flip"}]
    frame = sweeps.table(rows, ["lr"])
    assert list(frame["test_tta"]) == ["flip"]
    page = sweeps.render("s", "simple_cnn", ["lr"], frame)
    assert "<th>test_tta</th>" in page and "<td>flip</td>" in page and "the report's <code>submission_tta</code>" in page
    plain = sweeps.table([{**rows[0], "test_micro_f1": None, "test_macro_f1": None, "test_tta": None}], ["lr"])
    assert "test_tta" not in plain  # no test labels: no test columns at all
    assert isinstance(plain, pd.DataFrame)
