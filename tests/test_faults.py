"""Bad inputs and faults a hostile but realistic user tries: each gives one clear line (or is skipped and
listed), writes nothing outside its folder, and never leaves a result that is not what it says.
The end-to-end ones (a failed re-run, a deleted export, kill -9 of make, `make predict` names) are in
test_pipeline.py, on the smoke study."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from simpsons_lib.config import params, paths
from simpsons_lib.config.params import ParameterError
from simpsons_lib.data import layout, study
from simpsons_lib.inference import predict
from simpsons_lib.pipeline import preflight
from simpsons_lib.pipeline import runner as pipeline
from simpsons_lib.training import checkpoints, experiment
from simpsons_lib.training import loop as train

REPO = Path(__file__).resolve().parent.parent


def cli(*args, env=None, cwd=REPO):
    """``python -m <args>`` in a fresh process, as make runs it."""
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def in_process(main, *args):
    """``main(args)`` of a command-line entry point in this process, as ``cli`` would run it (its stdout and
    stderr, and the exit status a ``SystemExit`` gives): no new Python importing torch. ``cli`` keeps one
    case per entry point, which pins what only a real process shows (the one line, no traceback)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    if isinstance(code, str):  # what the interpreter does with SystemExit("message"): print it, exit 1
        err.write(code + "\n")
        code = 1
    return subprocess.CompletedProcess(list(args), code or 0, out.getvalue(), err.getvalue())


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --- the profile name: validated before any file is written -------------------------------------------------

@pytest.fixture
def params_root(tmp_path, monkeypatch):
    """A parameter root with the smoke profile, an empty profile and a folder beside it (``p1``)."""
    root = tmp_path / "params"
    shutil.copytree(REPO / "params" / "smoke", root / "smoke")
    (root / "empty").mkdir()
    (tmp_path / "p1").mkdir()
    (tmp_path / "p1" / "eda.yaml").write_text("notebook: 00_eda\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(root))
    return root


@pytest.mark.parametrize("profile,message", [
    ("../../../tmp/x", "profile '../../../tmp/x': must be a plain name"),
    ("../p1", "profile '../p1': must be a plain name"),
    ("empty", "profile 'empty' has no runs"),
    ("nosuch", "no profile 'nosuch'"),
])
@pytest.mark.parametrize("command", [["locked", "--plan"], ["run", "--run", "eda"], ["plan"], ["index"]])
def test_a_bad_profile_is_refused_before_any_file_is_written(tmp_path, params_root, profile, message, command):
    before = files_under(tmp_path)
    extra = ["--", "true"] if command[0] == "locked" else []
    args = [command[0], "--profile", profile, *command[1:], *extra]
    if (profile, command[0]) == ("nosuch", "locked"):  # one case as make runs it, in its own process
        result = cli("simpsons_lib.pipeline", *args)
    else:
        result = in_process(pipeline.main, *args)
    assert message in one_error_line(result)
    assert files_under(tmp_path) == before  # no .lock, .plan/ or index.html anywhere (outputs/ not even made)
    assert not (tmp_path / "outputs" / profile / ".lock").exists()


def test_predict_and_submit_refuse_a_profile_that_is_a_path(tmp_path):
    for args in (["simpsons_lib.inference.predict", "--profile", "../x", "--run", "best", str(tmp_path)],
                 ["simpsons_lib.pipeline.kaggle", "submit", "--profile", "../x"]):
        assert "must be a plain name" in one_error_line(cli(*args))


# --- parameter files ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["lr", "val_fraction", "weight_decay", "mixup_alpha", "warmup_epochs"])
@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_non_finite_numbers_are_refused_by_the_plan(params_root, key, value):
    run_file = params_root / "smoke" / "simple_cnn.yaml"
    run_file.write_text(run_file.read_text() + f"{key}: {value}\n")
    with pytest.raises(ParameterError, match=rf"simple_cnn.yaml: parameter '{key}': must be a finite number"):
        pipeline.plan("smoke")
    assert not list(paths.StudyPaths("smoke").plan.glob("*.key"))


def test_a_key_given_twice_is_refused_naming_the_file_the_key_and_both_lines(params_root):
    run_file = params_root / "smoke" / "simple_cnn.yaml"
    lines = run_file.read_text().splitlines()
    run_file.write_text("\n".join(lines + ["epochs: 5"]) + "\n")
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("epochs:"))
    with pytest.raises(ParameterError) as error:
        params.resolve("smoke", "simple_cnn")
    assert str(error.value) == (f"{run_file}: key 'epochs' is given twice (lines {first} and {len(lines) + 1}); "
                                "keep one")
    common = params_root / "smoke" / "_common.yaml"
    common.write_text(common.read_text() + "seed: 3\n")
    run_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParameterError, match=r"_common.yaml: key 'seed' is given twice"):
        pipeline.plan("smoke")


