"""A profile of one's own data speaks of that data alone: on none of its pages (the index, and every run's
page with and without code) is there text about the Kaggle data, the show or the original write-up, which
the Kaggle and demo profiles keep. The same study's pages also say what its sample and its near-duplicates
measure: the exploration's size table names its sample, a near-duplicate pair that joins two classes is
called likely a false match, the report puts no more of a split difference down to near-duplicates than
the crossing images can explain, and "no test labels" is said once, not in every row.

One small study of one's own (a copy of the tiny drawn data laid out as a folder of one's own, without the
generator's files, one image copied into another class), every notebook once, one epoch each."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from simpsons_lib.config import params, paths
from simpsons_lib.config.files import write_json, write_text
from simpsons_lib.data.layout import COPIES_FILE
from simpsons_lib.reporting import index_page, notes

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# Words about the Kaggle data, the show or the original write-up (case-insensitive, on the visible text).
FOREIGN = [r"kaggle", r"\bthe show\b", r"show's", r"write-up", r"character's box", r"convnext", r"20,933",
           r"cartoon", r"\bthe simpsons\b", r"simpsons character"]

PROFILE = {
    "_common.yaml": "data_dir: {data}\nseed: 0\nval_fraction: 0.25\ndevice: cpu\n",
    "eda.yaml": "notebook: 00_eda\nimage_stats_sample: 50\ngrid_classes: 3\ngrid_per_class: 2\n",
    "simple_cnn.yaml": "notebook: 01_simple_cnn\narch: simple_cnn\naugment: false\nimage_size: 96\nepochs: 1\n"
                       "gallery_size: 6\n",
    "simple_cnn_grouped.yaml": "notebook: 01_simple_cnn\narch: simple_cnn\naugment: false\nimage_size: 96\n"
                               "epochs: 1\ngallery_size: 6\nsplit: grouped\n",
    "mid_cnn.yaml": "notebook: 02_mid_cnn\narch: mid_cnn\nworst_from_run: simple_cnn\nworst_k: 5\nimage_size: 96\n"
                    "epochs: 1\ngallery_size: 6\n",
    "transfer.yaml": "notebook: 03_resnet50\nbackbone: mobilenet_v2\nweights: null\naugment: false\nimage_size: 32\n"
                     "epochs: 1\ngallery_size: 6\n",
    "modern.yaml": "notebook: 04_modern_finetune\nbackbone: mobilenet_v2\nweights: null\nfinetune: full\n"
                   "augment: false\nimage_size: 32\nepochs: 1\ngallery_size: 6\n",
    "report.yaml": "notebook: 05_report\nruns: [simple_cnn, mid_cnn, transfer, modern]\n"
                   "split_runs: [simple_cnn_grouped]\nsubmission_tta: none\ngallery_size: 6\n",
}
RUNS = ["eda", "simple_cnn", "simple_cnn_grouped", "mid_cnn", "transfer", "modern", "report"]


def own_copy(demo: Path, target: Path) -> Path:
    """The drawn data as a folder of one's own: train/<class>/, test/, sample_submission.csv, without the
    generator's marker, boxes, planted-copy list or test answers; one image copied into another class (a
    near-duplicate pair that joins two classes)."""
    classes = sorted(p for p in (demo / "train" / "simpsons_dataset").iterdir() if p.is_dir())
    for folder in classes:
        shutil.copytree(folder, target / "train" / folder.name)
    shutil.copytree(demo / "testset" / "testset", target / "test")
    shutil.copy(demo / "sample_submission.csv", target / "sample_submission.csv")
    copies = pd.read_csv(demo / COPIES_FILE)
    planted = set(copies["path"]) | set(copies["copy_of"])  # an image with no copy of its own: one pair
    source = next(p for p in sorted(classes[0].glob("*.jpg")) if p.relative_to(demo).as_posix() not in planted)
    shutil.copy(source, target / "train" / classes[1].name / "copied_from_another_class.jpg")
    return target


class _Text(HTMLParser):
    """The visible text of a page: no script, style or tag."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(page: Path) -> str:
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return html.unescape(" ".join(parser.parts))


def foreign_words(text: str) -> list[str]:
    return [m.group(0) for pattern in FOREIGN for m in re.finditer(pattern, text, re.I)]


@pytest.fixture(scope="module")
def own(tiny_demo, tmp_path_factory):
    """``make pipeline`` of a profile of one's own, every notebook once, one epoch each at small sizes."""
    root = tmp_path_factory.mktemp("own")
    data = own_copy(tiny_demo, root / "pictures")
    mine = root / "params" / "mine"
    mine.mkdir(parents=True)
    for name, text in PROFILE.items():
        (mine / name).write_text(text.format(data=data))
    stamp = root / "setup-stamp"
    stamp.touch()
    env = {**os.environ, "SIMPSONS_OUTPUTS_DIR": str(root / "outputs"), "SIMPSONS_DATA_DIR": str(root / "data"),
           "SIMPSONS_CACHE_DIR": str(root / "cache")}
    for name in ("SIMPSONS_PROGRESS", "SIMPSONS_PARAMS_DIR", "SIMPSONS_PIPELINE_LOCK", "MAKEFLAGS", "MAKELEVEL",
                 "MFLAGS", "MAKEOVERRIDES"):
        env.pop(name, None)
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "pipeline", "PROFILE=mine",
                             f"PARAMS_ROOT={root / 'params'}", f"PY={sys.executable}", f"STAMP={stamp}"],
                            env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "outputs" / "mine" / "reports"


