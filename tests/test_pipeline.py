"""The whole pipeline, as `make` runs it, on tiny generated data (profile smoke), in a copy of the repository
(so that tests can edit its code and parameters)."""

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from page_links import broken_links

REPO = Path(__file__).resolve().parent.parent
TRAIN_RUNS = ["simple_cnn", "simple_cnn_aug", "mid_cnn", "resnet50", "modern"]
RUNS = ["eda", *TRAIN_RUNS, "report"]
pytestmark = pytest.mark.slow
SMOKE_GROUP = pytest.mark.xdist_group("test_pipeline.smoke")  # one worker makes the smoke study; no other waits for it


def copy_repository(target: Path) -> Path:
    """The files `make` needs, with their modification times (so make's setup stamp stays current)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ["simpsons_lib", "notebooks", "params"]:
        shutil.copytree(REPO / name, target / name, ignore=ignore)
    for name in ["Makefile", "pyproject.toml"]:
        shutil.copy2(REPO / name, target / name)
    stamp = target / "setup-stamp"
    stamp.touch()  # newer than pyproject.toml: make never installs anything from the copy
    return target


def make_env(root: Path, **extra) -> dict:
    env = {**os.environ, "SIMPSONS_OUTPUTS_DIR": str(root / "outputs"), "SIMPSONS_DATA_DIR": str(root / "data"), **extra}
    # the caller's make flags (`make -s test` exports MAKEFLAGS=s) must not reach the tests' own make
    for name in ("SIMPSONS_PROGRESS", "SIMPSONS_PARAMS_DIR", "SIMPSONS_PIPELINE_LOCK", "MAKEFLAGS", "MAKELEVEL", "MFLAGS",
                 "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


def make_command(repo: Path, *args, profile="smoke") -> list[str]:
    return ["make", "--no-print-directory", "-C", str(repo), *args, f"PROFILE={profile}", f"PY={sys.executable}",
            f"STAMP={repo / 'setup-stamp'}"]


def study_env(root: Path, data: Path, decoy: Path) -> dict:
    """The environment of a study under ``root`` that reads ``data``, with the decoy first on PYTHONPATH."""
    return make_env(root, SIMPSONS_DATA_DIR=str(data),
                    PYTHONPATH=os.pathsep.join([str(decoy), *filter(None, [os.environ.get("PYTHONPATH")])]))


def study_make(repo: Path, env: dict):
    def make(*args, profile="smoke"):
        return subprocess.run(make_command(repo, *args, profile=profile), env=env, capture_output=True, text=True)
    return make


def build_smoke_study(root: Path) -> None:
    """`make demo-data pipeline PROFILE=smoke` in a copy of the repository under ``root``.

    A decoy ``simpsons_lib`` comes first on the inherited PYTHONPATH: the kernels must still import the
    copy's library (as when the environment's editable install points at another checkout)."""
    repo = copy_repository(root / "repo")
    for run in ("resnet50", "modern"):  # the smallest input they take (the slowest runs; the same pages)
        run_file = repo / "params" / "smoke" / f"{run}.yaml"
        assert "\nimage_size: 64\n" in run_file.read_text()
        run_file.write_text(run_file.read_text().replace("\nimage_size: 64\n", "\nimage_size: 32\n"))
    decoy = root / "decoy" / "simpsons_lib"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('a decoy simpsons_lib, not this checkout')\n")
    make = study_make(repo, study_env(root, root / "data", decoy.parent))
    result = make("demo-data")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (root / "data_before.json").write_text(json.dumps(data_listing(root / "data")))
    result = make("pipeline")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (root / "make_pipeline.log").write_text(result.stdout + result.stderr)
    (root / "data_after.json").write_text(json.dumps(data_listing(root / "data")))


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """The smoke study, made once per test session: under ``pytest -n`` the first worker that needs it makes
    it (the others wait on a file lock, then read it); a failed build is reported to every test that needs it."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, failed = shared / "smoke-study", shared / "smoke-study.failed"
    with open(shared / "smoke-study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(f"the smoke study failed to build: {failed.read_text()[-3000:]}")
        if not (root / "data_after.json").exists():
            try:
                build_smoke_study(root)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}")
                raise
    return root


@pytest.fixture
def smoke(smoke_study):
    """The shared smoke study, for tests that only read it: ``(root, repo, outputs, make, env)``."""
    root = smoke_study
    env = study_env(root, root / "data", root / "decoy")
    return root, root / "repo", root / "outputs" / "smoke", study_make(root / "repo", env), env


