"""The near-duplicate audit and the grouped split, on drawn data into which the tests plant their own copies."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from simpsons_lib.config import params
from simpsons_lib.data import cache, layout as data, near_duplicates as nd, study
from simpsons_lib.data.layout import COPIES_FILE
from simpsons_lib.pipeline.demo import GENERATOR_VERSION

MAX_BITS = params.DATA["near_duplicate_bits"].default


def plant_copy(source: Path, target: Path, crop: float, shift: int, quality: int) -> None:
    """A near-duplicate frame: ``source`` cropped by ``crop`` of each side and resized back, its view moved
    ``shift`` px (the left and top edges cut off), re-encoded at ``quality``."""
    img = Image.open(source).convert("RGB")
    w, h = img.size
    img = img.resize((w, h), Image.Resampling.BILINEAR, box=(crop * w, crop * h, w - crop * w, h - crop * h))
    img.crop((shift, shift, w, h)).save(target, "JPEG", quality=quality)  # the camera moved: the frame pans


@pytest.fixture(scope="module")
def planted(tiny_demo, tmp_path_factory):
    """A copy of the tiny demo data with two planted near-duplicates of one image in each of 16 classes
    (one cropped 2 % and re-encoded at quality 70, one shifted 3 px and re-encoded at quality 80), listed
    in its ``frame_copies.csv`` with the generator's own. Returns (root, planted rows: path, copy_of)."""
    root = tmp_path_factory.mktemp("planted") / "demo"
    shutil.copytree(tiny_demo, root)
    known = pd.read_csv(root / COPIES_FILE)
    involved = set(known["path"]) | set(known["copy_of"])
    train = root / "train" / "simpsons_dataset"
    rows = []
    for folder in sorted(p for p in train.iterdir() if p.is_dir())[:16]:
        source = next(p for p in sorted(folder.glob("*.jpg")) if p.relative_to(root).as_posix() not in involved)
        for k, (crop, shift, quality) in enumerate([(0.02, 0, 70), (0.0, 3, 80)]):
            target = folder / f"planted_{k}.jpg"
            plant_copy(source, target, crop, shift, quality)
            rows.append({"path": target.relative_to(root).as_posix(), "copy_of": source.relative_to(root).as_posix()})
    rows = pd.DataFrame(rows)
    pd.concat([known, rows]).to_csv(root / COPIES_FILE, index=False)
    return root, rows


def _audit(root: Path, cache_dir: Path, max_distance: int = MAX_BITS):
    layout = data.find_layout(root)
    index, _ = data.build_train_index(layout.train_dir)
    test, _ = data.build_test_index(layout.test_dir)
    return nd.find_near_duplicates(index, max_distance, test, cache=cache_dir, progress=False)


def _rows(audit: nd.NearDuplicates, root: Path, relative: pd.Series) -> np.ndarray:
    where = {Path(p).resolve(): i for i, p in enumerate(audit.index["path"])}
    return np.array([where[(root / r).resolve()] for r in relative])


def test_the_audit_finds_every_planted_copy_with_its_frame_and_no_false_pair(planted, tmp_path):
    root, rows = planted
    audit = _audit(root, tmp_path)
    copies, sources = _rows(audit, root, rows["path"]), _rows(audit, root, rows["copy_of"])
    assert (audit.groups[copies] == audit.groups[sources]).all()
    score = audit.score_planted(root / COPIES_FILE)  # the generator's copies and the test's
    assert score["planted_copies"] > len(rows) and score["found_with_their_frame"] == score["planted_copies"]
    assert score["false_pairs"] == 0
    # the listing the EDA shows: the groups, the closest pairs, the threshold
    groups = audit.duplicate_groups()
    assert (groups["size"] >= 2).all() and len(groups) >= 16
    assert all(";" not in c for c in groups["classes"])  # copies of one frame: one class
    closest = audit.closest_pairs(10)
    assert len(closest) == 10 and closest["distance"].is_monotonic_increasing and closest["distance"].max() <= MAX_BITS
    assert (closest["class_a"] == closest["class_b"]).all()
    least = audit.least_alike_pairs(4)
    assert least["distance"].is_monotonic_decreasing and least["distance"].iloc[0] == audit.pairs["distance"].max()
    summary = audit.summary(*data.split_train_val(audit.index, 0.25, seed=0))
    assert summary["max_distance_bits"] == MAX_BITS and summary["images_in_groups"] == groups["size"].sum()
    assert "195 bits" in summary["hash"]
    # the generator plants test images that copy a training image: found between test and train
    test_copies = pd.read_csv(root / COPIES_FILE).query("path.str.startswith('testset/')", engine="python")
    assert len(test_copies) and summary["test_images_with_near_duplicate_in_train"] >= len(test_copies)
    by_id = audit.closest_pairs(test=True)
    for path, source in zip(test_copies["path"], test_copies["copy_of"]):
        found = by_id[by_id["path_a"].map(lambda p: Path(p).name) == Path(path).name]
        assert (root / source).resolve() in {Path(p).resolve() for p in found["path_b"]}


