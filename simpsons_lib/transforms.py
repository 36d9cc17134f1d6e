"""Image transforms (torchvision transforms v2): evaluation, and the recipe's per-class augmentation.

Evaluation: resize to the input size, then ImageNet normalisation. Training: the recipe's strong
augmentation (ColorJitter 0.3/0.3/0.3, RandomRotation 30, RandomHorizontalFlip, RandomAffine
translate 0.15) for the "worst" classes and mild ColorJitter 0.1 for the others, chosen per sample
by its label; then the evaluation steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import torch
from torchvision.transforms import v2

from .io_utils import read_json

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_model_input(size: int) -> v2.Compose:
    """Any image (PIL or uint8 tensor) to a normalised float tensor ``(3, size, size)``."""
    return v2.Compose([
        v2.ToImage(),
        v2.Resize((size, size), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


eval_transform = to_model_input


def strong_augmentation() -> v2.Compose:
    return v2.Compose([
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
        v2.RandomRotation(30),
        v2.RandomHorizontalFlip(),
        v2.RandomAffine(degrees=0, translate=(0.15, 0.15)),
    ])


def mild_augmentation() -> v2.Compose:
    return v2.Compose([v2.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1)])


class PerClassTransform:
    """Strong augmentation for the labels in ``strong_labels``, mild for the rest, then ``final``.

    With ``augment=False`` it is just ``final`` (the plain SimpleCnn run).
    """

    wants_label = True

    def __init__(self, size: int, strong_labels: Iterable[int] = (), augment: bool = True):
        self.size = size
        self.augment = augment
        self.strong_labels = frozenset(int(x) for x in strong_labels)
        self.strong = strong_augmentation()
        self.mild = mild_augmentation()
        self.final = to_model_input(size)

    def policy(self, label: int) -> str:
        if not self.augment:
            return "none"
        return "strong" if int(label) in self.strong_labels else "mild"

    def __call__(self, image, label: int):
        image = v2.ToImage()(image)  # augment on uint8 tensors: identical ops for PIL and cached input
        policy = self.policy(label)
        if policy == "strong":
            image = self.strong(image)
        elif policy == "mild":
            image = self.mild(image)
        return self.final(image)

    def __repr__(self) -> str:
        return (f"PerClassTransform(size={self.size}, augment={self.augment}, "
                f"strong for {len(self.strong_labels)} classes)")


def worst_classes_from_metrics(metrics: dict | str | Path, k: int | None = None,
                               below: float | None = None) -> list[str]:
    """Names of the weakest classes by validation F1 in a metrics file (``evaluate.compute_metrics``).

    ``k``: the k lowest; ``below``: every class with F1 under the threshold; both: the union.
    """
    if k is None and below is None:
        raise ValueError("give k (the k lowest classes) and/or below (an F1 threshold)")
    if not isinstance(metrics, dict):
        metrics = read_json(metrics)
    per_class = metrics["per_class"]
    ranked = sorted(per_class, key=lambda name: (per_class[name]["f1"], name))
    chosen = set(ranked[:k]) if k else set()
    if below is not None:
        chosen |= {n for n in ranked if per_class[n]["f1"] < below}
    return [n for n in ranked if n in chosen]


def labels_of(class_names: Sequence[str], classes: Sequence[str]) -> list[int]:
    """Label codes of ``class_names``; unknown names fail with the name."""
    lookup = {c: i for i, c in enumerate(classes)}
    missing = [n for n in class_names if n not in lookup]
    if missing:
        raise KeyError(f"unknown class name(s): {', '.join(missing)}")
    return [lookup[n] for n in class_names]
