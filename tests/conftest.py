"""Shared fixtures: every test writes under a temp dir, never data/ or outputs/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from simpsons_lib.config import params
from simpsons_lib.pipeline import demo as demo_data
REPO = Path(__file__).resolve().parent.parent
SHARED_TORCH_HUB = REPO.parent / "shared" / "torch-hub"

# Under ``pytest -n N`` (``make test``) each worker, and every process it starts (make, the pipeline, the notebooks'
# kernels), takes its share of the cores as torch's threads (set before torch is imported; a value the caller set
# is kept): more threads than cores make each of them spin and wait. On 2 busy cores one CPU training step took
# about 10 times longer with 2 threads a process than with 1.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(_share))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One decoded-image cache for the whole session: each test's outputs folder is its own, but the tiny
    demo (a session fixture, at one path) is decoded once per size, not once per test. The cache is keyed by
    the files' paths, sizes and times, so a test's own copy of the data never reads another's entries."""
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch, shared_cache):
    """Point the library's data and outputs folders at a temp dir for every test; the decoded-image cache
    at the session's ``shared_cache`` (a test about ``outputs/cache`` itself deletes SIMPSONS_CACHE_DIR)."""
    monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("SIMPSONS_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIMPSONS_PROGRESS", "0")
    return tmp_path


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A small drawn dataset in the Kaggle layout (scale 0.02: 458 train + 42 test images)."""
    out = tmp_path_factory.mktemp("tiny") / "demo"
    return demo_data.generate(out, scale=0.02, seed=0)


SMALL_DEMO_CLASSES = ("bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson")


@pytest.fixture(scope="session")
def small_demo(tiny_demo, tmp_path_factory) -> Path:
    """Four classes of the tiny demo, eight images each (24 train + 8 validation images), in the Kaggle layout
    (with the tiny demo's test set and demo marker): for tests of the training mechanics (resume, checkpoints,
    seeds), where an epoch of 3 batches of 8 pins what an epoch of the whole tiny demo does, ten times cheaper."""
    out = tmp_path_factory.mktemp("small") / "demo"
    for name in SMALL_DEMO_CLASSES:
        (out / "train" / "simpsons_dataset" / name).mkdir(parents=True)
        for image in sorted((tiny_demo / "train" / "simpsons_dataset" / name).glob("*.jpg"))[:8]:
            shutil.copy2(image, out / "train" / "simpsons_dataset" / name / image.name)
    shutil.copytree(tiny_demo / "testset", out / "testset")
    shutil.copy2(tiny_demo / "DEMO_DATA.txt", out / "DEMO_DATA.txt")
    return out


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
def small_params(train_params, small_demo):
    """``train_params`` on the ``small_demo`` data, with MidCnn at 32 px (its smallest input; SimpleCnn needs
    94 px): the training mechanics at a ninth of the pixels."""
    def make(**overrides):
        return train_params(**{"data_dir": str(small_demo), "arch": "mid_cnn", "image_size": 32, **overrides})
    return make


MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"  # torchvision's IMAGENET1K_V1 weights


def _find_mobilenet_weights() -> Path | None:
    """torchvision's MobileNetV2 ImageNet file: in ../shared/torch-hub beside the clone, under
    $SIMPSONS_TEST_TORCH_HOME, or in this user's torch hub cache (where torchvision downloads it)."""
    import torch

    homes = [SHARED_TORCH_HUB, *filter(None, [os.environ.get("SIMPSONS_TEST_TORCH_HOME")])]
    candidates = [Path(h) / "hub" / "checkpoints" / MOBILENET_V2_FILE for h in homes]
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / MOBILENET_V2_FILE)
    return next((c for c in candidates if c.is_file()), None)


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """A temp TORCH_HOME holding a copy of torchvision's real mobilenet_v2 ImageNet weights (found by
    ``_find_mobilenet_weights``); skipped, saying where it looked, when there is none."""
    found = _find_mobilenet_weights()
    if found is None:
        pytest.skip(f"no {MOBILENET_V2_FILE}: put it in {SHARED_TORCH_HUB}/hub/checkpoints, set "
                    "SIMPSONS_TEST_TORCH_HOME to a TORCH_HOME holding it, or let torchvision download it once")
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    shutil.copy(found, home / "hub" / "checkpoints" / MOBILENET_V2_FILE)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n`` (``make test``: ``--dist loadgroup``) the tests that share a module- or class-scoped
    fixture (a study made once, e.g. test_pipeline's ``demo``) run in one worker, so the fixture is made once;
    each such fixture is its own group, so two studies of one module can run side by side.

    pytest-xdist groups by a suffix on the node ids, which 3.8 writes where pytest 9.2 no longer reads it
    (``item._nodeid``): no test was grouped, and each worker made its own copy of a module's study. The suffix
    is written here as pytest-xdist means it (once: a pytest-xdist that writes it too adds the same group)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        for name, defs in (info.name2fixturedefs.items() if info else ()):
            if defs and defs[-1].scope in ("module", "class"):
                item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}.{name}"))
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # an older pytest: it reads the suffix pytest-xdist writes
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid.rsplit("]", 1)[-1]:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


DRAWN_CLASSES = ["bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson", "ned_flanders"]


def draw_images(folder: Path, count: int) -> tuple[list[str], list[str]]:
    """``count`` drawn images (JPEG files, wide and tall frames, as the demo data draws them) in ``folder``,
    cycling through ``DRAWN_CLASSES``, and their true classes."""
    import numpy as np

    looks = demo_data.class_looks(DRAWN_CLASSES, seed=0)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths, true = [], []
    for i in range(count):
        c = DRAWN_CLASSES[i % len(DRAWN_CLASSES)]
        path = folder / f"img{i}.jpg"
        demo_data.render_image(looks[c], rng).save(path, quality=90)
        paths.append(str(path))
        true.append(c)
    return paths, true

