"""What a reader must know before the first figure of a page: the study's name, that the data is the drawn
demo stand-in, the original write-up's figure for the step (labelled as the original's), and that a
transfer run trains from random weights, with the reason, once. Every notebook shows ``page_notes`` near
its top; the index page uses the same words.

Text about the Kaggle data, the show or the original write-up is said only where the data is Kaggle's or
its drawn stand-in (``original.applies``); on a data folder of one's own (``data_dir``) the pages speak of
that data alone."""

from __future__ import annotations

import html
from typing import Mapping

from ..config.files import read_json
from ..config.paths import StudyPaths
from ..data.layout import DatasetNotFoundError, find_study_layout
from . import original

SIMPSONS_TITLE = "Simpsons character study"
OWN_DATA_TITLE = "Image classification study"

DEMO = ("Drawn demo data: these runs train on a procedural stand-in for the Kaggle images (the 42 class names, "
        "drawn characters), a few CPU epochs at 64–96 px. Its scores say nothing about The Simpsons, and the "
        "original write-up's figures, where shown, are on the Kaggle data: not comparable.")
NO_TEST_LABELS = "no test labels (only Kaggle scores the test set)"  # the Kaggle data
NO_ANSWERS = "no test labels (the profile names no answers file)"  # any other data without them
KAGGLE_REPORT = ("The Kaggle data has no test labels: only Kaggle scores the test set (`make submit` sends "
                 "submission.csv).")
DEMO_REPORT = (" The test scores below are against the generator's own labels of the drawn test images "
               "(its test_answers.csv), not a Kaggle score.")


def study_title(p: Mapping) -> str:
    """The study's name on its pages: ``study_title``, else the Simpsons study on the Kaggle data and its
    drawn stand-in, and a neutral name on data of one's own (``data_dir``)."""
    if p.get("study_title"):
        return str(p["study_title"])
    return SIMPSONS_TITLE if original.applies(p) else OWN_DATA_TITLE


def no_test_labels(p: Mapping) -> str:
    """Why no run has a test score, in the words that fit the data of ``p``."""
    return NO_TEST_LABELS if original.applies(p) else NO_ANSWERS


def modern_bet(p: Mapping):
    """Why the full profile bets on ConvNeXt-Tiny for the Kaggle data (notebook 04), as Markdown, shown on
    the Kaggle data and its drawn stand-in only (``original.applies``); None elsewhere (nothing shown)."""
    if not original.applies(p):
        return None
    from IPython.display import Markdown

    return Markdown(
        "## Why the full profile bets on ConvNeXt-Tiny\n\n"
        "On Kaggle, one test error costs about 0.001 of micro-F1: the original write-up's "
        f"{original.FIGURES['resnet50']['kaggle']:.3f} (its ResNet50 submission) is about seven errors, the "
        "public best (0.997-0.998, EfficientNet-B2/B4) two or three, and 0.998 or better allows at most two. The recipe leaves most of its "
        "network frozen on ImageNet features; the gap is closed by letting the whole of a stronger backbone adapt "
        "to cartoon images without overfitting 20,933 images. The full profile's `modern` run does that with "
        "ConvNeXt-Tiny (torchvision's `IMAGENET1K_V1`, 82.5 % ImageNet top-1 against ResNet50's 76.1 % and "
        "EfficientNet-B2's 80.6 %) at 224 px, the resolution its weights were made at and the one the other runs' "
        "image cache already holds; it is fine-tuned whole with the recipe ConvNeXt was itself trained with "
        "(AdamW, weight decay 0.05, warmup then cosine, label smoothing 0.1, MixUp/CutMix), plus layer-wise LR "
        "decay 0.7 and flip TTA. That is the bet; this repository has not run it on the Kaggle data, and only "
        "that run (or a Kaggle score) can confirm it.")


ARCH_NAMES = {"simple_cnn": "SimpleCnn (five conv blocks, no padding)",
              "mid_cnn": "MidCnn (padded conv blocks, BatchNorm1d and dropout in the classifier)"}


