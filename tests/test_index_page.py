"""The index page from study folders in every state a run can leave: current, out of date, failed, not run
yet, files removed. It lists every run of the profile, says each one's state, shows no score of a failed
run (and marks an out-of-date one), and links only files that exist."""

import json
import re

import numpy as np
import pytest

from page_links import broken_links
from simpsons_lib.config import params, paths
from simpsons_lib.config.files import write_json, write_text
from simpsons_lib.reporting import index_page, original

DEMO_RUNS = ["eda", "simple_cnn", "simple_cnn_aug", "simple_cnn_grouped", "mid_cnn", "resnet50", "modern", "report"]
CLASSES = ["bart_simpson", "homer_simpson", "lisa_simpson"]


def metrics(run: str, micro: float, **extra) -> dict:
    cm = [[5, 1, 0], [0, 6, 2], [0, 0, 4]]
    return {"run": run, "title": run.replace("_", " ").title(), "micro_f1": micro, "macro_f1": micro - 0.1,
            "accuracy": micro, "classes": CLASSES, "confusion_matrix": cm, "epochs_trained": 3, "train_seconds": 2.5,
            "device": "cpu", "best_epoch": 2, "tta": "none", "params": {}, **extra}


def finished(study: paths.StudyPaths, run: str, kind: str = "train", micro: float | None = None, keys=None,
             parameters: dict | None = None, pages: bool = True, notebook: str | None = None, **extra) -> None:
    """A run as the pipeline leaves it when it succeeded: manifest, key, executed notebook, pages, metrics."""
    rp = study.make_dirs().run(run)
    keys = keys or {"training": f"t-{run}", "render": f"r-{run}", "data": "d"}
    write_json(rp.key_file, keys)
    p = parameters if parameters is not None else dict(params.resolve("demo", run))
    notebook = notebook or f"notebooks/{params.run_notebook('demo', run).name}"
    write_json(rp.manifest, {"run": run, "kind": kind, "notebook": notebook,
                             "parameters": p, "keys": keys, "data": {"demo": True}, "started": "2026-01-01T00:00:00",
                             "seconds": 3.0, "device": "cpu"})
    write_text(rp.notebook, "{}")
    if pages:
        write_text(rp.reader_html, "<html><body>page</body></html>")
        write_text(rp.report_html, "<html><body>page</body></html>")
    if micro is not None:
        write_json(rp.metrics_json, metrics(run, micro, **extra))
        (study.figures / f"{run}_confusion_matrix.png").write_bytes(b"\x89PNG")


@pytest.fixture
def study(tmp_path):
    return paths.StudyPaths("demo", tmp_path / "outputs" / "demo")


def rendered(study) -> str:
    return index_page.build(study, params.profile_runs("demo")).read_text().replace("<wbr>", "")  # names' break points


def row(page: str, run: str) -> str:
    """The step table's row of ``run``."""
    match = re.search(rf"<tr><td><b>{run}</b>.*?</tr>", page, re.S)
    assert match, f"no row for {run}"
    return match.group(0)


def test_a_partial_study_lists_every_run_with_its_state_and_links_only_what_exists(study):
    finished(study, "eda", kind="eda", pages=False)  # its pages were removed
    finished(study, "simple_cnn", micro=0.8123)
    finished(study, "simple_cnn_aug", micro=0.8456)
    write_json(study.run("simple_cnn_aug").key_file, {"training": "changed", "render": "r", "data": "d"})  # out of date
    finished(study, "mid_cnn", micro=0.8789)
    for path in (study.run("mid_cnn").notebook, study.run("mid_cnn").manifest, study.run("mid_cnn").reader_html,
                 study.run("mid_cnn").report_html):  # it failed: results removed, its metrics left behind
        path.unlink()
    write_text(study.run("mid_cnn").failed_notebook, "{}")
    page = rendered(study)  # resnet50, modern and the report: not run yet (their dependants' results removed)

    assert broken_links(study.reports) == {}
    assert [run for run in DEMO_RUNS if f"<b>{run}</b>" in page] == DEMO_RUNS  # every run of the profile, in order
    assert [page.index(f"<b>{run}</b>") for run in DEMO_RUNS] == sorted(page.index(f"<b>{r}</b>") for r in DEMO_RUNS)
    assert "current" in row(page, "simple_cnn") and "0.8123" in row(page, "simple_cnn")
    stale = row(page, "simple_cnn_aug")
    assert "out of date" in stale and "0.8456" in stale and 'class="num stale"' in stale
    failed = row(page, "mid_cnn")
    assert "failed" in failed and "0.8789" not in page  # never a failed run's score
    assert 'href="../notebooks/mid_cnn.FAILED.ipynb"' in failed and "mid_cnn_reader.html" not in page
    assert "not run yet" in row(page, "resnet50") and "not run yet" in row(page, "report")
    assert "needs" not in row(page, "resnet50")  # resnet50 reads simple_cnn, current
    assert re.search(r"not run yet \(needs simple_cnn_aug, mid_cnn, resnet50, modern, simple_cnn_grouped\)", row(page, "report"))
    assert "eda_reader.html" not in page and "eda.html" not in page  # removed pages: not linked
    assert "Submission:" not in page and "submission.csv" not in page
    assert "0.817" in row(page, "simple_cnn") and "0.856" in row(page, "mid_cnn")  # the original's, labelled
    assert "the original write-up's figure, on the Kaggle data" in page