@pytest.mark.timeout(1800)
def test_no_page_of_a_profile_of_ones_own_speaks_of_kaggle_the_show_or_the_write_up(own):
    pages = sorted(own.glob("*.html"))
    expected = {"index.html", *(f"{run}.html" for run in RUNS), *(f"{run}_reader.html" for run in RUNS)}
    assert expected <= {p.name for p in pages}
    found = {p.name: foreign_words(visible_text(p)) for p in pages}
    assert {name: words for name, words in found.items() if words} == {}
    index = own / "index.html"
    assert "original write-up" not in index.read_text() and '<col style="width:31%">' not in index.read_text()


def test_the_exploration_says_its_size_table_is_a_sample(own):
    text = visible_text(own / "eda_reader.html")
    total = len(list((own.parent.parent.parent / "pictures" / "train").rglob("*.jpg")))
    assert f"Image sizes: 50 of {total} training images sampled" in text
    assert f"Formats and colour modes: 50 of {total} training images sampled" in text
    sizes = (own / "eda_reader.html").read_text().split("Image sizes: 50 of", 1)[1].split("</table>", 1)[0]
    assert not re.search(r">\s*count\s*<", sizes)  # no bare "count 50" row, as if it were every image


def test_the_near_duplicate_words_call_a_pair_across_classes_a_false_match_and_bound_the_split_gap(own):
    eda = visible_text(own / "eda_reader.html")
    assert re.search(r"1 pair of \d+ joins two different classes: likely a false match", eda)
    report = visible_text(own / "report_reader.html")
    for text in (eda, report):
        assert not re.search(r"\b1 (groups|pairs)\b", text)
        assert not re.search(r"\b1 of \d+ validation images (\(\d+%\) )?have\b", text)
    assert "the random split adds" not in report
    line = next((line for line in report.splitlines() if "a difference of" in line), None)
    assert line, report[-3000:]
    assert ("Near-duplicates can explain at most" in line or "No validation image of the random split" in line
            or "does not score higher" in line), line


def test_no_test_labels_is_said_once_on_the_report_and_the_index(own):
    report = visible_text(own / "report_reader.html")
    assert report.count(notes.NO_ANSWERS) == 1  # the evolution table's caption, not in every row
    table = (own / "report_reader.html").read_text().split(notes.NO_ANSWERS, 1)[1].split("</table>", 1)[0]
    assert "no test labels" not in table and "–" in table
    evolution = pd.read_csv(own.parent / "metrics" / "evolution.csv")
    assert evolution["test_micro_f1"].isna().all()
    index = visible_text(own / "index.html")
    assert index.count(notes.NO_ANSWERS) == 1


# --- the Kaggle and demo profiles keep their words ------------------------------------------------

def _study(root: Path, profile: str, p_extra: dict) -> paths.StudyPaths:
    """A finished two-run study of ``profile``'s parameters (with ``p_extra``) and its index page."""
    study = paths.StudyPaths(profile, root / profile)
    for run, micro in (("simple_cnn", 0.81), ("mid_cnn", 0.86)):
        rp = study.make_dirs().run(run)
        p = {**params.resolve("demo", run), **p_extra}
        notebook = f"notebooks/{params.run_notebook('demo', run).name}"
        write_json(rp.manifest, {"run": run, "kind": "train", "notebook": notebook, "parameters": p, "keys": None,
                                 "data": {"demo": False}, "started": "2026-01-01"})
        write_text(rp.notebook, "{}")
        write_json(rp.metrics_json, {"run": run, "title": run, "micro_f1": micro, "macro_f1": micro - 0.1,
                                     "accuracy": micro, "classes": ["a", "b"], "confusion_matrix": [[3, 1], [0, 4]],
                                     "best_epoch": 1, "tta": "none"})
    write_text(study.evolution_csv, "run,test_micro_f1,test_macro_f1\nsimple_cnn,,\nmid_cnn,,\n")
    index_page.build(study, ["simple_cnn", "mid_cnn"])
    return study


def test_the_kaggle_and_demo_pages_keep_what_a_page_of_ones_own_leaves_out(tmp_path):
    kaggle = visible_text(_study(tmp_path, "demo", {"dataset": "kaggle", "answers": None}).index_html)
    own = visible_text(_study(tmp_path, "mine", {"data_dir": str(tmp_path / "pictures"), "answers": None}).index_html)
    assert "the original write-up's figure, on the Kaggle data" in kaggle and "Kaggle's metric" in kaggle
    assert "val 0.817" in kaggle and notes.NO_TEST_LABELS in kaggle
    assert foreign_words(own) == [] and notes.NO_ANSWERS in own and "0.817" not in own
    demo_modern, own_modern = (params.resolve("demo", "modern"),
                               params.resolve("demo", "modern", {"data_dir": str(tmp_path / "pictures")}))
    assert "ConvNeXt-Tiny" in notes.modern_bet(demo_modern).data and "20,933" in notes.modern_bet(demo_modern).data
    assert notes.modern_bet(own_modern) is None
    report = params.resolve("full", "report")
    assert notes.KAGGLE_REPORT in notes.page_notes(report)
    assert notes.KAGGLE_REPORT not in notes.page_notes(params.resolve("full", "report", {"data_dir": "pictures"}))
