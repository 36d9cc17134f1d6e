"""Grad-CAM: the layer it reads for every model, heatmaps at the input's size, and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from simpsons_lib.config import files as io_utils
from simpsons_lib.data import layout as data
from simpsons_lib.reporting import gradcam as explain
from simpsons_lib.training import models
from simpsons_lib.training.transforms import eval_transform

from conftest import DRAWN_CLASSES as CLASSES, draw_images


@pytest.fixture
def drawn(tmp_path):
    """Twelve drawn images (JPEG files) and their true classes."""
    return draw_images(tmp_path / "images", 12)


def seeded(arch: str, size: int, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build_model(arch, len(CLASSES), size, **kw).eval()


def batch_of(paths, size: int) -> torch.Tensor:
    return torch.stack([eval_transform(size)(data.load_rgb(p)) for p in paths])


@pytest.mark.parametrize("backbone,where", [
    ("resnet18", lambda net: net.layer4), ("mobilenet_v2", lambda net: net.features[-1]),
    ("mobilenet_v3_small", lambda net: net.features[-1]), ("efficientnet_b0", lambda net: net.features[-1]),
    ("convnext_tiny", lambda net: net.features[-1])])
def test_target_layer_is_the_last_stage_of_every_backbone(backbone, where):
    model = seeded("transfer", 64, backbone=backbone)
    layer = explain.target_layer(model)
    assert layer is where(model.net)
    assert any(isinstance(m, torch.nn.Conv2d) for m in layer.modules())


def test_target_layer_of_the_small_cnns_is_their_last_convolution():
    for arch in ("simple_cnn", "mid_cnn"):
        model = seeded(arch, 96)
        layer = explain.target_layer(model)
        assert isinstance(layer, torch.nn.Conv2d) and layer is model.features[-1][0]
    with pytest.raises(ValueError, match="Linear"):
        explain.target_layer(torch.nn.Linear(3, 2))


@pytest.mark.parametrize("arch,size,kw", [("simple_cnn", 96, {}), ("mid_cnn", 96, {}),
                                          ("transfer", 128, {"backbone": "mobilenet_v2"})])
def test_heatmaps_have_the_input_size_and_are_not_constant(drawn, arch, size, kw):
    model = seeded(arch, size, **kw)
    x = batch_of(drawn[0][:4], size)
    with torch.no_grad():
        predicted = model(x).argmax(1)
    heat = explain.gradcam(model, x, predicted)
    assert heat.shape == (4, size, size)
    assert (heat >= 0).all()
    for h in heat:
        assert h.max() > 0 and h.std() > 0.01 * h.max(), (float(h.min()), float(h.max()))
    other = explain.gradcam(model, x, (predicted + 1) % len(CLASSES))
    assert (heat - other).abs().max() > 0.01 * heat.max()  # the map depends on the class explained
    assert not any(p.grad is not None for p in model.parameters())  # no gradients left on the weights


def test_select_examples_picks_confident_mistakes_and_correct_images_of_each_pair():
    rows = [  # path, true, predicted, confidence
        ("a1", "bart", "lisa", 0.9), ("a2", "bart", "lisa", 0.6), ("a3", "homer", "ned", 0.8),
        ("a4", "marge", "bart", 0.3),
        ("c1", "bart", "bart", 0.95), ("c2", "bart", "bart", 0.7), ("c3", "lisa", "lisa", 0.99),
        ("c4", "lisa", "lisa", 0.5), ("c5", "homer", "homer", 0.9), ("c6", "marge", "marge", 0.9),
    ]
    frame = pd.DataFrame(rows, columns=["path", "true", "predicted", "confidence"])
    frame["correct"] = frame["true"] == frame["predicted"]
    chosen = explain.select_examples(frame, n_mistakes=3, per_pair=3)
    assert chosen["path"].tolist() == ["a1", "a3", "a2",  # mistakes, most confident first
                                       "c1", "c3", "c2",  # bart/lisa: alternately, most confident first
                                       "c5"]  # homer/ned: no correct ned image
    assert chosen["kind"].tolist() == ["mistake"] * 3 + ["correct"] * 4
    assert explain.select_examples(frame[frame["correct"]], 3, 2).empty


@pytest.mark.parametrize("arch,size,kw", [("simple_cnn", 96, {}), ("transfer", 96, {"backbone": "mobilenet_v2"})])
def test_gradcam_figure_is_written(drawn, tmp_path, arch, size, kw):
    paths, _ = drawn
    model = seeded(arch, size, **kw)
    with torch.no_grad():
        probs = torch.softmax(model(batch_of(paths, size)), 1).numpy()
    predicted = np.asarray(CLASSES)[probs.argmax(1)]
    # half of the images "truly" are what the model says, the others another class
    true = [p if i % 2 == 0 else CLASSES[(CLASSES.index(p) + 1) % len(CLASSES)] for i, p in enumerate(predicted)]
    predictions = pd.DataFrame({"path": paths, "true": true, "predicted": predicted,
                                "confidence": probs.max(1).round(6)})
    predictions["correct"] = predictions["true"] == predictions["predicted"]
    fig = explain.gradcam_figure(model, predictions, CLASSES, size, n_mistakes=4, per_pair=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any("→" in t for t in titles) and any(t.startswith("Grad-CAM") for t in titles)
    out = io_utils.save_figure(fig, tmp_path / "figures" / "gradcam.png")
    assert out.stat().st_size > 20_000
    with Image.open(out) as img:
        assert img.width > 600 and img.height > 300
        assert np.asarray(img.convert("RGB")).std() > 20  # images and heatmaps, not a blank page
    with pytest.raises(KeyError, match="krusty"):
        explain.gradcam_figure(model, predictions.assign(predicted="krusty"), CLASSES, size)


@pytest.mark.parametrize("arch,size,kw", [("simple_cnn", 96, {}), ("simple_cnn", 224, {}), ("mid_cnn", 96, {}),
                                          ("transfer", 96, {"backbone": "resnet18"}),
                                          ("transfer", 224, {"backbone": "resnet18"}),
                                          ("transfer", 96, {"backbone": "mobilenet_v2"})])
def test_the_map_is_read_where_it_is_at_least_seven_pixels_a_side(arch, size, kw):
    model = seeded(arch, size, **kw)
    layers = explain.candidate_layers(model)
    sides = explain.layer_sides(model, layers, size)
    chosen = explain.target_layer(model, size)
    k = layers.index(chosen)
    assert sides[k] >= explain.MIN_CAM_SIDE and all(s < explain.MIN_CAM_SIDE for s in sides[k + 1:])
    if arch == "simple_cnn" and size == 96:
        assert sides[-1] == 2 and sides[k] == 8  # the last stage's 2x2 map is not used
    if size == 224 and arch != "transfer":
        assert chosen is explain.target_layer(model)  # at full size the last stage is fine


def test_box_mass_counts_the_share_of_a_map_inside_a_box():
    heat = np.zeros((2, 10, 10))
    heat[0, :5, :5] = 1.0  # all of the first map in the top-left quarter
    heat[1] = 1.0  # the second spread evenly
    inside, share = explain.box_mass(heat, [(0, 0, 50, 50, 100, 100), (0, 0, 50, 50, 100, 100)])
    np.testing.assert_allclose(inside, [1.0, 0.25]) and np.testing.assert_allclose(share, [0.25, 0.25])
    inside, _ = explain.box_mass(np.zeros((1, 10, 10)), [(0, 0, 5, 5, 10, 10)])
    assert np.isnan(inside[0])


def test_box_check_says_so_without_boxes():
    predictions = pd.DataFrame({"path": ["a.jpg"], "true": ["bart_simpson"], "predicted": ["bart_simpson"],
                                "confidence": [0.9], "correct": [True]})
    check = explain.box_check(seeded("simple_cnn", 96), predictions, CLASSES, 96, {})
    assert isinstance(check, pd.Series) and check["images"] == 0 and "no character box" in check.name