@pytest.fixture
def smoke_copy(smoke_study, tmp_path):
    """A copy of the smoke study (its repository and outputs, with their modification times, as make needs),
    on the shared drawn data, for a test that edits, breaks or re-runs it: ``(root, repo, outputs, make, env)``."""
    root = tmp_path / "study"
    for name in ("repo", "outputs", "decoy"):
        shutil.copytree(smoke_study / name, root / name, symlinks=True)
    shutil.copy2(smoke_study / "make_pipeline.log", root / "make_pipeline.log")
    (root / "data").symlink_to(smoke_study / "data")
    env = study_env(root, smoke_study / "data", root / "decoy")
    yield root, root / "repo", root / "outputs" / "smoke", study_make(root / "repo", env), env
    shutil.rmtree(root, ignore_errors=True)  # its models take about 200 MB


def data_listing(folder: Path) -> dict[str, list]:
    """Every path under the data folder (folders too) with its size, modification time and mode: as root, permission
    bits stop no write, so a file the study wrote, touched, replaced or removed there shows here instead."""
    return {str(p.relative_to(folder)): [p.lstat().st_size if p.is_file() else 0, p.lstat().st_mtime_ns,
                                         p.lstat().st_mode] for p in [folder, *sorted(folder.rglob("*"))]}


@SMOKE_GROUP
def test_the_study_writes_nothing_under_the_data_folder(smoke):
    root = smoke[0]
    before, after = (json.loads((root / name).read_text()) for name in ("data_before.json", "data_after.json"))
    assert len(before) > 400 and any(name.endswith("DEMO_DATA.txt") for name in before)
    assert after == before


def runs_in(dry_run_output: str) -> list[str]:
    return re.findall(r"pipeline run --profile '?\w+'? --run '?(\w+)'?", dry_run_output)  # make quotes what a user typed


def run_starts(out: Path) -> dict[str, str]:
    """When each run's notebook last started, as its manifest states (the pipeline writes it per execution)."""
    return {run: json.loads((out / "manifests" / f"{run}.json").read_text())["started"] for run in RUNS
            if (out / "manifests" / f"{run}.json").exists()}


def runs_executed(out: Path, before: dict[str, str]) -> list[str]:
    """The runs whose notebooks executed since ``before`` (``run_starts``), in study order."""
    now = run_starts(out)
    return [run for run in RUNS if run in now and now[run] != before.get(run)]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".plan" not in p.parts and p.name != ".lock"}


