import json

import numpy as np
import pytest
import torch
from PIL import Image

from simpsons_lib.training import class_scores
from simpsons_lib.training import evaluation
from simpsons_lib.training import transforms
def test_eval_transform_resizes_and_normalises():
    img = Image.new("RGB", (50, 30), (255, 0, 128))
    x = transforms.eval_transform(40)(img)
    assert x.shape == (3, 40, 40) and x.dtype == torch.float32
    expected = (torch.tensor([1.0, 0.0, 128 / 255]) - torch.tensor(transforms.IMAGENET_MEAN)) / torch.tensor(transforms.IMAGENET_STD)
    torch.testing.assert_close(x[:, 20, 20], expected, atol=1e-4, rtol=0)
    # a cached uint8 tensor gives the same result as the PIL image
    t = torch.from_numpy(np.array(img.resize((40, 40), Image.Resampling.BILINEAR))).permute(2, 0, 1)
    torch.testing.assert_close(transforms.eval_transform(40)(t), x, atol=1e-2, rtol=0)


class Recorder:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def __call__(self, image):
        self.log.append(self.name)
        return image


def test_per_class_transform_picks_strong_or_mild_by_label():
    t = transforms.PerClassTransform(32, strong_labels=[1, 3])
    calls = []
    t.strong, t.mild = Recorder("strong", calls), Recorder("mild", calls)
    img = Image.new("RGB", (40, 40), (10, 200, 30))
    for label in [0, 1, 2, 3, 1]:
        assert t(img, label).shape == (3, 32, 32)
    assert calls == ["mild", "strong", "mild", "strong", "strong"]
    off = transforms.PerClassTransform(32, strong_labels=[1], augment=False)
    off.strong, off.mild = Recorder("strong", calls), Recorder("mild", calls)
    calls.clear()
    off(img, 1)
    assert calls == [] and off.policy(1) == "none"


def test_strong_augmentation_moves_pixels_mild_only_recolours():
    torch.manual_seed(0)
    img = torch.zeros(3, 64, 64, dtype=torch.uint8)
    img[:, 8:24, 8:24] = 200  # a bright square in the top-left corner
    t = transforms.PerClassTransform(64, strong_labels=[1])
    bright = lambda x: (x.mean(0) > x.mean()).float()
    reference = bright(transforms.eval_transform(64)(img))
    mild = [bright(t(img, 0)) for _ in range(10)]
    strong = [bright(t(img, 1)) for _ in range(10)]
    assert all(torch.equal(m, reference) for m in mild)
    assert sum(not torch.equal(s, reference) for s in strong) >= 8


def test_recipe_parameters():
    strong = transforms.strong_augmentation().transforms
    jitter, geometry = strong
    assert jitter.brightness == (0.7, 1.3) and jitter.contrast == (0.7, 1.3) and jitter.saturation == (0.7, 1.3)
    assert geometry.degrees == 30.0 and geometry.flip == 0.5 and geometry.translate == 0.15
    assert geometry.padding_mode == "reflection" == transforms.PADDING_MODE
    (mild,) = transforms.mild_augmentation().transforms
    assert mild.brightness == (0.9, 1.1)


def test_worst_classes_from_a_metrics_file(tmp_path):
    classes = ["a", "b", "c", "d"]
    y_true = [0, 0, 1, 1, 2, 2, 3, 3]
    y_pred = [0, 0, 1, 0, 0, 0, 3, 3]  # c worst (0), b next (0.67), a (0.67) ...
    metrics = evaluation.compute_metrics(y_true, y_pred, classes)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(metrics))
    assert class_scores.worst_classes_from_metrics(path, k=1) == ["c"]
    assert class_scores.worst_classes_from_metrics(path, k=2) == ["c", "a"]
    assert class_scores.worst_classes_from_metrics(path, below=0.7) == ["c", "a", "b"]
    assert class_scores.worst_classes_from_metrics(metrics, k=1, below=0.0) == ["c"]
    with pytest.raises(ValueError):
        class_scores.worst_classes_from_metrics(metrics)
    with pytest.raises(KeyError, match="zed"):
        transforms.labels_of(["a", "zed"], classes)


