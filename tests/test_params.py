"""Parameters: one schema, profile files that hold only what differs, one resolution for pipeline and lab."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from simpsons_lib.config import params
from simpsons_lib.config.paths import NOTEBOOKS_DIR, PARAMS_DIR

REPO = Path(__file__).resolve().parent.parent
RUNS = {"eda": "00_eda", "simple_cnn": "01_simple_cnn", "simple_cnn_aug": "01_simple_cnn", "mid_cnn": "02_mid_cnn",
        "resnet50": "03_resnet50", "modern": "04_modern_finetune", "report": "05_report"}


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    """A copy of params/ that a test may edit (SIMPSONS_PARAMS_DIR points at it)."""
    root = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, root)
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(root))
    return root


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
    ("image_size", 64, "simple_cnn needs at least 94 px"),
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


def test_every_parameter_has_one_definition_with_default_and_help():
    for kind, schema in params.SCHEMAS.items():
        values = params.defaults(kind)
        for key, spec in schema.items():
            assert spec.help and len(spec.help) > 10, key
            params.check_value(key, spec, values[key])  # every default is itself valid
        assert set(values) == set(schema)


@pytest.mark.parametrize("profile", ["demo", "full", "smoke"])
@pytest.mark.parametrize("run", RUNS)
def test_every_committed_run_resolves_for_its_notebook(profile, run):
    p = params.resolve(profile, run)
    assert p["profile"] == profile and p["run"] == run == p["run_name"]
    assert p.notebook == f"notebooks/{RUNS[run]}.ipynb"
    assert p["dataset"] == ("kaggle" if profile == "full" else "demo")
    assert set(p) == set(params.SCHEMAS[p.kind]) | {"profile", "run", "run_name"}


def test_profile_files_hold_only_what_differs_from_the_defaults():
    for path in PARAMS_DIR.glob("*/*.yaml"):
        values = params.load_yaml(path)
        for key, value in values.items():
            if key in params.RUN_FILE_KEYS or path.name == params.COMMON_FILE:
                continue
            kind = params.notebook_kind(params.run_notebook(path.parent.name, path.stem))
            common = params.load_yaml(path.parent / params.COMMON_FILE)
            below = common.get(key, params.defaults(kind)[key])
            assert value != below, f"{path}: {key}: {value!r} repeats the value below it"


def test_resolution_layers_and_their_sources(profiles):
    (profiles / "demo" / "_common.yaml").write_text("dataset: demo\nseed: 3\nimage_stats_sample: 5\n")
    (profiles / "demo" / "mid_cnn.yaml").write_text("notebook: 02_mid_cnn\narch: mid_cnn\nepochs: 2\n")
    p = params.resolve("demo", "mid_cnn")
    assert (p["seed"], p["epochs"], p["lr"], p["title"]) == (3, 2, params.TRAIN["lr"].default, "mid_cnn")
    assert p.sources["seed"] == "_common.yaml" and p.sources["epochs"] == "mid_cnn.yaml"
    assert p.sources["lr"] == "default"
    assert "image_stats_sample" not in p  # common keys of other kinds are taken only by those runs
    assert params.resolve("demo", "eda")["image_stats_sample"] == 5


@pytest.mark.parametrize("common,run_file,message", [
    ("seed: 1\nimage_sise: 96\n", "notebook: 01_simple_cnn\n", r"_common.yaml: unknown parameter 'image_sise'.*'image_size'"),
    ("seed: 1\n", "notebook: 01_simple_cnn\nepochs: 0\n", r"simple_cnn.yaml: parameter 'epochs': must be >= 1"),
    ("seed: 1\n", "notebook: 01_simple_cnn\nepochz: 3\n", r"simple_cnn.yaml: a train run: unknown parameter 'epochz'.*'epochs'"),
    ("seed: 1\n", "notebook: 01_simple_cnn\nruns: [a]\n", r"simple_cnn.yaml: a train run: unknown parameter 'runs'"),
    ("seed: 1\n", "- just\n- a list\n", "mapping"),
    ("seed: 1\n", "epochs: 3\n", "must name its notebook"),
    ("seed: 1\n", "notebook: 09_nothing\n", "09_nothing.*does not exist"),
    ("seed: [1\n", "notebook: 01_simple_cnn\n", "not valid YAML"),
])
def test_profile_files_are_checked_naming_file_and_key(profiles, common, run_file, message):
    (profiles / "demo" / "_common.yaml").write_text(common)
    (profiles / "demo" / "simple_cnn.yaml").write_text(run_file)
    with pytest.raises(params.ParameterError, match=message):
        params.resolve("demo", "simple_cnn")


def test_missing_profile_or_run_is_named():
    with pytest.raises(params.ParameterError, match="no profile 'nope'"):
        params.profile_runs("nope")
    with pytest.raises(params.ParameterError, match="no such run file.*mid_cnn"):
        params.resolve("demo", "mid_cnnn")


def test_overrides_make_a_run_of_their_own(capsys):
    base = params.resolve("demo", "simple_cnn")
    same = params.resolve("demo", "simple_cnn", {"epochs": base["epochs"]})
    assert same == base and same["run_name"] == "simple_cnn" and capsys.readouterr().out == ""
    changed = params.resolve("demo", "simple_cnn", {"epochs": 2})
    assert changed["epochs"] == 2 and changed["run_name"].startswith("simple_cnn-") and changed["run"] == "simple_cnn"
    assert changed["run_name"] == params.resolve("demo", "simple_cnn", {"epochs": 2})["run_name"]  # stable
    assert changed["run_name"] != params.resolve("demo", "simple_cnn", {"epochs": 3})["run_name"]
    assert f"writes as '{changed['run_name']}', never over the pipeline's 'simple_cnn'" in capsys.readouterr().out
    with pytest.raises(params.ParameterError, match="overrides: unknown parameter 'epoch'.*'epochs'"):
        params.resolve("demo", "simple_cnn", {"epoch": 2})
    with pytest.raises(params.ParameterError, match="overrides: parameter 'lr'"):
        params.resolve("demo", "simple_cnn", {"lr": -1})


def test_training_values_leave_out_what_does_not_shape_the_weights():
    p = params.resolve("demo", "mid_cnn")
    values = params.training_values(p)
    assert {"lr", "epochs", "arch", "seed", "image_size", "worst_k"} <= set(values)
    assert not {"title", "gallery_size", "device", "resume", "num_workers", "eval_batch_size"} & set(values)


def test_upstream_runs_come_from_the_keys_that_name_runs():
    assert params.upstream_runs(params.resolve("demo", "mid_cnn")) == ["simple_cnn"]
    assert params.upstream_runs(params.resolve("demo", "simple_cnn")) == []
    assert params.upstream_runs(params.resolve("demo", "report")) == ["simple_cnn", "simple_cnn_aug", "mid_cnn",
                                                                      "resnet50", "modern", "simple_cnn_grouped"]


def test_notebook_parameters_cells_only_pick_a_run():
    for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):  # the study's (not the launcher)
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        names = {n.target.id: ast.literal_eval(n.value) for n in ast.parse(cell.source).body}
        assert set(names) == {"profile", "run", "overrides"} and names["overrides"] == {}
        assert names["profile"] == "demo" and params.run_notebook("demo", names["run"]) == path


def test_show_prints_every_value_its_source_and_help():
    out = subprocess.run([sys.executable, "-m", "simpsons_lib.config.params", "show", "demo", "mid_cnn"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "writes as mid_cnn" in out
    assert any("worst_k" in line and "12" in line and "mid_cnn.yaml" in line for line in out.splitlines())
    assert any(line.split()[:1] == ["lr"] and "default" in line and "learning rate" in line for line in out.splitlines())
    as_json = subprocess.run([sys.executable, "-m", "simpsons_lib.config.params", "show", "demo", "mid_cnn", "--json"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert json.loads(as_json) == json.loads(json.dumps(params.resolve("demo", "mid_cnn")))
    bad = subprocess.run([sys.executable, "-m", "simpsons_lib.config.params", "show", "demo", "nope"], cwd=REPO,
                         capture_output=True, text=True, env={**os.environ})
    assert bad.returncode != 0 and "no such run file" in bad.stderr
