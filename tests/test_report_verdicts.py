"""The augmentation-cue verdicts: one consistent sentence per augmented run naming what was measured and
what it concludes, based on a control (the same run trained without the strong policy) where the study
has one, shown beside the run in the cue table; without a control, rarity and a cue cannot be told apart.
A remaining geometry cue tells the user what to do (``strong_geometry: all``). The words are paragraphs
on the page, never a monospace block."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from simpsons_lib.config import params, paths
from simpsons_lib.config.files import write_json
from simpsons_lib.data import study
from simpsons_lib.reporting import narrative, report
from simpsons_lib.training import experiment

REPO = Path(__file__).resolve().parent.parent
STRONG = ["bart_simpson", "homer_simpson", "lisa_simpson"]


def row(run="mid_cnn", control_of=None, predicted=0, right=0, tilted=0.05, **extra) -> dict:
    return {"run": run, "control of": control_of, "strong classes": 12, "strong geometry": None if control_of else "worst",
            "taken from": "simple_cnn", "validation images of them": 12, "predicted as them": predicted,
            "right": right, "true share": 0.045, "predicted share, tilted images": tilted, "classes it predicts": 30,
            "classes": 42, "their F1 before": 0.2, "their F1 after": 0.0, **extra}


def verdicts(*rows, profile="demo") -> str:
    return narrative.describe_strong_cue(pd.DataFrame(rows, columns=report.CUE_COLUMNS), profile)


def test_never_predicted_without_a_control_is_no_geometry_cue_and_the_rest_is_open():
    text = verdicts(row())
    assert text.startswith("mid_cnn (12 strong classes") and len(text.splitlines()) == 1
    assert "Not predicted" in text and "not a geometry cue" in text and "whether it is a cue at all is open" in text
    assert "rarity and a cue cannot be told apart" in text
    assert 'make sweep PROFILE=demo RUN=mid_cnn GRID="augment=false"' in text  # how to get a control
    assert "A cue remains" not in text and "the geometry is not the cue" not in text


def test_a_control_that_misses_them_too_makes_it_rarity_not_a_cue():
    # the MidCnn: the recipe's augmentation predicts the strong classes 0 times, augment: false once
    text = verdicts(row(), row(run="mid_cnn-0a1b2c", control_of="mid_cnn", predicted=1, right=1, tilted=0.04))
    assert len(text.splitlines()) == 1  # the control gets no verdict of its own
    assert text.startswith("mid_cnn ") and "Mostly rarity, not a cue" in text and "the control mid_cnn-0a1b2c 1 time" in text
    assert "misses 11 of them too and the policy costs 1 more" in text
    assert "cannot be told apart" not in text and "A cue remains" not in text


def test_a_control_that_predicts_them_puts_the_miss_on_the_policy():
    text = verdicts(row(predicted=1), row(run="base", control_of="mid_cnn", predicted=11, right=9, tilted=0.05))
    assert "The policy costs them" in text and "not by a geometry cue" in text and "the control base 11 times" in text


def test_a_geometry_cue_says_what_to_do_and_a_control_drawn_alike_clears_the_policy():
    text = verdicts(row(predicted=2, tilted=0.6))
    assert "A cue remains" in text and "60%" in text and "strong_geometry: all" in text
    assert "no control run" in text
    against = verdicts(row(predicted=10, right=8, tilted=0.3), row(run="base", control_of="mid_cnn", predicted=11,
                                                                 right=9, tilted=0.28))
    assert "A cue remains" not in against and "No cue" in against and "the control 28%" in against
    already = verdicts(row(predicted=2, tilted=0.6, **{"strong geometry": "all"}))
    assert "strong_geometry is already all" in already


def test_no_verdict_contradicts_itself():
    cases = [row(predicted=p, tilted=t) for p in (0, 3, 12) for t in (0.0, 0.05, 0.6)]
    for case in cases:
        text = verdicts(case)
        assert not ("A cue remains" in text and ("not a geometry cue" in text or "not the cue" in text)), text
        assert not ("No cue" in text and "cue remains" in text), text


def test_the_verdicts_are_paragraphs_escaped_not_a_monospace_block():
    text = verdicts(row(run="<b>mine</b>"), row(run="other"))
    page = text._repr_html_()
    assert page.count("<p>") == 2 and "<pre" not in page and "&lt;b&gt;mine&lt;/b&gt;" in page
    notebook = json.loads((REPO / "notebooks" / "05_report.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "narrative.describe_strong_cue(cue, p.profile)" in code
    assert "print(narrative.describe_strong_cue" not in code


def test_a_control_is_the_same_training_without_the_strong_policy():
    base = dict(params.resolve("demo", "mid_cnn"))
    assert params.is_cue_control({**base, "augment": False}, base)
    assert params.is_cue_control({**base, "augment": False, "worst_k": None, "worst_from_run": None}, base)
    assert not params.is_cue_control(base, base)  # augmented itself
    assert not params.is_cue_control({**base, "augment": False, "epochs": 3}, base)
    assert not params.is_cue_control({**base, "augment": False, "arch": "simple_cnn"}, base)
    simple, aug = (dict(params.resolve("demo", r)) for r in ("simple_cnn", "simple_cnn_aug"))
    assert params.is_cue_control(simple, aug)  # the demo's SimpleCnn is its augmented run's control


def finished(make, **overrides):
    p = make(epochs=1, image_size=96, batch_size=32, **overrides)
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    worst = experiment.worst_classes(p, rp, s.classes)
    result = experiment.train_model(model, s, p, rp, worst)
    metrics, _ = experiment.evaluate_model(model, s, p, rp, result, worst)
    write_json(rp.manifest, {"run": p["run_name"], "kind": "train"})
    return metrics


@pytest.fixture
def augmented_and_control(train_params):
    aug = finished(train_params, run="aug", run_name="aug", augment=True, worst_classes=STRONG)
    control = finished(train_params, run="aug", run_name="aug-0a1b2c", augment=False)
    # a run validated on the same images, with the control's files, but trained otherwise (lr): not a control
    study_paths = paths.StudyPaths("test")
    theirs, mine = study_paths.run("aug-0a1b2c"), study_paths.run("other")
    mine.models.mkdir(parents=True)
    shutil.copy(theirs.model_file, mine.model_file)
    shutil.copy(theirs.predictions_csv, mine.predictions_csv)
    other = {**control, "run": "other", "params": {**control["params"], "run_name": "other", "lr": 0.01}}
    write_json(mine.metrics_json, other)
    write_json(mine.manifest, {"run": "other", "kind": "train"})
    return {"aug": aug, "aug-0a1b2c": control, "other": other}


def test_the_cue_table_sets_the_control_beside_its_run_and_the_verdict_rests_on_it(augmented_and_control):
    study_paths = paths.StudyPaths("test")
    # the control is found among the report's runs, or among the study's other finished runs (a sweep point)
    assert report.cue_control(study_paths, "aug", augmented_and_control) == "aug-0a1b2c"
    only = {"aug": augmented_and_control["aug"], "other": augmented_and_control["other"]}
    assert report.cue_control(study_paths, "aug", only) == "aug-0a1b2c"
    assert report.cue_control(study_paths, "aug", {**only, "other": {**only["other"], "params": {
        **only["other"]["params"], "lr": only["aug"]["params"]["lr"]}}}) == "other"  # trained alike: the first found
    table = report.strong_class_cue(study_paths, only, "cpu")
    assert list(table["run"]) == ["aug", "aug-0a1b2c"]
    assert table["control of"].isna().iloc[0] and table["control of"].iloc[1] == "aug"
    control = table.iloc[1]
    predictions = pd.read_csv(study_paths.run("aug-0a1b2c").predictions_csv)
    assert control["predicted as them"] == int(predictions["predicted"].isin(STRONG).sum())
    assert control["validation images of them"] == table.iloc[0]["validation images of them"]
    text = narrative.describe_strong_cue(table, "test")
    assert len(text.splitlines()) == 1 and text.startswith("aug (3 strong classes")
    assert "cannot be told apart" not in text
    assert "the control aug-0a1b2c" in text
    # without the control's files, the run has none, and the verdict says what that leaves open
    for path in study_paths.run("aug-0a1b2c").model_file.parent.glob("*"):
        path.unlink()
    alone = report.strong_class_cue(study_paths, only, "cpu")
    assert list(alone["run"]) == ["aug"]
