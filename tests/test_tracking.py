"""Opt-in tracking: the parameter is validated like any other, and off by default writes nothing."""

import pytest

from simpsons_lib.config import params, paths
from simpsons_lib.reporting import tracking


def test_tracking_is_a_validated_parameter_that_shapes_no_weights():
    base = params.resolve("demo", "mid_cnn")
    assert base["tracking"] == "none" and "tracking" not in params.training_values(base)
    assert params.resolve("demo", "mid_cnn", {"tracking": "tensorboard"})["tracking"] == "tensorboard"
    with pytest.raises(params.ParameterError, match="parameter 'tracking': must be one of 'none', 'tensorboard'"):
        params.resolve("demo", "mid_cnn", {"tracking": "mlflow"})
    with pytest.raises(params.ParameterError, match="unknown parameter 'trackin'.*'tracking'"):
        params.resolve("demo", "mid_cnn", {"trackin": "tensorboard"})


def test_tracking_off_writes_nothing():
    rp = paths.StudyPaths("demo").run("mid_cnn")
    assert tracking.log_run({"tracking": "none"}, rp) is None
    assert not tracking.store_dir(rp).exists()
