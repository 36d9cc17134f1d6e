"""predict never loses earlier predictions: a predict that predicts nothing fails and writes nothing; a
file name that is not UTF-8 is named and skipped, the rest kept; a run's model.pt that its manifest knows
as another file is refused, as `make status` reports it."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from simpsons_lib.config import paths
from simpsons_lib.config.files import write_json
from simpsons_lib.inference import predict as predict_cli
from simpsons_lib.pipeline import runner
from simpsons_lib.training import checkpoints, models
from test_faults import in_process

REPO = Path(__file__).resolve().parent.parent
PARAMS = {"arch": "simple_cnn", "image_size": 96, "backbone": "resnet50", "head_hidden": 16, "head_dropout": 0.0,
          "dropout": 0.5, "run_name": "simple_cnn", "title": "SimpleCnn", "lr": 0.01}


def predict_process(*args, env=None):
    """predict in a Python process of its own: what only a real process shows (its one line, no traceback)."""
    return subprocess.run([sys.executable, "-m", "simpsons_lib.inference.predict", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def predict(*args):
    """predict in this process (``in_process``): its stdout, stderr and exit status, no new Python importing torch."""
    return in_process(predict_cli.main, *map(str, args))


@pytest.fixture
def model(tmp_path):
    net = models.build_model_from_params(PARAMS, 3, weights=None)
    return checkpoints.export_model(tmp_path / "m.pt", net, ["bart", "homer", "lisa"], PARAMS)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (60 * i, 100, 30)).save(folder / f"ok{i}.jpg")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(os.fsdecode(folder.as_posix().encode() + b"/caf\xe9.jpg"))
    return folder


def test_a_non_utf8_name_is_named_and_skipped_and_the_rest_predicted(model, images, tmp_path):
    out = tmp_path / "p.csv"
    result = predict_process("--model", model, images, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "caf\\xe9.jpg" in result.stderr and "not valid UTF-8" in result.stderr
    assert sorted(Path(p).name for p in pd.read_csv(out)["path"]) == ["ok0.jpg", "ok1.jpg", "ok2.jpg"]


@pytest.mark.parametrize("given", ["nothing*.jpg", "notes.txt"])
def test_a_predict_that_predicts_nothing_fails_and_keeps_the_previous_csv(model, images, tmp_path, given):
    out = tmp_path / "p.csv"
    assert predict("--model", model, images, "--out", out).returncode == 0
    before = out.read_bytes()
    (tmp_path / "notes.txt").write_text("not an image")
    result = predict("--model", model, tmp_path / given, "--out", out)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: no image predicted")
    assert "Traceback" not in result.stderr
    assert out.read_bytes() == before


def test_a_predict_that_predicts_nothing_writes_no_file(model, tmp_path):
    result = predict("--model", model, tmp_path / "none.jpg", "--out", tmp_path / "p.csv")
    assert result.returncode != 0 and not (tmp_path / "p.csv").exists()


@pytest.fixture
def finished_run(model, tmp_path):
    """Run simple_cnn of profile smoke, its model.pt recorded in its manifest as the pipeline does."""
    rp = paths.StudyPaths("smoke").run("simple_cnn").make_dirs()
    rp.models.mkdir(parents=True)
    rp.model_file.write_bytes(model.read_bytes())
    write_json(rp.metrics_json, {"run": "simple_cnn", "micro_f1": 0.5})
    write_json(rp.manifest, {"run": "simple_cnn", "products": runner.products(rp, "train")})
    return rp


@pytest.mark.parametrize("run", ["simple_cnn", "best"])
def test_a_foreign_model_pt_is_refused_as_status_reports_it(finished_run, images, tmp_path, run):
    rp = finished_run
    assert runner.damaged_products(rp) is not None  # (no HTML reports here) but the model is the run's
    assert "model.pt" not in runner.damaged_products(rp)
    assert predict("--profile", "smoke", "--run", run, images).returncode == 0
    other = models.build_model_from_params({**PARAMS, "head_hidden": 8}, 3, weights=None)
    checkpoints.export_model(tmp_path / "other.pt", other, ["bart", "homer", "lisa"], {**PARAMS, "head_hidden": 8})
    os.replace(tmp_path / "other.pt", rp.model_file)
    assert "models/simple_cnn/model.pt changed since the run wrote it" in runner.damaged_products(rp)
    before = (rp.profile_dir / "predictions.csv").read_bytes()
    result = predict("--profile", "smoke", "--run", run, images)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "changed since the run wrote it" in last and "--model" in last
    assert (rp.profile_dir / "predictions.csv").read_bytes() == before
    # naming the file itself is the way to use it anyway
    assert predict("--model", rp.model_file, images, "--out", tmp_path / "p.csv").returncode == 0
