import pytest
import torch
import torchvision
from PIL import Image
from skimage import data as skdata
from torch import nn
from torchvision.transforms import v2

from simpsons_lib.reporting import narrative
from simpsons_lib.training import models
from simpsons_lib.training.transforms import eval_transform


def test_simple_cnn_is_the_recipe():
    model = models.SimpleCnn(42, 224)
    blocks = list(model.features)
    assert len(blocks) == 5
    for block, (c_in, c_out) in zip(blocks, [(3, 8), (8, 16), (16, 32), (32, 64), (64, 96)]):
        conv, bn, relu, pool = block
        assert isinstance(conv, nn.Conv2d) and (conv.in_channels, conv.out_channels) == (c_in, c_out)
        assert conv.kernel_size == (3, 3) and conv.padding == (0, 0)
        assert isinstance(bn, nn.BatchNorm2d) and isinstance(relu, nn.ReLU) and isinstance(pool, nn.MaxPool2d)
    assert model.flat_size == 96 * 5 * 5 == 2400
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(2400, 256), (256, 42)]
    assert models.count_parameters(model)["total"] == 705_802
    assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 42)
    small = models.SimpleCnn(7, 96)
    assert small.flat_size == 96 and small(torch.zeros(1, 3, 96, 96)).shape == (1, 7)
    with pytest.raises(ValueError, match="too small"):
        models.SimpleCnn(7, 48)


def test_mid_cnn_has_padding_batchnorm1d_and_dropout():
    model = models.MidCnn(42, 224)
    assert all(block[0].padding == (1, 1) for block in model.features)
    assert model.flat_size == 96 * 7 * 7
    kinds = [type(m) for m in model.classifier]
    assert nn.BatchNorm1d in kinds and nn.Dropout in kinds
    assert next(m for m in model.classifier if isinstance(m, nn.Dropout)).p == 0.5
    assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 42)


def test_resnet50_transfer_trains_exactly_layer4_and_head():
    model = models.TransferModel(42, "resnet50", weights=None)
    trainable = {n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"layer4", "fc"}
    frozen = {n.split(".")[1] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1", "layer2", "layer3"}
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(2048, 512), (512, 42)]
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 42)
    model.train()
    assert not model.net.bn1.training and not model.net.layer3[0].bn1.training  # frozen BN keeps its stats
    assert model.net.layer4[0].bn1.training


@pytest.mark.parametrize("name,width", [("mobilenet_v2", 1280), ("mobilenet_v3_small", 576),
                                        ("efficientnet_b0", 1280), ("convnext_tiny", 768), ("resnet18", 512)])
def test_transfer_families(name, width):
    model = models.TransferModel(5, name, weights=None)
    assert model.feature_width == width
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 5)
    counts = models.count_parameters(model)
    assert 0 < counts["trainable"] < counts["total"]


def test_unknown_backbone_and_weights_names_fail_clearly():
    with pytest.raises(ValueError, match="backbone"):
        models.TransferModel(3, "not_a_model")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        models.TransferModel(3, "resnet18", weights="IMAGENET9K")


def test_pretrained_mobilenet_v2_through_torchvision_weights_api(torch_home):
    model = models.TransferModel(42, "mobilenet_v2", weights="IMAGENET1K_V1")
    reference = torchvision.models.mobilenet_v2(weights=torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1)
    ours = model.net.state_dict()
    for key, value in reference.state_dict().items():
        if key.startswith("features."):
            assert torch.equal(ours[key], value), key
    assert not torch.equal(ours["features.0.0.weight"], torchvision.models.mobilenet_v2().state_dict()["features.0.0.weight"])


def _labels_imagenet_photos_right(transform, net, categories) -> bool:
    """Chelsea must be an Egyptian cat at >= 0.6 and the coffee an espresso at >= 0.95."""
    with torch.no_grad():
        cat = torch.softmax(net(transform(Image.fromarray(skdata.chelsea()))[None]), 1)[0]
        cup = torch.softmax(net(transform(Image.fromarray(skdata.coffee()))[None]), 1)[0]
    return (categories[int(cat.argmax())] == "Egyptian cat" and cat.max() >= 0.6
            and categories[int(cup.argmax())] == "espresso" and cup.max() >= 0.95)


def test_eval_transform_feeds_a_pretrained_classifier_correctly(torch_home):
    weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    net = torchvision.models.mobilenet_v2(weights=weights).eval()
    cats = weights.meta["categories"]
    assert _labels_imagenet_photos_right(eval_transform(224), net, cats)
    # The bars catch broken preprocessing: no normalisation, swapped channels, or both fail.
    raw = v2.Compose([v2.ToImage(), v2.Resize((224, 224), antialias=True), v2.ToDtype(torch.float32, scale=True)])
    bgr = lambda t: (lambda img: t(img)[[2, 1, 0]])
    assert not _labels_imagenet_photos_right(raw, net, cats)
    assert not _labels_imagenet_photos_right(bgr(eval_transform(224)), net, cats)
    assert not _labels_imagenet_photos_right(bgr(raw), net, cats)


def test_local_weights_file(tmp_path):
    reference = torchvision.models.resnet18()
    path = tmp_path / "my_resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = models.TransferModel(4, "resnet18", weights=str(path))
    assert torch.equal(model.net.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        models.TransferModel(4, "resnet18", weights=str(tmp_path / "missing.pth"))
    torch.save(torchvision.models.mobilenet_v2().state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="not a state dict for resnet18"):
        models.TransferModel(4, "resnet18", weights=str(tmp_path / "wrong.pth"))


def test_no_network_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    with pytest.raises(models.WeightsUnavailableError) as err:
        models.TransferModel(4, "resnet18", weights="IMAGENET1K_V1")
    msg = str(err.value)
    assert str(tmp_path / "empty_home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "state-dict" in msg


def test_build_model_dispatch():
    assert isinstance(models.build_model("simple_cnn", 3, 96), models.SimpleCnn)
    assert isinstance(models.build_model("mid_cnn", 3, 96), models.MidCnn)
    assert isinstance(models.build_model("transfer", 3, 64, backbone="resnet18"), models.TransferModel)
    with pytest.raises(ValueError, match="arch"):
        models.build_model("vit", 3)
    assert "trainable" in narrative.summary(models.build_model("transfer", 3, 64, backbone="resnet18"), 64)
