"""More bad inputs and faults a new user meets: values the plan accepted that could not train, results that
went stale silently, a sweep that outlived its make, and small tools that failed with a traceback. Each
gives one clear line, or now works; none needs a full study (a failure inside a cell is raised as papermill
raises it, and the sweep's point runs a real kernel on a notebook of one cell)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from simpsons_lib.config import params, paths
from simpsons_lib.config.params import ParameterError
from simpsons_lib.data import cache, layout
from simpsons_lib.pipeline import commands, sweep
from simpsons_lib.pipeline import runner as pipeline

REPO = Path(__file__).resolve().parent.parent


def error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


@pytest.fixture
def profile(tmp_path, monkeypatch, tiny_demo):
    """Profile ``check`` on the tiny demo data: eda, two SimpleCnn runs, a report."""
    folder = tmp_path / "params" / "check"
    folder.mkdir(parents=True)
    (folder / "_common.yaml").write_text(f"data_dir: {tiny_demo}\ndevice: cpu\n")
    (folder / "eda.yaml").write_text("notebook: 00_eda\n")
    (folder / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\nimage_size: 96\nepochs: 1\n")
    (folder / "second.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\nimage_size: 96\nepochs: 1\n"
                                        "worst_from_run: simple_cnn\nworst_k: 3\n")
    (folder / "report.yaml").write_text("notebook: 05_report\nruns: [simple_cnn, second]\n")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    return folder


# --- a run that fails inside a cell takes down what reads it ------------------------------------------------

def test_a_failure_inside_a_cell_removes_the_results_of_the_runs_that_read_it(profile, monkeypatch):
    """The plan's key files are written; the report 'finished' (its submission stands); then ``simple_cnn``
    fails in a cell: the report's results go with it, as after a crash outside a cell."""
    pipeline.plan("check")
    study = paths.StudyPaths("check")
    report = study.run("report").make_dirs()
    standing = [study.submission_csv, study.submission_json, study.evolution_csv, report.notebook, report.manifest]
    for f in standing:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}\n")
    import papermill

    def fail_in_a_cell(*_args, **_kwargs):
        raise papermill.PapermillExecutionError(3, 5, "load()", "ValueError", "models/simple_cnn/last.pt is not a "
                                                "usable checkpoint", [])
    monkeypatch.setattr(papermill, "execute_notebook", fail_in_a_cell)
    with pytest.raises(pipeline.PipelineError, match=r"\[simple_cnn\] FAILED in cell 5: ValueError: .*the results of "
                                                     r"report, which read it, are removed too"):
        pipeline.run_notebook("check", "simple_cnn")
    assert [f for f in standing if f.exists()] == []


# --- kill -9 of the top make stops a sweep and its kernel ------------------------------------------------------

