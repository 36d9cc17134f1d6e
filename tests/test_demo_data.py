"""The drawn demo data: distinct looks, and no class cue outside the character (file metadata)."""

import dataclasses
import itertools

import numpy as np
import pytest
from PIL import Image

from simpsons_lib.pipeline import demo as demo_data
from simpsons_lib.data import layout as data
from simpsons_lib.reporting import leakage
def test_class_looks_are_spread_apart_and_seeded():
    classes = sorted(demo_data.KAGGLE_CLASS_COUNTS)
    looks = demo_data.class_looks(classes, seed=0)
    assert list(looks) == classes
    distances = [demo_data.look_distance(a, b) for a, b in itertools.combinations(looks.values(), 2)]
    # No two characters differ in fewer than 4 traits (weights: TRAIT_WEIGHTS), so each is learnable
    # from its look; the old trait draw had pairs differing in one trait only.
    assert min(distances) >= 4
    skins = [look.skin for look in looks.values()]
    assert skins.count(demo_data.SKINS[0]) > len(classes) / 2  # mostly yellow, as in the show
    assert demo_data.class_looks(classes, seed=0) == looks
    assert demo_data.class_looks(classes, seed=1) != looks
    bald = next(look for look in looks.values() if look.hairstyle == "bald" and look.accessory != "beard")
    recoloured = dataclasses.replace(bald, hair=(1, 2, 3))
    assert demo_data.look_distance(bald, recoloured) == 0  # invisible hair colour is not a difference


def test_jpeg_quality_is_read_from_the_quantization_tables(tmp_path):
    for q in (35, 60, 80, 95):
        Image.new("RGB", (32, 24), (200, 100, 50)).save(tmp_path / f"q{q}.jpg", quality=q)
        with Image.open(tmp_path / f"q{q}.jpg") as img:
            assert leakage.jpeg_quality(img) == pytest.approx(q, abs=1)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    meta = leakage.file_metadata([tmp_path / "q60.jpg", tmp_path / "x.png"])
    assert list(meta.columns) == leakage.METADATA_COLUMNS
    assert meta.iloc[0][["width", "height"]].tolist() == [32, 24] and np.isnan(meta.iloc[1]["jpeg_quality"])
    assert meta.iloc[0]["file_bytes"] == (tmp_path / "q60.jpg").stat().st_size


def _tolerance(result: leakage.MetadataCueResult) -> float:
    """How far above the majority baseline the metadata classifier may score by chance.

    Three binomial standard errors of an accuracy at the baseline rate over the n images (about 0.044
    for the 448 images at scale 0.02): with no cue at all, a cross-validated accuracy this far above the
    baseline is very unlikely (and a forest on uninformative numbers usually scores below it, since it
    spreads its guesses over classes the baseline never predicts). A real leak scores far above it
    (the leaky variant below: about 0.75 against a 0.04 baseline)."""
    return 3 * result.standard_error


def test_demo_files_carry_no_class_cue_in_their_metadata(tiny_demo):
    index, _ = data.build_train_index(data.find_layout(tiny_demo).train_dir)
    result = leakage.metadata_cue_check(index["path"], index["label"], folds=3, seed=0)
    assert result.n == len(index) and 0.09 < result.baseline < 0.12  # homer's share of the images
    assert result.accuracy <= result.baseline + _tolerance(result), result


def test_the_metadata_check_catches_a_leak(tiny_demo, tmp_path):
    """The same check on a deliberately leaky copy: each file re-saved at a JPEG quality tied to its class."""
    index, _ = data.build_train_index(data.find_layout(tiny_demo).train_dir)
    leaky = []
    for i, (path, label) in enumerate(zip(index["path"], index["label"])):
        out = tmp_path / f"{i}.jpg"
        with Image.open(path) as img:
            img.save(out, "JPEG", quality=int(50 + label))
        leaky.append(out)
    result = leakage.metadata_cue_check(leaky, index["label"], folds=3, seed=0)
    assert result.accuracy > result.baseline + 5 * _tolerance(result), result
    clean = leakage.metadata_cue_check(index["path"], index["label"], folds=3, seed=0)
    assert result.baseline == clean.baseline  # same folds, same labels: only the files differ


def test_metadata_check_needs_enough_images_per_class(tiny_demo):
    paths = sorted((tiny_demo / "testset" / "testset").glob("*.jpg"))[:6]
    with pytest.raises(ValueError, match="at least 3 images"):
        leakage.metadata_cue_check(paths, [0, 0, 0, 0, 1, 1], folds=3)