def describe_step(p: Mapping, metrics: Mapping | None = None) -> str:
    """What a training run tries, in one line, from its parameters (any profile's); with its ``metrics``, a run
    whose named weights could not be had (``weights_used: null``) says it trained from random weights."""
    if p.get("arch") == "transfer":
        weights = p.get("weights") or "random weights"
        if p.get("weights") and metrics is not None and "weights_used" in metrics and metrics["weights_used"] is None:
            weights = f"random weights ({p['weights']} could not be had)"
        trains = "the whole network" if p.get("finetune") == "full" else "the last stage and a new head"
        model = f"{p.get('backbone')} with {weights}: {trains} trained"
    else:
        model = ARCH_NAMES.get(p.get("arch"), str(p.get("arch")))
    extras = []
    if p.get("augment"):
        source = (f" of {p['worst_from_run']}" if p.get("worst_from_run") else "")
        extras.append(f"per-class augmentation (strong for the {p['worst_k']} weakest classes{source})"
                      if p.get("worst_k") else "per-class augmentation")
    else:
        extras.append("no augmentation")
    if p.get("lr_decay", 1.0) != 1.0:
        extras.append(f"layer-wise LR decay {p['lr_decay']:g}")
    if p.get("scheduler") not in (None, "none"):
        extras.append(str(p["scheduler"]).replace("_", " + "))
    if p.get("label_smoothing"):
        extras.append(f"label smoothing {p['label_smoothing']:g}")
    mixing = [f"{name} {p[key]:g}" for name, key in (("MixUp", "mixup_alpha"), ("CutMix", "cutmix_alpha")) if p.get(key)]
    if mixing:
        extras.append(" / ".join(mixing))
    if p.get("tta") not in (None, "none"):
        extras.append(f"{p['tta']} TTA")
    return f"{model}; {', '.join(extras)}; {p.get('epochs')} epochs at {p.get('image_size')} px"


def random_weights_note(run: str, p: Mapping, reason: str) -> str:
    return (f"{run}: {p.get('backbone')} trained from random weights, not {p.get('weights')} ({reason}; "
            "weights_fallback: random): it shows the mechanics of fine-tuning, not transfer learning.")


class Notes(list):
    """Lines shown as notes at the top of a page (HTML in notebooks and reports, plain text elsewhere)."""

    def _repr_html_(self) -> str:
        return "".join(f'<p style="background:#fff4d6;padding:.5em 1em;border-left:4px solid #e0a800;margin:.3em 0">'
                       f"{html.escape(line)}</p>" for line in self)

    def __repr__(self) -> str:
        return "\n".join(self) or "(no notes)"


def _is_demo(p: Mapping) -> bool:
    try:
        return find_study_layout(p).is_demo
    except (DatasetNotFoundError, OSError):
        return p.get("dataset") == "demo" and not p.get("data_dir")


def page_notes(p) -> Notes:
    """The notes of run ``p``'s page: demo data; the original write-up's figure for this step; for a
    transfer run whose named weights cannot be had (``weights_fallback: random``), that it trains from
    random weights and why; for the report, which of its runs did (their own pages say why)."""
    notes = Notes()
    demo = _is_demo(p)
    if demo:
        notes.append(DEMO + (DEMO_REPORT if p.kind == "report" and p.get("answers") else ""))
    elif p.kind == "report" and not p.get("answers") and original.applies(p):
        notes.append(KAGGLE_REPORT)
    said = original.describe(p["run"], p)
    if p.kind == "train" and said:
        notes.append(f"The original write-up's figure for this step: {said}. It is not this run's score"
                     + (" and is not comparable with the demo data's." if demo else "."))
    if p.kind == "train" and p.get("arch") == "transfer" and p.get("weights") and p.get("weights_fallback") == "random":
        from ..training.models import weights_unavailable  # torch: transfer runs only

        reason = weights_unavailable(p["backbone"], p["weights"])
        if reason:
            notes.append(random_weights_note(p["run"], p, reason))
    if p.kind == "report":
        study = StudyPaths(p["profile"])
        random = [r for r in p.get("runs", []) if study.run(r).metrics_json.is_file()
                  and _random_weights(read_json(study.run(r).metrics_json))]
        if random:
            notes.append(f"{', '.join(random)}: trained from random weights (their pages say why); they show the "
                         "mechanics of fine-tuning, not transfer learning. Their titles carry the tag "
                         "\"(random weights)\".")
    return notes


def _random_weights(metrics: Mapping) -> bool:
    p = metrics.get("params", {})
    return p.get("arch") == "transfer" and not metrics.get("weights_used", p.get("weights"))
