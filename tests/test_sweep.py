"""Sweeps: a grid or a list of overrides, each point an override run; the roll-up; the sweep's live lines."""

import io
import json
import shutil
import threading
from pathlib import Path

import pytest

from simpsons_lib.config import params, paths
from simpsons_lib.config.files import write_json
from simpsons_lib.pipeline import progress, sweep
from simpsons_lib.reporting import sweeps as rollup

REPO = Path(__file__).resolve().parent.parent


def test_a_grid_is_every_combination_with_typed_values():
    grid = sweep.parse_grid("lr=1e-3,3e-4 epochs=6,12 augment=false")
    assert grid == {"lr": [0.001, 0.0003], "epochs": [6, 12], "augment": [False]}
    assert isinstance(grid["epochs"][0], int)
    assert sweep.expand(grid) == [{"lr": 0.001, "epochs": 6, "augment": False}, {"lr": 0.001, "epochs": 12, "augment": False},
                                  {"lr": 0.0003, "epochs": 6, "augment": False}, {"lr": 0.0003, "epochs": 12, "augment": False}]
    assert sweep.expand({"lr": [0.1]}, [{"lr": 0.1}, {"epochs": 3}]) == [{"lr": 0.1}, {"epochs": 3}]
    assert sweep.default_name("mid_cnn", grid) == "mid_cnn_lr_epochs_augment"
    assert sweep.parse_value("[a, b]") == ["a", "b"] and sweep.parse_value("mid_cnn") == "mid_cnn"
    for bad in ("lr", "lr=", "=3", "lr=1 lr=2", ""):
        with pytest.raises(params.ParameterError, match="grid"):
            sweep.parse_grid(bad)


def test_every_point_is_validated_before_any_runs_naming_the_key():
    with pytest.raises(params.ParameterError, match=r"sweep point 2 \(\{'epochz': 3\}\).*unknown parameter 'epochz'.*'epochs'"):
        sweep.resolve_points("demo", "simple_cnn", [{"epochs": 2}, {"epochz": 3}])
    with pytest.raises(params.ParameterError, match=r"sweep point 1.*parameter 'lr': must be > 0"):
        sweep.resolve_points("demo", "simple_cnn", [{"lr": -1.0}])
    with pytest.raises(params.ParameterError, match="a report run; a sweep varies a training run"):
        sweep.resolve_points("demo", "report", [{"gallery_size": 2}])
    points = sweep.resolve_points("demo", "simple_cnn", [{"lr": 1}, {"lr": 0.01, "epochs": 3}])
    assert points[0].overrides == {"lr": 1.0} and isinstance(points[0].overrides["lr"], float)
    assert [pt.run_name for pt in points] == [params.resolve("demo", "simple_cnn", o)["run_name"]
                                              for o in ({"lr": 1.0}, {"lr": 0.01, "epochs": 3})]
    assert all(pt.run_name.startswith("simple_cnn-") for pt in points)
    assert sweep.varied_keys(points) == ["lr", "epochs"] and points[1].label() == "lr=0.01 epochs=3"


def test_a_sweep_file_lives_beside_the_runs_and_is_never_taken_for_one(tmp_path, monkeypatch):
    shutil.copytree(REPO / "params" / "demo", tmp_path / "demo")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path))
    runs = params.profile_runs("demo")
    (tmp_path / "demo" / "sweeps").mkdir()
    (tmp_path / "demo" / "sweeps" / "lr.yaml").write_text("run: mid_cnn\ngrid:\n  lr: [0.001, 0.0003]\n"
                                                          "points:\n  - {lr: 0.003, batch_size: 32}\n")
    assert params.profile_runs("demo") == runs
    run, points = sweep.load_sweep_file("demo", "lr")
    assert run == "mid_cnn" and points == [{"lr": 0.001}, {"lr": 0.0003}, {"lr": 0.003, "batch_size": 32}]
    (tmp_path / "demo" / "sweeps" / "bad.yaml").write_text("run: mid_cnn\ngird:\n  lr: [1]\n")
    with pytest.raises(params.ParameterError, match="bad.yaml: unknown key.*gird"):
        sweep.load_sweep_file("demo", "bad")
    with pytest.raises(params.ParameterError, match="no such sweep file.*bad, lr"):
        sweep.load_sweep_file("demo", "nope")


