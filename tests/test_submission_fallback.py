"""The submission covers every test Id, unreadable test images included (fallback prediction, listed)."""

import shutil

import pandas as pd
import pytest
import torch

from simpsons_lib.config import files as io_utils
from simpsons_lib.data import layout as data
from simpsons_lib.data import study
from simpsons_lib.inference import submission
IMAGE_SIZE = 32


@pytest.fixture
def six_test_images(tiny_demo, tmp_path):
    """A copy of the tiny demo whose test folder holds img0..img5, img3 unreadable (truncated)."""
    root = tmp_path / "data6"
    shutil.copytree(tiny_demo, root)
    layout = data.find_layout(root)
    for f in layout.test_dir.iterdir():
        if f.name not in {f"img{i}.jpg" for i in range(6)}:
            f.unlink()
    bad = layout.test_dir / "img3.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    ids = [f"img{i}.jpg" for i in range(6)]
    answers = pd.read_csv((layout.root / "test_answers.csv"), dtype=str).set_index("Id").loc[ids].reset_index()
    answers.to_csv((layout.root / "test_answers.csv"), index=False)
    pd.DataFrame({"Id": ids, "Expected": "bart_simpson"}).to_csv(layout.sample_submission, index=False)
    return root


def _model(n_classes):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * IMAGE_SIZE * IMAGE_SIZE, n_classes))


def _largest_training_class(root):
    train_dir = data.find_layout(root).train_dir
    counts = {d.name: len(list(d.iterdir())) for d in train_dir.iterdir() if d.is_dir()}
    top = max(counts.values())
    assert sorted(counts.values())[-2] < top  # one clear largest class, so the test says which it must be
    return max(counts, key=counts.get)


@pytest.mark.parametrize("with_sample", [False, True])
def test_an_unreadable_test_image_gets_the_fallback_and_is_listed(six_test_images, train_params, tmp_path,
                                                                  with_sample, capsys):
    layout = data.find_layout(six_test_images)
    if not with_sample:
        layout.sample_submission.unlink()
    p = train_params(data_dir=str(six_test_images), on_bad_image="skip")
    classes = sorted(d.name for d in layout.train_dir.iterdir() if d.is_dir())
    test = study.load_test_study(p, classes, IMAGE_SIZE)
    assert len(test.test) == 5 and submission.bad_test_ids(test) == ["img3.jpg"]

    ids = submission.expected_ids(test)
    assert ids == [f"img{i}.jpg" for i in range(6)]  # before: 5 Ids without a sample (the unreadable one left out)

    predictions = submission.predict_test(_model(len(classes)), test, IMAGE_SIZE, "cpu")
    fallback = submission.fallback_ids(predictions)
    assert fallback == ["img3.jpg"]
    row = predictions.set_index("Id").loc["img3.jpg"]
    assert row["Expected"] == _largest_training_class(six_test_images) and pd.isna(row["confidence"])
    assert not predictions.set_index("Id").drop(index="img3.jpg")["fallback"].any()

    out = tmp_path / "out" / "submission.csv"
    submission.write_submission(predictions, out, ids, classes)
    written = pd.read_csv(out, dtype=str)
    assert list(written["Id"]) == ids and len(written) == 6

    summary = submission.summarize("tiny", out, (layout.root / "test_answers.csv"), tmp_path / "out" / "submission.json", fallback)
    saved = io_utils.read_json(tmp_path / "out" / "submission.json")
    assert saved == summary and saved["rows"] == 6 and saved["fallback_ids"] == ["img3.jpg"]
    assert saved["fallback_class"] == row["Expected"] and saved["score"]["n_images"] == 6

    # a frame made without the fallback rows is refused, and the error says why the Id is missing
    with pytest.raises(submission.SubmissionError, match=r"1 Id\(s\) missing.*could not be read.*img3\.jpg"):
        submission.check_submission(predictions[~predictions["fallback"]], ids, classes,
                                    bad_ids=submission.bad_test_ids(test))


def test_the_fallback_class_from_a_full_study_is_the_same(six_test_images, train_params):
    p = train_params(data_dir=str(six_test_images), on_bad_image="skip")
    full = study.load_study(p, with_test=True)
    assert submission.bad_test_ids(full) == ["img3.jpg"]
    test = study.load_test_study(p, full.classes, IMAGE_SIZE)
    assert submission.most_frequent_class(full) == submission.most_frequent_class(test) \
        == _largest_training_class(six_test_images)
    predictions = submission.predict_test(_model(full.n_classes), test, IMAGE_SIZE, "cpu", fallback_class="lisa_simpson")
    assert predictions.set_index("Id").loc["img3.jpg", "Expected"] == "lisa_simpson"
    with pytest.raises(submission.SubmissionError, match="'flanders' is not one of"):
        submission.predict_test(_model(full.n_classes), test, IMAGE_SIZE, "cpu", fallback_class="flanders")


def test_under_raise_an_unreadable_test_image_stops_the_run(six_test_images, train_params):
    p = train_params(data_dir=str(six_test_images), on_bad_image="raise")
    with pytest.raises(data.BadImageError, match="img3.jpg"):
        study.load_test_study(p, ["bart_simpson"], IMAGE_SIZE)