def test_batch_augment_parameters_follow_the_per_class_policy():
    aug = transforms.BatchAugment(5, strong_labels=[1, 3])
    labels = torch.tensor([0, 1, 2, 3, 4] * 400)
    p = aug.sample(labels, torch.Generator().manual_seed(0))
    strong = torch.isin(labels, torch.tensor([1, 3]))
    assert torch.equal(p["strong"], strong)
    dev = (p["factors"] - 1).abs()
    assert dev[strong].max() <= 0.3 and dev[strong].max() > 0.25
    assert dev[~strong].max() <= 0.1
    assert p["angle"][strong].abs().max() <= 30 and p["angle"][strong].abs().max() > 25
    assert (p["angle"][~strong] == 0).all() and not p["flip"][~strong].any() and (p["shift"][~strong] == 0).all()
    assert 0.4 < p["flip"][strong].float().mean() < 0.6
    assert p["shift"][strong].abs().max() <= 0.15
    assert len({tuple(o.tolist()) for o in p["order"]}) == 6  # every order of the three jitters occurs


def test_batch_augment_moves_strong_samples_only_and_normalises_like_eval():
    img = torch.zeros(3, 64, 64, dtype=torch.uint8)
    img[:, 8:24, 8:24] = 200
    batch = img.expand(40, 3, 64, 64).contiguous()
    labels = torch.tensor([0, 1] * 20)
    out = transforms.BatchAugment(2, strong_labels=[1])(batch, labels, torch.Generator().manual_seed(0))
    reference = transforms.eval_transform(64)(img)
    bright = lambda x: (x.mean(0) > x.mean()).float()
    assert all(torch.equal(bright(o), bright(reference)) for o in out[labels == 0])
    assert sum(not torch.equal(bright(o), bright(reference)) for o in out[labels == 1]) >= 16
    plain = transforms.BatchAugment(2, augment=False)(batch, labels, torch.Generator())
    torch.testing.assert_close(plain[0], reference, atol=1e-5, rtol=0)
    again = transforms.BatchAugment(2, strong_labels=[1])(batch, labels, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_batch_jitter_matches_torchvision_colour_ops_in_each_samples_order():
    from torchvision.transforms.v2 import functional as F

    g = torch.Generator().manual_seed(1)
    x = torch.rand(24, 3, 16, 16, generator=g)
    factors = 0.7 + 0.6 * torch.rand(24, 3, generator=g)
    order = torch.stack([torch.randperm(3, generator=g) for _ in range(24)])
    out = transforms._jitter(x.clone(), transforms._jitter_coefficients(factors, order))
    ops = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation]
    for i in range(24):
        reference = x[i]
        for op in order[i].tolist():
            reference = ops[op](reference, factors[i, op].item())
        torch.testing.assert_close(out[i], reference, atol=1e-5, rtol=0)


def test_batch_geometry_is_exact_for_flips_and_shifts():
    img = torch.arange(3 * 8 * 8, dtype=torch.float32).view(1, 3, 8, 8) / 255
    params = {"strong": torch.tensor([True]), "angle": torch.tensor([0.0]), "flip": torch.tensor([True]),
              "shift": torch.tensor([[0.0, 0.0]])}
    torch.testing.assert_close(transforms._geometry(img.clone(), params), img.flip(-1))
    params.update(flip=torch.tensor([False]), shift=torch.tensor([[2 / 8, 0.0]]))
    shifted = transforms._geometry(img.clone(), params)
    torch.testing.assert_close(shifted[..., 2:], img[..., :-2])
    torch.testing.assert_close(shifted[..., :2], img[..., [1, 0]])  # the uncovered columns mirror the image
    params.update(angle=torch.tensor([90.0]), shift=torch.tensor([[0.0, 0.0]]))
    rotated = transforms._geometry(img.clone(), params)
    assert torch.equal(rotated, torch.rot90(img, 1, (-2, -1))) or torch.equal(rotated, torch.rot90(img, -1, (-2, -1)))


