"""Beyond the recipe: full fine-tune, layer-wise LRs, warmup + cosine, label smoothing, MixUp/CutMix, TTA,
and the weights fallback (real ImageNet weights where they can be had, random weights said so elsewhere)."""

import math
import re
import urllib.error

import pytest
import torch
import torchvision
from torch.utils.data import TensorDataset

from simpsons_lib.config import files as io_utils
from simpsons_lib.config import params
from simpsons_lib.config import paths
from simpsons_lib.data import study
from simpsons_lib.pipeline import preflight
from simpsons_lib.reporting import index_page, notes
from simpsons_lib.reporting import narrative
from simpsons_lib.reporting import tables
from simpsons_lib.training import devices
from simpsons_lib.training import evaluation
from simpsons_lib.training import experiment
from simpsons_lib.training import loop as train
from simpsons_lib.training import models
from simpsons_lib.training import optim
from simpsons_lib.training.transforms import batch_mixing


@pytest.fixture
def no_network(monkeypatch):
    """Every download raises, as without network (the URLs asked for are listed)."""
    calls = []

    def unreachable(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network unreachable (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    return calls


@pytest.fixture
def offline(tmp_path, monkeypatch, no_network):
    """An empty TORCH_HOME and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    return no_network


def modern(train_params, **overrides):
    """The demo's modern run, small: 32 px, one epoch (``small_params``: on the small demo, 3 steps of 8)."""
    demo = params.resolve("demo", "modern")
    values = {k: v for k, v in demo.items() if demo.sources.get(k) == "modern.yaml"}
    values.update(arch="transfer", worst_from_run=None, worst_k=None, image_size=32, epochs=1, batch_size=64, run_name="modern",
                  title="MobileNetV2 full fine-tune")
    return train_params(**{**values, **overrides})


# --- weights: pretrained where they can be had, random and said so elsewhere ---------------------------

def test_cached_weights_are_used_and_identical_to_torchvision(torch_home, no_network):
    model = models.build_model("transfer", 5, 64, backbone="mobilenet_v2", weights="IMAGENET1K_V1",
                               finetune="full", weights_fallback="random")
    assert model.weights_used == "IMAGENET1K_V1" and model.weights_fallback_reason is None
    assert no_network == []  # from the TORCH_HOME cache, no download
    reference = torchvision.models.mobilenet_v2(weights=torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1)
    ours = model.net.state_dict()
    for key, value in reference.state_dict().items():
        if key.startswith("features."):
            assert torch.equal(ours[key], value), key
    assert "torchvision's IMAGENET1K_V1 weights" in narrative.describe_transfer(model, "IMAGENET1K_V1")


def test_unreachable_weights_fall_back_to_random_and_say_so_or_raise_naming_the_key(offline):
    with pytest.raises(models.WeightsUnavailableError, match="parameter 'weights'.*weights_fallback: random"):
        models.build_model("transfer", 5, 64, backbone="mobilenet_v2", weights="IMAGENET1K_V1")
    assert offline and offline[-1].endswith("mobilenet_v2-b0353104.pth")  # it did try to download
    model = models.build_model("transfer", 5, 64, backbone="mobilenet_v2", weights="IMAGENET1K_V1",
                               weights_fallback="random")
    assert model.weights_used is None
    assert model.weights_fallback_reason == "IMAGENET1K_V1 not in TORCH_HOME and not downloadable (URLError)"
    assert "random initial weights, not IMAGENET1K_V1" in narrative.describe_transfer(model, "IMAGENET1K_V1")
    with pytest.raises(FileNotFoundError):  # a missing local file is never a reason to fall back
        models.build_model("transfer", 5, 64, backbone="mobilenet_v2", weights="/no/such.pth", weights_fallback="random")


def test_a_fetch_that_fails_prints_no_downloading_line_and_the_page_says_why_once(train_params, offline, capsys):
    """torch.hub writes 'Downloading: "https://download.pytorch.org/..."' before it tries: nothing was downloaded, so
    neither the plan step nor the notebook shows it; the run's page says why in one note at its top."""
    p = train_params(arch="transfer", backbone="mobilenet_v2", weights="IMAGENET1K_V1", weights_fallback="random")
    assert preflight.check_transfer(p, "modern.yaml: ").startswith("warning: ")
    page_notes = notes.page_notes(params.resolve("demo", "modern"))
    model = models.build_model("transfer", 5, 64, backbone="mobilenet_v2", weights="IMAGENET1K_V1",
                               weights_fallback="random")
    captured = capsys.readouterr()
    assert "Downloading" not in captured.err + captured.out and offline  # it did try
    reason = "IMAGENET1K_V1 not in TORCH_HOME and not downloadable (URLError)"
    assert model.weights_fallback_reason == reason
    assert [line for line in page_notes if reason in line] == [
        f"modern: mobilenet_v2 trained from random weights, not IMAGENET1K_V1 ({reason}; weights_fallback: random): "
        "it shows the mechanics of fine-tuning, not transfer learning."]
    assert reason not in narrative.describe_transfer(model, "IMAGENET1K_V1")


def test_preflight_warns_instead_of_failing_only_with_the_random_fallback(train_params, offline):
    p = train_params(arch="transfer", backbone="mobilenet_v2", weights="IMAGENET1K_V1", weights_fallback="random")
    note = preflight.check_transfer(p, "modern.yaml: ")
    assert note.startswith("warning: mobilenet_v2 IMAGENET1K_V1 weights are not in") and "random weights" in note
    p = train_params(arch="transfer", backbone="mobilenet_v2", weights="IMAGENET1K_V1")
    with pytest.raises(preflight.PreflightError, match=r"modern.yaml: parameter 'weights': .*weights_fallback"):
        preflight.check_transfer(p, "modern.yaml: ")


def test_a_fallback_run_records_it_in_title_metrics_and_index_page(small_params, offline):
    p = modern(small_params, batch_size=8)
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    reason = "IMAGENET1K_V1 not in TORCH_HOME and not downloadable (URLError)"
    assert p.title == "MobileNetV2 full fine-tune (random weights)"  # a short tag; the reason is said once, on top
    result = experiment.train_model(model, s, p, rp, [], progress=False)
    metrics, _ = experiment.evaluate_model(model, s, p, rp, result, [])
    saved = io_utils.read_json(rp.metrics_json)
    assert saved["weights_used"] is None and saved["weights_fallback_reason"] == reason
    assert saved["title"] == p.title and saved["tta"] == "flip"
    words = narrative.describe_runs({"modern": saved})
    assert "modern ran without pretrained weights" in words and reason not in words  # the reason: on its page
    study_paths = rp.study
    io_utils.write_json(study_paths.manifests / "modern.json", {
        "run": "modern", "kind": "train", "parameters": dict(p), "data": {"demo": True}, "keys": None,
        "started": "2026-01-01T00:00:00", "seconds": 1.0, "device": "cpu"})
    io_utils.write_text(rp.notebook, "{}")  # the executed notebook: the pipeline's last step of a run that succeeded
    page = index_page.build(study_paths, ["modern"]).read_text()
    assert "modern: mobilenet_v2 trained from random weights, not IMAGENET1K_V1" in page and reason in page


def test_the_modern_run_trains_every_stage_at_its_own_lr_with_per_step_warmup(small_params, torch_home, no_network):
    p = modern(small_params, epochs=2, batch_size=8)  # 3 steps an epoch: a warmup of 2 steps (0.5 epoch)
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    assert model.weights_used == "IMAGENET1K_V1" and p.title == "MobileNetV2 full fine-tune"
    assert models.count_parameters(model)["frozen"] == 0
    groups = optim.parameter_groups(model, p)
    table = tables.param_groups_table(groups)
    assert list(table["group"]) == [name for name, _ in models.backbone_stages(model)]
    assert table["lr"].iloc[-1] == p.lr and table["lr"].iloc[-2] == pytest.approx(p.lr * p.lr_decay)
    assert table["parameters"].sum() == models.count_parameters(model)["total"]
    result = experiment.train_model(model, s, p, rp, [], progress=False)
    h = result.history
    steps = math.ceil(len(s.train) / p.batch_size)
    warmup = round(p.warmup_epochs * steps)
    assert warmup > 1  # the first step's LR below tells a per-step warmup from none
    assert h["lr"].iloc[0] == pytest.approx(p.lr / warmup)  # the first step of the warmup
    assert 0 < h["lr"].iloc[1] < p.lr  # epoch 2 starts on the cosine, below the peak
    assert h["train_loss"].notna().all() and (h["train_accuracy"] <= 1).all()
    metrics, _ = experiment.evaluate_model(model, s, p, rp, result, [])
    assert metrics["weights_used"] == "IMAGENET1K_V1" and metrics["weights_fallback_reason"] is None


# --- the pieces -------------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone,first,n", [("resnet18", "stem", 6), ("mobilenet_v2", "features.0", 10),
                                              ("convnext_tiny", "features.0-1", 5)])
