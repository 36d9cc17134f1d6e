"""Figures (matplotlib/seaborn), one function each. Each function returns a figure; ``io_utils.save_figure`` writes a PNG."""

from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..config.files import save_figure
from ..data.layout import load_rgb
from ..training.class_scores import is_validated

sns.set_theme(style="whitegrid", context="notebook")

NOT_VALIDATED = "#c8c8c8"  # classes with no validation image: no F1 to show


def class_distribution(counts: pd.Series, title: str = "Training images per class"):
    """Horizontal bars, largest class first (the imbalance at a glance)."""
    counts = counts.sort_values(ascending=True)
    fig, ax = plt.subplots(figsize=(8, max(4, 0.22 * len(counts))))
    ax.barh(counts.index, counts.values, color=sns.color_palette("crest", len(counts)))
    ax.set_xlabel("images")
    ax.set_title(f"{title} (max/min = {counts.max() / max(1, counts.min()):.0f}x)")
    for y, v in enumerate(counts.values):
        ax.text(v, y, f" {v}", va="center", fontsize=7)
    fig.tight_layout()
    return fig


def split_distribution(summary: pd.DataFrame):
    """Train and validation counts per class (``StudyData.summary()``)."""
    frame = summary[["train", "val"]].iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, max(4, 0.22 * len(frame))))
    frame.plot.barh(stacked=True, ax=ax, color=["#4c72b0", "#dd8452"])
    ax.set_xlabel("images")
    ax.set_title("Stratified split: train and validation images per class")
    fig.tight_layout()
    return fig


def image_grid(paths: Sequence[str], titles: Sequence[str] | None = None, ncols: int = 6, size: float = 2.0,
               title: str | None = None):
    """Images in a grid, each converted to RGB, with optional captions."""
    n = len(paths)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.05), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, p) in enumerate(zip(axes.flat, paths)):
        ax.imshow(load_rgb(p))
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def near_duplicate_pairs(pairs: pd.DataFrame, max_distance: int, n: int = 12, title: str | None = None,
                         test: bool = False):
    """The ``n`` closest pairs (``NearDuplicates.closest_pairs``) side by side, each captioned with its class
    (or, ``test``, the test image's Id) and its distance in bits, under a title naming the threshold; a
    training pair that joins two classes is captioned as likely a false match (a copy keeps its class)."""
    pairs = pairs.head(n)
    if pairs.empty:
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, f"no pair within {max_distance} bits", ha="center", va="center")
        return fig
    paths, titles = [], []
    for row in pairs.itertuples():
        paths += [row.path_a, row.path_b]
        false = "" if test or row.class_a == row.class_b else "\nanother class: likely a false match"
        titles += [f"{row.class_a}", f"{row.class_b} · {row.distance} bits{false}"]
    return image_grid(paths, titles, ncols=6, size=1.8,
                      title=title or f"Closest pairs (near-duplicates: at most {max_distance} bits apart)")


def sample_grid(index: pd.DataFrame, classes: Sequence[str], per_class: int = 4, seed: int = 0):
    """``per_class`` random images of each class in ``classes`` (one row per class)."""
    rows = []
    for c in classes:
        sub = index[index["class_name"] == c]
        rows.append(sub.sample(min(per_class, len(sub)), random_state=seed))
    frame = pd.concat(rows)
    return image_grid(list(frame["path"]), list(frame["class_name"]), ncols=per_class, size=1.8)


def image_size_scatter(stats: pd.DataFrame):
    """Width against height of the (sampled) images, with their marginal histograms."""
    grid = sns.jointplot(data=stats, x="width", y="height", kind="scatter", height=5, alpha=0.4, s=12)
    grid.figure.suptitle("Image sizes (pixels)", y=1.02)
    return grid.figure


