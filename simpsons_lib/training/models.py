"""The study's models: SimpleCnn, MidCnn and a partly frozen torchvision transfer model.

``build_model`` makes any of them from parameters; ``n_classes`` always comes from the data.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import urllib.error
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..config.choices import ARCHITECTURES, FINETUNE_MODES, WEIGHTS_FALLBACKS

CHANNELS = (3, 8, 16, 32, 64, 96)


def _conv_blocks(padding: int) -> nn.Sequential:
    blocks = []
    for c_in, c_out in zip(CHANNELS[:-1], CHANNELS[1:]):
        blocks.append(nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=padding),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ))
    return nn.Sequential(*blocks)


def _flat_size(features: nn.Module, input_size: int) -> int:
    was_training = features.training
    features.eval()
    try:
        with torch.no_grad():
            n = features(torch.zeros(1, 3, input_size, input_size)).numel()
    except RuntimeError:
        n = 0
    features.train(was_training)
    if n == 0:
        raise ValueError(f"input_size {input_size} is too small for five conv+pool blocks")
    return n


class SimpleCnn(nn.Module):
    """The recipe's baseline: five Conv(3x3, no padding)→BatchNorm→ReLU→MaxPool blocks
    3→8→16→32→64→96, then FC flatten→256→n_classes (flatten = 96·5·5 = 2400 at 224 px)."""

    def __init__(self, n_classes: int, input_size: int = 224):
        super().__init__()
        self.features = _conv_blocks(padding=0)
        self.flat_size = _flat_size(self.features, input_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.flat_size, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MidCnn(nn.Module):
    """SimpleCnn with padding in the convolutions, BatchNorm1d and dropout 0.5 in the FC part."""

    def __init__(self, n_classes: int, input_size: int = 224, dropout: float = 0.5):
        super().__init__()
        self.features = _conv_blocks(padding=1)
        self.flat_size = _flat_size(self.features, input_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.flat_size, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(256, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be loaded; the message says where to put the file."""


class WeightsFileError(ValueError):
    """A local ``weights`` file cannot be used as a state dict; the message names the file."""


def is_weights_path(weights: str) -> bool:
    """Whether ``weights`` names a local state-dict file rather than torchvision weights."""
    return os.sep in weights or "/" in weights or weights.endswith((".pth", ".pt")) or Path(weights).exists()


def weights_file(weights: str | None) -> Path | None:
    """The local state-dict file that ``weights`` names (``is_weights_path``), or None for torchvision
    weights or null; a named file that is not there fails naming it (the plan and the model alike)."""
    if weights is None or not is_weights_path(weights):
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights: no such state-dict file: {path}")
    return path


def named_weights(name: str, weights: str):
    """torchvision's weights enum that ``weights`` (e.g. ``IMAGENET1K_V1`` or ``DEFAULT``) names for model
    ``name``; a ``ValueError`` lists the names it knows."""
    known = torchvision.models.get_model_weights(name)
    try:
        return known.DEFAULT if weights == "DEFAULT" else known[weights]
    except KeyError:
        raise ValueError(f"weights: {name} has no weights {weights!r}; known: {', '.join(w.name for w in known)}, "
                         "DEFAULT, a state-dict path, or null") from None


def weights_cache_file(enum) -> Path:
    """Where torchvision keeps (or will download) the file of a weights enum: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)


@contextlib.contextmanager
def _hub_quiet_unless_fetched():
    """torch.hub writes ``Downloading: "<url>" to <file>`` before it tries to download, also when nothing
    can be downloaded: what it writes is held back, and written only when the download succeeded."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield
    sys.stdout.write(out.getvalue())
    sys.stderr.write(err.getvalue())


_UNFETCHABLE: dict[tuple[str, str], BaseException] = {}  # (url, torch hub dir) -> why, in this process


def fetch_weights(enum) -> Path:
    """The file of a torchvision weights enum in ``TORCH_HOME``, downloaded when it is not there yet
    (torch.hub's "Downloading" line only when it was). A download that failed raises its error, and
    ``fetch_weights`` does not try it again in this process for the same TORCH_HOME (the plan step and a
    page's note ask; building the model, ``load_backbone``, asks torchvision itself)."""
    target = weights_cache_file(enum)
    if target.is_file():
        return target
    key = (enum.url, str(torch.hub.get_dir()))
    if key in _UNFETCHABLE:
        raise _UNFETCHABLE[key]
    try:
        with _hub_quiet_unless_fetched():
            enum.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:
        _UNFETCHABLE[key] = exc
        raise
    return target


def fallback_reason(weights: str, cause: BaseException | None) -> str:
    """Why named weights were not used, in a few words (a run's ``weights_fallback_reason``)."""
    return f"{weights} not in TORCH_HOME and not downloadable" + (f" ({type(cause).__name__})" if cause else "")