def demo_images(tiny_demo, n=300, size=64) -> list:
    """The first ``n`` demo training images, decoded and resized (uint8 tensors)."""
    from torchvision.transforms import v2

    from simpsons_lib.data import layout

    paths = sorted((tiny_demo / "train" / "simpsons_dataset").rglob("*.jpg"))[:n]
    resize = v2.Resize((size, size), antialias=True)
    return [resize(v2.ToImage()(layout.load_rgb(p))) for p in paths]


def augmented_pairs(images, make_strong):
    """The same demo training images through ``make_strong`` and through no geometry (uint8 arrays)."""
    torch.manual_seed(0)
    return np.stack([make_strong(x).numpy() for x in images]), np.stack([x.numpy() for x in images])


def test_strong_geometry_leaves_no_border_cue_where_a_black_fill_does(tiny_demo):
    """A classifier on corner and edge statistics alone cannot tell geometrically augmented images (the
    strong classes') from untouched ones with the reflection fill, and tells them apart at once with
    the black fill the per-image and batch paths used before."""
    from simpsons_lib.reporting import leakage

    images = demo_images(tiny_demo)  # decoded once, through each fill
    reflected = leakage.augmentation_cue_check(*augmented_pairs(images, transforms.StrongGeometry(30, 0.5, 0.15)))
    black = leakage.augmentation_cue_check(*augmented_pairs(
        images, transforms.StrongGeometry(30, 0.5, 0.15, padding_mode="zeros")))
    assert black.cue and black.accuracy > 0.9
    assert not reflected.cue, reflected
    assert reflected.accuracy < black.accuracy - 0.3


def test_the_per_image_and_batch_geometry_are_one_function():
    """``StrongGeometry`` (per image) resamples with ``BatchAugment``'s ``_geometry``: its draws through
    the batch function give the same pixels, mirrored fill included."""
    img = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    geometry = transforms.StrongGeometry(30, 0.5, 0.15)
    for seed in range(5):
        torch.manual_seed(seed)
        out = geometry(img)
        torch.manual_seed(seed)
        params = {"strong": torch.tensor([True]), "angle": (2 * torch.rand(1) - 1) * 30, "flip": torch.rand(1) < 0.5,
                  "shift": (2 * torch.rand(1, 2) - 1) * 0.15}
        batch = transforms._geometry(img.unsqueeze(0).float(), params)[0].round().to(torch.uint8)
        assert torch.equal(out, batch)
        assert not torch.equal(out, img)
    corners = torch.stack([geometry(img)[:, :3, :3] for _ in range(20)])
    assert (corners.float().mean() > 40)  # mirrored image content in the corners, not black


def test_strong_geometry_for_all_moves_every_class_and_keeps_the_jitter_by_class():
    aug = transforms.BatchAugment(4, strong_labels=[1], geometry_for_all=True)
    params = aug.sample(torch.tensor([0, 1, 2, 3] * 8), torch.Generator().manual_seed(0))
    assert params["strong"].all() and (params["angle"] != 0).sum() > 20  # every sample gets the geometry
    spread = (params["factors"] - 1).abs().amax(1)
    labels = torch.tensor([0, 1, 2, 3] * 8)
    assert spread[labels != 1].max() <= 0.1 + 1e-6 and spread[labels == 1].max() > 0.1  # jitter still by class
    per_image = transforms.PerClassTransform(32, strong_labels=[1], geometry_for_all=True)
    assert isinstance(per_image.mild.transforms[-1], transforms.StrongGeometry)
    assert not any(isinstance(t, transforms.StrongGeometry) for t in transforms.PerClassTransform(32, [1]).mild.transforms)
