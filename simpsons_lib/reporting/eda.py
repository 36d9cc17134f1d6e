"""The exploration's statistics (``00_eda``): the class balance, in numbers and in words, and the images'
sizes and modes. They describe the data and shape no weights, so they live here, outside the training key."""

from __future__ import annotations

import pandas as pd
from PIL import Image


def class_counts(index: pd.DataFrame) -> pd.Series:
    """Training images per class, largest first."""
    return index["class_name"].value_counts().sort_values(ascending=False)


def describe_counts(counts: pd.Series) -> str:
    """The class balance in words, as measured (``class_counts``)."""
    top, bottom = counts.index[0], counts.index[-1]
    half = int((counts.cumsum() < counts.sum() / 2).sum()) + 1
    return (f"{len(counts)} classes, {int(counts.sum())} images: from {int(counts[top])} ({top}) down to "
            f"{int(counts[bottom])} ({bottom}), {counts[top] / max(1, counts[bottom]):.0f} times fewer; "
            f"median {counts.median():.0f}. The {half} largest classes hold half of the images.")


def image_stats(index: pd.DataFrame, sample: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Width, height, mode and format of (a seeded sample of) the indexed images, read from headers."""
    frame = index if sample is None or sample >= len(index) else index.sample(sample, random_state=seed)
    rows = []
    for p in frame["path"]:
        with Image.open(p) as img:
            rows.append((p, img.width, img.height, img.mode, img.format))
    return pd.DataFrame(rows, columns=["path", "width", "height", "mode", "format"])


def measured(stats: pd.DataFrame, total: int) -> str:
    """Which images ``image_stats`` read: ``all 458 training images`` or ``2,000 of 20,933 training images
    sampled (seeded)``."""
    n = len(stats)
    return f"all {total:,} training images" if n >= total else f"{n:,} of {total:,} training images sampled (seeded)"


SIZE_ROWS = {"mean": "mean", "std": "standard deviation", "min": "smallest", "25%": "25th percentile",
             "50%": "median", "75%": "75th percentile", "max": "largest"}


def size_table(stats: pd.DataFrame, total: int):
    """Widths and heights (px) of the images ``image_stats`` read, headed by how many of the ``total``
    training images those are: a sample says it is one (no bare ``count`` row)."""
    table = stats[["width", "height"]].describe().drop(index="count").rename(index=SIZE_ROWS)
    table.columns = ["width (px)", "height (px)"]
    return table.style.format("{:,.1f}").set_caption(f"Image sizes: {measured(stats, total)}")


def mode_table(stats: pd.DataFrame, total: int):
    """Images per file format and colour mode, among the images ``image_stats`` read (said in the caption)."""
    table = stats.groupby(["format", "mode"]).size().to_frame("images").reset_index()
    caption = f"Formats and colour modes: {measured(stats, total)}"
    return table.style.hide(axis="index").format(escape="html").set_caption(caption)