SWEEP_SCRIPT = """
import os, sys, nbformat, papermill
from simpsons_lib.pipeline import commands
marker, notebook = sys.argv[1], sys.argv[2]
nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    f"import os, time\\nopen({marker!r}, 'w').write(f'{{os.getppid()}} {{os.getpid()}}')\\ntime.sleep(120)")]), notebook)
real = papermill.execute_notebook
def one_slow_cell(_input, output, **kwargs):  # the point's kernel: one cell that sleeps
    kwargs.pop("parameters", None)
    return real(notebook, output, **kwargs)
papermill.execute_notebook = one_slow_cell
commands.main(["sweep", "--profile", "check", "--run", "simple_cnn", "--grid", "epochs=2,3"])
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_kill_9_of_the_top_make_stops_a_sweep_and_its_kernel_and_frees_the_lock(profile, tmp_path):
    """``make`` -> ``make sweep`` -> the sweep, whose point runs a real kernel: killing the top make (kill -9)
    ends the sweep and its kernel and releases the lock, as it does for ``make pipeline``."""
    marker, script = tmp_path / "kernel.pids", tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    makefile = tmp_path / "Makefile"
    makefile.write_text("outer:\n\t$(MAKE) -f $(firstword $(MAKEFILE_LIST)) inner\n"
                        f"inner:\n\t{sys.executable} {script} {marker} {tmp_path / 'slow.ipynb'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    top = subprocess.Popen(["make", "-s", "-f", str(makefile), "outer"], cwd=REPO, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (marker.exists() and marker.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), "the point's kernel never started"
    pids = [int(p) for p in marker.read_text().split()]  # the kernel's launcher (or the kernel itself) and kernel
    sweeper = next(int(line.split()[0]) for line in subprocess.run(
        ["pgrep", "-f", "-a", str(script)], capture_output=True, text=True).stdout.splitlines())
    os.kill(top.pid, 9)
    top.wait()
    killed = time.time()
    lock = tmp_path / "outputs" / "check" / ".lock"
    try:
        while time.time() < killed + 30 and any(map(_alive, [sweeper, pids[1]])):
            time.sleep(0.2)
        assert not _alive(sweeper), "the sweep outlived the make that started it"
        assert not _alive(pids[1]), "the sweep's kernel outlived the make that started it"
        assert lock.read_text() == ""  # released: a new pipeline may start
        running = list((tmp_path / "outputs" / "check" / "notebooks").glob("*.running.ipynb"))
        assert running == []
    finally:
        for pid in (sweeper, pids[1]):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- values the plan accepts must train --------------------------------------------------------------------

def small_classes(n_classes: int, per_class: int) -> pd.DataFrame:
    names = [f"class_{i:03d}" for i in range(n_classes)]
    rows = [(f"{name}/pic_{j}.jpg", name, i) for i, name in enumerate(names) for j in range(per_class)]
    return pd.DataFrame(rows, columns=["path", "class_name", "label"])


@pytest.mark.parametrize("n_classes,per_class,val_fraction", [
    (300, 3, 0.25),   # 225 validation images for 300 classes
    (42, 11, 0.05),   # 24 validation images for 42 classes
    (20, 2, 0.9),     # 4 training images for 20 classes
])
def test_many_small_classes_each_get_a_validation_and_a_training_image(n_classes, per_class, val_fraction):
    index = small_classes(n_classes, per_class)
    train, val = layout.split_train_val(index, val_fraction, seed=0)
    assert set(val["class_name"]) == set(index["class_name"]) == set(train["class_name"])
    assert sorted([*train.index, *val.index]) == list(index.index)
    again = layout.split_train_val(index, val_fraction, seed=0)
    assert again[1].index.tolist() == val.index.tolist()  # seeded


def test_a_split_scikit_learn_could_make_is_as_before():
    from sklearn.model_selection import train_test_split

    index = small_classes(10, 20)
    _, val = layout.split_train_val(index, 0.25, seed=3)
    _, expected = train_test_split(index, test_size=0.25, stratify=index["label"], random_state=3, shuffle=True)
    assert val.index.tolist() == sorted(expected.index)


def plan_error(profile_folder: Path, file: str, text: str) -> str:
    path = profile_folder / file
    kept = [line for line in path.read_text().splitlines() if line.split(":")[0] not in
            {t.split(":")[0] for t in text.splitlines()}]
    path.write_text("\n".join(kept + text.splitlines()) + "\n")
    with pytest.raises(ParameterError) as raised:
        pipeline.plan("check")
    assert not list(paths.StudyPaths("check").plan.glob("*.key"))  # nothing planned, nothing runs
    return str(raised.value)


@pytest.mark.parametrize("file,text,message", [
    ("second.yaml", "worst_from_run: second", r"second.yaml: parameter 'worst_from_run': names this run itself "
                                               r"\('second'\); name another training run: simple_cnn"),
    ("report.yaml", "ensemble: [report, eda]", r"report.yaml: parameter 'ensemble': 'report' is a report run, "
                                               r"which trains no model; name training runs: second, simple_cnn"),
    ("report.yaml", "runs: [simple_cnn, eda]", r"parameter 'runs': 'eda' is a eda run, which trains no model"),
    ("simple_cnn.yaml", "worst_from_run: second\nworst_k: 2", r"second.yaml: the runs its parameters name "
                                                              r"read 'second' in turn \(a cycle\)"),
])
def test_the_plan_checks_every_run_naming_parameter(profile, file, text, message):
    import re

    assert re.search(message, plan_error(profile, file, text))


@pytest.mark.parametrize("key,value,message", [
    ("seed", 2**32, "parameter 'seed': must be <= 4294967295"),
    ("batch_size", 10**9, "parameter 'batch_size': must be <= 65536"),
    ("eval_batch_size", 2**63, "parameter 'eval_batch_size': must be <= 65536"),
    ("epochs", 10**12, "parameter 'epochs': must be <= 10000"),
    ("head_hidden", 10**9, "parameter 'head_hidden': must be <= 65536"),
    ("num_workers", 10**6, "parameter 'num_workers': must be <= 256"),
    ("weight_decay", 10**400, "parameter 'weight_decay': must be <= 10"),
    ("mixup_alpha", 1e300, "parameter 'mixup_alpha': must be <= 100"),
    ("gallery_size", 10**7, "parameter 'gallery_size': must be <= 500"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else "")
def test_every_number_has_the_bound_its_user_takes(train_params, key, value, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        train_params(**{key: value})


def test_the_seed_bound_is_the_one_scikit_learn_and_numpy_take():
    index = small_classes(4, 4)
    layout.split_train_val(index, 0.25, seed=2**32 - 1)
    np.random.seed(2**32 - 1)
    with pytest.raises(ValueError):
        layout.split_train_val(index, 0.25, seed=2**32)  # what the plan let through: scikit-learn refuses it
    params.validate("train", {**params.defaults("train"), "seed": 2**32 - 1})
    with pytest.raises(ParameterError, match="parameter 'seed': must be <= 4294967295, got 4294967296"):
        params.validate("train", {**params.defaults("train"), "seed": 2**32})


def test_overrides_typed_as_text_are_read_as_yaml_and_a_list_is_one_line():
    as_dict = params.resolve("smoke", "simple_cnn", {"epochs": 1, "lr": 0.003})
    as_text = params.resolve("smoke", "simple_cnn", "{epochs: 1, lr: 0.003}")  # papermill -p overrides "{...}"
    assert as_text["run_name"] == as_dict["run_name"] != "simple_cnn" and as_text["lr"] == 0.003
    assert params.resolve("smoke", "simple_cnn", "")["run_name"] == "simple_cnn"
    for bad, message in (([1, 2], "overrides: must be a mapping of parameter names to values"),
                         ("[epochs, 2]", "overrides: must be a mapping .* got list"),
                         ("{epochs: [1", "overrides: not valid YAML"),
                         ("7", "overrides: must be a mapping .* got int 7")):
        with pytest.raises(ParameterError, match=message):
            params.resolve("smoke", "simple_cnn", bad)


# --- a changed input makes its runs out of date ----------------------------------------------------------------

@pytest.fixture
def data_copy(tmp_path, tiny_demo) -> Path:
    folder = tmp_path / "train_copy"
    shutil.copytree(tiny_demo / "train" / "simpsons_dataset" / "bart_simpson", folder / "bart_simpson")
    return folder


def edit_in_place(path: Path) -> None:
    """Some bytes of the image's coded pixels changed (inverted), the file's size kept, and even its old
    modification time put back (as a copy that keeps times does)."""
    stat, data = path.stat(), path.read_bytes()
    path.write_bytes(data[:-64] + bytes(b ^ 0xFF for b in data[-64:-2]) + data[-2:])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_an_image_edited_in_place_to_the_same_size_changes_the_data_fingerprint(data_copy):
    before = layout.data_fingerprint([data_copy])
    image = sorted(data_copy.rglob("*.jpg"))[3]
    edit_in_place(image)
    after = layout.data_fingerprint([data_copy])
    assert after["files"] == before["files"] and after["sha1"] != before["sha1"]


def test_the_fingerprint_reads_only_the_files_that_changed_and_a_copy_keeps_it(data_copy, tmp_path, monkeypatch):
    first = layout.data_fingerprint([data_copy])
    read = []
    real = hashlib.file_digest

    def counting(f, name):
        read.append(f.name)
        return real(f, name)
    monkeypatch.setattr(layout.hashlib, "file_digest", counting)
    assert layout.data_fingerprint([data_copy]) == first and read == []  # remembered: nothing read again
    image = sorted(data_copy.rglob("*.jpg"))[0]
    image.write_bytes(image.read_bytes())  # the same bytes, written again
    assert layout.data_fingerprint([data_copy]) == first and read == [str(image)]
    copy = tmp_path / "elsewhere"
    shutil.copytree(data_copy, copy)  # another folder, the same files: the same fingerprint
    assert layout.data_fingerprint([copy]) == first


# --- EXIF orientation --------------------------------------------------------------------------------------------

def test_a_photo_stored_sideways_is_read_upright(tmp_path):
    """A JPEG 40 wide and 20 high, white on its left quarter, with EXIF Orientation 6 (shown turned 90 degrees
    clockwise): read 20 wide and 40 high, white at the top, wherever an image is read."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # Orientation
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=95)
    upright = np.asarray(layout.load_rgb(path))
    assert upright.shape == (40, 20, 3)
    assert upright[:8].mean() > 240 and upright[-25:].mean() < 15
    decoded = cache.decode_resized(str(path), 16)  # the image cache, as training and predict read
    assert decoded[:, :3].mean() > 200 and decoded[:, -8:].mean() < 40


