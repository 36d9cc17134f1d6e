"""YAML aliases in parameter and sweep files are refused before they expand, and no error quotes a whole
value: the alias bombs that once took gigabytes fail in one short line, quickly, in little memory."""

import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from simpsons_lib.config import params
from simpsons_lib.config.params import ParameterError
from simpsons_lib.pipeline import sweep

REPO = Path(__file__).resolve().parent.parent


def bomb(levels: int, width: int = 9) -> str:
    """``levels`` nested anchors, each a list of ``width`` aliases of the one before: width**levels leaves."""
    lines = ["  - &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines)


@pytest.fixture
def profile(tmp_path, monkeypatch):
    shutil.copytree(REPO / "params" / "smoke", tmp_path / "params" / "smoke")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    return tmp_path / "params" / "smoke"


def refused(call) -> str:
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ParameterError) as info:
        call()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    message = str(info.value)
    assert seconds < 30 and peak < 50 * 2**20, (seconds, peak)  # expanded: minutes and gigabytes
    assert "\n" not in message and len(message) < 500, message[:1000]
    return message


def test_an_alias_bomb_in_a_sweep_files_grid_is_refused_in_one_line(profile):
    (profile / "sweeps").mkdir(exist_ok=True)
    (profile / "sweeps" / "bomb.yaml").write_text(f"run: simple_cnn\ngrid:\n  lr:\n{bomb(8)}\n")
    message = refused(lambda: sweep.load_sweep_file("smoke", "bomb"))
    assert "bomb.yaml" in message and "alias" in message


def test_an_alias_bomb_in_a_run_files_lr_is_refused_in_one_line(profile):
    run_file = profile / "simple_cnn.yaml"
    run_file.write_text(run_file.read_text() + f"lr:\n{bomb(7)}\n")
    message = refused(lambda: params.resolve("smoke", "simple_cnn"))
    assert "simple_cnn.yaml" in message and "alias" in message and "line" in message


def test_a_huge_value_without_aliases_is_cut_in_the_message(profile):
    run_file = profile / "simple_cnn.yaml"
    run_file.write_text(run_file.read_text() + "lr: [" + ", ".join(["1"] * 5_000) + "]\n")
    message = refused(lambda: params.resolve("smoke", "simple_cnn"))
    assert "'lr'" in message and "…" in message or "..." in message


def test_an_alias_in_a_grid_typed_on_the_command_line_is_refused():
    with pytest.raises(ParameterError, match="alias"):
        sweep.parse_grid("lr=*a")  # commas split a grid's values, so an alias is all one can hold


def test_the_plan_command_says_it_in_one_line(profile, tmp_path):
    run_file = profile / "simple_cnn.yaml"
    run_file.write_text(run_file.read_text() + f"lr:\n{bomb(7)}\n")
    result = subprocess.run([sys.executable, "-m", "simpsons_lib.pipeline", "plan", "--profile", "smoke"],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr[:2000]
    assert len(result.stderr) < 500


def test_anchors_and_aliases_nowhere_else_change_nothing(profile):
    """A plain file still resolves (the loader refuses aliases only)."""
    assert params.resolve("smoke", "simple_cnn")["lr"] > 0
