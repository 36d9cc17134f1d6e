"""Classes with no validation image (too rare to split) are reported as not validated, never as F1 0."""

import json

import numpy as np
import pytest
from matplotlib.colors import to_hex
from sklearn.metrics import f1_score

from simpsons_lib.data import layout as data
from simpsons_lib.reporting import plots
from simpsons_lib.reporting import tables as evaluate
from simpsons_lib.training import class_scores
from simpsons_lib.training import evaluation
RARE = 6  # classes cut down to a single image: too rare to split, they stay in train only


@pytest.fixture(scope="module")
def real_split(tiny_demo):
    """The tiny demo's stratified split, with ``RARE`` of its 3-image classes cut to one image each."""
    index, _ = data.build_train_index(data.find_layout(tiny_demo).train_dir)
    counts = index["class_name"].value_counts()
    cut = sorted(counts[counts == 3].index)[:RARE]
    index = index[~index["class_name"].isin(cut) | ~index.duplicated("class_name")]
    train, val = data.split_train_val(index, 0.25, 0)
    return sorted(index["class_name"].unique()), train, val


def _metrics(classes, val, seed=0):
    rng = np.random.default_rng(seed)
    y_true = val["label"].to_numpy()
    wrong = rng.integers(0, len(classes), len(y_true))  # the mistakes may name any class, rare ones too
    y_pred = np.where(rng.random(len(y_true)) < 0.7, y_true, wrong)
    return y_true, y_pred, evaluation.compute_metrics(y_true, y_pred, classes)


def test_rare_classes_of_the_real_split_are_listed_as_not_validated(real_split):
    classes, train, val = real_split
    y_true, y_pred, m = _metrics(classes, val)
    rare = sorted(set(classes) - set(val["class_name"]))
    assert len(rare) == RARE and m["unvalidated_classes"] == rare
    assert m["validated_classes"] == len(classes) - len(rare)
    for c in rare:
        assert m["per_class"][c] == {"precision": None, "recall": None, "f1": None, "support": 0}
    validated = sorted(set(val["label"]))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=validated, average="macro"))
    # the old figure (zero F1 for the rare classes, averaged in) was lower than the honest one
    assert m["macro_f1"] > f1_score(y_true, y_pred, labels=range(len(classes)), average="macro", zero_division=0)
    # micro-F1 stays Kaggle's metric over every validation image, mistakes into rare classes included
    assert np.isin(y_pred, [classes.index(c) for c in rare]).any()
    assert m["micro_f1"] == pytest.approx(float(np.mean(y_true == y_pred)))
    assert not set(m["worst_classes"]) & set(rare) and len(m["worst_classes"]) == 5
    json.loads(json.dumps(m, allow_nan=False))


def test_worst_classes_are_chosen_among_validated_classes_only(tmp_path):
    classes = ["a", "b", "c", "d"]
    m = evaluation.compute_metrics([0, 0, 1, 1, 2, 2], [0, 0, 1, 0, 0, 0], classes)  # d: no validation image
    assert m["unvalidated_classes"] == ["d"]
    assert class_scores.worst_classes_from_metrics(m, k=2) == ["c", "a"]
    assert class_scores.worst_classes_from_metrics(m, below=1.01) == ["c", "a", "b"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(m))
    assert class_scores.worst_classes_from_metrics(path, k=4) == ["c", "a", "b"]
    # a metrics file written before (f1 0.0 with support 0): still not taken for a hard class
    old = {**m, "per_class": {**m["per_class"], "d": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}}
    assert class_scores.worst_classes_from_metrics(old, k=1) == ["c"]


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_figures_show_unvalidated_classes_in_grey_not_as_zero(real_split):
    classes, _, val = real_split
    _, _, m = _metrics(classes, val)
    rare = m["unvalidated_classes"]

    fig = plots.per_class_f1(m)
    ax = fig.axes[0]
    texts = _texts(fig)
    assert texts.count("not validated (no validation image)") == len(rare)
    assert not [t for t in texts if "(n=0)" in t]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-len(rare):] == sorted(rare)  # after every validated class
    grey = [p for p in ax.patches if to_hex(p.get_facecolor()) == plots.NOT_VALIDATED]
    assert len(grey) == len(rare)

    _, _, other = _metrics(classes, val, seed=1)
    other["per_class"] = {**other["per_class"], "homer_simpson": {"precision": None, "recall": None, "f1": None,
                                                                  "support": 0}}
    table = evaluate.per_class_f1_table({"a": m, "b": other})
    assert table.loc[rare].isna().all(axis=None) and np.isnan(table.loc["homer_simpson", "b"])
    assert table.loc["homer_simpson", "a"] == pytest.approx(m["per_class"]["homer_simpson"]["f1"])
    fig = plots.per_class_f1_heatmap(table)
    ax = fig.axes[0]
    texts = _texts(fig)
    assert texts.count("not validated") == 2 * len(rare) + 1
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows[-len(rare):] == sorted(rare) and "homer_simpson" in rows[:-len(rare)]
    grey = [p for p in ax.patches if to_hex(p.get_facecolor()) == plots.NOT_VALIDATED]
    assert len(grey) == 2 * len(rare) + 1
    assert "0.00" not in texts or texts.count("0.00") == int((table.round(2) == 0).sum().sum())
