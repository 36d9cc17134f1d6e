"""The report's evolution, as a reader sees it: its table (whole titles, integer epochs, no index column, no
NaN) and its words (each run against the step before, the fallback reason never repeated)."""

import re

from simpsons_lib.reporting import narrative, tables


def run_metrics(run, micro, title, **extra):
    return {"run": run, "title": title, "micro_f1": micro, "macro_f1": micro / 2, "accuracy": micro,
            "epochs_trained": 10, "train_seconds": 15.354, "last_epoch_val_micro_f1": micro,
            "last_epoch_val_macro_f1": micro / 2, **extra}


RUNS = {
    "simple_cnn": run_metrics("simple_cnn", 0.80, "SimpleCnn"),
    "mid_cnn": run_metrics("mid_cnn", 0.85, "MidCnn + augmentation"),
    "resnet50": run_metrics("resnet50", 0.83, "ResNet50 layer4 + head, a long title that pandas would cut (random weights)",
                            weights_used=None, weights_fallback_reason="IMAGENET1K_V1 not in TORCH_HOME and not downloadable",
                            params={"arch": "transfer", "backbone": "resnet50", "weights": "IMAGENET1K_V1"}),
    "ensemble": {**run_metrics("ensemble", 0.88, "Ensemble: SimpleCnn + MidCnn + augmentation"),
                 "epochs_trained": None, "train_seconds": None, "members": ["simple_cnn", "mid_cnn"]},
}


def test_the_evolution_table_shows_whole_titles_integer_epochs_and_no_index_or_nan():
    html = tables.show(tables.metrics_table(RUNS, {})).to_html()
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    assert "ResNet50 layer4 + head, a long title that pandas would cut (random weights)" in cells
    assert "10" in cells and "10.0" not in cells and "NaN" not in html and "nan" not in html
    assert "–" in cells  # the ensemble's epochs
    assert "0.8000" in cells and "15.4" in cells
    assert "row_heading" not in html  # no pandas index column
    assert not [c for c in cells if "no test labels" in c]  # said once, in the caption, not in every row
    assert html.count("no test labels") == 1 and re.search(r"<caption>[^<]*no test labels", html)


def test_the_evolution_in_words_measures_each_step_against_the_one_before():
    words = narrative.describe_runs(RUNS)
    assert "MidCnn + augmentation: micro-F1 0.850, macro-F1 0.425 (+0.050 micro-F1 over simple_cnn, the step before)" in words
    assert "(-0.020 micro-F1 over mid_cnn, the step before)" in words
    assert "(+0.030 micro-F1 over the best single run, mid_cnn)" in words
    assert "against simple_cnn" not in words
    assert "not downloadable" not in words and words.count("resnet50 ran without pretrained weights") == 1