def weights_unavailable(name: str, weights: str | None) -> str | None:
    """Why the named torchvision ``weights`` of backbone ``name`` cannot be had (``fallback_reason``), or
    None when they can (cached or fetched now), or when ``weights`` is null or a state-dict path."""
    if weights is None or is_weights_path(weights):
        return None
    enum = named_weights(name, weights)
    try:
        fetch_weights(enum)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        return fallback_reason(weights, exc)
    return None


def load_backbone(name: str, weights: str | None) -> nn.Module:
    """A torchvision model by name with ``weights``: None, a weights enum name such as
    ``IMAGENET1K_V2`` or ``DEFAULT`` (loaded through torchvision's API and the TORCH_HOME cache), or the
    path of a local state-dict file for that architecture. Never falls back to random weights."""
    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError as exc:
        raise ValueError(f"backbone: unknown torchvision model {name!r}") from exc
    if weights is None:
        return builder(weights=None)
    path = weights_file(weights)
    if path is not None:
        model = builder(weights=None)
        try:  # weights_only: tensors and plain data, never code from the file
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a foreign pickle, a truncated or corrupt file, not a torch file at all
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise WeightsFileError(f"weights: {path} is not a readable state-dict file ({type(exc).__name__}: "
                                   f"{reason}); replace it with one saved by torch.save(model.state_dict(), ...)"
                                   ) from None
        if isinstance(state, dict) and "model_state" in state:
            state = state["model_state"]
        if not isinstance(state, dict):
            raise WeightsFileError(f"weights: {path} holds a {type(state).__name__}, not a state dict for {name}")
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsFileError(f"weights: {path} is not a state dict for {name}: {exc}") from exc
        return model
    enum = named_weights(name, weights)
    try:  # the builder makes the model, then fetches: a fallback's random weights stay those it always had
        with _hub_quiet_unless_fetched():
            return builder(weights=enum)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        target = weights_cache_file(enum)
        raise WeightsUnavailableError(
            f"parameter 'weights': could not load {name} weights {enum} ({exc}). Download {enum.url} on a machine with "
            f"network access and put it at {target} (TORCH_HOME={os.environ.get('TORCH_HOME', 'unset')}), "
            "or set weights to the path of a local state-dict file (or weights_fallback: random to train from "
            "random weights instead, saying so)."
        ) from exc



def load_backbone_or_random(name: str, weights: str | None, fallback: str = "error") -> tuple[nn.Module, str | None,
                                                                                                str | None]:
    """``load_backbone`` with the ``weights_fallback`` rule: ``(net, weights_used, reason)``.

    When named torchvision weights cannot be had (``WeightsUnavailableError``: not in the TORCH_HOME
    cache and not downloadable), ``fallback="error"`` raises and ``"random"`` returns a randomly
    initialised net with ``weights_used=None`` and a short ``reason`` (logged at debug level only: the run's
    page says it once, at its top, and its title gets a short tag). A missing or unreadable state-dict file,
    or an unknown weights name, is an error either way."""
    if fallback not in WEIGHTS_FALLBACKS:
        raise ValueError(f"weights_fallback must be one of {', '.join(WEIGHTS_FALLBACKS)}, not {fallback!r}")
    try:
        return load_backbone(name, weights), weights, None
    except WeightsUnavailableError as exc:
        if fallback == "error":
            raise
        reason = fallback_reason(weights, exc.__cause__)
        # said once, where a reader looks first: the note at the top of the run's page, the title's tag
        logging.getLogger(__name__).debug("%s: training %s from random weights (weights_fallback: random)",
                                          reason, name)
        return load_backbone(name, None), None, reason


def _last_stage_and_width(name: str, net: nn.Module) -> tuple[list[nn.Module], int, str]:
    """The modules left trainable, the pooled feature width, and the classifier attribute."""
    if hasattr(net, "layer4") and hasattr(net, "fc"):  # resnet, resnext, wide_resnet
        return [net.layer4], net.fc.in_features, "fc"
    if name.startswith("convnext"):
        return [net.features[-1]], net.classifier[-1].in_features, "classifier"
    if name.startswith(("mobilenet_v2", "mobilenet_v3", "efficientnet")):
        linear = next(m for m in net.classifier if isinstance(m, nn.Linear))
        # last block (stage) of inverted residuals and the final 1x1 conv
        return [net.features[-2], net.features[-1]], linear.in_features, "classifier"
    raise ValueError(f"backbone: {name!r} is not a supported family (resnet, mobilenet_v2/v3, "
                     "efficientnet, convnext)")



