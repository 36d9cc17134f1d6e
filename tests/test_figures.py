"""Every figure in a document comes from a results file, and a test holds the document to the file.

A figure a document quotes (a score, a time, a count of images, pairs or groups, a share) sits between
``<!--fig:KEY-->`` markers whose value equals its results file (``reporting.figures``: the demo's
``docs/results/demo.csv``, the original write-up's figures, ``benchmarks/RESULTS.md``), or it is on the small
allow-list below, each entry saying why it is no measured result. The documents: the README, docs/ (but the
parameters page, generated from the schema) and the notebooks' prose; the benchmarks' record is a source,
and what it quotes of the demo is marked too."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd

from simpsons_lib.config import files, params, paths
from simpsons_lib.data import near_duplicates
from simpsons_lib.reporting import figures, original, tables

REPO = Path(__file__).resolve().parent.parent

# What looks like a result: a score or share with 3+ decimals (0.944), a number with a unit of time, rate,
# memory or share (10.4 s, 812 img/s, 2.42 GiB, 24 %), a count of images, pairs, groups or copies (219
# images, 454 of the 3,389), and "N of M" or "N against M".
FIGURE = re.compile(r"""(?<![\w.,/-])(?:
    0\.\d{3,}(?!\d)
  | \d[\d,]*(?:\.\d+)?\s?(?:%|img/s|ms|s|min|minutes|seconds|hours|GiB)(?![\w/])
  | \d[\d,]*\s(?:[a-z-]+\s)?(?:images|pairs|groups|copies)\b
  | \d[\d,]*\s(?:of|against)\s(?:the\s)?\d[\d,]*
)""", re.X)

# (document, the figure in a few words of its context): why it is no measured result
ALLOWED = {
    ("README.md", "20,933 training images"): "the Kaggle data's size, a fact of the dataset",
    ("README.md", "991 unlabeled test images"): "the Kaggle data's size, a fact of the dataset",
    ("docs/commands.md", "20,933 + 991 images"): "the Kaggle data's size, which the stand-in copies",
    ("docs/near-duplicates.md", "(20,933 + 991 images"): "the Kaggle data's size, which the stand-in copies",
    ("docs/near-duplicates.md", "12 % of the training images are near-copies of an earlier image of their class (up "
     "to 2 % cropped off each edge, resized back, re-encoded at a JPEG quality drawn like every image's) and 10 % "
     "of the test images"): "what the demo generator plants: its settings",
    ("docs/faults.md", "more than 4 GiB"): "a limit the unzip sets",
    ("docs/faults.md", "300 classes of 3 images"): "a case the split is tested on",
    ("docs/platforms.md", "25 to 35 minutes"): "an estimate; the page says how it is made",
    ("docs/study.md", "for ≥ 0.998 on Kaggle"): "a target",
    ("docs/study.md", "e.g. 0.999"): "a parameter's value",
    ("docs/study.md", "translation up to 15 %"): "the recipe's augmentation policy",
}


def prose(text: str) -> str:
    """What a reader reads as prose: the text without code blocks, code spans and marked figures."""
    text = re.sub(r"(?ms)^```.*?^```", "", text)
    text = re.sub(r"`[^`]*`", "", text)
    return re.sub(r"\s+", " ", figures.MARKER.sub("", text))


def documents(root: Path) -> dict[str, str]:
    """Each document's prose by its path: the README, docs/ (not the generated parameters page), the
    notebooks' markdown cells."""
    out = {str(p.relative_to(root)): prose(p.read_text(encoding="utf-8"))
           for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.name != "parameters.md"}
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        out[str(nb.relative_to(root))] = prose("\n\n".join("".join(c["source"]) for c in cells
                                                             if c["cell_type"] == "markdown"))
    return out


def unsourced(root: Path = REPO, allowed: dict = ALLOWED) -> list[str]:
    """``document: figure`` for each figure-looking number that is neither marked nor allowed."""
    found = []
    for name, text in documents(root).items():
        for doc, context in allowed:
            if doc == name:
                assert context in text, f"{name}: an allow-list entry no longer there (remove it): {context!r}"
                text = text.replace(context, "")
        found += [f"{name}: {m.group(0)}" for m in FIGURE.finditer(text)]
    return found


def test_every_figure_in_a_document_is_marked_with_its_results_file_or_allowed():
    assert unsourced() == [], "quote each from a results file: docs/study.md#every-figure-from-a-results-file"