def learning_curves(history: pd.DataFrame, title: str = ""):
    """Loss and F1 per epoch, train against validation; under fp16, the steps the gradient scaler skipped
    (the history's ``skipped_steps``) are counted in the loss panel's title."""
    h = history.reset_index() if "epoch" not in history.columns else history
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(h["epoch"], h["train_loss"], "o-", label="train")
    ax1.plot(h["epoch"], h["val_loss"], "o-", label="validation")
    skipped = int(h["skipped_steps"].sum()) if "skipped_steps" in h else None
    ax1.set(xlabel="epoch", ylabel="cross-entropy",
            title="Loss" if skipped is None else f"Loss (fp16: {skipped} step{'s' * (skipped != 1)} skipped)")
    ax1.legend()
    ax2.plot(h["epoch"], h["train_accuracy"], "o-", label="train accuracy")
    ax2.plot(h["epoch"], h["val_micro_f1"], "o-", label="val micro-F1")
    ax2.plot(h["epoch"], h["val_macro_f1"], "o-", label="val macro-F1")
    ax2.set(xlabel="epoch", ylim=(0, 1.02), title="Quality")
    ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(metrics: dict, normalized: bool = True, title: str | None = None):
    """The confusion matrix with class names on both axes; colours row-normalised (recall per class)
    so rare classes are as visible as common ones; counts written in the off-diagonal cells."""
    classes = metrics["classes"]
    counts = np.asarray(metrics["confusion_matrix"])
    colours = np.asarray(metrics["confusion_matrix_normalized"]) if normalized else counts
    n = len(classes)
    side = max(6, 0.32 * n + 2)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    annot = np.where((counts > 0), counts.astype(str), "")
    sns.heatmap(colours, ax=ax, cmap="rocket_r", vmin=0, vmax=1 if normalized else None, square=True,
                annot=annot, fmt="", annot_kws={"fontsize": 6}, xticklabels=classes, yticklabels=classes,
                cbar_kws={"label": "share of the true class" if normalized else "images", "shrink": 0.6},
                linewidths=0.3, linecolor="#eeeeee")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(labelsize=7)
    unvalidated = set(metrics.get("unvalidated_classes", ()))
    for label in ax.get_yticklabels():  # rows with no validation image: greyed, nothing to score
        if label.get_text() in unvalidated:
            label.set_color("#999999")
    ax.set_title(title or f"Confusion matrix (validation, micro-F1 {metrics['micro_f1']:.3f})")
    fig.tight_layout()
    return fig


def per_class_f1(metrics: dict, title: str | None = None):
    """Validation F1 of every class, worst on top, with its support; classes with no validation image
    (too rare to split) at the bottom in grey, marked "not validated" (they have no F1, not an F1 of 0)."""
    per_class = metrics["per_class"]
    scored = sorted((c for c, v in per_class.items() if is_validated(v)), key=lambda c: (per_class[c]["f1"], c))
    unscored = sorted(c for c, v in per_class.items() if not is_validated(v))
    names = scored + unscored
    f1 = np.array([float(per_class[c]["f1"]) for c in scored])
    fig, ax = plt.subplots(figsize=(8, max(4, 0.22 * len(names))))
    ax.barh(range(len(scored)), f1, color=sns.color_palette("RdYlGn", as_cmap=True)(f1))
    for y, name in enumerate(scored):
        ax.text(f1[y], y, f" {f1[y]:.2f} (n={int(per_class[name]['support'])})", va="center", fontsize=7)
    for y in range(len(scored), len(names)):
        ax.axhspan(y - 0.4, y + 0.4, facecolor=NOT_VALIDATED, lw=0)
        ax.text(0.01, y, "not validated (no validation image)", va="center", fontsize=7, color="#555555")
    ax.set_yticks(range(len(names)), names)
    for label in ax.get_yticklabels()[len(scored):]:
        label.set_color("#777777")
    ax.set(xlim=(0, 1.15), ylim=(len(names) - 0.5, -0.5), xlabel="F1",
           title=title or "Per-class F1 (validation), worst first")
    fig.tight_layout()
    return fig


def misclassified_gallery(wrong: pd.DataFrame, n: int = 24, ncols: int = 6):
    """The most confident mistakes, captioned true → predicted (confidence)."""
    wrong = wrong.head(n)
    if wrong.empty:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center")
        return fig
    titles = [f"{t}\n→ {p} ({c:.2f})" for t, p, c in zip(wrong["true"], wrong["predicted"], wrong["confidence"])]
    return image_grid(list(wrong["path"]), titles, ncols=ncols, size=2.2,
                      title="Misclassified validation images (true → predicted)")


# The evolution chart is shown across the index page's width (about 1,200 px): a 12-inch figure saved at
# 110 dpi is about 1,300 px wide, so its 11 pt text (17 px in the image) is about 16 px on the page, and
# at least 11 px wherever the chart is shown 860 px wide or more (a window of about 900 px).
EVOLUTION_INCHES = (12, 5.5)
EVOLUTION_FONT = 11  # pt: every text of the chart, the value labels included