# --- images: decompression bombs and symlinks --------------------------------------------------------------

def jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A small valid JPEG whose header claims ``width`` x ``height`` (what a decompression bomb does)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 120, 40)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def bad_data(tmp_path, tiny_demo):
    """A copy of the tiny demo data whose test folder also holds two bombs (one past PIL's own limit, one
    past the study's), a self-referencing symlink and a dangling one."""
    data = tmp_path / "data_copy"
    shutil.copytree(tiny_demo, data)
    folder = data / "testset" / "testset"
    jpeg_claiming(folder / "bomb_pil.jpg", 15000, 15000)
    jpeg_claiming(folder / "bomb_study.jpg", 9000, 6000)
    os.symlink("loop.jpg", folder / "loop.jpg")
    os.symlink(tmp_path / "gone.jpg", folder / "dangling.jpg")
    return data


@pytest.fixture
def test_folder(bad_data):
    return bad_data / "testset" / "testset"


BAD = {"bomb_pil.jpg": "too large", "bomb_study.jpg": "too large: 9000 x 6000 pixels",
       "loop.jpg": "unreadable: Too many levels of symbolic links", "dangling.jpg": "unreadable: No such file"}


def test_bombs_and_broken_symlinks_are_bad_images_named_and_skipped(test_folder):
    assert layout.data_fingerprint([test_folder])["files"] > 0  # no OSError from the symlinks
    frame, report = layout.build_test_index(test_folder, on_bad_image="skip")
    reasons = {Path(p).name: r for p, r in report.bad_files}
    assert set(reasons) == set(BAD)
    for name, reason in BAD.items():
        assert reasons[name].startswith(reason), (name, reasons[name])
    assert len(frame) == len(list(test_folder.iterdir())) - len(BAD)
    with pytest.raises(layout.BadImageError, match=r"Bad image file .*(bomb|loop|dangling)"):
        layout.build_test_index(test_folder, on_bad_image="raise")
    with pytest.raises(layout.BadImageError, match="too large"):
        layout.load_rgb(test_folder / "bomb_pil.jpg")
    assert layout.MAX_PIXELS == 50_000_000


def test_the_plan_lists_bad_test_images_under_skip_instead_of_stopping(bad_data):
    found = layout.find_layout(bad_data)
    assert sorted(preflight.check_test_set({"on_bad_image": "skip"}, found, "")) == sorted(BAD)
    layout_checked = layout.data_fingerprint([found.train_dir, found.test_dir])
    assert layout_checked["files"] == len(list(found.test_dir.iterdir())) - 2 + sum(
        1 for p in found.train_dir.rglob("*") if p.is_file())


