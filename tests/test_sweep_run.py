"""A sweep executed end to end on tiny data: override runs beside the pipeline's files, live lines per
point, a failed point listed while the others go on, done points skipped, and opt-in tracking read back
by TensorBoard's own reader."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def env_for(root: Path) -> dict:
    env = {**os.environ, "SIMPSONS_OUTPUTS_DIR": str(root / "outputs"), "SIMPSONS_DATA_DIR": str(root / "data")}
    for name in ("SIMPSONS_PROGRESS", "SIMPSONS_PARAMS_DIR", "SIMPSONS_PIPELINE_LOCK", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp("sweep")
    shutil.copytree(tiny_demo, root / "data" / "demo")
    profile = root / "params" / "sw"
    (profile / "sweeps").mkdir(parents=True)
    (profile / "_common.yaml").write_text("dataset: demo\ndemo_scale: 0.02\nanswers: test_answers.csv\ndevice: cpu\n")
    (profile / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\naugment: false\n"
                                             "image_size: 96\nepochs: 2\ngallery_size: 2\n")
    (profile / "sweeps" / "lr.yaml").write_text(
        "run: simple_cnn\npoints:\n  - {epochs: 1, tracking: tensorboard}\n  - {epochs: 1, lr: 0.003}\n"
        "  - {epochs: 1, worst_classes: [Nobody]}\n")

    def make(*args):
        return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args, "PROFILE=sw",
                               f"PARAMS_ROOT={root / 'params'}", f"PY={sys.executable}",
                               f"STAMP={REPO / 'pyproject.toml'}"], env=env_for(root), capture_output=True, text=True,
                              timeout=900)

    first = make("sweep", "SWEEP=lr")
    return root, root / "outputs" / "sw", first, make


def test_each_point_is_an_override_run_and_a_failed_point_does_not_stop_the_others(swept):
    root, out, first, _ = swept
    assert first.returncode != 0 and "2 of 3 points done, 1 failed" in first.stdout, first.stdout[-3000:] + first.stderr[-3000:]
    frame = pd.read_csv(out / "sweeps" / "lr.csv")
    assert sorted(frame["status"]) == ["done", "done", "failed"]
    assert frame["status"].tolist()[-1] == "failed"  # failures last, the rest by validation micro-F1
    assert frame["val_micro_f1"].iloc[:2].is_monotonic_decreasing and frame["val_micro_f1"].iloc[:2].between(0, 1).all()
    assert frame["test_micro_f1"].iloc[:2].between(0, 1).all() and (frame["epochs_trained"].iloc[:2] == 1).all()
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert "Nobody" in failed["error"] and (out / "notebooks" / f"{failed['run_name']}.FAILED.ipynb").is_file()
    assert re.search(r"^\[3/3 epochs=1 worst_classes=\[Nobody\]\] FAILED in cell \d+: ", first.stderr, re.M)
    for run_name in frame["run_name"]:
        assert re.fullmatch(r"simple_cnn-[0-9a-f]{6}", run_name)
    done = frame[frame["status"] == "done"]["run_name"]
    for run_name in done:
        manifest = json.loads((out / "manifests" / f"{run_name}.json").read_text())
        assert manifest["parameters"]["run_name"] == run_name and manifest["keys"]["training"]
        assert (out / "models" / run_name / "model.pt").is_file() and (out / "reports" / f"{run_name}_reader.html").is_file()
    # never the pipeline's own run's files
    assert not (out / "metrics" / "simple_cnn.json").exists() and not (out / "models" / "simple_cnn").exists()
    page = (out / "reports" / "sweep_lr.html").read_text()
    assert page.count('class="failed"') == 1 and page.count("data:image/png;base64,") == 2


def test_the_points_print_their_epochs_prefixed_by_the_point(swept):
    _, out, first, _ = swept
    assert re.search(r"^\[1/3 epochs=1 tracking=tensorboard\] \[simple_cnn-[0-9a-f]{6}\] epoch 1/1  loss \d+\.\d+  "
                     r"val micro-F1 \d\.\d+ ", first.stdout, re.M), first.stdout[-3000:]
    assert re.search(r"^\[2/3 epochs=1 lr=0.003\] \[simple_cnn-[0-9a-f]{6}\] epoch 1/1 ", first.stdout, re.M)


def test_tracking_writes_a_store_that_tensorboard_reads_back(swept):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out, _, _ = swept
    frame = pd.read_csv(out / "sweeps" / "lr.csv")
    tracked = [d.name for d in (out / "tracking").iterdir()]
    assert len(tracked) == 1  # only the point with tracking: tensorboard
    run_name = tracked[0]
    store = EventAccumulator(str(out / "tracking" / run_name), size_guidance={"images": 0, "scalars": 0})
    store.Reload()
    history = pd.read_csv(out / "metrics" / f"{run_name}_history.csv")
    metrics = json.loads((out / "metrics" / f"{run_name}.json").read_text())
    val = store.Scalars("epoch/val_micro_f1")
    assert [e.step for e in val] == history["epoch"].tolist()
    assert [round(e.value, 6) for e in val] == [round(v, 6) for v in history["val_micro_f1"]]
    assert store.Scalars("final/micro_f1")[0].value == pytest.approx(metrics["micro_f1"], abs=1e-6)
    assert store.Scalars("final/macro_f1")[0].value == pytest.approx(metrics["macro_f1"], abs=1e-6)
    assert frame.set_index("run_name").loc[run_name, "val_micro_f1"] == pytest.approx(metrics["micro_f1"])
    images = store.Tags()["images"]
    assert "figures/confusion_matrix" in images and "figures/learning_curves" in images
    assert "parameters" in str(store.Tags()["tensors"]) or store.Tags().get("tensors") is not None


def test_a_second_sweep_skips_the_done_points_and_retries_the_failed_one(swept):
    _, out, _, make = swept
    models = {p: p.stat().st_mtime_ns for p in (out / "models").rglob("*.pt")}
    again = make("sweep", "SWEEP=lr")
    assert again.returncode != 0
    assert again.stdout.count("already done with these inputs: skipped") == 2
    assert "[3/3 epochs=1 worst_classes=[Nobody]] FAILED" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "models").rglob("*.pt")} == models
    frame = pd.read_csv(out / "sweeps" / "lr.csv")
    assert sorted(frame["status"]) == ["failed", "skipped", "skipped"] and frame["test_micro_f1"].notna().sum() == 2