# --- small tools: one line each ---------------------------------------------------------------------------------

def test_a_900_point_grid_is_refused_saying_how_to_raise_the_cap(profile, monkeypatch):
    class Started(Exception):
        pass

    def started(_profile, _run, points, _name):
        raise Started(len(points))
    monkeypatch.setattr(sweep, "sweep", started)  # where the points would start: the plan, then training
    grid = "lr=" + ",".join(f"{i}e-4" for i in range(1, 31)) + " epochs=" + ",".join(map(str, range(1, 31)))
    with pytest.raises(SystemExit) as raised:
        commands.main(["sweep", "--profile", "check", "--run", "simple_cnn", "--grid", grid])
    message = str(raised.value)
    assert message.startswith("error: sweep: the grid has 900 points, more than the cap of 64") and \
        "MAX_POINTS=900" in message and "--max-points 900" in message
    assert not (paths.StudyPaths("check").dir / "sweeps").exists()
    monkeypatch.setenv("MAX_POINTS", "1000")  # `make sweep MAX_POINTS=1000`: raised, the 900 points start
    with pytest.raises(Started, match="900"):
        commands.main(["sweep", "--profile", "check", "--run", "simple_cnn", "--grid", grid])
    (profile / "sweeps").mkdir()
    (profile / "sweeps" / "wide.yaml").write_text("run: simple_cnn\ngrid:\n  epochs: [1, 2, 3]\nmax_points: 2\n")
    with pytest.raises(ParameterError, match=r"wide.yaml: 3 points, more than the cap of 2"):
        sweep.load_sweep_file("check", "wide")


def test_tracking_ui_without_tensorboard_says_how_to_install_it(tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['tensorboard'] = None  # not installed\n")
    stamp = tmp_path / "stamp"
    stamp.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(hide), *filter(None, [env.get("PYTHONPATH")])])
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "tracking-ui", f"PY={sys.executable}",
                             f"STAMP={stamp}", "PROFILE=smoke"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.splitlines()[0] == (f"error: make tracking-ui needs TensorBoard, which setup leaves out: "
                                             f"{sys.executable} -m pip install -e '.[tracking]'")