def test_predict_skips_a_bomb_and_predicts_the_rest(test_folder, tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))
    model(torch.zeros(1, 3, 32, 32))
    info = {"classes": ["a", "b", "c"], "params": {"image_size": 32}}
    frame, bad = predict.predict_files(model.eval(), info, [test_folder], top_k=1, batch_size=8, progress=False)
    assert {Path(p).name for p, _ in bad} == {"bomb_pil.jpg", "bomb_study.jpg"}  # the symlinks are not files
    assert len(frame) == len([p for p in test_folder.iterdir() if p.is_file()]) - 2


# --- the sample submission, checked by the plan ------------------------------------------------------------

def test_test_images_missing_from_the_sample_submission_stop_the_plan(tmp_path, monkeypatch, tiny_demo):
    data = tmp_path / "mine"
    shutil.copytree(tiny_demo, data)
    (data / layout.DEMO_MARKER).unlink(missing_ok=True)
    test_dir = data / "testset" / "testset"
    for i in range(4):
        shutil.copy(next(test_dir.glob("*.jpg")), test_dir / f"extra{i}.jpg")
    folder = tmp_path / "params" / "mine"
    folder.mkdir(parents=True)
    (folder / "_common.yaml").write_text(f"data_dir: {data}\ndevice: cpu\n")
    (folder / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\nimage_size: 96\n")
    (folder / "report.yaml").write_text("notebook: 05_report\nruns: [simple_cnn]\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    with pytest.raises(preflight.PreflightError, match=r"report.yaml: 4 Id\(s\) of .*testset are not in .*"
                       r"sample_submission.csv, e.g. extra0.jpg, extra1.jpg"):
        pipeline.plan("mine")
    sample = data / "sample_submission.csv"
    ids = pd.read_csv(sample)
    pd.concat([ids, pd.DataFrame({"Id": [f"extra{i}.jpg" for i in range(4)], "Expected": "bart_simpson"})]) \
        .to_csv(sample, index=False)
    assert set(pipeline.plan("mine")) == {"simple_cnn", "report"}


# --- unwritable outputs: one line, no traceback ------------------------------------------------------------

def test_a_lock_that_cannot_be_opened_is_one_line(params_root, tmp_path):
    lock = tmp_path / "outputs" / "smoke" / ".lock"
    lock.mkdir(parents=True)  # a folder where the lock file goes: open() fails, as on a read-only folder
    line = one_error_line(in_process(pipeline.main, "locked", "--plan", "--profile", "smoke", "--", "true"))
    assert line == f"error: cannot take the profile's lock: {lock}: Is a directory"


def test_a_read_only_outputs_folder_is_one_line(params_root, tmp_path):
    outputs, env, kw = tmp_path / "outputs", {}, {}
    if os.geteuid() == 0:  # root writes anywhere: run the command as nobody, in a folder nobody may read
        python = Path(os.path.realpath(sys.executable))
        needed = [REPO, *REPO.parents, Path(sys.prefix), *python.parents]
        if not all(os.stat(p).st_mode & 0o005 == 0o005 for p in needed):
            pytest.skip("as root, with a checkout other users cannot read: the lock-folder test covers this")
        shared = Path(tempfile.mkdtemp())
        shared.chmod(0o755)
        shutil.copytree(params_root, shared / "params")
        outputs = shared / "outputs"
        env = {"SIMPSONS_PARAMS_DIR": str(shared / "params"), "HOME": str(shared)}
        kw = {"user": 65534, "group": 65534, "extra_groups": []}
    outputs.mkdir()
    outputs.chmod(0o555)
    try:
        result = subprocess.run([sys.executable, "-m", "simpsons_lib.pipeline", "locked", "--plan", "--profile",
                                 "smoke", "--", "true"], cwd=REPO, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "SIMPSONS_OUTPUTS_DIR": str(outputs), **env}, **kw)
    finally:
        outputs.chmod(0o755)
        if env:
            shutil.rmtree(outputs.parent, ignore_errors=True)
    line = one_error_line(result)
    assert line == f"error: cannot take the profile's lock: {outputs / 'smoke'}: Permission denied"


# --- predict and export: one line for every bad argument ---------------------------------------------------