def test_backbone_stages_hold_every_parameter_once_from_input_to_head(backbone, first, n):
    model = models.TransferModel(7, backbone, finetune="full")
    stages = models.backbone_stages(model)
    assert len(stages) == n and stages[0][0] == first and stages[-1][0] == "head"
    assert stages[-1][1] == list(model.head.parameters())
    assert sum(p.numel() for _, ps in stages for p in ps) == models.count_parameters(model)["total"]


def test_layerwise_groups_decay_towards_the_input_and_skip_frozen_stages():
    recipe = models.TransferModel(7, "resnet18")  # last_stage: layer4 + head train
    groups = optim.layerwise_param_groups(models.backbone_stages(recipe), 0.01, 0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("layer4", 0.005), ("head", 0.01)]
    full = models.TransferModel(7, "resnet18", finetune="full")
    groups = optim.layerwise_param_groups(models.backbone_stages(full), 0.01, 0.5)
    assert [g["name"] for g in groups] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert [g["lr"] for g in groups] == pytest.approx([0.01 * 0.5 ** k for k in (5, 4, 3, 2, 1, 0)])
    optimizer = optim.build_optimizer(groups, "adamw", 0.01, weight_decay=0.05)
    # each stage keeps its LR; only its weights of 2+ dimensions decay (none on biases and norm weights)
    assert sorted({g["lr"] for g in optimizer.param_groups}) == sorted(g["lr"] for g in groups)
    for g in optimizer.param_groups:
        assert g["weight_decay"] == (0.05 if all(q.ndim > 1 for q in g["params"]) else 0.0)
        assert len({q.ndim > 1 for q in g["params"]}) == 1
    decayed = {id(q) for g in optimizer.param_groups if g["weight_decay"] > 0 for q in g["params"]}
    assert decayed == {id(q) for g in groups for q in g["params"] if q.ndim > 1}


