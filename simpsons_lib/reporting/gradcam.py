"""Where a model looks: Grad-CAM (captum's ``LayerGradCam``) on the last convolutional stage, and a
figure of the most confident mistakes and a few correct images of each confused pair of classes."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from ..data.layout import load_rgb
from ..training.models import MidCnn, SimpleCnn, TransferModel
from ..training.transforms import eval_transform


def target_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM reads: the last convolutional stage.

    SimpleCnn/MidCnn: the convolution of the last block (before its pooling, which would halve an
    already small map: 10×10 at 224 px, 2×2 at 96 px); resnet-like: ``layer4``; mobilenet_v2/v3,
    efficientnet and convnext: ``features[-1]``."""
    if isinstance(model, (SimpleCnn, MidCnn)):
        return model.features[-1][0]
    if isinstance(model, TransferModel):
        net = model.net
        if hasattr(net, "layer4"):
            return net.layer4
        if hasattr(net, "features"):
            return net.features[-1]
        raise ValueError(f"target_layer: no last stage known for backbone {model.backbone_name!r}")
    raise ValueError(f"target_layer: unsupported model {type(model).__name__} (SimpleCnn, MidCnn or TransferModel)")


def gradcam(model: nn.Module, images: torch.Tensor, target_classes: Sequence[int] | torch.Tensor,
            layer: nn.Module | None = None) -> torch.Tensor:
    """Grad-CAM heatmaps ``(N, H, W)`` of a normalised batch ``(N, 3, H, W)`` for one target class per
    image, at the input's size (``LayerAttribution.interpolate``, bilinear), on the CPU. Positive
    evidence only (ReLU of the channel-weighted activations), not rescaled: a map can be all zero
    where nothing in the last stage speaks for the class (common with untrained models)."""
    device = next(model.parameters()).device
    model.eval()
    images = images.to(device)
    targets = torch.as_tensor(target_classes, dtype=torch.long, device=device).reshape(-1)
    if len(targets) != len(images):
        raise ValueError(f"gradcam: {len(targets)} target classes for {len(images)} images")
    cam = LayerGradCam(model, layer if layer is not None else target_layer(model))
    with torch.enable_grad():
        attr = cam.attribute(images, target=targets, relu_attributions=True)
    attr = LayerAttribution.interpolate(attr.detach(), tuple(images.shape[-2:]), interpolate_mode="bilinear")
    return attr[:, 0].float().cpu()


def select_examples(predictions: pd.DataFrame, n_mistakes: int = 6, per_pair: int = 2) -> pd.DataFrame:
    """The ``n_mistakes`` most confident mistakes, then for each confused pair (true → predicted) among
    them up to ``per_pair`` correct images, taken alternately from the two classes, most confident
    first. Columns of ``evaluate.prediction_frame`` plus ``kind`` (``mistake`` or ``correct``)."""
    wrong = predictions[~predictions["correct"].astype(bool)].sort_values("confidence", ascending=False)
    mistakes = wrong.head(n_mistakes).assign(kind="mistake")
    right = predictions[predictions["correct"].astype(bool)].sort_values("confidence", ascending=False)
    rows, used = [mistakes], set()
    for true, pred in dict.fromkeys(zip(mistakes["true"], mistakes["predicted"])):
        pool = right[right["true"].isin([true, pred]) & ~right["path"].isin(used)]
        pool = (pool.assign(_rank=pool.groupby("true").cumcount(), _side=(pool["true"] != true).astype(int))
                .sort_values(["_rank", "_side"]).head(per_pair).drop(columns=["_rank", "_side"]))
        used.update(pool["path"])
        rows.append(pool.assign(kind="correct"))
    return pd.concat([r for r in rows if not r.empty] or [mistakes], ignore_index=True)


def gradcam_figure(model: nn.Module, predictions: pd.DataFrame, classes: Sequence[str], image_size: int,
                   n_mistakes: int = 6, per_pair: int = 2, target: str = "predicted", ncols: int = 3,
                   size: float = 2.2, alpha: float = 0.5):
    """A figure of ``select_examples(predictions, n_mistakes, per_pair)``: for each image the image
    itself and its Grad-CAM overlay for the ``target`` class (``predicted`` or ``true``), captioned
    true → predicted (confidence). ``predictions``: ``evaluate.prediction_frame``'s columns."""
    if target not in ("predicted", "true"):
        raise ValueError(f"target must be 'predicted' or 'true', not {target!r}")
    examples = select_examples(predictions, n_mistakes, per_pair)
    if examples.empty:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no images to explain", ha="center")
        return fig
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(examples[target]) - set(lookup))
    if unknown:
        raise KeyError(f"gradcam_figure: class name(s) not in the model's classes: {', '.join(unknown)}")
    transform = eval_transform(image_size)
    pictures = [load_rgb(p) for p in examples["path"]]
    batch = torch.stack([transform(img) for img in pictures])
    heatmaps = gradcam(model, batch, [lookup[c] for c in examples[target]]).numpy()
    n = len(examples)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(2 * ncols * size, nrows * size * 1.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (row, picture, heat) in enumerate(zip(examples.itertuples(), pictures, heatmaps)):
        ax_img, ax_cam = axes[i // ncols, 2 * (i % ncols)], axes[i // ncols, 2 * (i % ncols) + 1]
        extent = (0, picture.width, picture.height, 0)  # the model saw the image stretched to a square
        ax_img.imshow(picture)
        ax_cam.imshow(picture)
        scale = heat.max() if heat.max() > 0 else 1.0
        ax_cam.imshow(heat / scale, cmap="jet", alpha=alpha, extent=extent, vmin=0, vmax=1, interpolation="bilinear")
        colour = "#b00020" if row.kind == "mistake" else "#1b7a2f"
        ax_img.set_title(f"{row.true}\n→ {row.predicted} ({row.confidence:.2f})", fontsize=7, color=colour)
        ax_cam.set_title(f"Grad-CAM: {getattr(row, target)}", fontsize=7)
    fig.suptitle(f"Grad-CAM of the {target} class: most confident mistakes (red) and correct images of each "
                 "confused pair (green)", fontsize=9)
    fig.tight_layout()
    return fig
