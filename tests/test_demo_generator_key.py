"""The drawn demo data's generator and the exploration's statistics shape no weights: editing them retrains
no run of the Kaggle profile. The demo profile's runs follow the data the generator draws, through the
data's own fingerprint, not through the generator's code."""

import shutil
from pathlib import Path

from PIL import Image

from simpsons_lib.config import params
from simpsons_lib.data.layout import data_fingerprint, find_layout
from simpsons_lib.pipeline import demo as generator
from simpsons_lib.training import fingerprint

REPO = Path(__file__).resolve().parent.parent


def library_copy(tmp_path: Path) -> Path:
    target = tmp_path / "simpsons_lib"
    shutil.copytree(REPO / "simpsons_lib", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def training_keys(profile: str, data_sha1: str, lib: Path | None = None) -> dict[str, str]:
    """Every training run's key of ``profile``, as the plan computes it, over the library at ``lib``."""
    keys = {}
    for run in params.profile_runs(profile):
        p = params.resolve(profile, run)
        if p.kind == "train":
            keys[run] = fingerprint.training_fingerprint(params.training_values(p), data_sha1, lib)
    return keys


def test_the_generator_lies_outside_the_weight_shaping_wings():
    files = {f.resolve() for f in fingerprint.wing_files(fingerprint.WEIGHT_SHAPING_WINGS)}
    assert Path(generator.__file__).resolve() not in files
    assert not any("def render_image" in f.read_text() or "def describe_counts" in f.read_text() for f in files)


def test_editing_the_generator_changes_no_training_key_of_the_full_profile(tmp_path):
    lib = library_copy(tmp_path)
    before = training_keys("full", "kaggle-data", lib)
    assert len(before) >= 6 and len(set(before.values())) == len(before)
    demo = lib / "pipeline" / "demo.py"
    source = demo.read_text()
    assert "SKIN_SHARES = [0.7, 0.15, 0.15]" in source
    demo.write_text(source.replace("SKIN_SHARES = [0.7, 0.15, 0.15]", "SKIN_SHARES = [0.5, 0.25, 0.25]")
                    + "\n# a cartoon renderer's edit\n")
    eda = lib / "reporting" / "eda.py"
    eda.write_text(eda.read_text() + "\n# an exploration's edit\n")
    assert training_keys("full", "kaggle-data", lib) == before
    loop = lib / "training" / "loop.py"  # the control: an edit to a weight-shaping module retrains every run
    loop.write_text(loop.read_text() + "\n# a training loop's edit\n")
    after = training_keys("full", "kaggle-data", lib)
    assert all(after[run] != before[run] for run in before)


def test_the_demo_profile_retrains_when_the_drawn_data_changes_not_when_the_generator_code_does(tmp_path, tiny_demo):
    """A generator edit that draws other images reaches the demo runs through the data's fingerprint (the
    plan hashes every file's name and size); one that draws the same images retrains nothing."""
    lib = library_copy(tmp_path)
    data = shutil.copytree(tiny_demo, tmp_path / "demo")
    layout = find_layout(data)
    drawn = data_fingerprint([layout.train_dir, layout.test_dir])["sha1"]
    before = training_keys("demo", drawn, lib)
    demo = lib / "pipeline" / "demo.py"
    demo.write_text(demo.read_text() + "\n# a refactoring that draws the same images\n")
    assert training_keys("demo", drawn, lib) == before
    image = next(layout.train_dir.rglob("*.jpg"))  # what a generator that draws differently leaves behind
    with Image.open(image) as img:
        img.convert("RGB").rotate(7).save(image, quality=55)
    redrawn = data_fingerprint([layout.train_dir, layout.test_dir])["sha1"]
    assert redrawn != drawn
    after = training_keys("demo", redrawn, lib)
    assert all(after[run] != before[run] for run in before)