def test_every_marked_figure_equals_its_results_file():
    assert figures.check(REPO) == []
    assert figures.main(["--check"]) == 0


def test_the_documents_quote_the_demo_the_recipe_and_the_benchmarks():
    keys = [m["key"] for doc in figures.documents(REPO) for m in figures.MARKER.finditer(doc.read_text(encoding="utf-8"))]
    results = figures.read_results(REPO)
    assert "bench" in keys and "recipe.resnet50.kaggle" in keys
    assert {"splits.simple_cnn.random_micro_f1", "splits.simple_cnn.grouped_micro_f1",
            "splits.simple_cnn.micro_f1_difference_random_grouped", "validation.simple_cnn.micro_f1_on_the_others"} <= set(keys)
    assert results["recipe.resnet50.kaggle"] == f"{original.FIGURES['resnet50']['kaggle']:.3f}"


def test_the_results_file_is_one_make_demo_run_and_agrees_with_itself():
    r = figures.read_results(REPO)
    assert r["made.command"] == figures.COMMAND and re.fullmatch(r"[0-9a-f]{40}", r["made.commit"])
    assert r["made.finished"][:4] == "2026" and r["made.machine"] and r["made.torch"]
    number = lambda key: float(r[key].replace(",", ""))  # noqa: E731
    assert r["splits.simple_cnn.random_micro_f1"] == r["evolution.simple_cnn.micro_f1"]
    assert abs(number("splits.simple_cnn.random_micro_f1") - number("splits.simple_cnn.grouped_micro_f1")
               - number("splits.simple_cnn.micro_f1_difference_random_grouped")) <= 1e-4
    assert r["validation.simple_cnn.validation_images"] == r["nd.simple_cnn.val_images"]
    assert r["splits.simple_cnn.grouped_validation_images"] == r["nd.simple_cnn_grouped.val_images"]
    assert number("validation.simple_cnn.one_image") == round(1 / number("nd.simple_cnn.val_images"), 4)
    assert number("nd.simple_cnn_grouped.groups_across_split") == 0  # the grouped split keeps each group whole
    assert number("eda.planted_copies_found_in_their_frame_s_group") <= number("eda.planted_copies_demo_data")


def _repo_copy(root: Path) -> Path:
    """The documents, the benchmarks' record and the results file, as a repository holds them."""
    for part in ("docs", "notebooks"):
        shutil.copytree(REPO / part, root / part)
    for part in ("README.md", figures.BENCH):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / part, root / part)
    return root


def test_a_hand_typed_figure_or_a_stale_one_is_found(tmp_path):
    root = _repo_copy(tmp_path / "repo")
    assert unsourced(root) == [] and figures.check(root) == []
    study = root / "docs" / "study.md"
    study.write_text(study.read_text() + "\nThe random split flatters by 0.036 on the other 219 images, in 9 s;"
                     " 48 of 267 right.\n")
    assert unsourced(root) == ["docs/study.md: 0.036", "docs/study.md: 219 images", "docs/study.md: 9 s",
                               "docs/study.md: 48 of 267"]
    good = figures.read_results(REPO)["splits.simple_cnn.random_micro_f1"]
    readme = root / "README.md"
    marked = readme.read_text()
    readme.write_text(marked.replace("-->0.856<", "-->0.857<") + f"""
SimpleCnn <!--fig:splits.simple_cnn.random_micro_f1-->0.951<!--/fig-->, the audit <!--fig:bench-->10 s<!--/fig-->,
<!--fig:bench-->563<!--/fig--> copies, <!--fig:no.such-->1<!--/fig-->, <!--fig:bench-->10.4 s<!--/fig--> ({good}).
""")
    wrong = figures.check(root)
    assert [w.split(" is ")[0] for w in wrong] == ["README.md: recipe.mid_cnn.val_micro_f1",
                                                  "README.md: splits.simple_cnn.random_micro_f1", "README.md: bench",
                                                  "README.md: bench", "README.md: no.such"]
    assert f"its results file says '{good}'" in wrong[1] and "benchmarks/RESULTS.md" in wrong[2]
    figures.rewrite(root)  # every marked figure back to its file's; a benchmark's stays as written
    assert [w.split(" is ")[0] for w in figures.check(root)] == ["README.md: bench", "README.md: bench",
                                                                 "README.md: no.such"]
    assert figures.main(["--check", "--root", str(root)]) == 1