def test_a_copy_is_closer_than_any_two_frames_of_another_drawing(planted, tmp_path):
    root, rows = planted
    audit = _audit(root, tmp_path)
    copies, sources = _rows(audit, root, rows["path"]), _rows(audit, root, rows["copy_of"])
    hashes = nd.image_hashes(list(audit.index["path"]), cache=tmp_path)
    assert nd.hamming(hashes[copies], hashes[sources]).max() <= MAX_BITS
    frames = pd.read_csv(root / COPIES_FILE)
    others = np.setdiff1d(np.arange(len(hashes)), _rows(audit, root, pd.concat([frames["path"], frames["copy_of"]])
                                                         [lambda p: p.str.startswith("train/")]))
    far = nd.hamming(hashes[sources][:, None], hashes[others][None])
    assert far.min() > MAX_BITS and np.median(far) > 0.4 * nd.HASH_BITS  # different drawings: about half the bits


def test_a_random_split_crosses_planted_groups_and_the_grouped_split_keeps_each_whole(planted, tmp_path):
    root, rows = planted
    audit = _audit(root, tmp_path)
    planted_groups = set(audit.groups[_rows(audit, root, rows["path"])])
    train, val = data.split_train_val(audit.index, 0.25, seed=0)
    crossed = audit.crossing(train, val)
    assert len(crossed) >= 1 and set(crossed["group"]) & planted_groups
    assert audit.has_twin_in(val.index, train.index).sum() >= len(set(crossed["group"]))
    train, val = data.split_train_val(audit.index, 0.25, seed=0, groups=audit.groups)
    assert audit.crossing(train, val).empty
    assert not audit.has_twin_in(val.index, train.index).any()
    assert set(train.index).isdisjoint(val.index) and len(train) + len(val) == len(audit.index)
    side = pd.Series("train", index=audit.index.index)
    side[val.index] = "val"
    for group in planted_groups:
        assert side[audit.groups == group].nunique() == 1


def test_grouped_split_is_stratified_seeded_and_validates_every_splittable_class(planted, tmp_path):
    root, _ = planted
    audit = _audit(root, tmp_path)
    train1, val1 = data.split_train_val(audit.index, 0.25, seed=3, groups=audit.groups)
    train2, val2 = data.split_train_val(audit.index, 0.25, seed=3, groups=audit.groups)
    _, val3 = data.split_train_val(audit.index, 0.25, seed=4, groups=audit.groups)
    pd.testing.assert_frame_equal(val1, val2)
    assert list(val1.index) != list(val3.index)
    counts = audit.index["class_name"].value_counts()
    assert set(val1["class_name"]) == set(train1["class_name"]) == set(counts.index)  # every class both sides
    big = counts[counts >= 20].index
    share = val1["class_name"].value_counts()[big] / counts[big]
    assert share.between(0.15, 0.35).all()
    assert 0.2 < len(val1) / len(audit.index) < 0.3


def test_grouped_split_keeps_a_class_that_is_one_group_in_train(caplog):
    index = pd.DataFrame({"path": [f"{i}.jpg" for i in range(12)], "class_name": ["a"] * 8 + ["b"] * 4})
    groups = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8])  # b: its 4 images are copies of one frame
    with caplog.at_level(logging.WARNING, logger="simpsons_lib"):
        train, val = data.split_train_val(index, 0.25, seed=0, groups=groups)
    assert set(val["class_name"]) == {"a"} and (train["class_name"] == "b").sum() == 4
    assert "b" in caplog.text and "without validation" in caplog.text
    with pytest.raises(ValueError, match="groups has 3 entries for 12 images"):
        data.split_train_val(index, 0.25, seed=0, groups=np.array([0, 1, 2]))


def test_pairs_found_in_blocks_are_the_brute_force_pairs(monkeypatch):
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2 ** 63, size=(300, nd.HASH_WORDS), dtype=np.uint64)
    hashes[150:170] = hashes[:20] ^ (np.uint64(1) << rng.integers(0, 60, (20, nd.HASH_WORDS)).astype(np.uint64))
    others = hashes[::7] ^ np.uint64(3)
    monkeypatch.setattr(nd, "PAIR_BLOCK", 17)  # blocks that end mid-way through the images
    bits = np.unpackbits(hashes.view(np.uint8), axis=1)
    full = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    a, b = np.nonzero(np.triu(full <= 110, k=1))
    expected = pd.DataFrame({"a": a, "b": b, "distance": full[a, b]}).sort_values(["distance", "a", "b"], ignore_index=True)
    found = nd.close_pairs(hashes, 110)
    assert len(found) > 100
    pd.testing.assert_frame_equal(found, expected, check_dtype=False)
    other_bits = np.unpackbits(others.view(np.uint8), axis=1)
    cross = (bits[:, None, :] != other_bits[None, :, :]).sum(axis=2)
    a, b = np.nonzero(cross <= 110)
    expected = pd.DataFrame({"a": a, "b": b, "distance": cross[a, b]}).sort_values(["distance", "a", "b"], ignore_index=True)
    pd.testing.assert_frame_equal(nd.close_pairs(hashes, 110, others), expected, check_dtype=False)
    groups = nd.group_ids(len(hashes), nd.close_pairs(hashes, 4))
    assert (groups[150:170] == groups[:20]).all() and len(set(groups)) == 280
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy 1.26 counts the bits by a table
    pd.testing.assert_frame_equal(nd.close_pairs(hashes, 110, others), expected, check_dtype=False)


