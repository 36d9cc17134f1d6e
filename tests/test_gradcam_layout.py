"""The Grad-CAM figure reads cleanly: no image runs over another image's caption, the colour bar stays
clear of every image and caption, and the title is whole and clear of the captions (as drawn, and as
saved)."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from simpsons_lib.config import files
from simpsons_lib.reporting import gradcam
from simpsons_lib.training import models

from conftest import DRAWN_CLASSES as CLASSES, draw_images


@pytest.fixture
def drawn(tmp_path):
    """Twenty drawn images of mixed shapes (wide and tall frames), as the demo data draws them."""
    return draw_images(tmp_path, 20)


def boxes_clash(fig) -> list[str]:
    """What overlaps on the drawn figure: captions over other images, the colour bar (with its ticks and
    label) over an image or a caption, the title over a caption or the bar, or the title outside the figure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bar = fig.axes[-1]
    images = {ax: ax.get_window_extent(renderer) for ax in fig.axes[:-1] if ax.images}
    captions = {ax: ax.title.get_window_extent(renderer) for ax in images if ax.get_title()}
    bar_box = bar.get_tightbbox(renderer)
    title = fig._suptitle.get_window_extent(renderer)
    found = [f"caption {ax.get_title()!r} under another image" for ax, box in captions.items()
             if any(other is not ax and box.overlaps(extent) for other, extent in images.items())]
    found += ["colour bar over an image" for extent in images.values() if bar_box.overlaps(extent)]
    found += ["colour bar over a caption" for box in captions.values() if bar_box.overlaps(box)]
    found += ["title over a caption" for box in captions.values() if title.overlaps(box)]
    found += ["title over the colour bar"] if title.overlaps(bar_box) else []
    figure = fig.bbox
    if not (figure.x0 <= title.x0 and title.x1 <= figure.x1 and title.y1 <= figure.y1):
        found.append("title cut by the figure's edge")
    return found


def test_captions_colour_bar_and_title_do_not_overlap(drawn, tmp_path):
    paths, true = drawn
    torch.manual_seed(0)
    model = models.build_model("simple_cnn", len(CLASSES), 96).eval()
    # every other image right: the most confident mistakes, then correct images of each confused pair
    predicted = [t if i % 2 == 0 else CLASSES[(i * 2 + 1) % 5] for i, t in enumerate(true)]
    predictions = pd.DataFrame({"path": paths, "true": true, "predicted": predicted,
                                "confidence": np.linspace(0.9, 0.3, len(paths))})
    predictions["correct"] = predictions["true"] == predictions["predicted"]
    fig = gradcam.gradcam_figure(model, predictions, CLASSES, 96)
    assert boxes_clash(fig) == []
    saved = files.save_figure(fig, tmp_path / "gradcam.png")
    with Image.open(saved) as img:  # saved whole: the title and the bar's label are inside the image
        assert img.width >= fig.bbox.width * 0.95 and img.height >= fig.bbox.height * 0.9