def finished_demo(study: paths.StudyPaths) -> dict:
    """A finished demo study's results files, in the formats its runs and report write them: each run of the
    report's ``runs`` and ``split_runs`` (metrics with their near-duplicate audit, validation predictions),
    the EDA's audit table, the evolution table and the report's manifest. Returns the figures it holds."""
    report = params.resolve("demo", "report")
    study.make_dirs()
    metrics = {}
    for i, run in enumerate([*report["runs"], *report["split_runs"]]):
        p = params.resolve("demo", run)
        val = 260 + i
        twins = 0 if p["split"] == "grouped" else 40 + i
        correct = [True] * (val - 20 - i) + [False] * (20 + i)  # the twins first: all right
        files.write_csv(study.run(run).predictions_csv, pd.DataFrame(
            {"correct": correct, "near_duplicate_in_train": [k < twins for k in range(val)]}))
        micro = sum(correct) / val
        metrics[run] = {"run": run, "title": run, "micro_f1": micro, "macro_f1": micro - 0.2, "accuracy": micro,
                        "params": dict(p), "split": p["split"], "epochs_trained": 2, "train_seconds": 12.25,
                        "per_class": {"a": {"f1": 0.5, "support": val - 100}, "b": {"f1": 0.5, "support": 100}},
                        "near_duplicates": {"training_images": 1066 - val, "near_duplicate_pairs": 138, "groups": 113,
                                            "groups_with_several_classes": 0, "groups_across_split": twins and 46,
                                            "val_images": val, "val_images_with_near_duplicate_in_train": twins}}
        files.write_json(study.run(run).metrics_json, metrics[run])
    files.write_csv(study.evolution_csv, tables.metrics_table({r: metrics[r] for r in report["runs"]}))
    tests = {"test_images": 50, "test_images_with_near_duplicate_in_train": 3}  # the EDA's audit has the test set
    audit = {"random": {**metrics["simple_cnn"]["near_duplicates"], **tests},
             "grouped": {**metrics["simple_cnn_grouped"]["near_duplicates"], **tests},
             "planted": {"planted_copies": 125, "found_with_their_frame": 124, "false_pairs": 0}}
    files.write_csv(study.metrics / "eda_near_duplicates.csv", near_duplicates.audit_table(audit), index=True)
    files.write_json(study.run("report").manifest, {"finished": "2026-12-06T21:00:00", "device": "cpu",
                                                    "git": {"commit": "a" * 40}, "packages": {"torch": "2.14.1"}})
    return metrics


def test_make_figures_copies_a_finished_demo_into_the_results_file_and_every_quote(tmp_path, capsys):
    root = _repo_copy(tmp_path / "repo")
    study = paths.StudyPaths("demo")
    assert figures.main(["--write", "--root", str(root)]) == 1  # no finished study: one line, nothing written
    assert capsys.readouterr().err.count("\n") == 1
    assert (root / figures.RESULTS).read_text() == (REPO / figures.RESULTS).read_text()
    metrics = finished_demo(study)
    assert figures.main(["--write", "--root", str(root)]) == 0, capsys.readouterr().err
    r = figures.read_results(root)
    random, grouped = metrics["simple_cnn"], metrics["simple_cnn_grouped"]
    assert r["splits.simple_cnn.random_micro_f1"] == f"{random['micro_f1']:.4f}" == r["evolution.simple_cnn.micro_f1"]
    assert r["splits.simple_cnn.micro_f1_difference_random_grouped"] == f"{random['micro_f1'] - grouped['micro_f1']:.4f}"
    assert r["validation.simple_cnn.micro_f1_on_those"] == "1.0000"
    assert r["validation.simple_cnn.micro_f1_on_the_others"] == f"{(random['micro_f1'] * 260 - 40) / 220:.4f}"
    assert r["nd.simple_cnn.training_images"] == "806" and r["eda.planted_copies_demo_data"] == "125"
    assert r["made.commit"] == "a" * 40 and r["made.torch"] == "2.14.1"
    page = (root / "docs" / "near-duplicates.md").read_text()
    assert f"<!--fig:splits.simple_cnn.random_micro_f1-->{random['micro_f1']:.4f}<!--/fig-->" in page
    assert "<!--fig:eda.planted_copies_found_in_their_frame_s_group-->124<!--/fig-->" in page
    assert figures.check(root) == [] and unsourced(root) == []
    assert (root / "README.md").read_text() == (REPO / "README.md").read_text()  # the recipe's stay