def test_a_complete_study_tells_the_steps_with_gains_tta_confusions_and_the_submission(study):
    finished(study, "eda", kind="eda")
    finished(study, "simple_cnn", micro=0.80)
    finished(study, "simple_cnn_aug", micro=0.83)
    finished(study, "mid_cnn", micro=0.85)
    finished(study, "resnet50", micro=0.90, weights_used=None, weights_fallback_reason="IMAGENET1K_V1 unavailable")
    finished(study, "modern", micro=0.95, tta="flip")
    with open(study.run("modern").history_csv, "w") as f:
        f.write("epoch,val_micro_f1\n1,0.5\n2,0.9321\n3,0.91\n")
    finished(study, "report", kind="report")
    write_json(study.run("ensemble").metrics_json, {**metrics("ensemble", 0.96), "members": ["mid_cnn", "modern"],
                                                    "title": "Ensemble: MidCnn + modern"})
    write_text(study.evolution_csv, "run,test_micro_f1,test_tta\nsimple_cnn,0.7777,flip\nmodern,0.9444,flip\n"
               "ensemble,0.9555,flip\n")
    write_text(study.submission_csv, "Id,Expected\n")
    write_json(study.submission_json, {"run": "ensemble", "rows": 50, "tta": "flip", "demo": True,
                                       "answers": "/data/test_answers.csv",
                                       "score": {"micro_f1": 0.92, "macro_f1": 0.8, "errors": 4, "n_images": 50}})
    page = rendered(study)
    assert broken_links(study.reports) == {}
    sections = [page.index(s) for s in ("The recipe", "Beyond the recipe", "The ensemble and the submission")]
    assert sections == sorted(sections)
    assert page.index("<b>mid_cnn</b>") < page.index("Beyond the recipe") < page.index("<b>modern</b>")
    assert "+0.0300" in row(page, "simple_cnn_aug") and "over simple_cnn" in row(page, "simple_cnn_aug")
    assert "+0.0500" in row(page, "modern") and "over resnet50" in row(page, "modern")
    modern = row(page, "modern")
    assert "0.9500" in modern and "with flip TTA; 0.9321 without" in modern and "0.9444" in modern
    ensemble = row(page, "ensemble")
    assert "0.9600" in ensemble and "+0.0100" in ensemble and 'href="report_reader.html"' in ensemble
    assert "0.9555" in ensemble
    assert "(on the test answers, flip TTA)" in page
    assert "Kaggle 0.993" in row(page, "report") and "0.9200" in row(page, "report")
    assert "not a Kaggle score" in page
    assert "resnet50: resnet50 trained from random weights, not IMAGENET1K_V1 (IMAGENET1K_V1 unavailable" in page
    # where each run errs: readable at this size (its largest confusions), linked to the full figure
    assert "homer_simpson → lisa_simpson" in page and "predicts 3 of 3 classes" in page
    assert 'href="../figures/mid_cnn_confusion_matrix.png"' in page
    assert "<img" not in page.split("Where each run errs")[1]  # no 520 px thumbnails of a 42-class matrix


