"""Shared fixtures: every test writes under a temp dir, never data/ or outputs/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simpsons_lib import demo_data, params

REPO = Path(__file__).resolve().parent.parent
SHARED_TORCH_HUB = REPO.parent / "shared" / "torch-hub"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point the library's data and outputs folders at a temp dir for every test."""
    monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIMPSONS_PROGRESS", "0")
    return tmp_path


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A small drawn dataset in the Kaggle layout (scale 0.02: 448 train + 42 test images)."""
    out = tmp_path_factory.mktemp("tiny") / "demo"
    return demo_data.generate(out, scale=0.02, seed=0)


@pytest.fixture(scope="session")
def train_defaults() -> dict:
    """The demo profile's SimpleCnn run, as the pipeline resolves it."""
    return dict(params.resolve("demo", "simple_cnn"))


@pytest.fixture
def train_params(train_defaults, tiny_demo):
    """Validated training parameters on the tiny demo data (profile ``test``), with ``overrides``."""
    def make(**overrides):
        values = {**train_defaults, "profile": "test", "data_dir": str(tiny_demo), "device": "cpu",
                  "resume": False, **overrides}
        return params.validate("train", values)
    return make


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """A temp TORCH_HOME holding a copy of ../shared/torch-hub (real mobilenet_v2 ImageNet weights)."""
    if not (SHARED_TORCH_HUB / "hub").is_dir():
        pytest.skip(f"{SHARED_TORCH_HUB} is not present")
    home = tmp_path / "torch_home"
    shutil.copytree(SHARED_TORCH_HUB / "hub", home / "hub")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home
