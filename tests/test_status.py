"""`make status`: each run current, will re-run (and why), or failed, from the record the pipeline keeps."""

import shutil
from pathlib import Path

import pytest

from simpsons_lib.config import paths
from simpsons_lib.config.files import write_json, write_text
from simpsons_lib.pipeline import record, runner, status

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def profile(tmp_path, tiny_demo, monkeypatch):
    """Profile ``smoke`` (its parameter files copied) on the tiny demo data, every run recorded as the
    pipeline records a finished run (manifest keys, parameters, code digests, products, reports)."""
    shutil.copytree(REPO / "params" / "smoke", tmp_path / "params" / "smoke")
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(tmp_path / "params"))
    monkeypatch.setenv("SIMPSONS_DATA_DIR", str(tiny_demo.parent))
    resolved, keys = status.expected_keys("smoke")
    study = paths.StudyPaths("smoke")
    for run, p in resolved.items():
        rp = study.run(run).make_dirs()
        for f in (rp.notebook, rp.report_html, rp.reader_html):
            write_text(f, "{}")
        write_json(rp.metrics_json, {"run": run})
        if p.kind == "train":
            rp.models.mkdir(parents=True, exist_ok=True)
            rp.model_file.write_bytes(b"weights")
        write_json(rp.manifest, {"run": run, "parameters": dict(p), "keys": keys[run], "code": record.code_digests(),
                                 "notebook_sha1": record.digest((paths.PROJECT_ROOT / p.notebook).read_bytes()),
                                 "products": runner.products(rp, p.kind)})
    return tmp_path / "params" / "smoke", study, keys


def states(profile_name="smoke"):
    return {s.run: s for s in status.status(profile_name)}


def edit_manifest(study, run, **changes):
    from simpsons_lib.config.files import read_json
    m = read_json(study.run(run).manifest)
    for key, value in changes.items():
        m[key] = {**m[key], **value} if isinstance(value, dict) else value
    write_json(study.run(run).manifest, m)


def test_status_keys_are_the_plans_keys(profile):
    _, study, keys = profile
    assert runner.plan("smoke") == keys  # the plan (with its preflight) computes the same keys


def test_every_run_recorded_as_it_is_now_is_current(profile, capsys):
    assert {r: s.state for r, s in states().items()} == dict.fromkeys(states(), "current")
    status.main("smoke")
    out = capsys.readouterr().out
    assert out.startswith("profile smoke") and "7 current" in out


def test_a_training_parameter_edit_names_the_parameter_and_reruns_the_readers(profile):
    params_dir, _, _ = profile
    run_file = params_dir / "simple_cnn.yaml"
    run_file.write_text(run_file.read_text().replace("epochs: 2", "epochs: 3"))
    s = states()
    assert s["simple_cnn"].state == "will re-run" and s["simple_cnn"].retrains
    assert s["simple_cnn"].reasons == ["training parameter epochs 2 -> 3"]
    for reader in ("simple_cnn_aug", "mid_cnn", "resnet50", "modern", "report"):
        assert s[reader].state == "will re-run" and any(r.startswith("upstream run") and "simple_cnn" in r for r in s[reader].reasons), reader
    assert s["eda"].state == "current"


def test_a_render_only_parameter_renders_without_retraining(profile):
    params_dir, _, _ = profile
    run_file = params_dir / "mid_cnn.yaml"
    run_file.write_text(run_file.read_text() + "gallery_size: 3\n")
    s = states()["mid_cnn"]
    assert s.state == "will re-run" and not s.retrains
    assert s.reasons[0].startswith("only the render side changed") and "parameter gallery_size" in s.reasons[0]


def test_a_code_edit_names_the_wing(profile):
    _, study, keys = profile
    edit_manifest(study, "mid_cnn", keys={"render": "older"}, code={"reporting": "older"})
    s = states()["mid_cnn"]
    assert s.state == "will re-run" and not s.retrains
    assert s.reasons[0] == "only the render side changed: code of the reporting wing changed (simpsons_lib/reporting/)"
    assert s.line() == ("  mid_cnn          will re-run (renders only, no retraining): only the render side changed: code "
                        "of the reporting wing changed (simpsons_lib/reporting/)")
    edit_manifest(study, "resnet50", keys={"training": "older", "render": "older"}, code={"training": "older"})
    s = states()["resnet50"]
    assert s.retrains and s.reasons == ["code of the training wing changed (simpsons_lib/training/, shapes the weights)"]
    assert states()["report"].reasons == ["upstream runs mid_cnn, resnet50 re-run"]
    edit_manifest(study, "eda", keys={"render": "older"}, code={"training": "older"})
    assert states()["eda"].reasons == ["only the render side changed: code of the training wing changed "
                                       "(simpsons_lib/training/)"]  # not a training run: it only re-renders


def test_a_missing_product_and_a_failed_run(profile):
    _, study, _ = profile
    study.run("modern").model_file.unlink()
    s = states()["modern"]
    assert s.state == "will re-run" and "models/modern/model.pt is missing" in s.reasons[0]
    rp = study.run("mid_cnn")
    rp.notebook.replace(rp.failed_notebook)
    s = states()
    assert s["mid_cnn"].state == "failed" and "notebooks/mid_cnn.FAILED.ipynb" in s["mid_cnn"].reasons[0]
    assert "upstream runs mid_cnn, modern re-run" in s["report"].reasons


def test_status_writes_nothing(profile):
    _, study, _ = profile
    before = {p: p.stat().st_mtime_ns for p in study.dir.rglob("*")}
    status.status("smoke")
    assert {p: p.stat().st_mtime_ns for p in study.dir.rglob("*")} == before
