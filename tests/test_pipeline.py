"""The whole pipeline, as `make` runs it, on tiny generated data (profile smoke)."""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
TRAIN_RUNS = ["simple_cnn", "simple_cnn_aug", "mid_cnn", "resnet50"]
RUNS = ["eda", *TRAIN_RUNS, "report"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run `make pipeline PROFILE=smoke` once; later tests edit the copied params.

    A decoy ``simpsons_lib`` comes first on the inherited PYTHONPATH: the kernels must still import this
    checkout's library (as when the environment's editable install points at another copy)."""
    root = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(REPO / "params" / "smoke", root / "params" / "smoke")
    decoy = root / "decoy" / "simpsons_lib"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('a decoy simpsons_lib, not this checkout')\n")
    env = {**os.environ, "SIMPSONS_OUTPUTS_DIR": str(root / "outputs"), "SIMPSONS_DATA_DIR": str(root / "data"),
           "PYTHONPATH": os.pathsep.join([str(decoy.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("SIMPSONS_PROGRESS", None)

    def make(*args):
        return subprocess.run(["make", "--no-print-directory", *args, "PROFILE=smoke", "DEMO_SCALE=0.02",
                               f"PARAMS_ROOT={root / 'params'}"], cwd=REPO, env=env, capture_output=True, text=True)

    result = make("pipeline")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (root / "make_pipeline.log").write_text(result.stdout + result.stderr)
    return root, root / "outputs" / "smoke", make


def test_every_output_exists_and_is_valid(smoke):
    root, out, _ = smoke
    for run in RUNS:
        nb = nbformat.read(out / "notebooks" / f"{run}.ipynb", as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and 'profile = "smoke"' in injected[0].source  # the values it ran with
        text = json.dumps(nb)
        assert not re.search(r"\d+it/s|it/s\]", text), f"{run}: progress-bar lines in the notebook"
        full = (out / "reports" / f"{run}.html").read_text()
        reader = (out / "reports" / f"{run}_reader.html").read_text()
        assert len(reader) > 10_000 and "<img" in reader
        assert "from_namespace" in full and "from_namespace" not in reader
        manifest = json.loads((out / "manifests" / f"{run}.json").read_text())
        assert {"parameters", "git", "packages", "device", "data", "started", "finished"} <= set(manifest)
        assert manifest["packages"]["torch"] and manifest["data"]["demo"] and manifest["data"]["files"] > 400
    for run in TRAIN_RUNS:
        png = out / "figures" / f"{run}_confusion_matrix.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        metrics = json.loads((out / "metrics" / f"{run}.json").read_text())
        assert {"micro_f1", "macro_f1", "accuracy", "per_class", "confusion_matrix", "confusion_matrix_normalized",
                "worst_classes", "classes", "device", "params"} <= set(metrics)
        assert len(metrics["classes"]) == 42 and 0 <= metrics["micro_f1"] <= 1
        assert (out / "models" / run / "best.pt").exists()
        assert json.loads((out / "manifests" / f"{run}.json").read_text())["device"] == "cpu"
    assert (out / "figures" / "report_best_confusion_matrix.png").exists()
    assert json.loads((out / "metrics" / "simple_cnn_aug.json").read_text())["worst_classes_augmented"]
    sub = pd.read_csv(out / "submission.csv")
    sample = pd.read_csv(root / "data" / "demo" / "sample_submission.csv")
    assert list(sub.columns) == ["Id", "Expected"] and list(sub["Id"]) == list(sample["Id"])
    assert set(sub["Expected"]) <= set(json.loads((out / "metrics" / "resnet50.json").read_text())["classes"])
    index = (out / "reports" / "index.html").read_text()
    for run in RUNS:
        assert f'href="{run}.html"' in index and f'href="{run}_reader.html"' in index
    assert "val micro-F1" in index and "drawn demo data" in index and "Scored against the demo answers" in index


def runs_in(dry_run_output: str) -> list[str]:
    return re.findall(r"pipeline run \S+ \S+ \S+/notebooks/(\w+)\.ipynb", dry_run_output)


def touch(path: Path):
    later = time.time() + 5
    os.utime(path, (later, later))


def test_kernel_connection_is_encrypted_where_supported(smoke):
    """Recent ipykernels warn at every start when the kernel connection is plain TCP; the pipeline asks
    for CurveZMQ keys wherever pyzmq supports them, so `make` prints no such warning."""
    zmq = pytest.importorskip("zmq")
    if not zmq.has("curve"):
        pytest.skip("this pyzmq has no CurveZMQ support")
    root, _, _ = smoke
    log = (root / "make_pipeline.log").read_text()
    assert "[simple_cnn] done" in log
    assert "without encryption" not in log


def test_editing_one_params_file_reruns_only_that_run_and_its_dependants(smoke):
    root, out, make = smoke
    assert runs_in(make("-n", "pipeline").stdout) == []
    touch(root / "params" / "smoke" / "mid_cnn.yaml")
    assert runs_in(make("-n", "pipeline").stdout) == ["mid_cnn", "report"]
    touch(root / "params" / "smoke" / "simple_cnn.yaml")
    assert runs_in(make("-n", "pipeline").stdout) == ["simple_cnn", "simple_cnn_aug", "mid_cnn", "resnet50", "report"]


def test_unknown_key_stops_before_training(smoke):
    root, out, make = smoke
    params = root / "params" / "smoke" / "mid_cnn.yaml"
    original = params.read_text()
    best = out / "models" / "mid_cnn" / "best.pt"
    before = best.stat().st_mtime_ns
    params.write_text(original + "epochz: 3\n")
    try:
        result = make("pipeline")
    finally:
        params.write_text(original)
    assert result.returncode != 0
    assert "epochz" in result.stdout + result.stderr
    assert best.stat().st_mtime_ns == before
    assert "[mid_cnn] mid_cnn" not in result.stdout  # papermill never started


def test_failing_cell_stops_make_and_keeps_the_failed_notebook(smoke):
    root, out, make = smoke
    params = root / "params" / "smoke" / "mid_cnn.yaml"
    original = params.read_text()
    report_before = (out / "notebooks" / "report.ipynb").stat().st_mtime_ns
    params.write_text(original.replace("worst_from_run: simple_cnn", "worst_from_run: no_such_run"))
    try:
        result = make("pipeline")
    finally:
        params.write_text(original)
    assert result.returncode != 0
    failed = out / "notebooks" / "mid_cnn.FAILED.ipynb"
    assert failed.exists() and not (out / "notebooks" / "mid_cnn.ipynb").exists()
    assert "no_such_run" in failed.read_text() and "papermill-error-cell" in failed.read_text()
    assert (out / "notebooks" / "report.ipynb").stat().st_mtime_ns == report_before  # nothing downstream ran


def test_full_profile_without_kaggle_data_says_how_to_get_it(tmp_path):
    env = {**os.environ, "SIMPSONS_OUTPUTS_DIR": str(tmp_path / "outputs"), "SIMPSONS_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(["make", "--no-print-directory", "pipeline", "PROFILE=full"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "make data" in message and str(tmp_path / "data" / "kaggle") in message
    assert not (tmp_path / "outputs" / "full" / "notebooks" / "eda.ipynb").exists()
