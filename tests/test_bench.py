"""The throughput benchmark runs end to end on CPU (a smoke test: no timing is asserted)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")  # not module: the two tests need not share a worker (copying 8 images is cheap)
def mini_demo(tiny_demo, tmp_path_factory) -> Path:
    """Two classes of the tiny demo, four images each (6 train + 2 validation images), in the Kaggle layout.
    A step of the larger models costs about the same whatever the batch (the optimizer's pass over every
    weight), so the smoke test takes few steps: a warm-up epoch of one or three batches, not the tiny demo's 43."""
    out = tmp_path_factory.mktemp("bench") / "demo"
    train = tiny_demo / "train" / "simpsons_dataset"
    classes = sorted(d.name for d in train.iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 4)[:2]
    for name in classes:
        (out / "train" / "simpsons_dataset" / name).mkdir(parents=True)
        for image in sorted((train / name).glob("*.jpg"))[:4]:
            shutil.copy(image, out / "train" / "simpsons_dataset" / name / image.name)
    shutil.copytree(tiny_demo / "testset", out / "testset")
    return out


def bench(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--data-dir", str(data_dir), "--device", "cpu",
         "--image-size", "96", "--warmup", "1", *args], capture_output=True, text=True,
        timeout=850)  # below pytest's 900 s: a busy machine (two workers) is slow, not broken


def test_benchmark_prints_a_table_for_each_model(mini_demo, tmp_path):
    out = tmp_path / "bench.csv"
    result = bench(mini_demo, "--batch-size", "6", "--steps", "1", "--num-workers", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out)
    assert list(table["model"]) == ["simple_cnn", "mid_cnn", "resnet50", "modern"]
    assert (table[["pipeline_img_s", "ceiling_img_s", "ratio", "epoch_s"]] > 0).all().all()
    assert "ceiling_img_s" in result.stdout and "modern" in result.stdout


def test_benchmark_measures_the_device_batch_path_at_several_batch_sizes_and_profiles_it(mini_demo, tmp_path):
    out, trace = tmp_path / "bench.csv", tmp_path / "trace.txt"
    result = bench(mini_demo, "--batch-size", "3", "2", "--steps", "2", "--loader", "device_batches",
                   "--models", "simple_cnn", "--out", str(out), "--trace-out", str(trace))
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out)
    assert list(table["loader"]) == ["device_batches"] * 2 and list(table["batch"]) == [3, 2]
    assert (table["pipeline_img_s"] > 0).all()
    text = trace.read_text()
    assert "simple_cnn (batch 3)" in text and "aten::" in text
