"""The throughput benchmark runs end to end on CPU (a smoke test: no timing is asserted)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.slow


def test_benchmark_prints_a_table_for_each_model(tiny_demo, tmp_path):
    out = tmp_path / "bench.csv"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--data-dir", str(tiny_demo), "--device", "cpu",
         "--image-size", "96", "--batch-size", "8", "--steps", "2", "--warmup", "1", "--num-workers", "0",
         "--out", str(out)], capture_output=True, text=True, timeout=850)  # below pytest's 900 s: a busy machine (two workers) is slow, not broken
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out)
    assert list(table["model"]) == ["simple_cnn", "mid_cnn", "resnet50", "modern"]
    assert (table[["pipeline_img_s", "ceiling_img_s", "ratio", "epoch_s"]] > 0).all().all()
    assert "ceiling_img_s" in result.stdout and "modern" in result.stdout


def test_benchmark_measures_the_device_batch_path_at_several_batch_sizes_and_profiles_it(tiny_demo, tmp_path):
    out, trace = tmp_path / "bench.csv", tmp_path / "trace.txt"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--data-dir", str(tiny_demo), "--device", "cpu",
         "--image-size", "96", "--batch-size", "8", "5", "--steps", "2", "--warmup", "1", "--loader", "device_batches",
         "--models", "simple_cnn", "--out", str(out), "--trace-out", str(trace)], capture_output=True, text=True,
        timeout=850)  # below pytest's 900 s: a busy machine (two workers) is slow, not broken
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out)
    assert list(table["loader"]) == ["device_batches"] * 2 and list(table["batch"]) == [8, 5]
    assert (table["pipeline_img_s"] > 0).all()
    text = trace.read_text()
    assert "simple_cnn (batch 8)" in text and "aten::" in text
