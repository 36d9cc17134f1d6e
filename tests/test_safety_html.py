"""Every text a user gives (a run's title, the study's title, class and run names, parameter values) is
escaped on every HTML page: a run's page rendered from its notebook, the index page, a sweep's page, the
tables of the report."""

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from simpsons_lib.config import params, paths
from simpsons_lib.pipeline import runner
from simpsons_lib.reporting import index_page, sweeps, tables

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert("


def unescaped(page: str) -> list[str]:
    """The payload's tags where they would run: outside any escaping."""
    return re.findall(r"<script>alert|<img src=x onerror", page)


def test_the_report_tables_escape_titles_run_and_class_names():
    metrics = {"run": "simple_cnn", "title": PAYLOAD, "micro_f1": 0.5, "macro_f1": 0.4, "accuracy": 0.5, "epochs": 2,
               "per_class": {PAYLOAD: {"f1": 0.5, "support": 3}}}
    page = tables.show(tables.metrics_table({"simple_cnn": metrics})).to_html()
    assert ESCAPED in page and not unescaped(page)
    per_class = tables.per_class_f1_table({PAYLOAD: metrics}).rename_axis("class").reset_index()
    page = tables.show(per_class).to_html()  # class names in cells, a run name as a heading
    assert page.count(ESCAPED) == 2 and not unescaped(page)


def test_a_sweep_page_escapes_its_values():
    frame = pd.DataFrame({"run": ["mid_cnn-1"], "title": [PAYLOAD], "lr": [PAYLOAD], "val_micro_f1": [0.5],
                          "status": ["done"]})
    page = sweeps.render(PAYLOAD, "mid_cnn", ["lr"], frame)
    assert ESCAPED in page and not unescaped(page)


@pytest.mark.slow
def test_a_run_page_and_the_index_escape_the_title(tmp_path, monkeypatch, torch_home):
    """A real run (simple_cnn of the smoke profile) whose title and the study's title are markup."""
    shutil.copytree(REPO / "params" / "smoke", tmp_path / "params" / "smoke")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    run_file = tmp_path / "params" / "smoke" / "simple_cnn.yaml"
    run_file.write_text(run_file.read_text().replace("title: SimpleCnn", f"title: '{PAYLOAD}'"))
    with open(tmp_path / "params" / "smoke" / "_common.yaml", "a") as f:
        f.write(f"study_title: '{PAYLOAD}'\n")
    assert params.resolve("smoke", "simple_cnn")["title"] == PAYLOAD
    runner.demo_data("smoke")
    runner.plan("smoke")
    runner.run_notebook("smoke", "simple_cnn")
    study = paths.StudyPaths("smoke")
    index_page.build(study, params.profile_runs("smoke"))
    pages = {p.name: p.read_text(encoding="utf-8") for p in study.reports.glob("*.html")}
    assert {"simple_cnn.html", "simple_cnn_reader.html", "index.html"} <= set(pages)
    for name, page in pages.items():
        assert not unescaped(page), name
    assert ESCAPED in pages["simple_cnn_reader.html"] and ESCAPED in pages["index.html"]