def test_finetune_full_trains_everything_and_last_stage_is_the_recipe():
    recipe = models.TransferModel(7, "resnet18")
    assert narrative.trainable_modules(recipe) == ["net.layer4", "net.fc"]
    full = models.TransferModel(7, "resnet18", finetune="full")
    assert models.count_parameters(full)["frozen"] == 0
    full.train()
    assert all(m.training for m in full.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert "Trained: the whole network" in narrative.describe_transfer(full, None)
    with pytest.raises(ValueError, match="finetune"):
        models.TransferModel(7, "resnet18", finetune="half")


def test_warmup_cosine_rises_linearly_then_falls_to_zero():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = optim.build_scheduler(optimizer, "warmup_cosine", epochs=3, warmup_epochs=1, steps_per_epoch=4)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4:] == sorted(lrs[4:], reverse=True) and lrs[4] == pytest.approx(1.0) and lrs[-1] < 0.05
    with pytest.raises(ValueError, match="steps_per_epoch"):
        optim.build_scheduler(optimizer, "warmup_cosine", epochs=3, warmup_epochs=1)


class LabelReader(torch.nn.Module):
    """Predicts the class written in the image (its mean value), with one trainable scale."""

    def __init__(self, n_classes):
        super().__init__()
        self.n_classes, self.scale = n_classes, torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        label = x.mean(dim=(1, 2, 3)).round().long()
        return torch.nn.functional.one_hot(label, self.n_classes).float() * 10 * self.scale


def test_soft_targets_train_but_the_accuracy_counts_the_hard_labels():
    labels = torch.arange(24) % 4
    images = labels.float().view(-1, 1, 1, 1).expand(-1, 3, 8, 8).clone()
    loader = devices.make_loader(TensorDataset(images, labels), 8, shuffle=True, seed=0)
    model = LabelReader(4)
    optimizer = optim.build_optimizer(model, "sgd", 0.01)
    seen_targets = []

    def uniform_targets(x, y):  # keeps the images, replaces the targets by soft, uniform ones
        seen_targets.append(y)
        return x, torch.full((len(y), 4), 0.25)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    loss, accuracy, seen, _ = train.train_epoch(model, loader, optimizer, loss_fn, torch.device("cpu"), "off",
                                             uniform_targets)
    assert accuracy == 1.0 and seen == 24 and len(seen_targets) == 3  # argmax of the soft targets: 0.25 right
    mix = batch_mixing(0.2, 1.0, 4)
    mixed_images, soft = mix(images[:8], labels[:8])
    assert soft.shape == (8, 4) and torch.allclose(soft.sum(1), torch.ones(8))
    assert batch_mixing(0.0, 0.0, 4) is None