@SMOKE_GROUP
def test_every_output_exists_and_is_valid(smoke):
    root, repo, out, _, _ = smoke
    for run in RUNS:
        nb = nbformat.read(out / "notebooks" / f"{run}.ipynb", as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and 'profile = "smoke"' in injected[0].source and f'run = "{run}"' in injected[0].source
        text = json.dumps(nb)
        assert not re.search(r"\d+it/s|it/s\]", text), f"{run}: progress-bar lines in the notebook"
        full = (out / "reports" / f"{run}.html").read_text()
        reader = (out / "reports" / f"{run}_reader.html").read_text()
        assert len(reader) > 10_000 and "<img" in reader
        assert "run_paths" in full and "run_paths" not in reader
        manifest = json.loads((out / "manifests" / f"{run}.json").read_text())
        assert {"parameters", "keys", "git", "packages", "device", "data", "started", "finished"} <= set(manifest)
        assert manifest["keys"] == json.loads((out / ".plan" / f"{run}.key").read_text())
        assert manifest["packages"]["torch"] and manifest["data"]["demo"]
        assert manifest["parameters"]["profile"] == "smoke" and manifest["parameters"]["run"] == run
    for run in TRAIN_RUNS:
        png = out / "figures" / f"{run}_confusion_matrix.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        metrics = json.loads((out / "metrics" / f"{run}.json").read_text())
        assert {"micro_f1", "macro_f1", "accuracy", "per_class", "confusion_matrix", "confusion_matrix_normalized",
                "worst_classes", "classes", "device", "params"} <= set(metrics)
        assert len(metrics["classes"]) == 42 and 0 <= metrics["micro_f1"] <= 1
        assert (out / "models" / run / "model.pt").exists() and not (out / "models" / run / "best.pt").exists()
        assert json.loads((out / "manifests" / f"{run}.json").read_text())["device"] == "cpu"
    assert (out / "figures" / "report_best_confusion_matrix.png").exists()
    assert (out / "figures" / "mid_cnn_augmentation.png").stat().st_size > 20_000
    assert "layer4" in (out / "reports" / "resnet50_reader.html").read_text()
    assert json.loads((out / "metrics" / "simple_cnn_aug.json").read_text())["worst_classes_augmented"]
    sub = pd.read_csv(out / "submission.csv")
    sample = pd.read_csv(root / "data" / "demo" / "sample_submission.csv")
    assert list(sub.columns) == ["Id", "Expected"] and list(sub["Id"]) == list(sample["Id"])
    assert set(sub["Expected"]) <= set(json.loads((out / "metrics" / "resnet50.json").read_text())["classes"])
    index = (out / "reports" / "index.html").read_text()
    for run in RUNS:
        assert f'href="{run}.html"' in index and f'href="{run}_reader.html"' in index
    reports = index[index.index("<h2>Reports</h2>"):]
    assert [reports.index(f'href="{r}_reader.html"') for r in RUNS] == sorted(reports.index(f'href="{r}_reader.html"') for r in RUNS)
    assert "val micro-F1" in index and "Drawn demo data" in index and "Scored against" in index
    evolution = pd.read_csv(out / "metrics" / "evolution.csv")
    assert list(evolution["run"]) == [*TRAIN_RUNS, "ensemble"] or list(evolution["run"]) == TRAIN_RUNS
    assert evolution["test_micro_f1"].between(0, 1).all()  # every run scored on the test answers
    assert evolution.loc[evolution["run"].isin(TRAIN_RUNS), "last_epoch_micro_f1"].between(0, 1).all()
    modes = set(evolution["test_tta"])  # submission_tta auto: each run's mode, chosen on its validation split
    assert modes <= {"none", "flip", "flip+scales"}
    assert ("test micro-F1 (on the test answers" + ("" if modes == {"none"} else f", {modes.pop()} TTA") + ")" in index
            if len(modes) == 1 else "each run with the test-time augmentation its validation micro-F1 chose" in index)
    for link in re.findall(r'(?:href|src)="([^"#:]+)"', index):  # every link of the index resolves
        assert (out / "reports" / link).resolve().exists(), link
    report_page = (out / "reports" / "report_reader.html").read_text()
    assert "Does the per-class augmentation plant a cue?" in report_page and "predicted share, tilted images" in report_page
    assert "without pretrained weights" in index
    modern = json.loads((out / "metrics" / "modern.json").read_text())  # real weights, or says it has none
    assert modern["weights_used"] == "IMAGENET1K_V1" or (
        modern["weights_used"] is None and modern["title"].endswith(" (random weights)")
        and modern["weights_fallback_reason"].startswith("IMAGENET1K_V1 not in TORCH_HOME")
        and "modern: mobilenet_v2 trained from random weights" in index)
    for run in RUNS:  # reader versions: results and figures, compact, no code or raw reprs
        reader = (out / "reports" / f"{run}_reader.html").read_text()
        assert "PosixPath" not in reader and "Sequential(" not in reader and "{&#39;" not in reader
        tables = re.findall(r"<table.*?</table>", reader, re.S)
        assert all(t.count("<th") <= 24 for t in tables), run
    assert (out / "figures" / "report_best_gradcam.png").stat().st_size > 20_000
    assert "ensemble" in pd.read_csv(out / "metrics" / "evolution.csv")["run"].tolist()
    tta = (out / "reports" / "report_reader.html").read_text()
    assert "flip" in tta and json.loads((out / "metrics" / "submission.json").read_text())["run"] == "ensemble"
    for run in TRAIN_RUNS:
        assert (out / "models" / run / "model.pt").is_file()


@SMOKE_GROUP
def test_every_link_of_every_page_resolves(smoke):
    """Every href and src of every generated page (the index, every <run>.html and <run>_reader.html) names a
    file that exists."""
    out = smoke[2]
    pages = {p.name for p in (out / "reports").glob("*.html")}
    assert {"index.html", *(f"{r}.html" for r in RUNS), *(f"{r}_reader.html" for r in RUNS)} <= pages
    assert broken_links(out / "reports") == {}


@SMOKE_GROUP
def test_each_page_says_near_its_top_what_its_reader_must_know(smoke):
    out = smoke[2]
    for run in RUNS:
        page = (out / "reports" / f"{run}_reader.html").read_text()
        assert "Drawn demo data" in page and page.index("Drawn demo data") < page.index("<img"), run
        assert 'Downloading: "https://download.pytorch.org' not in page, run
    mid = html.unescape((out / "reports" / "mid_cnn_reader.html").read_text())
    assert "The original write-up's figure for this step: validation micro-F1 0.856" in mid
    assert "not comparable with the demo data" in mid
    report = (out / "reports" / "report_reader.html").read_text()
    assert "not a Kaggle score" in report[:report.index("Evolution of model quality")]
    modern = json.loads((out / "metrics" / "modern.json").read_text())
    if modern["weights_used"] is None:  # said once, at the top of its page; its title carries only the tag
        page = (out / "reports" / "modern_reader.html").read_text()
        assert page.count(modern["weights_fallback_reason"]) == 1
        assert page.index(modern["weights_fallback_reason"]) < page.index("<img")
        assert modern["weights_fallback_reason"] not in report


@SMOKE_GROUP
def test_make_prints_one_line_per_epoch_and_the_notebooks_stay_clean(smoke):
    root, _, out, _, _ = smoke
    log = (root / "make_pipeline.log").read_text()
    assert re.search(r"^\[simple_cnn\] epoch 1/2  loss \d+\.\d+  val micro-F1 \d\.\d+  \d[\d,]* img/s  ETA \d+:\d\d$", log, re.M)
    assert "[simple_cnn] epoch 2/2" in log and "[mid_cnn] epoch 1/1" in log
    assert "epoch 1/2" not in (out / "notebooks" / "simple_cnn.ipynb").read_text()


@SMOKE_GROUP
def test_kernel_connection_is_encrypted_where_supported(smoke):
    """Recent ipykernels warn at every start when the kernel connection is plain TCP; the pipeline asks
    for CurveZMQ keys wherever pyzmq supports them, so `make` prints no such warning."""
    zmq = pytest.importorskip("zmq")
    if not zmq.has("curve"):
        pytest.skip("this pyzmq has no CurveZMQ support")
    root = smoke[0]
    log = (root / "make_pipeline.log").read_text()
    assert "[simple_cnn] done" in log
    assert "without encryption" not in log


@SMOKE_GROUP
def test_a_changed_value_reruns_that_run_and_its_dependants_and_nothing_else(smoke_copy):
    _, repo, out, make, _ = smoke_copy
    assert runs_in(make("-n", "pipeline").stdout) == []
    params = repo / "params" / "smoke"
    original = {name: (params / name).read_text() for name in ("mid_cnn.yaml", "simple_cnn.yaml")}
    try:
        (params / "mid_cnn.yaml").write_text(original["mid_cnn.yaml"] + "# a comment changes no value\n")
        assert runs_in(make("-n", "pipeline").stdout) == []
        (params / "mid_cnn.yaml").write_text(original["mid_cnn.yaml"].replace("epochs: 1", "epochs: 2"))
        assert runs_in(make("-n", "pipeline").stdout) == ["mid_cnn", "report"]
        (params / "simple_cnn.yaml").write_text(original["simple_cnn.yaml"].replace("epochs: 2", "epochs: 3"))
        assert runs_in(make("-n", "pipeline").stdout) == ["simple_cnn", "simple_cnn_aug", "mid_cnn", "resnet50",
                                                           "modern", "report"]
    finally:
        for name, text in original.items():
            (params / name).write_text(text)
    assert runs_in(make("-n", "pipeline").stdout) == []


@SMOKE_GROUP
def test_unknown_key_stops_every_run_before_any_starts(smoke_copy):
    _, repo, out, make, _ = smoke_copy
    params = repo / "params" / "smoke" / "mid_cnn.yaml"
    original = params.read_text()
    before = snapshot(out)
    params.write_text(original + "epochz: 3\n")
    try:
        result = make("pipeline")
    finally:
        params.write_text(original)
    assert result.returncode != 0
    assert "mid_cnn.yaml: a train run: unknown parameter 'epochz' (did you mean 'epochs'?)" in result.stderr
    assert "pipeline run" not in result.stdout  # no notebook started, not even the runs before mid_cnn
    assert snapshot(out) == before


@SMOKE_GROUP
def test_an_interactive_override_writes_its_own_run_and_leaves_the_record_alone(smoke_copy):
    root, repo, out, make, env = smoke_copy
    before = snapshot(out)
    executed = root / "lab.ipynb"
    lab_env = {**env, "PYTHONPATH": str(repo), "SIMPSONS_PARAMS_DIR": str(repo / "params")}
    result = subprocess.run([sys.executable, "-m", "papermill", str(repo / "notebooks" / "01_simple_cnn.ipynb"),
                             str(executed), "-p", "profile", "smoke", "-p", "run", "simple_cnn", "-y",
                             "overrides: {epochs: 1}", "-k", "simpsons-study", "--cwd", str(repo / "notebooks")],
                            env=lab_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before} == before  # every pipeline file byte-identical
    new = sorted(set(after) - set(before))
    name = re.search(r"writes as '(simple_cnn-\w+)', never over the pipeline's 'simple_cnn'", executed.read_text()).group(1)
    assert new and all(name in path for path in new)
    assert f"metrics/{name}.json" in new and f"models/{name}/model.pt" in new
    assert json.loads((out / "metrics" / f"{name}.json").read_text())["epochs_trained"] == 1
    assert runs_in(make("-n", "pipeline").stdout) == []


@SMOKE_GROUP
def test_a_crash_outside_a_cell_fails_in_one_line_and_leaves_no_result(smoke_copy):
    """A kernel that dies (here it kills itself after the EDA has written its first results)."""
    _, repo, out, make, env = smoke_copy
    notebook = repo / "notebooks" / "00_eda.ipynb"
    original = notebook.read_text()
    nb = nbformat.reads(original, as_version=4)
    nb.cells.insert(8, nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"))
    nbformat.write(nb, notebook)
    try:
        result = subprocess.run([sys.executable, "-m", "simpsons_lib.pipeline", "run", "--profile", "smoke", "--run",
                                 "eda"], cwd=repo, env={**env, "SIMPSONS_PARAMS_DIR": str(repo / "params")},
                                capture_output=True, text=True, timeout=300)
    finally:
        notebook.write_text(original)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: [eda] FAILED in DeadKernelError"), result.stderr[-2000:]
    assert not list((out / "metrics").glob("eda*")) and not list((out / "figures").glob("eda_*"))
    assert not (out / "notebooks" / "eda.ipynb").exists() and not (out / "notebooks" / "eda.running.ipynb").exists()
    failed = out / "notebooks" / "eda.FAILED.ipynb"
    assert not failed.exists() or json.loads(failed.read_text())
    assert make("pipeline").returncode == 0 and (out / "notebooks" / "eda.ipynb").exists()


@SMOKE_GROUP
def test_a_second_pipeline_on_the_same_outputs_is_refused_and_deletes_nothing(smoke_copy):
    _, repo, out, make, env = smoke_copy
    params = repo / "params" / "smoke" / "report.yaml"
    original = params.read_text()
    params.write_text(original.replace("gallery_size: 6", "gallery_size: 4"))
    try:
        first = subprocess.Popen(make_command(repo, "pipeline"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        deadline = time.time() + 120
        while "pid" not in ((out / ".lock").read_text() if (out / ".lock").exists() else "") and time.time() < deadline:
            time.sleep(0.2)
        second = make("pipeline")
        first_out, first_err = first.communicate(timeout=600)
    finally:
        params.write_text(original)
    assert second.returncode != 0
    assert f"another pipeline is running on {out}" in second.stderr
    assert first.returncode == 0, first_err[-2000:]
    assert "[report] done" in first_out
    for run in RUNS:
        assert (out / "notebooks" / f"{run}.ipynb").exists()


def test_full_profile_without_kaggle_data_says_how_to_get_it(tmp_path):
    repo = copy_repository(tmp_path / "repo")
    result = subprocess.run(make_command(repo, "pipeline", profile="full"), env=make_env(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "make data" in message and str(tmp_path / "data" / "kaggle") in message
    assert "pipeline run" not in message


def draw_shapes_dataset(root: Path) -> Path:
    """A small dataset of other classes in the Kaggle layout (with a sample submission in its root)."""
    rng = np.random.default_rng(0)
    shapes = {"circle": "ellipse", "square": "rectangle", "stripe": "line"}
    from PIL import ImageDraw

    def image(kind):
        w, h = int(rng.integers(90, 140)), int(rng.integers(90, 140))
        img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(150, 256, 3)))
        box = [w * 0.2, h * 0.2, w * 0.8, h * 0.8]
        getattr(ImageDraw.Draw(img), shapes[kind])(box, fill=(40, 40, 160), **({"width": 9} if kind == "stripe" else {}))
        return img

    for name, count in {"circle": 14, "square": 10, "stripe": 6}.items():
        (root / "train" / name).mkdir(parents=True)
        for i in range(count):
            image(name).save(root / "train" / name / f"{name}_{i}.jpg")
    (root / "test").mkdir()
    ids = []
    for i, name in enumerate(["circle", "square", "stripe", "circle", "square"]):
        image(name).save(root / "test" / f"t{i}.jpg")
        ids.append(f"t{i}.jpg")
    pd.DataFrame({"Id": ids, "Expected": "circle"}).to_csv(root / "sample_submission.csv", index=False)
    return root


def test_a_profile_of_your_own_on_other_classes(tmp_path):
    data = draw_shapes_dataset(tmp_path / "shapes")
    params = tmp_path / "params" / "mine"
    params.mkdir(parents=True)
    (params / "_common.yaml").write_text(f"data_dir: {data}\ndevice: cpu\n")
    (params / "eda.yaml").write_text("notebook: 00_eda\nimage_stats_sample: 20\ngrid_classes: 3\ngrid_per_class: 2\n")
    (params / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\naugment: false\n"
                                            "image_size: 96\nepochs: 1\n")
    (params / "report.yaml").write_text("notebook: 05_report\nruns: [simple_cnn]\n")
    result = subprocess.run(["make", "--no-print-directory", "pipeline", "PROFILE=mine", f"PARAMS_ROOT={tmp_path / 'params'}"],
                            cwd=REPO, env=make_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (tmp_path / "data").exists()  # no demo data generated, nothing written to a data folder
    out = tmp_path / "outputs" / "mine"
    metrics = json.loads((out / "metrics" / "simple_cnn.json").read_text())
    assert metrics["classes"] == ["circle", "square", "stripe"]
    assert list(pd.read_csv(out / "submission.csv")["Id"]) == [f"t{i}.jpg" for i in range(5)]
    index = (out / "reports" / "index.html").read_text()
    assert "demo" not in index.lower()
    headings = re.findall(r"<(?:title|h1|h2)>(.*?)</(?:title|h1|h2)>", index, re.S)
    assert headings and not any("Simpsons" in h for h in headings)
    assert "<h1>Image classification study</h1>" in index and "0.817" not in index  # no original figures
    assert broken_links(out / "reports") == {}
    assert "demo" not in (out / "reports" / "eda_reader.html").read_text().lower().replace("demo_data", "")


@SMOKE_GROUP
def test_a_plots_only_edit_rerenders_without_training_and_a_training_edit_retrains(smoke_copy):
    _, repo, out, make, _ = smoke_copy
    checkpoints = {run: (out / "models" / run / "last.pt").stat().st_mtime_ns for run in TRAIN_RUNS}
    histories = {run: (out / "metrics" / f"{run}_history.csv").read_bytes() for run in TRAIN_RUNS}
    keys = {run: json.loads((out / ".plan" / f"{run}.key").read_text()) for run in RUNS}
    lib = repo / "simpsons_lib"
    plots, narrative, train = lib / "reporting" / "plots.py", lib / "reporting" / "narrative.py", lib / "training" / "loop.py"
    original = {path: path.read_text() for path in (plots, narrative, train)}
    try:
        plots.write_text(original[plots].replace('"""Figures', '"""The study\'s figures', 1))
        narrative.write_text(original[narrative].replace("The study in words", "The study told in words", 1))
        started = run_starts(out)
        result = make("pipeline")
        assert result.returncode == 0, result.stderr[-2000:]
        assert runs_executed(out, started) == RUNS  # every notebook re-rendered (as the manifests say) ...
        for run in TRAIN_RUNS:
            assert json.loads((out / ".plan" / f"{run}.key").read_text())["training"] == keys[run]["training"]
        for run in TRAIN_RUNS:  # ... and no epoch ran
            assert (out / "models" / run / "last.pt").stat().st_mtime_ns == checkpoints[run]
            assert (out / "metrics" / f"{run}_history.csv").read_bytes() == histories[run]
            assert "Reusing the finished run" in (out / "notebooks" / f"{run}.ipynb").read_text()
        train.write_text(original[train] + "\n# a change to the training code\n")
        assert runs_in(make("-n", "pipeline").stdout) == RUNS
        for run in TRAIN_RUNS:
            now = json.loads((out / ".plan" / f"{run}.key").read_text())
            assert now["training"] != keys[run]["training"]
        assert json.loads((out / ".plan" / "eda.key").read_text())["training"] is None
    finally:
        for path, text in original.items():
            path.write_text(text)


# --- faults: the record after a failure, a lost export, kill -9, names make must not split -------------------

def page_links(page: Path) -> list[str]:
    """The local links and images of a generated page (not web addresses, anchors or inline data)."""
    return [link for link in re.findall(r'(?:href|src)="([^"]+)"', page.read_text())
            if not re.match(r"^(#|[a-z]+:)", link)]


@SMOKE_GROUP
def test_a_failed_rerun_takes_down_what_reads_it_and_the_index_shows_no_stale_result(smoke_copy):
    _, repo, out, make, _ = smoke_copy
    run_file = repo / "params" / "smoke" / "simple_cnn.yaml"
    last = out / "models" / "simple_cnn" / "last.pt"
    original, checkpoint = run_file.read_text(), last.read_bytes()
    dependent = [out / "submission.csv", out / "metrics" / "submission.json", out / "metrics" / "evolution.csv",
                 out / "metrics" / "ensemble.json", out / "reports" / "report.html", out / "reports" / "report_reader.html",
                 out / "notebooks" / "report.ipynb", *(out / "notebooks" / f"{r}.ipynb" for r in TRAIN_RUNS[1:]),
                 *(out / "reports" / f"{r}_reader.html" for r in TRAIN_RUNS[1:]),
                 out / "reports" / "simple_cnn_reader.html", out / "metrics" / "simple_cnn.json"]
    assert all(p.exists() for p in dependent)
    try:
        run_file.write_text(original.replace("title: SimpleCnn", "title: SimpleCnn, retitled"))
        last.write_bytes(b"damaged")
        result = make("pipeline")
        assert result.returncode != 0
        assert "[simple_cnn] FAILED in cell" in result.stderr and "not a usable checkpoint" in result.stderr
        assert "the results of simple_cnn_aug, mid_cnn, resnet50, modern, report, which read it" in result.stderr
        assert [p for p in dependent if p.exists()] == []
        index = out / "reports" / "index.html"
        assert index.stat().st_mtime > (out / "notebooks" / "simple_cnn.FAILED.ipynb").stat().st_mtime - 1
        for link in page_links(index):  # never a link to a removed page or figure
            assert (index.parent / link).resolve().exists(), link
        text = index.read_text()
        assert "Scored against" not in text and "submission.csv" not in text  # no stale submission or score
        assert "simple_cnn" in text and "failed" in text.lower()
    finally:
        run_file.write_text(original)
        last.write_bytes(checkpoint)
    assert runs_in(make("-n", "pipeline").stdout) == [*TRAIN_RUNS, "report"]  # what the next pipeline makes again


@SMOKE_GROUP
def test_a_failed_rerun_leaves_no_earlier_result_and_a_deleted_export_is_noticed_and_made_again(smoke_copy):
    """The report fails (in one line) while resnet50's export is away: none of its earlier results stays to
    look current. Then the export is deleted for good and mid_cnn's predictions are edited: the plan names
    both, and one `make pipeline` makes them again (resnet50 to the same bytes)."""
    _, repo, out, make, env = smoke_copy
    model = out / "models" / "resnet50" / "model.pt"
    hidden = model.with_name("hidden.pt")
    before = model.read_bytes()
    results = [out / "submission.csv", out / "metrics" / "submission.json", out / "metrics" / "evolution.csv",
               out / "notebooks" / "report.ipynb", out / "reports" / "report.html", out / "manifests" / "report.json"]
    assert all(p.exists() for p in results)
    os.replace(model, hidden)
    try:
        report = subprocess.run([sys.executable, "-m", "simpsons_lib.pipeline", "run", "--profile", "smoke", "--run",
                                 "report"], cwd=repo, env={**env, "SIMPSONS_PARAMS_DIR": str(repo / "params")},
                                capture_output=True, text=True)
    finally:
        os.replace(hidden, model)
    assert report.returncode != 0  # model.pt missing while the report starts
    message = report.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("error: [report] FAILED in cell") and "model.pt" in message[0]
    assert not any(p.exists() for p in results), [p for p in results if p.exists()]
    failed = out / "notebooks" / "report.FAILED.ipynb"
    assert "papermill-error-cell" in json.dumps(json.loads(failed.read_text()))
    assert runs_in(make("-n", "pipeline").stdout) == ["report"]  # make knows the report is missing
    model.unlink()
    changed = out / "metrics" / "mid_cnn_val_predictions.csv"
    changed.write_text(changed.read_text().replace("0.", "1.", 1))
    dry = make("-n", "pipeline")
    assert "plan: resnet50: models/resnet50/model.pt is missing: the run executes again" in dry.stdout
    assert "mid_cnn_val_predictions.csv changed since the run wrote it" in dry.stdout
    assert runs_in(dry.stdout) == ["mid_cnn", "resnet50", "report"]
    started = run_starts(out)
    result = make("pipeline")
    assert result.returncode == 0, result.stderr[-2000:]
    assert runs_executed(out, started) == ["mid_cnn", "resnet50", "report"]
    assert all(p.exists() for p in results) and not failed.exists()
    assert model.read_bytes() == before  # trained again (no checkpoint held the weights), to the same bytes
    nb = nbformat.read(out / "notebooks" / "resnet50.ipynb", as_version=4)
    log = " ".join(" ".join(str(o.get("text", "")) for o in c.get("outputs", [])) for c in nb.cells).split()
    assert "model.pt is missing; training the run again from scratch" in " ".join(log)
    assert runs_in(make("-n", "pipeline").stdout) == []


def _lock_is_free(lock: Path) -> bool:
    import fcntl
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def _processes_in(folder: Path) -> list[str]:
    """Command lines of the processes whose working folder is ``folder`` (the pipeline's runs)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")).resolve() == folder.resolve():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc")
@SMOKE_GROUP
def test_kill_9_of_the_top_make_stops_the_whole_pipeline(smoke_copy):
    _, repo, out, make, env = smoke_copy
    run_file = repo / "params" / "smoke" / "modern.yaml"  # a run only the report reads: a short repair after
    original = run_file.read_text()
    started = run_starts(out)
    run_file.write_text(original.replace("title: MobileNetV2 full fine-tune", "title: MobileNetV2, once more"))
    assert run_file.read_text() != original
    try:
        top = subprocess.Popen(make_command(repo, "pipeline"), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while not (out / "notebooks" / "modern.running.ipynb").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert (out / "notebooks" / "modern.running.ipynb").exists(), "the run never started"
        os.kill(top.pid, 9)
        top.wait()
        killed = time.time()
        while not _lock_is_free(out / ".lock") and time.time() < killed + 60:
            time.sleep(0.5)
        stopped = time.time() - killed
        assert _lock_is_free(out / ".lock"), "the orphaned pipeline still holds the study"
        time.sleep(3)
        assert [c for c in _processes_in(repo) + _processes_in(repo / "notebooks") if "simpsons_lib" in c] == []
        # the study did not go on without its make: the report never ran again (the interrupted run took its
        # results down, as Ctrl-C does)
        assert run_starts(out).get("report") in (None, started["report"])
        assert not (out / "notebooks" / "modern.ipynb").exists()
        assert not (out / "notebooks" / "modern.running.ipynb").exists()
        assert stopped < 30, stopped
    finally:
        run_file.write_text(original)
    assert runs_in(make("-n", "pipeline").stdout) == ["modern", "report"]  # the next pipeline takes up the study


@SMOKE_GROUP
def test_make_predict_takes_any_file_name_and_finds_the_profile_with_results(smoke_copy, tmp_path):
    root, repo, out, make, env = smoke_copy
    source = next((root / "data" / "demo" / "testset" / "testset").glob("*.jpg"))
    names = ["my frame.jpg", 'say "cheese".jpg', "ñandú ü.jpg"]
    for name in names:
        shutil.copy(source, tmp_path / name)
        result = make("predict", f"IMAGES={tmp_path / name}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "1 image(s) predicted" in result.stdout, result.stdout
        assert pd.read_csv(out / "predictions.csv")["path"].tolist() == [str(tmp_path / name)]
    both = f"'{tmp_path / names[0]}' '{tmp_path / names[2]}'"
    assert "2 image(s) predicted" in make("predict", f"IMAGES={both}").stdout
    plain = ["make", "--no-print-directory", "-C", str(repo), "predict", f"IMAGES={tmp_path / names[0]}",
             f"PY={sys.executable}", f"STAMP={repo / 'setup-stamp'}"]  # no PROFILE: the one with results
    result = subprocess.run(plain, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "profile smoke (the one with results" in result.stderr and "1 image(s) predicted" in result.stdout


def params_kind(run_file_text: str) -> str:
    """``train`` for a run file naming a training notebook (01-04), else its notebook's stem."""
    notebook = re.search(r"^notebook:\s*(\S+)", run_file_text, re.M)
    return "train" if notebook and notebook.group(1)[:2] in ("01", "02", "03", "04") else (
        notebook.group(1) if notebook else "")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`make demo-data pipeline PROFILE=demo` once, in a copy of the repository: the whole demo study, its
    pages as `make demo` writes them, with one epoch a run, on the drawn data at the smoke profile's scale,
    each network at the smallest input it takes, small galleries and the smoke profile's EDA sample (the
    pages and their links do not depend on how long a run trains, on how many images it reads nor on their
    size)."""
    root = tmp_path_factory.mktemp("demo")
    repo = copy_repository(root / "repo")
    for run_file in (repo / "params" / "demo").glob("*.yaml"):
        text = run_file.read_text()
        kind = params_kind(text)
        if kind == "train":
            shrunk = ("epochs:", "gallery_size:", "batch_size:", *(() if "arch: simple_cnn" in text else ("image_size:",)))
            lines = [line for line in text.splitlines() if not line.startswith(shrunk)]
            lines += ["epochs: 1", "gallery_size: 2", *(() if "arch: simple_cnn" in text else ["image_size: 32"])]
            run_file.write_text("\n".join(lines) + "\n")
        elif kind == "00_eda":
            run_file.write_text(text + "image_stats_sample: 100\ngrid_classes: 4\ngrid_per_class: 2\n")
        elif kind == "05_report":
            run_file.write_text(text + "gallery_size: 2\n")
    common = repo / "params" / "demo" / "_common.yaml"
    text = common.read_text()
    assert re.search(r"^demo_scale: [\d.]+", text, re.M)
    common.write_text(re.sub(r"^demo_scale: [\d.]+", "demo_scale: 0.02", text, flags=re.M))
    result = subprocess.run(make_command(repo, "demo-data", "pipeline", profile="demo"), env=make_env(root),
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "outputs" / "demo"


@pytest.mark.timeout(2400)  # the fixture's whole demo study: about 3 min on 2 idle cores, far more on busy ones
def test_the_demo_study_links_only_existing_files_and_tells_its_steps(demo):
    assert broken_links(demo / "reports") == {}
    index = (demo / "reports" / "index.html").read_text()
    assert "<h1>Simpsons character study</h1>" in index
    for run in TRAIN_RUNS:
        assert f"<b>{run}</b>" in index
    assert index.index("The recipe") < index.index("<b>resnet50</b>") < index.index("Beyond the recipe")
    assert index.index("Beyond the recipe") < index.index("<b>modern</b>") < index.index("<b>ensemble</b>")
    for figure in ("val 0.817", "val 0.830", "val 0.856", "val 0.956 · Kaggle 0.993", "Kaggle 0.993"):
        assert figure in index
    assert "with flip TTA" in index and index.count("current") >= len(RUNS)