def test_a_profile_of_ones_own_has_no_simpsons_heading_and_no_original_figures(study):
    own = {**params.resolve("demo", "simple_cnn"), "dataset": "kaggle", "data_dir": "/data/birds"}
    finished(study, "simple_cnn", micro=0.7, parameters=own)
    page = index_page.build(study, ["simple_cnn"]).read_text()
    headings = " ".join(re.findall(r"<(?:title|h1|h2)>(.*?)</(?:title|h1|h2)>", page, re.S))
    assert "Simpsons" not in headings and "Image classification study" in headings
    assert "0.817" not in page and original.figure("simple_cnn", own) is None
    finished(study, "simple_cnn", micro=0.7, parameters={**own, "study_title": "Bird species study"})
    page = index_page.build(study, ["simple_cnn"]).read_text()
    assert "<h1>Bird species study</h1>" in page and "<title>Bird species study — demo</title>" in page


def test_the_study_title_is_a_validated_parameter_of_every_run():
    assert all("study_title" in schema for schema in params.SCHEMAS.values())
    assert params.resolve("demo", "eda")["study_title"] is None
    with pytest.raises(params.ParameterError, match="study_title"):
        params.check_value("study_title", params.EDA["study_title"], "  ")
    with pytest.raises(params.ParameterError, match="study_title"):
        params.check_value("study_title", params.EDA["study_title"], 3)


def test_the_original_figures_live_in_one_place():
    assert original.FIGURES["simple_cnn"]["val_micro_f1"] == 0.817
    assert original.FIGURES["simple_cnn_aug"]["val_micro_f1"] == 0.830
    assert original.FIGURES["mid_cnn"]["val_micro_f1"] == 0.856
    assert original.FIGURES["resnet50"] == {"val_micro_f1": 0.956, "kaggle": 0.993}
    assert original.figure("modern") is None
    assert original.figure("mid_cnn", {"dataset": "demo"}) and original.figure("mid_cnn", {"data_dir": "x"}) is None
    from pathlib import Path
    lib = Path(original.__file__).resolve().parent.parent
    pasted = [str(p.relative_to(lib)) for p in lib.rglob("*.py") if p.name != "original.py"
              and re.search(r"0\.8[135][0-9]|0\.956|0\.993", p.read_text())]
    notebooks = lib.parent / "notebooks"
    pasted += [p.name for p in notebooks.glob("*.ipynb")
               if re.search(r"0\.(817|830|856|956)", json.dumps(json.loads(p.read_text())["cells"]))]
    assert pasted == []


def test_top_confusions_read_the_confusion_matrix():
    met = metrics("x", 0.5)
    met["confusion_matrix"] = np.array([[0, 9, 0], [0, 8, 0], [0, 7, 0]]).tolist()
    assert index_page.predicted_classes(met) == 1
    assert index_page.top_confusions(met, 2) == [
        {"true": "bart_simpson", "predicted": "homer_simpson", "images": 9, "of": 9},
        {"true": "lisa_simpson", "predicted": "homer_simpson", "images": 7, "of": 7}]



def test_the_index_lists_each_sweep_with_its_best_point_and_links_its_page(study):
    assert "<h2>Sweeps</h2>" not in rendered(study)
    write_json(study.dir / "sweeps" / "mid_cnn_lr.json", {"name": "mid_cnn_lr", "run": "mid_cnn", "points": [
        {"run_name": "mid_cnn-aaaaaa", "val_micro_f1": 0.81, "status": "done"},
        {"run_name": "mid_cnn-bbbbbb", "val_micro_f1": 0.86, "status": "done"},
        {"run_name": "mid_cnn-cccccc", "status": "failed"}]})
    assert "<h2>Sweeps</h2>" not in rendered(study)  # no page written yet: nothing to link
    write_text(study.reports / "sweep_mid_cnn_lr.html", "<html></html>")
    page = rendered(study)
    assert '<a href="sweep_mid_cnn_lr.html">mid_cnn_lr</a>: run mid_cnn, 3 points, 1 failed; best mid_cnn-bbbbbb ' \
           '(val micro-F1 0.8600)' in page
    assert broken_links(study.reports) == {}


def test_a_run_that_fell_back_to_random_weights_never_reads_as_pretrained(study):
    finished(study, "resnet50", micro=0.15, weights_used=None, weights_fallback_reason="IMAGENET1K_V1 unavailable")
    tried = row(rendered(study), "resnet50")
    assert "random weights (IMAGENET1K_V1 could not be had)" in tried and "with IMAGENET1K_V1:" not in tried
