"""Image transforms (torchvision transforms v2): evaluation, and the recipe's per-class augmentation.

Evaluation: resize to the input size, then ImageNet normalisation. Training: the recipe's strong
augmentation (``STRONG``: ColorJitter 0.3/0.3/0.3, rotation up to 30°, horizontal flip, translation up
to 0.15) for the "worst" classes and mild ColorJitter 0.1 (``MILD``) for the others, chosen per sample by
its label; then the evaluation steps. ``PerClassTransform`` (per image, CPU) and ``BatchAugment`` (per
batch, on the GPU) both read these two constants and resample with one function (``_geometry``).

Nothing may mark the classes that get the strong policy: the geometry fills the pixels it uncovers
with mirrored image content (``PADDING_MODE``), not black, so no border tells a strong class apart
(``reporting.leakage.augmentation_cue_check``; tested).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torchvision.transforms import v2

from ..data.datasets import to_device_async

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The recipe's two policies, in one place.
STRONG = {"jitter": 0.3, "degrees": 30.0, "flip": 0.5, "translate": 0.15}
MILD = {"jitter": 0.1}
# How the geometry fills the pixels it uncovers: mirrored image content, never a constant colour.
PADDING_MODE = "reflection"


def eval_transform(size: int) -> v2.Compose:
    """Evaluation: any image (PIL or uint8 tensor) to a normalised float tensor ``(3, size, size)``."""
    return v2.Compose([
        v2.ToImage(),
        v2.Resize((size, size), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


class StrongGeometry:
    """The strong policy's geometry for one uint8 image ``(3, H, W)``: a rotation up to ``degrees``, a
    horizontal flip with probability ``flip`` and a translation up to ``translate`` of each side, in one
    nearest-neighbour resampling (``_geometry``, the same function ``BatchAugment`` applies to a batch).
    Uncovered pixels take mirrored image content (``padding_mode="reflection"``): a constant fill
    would mark exactly the strongly augmented classes, a cue a model learns instead of the characters.
    Draws come from torch's global generator, like torchvision's own random transforms."""

    def __init__(self, degrees: float, flip: float, translate: float, padding_mode: str = PADDING_MODE):
        self.degrees, self.flip, self.translate, self.padding_mode = float(degrees), float(flip), float(translate), padding_mode

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        params = {"strong": torch.tensor([True]),
                  "angle": (2 * torch.rand(1) - 1) * self.degrees,
                  "flip": torch.rand(1) < self.flip,
                  "shift": ((2 * torch.rand(1, 2) - 1) * self.translate)}
        x = torch.as_tensor(image).unsqueeze(0).float()
        return _geometry(x, params, self.padding_mode)[0].round_().to(torch.uint8)

    def __repr__(self) -> str:
        return (f"StrongGeometry(degrees={self.degrees:g}, flip={self.flip:g}, translate={self.translate:g}, "
                f"padding_mode={self.padding_mode!r})")


def strong_augmentation(padding_mode: str = PADDING_MODE) -> v2.Compose:
    jitter = STRONG["jitter"]
    return v2.Compose([
        v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter),
        StrongGeometry(STRONG["degrees"], STRONG["flip"], STRONG["translate"], padding_mode),
    ])


def mild_augmentation() -> v2.Compose:
    jitter = MILD["jitter"]
    return v2.Compose([v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter)])


class PerClassTransform:
    """Strong augmentation for the labels in ``strong_labels``, mild for the rest, then ``final``.

    With ``augment=False`` it is just ``final`` (the plain SimpleCnn run).
    """

    wants_label = True

    def __init__(self, size: int, strong_labels: Iterable[int] = (), augment: bool = True,
                 padding_mode: str = PADDING_MODE, geometry_for_all: bool = False):
        self.size = size
        self.augment = augment
        self.strong_labels = frozenset(int(x) for x in strong_labels)
        self.strong = strong_augmentation(padding_mode)
        self.mild = mild_augmentation()
        if geometry_for_all:  # every class moves; only the colour jitter's strength still follows the class
            self.mild = v2.Compose([*self.mild.transforms, self.strong.transforms[-1]])
        self.to_image = v2.ToImage()
        self.final = eval_transform(size)

    def policy(self, label: int) -> str:
        if not self.augment:
            return "none"
        return "strong" if int(label) in self.strong_labels else "mild"

    def __call__(self, image, label: int):
        image = self.to_image(image)  # augment on uint8 tensors: identical ops for PIL and cached input
        policy = self.policy(label)
        if policy == "strong":
            image = self.strong(image)
        elif policy == "mild":
            image = self.mild(image)
        return self.final(image)

    def __repr__(self) -> str:
        return (f"PerClassTransform(size={self.size}, augment={self.augment}, "
                f"strong for {len(self.strong_labels)} classes)")


def labels_of(class_names: Sequence[str], classes: Sequence[str]) -> list[int]:
    """Label codes of ``class_names``; unknown names fail with the name."""
    lookup = {c: i for i, c in enumerate(classes)}
    missing = [n for n in class_names if n not in lookup]
    if missing:
        raise KeyError(f"unknown class name(s): {', '.join(missing)}")
    return [lookup[n] for n in class_names]


GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


class BatchAugment:
    """The same per-class policy as ``PerClassTransform``, applied to a whole uint8 batch ``(N, 3, H, W)``
    on the batch's device (the GPU on the fast path) with per-sample randomness.

    Strong samples (``STRONG``): colour jitter in a random order per sample, then a rotation, a
    horizontal flip and a translation (one nearest-neighbour resampling, reflection fill, as the per-image
    v2 transforms do); mild samples (``MILD``): colour jitter. Then ImageNet normalisation. With ``augment=False`` only the
    normalisation. Random draws come from a seeded CPU generator, so results do not depend on the device.
    """

    def __init__(self, n_classes: int, strong_labels: Iterable[int] = (), augment: bool = True,
                 geometry_for_all: bool = False):
        self.augment = augment
        self.geometry_for_all = geometry_for_all
        self.strong_classes = torch.zeros(n_classes, dtype=torch.bool)
        self.strong_classes[list(int(x) for x in strong_labels)] = True
        self._constants: dict[torch.device, dict[str, torch.Tensor]] = {}

    def constants(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Normalisation constants on ``device``, made once (a copy per batch would make the host wait)."""
        if device not in self._constants:
            self._constants[device] = {
                "mean": torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
                "std": torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)}
        return self._constants[device]

    def sample(self, labels: torch.Tensor, generator: torch.Generator) -> dict:
        """Per-sample parameters: jitter factors (brightness, contrast, saturation) and their order,
        rotation angle (degrees), flip, translation (fraction of the side); geometry only for strong."""
        strong = self.strong_classes[labels.cpu()]
        n = len(labels)
        strength = torch.where(strong, STRONG["jitter"], MILD["jitter"])[:, None]
        factors = 1 + (2 * torch.rand(n, 3, generator=generator) - 1) * strength
        order = torch.argsort(torch.rand(n, 3, generator=generator), dim=1)
        angle = (2 * torch.rand(n, generator=generator) - 1) * STRONG["degrees"]
        flip = torch.rand(n, generator=generator) < STRONG["flip"]
        shift = (2 * torch.rand(n, 2, generator=generator) - 1) * STRONG["translate"]
        moved = torch.ones_like(strong) if self.geometry_for_all else strong  # who gets the geometry
        return {"strong": moved, "factors": factors, "order": order, "angle": angle * moved,
                "flip": flip & moved, "shift": shift * moved[:, None]}

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = images.float().div_(255)
        const = self.constants(x.device)
        if self.augment:
            params = self.sample(labels, generator)
            x = _jitter(x, to_device_async(_jitter_coefficients(params["factors"], params["order"]), x.device))
            x = _geometry(x, params)
        return x.sub_(const["mean"]).div_(const["std"])


