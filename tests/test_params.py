import pytest

from simpsons_lib import params, pipeline
from simpsons_lib.paths import NOTEBOOKS_DIR, PARAMS_DIR

RUNS = {"eda": "00_eda", "simple_cnn": "01_simple_cnn", "simple_cnn_aug": "01_simple_cnn", "mid_cnn": "02_mid_cnn",
        "resnet50": "03_resnet50", "report": "04_report"}


def test_unknown_key_is_named_with_a_suggestion(train_params):
    p = dict(train_params())
    p["learning_rate"] = 0.1
    with pytest.raises(params.ParameterError, match="unknown parameter 'learning_rate'"):
        params.validate("train", p)
    p.pop("learning_rate")
    p["epoch"] = 3
    with pytest.raises(params.ParameterError, match="did you mean 'epochs'"):
        params.validate("train", p)


@pytest.mark.parametrize("key,value,message", [
    ("lr", "fast", "expected int or float"),
    ("lr", -1.0, "must be > 0"),
    ("epochs", 2.5, "expected int"),
    ("epochs", True, "expected int"),
    ("augment", "yes", "expected bool"),
    ("arch", "vgg", "must be one of"),
    ("device", "tpu", "must be one of"),
    ("val_fraction", 0.0, "must be > 0"),
    ("worst_classes", ["a", 3], "list of strings"),
    ("batch_size", None, "must not be null"),
    ("run_name", "my run", "plain name"),
])
def test_bad_values_name_the_key(train_params, key, value, message):
    p = dict(train_params())
    p[key] = value
    with pytest.raises(params.ParameterError, match=f"'{key}'.*{message}"):
        params.validate("train", p)


def test_missing_and_inconsistent(train_params):
    p = dict(train_params())
    p.pop("seed")
    with pytest.raises(params.ParameterError, match="missing parameter.*seed"):
        params.validate("train", p)
    with pytest.raises(params.ParameterError, match="worst_k"):
        params.validate("train", {**train_params(), "worst_from_run": "simple_cnn", "worst_k": None})


def test_from_namespace_ignores_other_globals(train_params):
    ns = {**train_params(), "np": object(), "_": 1}
    assert params.from_namespace("train", ns) == train_params()


@pytest.mark.parametrize("profile", ["demo", "full", "smoke"])
@pytest.mark.parametrize("run", RUNS)
def test_every_committed_params_file_is_valid_for_its_notebook(profile, run):
    kind, values = pipeline.resolve_params(NOTEBOOKS_DIR / f"{RUNS[run]}.ipynb", PARAMS_DIR / profile / f"{run}.yaml",
                                           profile, run)
    assert values["profile"] == profile
    if kind == "train":
        assert values["run_name"] == run
    assert values["dataset"] == ("kaggle" if profile == "full" else "demo")


def test_params_files_are_checked_against_the_notebook(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "_common.yaml").write_text("seed: 1\nimage_sise: 96\n")
    (folder / "simple_cnn.yaml").write_text("epochs: 2\n")
    nb = NOTEBOOKS_DIR / "01_simple_cnn.ipynb"
    with pytest.raises(params.ParameterError, match="_common.yaml: unknown parameter 'image_sise'.*'image_size'"):
        pipeline.resolve_params(nb, folder / "simple_cnn.yaml", "demo", "simple_cnn")
    (folder / "_common.yaml").write_text("seed: 1\n")
    (folder / "simple_cnn.yaml").write_text("epochs: 0\n")
    with pytest.raises(params.ParameterError, match="simple_cnn.yaml.*'epochs'"):
        pipeline.resolve_params(nb, folder / "simple_cnn.yaml", "demo", "simple_cnn")
    (folder / "simple_cnn.yaml").write_text("run_name: other\n")
    with pytest.raises(params.ParameterError, match="run_name"):
        pipeline.resolve_params(nb, folder / "simple_cnn.yaml", "demo", "simple_cnn")
    (folder / "simple_cnn.yaml").write_text("- just\n- a list\n")
    with pytest.raises(params.ParameterError, match="mapping"):
        pipeline.resolve_params(nb, folder / "simple_cnn.yaml", "demo", "simple_cnn")
    (folder / "simple_cnn.yaml").write_text("epochs: 3\n")
    kind, values = pipeline.resolve_params(nb, folder / "simple_cnn.yaml", "demo", "simple_cnn")
    assert kind == "train" and values["epochs"] == 3 and values["seed"] == 1
