"""Where a model looks: Grad-CAM (captum's ``LayerGradCam``) on the deepest stage whose map is at least
7×7 at the model's input size, a figure of the most confident mistakes and a few correct images of each
confused pair of classes, and, where the drawn demo data says where each character is, the share of the
maps' mass inside the character's box against the box's share of the image."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from ..data.layout import BOXES_FILE, load_rgb
from ..training.models import MidCnn, SimpleCnn, TransferModel
from ..training.transforms import eval_transform


MIN_CAM_SIDE = 7  # a map coarser than 7×7 paints a wash over the whole image, not a place


def candidate_layers(model: nn.Module) -> list[nn.Module]:
    """The layers Grad-CAM may read, input first: each block's convolution of SimpleCnn/MidCnn (before
    its pooling); a transfer model's backbone stages (resnet-like: ``layer1``-``layer4``; mobilenet,
    efficientnet, convnext: the blocks of ``features``)."""
    if isinstance(model, (SimpleCnn, MidCnn)):
        return [block[0] for block in model.features]
    if isinstance(model, TransferModel):
        net = model.net
        if hasattr(net, "layer4"):
            return [net.layer1, net.layer2, net.layer3, net.layer4]
        if hasattr(net, "features"):
            return list(net.features)
        raise ValueError(f"target_layer: no stages known for backbone {model.backbone_name!r}")
    raise ValueError(f"target_layer: unsupported model {type(model).__name__} (SimpleCnn, MidCnn or TransferModel)")


@torch.no_grad()
def layer_sides(model: nn.Module, layers: Sequence[nn.Module], input_size: int) -> list[int]:
    """The smaller side of each layer's output map at ``input_size`` (one forward pass of a blank image)."""
    sides: dict[int, int] = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, k=k: sides.__setitem__(k, min(o.shape[-2:])))
             for k, layer in enumerate(layers)]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [sides[k] for k in range(len(layers))]


def target_layer(model: nn.Module, input_size: int | None = None) -> nn.Module:
    """The layer Grad-CAM reads. Without ``input_size``: the last convolutional stage (SimpleCnn/MidCnn:
    the convolution of the last block; resnet-like: ``layer4``; the others: ``features[-1]``). With it:
    the deepest of ``candidate_layers`` whose map is at least ``MIN_CAM_SIDE`` pixels a side at that
    size (SimpleCnn at 96 px: block 4's 8×8 instead of block 5's 2×2), so the map can show a place."""
    layers = candidate_layers(model)
    if input_size is None:
        return layers[-1]
    sides = layer_sides(model, layers, input_size)
    fine = [layer for layer, side in zip(layers, sides) if side >= MIN_CAM_SIDE]
    return fine[-1] if fine else layers[0]


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
    cam = LayerGradCam(model, layer if layer is not None else target_layer(model, images.shape[-1]))
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


def load_boxes(root: str | Path | None) -> dict[str, tuple[int, ...]]:
    """Where the drawn demo data drew each character (``layout.BOXES_FILE`` in the data folder): image path
    → ``(x0, y0, x1, y1, width, height)`` in the image's own pixels; ``{}`` for other data."""
    path = Path(root) / BOXES_FILE if root is not None else None
    if path is None or not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {str((Path(root) / row["path"]).resolve()): tuple(int(row[k]) for k in ("x0", "y0", "x1", "y1", "width",
                                                                                        "height"))
                for row in csv.DictReader(f)}


