"""The report makes each prediction once: a run's validation probabilities (the ensemble, then the TTA
table) and its test probabilities (every run's test score, then the submission) are computed once per
run, TTA and device, and again when the run's export changes."""

import numpy as np
import pytest
import torch

from simpsons_lib.config import params, paths
from simpsons_lib.data import study
from simpsons_lib.reporting import report
from simpsons_lib.training import experiment


@pytest.fixture
def finished(train_params):
    """A finished tiny run (MidCnn, 32 px, one epoch) of profile ``test``: its export and metrics."""
    p = train_params(run_name="once", arch="mid_cnn", image_size=32, epochs=1, batch_size=64, augment=False)
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    result = experiment.train_model(model, s, p, rp, [], progress=False)
    experiment.evaluate_model(model, s, p, rp, result, [])
    return rp


@pytest.fixture
def loads(monkeypatch):
    """The models the report loads, by run: one load per prediction it computes."""
    loaded = []
    real = report.load_run_model

    def counted(study_paths, run, device):
        loaded.append(run)
        return real(study_paths, run, device)

    monkeypatch.setattr(report, "load_run_model", counted)
    return loaded


def test_a_runs_predictions_are_made_once_per_tta_and_again_after_its_export_changes(finished, loads, tiny_demo):
    rp = finished
    first = report.validation_metrics(rp.study, ["once"], "cpu")
    probs, _, _ = report.validation_probs(rp.study, "once", "cpu")
    table = report.tta_table(rp.study, ["once"], "flip", "cpu")  # "none" again, then "flip"
    assert loads == ["once", "once"]  # none, flip
    assert not probs.flags.writeable  # shared by the report's cells: nobody may change it
    assert table["micro_f1"].iloc[0] == first["micro_f1"] and list(table["tta"]) == ["none", "flip"]

    p = {**params.resolve("demo", "report"), "data_dir": str(tiny_demo), "submission_tta": "flip"}
    scores = report.test_scores(rp.study, p, ["once"], [], "cpu", tiny_demo / "test_answers.csv")
    submission, test, classes = report.predict_test_set(rp.study, p, ["once"], "cpu")
    assert loads == ["once"] * 3  # the submission's predictions are the test score's
    assert scores["once"]["test_images"] == len(submission) == len(test.test) > 0 and classes == first["classes"]
    report.predict_test_set(rp.study, {**p, "submission_tta": "none"}, ["once"], "cpu")
    assert loads == ["once"] * 4  # another TTA is another prediction

    # a new export (here: other weights) is predicted again, and its predictions are its own
    payload = torch.load(rp.model_file, weights_only=True)
    payload["state_dict"] = {k: (v + 0.5 if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    torch.save(payload, rp.model_file)
    again, _, _ = report.validation_probs(rp.study, "once", "cpu")
    assert loads == ["once"] * 5 and not np.allclose(again, probs)
    changed = report.predict_test_set(rp.study, p, ["once"], "cpu")[0]
    assert loads == ["once"] * 6
    assert not np.allclose(changed["confidence"], submission["confidence"])