class TransferModel(nn.Module):
    """A torchvision backbone, frozen except its last stage (``finetune="last_stage"``, the recipe) or
    not frozen at all (``"full"``), with a new head width→hidden→n_classes.

    Frozen BatchNorm layers stay in eval mode while training, so their ImageNet statistics are kept.
    ``weights_used`` is the weights the backbone really holds (None: random), ``weights_fallback_reason``
    why named weights were not used (``weights_fallback="random"``, see ``load_backbone_or_random``).
    """

    def __init__(self, n_classes: int, backbone: str = "resnet50", weights: str | None = None,
                 head_hidden: int = 512, head_dropout: float = 0.0, finetune: str = "last_stage",
                 weights_fallback: str = "error"):
        super().__init__()
        if finetune not in FINETUNE_MODES:
            raise ValueError(f"finetune must be one of {', '.join(FINETUNE_MODES)}, not {finetune!r}")
        self.backbone_name = backbone
        self.finetune = finetune
        self.net, self.weights_used, self.weights_fallback_reason = load_backbone_or_random(
            backbone, weights, weights_fallback)
        trainable, width, attr = _last_stage_and_width(backbone, self.net)
        self.feature_width = width
        head = nn.Sequential(
            nn.Linear(width, head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(head_dropout),
            nn.Linear(head_hidden, n_classes),
        )
        if backbone.startswith("convnext"):  # keep its LayerNorm2d + Flatten before the new head
            head = nn.Sequential(*list(self.net.classifier)[:-1], *head)
        setattr(self.net, attr, head)
        if finetune == "full":
            trainable = [self.net]
        for p in self.net.parameters():
            p.requires_grad_(False)
        for module in [*trainable, head]:
            for p in module.parameters():
                p.requires_grad_(True)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def train(self, mode: bool = True) -> "TransferModel":
        super().train(mode)
        for m in self.net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in m.parameters()
            ):
                m.eval()
        return self


def _output_widths(blocks: list[nn.Module], input_size: int = 64) -> list[int]:
    """The channels each block of a ``features`` sequence puts out, read by passing a blank image."""
    widths, was_training = [], [b.training for b in blocks]
    x = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad():
        for block in blocks:
            x = block.eval()(x)
            widths.append(int(x.shape[1]))
    for block, mode in zip(blocks, was_training):
        block.train(mode)
    return widths


def backbone_stages(model: TransferModel) -> list[tuple[str, list[nn.Parameter]]]:
    """The stages of a transfer model in order from the input to the new head, each as ``(name, its
    parameters)``: the unit of layer-wise learning rates (``train.layerwise_param_groups``).

    ResNets: the stem (conv1, bn1), layer1 … layer4, the head. The ``features`` families (MobileNet,
    EfficientNet, ConvNeXt): consecutive blocks of one output width form a stage (MobileNetV2's 17
    inverted residuals become its 7 stages of the paper, ConvNeXt's downsampling joins the stage it
    feeds), then the head. Every parameter of the model is in exactly one stage (checked)."""
    net = model.net
    if hasattr(net, "layer4") and hasattr(net, "fc"):
        groups = [("stem", [net.conv1, net.bn1])] + [(f"layer{i}", [getattr(net, f"layer{i}")]) for i in range(1, 5)]
    else:
        blocks = list(net.features)
        groups, last_width = [], None
        for i, (block, width) in enumerate(zip(blocks, _output_widths(blocks))):
            if groups and width == last_width:
                first = groups[-1][0].split("-")[0]
                groups[-1] = (f"{first}-{i}", groups[-1][1] + [block])
            else:
                groups.append((f"features.{i}", [block]))
            last_width = width
    groups.append(("head", [model.head]))
    stages = [(name, [p for m in modules for p in m.parameters()]) for name, modules in groups]
    stages = [(name, ps) for name, ps in stages if ps]
    covered = [id(p) for _, ps in stages for p in ps]
    if len(covered) != len(set(covered)) or set(covered) != {id(p) for p in model.parameters()}:
        raise ValueError(f"backbone_stages: the stages of {model.backbone_name} do not hold every parameter once")
    return stages



def build_model(arch: str, n_classes: int, input_size: int = 224, backbone: str = "resnet50",
                weights: str | None = None, head_hidden: int = 512, head_dropout: float = 0.0,
                dropout: float = 0.5, finetune: str = "last_stage", weights_fallback: str = "error") -> nn.Module:
    if arch == "simple_cnn":
        return SimpleCnn(n_classes, input_size)
    if arch == "mid_cnn":
        return MidCnn(n_classes, input_size, dropout=dropout)
    if arch == "transfer":
        return TransferModel(n_classes, backbone, weights, head_hidden, head_dropout, finetune, weights_fallback)
    raise ValueError(f"arch must be one of {ARCHITECTURES}, not {arch!r}")


def build_model_from_params(p, n_classes: int, weights: str | None = ...) -> nn.Module:
    """The one way to build a run's model from its parameters (a run's ``Params``, a checkpoint's or an
    export's). ``weights`` overrides ``p["weights"]`` (``None`` when trained weights are loaded after);
    keys an export does not keep (``finetune``, ``weights_fallback``) take ``build_model``'s defaults."""
    return build_model(p["arch"], n_classes, p["image_size"], backbone=p["backbone"],
                       weights=p.get("weights") if weights is ... else weights, head_hidden=p["head_hidden"],
                       head_dropout=p["head_dropout"], dropout=p["dropout"],
                       finetune=p.get("finetune", "last_stage"), weights_fallback=p.get("weights_fallback", "error"))


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "frozen": total - trainable}
