import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import f1_score

from simpsons_lib.config import files as io_utils
from simpsons_lib.inference import submission
from simpsons_lib.reporting import plots
from simpsons_lib.reporting import tables as evaluate
from simpsons_lib.training import evaluation
CLASSES = ["apu", "bart", "homer", "lisa"]


def test_metrics_agree_with_hand_made_case():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 2, 0]
    m = evaluation.compute_metrics(y_true, y_pred, CLASSES)
    assert m["micro_f1"] == pytest.approx(4 / 6) and m["accuracy"] == pytest.approx(4 / 6)
    # apu: P 1/2 R 1/2 F1 .5; bart: P 1/2 R 1 F1 2/3; homer: P 1 R 2/3 F1 .8; lisa: no validation image
    assert m["per_class"]["apu"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["bart"]["f1"] == pytest.approx(2 / 3)
    assert m["per_class"]["homer"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["lisa"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert m["unvalidated_classes"] == ["lisa"] and m["validated_classes"] == 3
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)  # over the validated classes only
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 1, 2], average="macro"))
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert m["confusion_matrix_normalized"][2] == pytest.approx([1 / 3, 0, 2 / 3, 0])
    assert m["worst_classes"] == ["apu", "bart", "homer"]
    json.loads(json.dumps(m, allow_nan=False))


def test_prediction_frame_and_misclassified():
    frame = pd.DataFrame({"path": ["a.jpg", "b.jpg", "c.jpg"], "class_name": ["apu", "bart", "homer"]})
    probs = np.array([[0.9, 0.1, 0, 0], [0.2, 0.1, 0.7, 0], [0, 0, 0.4, 0.6]])
    pred = evaluation.prediction_frame(frame, probs, CLASSES)
    assert list(pred["predicted"]) == ["apu", "homer", "lisa"] and list(pred["correct"]) == [True, False, False]
    wrong = evaluate.misclassified(pred)
    assert list(wrong["path"]) == ["b.jpg", "c.jpg"]  # most confident first


def _sample(tmp_path, ids):
    path = tmp_path / "sample_submission.csv"
    pd.DataFrame({"Id": ids, "Expected": "bart"}).to_csv(path, index=False)
    return submission.read_ids(path)


def test_submission_written_in_sample_order_and_scored(tmp_path):
    ids = _sample(tmp_path, ["img0.jpg", "img1.jpg", "img2.jpg", "img10.jpg"])
    preds = pd.DataFrame({"Id": ["img10.jpg", "img2.jpg", "img0.jpg", "img1.jpg"],
                          "Expected": ["lisa", "homer", "bart", "bart"], "confidence": 0.9})
    out = submission.write_submission(preds, tmp_path / "out" / "submission.csv", ids, CLASSES)
    written = pd.read_csv(out)
    assert list(written.columns) == ["Id", "Expected"]
    assert list(written["Id"]) == ids and list(written["Expected"]) == ["bart", "bart", "homer", "lisa"]
    answers = tmp_path / "answers.csv"
    pd.DataFrame({"Id": ids, "Expected": ["bart", "apu", "homer", "lisa"]}).to_csv(answers, index=False)
    score = submission.score_submission(out, answers)
    assert score["micro_f1"] == pytest.approx(0.75) and score["errors"] == 1


@pytest.mark.parametrize("case,ids,names,message", [
    ("missing", ["img0.jpg", "img1.jpg"], ["bart", "bart"], "missing"),
    ("duplicated", ["img0.jpg", "img1.jpg", "img1.jpg", "img2.jpg"], ["bart"] * 4, "duplicated"),
    ("extra", ["img0.jpg", "img1.jpg", "img2.jpg", "img9.jpg"], ["bart"] * 4, "not in the sample"),
    ("unknown class", ["img0.jpg", "img1.jpg", "img2.jpg"], ["bart", "bart", "flanders"], "flanders"),
])
def test_submission_refuses_bad_cases_and_writes_nothing(tmp_path, case, ids, names, message):
    sample = _sample(tmp_path, ["img0.jpg", "img1.jpg", "img2.jpg"])
    target = tmp_path / "submission.csv"
    with pytest.raises(submission.SubmissionError, match=message):
        submission.write_submission(pd.DataFrame({"Id": ids, "Expected": names}), target, sample, CLASSES)
    assert not target.exists() and list(tmp_path.glob("*.tmp*")) == []