def box_mass(heatmaps: np.ndarray, boxes: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """For maps ``(N, S, S)`` of images stretched to S×S and their character boxes ``(x0, y0, x1, y1, w, h)``
    in the original pixels: the share of each map's mass inside the box, and the box's share of the
    image (what a map spread evenly would give). NaN mass where a map is all zero."""
    n, side_y, side_x = heatmaps.shape
    ys, xs = (np.arange(side_y) + 0.5), (np.arange(side_x) + 0.5)
    inside, share = np.full(n, np.nan), np.zeros(n)
    for i, (heat, (x0, y0, x1, y1, w, h)) in enumerate(zip(heatmaps, boxes)):
        mask = ((ys[:, None] >= y0 * side_y / h) & (ys[:, None] < y1 * side_y / h)
                & (xs[None, :] >= x0 * side_x / w) & (xs[None, :] < x1 * side_x / w))
        share[i] = mask.mean()
        total = float(np.clip(heat, 0, None).sum())
        if total > 0:
            inside[i] = float(np.clip(heat, 0, None)[mask].sum()) / total
    return inside, share


def box_check(model: nn.Module, predictions: pd.DataFrame, classes: Sequence[str], image_size: int,
              boxes: dict[str, tuple[int, ...]], n: int = 48) -> pd.Series:
    """Grad-CAM of the true class on up to ``n`` correctly predicted validation images whose character
    box is known: the mean share of the maps' mass inside the box against the boxes' mean share of the
    image, and how many maps put more of their mass there than an even spread would (a Series, shown as
    a table); without any known box, a Series that says so."""
    known = predictions[predictions["correct"].astype(bool)
                        & predictions["path"].map(lambda p: str(Path(p).resolve()) in boxes)]
    known = known.sort_values("path").head(n)
    if known.empty:
        return pd.Series({"images": 0}, name="no character box known for these images (only the drawn demo data "
                         "records them)", dtype=object)
    lookup = {c: i for i, c in enumerate(classes)}
    transform = eval_transform(image_size)
    batch = torch.stack([transform(load_rgb(p)) for p in known["path"]])
    heat = gradcam(model, batch, [lookup[c] for c in known["true"]]).numpy()
    inside, share = box_mass(heat, [boxes[str(Path(p).resolve())] for p in known["path"]])
    scored = ~np.isnan(inside)
    result = {"images": int(len(known)), "maps with evidence": int(scored.sum()),
              "mass inside the box": round(float(inside[scored].mean()), 4) if scored.any() else None,
              "box share of the image": round(float(share[scored].mean() if scored.any() else share.mean()), 4),
              "maps favouring the character": int((inside[scored] > share[scored]).sum())}
    return pd.Series(result, name="Grad-CAM of the true class, on correctly predicted validation images", dtype=object)


def gradcam_figure(model: nn.Module, predictions: pd.DataFrame, classes: Sequence[str], image_size: int,
                   n_mistakes: int = 6, per_pair: int = 2, target: str = "predicted", ncols: int = 3,
                   size: float = 2.2, alpha: float = 0.65, boxes: dict[str, tuple[int, ...]] | None = None):
    """A figure of ``select_examples(predictions, n_mistakes, per_pair)``: for each image the image
    itself and its Grad-CAM overlay for the ``target`` class (``predicted`` or ``true``), captioned
    true → predicted (confidence). The overlay's opacity follows the map (the image stays readable
    where the model does not look), with a colour bar; the character's box is outlined where ``boxes``
    (``load_boxes``) knows it. ``predictions``: ``training.evaluation.prediction_frame``'s columns."""
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
    # constrained layout keeps every caption, the title and the colour bar clear of the images (a colour bar
    # added after tight_layout shrank the axes and let a tall image run over the caption below it)
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(2 * ncols * size + 0.8, nrows * size * 1.2 + 0.4),
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap("inferno")
    for ax in axes.flat:
        ax.axis("off")
    for i, (row, picture, heat) in enumerate(zip(examples.itertuples(), pictures, heatmaps)):
        ax_img, ax_cam = axes[i // ncols, 2 * (i % ncols)], axes[i // ncols, 2 * (i % ncols) + 1]
        extent = (0, picture.width, picture.height, 0)  # the model saw the image stretched to a square
        ax_img.imshow(picture)
        ax_cam.imshow(picture)
        scale = heat.max() if heat.max() > 0 else 1.0
        level = np.clip(heat / scale, 0, 1)
        overlay = cmap(level)
        overlay[..., 3] = alpha * level  # transparent where the map is low: the picture stays readable
        ax_cam.imshow(overlay, extent=extent, interpolation="bilinear")
        box = (boxes or {}).get(str(Path(row.path).resolve()))
        if box is not None:
            ax_cam.add_patch(plt.Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False,
                                           edgecolor="white", linewidth=1, linestyle="--"))
        colour = "#b00020" if row.kind == "mistake" else "#1b7a2f"
        ax_img.set_title(f"{row.true}\n→ {row.predicted} ({row.confidence:.2f})", fontsize=7, color=colour)
        ax_cam.set_title(f"Grad-CAM: {getattr(row, target)}", fontsize=7)
    fig.suptitle(f"Grad-CAM of the {target} class: most confident mistakes (red) and correct images of each "
                 "confused pair (green)" + ("; dashed: where the character was drawn" if boxes else ""), fontsize=9)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(0, 1), cmap=cmap), ax=axes, fraction=0.02, pad=0.01,
                       shrink=0.9)
    bar.set_label("Grad-CAM, share of the image's maximum", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return fig