@pytest.fixture
def exported(tmp_path):
    """A real export of a small SimpleCnn (96 px, 3 classes)."""
    from simpsons_lib.training.models import build_model_from_params
    p = {"arch": "simple_cnn", "image_size": 96, "backbone": "resnet50", "head_hidden": 512, "head_dropout": 0.0,
         "dropout": 0.5}
    model = build_model_from_params(p, 3, weights=None)
    return checkpoints.export_model(tmp_path / "model.pt", model, ["a", "b", "c"], p)


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "0"], "argument --batch-size: must be 1 or more, got 0"),
    (["--batch-size", "x"], "argument --batch-size: must be a whole number, got 'x'"),
    (["--top-k", "-1"], "argument --top-k: must be 1 or more, got -1"),
])
def test_predict_refuses_bad_numbers_in_one_line(exported, tmp_path, args, message):
    image = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(image)
    result = in_process(predict.main, "--model", str(exported), str(image), *args)
    lines = result.stderr.strip().splitlines()  # argparse's usage, then its one error line
    assert result.returncode == 2 and "Traceback" not in result.stderr and lines[0].startswith("usage:")
    assert lines[-1] == f"python -m simpsons_lib.inference.predict: error: {message}"


@pytest.mark.parametrize("key,value,message", [
    ("image_size", 0, "parameter 'image_size': must be >= 32, got 0"),
    ("image_size", 40, "parameter 'image_size': simple_cnn needs at least 94 px"),
    ("arch", "vgg", "parameter 'arch': must be one of"),
    ("head_hidden", -3, "parameter 'head_hidden': must be >= 1"),
])
def test_a_crafted_export_with_bad_parameters_is_an_export_error(exported, key, value, message):
    payload = torch.load(exported, weights_only=True)
    payload["params"][key] = value
    torch.save(payload, exported)
    with pytest.raises(checkpoints.ExportError, match=rf"{exported}: not a usable model export \(.*{message}"):
        checkpoints.load_model(exported)
    line = one_error_line(in_process(predict.main, "--model", str(exported), str(exported.parent)))
    assert line.startswith(f"error: {exported}: not a usable model export")


