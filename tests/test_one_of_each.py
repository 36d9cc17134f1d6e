"""Each computation in one place: the parameter diff, the image-size floor, the weights file check, the
run keys and the commands' one-line error tail, each used by every caller that needs it."""

import errno

import pytest

from simpsons_lib.config import params
from simpsons_lib.pipeline import record, runner, status
from simpsons_lib.reporting import compare
from simpsons_lib.training import models


def test_the_parameter_diff_serves_compare_and_status():
    a = {"profile": "p", "run": "a", "run_name": "a", "title": "A", "lr": 0.001, "epochs": 2, "gone": None}
    b = {"profile": "q", "run": "b", "run_name": "b-1", "title": "B", "lr": 0.0003, "epochs": 2, "new": 12}
    assert params.changed_values(a, b) == {"title": ("A", "B"), "lr": (0.001, 0.0003), "new": (None, 12)}
    assert compare.changed_params(a, b) == {"lr": (0.001, 0.0003), "new": (None, 12)}  # the title names a run
    assert params.changed_values(a, None) == {} and compare.changed_params(None, b) == {}
    assert params.changed_values(a, b, ["epochs", "new", "lr", "gone"], missing="?") == {
        "new": ("?", 12), "lr": (0.001, 0.0003), "gone": (None, "?")}
    # status: a parameter the record lacks is "(new)", even when its value is null; the run's names never count
    assert status.parameter_changes(a, b, ["run", "lr", "new", "title"]) == [
        "lr 0.001 -> 0.0003", "new (new) -> 12", "title 'A' -> 'B'"]
    assert status.parameter_changes({}, {"x": None}, ["x"]) == ["x (new) -> null"]


def test_the_image_size_floor_is_one_message_for_parameters_and_exports():
    problem = params.image_size_problem("simple_cnn", 64)
    assert problem == "parameter 'image_size': simple_cnn needs at least 94 px (five conv+pool blocks), got 64"
    assert params.image_size_problem("simple_cnn", 94) is None and params.image_size_problem("transfer", 32) is None
    values = params.defaults("train") | {"arch": "simple_cnn", "image_size": 64}
    with pytest.raises(params.ParameterError) as raised:
        params.validate("train", values, "x.yaml: ")
    assert str(raised.value) == "x.yaml: " + problem


def test_the_weights_file_check(tmp_path):
    assert models.weights_file(None) is None and models.weights_file("IMAGENET1K_V1") is None
    state = tmp_path / "w.pth"
    state.write_bytes(b"")
    assert models.weights_file(str(state)) == state
    with pytest.raises(FileNotFoundError, match=f"^weights: no such state-dict file: {tmp_path / 'no.pth'}$"):
        models.weights_file(str(tmp_path / "no.pth"))
    with pytest.raises(FileNotFoundError, match="no such state-dict file"):
        models.load_backbone("mobilenet_v2", str(tmp_path / "no.pth"))


def test_run_keys_are_the_rule_for_training_and_report_runs(tmp_path):
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}")
    train = params.Params(params.defaults("train"))
    train.kind, train.notebook = "train", str(notebook)
    keys = record.run_keys(train, "d" * 40)
    assert keys == {"training": record.training_fingerprint(params.training_values(train), "d" * 40),
                    "render": record.render_fingerprint(train, notebook), "data": "d" * 40}
    report = params.Params(params.defaults("report"))
    report.kind, report.notebook = "report", str(notebook)
    assert record.run_keys(report, "d" * 40)["training"] is None
    train["lr"] = 0.5
    assert record.run_keys(train, "d" * 40)["training"] != keys["training"]


def test_the_commands_share_one_error_tail(tmp_path):
    def failing(exc):
        with pytest.raises(SystemExit) as raised:
            with runner.one_line_errors("status"):
                raise exc
        return raised.value.code

    assert failing(params.ParameterError("x.yaml: unknown parameter 'lrr'")) == "error: x.yaml: unknown parameter 'lrr'"
    assert failing(runner.PipelineError("a run failed")) == "error: a run failed"
    assert failing(PermissionError(errno.EACCES, "Permission denied", str(tmp_path))) == \
        f"error: {tmp_path}: Permission denied"
    assert failing(KeyboardInterrupt()) == "error: status interrupted"
    assert failing(SystemExit(3)) == 3  # a command's own exit status passes through
    with pytest.raises(ValueError):  # an unexpected error is not hidden
        with runner.one_line_errors("status"):
            raise ValueError("a bug")