def test_tta_validation_averages_the_flipped_views(train_params):
    p = train_params(tta="flip")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()  # flip-sensitive
    images, labels = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    loader = devices.make_loader(TensorDataset(images, labels), 4, shuffle=False, seed=0)
    probs, targets, loss = evaluation.predict(model, loader, torch.device("cpu"), p["amp"], tta=p["tta"])
    with torch.no_grad():
        expected = (torch.softmax(model(images), 1) + torch.softmax(model(images.flip(-1)), 1)) / 2
    assert torch.allclose(torch.from_numpy(probs), expected, atol=1e-6) and targets == labels.tolist()
    assert loss == pytest.approx(float(-expected[torch.arange(6), labels].log().mean()), rel=1e-5)
    plain = evaluation.predict(model, loader, torch.device("cpu"), p["amp"], tta="none")
    assert not torch.allclose(torch.from_numpy(plain[0]), expected)


# --- validation of the new parameters -------------------------------------------------------------

@pytest.mark.parametrize("key,value,message", [
    ("finetune", "half", "must be one of 'last_stage', 'full'"),
    ("lr_decay", 0.0, "must be > 0"),
    ("lr_decay", 1.5, "must be <= 1"),
    ("label_smoothing", 1.0, "must be <= 0.99"),
    ("mixup_alpha", -0.2, "must be >= 0"),
    ("cutmix_alpha", "1", "expected int or float"),
    ("scheduler", "warmup", "warmup_cosine"),
    ("warmup_epochs", -1, "must be >= 0"),
    ("weights_fallback", "zeros", "must be one of 'error', 'random'"),
    ("tta", "flip+rotate", "must be one of 'none', 'flip', 'flip+scales'"),
])
def test_new_parameters_are_checked_naming_the_key(train_params, key, value, message):
    with pytest.raises(params.ParameterError, match=rf"parameter '{key}': .*{re.escape(message)}"):
        train_params(arch="transfer", **{key: value})


def test_rules_across_the_new_parameters(train_params):
    with pytest.raises(params.ParameterError, match=r"parameter 'weights_fallback': 'random' is not allowed on the Kaggle"):
        train_params(dataset="kaggle", data_dir=None, arch="transfer", weights_fallback="random")
    assert train_params(dataset="kaggle", arch="transfer", weights_fallback="random")  # a data_dir of your own
    with pytest.raises(params.ParameterError, match=r"parameter 'warmup_epochs': must be less than epochs \(2\)"):
        train_params(arch="transfer", scheduler="warmup_cosine", epochs=2, warmup_epochs=2)
    with pytest.raises(params.ParameterError, match=r"parameter 'lr_decay': applies to arch transfer only"):
        train_params(arch="simple_cnn", lr_decay=0.7)
    for key in ("finetune", "lr_decay", "warmup_epochs", "label_smoothing", "mixup_alpha", "cutmix_alpha",
                "weights_fallback"):
        assert params.TRAIN[key].trains, key
    assert not params.TRAIN["tta"].trains  # the final validation only: the weights do not depend on it


def test_the_full_profile_never_falls_back_and_bets_on_a_full_fine_tune():
    full = params.resolve("full", "modern")
    assert full.weights_fallback == "error" and full.weights == "IMAGENET1K_V1" and full.finetune == "full"
    assert full.scheduler == "warmup_cosine" and full.optimizer == "adamw" and full.label_smoothing > 0
    assert full.mixup_alpha > 0 and full.cutmix_alpha > 0
    for profile in ("demo", "smoke"):
        p = params.resolve(profile, "modern")
        assert p.weights == "IMAGENET1K_V1" and p.weights_fallback == "random" and p.backbone == "mobilenet_v2"
        assert "modern" in params.resolve(profile, "report").runs
    assert params.resolve("demo", "resnet50").weights_fallback == "random"
    assert params.resolve("full", "resnet50").weights_fallback == "error"


@pytest.mark.parametrize("arch", ["simple_cnn", "mid_cnn"])
def test_weight_decay_spares_biases_and_normalisation_weights(arch):
    model = models.build_model(arch, 5, 96)
    optimizer = optim.build_optimizer(model, "adamw", 0.01, weight_decay=0.05)
    decay = {id(q) for g in optimizer.param_groups if g["weight_decay"] == 0.05 for q in g["params"]}
    spared = {id(q) for g in optimizer.param_groups if g["weight_decay"] == 0.0 for q in g["params"]}
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert norms and all(id(m.weight) in spared and id(m.bias) in spared for m in norms)
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(id(m.weight) in decay and id(m.bias) in spared for m in convs)
    assert decay | spared == {id(q) for q in model.parameters()} and not decay & spared
    # without weight decay the optimizer is as before: one group over every parameter
    assert len(optim.build_optimizer(model, "adamw", 0.01).param_groups) == 1