def test_predict_into_an_unwritable_file_says_so_before_predicting(exported, tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(image)
    folder = tmp_path / "predictions.csv"
    folder.mkdir()  # --out names a folder: the write cannot happen
    result = in_process(predict.main, "--model", str(exported), str(image), "--out", str(folder))
    assert one_error_line(result) == f"error: cannot write the predictions: {folder}: Is a directory"
    assert result.stdout == ""  # nothing printed as if it had worked


def test_split_paths_keeps_names_with_spaces_quotes_and_unicode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ["my frame.jpg", 'a"b.jpg', "ñandú ü.png", "plain.jpg"]:
        Path(name).touch()
    assert predict.split_paths("my frame.jpg") == ["my frame.jpg"]
    assert predict.split_paths('a"b.jpg') == ['a"b.jpg']
    assert predict.split_paths("ñandú ü.png plain.jpg") == ["ñandú ü.png", "plain.jpg"]
    assert predict.split_paths("'my frame.jpg' plain.jpg") == ["my frame.jpg", "plain.jpg"]
    assert predict.split_paths("plain.jpg my frame.jpg") == ["plain.jpg", "my frame.jpg"]
    assert predict.split_paths("plain.jpg nosuch.jpg") == ["plain.jpg", "nosuch.jpg"]  # reported as missing
    # a quoted name that does not exist is reported whole, not in pieces with the quotes
    assert predict.split_paths("'no such.jpg' plain.jpg") == ["no such.jpg", "plain.jpg"]
    assert predict.split_paths("  ") == []


# --- the best epoch's weights, provably -------------------------------------------------------------------

def fit_run(p, **kw):
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    return s, rp, model, experiment.train_model(model, s, p, rp, [], **kw)


def test_fit_refuses_weights_that_are_not_the_best_epochs(small_params):
    """best.pt deleted after epoch 1 of 2, and epoch 2 is no better (its learning rate is 0)."""
    p = small_params(run_name="best_lost", epochs=2, batch_size=8)
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    loader = experiment.make_train_loader(p, s, torch.device("cpu"), [])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def lose_best(epoch):  # and make epoch 2 exactly epoch 1: no step, no BatchNorm statistics moved
        if epoch == 1:
            rp.best_checkpoint.unlink()
            for group in optimizer.param_groups:
                group["lr"] = 0.0
            for module in model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.momentum = 0.0

    with pytest.raises(train.BestWeightsLost, match=rf"epoch 1\) weights cannot be had: {rp.best_checkpoint} is "
                       "missing"):
        train.fit(model, loader, experiment.make_val_loader(p, s, torch.device("cpu")), epochs=2,
                  optimizer=optimizer, checkpoint_dir=rp.models, classes=s.classes, meta={"run_name": "best_lost"},
                  after_epoch=lose_best, progress=False)


def test_a_finished_run_without_its_weights_trains_again_and_an_export_of_another_epoch_is_refused(small_params, caplog):
    p = small_params(run_name="reuse", epochs=2, batch_size=8, resume=True)
    s, rp, model, result = fit_run(p)
    metrics, first = experiment.evaluate_model(model, s, p, rp, result, [])
    assert result.weights_from in ("memory", "best.pt") and not rp.best_checkpoint.exists()
    again = fit_run(p)[3]  # finished: nothing trains, the export holds the best epoch's weights
    assert again.resumed_from == 3 and again.weights_from == "model.pt"
    rp.model_file.unlink()
    with caplog.at_level(logging.WARNING, logger="simpsons_lib.training.experiment"):
        s, rp, model, result = fit_run(p)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "model.pt is missing" in lines[0] and "training the run again" in lines[0]
    assert result.resumed_from is None and result.best_epoch == metrics["best_epoch"]
    pd.testing.assert_frame_equal(experiment.evaluate_model(model, s, p, rp, result, [])[1], first)
    # an export of another epoch is not taken for the best (on the export the line above wrote)
    payload = torch.load(rp.model_file, weights_only=True)
    payload["epoch"] = 3 - result.best_epoch
    torch.save(payload, rp.model_file)
    with pytest.raises(train.BestWeightsLost, match=rf"model.pt holds epoch {3 - result.best_epoch}"):
        train.load_best_weights(model, result.best_epoch, result.fingerprint, trained_epoch=None,
                                best_path=rp.best_checkpoint, export_path=rp.model_file, device="cpu")


# --- the pipeline stops with its make -----------------------------------------------------------------------

def test_kill_9_of_an_outer_make_stops_the_locked_command_and_frees_the_lock(params_root, tmp_path):
    """``make demo`` runs ``make pipeline``, which runs the locked command: killing the outer make
    (kill -9) stops the command's whole process group; the fast end-to-end case is in test_pipeline."""
    marker = tmp_path / "child.pid"
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "outer:\n\t$(MAKE) -f $(firstword $(MAKEFILE_LIST)) inner\n"
        f"inner:\n\t{sys.executable} -m simpsons_lib.pipeline locked --profile smoke -- "
        f"bash -c 'echo $$$$ > {marker}; sleep 120'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    top = subprocess.Popen(["make", "-s", "-f", str(makefile), "outer"], cwd=REPO, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    child = int(marker.read_text())
    os.kill(top.pid, 9)
    top.wait()
    killed = time.time()
    while time.time() < killed + 15:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        pytest.fail("the locked command outlived the make that started it")
    lock = tmp_path / "outputs" / "smoke" / ".lock"
    while time.time() < killed + 15 and "pid" in lock.read_text():
        time.sleep(0.1)
    assert lock.read_text() == ""  # released: a new pipeline may start
