"""The plan step (preflight): what used to fail late, inside a notebook after other runs had trained, now
stops before any notebook, naming the key or the file."""

import shutil

import pytest
import torch

from simpsons_lib.config import paths
from simpsons_lib.pipeline import preflight
from simpsons_lib.pipeline import runner as pipeline
from simpsons_lib.config.params import ParameterError


@pytest.fixture
def profile(tmp_path, monkeypatch, tiny_demo):
    """Profile ``check`` on a copy of the tiny demo data: eda, one SimpleCnn and one transfer run, a report."""
    data = tmp_path / "data_copy"
    shutil.copytree(tiny_demo, data)
    folder = tmp_path / "params" / "check"
    folder.mkdir(parents=True)
    (folder / "_common.yaml").write_text(f"data_dir: {data}\ndevice: cpu\n")
    (folder / "eda.yaml").write_text("notebook: 00_eda\n")
    (folder / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\nimage_size: 96\n")
    (folder / "resnet50.yaml").write_text("notebook: 03_resnet50\nimage_size: 64\n")
    (folder / "report.yaml").write_text("notebook: 05_report\nruns: [simple_cnn, resnet50]\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    return folder, data


def edit(path, text):
    path.write_text(path.read_text() + text)


def test_a_valid_profile_plans_and_writes_keys(profile):
    keys = pipeline.plan("check")
    assert set(keys) == {"eda", "simple_cnn", "resnet50", "report"}
    plan_dir = paths.StudyPaths("check").plan
    assert (plan_dir / "plan.mk").read_text().splitlines()[0] == "RUNS := eda simple_cnn resnet50 report"
    assert "$(NB)/report.ipynb: $(NB)/simple_cnn.ipynb $(NB)/resnet50.ipynb" in (plan_dir / "plan.mk").read_text()


@pytest.mark.parametrize("file,text,message", [
    ("simple_cnn.yaml", "image_size: 64\n", r"simple_cnn.yaml: parameter 'image_size': simple_cnn needs at least 94 px"),
    ("resnet50.yaml", "backbone: resnet5\n", r"resnet50.yaml: parameter 'backbone': 'resnet5' is not a torchvision model"),
    ("resnet50.yaml", "backbone: vgg11\n", r"parameter 'backbone': 'vgg11' is not a supported family"),
    ("resnet50.yaml", "weights: /no/such/weights.pth\n", r"resnet50.yaml: parameter 'weights': no such state-dict file"),
    ("resnet50.yaml", "weights: IMAGENET9K\n", r"parameter 'weights': resnet50 has no weights 'IMAGENET9K'"),
    ("report.yaml", "runs: [simple_cnn, mid_cnn]\n", r"report.yaml: run 'mid_cnn' \(named by a parameter\) is not a run"),
    ("report.yaml", "answers: nothing.csv\n", r"report.yaml: answers: no such file .*nothing.csv"),
])
def test_bad_parameters_stop_before_any_run(profile, file, text, message):
    folder, _ = profile
    lines = [line for line in (folder / file).read_text().splitlines() if line.split(":")[0] != text.split(":")[0]]
    (folder / file).write_text("\n".join(lines) + "\n" + text)
    with pytest.raises(ParameterError, match=message):
        pipeline.plan("check")
    assert not list(paths.StudyPaths("check").plan.glob("*.key"))  # nothing planned, nothing to run


def test_a_wrong_answers_path_names_the_file_that_set_it(profile):
    """``answers`` set in ``_common.yaml`` is reported against ``_common.yaml`` (as ``params show`` says where it
    came from), not against the first run that reads it."""
    folder, _ = profile
    edit(folder / "_common.yaml", "answers: nothing.csv\n")
    with pytest.raises(ParameterError, match=r"check/_common.yaml: answers: no such file .*nothing.csv") as raised:
        pipeline.plan("check")
    assert "eda.yaml" not in str(raised.value) and "report.yaml" not in str(raised.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_asking_for_a_missing_gpu_stops_before_any_run(profile):
    folder, _ = profile
    edit(folder / "simple_cnn.yaml", "device: cuda\n")
    with pytest.raises(preflight.PreflightError, match=r"simple_cnn.yaml: parameter 'device': 'cuda' is asked for, "
                                                         "but no CUDA GPU is available"):
        pipeline.plan("check")


def test_missing_test_set_stops_before_any_run(profile):
    _, data = profile
    shutil.rmtree(data / "testset")
    with pytest.raises(preflight.PreflightError, match="no test images found under"):
        pipeline.plan("check")


def test_a_corrupt_test_image_stops_the_plan_or_is_listed_under_skip(profile, capsys):
    folder, data = profile
    (data / "testset" / "testset" / "img3.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(preflight.PreflightError, match=r"Bad image file .*img3.jpg"):
        pipeline.plan("check")
    edit(folder / "_common.yaml", "on_bad_image: skip\n")
    pipeline.plan("check")
    assert "1 unreadable test image(s) will get the fallback prediction: img3.jpg" in capsys.readouterr().out


def test_unavailable_weights_stop_the_plan_saying_where_to_put_them(profile, tmp_path, monkeypatch):
    folder, _ = profile
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    edit(folder / "resnet50.yaml", "backbone: mobilenet_v2\nweights: IMAGENET1K_V1\n")
    with pytest.raises(preflight.PreflightError, match=r"parameter 'weights': .*could not fetch mobilenet_v2 .*put it at "
                                                         r".*empty_torch_home/hub/checkpoints/mobilenet_v2-b0353104.pth"):
        pipeline.plan("check")


def test_cached_pretrained_weights_pass(profile, torch_home):
    folder, _ = profile
    edit(folder / "resnet50.yaml", "backbone: mobilenet_v2\nweights: IMAGENET1K_V1\n")
    assert "resnet50" in pipeline.plan("check")


def test_only_the_runs_about_to_run_are_checked_again(profile, monkeypatch):
    pipeline.plan("check")
    checked = []
    monkeypatch.setattr(preflight, "check_run", lambda p, layout, where: checked.append(p["run"]) or [])
    pipeline.plan("check")
    assert checked == ["eda", "simple_cnn", "resnet50", "report"]  # none has run yet: all are about to