def _jitter_coefficients(factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``(N, 3 steps, 3)``: each step of each sample as ``a*x + b*mean(gray(x)) + c*gray(x)``.

    Brightness f: ``f*x``; contrast f: ``f*x + (1-f)*mean(gray)``; saturation f: ``f*x + (1-f)*gray``
    (torchvision's adjust_brightness/contrast/saturation, before their clamp to [0, 1])."""
    f = torch.gather(factors, 1, order)  # the factor of the op each step applies
    zero = torch.zeros_like(f)
    return torch.stack([f, torch.where(order == 1, 1 - f, zero), torch.where(order == 2, 1 - f, zero)], -1)


def _jitter(x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation, each per sample, in each sample's own order: per step one
    grey image, its mean and one multiply-add over the batch (few passes over memory on a GPU)."""
    for step in range(coefficients.shape[1]):
        a, b, c = (coefficients[:, step, k].view(-1, 1, 1, 1) for k in range(3))
        gray = _gray(x)
        shift = torch.addcmul(b * gray.mean(dim=(1, 2, 3), keepdim=True), c, gray)
        x = torch.addcmul(shift, a, x).clamp_(0, 1)
    return x


def _gray(x: torch.Tensor) -> torch.Tensor:
    """torchvision's rgb_to_grayscale of a batch, ``(N, 1, H, W)``."""
    r, g, b = GRAY_WEIGHTS
    return x[:, 0:1].mul(r).add_(x[:, 1:2], alpha=g).add_(x[:, 2:3], alpha=b)


def _geometry(x: torch.Tensor, params: dict, padding_mode: str = PADDING_MODE) -> torch.Tensor:
    """Rotate, flip, translate the strong samples of ``x`` in place with one nearest-neighbour
    ``grid_sample`` (uncovered pixels filled by ``padding_mode``: reflection); returns ``x``."""
    idx = params["strong"].nonzero().flatten()
    if len(idx) == 0:
        return x
    n, (h, w) = len(idx), x.shape[-2:]
    theta = torch.deg2rad(params["angle"][idx].double())
    cos, sin = torch.cos(theta), torch.sin(theta)
    # output -> input mapping in pixel units: p_in = R^T F (p_out - t); then to grid_sample's [-1, 1]
    flip = torch.where(params["flip"][idx], -1.0, 1.0).double()
    rot_t = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # R^T
    a = rot_t @ torch.diag_embed(torch.stack([flip, torch.ones_like(flip)], -1))
    t = torch.stack([torch.round(params["shift"][idx, 0] * w), torch.round(params["shift"][idx, 1] * h)], -1).double()
    scale = torch.tensor([w / 2, h / 2], dtype=torch.float64)
    a_norm = a * (scale.view(1, 1, 2) / scale.view(1, 2, 1))  # S^-1 A S
    t_norm = -(a @ t.unsqueeze(-1)).squeeze(-1) / scale
    matrix = to_device_async(torch.cat([a_norm, t_norm.unsqueeze(-1)], -1).float(), x.device)
    grid = torch.nn.functional.affine_grid(matrix, [n, 3, h, w], align_corners=False)
    idx = to_device_async(idx, x.device)
    x[idx] = torch.nn.functional.grid_sample(x[idx], grid, mode="nearest", padding_mode=padding_mode,
                                             align_corners=False)
    return x


def batch_mixing(mixup_alpha: float, cutmix_alpha: float, n_classes: int):
    """MixUp and/or CutMix (torchvision v2) for whole training batches, or None when both alphas are 0.

    Called as ``mix(images, labels) -> (images, soft_targets)`` on a normalised batch and its integer
    labels (``loop.train_epoch`` does, on the device); with both on, each batch gets one of the two,
    chosen at random. The random draws come from torch's global generator (seeded per run)."""
    mixers = []
    if mixup_alpha > 0:
        mixers.append(v2.MixUp(alpha=float(mixup_alpha), num_classes=n_classes))
    if cutmix_alpha > 0:
        mixers.append(v2.CutMix(alpha=float(cutmix_alpha), num_classes=n_classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)
