import hashlib
import logging
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from simpsons_lib.data import cache as image_cache
from simpsons_lib.data import datasets
from simpsons_lib.pipeline import demo as demo_data
from simpsons_lib.data import layout as data
from simpsons_lib.pipeline import kaggle as kaggle_download
def jpeg(path: Path, color=(200, 30, 30), size=(40, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, "JPEG")
    return path


def make_kaggle_tree(root: Path, train_rel: str, test_rel: str, classes=("bart_simpson", "homer_simpson", "lisa_simpson"),
                     per_class=6, n_test=4):
    for ci, c in enumerate(classes):
        for i in range(per_class):
            jpeg(root / train_rel / c / f"pic_{i:04d}.jpg", color=(40 * ci, 10 * i, 100))
    for i in range(n_test):
        jpeg(root / test_rel / f"img{i}.jpg")
    pd.DataFrame({"Id": [f"img{i}.jpg" for i in range(n_test)], "Expected": classes[0]}).to_csv(
        root / "sample_submission.csv", index=False)
    return root


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("train_rel", data.TRAIN_CANDIDATES[:3])
@pytest.mark.parametrize("test_rel", data.TEST_CANDIDATES[:3])
def test_layout_variants_are_detected(tmp_path, train_rel, test_rel):
    root = make_kaggle_tree(tmp_path / "kaggle", train_rel, test_rel)
    layout = data.find_layout(root)
    assert layout.train_dir == root / train_rel
    assert layout.test_dir == root / test_rel
    assert layout.sample_submission == root / "sample_submission.csv"
    assert not layout.is_demo


def test_layout_inside_competition_folder_and_explicit_override(tmp_path):
    root = make_kaggle_tree(tmp_path / "kaggle" / "journey-springfield", "train/simpsons_dataset", "testset/testset")
    assert data.find_layout(tmp_path / "kaggle").train_dir == root / "train/simpsons_dataset"
    other = make_kaggle_tree(tmp_path / "mine", "pics", "unlabeled")
    layout = data.find_layout(other, train_dir="pics", test_dir=other / "unlabeled")
    assert layout.train_dir == other / "pics" and layout.test_dir == other / "unlabeled"
    with pytest.raises(data.DatasetNotFoundError, match="nowhere"):
        data.find_layout(other, train_dir="nowhere")


def test_missing_data_error_lists_every_path_and_how_to_get_it(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.find_layout(tmp_path / "empty")
    msg = str(err.value)
    for rel in data.TRAIN_CANDIDATES:
        assert str(tmp_path / "empty" / rel) in msg
    assert "make data" in msg and "make demo-data" in msg


def test_index_is_sorted_labelled_from_folders_and_deterministic(tmp_path):
    root = make_kaggle_tree(tmp_path, "train/simpsons_dataset", "testset/testset", per_class=12)
    jpeg(root / "train/simpsons_dataset/lisa_simpson/pic_0100.jpg")
    a, _ = data.build_train_index(root / "train/simpsons_dataset")
    b, _ = data.build_train_index(root / "train/simpsons_dataset")
    pd.testing.assert_frame_equal(a, b)
    assert list(a["class_name"].unique()) == ["bart_simpson", "homer_simpson", "lisa_simpson"]
    assert a.groupby("class_name")["label"].first().tolist() == [0, 1, 2]
    lisa = [Path(p).name for p in a[a.class_name == "lisa_simpson"].path]
    assert lisa[-3:] == ["pic_0010.jpg", "pic_0011.jpg", "pic_0100.jpg"]  # natural order
    encoder = data.fit_label_encoder(a["class_name"])
    assert list(encoder.inverse_transform([2, 0])) == ["lisa_simpson", "bart_simpson"]
    rebuilt = data.label_encoder_from_classes(list(encoder.classes_))
    assert list(rebuilt.transform(["homer_simpson"])) == [1]
    test, _ = data.build_test_index(root / "testset/testset")
    assert list(test["Id"]) == [f"img{i}.jpg" for i in range(4)]


def test_split_is_seeded_stratified_and_validates_every_class(tiny_demo):
    layout = data.find_layout(tiny_demo)
    index, _ = data.build_train_index(layout.train_dir)
    train1, val1 = data.split_train_val(index, 0.25, seed=3)
    train2, val2 = data.split_train_val(index, 0.25, seed=3)
    _, val3 = data.split_train_val(index, 0.25, seed=4)
    pd.testing.assert_frame_equal(val1, val2)
    assert list(val1.index) != list(val3.index)
    assert set(train1.index).isdisjoint(val1.index) and len(train1) + len(val1) == len(index)
    counts = index.class_name.value_counts()
    val_counts = val1.class_name.value_counts()
    assert set(val1.class_name) == set(train1.class_name) == set(counts.index)  # 42 classes on both sides
    rare = counts[counts * 0.25 < 1].index
    assert "lionel_hutz" in rare and (val_counts[rare] == 1).all()  # 3 images: 2 train, 1 validation
    big = counts[counts >= 20].index
    share = val_counts[big] / counts[big]
    assert share.between(0.2, 0.3).all()  # stratified
    # the same split on any machine: pinned for this generated data and seed 3
    assert list(val1.index[:8]) == [1, 5, 8, 14, 20, 21, 27, 28] and len(val1) == 116


def _frame(counts: dict[str, int]) -> pd.DataFrame:
    names = [c for c, n in counts.items() for _ in range(n)]
    frame = pd.DataFrame({"path": [f"{c}/{i}.jpg" for i, c in enumerate(names)], "class_name": names})
    frame["label"] = data.fit_label_encoder(frame.class_name).transform(frame.class_name)
    return frame


def test_split_gives_small_classes_one_image_each_side_and_keeps_a_single_image_in_train(caplog):
    index = _frame({"big": 40, "two": 2, "three": 3, "four": 4, "one": 1})
    with caplog.at_level(logging.WARNING, logger="simpsons_lib"):
        train, val = data.split_train_val(index, 0.1, seed=0)  # 0.1: rounding alone gives the small ones none
    assert val.class_name.value_counts().to_dict() == {"big": 4, "two": 1, "three": 1, "four": 1}
    assert train.class_name.value_counts().to_dict() == {"big": 36, "two": 1, "three": 2, "four": 3, "one": 1}
    assert "one" in caplog.text and "without validation" in caplog.text
    train, val = data.split_train_val(index, 0.85, seed=0)  # a large fraction: train keeps one of each
    assert set(train.class_name) == {"big", "two", "three", "four", "one"} and set(val.class_name) == {
        "big", "two", "three", "four"}
    assert train.class_name.value_counts()["two"] == 1 and len(train) + len(val) == len(index)
    assert list(data.split_train_val(index, 0.1, seed=0)[1].index) != list(data.split_train_val(index, 0.1, seed=1)[1].index)


MODES = {
    "L": ("L", 128, "PNG"), "P": ("P", 3, "PNG"), "RGBA": ("RGBA", (10, 20, 30, 128), "PNG"),
    "LA": ("LA", (100, 200), "PNG"), "CMYK": ("CMYK", (10, 20, 30, 40), "JPEG"), "RGB-png": ("RGB", (1, 2, 3), "PNG"),
    "I;16": ("I;16", 3000, "PNG"), "gray-jpeg": ("L", 90, "JPEG"),
}


@pytest.mark.parametrize("name", MODES)
def test_every_image_mode_loads_as_rgb(tmp_path, name):
    mode, color, fmt = MODES[name]
    path = tmp_path / f"img.{fmt.lower()}"
    img = Image.new(mode, (33, 21), color)
    if name == "P":
        img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] * 64)
    img.save(path, fmt)
    ds = datasets.ImageDataset([str(path)], labels=[5])
    image, label = ds[0]
    assert image.mode == "RGB" and image.size == (33, 21) and label == 5
    assert image_cache.decode_resized(str(path), 16).shape == (3, 16, 16)
    if name == "P":
        assert np.asarray(image)[0, 0].tolist() == [0, 0, 255]


