"""Runs compared by what changed: the evolution table's "what changed" cell and `make compare`."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from simpsons_lib.config import paths
from simpsons_lib.config.files import write_json
from simpsons_lib.reporting import compare, tables

REPO = Path(__file__).resolve().parent.parent


def metrics(run, micro, **params):
    base = {"arch": "simple_cnn", "lr": 0.001, "epochs": 2, "augment": False, "title": run, "run": run.split("-")[0],
            "run_name": run, "profile": "cmp"}
    return {"run": run, "title": run, "micro_f1": micro, "macro_f1": micro - 0.1, "accuracy": micro,
            "epochs_trained": base["epochs"] if "epochs" not in params else params["epochs"], "train_seconds": 10.0,
            "params": {**base, **params}}


def test_changed_params_ignore_the_names_and_list_both_sides():
    a, b = metrics("a", 0.5)["params"], metrics("b", 0.6, lr=0.0003, worst_k=12)["params"]
    assert compare.changed_params(a, b) == {"lr": (0.001, 0.0003), "worst_k": (None, 12)}
    assert compare.what_changed(a, b) == "lr 0.0003, worst_k 12"
    assert compare.what_changed(a, dict(a, title="other")) == "–"
    many = dict(a, **{f"k{i}": i for i in range(9)})
    assert compare.what_changed(a, many, limit=3) == "k0 0, k1 1, k2 2, +6 more"


def test_the_evolution_table_says_what_changed_from_the_run_before():
    runs = {"simple_cnn": metrics("simple_cnn", 0.5), "simple_cnn_aug": metrics("simple_cnn_aug", 0.6, augment=True),
            "mid_cnn": metrics("mid_cnn", 0.7, augment=True, arch="mid_cnn", epochs=4),
            "ensemble": {"run": "ensemble", "micro_f1": 0.8, "macro_f1": 0.7, "accuracy": 0.8,
                         "members": ["simple_cnn_aug", "mid_cnn"]}}
    table = tables.metrics_table(runs)
    assert list(table.columns[:3]) == ["run", "title", "what_changed"]
    assert table["what_changed"].tolist() == ["–", "augment true", "arch mid_cnn, epochs 4",
                                              "mean of simple_cnn_aug + mid_cnn"]


def test_compare_prints_the_parameter_diff_and_the_metric_deltas(tmp_path):
    study = paths.StudyPaths("cmp")
    write_json(study.run("mid_cnn").metrics_json, metrics("mid_cnn", 0.70))
    write_json(study.run("mid_cnn-3fa9c2").metrics_json, metrics("mid_cnn-3fa9c2", 0.75, lr=0.0003, epochs=6))
    study.evolution_csv.write_text("run,test_micro_f1,test_macro_f1\nmid_cnn,0.6,0.5\n")
    write_json(study.dir / "sweeps" / "mid_cnn.json", {"points": [
        {"run_name": "mid_cnn-3fa9c2", "test_micro_f1": 0.65, "test_macro_f1": 0.55}]})
    out = compare.compare(study, "mid_cnn", "mid_cnn-3fa9c2")
    lines = out.splitlines()
    assert lines[0] == "mid_cnn -> mid_cnn-3fa9c2 (profile cmp)"
    assert any(line.split() == ["lr", "0.001", "->", "0.0003"] for line in lines)
    assert any(line.split() == ["epochs", "2", "->", "6"] for line in lines)
    assert not any(line.split()[:1] == ["run_name"] for line in lines)
    assert any(line.split()[-3:] == ["0.7000", "0.7500", "+0.0500"] for line in lines
               if "val micro-F1 (best epoch)" in line)
    assert any(line.split()[-3:] == ["0.6000", "0.6500", "+0.0500"] for line in lines if "test micro-F1" in line)
    assert any(line.split()[-3:] == ["2", "6", "+4"] for line in lines if line.strip().startswith("epochs "))


def test_make_compare_names_a_run_without_metrics(tmp_path):
    env = {"SIMPSONS_OUTPUTS_DIR": str(tmp_path / "outputs"), "PATH": "/usr/bin:/bin"}
    write_json(tmp_path / "outputs" / "cmp" / "metrics" / "a.json", metrics("a", 0.5))
    result = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "compare", "A=a", "B=nope",
                             "PROFILE=cmp", f"PY={sys.executable}", f"STAMP={REPO / 'pyproject.toml'}"],
                            env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "error: no metrics for run 'nope'" in result.stderr and "runs with metrics: a" in result.stderr