def test_hashes_and_pairs_are_computed_once_into_the_cache_folder(tiny_demo, tmp_path, monkeypatch):
    folder = tmp_path / "images"
    shutil.copytree(tiny_demo / "train" / "simpsons_dataset" / "bart_simpson", folder)
    files = sorted(str(p) for p in folder.glob("*.jpg"))
    first = nd.image_hashes(files, cache=tmp_path / "cache")
    stored = sorted((tmp_path / "cache").glob("dct_hashes_v*.npy"))
    assert len(stored) == 1 and first.shape == (len(files), nd.HASH_WORDS) and first.dtype == np.uint64
    pairs = nd.cached_pairs(first, MAX_BITS, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("near_duplicate_pairs_v*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(nd, "decode_images", no_decoding)
    np.testing.assert_array_equal(nd.image_hashes(files, cache=tmp_path / "cache"), first)
    monkeypatch.setattr(nd, "close_pairs", no_decoding)
    pd.testing.assert_frame_equal(nd.cached_pairs(first, MAX_BITS, cache=tmp_path / "cache"), pairs)
    monkeypatch.undo()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(files[0], "JPEG")  # a changed file: a new key
    second = nd.image_hashes(files, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("dct_hashes_v*.npy"))) == 2
    assert (second[0] != first[0]).any() and (second[1:] == first[1:]).all()
    # the same decoding as the image cache: hashes of the decoded array equal the file's
    np.testing.assert_array_equal(nd.dct_hashes(cache.decode_images(files[:3], nd.HASH_IMAGE_SIZE, progress=False)),
                                  second[:3])


def test_split_parameters_are_validated_naming_the_key(train_params):
    with pytest.raises(params.ParameterError, match="'split'.*'random', 'grouped'"):
        train_params(split="by_episode")
    with pytest.raises(params.ParameterError, match="near_duplicate_bits"):
        train_params(near_duplicate_bits=195)
    assert train_params(split="grouped")["split"] == "grouped"


def test_a_split_run_must_differ_from_a_compared_run_only_in_its_split():
    resolved = {run: params.resolve("demo", run) for run in params.profile_runs("demo")}
    report = resolved["report"]
    assert report["split_runs"] == ["simple_cnn_grouped"]
    params.check_split_runs(report, resolved)  # the demo's: simple_cnn under the grouped split
    values = {r: params.training_values(resolved[r]) for r in report["runs"] + ["simple_cnn_grouped"]}
    assert params.split_partner("simple_cnn_grouped", values) == "simple_cnn"
    odd = params.resolve("demo", "simple_cnn_grouped", {"epochs": 3})
    with pytest.raises(params.ParameterError, match="'split_runs'.*simple_cnn_grouped.*more than its split"):
        params.check_split_runs(report, {**resolved, "simple_cnn_grouped": odd}, "report.yaml: ")


def test_load_study_audits_and_splits_as_asked(train_params):
    random = study.load_study(train_params())
    grouped = study.load_study(train_params(split="grouped"))
    assert random.split == "random" and grouped.split == "grouped"
    assert random.near_duplicate_summary()["groups_across_split"] > 0
    assert grouped.near_duplicate_summary()["groups_across_split"] == 0
    assert not grouped.val_near_duplicate_in_train().any() and random.val_near_duplicate_in_train().any()
    assert "random split puts" in random.describe_near_duplicates()
    record = study.near_duplicate_audit(random, train_params())
    assert record["random"]["groups_across_split"] > 0 == record["grouped"]["groups_across_split"]
    assert record["planted"]["found_with_their_frame"] == record["planted"]["planted_copies"] > 0
    table = nd.audit_table(record)
    assert list(table.columns) == ["random split", "grouped split"]
    assert table.loc["groups on both sides of the split", "grouped split"] == 0


def test_demo_data_drawn_by_an_older_generator_is_drawn_again(tmp_path, monkeypatch):
    from simpsons_lib.pipeline import runner

    out = runner.demo_data("demo", scale=0.01)
    marker = out / "DEMO_DATA.txt"
    assert f"version={GENERATOR_VERSION}" in marker.read_text() and data.demo_version_of(out) == GENERATOR_VERSION
    before = marker.stat().st_mtime_ns
    assert runner.demo_data("demo", scale=0.01, if_needed=True) == out and marker.stat().st_mtime_ns == before
    marker.write_text(marker.read_text().replace(f", version={GENERATOR_VERSION}", ""))  # as version 1 wrote it
    (out / COPIES_FILE).unlink()
    assert data.demo_version_of(out) == 1
    runner.demo_data("demo", scale=0.01, if_needed=True)
    assert data.demo_version_of(out) == GENERATOR_VERSION and (out / COPIES_FILE).is_file()