def f1_evolution(table: pd.DataFrame):
    """Validation micro- and macro-F1 per run, in study order (the evolution of model quality), sized for
    the index page's width (``EVOLUTION_INCHES``) with every text at ``EVOLUTION_FONT`` pt; the value labels
    stand upright over their bars when more than nine runs share the width (a bar is then narrower than
    its label)."""
    frame = table.set_index("run")[["micro_f1", "macro_f1"]]  # run names: short; the titles are in the table
    frame.index = [textwrap.fill(str(t).replace("_", " "), 14) for t in frame.index]
    upright = len(frame) > 9
    fig, ax = plt.subplots(figsize=EVOLUTION_INCHES)
    frame.plot.bar(ax=ax, rot=0, color=["#4c72b0", "#55a868"], width=0.8)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.3f", fontsize=EVOLUTION_FONT, rotation=90 if upright else 0, padding=3)
    ax.set(ylim=(0, 1.3 if upright else 1.12), xlabel="")
    ax.set_ylabel("validation F1", fontsize=EVOLUTION_FONT)
    ax.set_title("Evolution of model quality", fontsize=EVOLUTION_FONT + 2)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.tick_params(labelsize=EVOLUTION_FONT)
    ax.grid(axis="x", visible=False)
    ax.legend(["micro-F1", "macro-F1"], loc="upper center", bbox_to_anchor=(0.5, -0.14 - 0.05 * max(
        str(i).count("\n") for i in frame.index)), ncol=2, fontsize=EVOLUTION_FONT)
    fig.tight_layout()
    return fig


def per_class_f1_heatmap(table: pd.DataFrame):
    """Classes × runs validation F1 (``evaluate.per_class_f1_table``), hardest classes on top. A cell
    without F1 (NaN: no validation image of that class in that run) is grey and says "not validated";
    classes never validated come last."""
    frame = table.loc[table.mean(axis=1, skipna=True).sort_values(na_position="last").index].astype(float)
    fig, ax = plt.subplots(figsize=(2 + 1.3 * frame.shape[1], max(5, 0.25 * len(frame))))
    sns.heatmap(frame, ax=ax, cmap="RdYlGn", vmin=0, vmax=1, annot=True, fmt=".2f", annot_kws={"fontsize": 7},
                cbar_kws={"label": "F1"})
    for y, x in zip(*np.nonzero(frame.isna().to_numpy())):
        ax.add_patch(plt.Rectangle((x, y), 1, 1, facecolor=NOT_VALIDATED, edgecolor="white", lw=0.5))
        ax.text(x + 0.5, y + 0.5, "not validated", ha="center", va="center", fontsize=6, color="#555555")
    ax.set_title("Per-class validation F1 across runs" +
                 ("\n(grey: no validation image, not scored)" if frame.isna().any(axis=None) else ""))
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def augmentation_samples(study, strong_classes: Sequence[str], image_size: int, seed: int = 0,
                         mild_rows: int = 2, max_strong: int = 4, per_policy: int = 3):
    """Training images of the strongly augmented classes (and a few others) as stored, then through the
    mild and the strong policy (``transforms.MILD`` / ``STRONG``), ``per_policy`` draws each."""
    import torch
    from torchvision.transforms import v2

    from ..training.transforms import mild_augmentation, strong_augmentation  # torch: not needed to explore

    torch.manual_seed(seed)
    strong = list(strong_classes)[:max_strong]
    others = [c for c in study.summary().index if c not in set(strong_classes)][:mild_rows]
    policies = [("mild", mild_augmentation())] * per_policy + [("strong", strong_augmentation())] * per_policy
    resize = v2.Compose([v2.ToImage(), v2.Resize((image_size, image_size), antialias=True)])
    rows = strong + others
    fig, axes = plt.subplots(len(rows), 1 + len(policies), figsize=(1.7 * (1 + len(policies)), 1.8 * len(rows)),
                             squeeze=False)
    for r, name in enumerate(rows):
        image = resize(load_rgb(study.train[study.train["class_name"] == name]["path"].iloc[0]))
        views = [("as stored", image)] + [(policy, aug(image)) for policy, aug in policies]
        for c, (label, view) in enumerate(views):
            ax = axes[r, c]
            ax.imshow(view.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=8)
        role = "strong" if name in strong else "mild"
        axes[r, 0].set_ylabel(textwrap.fill(f"{name} ({role} in training)", 18), fontsize=7)
    fig.suptitle("What the model sees: each image as stored, through the mild and the strong policy")
    fig.tight_layout()
    return fig


def save(fig, path):
    """Save ``fig`` as a PNG (atomically), close it, and return the saved image for display.

    In a notebook the cell shows the PNG itself, so each figure is rendered once, not twice."""
    from IPython.display import Image

    saved = save_figure(fig, path)
    plt.close(fig)
    return Image(filename=str(saved))