def _png_ok(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_plots_return_figures_and_save_pngs(tmp_path, tiny_demo):
    from simpsons_lib.data import layout as data
    from simpsons_lib.reporting import eda

    index, _ = data.build_train_index(data.find_layout(tiny_demo).train_dir)
    classes = sorted(index.class_name.unique())
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 42, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 42, 300))
    metrics = evaluation.compute_metrics(y_true, y_pred, classes)
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [2, 1], "val_loss": [2.2, 1.5], "train_accuracy": [.3, .6],
                            "val_micro_f1": [.3, .5], "val_macro_f1": [.2, .4]})
    table = evaluate.metrics_table({"a": {**metrics, "title": "A"}, "b": {**metrics, "title": "B"}})
    wrong = pd.DataFrame({"path": index.path[:3], "true": ["x"] * 3, "predicted": ["y"] * 3, "confidence": [.9, .8, .7]})
    figures = {
        "distribution": plots.class_distribution(eda.class_counts(index)),
        "grid": plots.sample_grid(index, classes[:3], 2),
        "curves": plots.learning_curves(history),
        "confusion": plots.confusion_matrix(metrics),
        "f1": plots.per_class_f1(metrics),
        "gallery": plots.misclassified_gallery(wrong),
        "evolution": plots.f1_evolution(table),
        "heatmap": plots.per_class_f1_heatmap(evaluate.per_class_f1_table({"a": metrics, "b": metrics})),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        assert _png_ok(io_utils.save_figure(fig, tmp_path / f"{name}.png")), name
    ax = figures["confusion"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == classes
    assert [t.get_text() for t in ax.get_xticklabels()] == classes


def test_submission_run_by_name_or_best():
    table = pd.DataFrame({"run": ["a", "b", "c"], "micro_f1": [0.5, 0.7, 0.6]})
    assert evaluate.submission_run("best", table) == "b"
    assert evaluate.submission_run("c", table) == "c"
    with pytest.raises(ValueError, match="'zzz'"):
        evaluate.submission_run("zzz", table)


def test_expected_ids_come_from_the_sample_submission_or_the_test_files(tiny_demo, train_params):
    from simpsons_lib.data import study

    s = study.load_test_study(train_params(), ["bart_simpson"], 32)
    assert submission.expected_ids(s) == [f"img{i}.jpg" for i in range(42)]
    s.layout = type(s.layout)(s.layout.root, s.layout.train_dir, s.layout.test_dir, None)
    assert sorted(submission.expected_ids(s)) == sorted(s.test["Id"])


def test_the_evolution_table_shows_the_last_epoch_and_test_scores_or_why_there_are_none():
    from simpsons_lib.reporting import tables

    base = {"title": "A", "micro_f1": 0.9, "macro_f1": 0.8, "accuracy": 0.9, "last_epoch_val_micro_f1": 0.85,
            "last_epoch_val_macro_f1": 0.7, "epochs_trained": 3, "train_seconds": 1.0}
    metrics = {"a": base, "b": {**base, "title": "B"}}
    scored = tables.metrics_table(metrics, {"a": {"test_micro_f1": 0.8, "test_macro_f1": 0.6},
                                            "b": {"test_micro_f1": 0.7, "test_macro_f1": 0.5}})
    assert list(scored["test_micro_f1"]) == [0.8, 0.7] and list(scored["last_epoch_micro_f1"]) == [0.85, 0.85]
    unlabelled = tables.metrics_table(metrics, {})
    assert unlabelled["test_micro_f1"].isna().all() and "no test labels" in unlabelled.attrs["caption"]
    assert "caption" not in scored.attrs
    assert "test_micro_f1" not in tables.metrics_table(metrics)


def test_the_strong_class_cue_is_said_in_words_when_it_remains():
    import pandas as pd

    from simpsons_lib.reporting import narrative

    row = {"run": "mid_cnn", "strong classes": 12, "taken from": "simple_cnn", "validation images of them": 12,
           "predicted as them": 0, "right": 0, "true share": 0.045, "predicted share": 0.0,
           "predicted share, tilted images": 0.6, "their F1 before": 0.2, "their F1 after": 0.0,
           "classes it predicts": 30, "classes": 42}
    text = narrative.describe_strong_cue(pd.DataFrame([row]))
    assert text.startswith("mid_cnn") and "A cue remains" in text and "60%" in text
    fine = {**row, "predicted as them": 10, "right": 7, "predicted share": 0.04, "predicted share, tilted images": 0.05}
    assert "No cue" in narrative.describe_strong_cue(pd.DataFrame([fine]))
    collapsed = {**row, "classes it predicts": 1}
    assert "Inconclusive" in narrative.describe_strong_cue(pd.DataFrame([collapsed]))
