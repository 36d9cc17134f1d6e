"""Near-duplicates in words, on data where they mislead: a pair that joins two classes is called likely a
false match (a copy keeps its class), a count of one is "1 group", and the report puts a difference between
the random and the grouped split down to near-duplicates only as far as the crossing images can explain it
(their count x 1/n of the random split's validation images); the rest is the noise of another draw."""

from __future__ import annotations

import re
import shutil

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from simpsons_lib.config import params
from simpsons_lib.data import layout as data, near_duplicates as nd
from simpsons_lib.data.layout import COPIES_FILE
from simpsons_lib.reporting import narrative, plots, tables

MAX_BITS = 34  # near_duplicate_bits' default


@pytest.fixture
def across(tiny_demo, tmp_path):
    """The tiny drawn data with one image copied into another class; its audit under the random split."""
    root = tmp_path / "data"
    shutil.copytree(tiny_demo, root)
    classes = sorted(p for p in (root / "train" / "simpsons_dataset").iterdir() if p.is_dir())
    copies = pd.read_csv(root / COPIES_FILE)
    planted = set(copies["path"]) | set(copies["copy_of"])  # an image with no copy of its own: one pair
    source = next(p for p in sorted(classes[0].glob("*.jpg")) if p.relative_to(root).as_posix() not in planted)
    shutil.copy(source, classes[1] / "copied_from_another_class.jpg")
    index, _ = data.build_train_index(data.find_layout(root).train_dir)
    audit = nd.find_near_duplicates(index, MAX_BITS, cache=tmp_path / "cache", progress=False)
    train, val = data.split_train_val(index, 0.25, 0)
    return audit, audit.summary(train, val), classes[0].name, classes[1].name


def test_a_pair_that_joins_two_classes_is_called_likely_a_false_match(across):
    audit, summary, first, second = across
    assert summary["pairs_joining_classes"] == 1  # the copy; the drawn data's own copies keep their class
    words = nd.describe(summary, "random")
    assert f"1 pair of {summary['near_duplicate_pairs']} joins two different classes: likely a false match" in words
    table = nd.audit_table({"random": summary, "grouped": summary})
    assert table.loc["pairs joining two classes (likely false matches)", "random split"] == 1
    pairs = audit.closest_pairs()
    fig = plots.near_duplicate_pairs(pairs, MAX_BITS, n=len(pairs))
    captions = [ax.get_title() for ax in fig.axes if ax.get_title()]
    plt.close(fig)
    flagged = [c for c in captions if "likely a false match" in c]
    assert len(flagged) == 1 and flagged[0].startswith((first, second))
    test_fig = plots.near_duplicate_pairs(pairs.assign(class_a="img1.jpg"), MAX_BITS, n=len(pairs), test=True)
    assert not [ax for ax in test_fig.axes if "false match" in ax.get_title()]  # a test Id is no class
    plt.close(test_fig)


def test_one_is_a_group_not_groups(across):
    _, summary, _, _ = across
    one = {**summary, "groups": 1, "groups_across_split": 1, "val_images_with_near_duplicate_in_train": 1}
    words = nd.describe(one, "random")
    assert "1 group of near-duplicates holds" in words and "puts 1 group on both sides" in words
    assert f"1 of {summary['val_images']} validation images has a near-duplicate" in words
    assert not re.search(r"\b1 groups\b", words) and not re.search(r"\b1 pairs\b", words)
    assert summary["groups_across_split"] > 1  # the drawn data's own copies: several groups cross
    assert f"puts {summary['groups_across_split']} groups on both sides" in nd.describe(summary, "random")


def _metrics(run: str, micro: float, images: int) -> dict:
    p = dict(params.resolve("demo", run))
    return {"title": "SimpleCnn", "micro_f1": micro, "macro_f1": micro - 0.2, "split": p["split"], "params": p,
            "per_class": {"a": {"f1": micro, "support": images // 2},
                          "b": {"f1": micro, "support": images - images // 2}}}


def _validation(twins: int) -> pd.DataFrame:
    return pd.DataFrame([{"run": "simple_cnn", "split": "random", "validation images": 500,
                          "with a near-duplicate in training": twins, "micro-F1 on those": 1.0,
                          "micro-F1 on the others": 0.95, "micro-F1": 0.951},
                         {"run": "simple_cnn_grouped", "split": "grouped", "validation images": 480,
                          "with a near-duplicate in training": 0, "micro-F1 on those": float("nan"),
                          "micro-F1 on the others": 0.902, "micro-F1": 0.902}]).set_index("run")


@pytest.mark.parametrize("twins, random_f1, said", [
    (1, 0.951, "Near-duplicates can explain at most 0.002 of it (1 of the random split's 500 validation images has "
               "a near-duplicate in training, each worth 1/500 of micro-F1); the other 0.047 is the noise"),
    (0, 0.951, "none of the difference comes from near-duplicates"),
    (30, 0.951, "Near-duplicates can explain at most 0.060 (30 of the random split's 500 validation images have"),
    (3, 0.890, "The random split does not score higher here, though near-duplicates could add up to 0.006"),
])
def test_a_split_difference_is_put_down_to_near_duplicates_only_as_far_as_they_explain_it(twins, random_f1, said):
    runs = {"simple_cnn": _metrics("simple_cnn", random_f1, 500)}
    split = {"simple_cnn_grouped": _metrics("simple_cnn_grouped", 0.902, 480)}
    validation = _validation(twins)
    comparison = tables.split_comparison(runs, split, validation)
    assert comparison.loc[0, "at most explained by near-duplicates"] == pytest.approx(twins / 500)
    words = narrative.describe_splits(comparison, validation)
    assert said in words
    assert "the random split adds" not in words
    assert f"a difference of {random_f1 - 0.902:+.3f}" in words