def _bad_tree(tmp_path):
    root = make_kaggle_tree(tmp_path / "kaggle", "train/simpsons_dataset", "testset/testset", per_class=4)
    cls = root / "train/simpsons_dataset/bart_simpson"
    (cls / "empty.jpg").write_bytes(b"")
    good = (cls / "pic_0000.jpg").read_bytes()
    full = Image.new("RGB", (200, 160))
    full.putdata([(i % 256, (i * 7) % 256, 50) for i in range(200 * 160)])
    full.save(cls / "big.jpg", "JPEG")
    (cls / "truncated.jpg").write_bytes((cls / "big.jpg").read_bytes()[:600])
    (cls / "big.jpg").unlink()
    (cls / "notes.jpg").write_text("not an image at all")
    (cls / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (cls / "Thumbs.db").write_bytes(b"\xd0\xcf")
    (cls / "readme.txt").write_text("hello")
    (root / "train/simpsons_dataset/empty_class").mkdir()
    assert good
    return root


def test_bad_images_raise_naming_the_file(tmp_path):
    root = _bad_tree(tmp_path)
    with pytest.raises(data.BadImageError) as err:
        data.build_train_index(root / "train/simpsons_dataset")
    assert "bart_simpson/empty.jpg" in str(err.value) and "on_bad_image: skip" in str(err.value)


def test_bad_images_skipped_and_listed_non_images_ignored_nothing_modified(tmp_path, caplog):
    root = _bad_tree(tmp_path)
    before = snapshot(root)
    with caplog.at_level(logging.WARNING, logger="simpsons_lib"):
        index, report = data.build_train_index(root / "train/simpsons_dataset", on_bad_image="skip")
    bad = {p.name: r for p, r in report.bad_files}
    assert set(bad) == {"empty.jpg", "truncated.jpg", "notes.jpg"}
    assert "0 bytes" in bad["empty.jpg"] and "truncated" in bad["truncated.jpg"].lower()
    assert {p.name for p in report.ignored_files} == {".DS_Store", "Thumbs.db", "readme.txt"}
    assert report.dropped_classes == ["empty_class"]
    assert "empty_class" in caplog.text and "readme.txt" in caplog.text
    assert len(index) == 12 and set(index.class_name) == {"bart_simpson", "homer_simpson", "lisa_simpson"}
    out = data.write_index_report(report, tmp_path / "out" / "bad.csv")
    listed = pd.read_csv(out)
    assert sorted(Path(p).name for p in listed.path) == ["empty.jpg", "notes.jpg", "truncated.jpg"]
    assert snapshot(root) == before


def test_demo_generator_is_deterministic_and_in_kaggle_layout(tmp_path):
    a = demo_data.generate(tmp_path / "a", scale=0.01, seed=1, workers=1)
    b = demo_data.generate(tmp_path / "b", scale=0.01, seed=1, workers=2)
    c = demo_data.generate(tmp_path / "c", scale=0.01, seed=2, workers=2)
    sa, sb, sc = snapshot(a), snapshot(b), snapshot(c)
    digest = lambda s: {k: v[1] for k, v in s.items() if not k.endswith(".txt")}
    assert digest(sa) == digest(sb)
    assert digest(sa) != digest(sc)
    layout = data.find_layout(a)
    assert layout.train_dir == a / "train/simpsons_dataset" and layout.test_dir == a / "testset/testset"
    assert layout.is_demo
    index, _ = data.build_train_index(layout.train_dir)
    counts = index.class_name.value_counts()
    assert len(counts) == 42 and counts.min() == 3
    assert counts["homer_simpson"] == round(2246 * 0.01)
    sample = pd.read_csv(layout.sample_submission)
    answers = pd.read_csv(layout.root / "test_answers.csv")
    assert list(sample.columns) == ["Id", "Expected"] == list(answers.columns)
    assert list(sample.Id) == list(answers.Id) == [f"img{i}.jpg" for i in range(42)]
    assert set(answers.Expected) <= set(demo_data.KAGGLE_CLASS_COUNTS)
    sizes = {Image.open(p).size for p in list(layout.train_dir.rglob("*.jpg"))[:40]}
    assert len(sizes) > 10 and any(w != h for w, h in sizes)
    with pytest.raises(FileExistsError):
        (tmp_path / "user").mkdir()
        (tmp_path / "user" / "mine.txt").write_text("keep")
        demo_data.generate(tmp_path / "user", scale=0.01)
    assert (tmp_path / "user" / "mine.txt").read_text() == "keep"


def test_demo_full_scale_counts():
    counts = demo_data.scaled_counts(1.0)
    assert sum(counts.values()) == 20933 and counts["lionel_hutz"] == 3
    assert demo_data.scaled_counts(0.05)["lionel_hutz"] == 3


def test_kaggle_zip_is_unpacked_and_detected(tmp_path):
    src = make_kaggle_tree(tmp_path / "src", "train/simpsons_dataset", "testset/testset")
    zpath = tmp_path / "journey-springfield.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p in src.rglob("*"):
            if p.is_file():
                z.write(p, p.relative_to(src))
    out = tmp_path / "data" / "kaggle"
    out.mkdir(parents=True)
    (out / "journey-springfield.zip").write_bytes(zpath.read_bytes())
    layout = kaggle_download.download(out)  # the zip is there: unpacked, not downloaded
    assert layout.train_dir == out / "train/simpsons_dataset" and layout.test_dir == out / "testset/testset"
    assert layout.sample_submission.is_file() and (out / "journey-springfield.zip").is_file()
    index, _ = data.build_train_index(layout.train_dir)
    assert len(index) == 18


def test_kaggle_zip_slip_and_bad_zip_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(ValueError, match="outside"):
        kaggle_download.unpack(evil, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\3\4 not really")
    with pytest.raises(ValueError, match="not a valid zip"):
        kaggle_download.unpack(broken, tmp_path / "out2")


def test_make_data_without_token_says_what_to_do(tmp_path, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert not kaggle_download.has_token()
    with pytest.raises(SystemExit) as err:
        kaggle_download.download(tmp_path / "kaggle")
    assert "kaggle.json" in str(err.value) and "make data" in str(err.value)
    assert kaggle_download.has_token(env={"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=tmp_path)
    oauth = tmp_path / "home" / ".config" / "kaggle" / "credentials.json"  # `kaggle auth login`, XDG folder
    oauth.parent.mkdir(parents=True)
    oauth.write_text("{}")
    assert kaggle_download.has_token()


def test_image_cache_decodes_once_and_matches(tiny_demo, tmp_path):
    paths = sorted(str(p) for p in (tiny_demo / "testset/testset").glob("*.jpg"))[:10]
    arr = image_cache.load_image_array(paths, 48, cache=tmp_path / "cache", progress=False)
    files = list((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 1 and arr.shape == (10, 3, 48, 48) and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, image_cache.decode_images(paths, 48, progress=False))  # every image, in order
    mtime = files[0].stat().st_mtime_ns
    again = image_cache.load_image_array(paths, 48, cache=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(arr, again)
    assert files[0].stat().st_mtime_ns == mtime
    assert image_cache.fingerprint(paths, 48) != image_cache.fingerprint(paths, 64)
    ds = datasets.ArrayImageDataset(arr, rows=[3, 5], labels=[1, 2])
    image, label = ds[0]
    assert isinstance(image, torch.Tensor) and label == 1
    assert torch.equal(image, torch.from_numpy(np.array(arr[3])))


def test_decoding_in_processes_equals_threads_in_order(tiny_demo):
    from simpsons_lib.data import parallel

    paths = sorted(str(p) for p in (tiny_demo / "train").rglob("*.jpg"))[:40]
    blocks = {kind: list(parallel.map_chunks(partial(image_cache.decode_block, size=24), paths, chunk=7, workers=2,
                                             processes=kind == "processes"))
              for kind in ("threads", "processes")}
    assert [len(b) for b in blocks["threads"]] == [7, 7, 7, 7, 7, 5]
    np.testing.assert_array_equal(np.concatenate(blocks["processes"]), np.concatenate(blocks["threads"]))
    np.testing.assert_array_equal(blocks["processes"][5][4], image_cache.decode_resized(paths[39], 24))
    bad = list(parallel.map_chunks(data.check_images, [Path(p) for p in paths[:3]] + [tiny_demo / "DEMO_DATA.txt"],
                                   chunk=2, workers=2, processes=True))
    assert bad[0] == [None, None] and bad[1][0] is None and bad[1][1] == "not a decodable image"


def test_image_cache_that_fails_to_decode_leaves_no_file(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (20, 20), (10, 20, 30)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(data.BadImageError, match="bad.png"):
        image_cache.load_image_array([str(good), str(bad), str(good)], 16, cache=tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_split_rows_are_copied_to_the_device_in_the_split_order(tiny_demo, tmp_path):
    paths = sorted(str(p) for p in (tiny_demo / "testset/testset").glob("*.jpg"))[:12]
    arr = image_cache.load_image_array(paths, 24, cache=tmp_path / "cache", progress=False)
    rows = np.array([7, 2, 11, 0, 5, 9, 3])
    for images in (arr, np.array(arr)):  # memory map (pages let go after each chunk) and plain array
        copied = datasets.copy_rows_to_device(images, rows, "cpu", chunk=3)
        assert copied.dtype == torch.uint8 and torch.equal(copied, torch.from_numpy(np.array(arr[rows])))
    np.testing.assert_array_equal(arr[4], image_cache.decode_resized(paths[4], 24))  # still readable


def test_cached_dataset_pickles_its_memmap_by_name(tiny_demo, tmp_path):
    import pickle

    paths = sorted(str(p) for p in (tiny_demo / "testset/testset").glob("*.jpg"))[:6]
    arr = image_cache.load_image_array(paths, 32, cache=tmp_path / "cache", progress=False)
    ds = datasets.ArrayImageDataset(arr, ids=[Path(p).name for p in paths])
    blob = pickle.dumps(ds)
    assert len(blob) < arr.nbytes  # the pixels are not copied
    clone = pickle.loads(blob)
    assert isinstance(clone.images, np.memmap) and torch.equal(clone[4][0], ds[4][0]) and clone[4][1] == paths[4].split("/")[-1]


def test_bad_file_scan_runs_once_per_set_of_files(tmp_path, monkeypatch):
    root = make_kaggle_tree(tmp_path / "kaggle", "train/simpsons_dataset", "testset/testset", per_class=3)
    calls = []
    real = data.check_image
    monkeypatch.setattr(data, "check_image", lambda p: calls.append(p) or real(p))
    first, _ = data.build_train_index(root / "train/simpsons_dataset")
    assert len(calls) == 9
    again, _ = data.build_train_index(root / "train/simpsons_dataset")
    assert len(calls) == 9  # remembered: no file decoded twice
    pd.testing.assert_frame_equal(first, again)
    (root / "train/simpsons_dataset/bart_simpson/pic_0001.jpg").write_bytes(b"")  # a file changes
    with pytest.raises(data.BadImageError, match="pic_0001.jpg"):
        data.build_train_index(root / "train/simpsons_dataset")
    assert len(calls) == 18