def test_each_progress_line_is_prefixed_by_its_point(tmp_path):
    events = tmp_path / "p.progress"
    event = {"run": "mid_cnn-3fa9c2", "epoch": 1, "total": 2, "train_loss": 1.5, "val_micro_f1": 0.5,
             "images_per_s": 100.0, "eta_seconds": 3.0}
    events.write_text(json.dumps(event) + "\n" + json.dumps({**event, "epoch": 2}) + "\n")
    out = io.StringIO()
    stop = threading.Event()
    stop.set()
    progress.follow(events, stop, sweep._Prefixed("[2/4 lr=0.0003] ", out))
    assert out.getvalue().splitlines() == [
        "[2/4 lr=0.0003] [mid_cnn-3fa9c2] epoch 1/2  loss 1.500  val micro-F1 0.500  100 img/s  ETA 0:03",
        "[2/4 lr=0.0003] [mid_cnn-3fa9c2] epoch 2/2  loss 1.500  val micro-F1 0.500  100 img/s  ETA 0:03"]


def rows():
    return [{"point": 1, "lr": 0.001, "epochs": 2, "run_name": "m-a", "status": "done", "val_micro_f1": 0.6,
             "val_macro_f1": 0.4, "test_micro_f1": 0.55, "test_macro_f1": 0.35, "epochs_trained": 2, "train_seconds": 5.0},
            {"point": 2, "lr": 0.0003, "epochs": 2, "run_name": "m-b", "status": "failed", "error": "cell 9: ValueError"},
            {"point": 3, "lr": 0.001, "epochs": 4, "run_name": "m-c", "status": "skipped", "val_micro_f1": 0.8,
             "val_macro_f1": 0.5, "test_micro_f1": 0.7, "test_macro_f1": 0.45, "train_seconds": 9.0},
            {"point": 4, "lr": 0.0003, "epochs": 4, "run_name": "m-d", "status": "done", "val_micro_f1": 0.7,
             "val_macro_f1": 0.45, "test_micro_f1": 0.65, "test_macro_f1": 0.4, "train_seconds": 9.0}]


def test_the_rollup_sorts_by_score_lists_failures_last_and_plots_each_parameter():
    frame = rollup.table(rows(), ["lr", "epochs"])
    assert frame["run_name"].tolist() == ["m-c", "m-d", "m-a", "m-b"]
    assert frame.loc[3, "status"] == "failed" and frame.loc[3, "error"] == "cell 9: ValueError"
    assert {"val_micro_f1", "val_macro_f1", "test_micro_f1", "test_macro_f1", "epochs_trained", "train_seconds"} <= set(frame)
    titles = [t for t, _ in rollup.figures(frame, ["lr", "epochs"])]
    assert titles == ["micro-F1 against lr", "micro-F1 against epochs", "val micro-F1: lr × epochs"]
    page = rollup.render("mid_cnn", "mid_cnn", ["lr", "epochs"], frame)
    assert page.count("<tr") == 5 and page.count('class="failed"') == 1 and page.count("data:image/png;base64,") == 3
    assert '<a href="m-c_reader.html">m-c</a>' in page and 'href="m-b_reader.html"' not in page
    no_labels = rollup.table([{k: v for k, v in r.items() if not k.startswith("test_")} for r in rows()], ["lr"])
    assert "test_micro_f1" not in no_labels


def test_the_index_can_list_the_sweep_pages():
    study = paths.StudyPaths("demo")
    assert rollup.sweep_pages(study) == []
    page = rollup.write_rollup(study, "mid_cnn", "mid_cnn", ["lr", "epochs"], rows())
    write_json(study.dir / "sweeps" / "mid_cnn.json", {"name": "mid_cnn", "run": "mid_cnn", "points": rows()})
    assert page == study.reports / "sweep_mid_cnn.html" and page.is_file()
    assert (study.dir / "sweeps" / "mid_cnn.csv").read_text().splitlines()[1].startswith("3,0.001,4,m-c,skipped,0.8")
    assert rollup.sweep_pages(study) == [{"name": "mid_cnn", "run": "mid_cnn", "href": "sweep_mid_cnn.html", "points": 4,
                                          "failed": 1, "best": "m-c", "best_val_micro_f1": 0.8}]
