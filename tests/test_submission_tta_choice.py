"""The submission's test-time augmentation is chosen from the validation figures the report shows
(``submission_tta: auto``, the profiles' default): the mode with the best validation micro-F1, of equal
ones the cheaper; a named mode is taken as it is. One rule (``report.chosen_tta``) for the submission,
every run's test score in the evolution table, the index's footnote and a sweep point's score."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from simpsons_lib.config import params, paths
from simpsons_lib.config.files import write_csv
from simpsons_lib.data import layout, study
from simpsons_lib.pipeline import sweep
from simpsons_lib.reporting import index_page, narrative, report, tables
from simpsons_lib.training import experiment

REPO = Path(__file__).resolve().parent.parent


def figures(**micro) -> pd.DataFrame:
    """A TTA table with these validation micro-F1s (``flip_scales`` for flip+scales)."""
    return pd.DataFrame([{"run": "a", "split": "random", "validation images": 100, "tta": mode.replace("_", "+"),
                          "micro_f1": f1, "macro_f1": f1 - 0.1, "errors": round((1 - f1) * 100)}
                         for mode, f1 in micro.items()])


def test_auto_is_every_profiles_default_and_a_bad_value_names_the_key():
    for profile in ("demo", "full", "smoke"):
        assert params.resolve(profile, "report")["submission_tta"] == "auto"
    assert params.resolve("demo", "report", {"submission_tta": "flip"})["submission_tta"] == "flip"
    with pytest.raises(params.ParameterError, match="submission_tta"):
        params.resolve("demo", "report", {"submission_tta": "sometimes"})


def test_auto_takes_the_best_validation_micro_f1_and_of_equals_the_cheaper():
    assert report.chosen_tta(figures(none=0.90, flip=0.92, flip_scales=0.91), "auto") == "flip"
    assert report.chosen_tta(figures(none=0.90, flip=0.90, flip_scales=0.93), "auto") == "flip+scales"
    # the case: flip changes nothing on micro-F1 (and lowers macro-F1): the cheaper, none
    assert report.chosen_tta(figures(none=0.9438, flip=0.9438, flip_scales=0.9400), "auto") == "none"
    assert report.chosen_tta(figures(none=0.90, flip=0.93, flip_scales=0.93), "auto") == "flip"
    # a named mode is taken as it is, whatever the figures say
    assert report.chosen_tta(figures(none=0.95, flip=0.90), "flip") == "flip"
    assert report.tried_tta("auto") == ["none", "flip", "flip+scales"] and report.tried_tta("flip") == ["none", "flip"]


def test_the_sentence_under_the_table_names_the_choice_the_split_and_why():
    table = figures(none=0.9438, flip=0.9438, flip_scales=0.9400)
    text = narrative.describe_tta(table, "auto", report.chosen_tta(table, "auto"))
    assert "no test-time augmentation" in text and "submission_tta: auto" in text
    assert "a's random validation split" in text and "0.9438" in text and "cheaper" in text
    chosen = narrative.describe_tta(figures(none=0.90, flip=0.92, flip_scales=0.91), "auto", "flip")
    assert "uses flip test-time augmentation" in chosen and "0.9200 against 0.9000" in chosen
    named = narrative.describe_tta(figures(none=0.95, flip=0.90), "flip", "flip")
    assert "because the parameter submission_tta names it" in named and "0.9000 with it, 0.9500 without" in named
    assert len(text.splitlines()) == 1 and "<p>" in text._repr_html_()


@pytest.fixture
def trained(train_params):
    """A tiny finished SimpleCnn run (``base``) of profile ``test``, with its metrics and export."""
    p = train_params(run_name="base", run="base", epochs=1, image_size=96, batch_size=32)
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    result = experiment.train_model(model, s, p, rp, [])
    experiment.evaluate_model(model, s, p, rp, result, [])
    return p, rp.study


def test_a_real_runs_test_score_uses_the_mode_its_validation_chose(trained):
    p, study_paths = trained
    table = report.tta_table(study_paths, ["base"], "auto", "cpu")
    assert list(table["tta"]) == ["none", "flip", "flip+scales"]
    assert set(table["split"]) == {"random"} and set(table["validation images"]) == {
        len(pd.read_csv(study_paths.run("base").predictions_csv))}
    best = table["micro_f1"].max()
    expected = next(m for m in ("none", "flip", "flip+scales") if table.set_index("tta").loc[m, "micro_f1"] == best)
    assert report.chosen_tta(table, "auto") == expected
    assert report.submission_tta(study_paths, ["base"], "auto", "cpu") == expected

    answers = layout.answers_file(p, layout.find_study_layout(p))
    truth = pd.read_csv(answers, dtype=str)
    scores = report.test_scores(study_paths, {**p, "submission_tta": "auto"}, ["base"], [], "cpu", answers)
    assert scores["base"]["test_tta"] == expected
    by_hand = report.score_frame(report.predict_test_set(study_paths, p, ["base"], "cpu", expected)[0], truth)
    assert scores["base"]["test_micro_f1"] == by_hand["test_micro_f1"]
    named = report.test_scores(study_paths, {**p, "submission_tta": "flip+scales"}, ["base"], [], "cpu", answers)
    assert named["base"]["test_tta"] == "flip+scales"

    evolution = tables.metrics_table({"base": report._read_metrics(study_paths, "base")}, scores)
    assert list(evolution["test_tta"]) == [expected]  # the evolution table says which TTA scored each run


def test_the_index_footnote_names_the_tta_the_evolution_table_recorded():
    study_paths = paths.StudyPaths("test")
    row = {"run": "a", "title": "A", "micro_f1": 0.9, "test_micro_f1": 0.9, "test_macro_f1": 0.8}
    write_csv(study_paths.evolution_csv, pd.DataFrame([{**row, "test_tta": "flip"}, {**row, "run": "b", "test_tta": "flip"}]))
    page = index_page.build(study_paths).read_text()
    assert "on the test answers, flip TTA" in page and "auto TTA" not in page
    write_csv(study_paths.evolution_csv, pd.DataFrame([{**row, "test_tta": "none"}, {**row, "run": "b", "test_tta": "flip"}]))
    page = index_page.build(study_paths).read_text()
    assert "each run with the test-time augmentation its validation micro-F1 chose" in page


def test_a_sweep_point_records_the_mode_the_one_rule_gave_it_and_the_setting(tmp_path, monkeypatch, tiny_demo):
    root = tmp_path / "params"
    shutil.copytree(REPO / "params" / "smoke", root / "smoke")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(root))
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(tiny_demo.parent))
    assert sweep.report_tta("smoke") == "auto"
    asked = {}

    def chosen(study_paths, runs, setting, device):
        asked.update(runs=list(runs), setting=setting)
        return "flip"

    monkeypatch.setattr(report, "submission_tta", chosen)
    monkeypatch.setattr(report, "predict_test_set", lambda study_paths, p, runs, device, tta: (
        pd.DataFrame({"Id": ["img0.jpg"], "Expected": ["x"]}), None, None))
    monkeypatch.setattr(report, "score_frame", lambda predictions, truth: {
        "test_micro_f1": 0.5, "test_macro_f1": 0.4, "test_images": 1})
    point = sweep.resolve_points("smoke", "simple_cnn", [{"lr": 0.002}])[0]
    out = sweep.test_scores("smoke", point)
    assert asked == {"runs": [point.run_name], "setting": "auto"}
    assert out["test_tta"] == "flip" and out["test_tta_setting"] == "auto" and out["test_micro_f1"] == 0.5
