"""Parameter validation: every notebook's parameters are checked here before any work starts.

Each notebook kind (``eda``, ``train``, ``report``) has a schema: for each key its type, whether
``None`` is allowed, an optional check, and a one-line description. An unknown or mistyped key, a
missing key or a bad value raises ``ParameterError`` naming the key (papermill itself only warns).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml


class ParameterError(ValueError):
    """A parameter is unknown, missing or has a bad value; the message names it."""


@dataclass(frozen=True)
class Spec:
    types: tuple
    help: str
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None  # returns an error message or None


def _one_of(*choices):
    return lambda v: None if v in choices else f"must be one of {', '.join(map(repr, choices))}"


def _range(lo=None, hi=None, lo_open=False):
    def check(v):
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo}"
        if hi is not None and v > hi:
            return f"must be <= {hi}"
        return None
    return check


def _str_list(v):
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


INT, FLOAT, STR, BOOL, LIST = (int,), (int, float), (str,), (bool,), (list,)

DATA = {
    "profile": Spec(STR, "profile name; outputs go to outputs/<profile>/", check=lambda v: None if v.isidentifier() else "must be a plain name"),
    "dataset": Spec(STR, "'kaggle' (data/kaggle) or 'demo' (data/demo, generated when absent)", check=_one_of("kaggle", "demo")),
    "data_dir": Spec(STR, "explicit dataset folder (overrides dataset)", nullable=True),
    "train_dir": Spec(STR, "explicit training folder (class sub-folders)", nullable=True),
    "test_dir": Spec(STR, "explicit test-image folder", nullable=True),
    "demo_scale": Spec(FLOAT, "scale of generated demo data when it is absent", check=_range(0, 1, lo_open=True)),
    "on_bad_image": Spec(STR, "'raise' on a bad image file, or 'skip' and list it", check=_one_of("raise", "skip")),
    "seed": Spec(INT, "one seed for split, init, augmentation and loader order", check=_range(0)),
    "val_fraction": Spec(FLOAT, "validation share of each class", check=_range(0, 0.9, lo_open=True)),
}

EDA = {
    **DATA,
    "image_stats_sample": Spec(INT, "images whose size/mode is read (0 = all)", check=_range(0)),
    "grid_classes": Spec(INT, "classes shown in the sample grid", check=_range(1)),
    "grid_per_class": Spec(INT, "images per class in the sample grid", check=_range(1)),
}

TRAIN = {
    **DATA,
    "run_name": Spec(STR, "name of this run; files are outputs/<profile>/*/<run_name>*", check=lambda v: None if v.isidentifier() else "must be a plain name"),
    "title": Spec(STR, "human title of the run"),
    "arch": Spec(STR, "simple_cnn, mid_cnn or transfer", check=_one_of("simple_cnn", "mid_cnn", "transfer")),
    "backbone": Spec(STR, "torchvision model for arch=transfer (resnet50, mobilenet_v2, ...)"),
    "weights": Spec(STR, "torchvision weights name (IMAGENET1K_V2, DEFAULT), a state-dict path, or null", nullable=True),
    "head_hidden": Spec(INT, "width of the transfer head's hidden layer", check=_range(1)),
    "head_dropout": Spec(FLOAT, "dropout in the transfer head", check=_range(0, 0.99)),
    "dropout": Spec(FLOAT, "dropout of MidCnn's FC part", check=_range(0, 0.99)),
    "image_size": Spec(INT, "square input size in pixels", check=_range(32, 1024)),
    "augment": Spec(BOOL, "apply the recipe's per-class augmentation"),
    "worst_classes": Spec(LIST, "explicit classes that get strong augmentation", check=_str_list),
    "worst_from_run": Spec(STR, "run whose per-class val F1 gives the worst classes", nullable=True),
    "worst_k": Spec(INT, "the k lowest-F1 classes of worst_from_run", nullable=True, check=_range(1)),
    "worst_below": Spec(FLOAT, "classes of worst_from_run with F1 below this", nullable=True, check=_range(0, 1)),
    "epochs": Spec(INT, "maximum epochs", check=_range(1)),
    "batch_size": Spec(INT, "training batch size", check=_range(1)),
    "eval_batch_size": Spec(INT, "evaluation batch size", check=_range(1)),
    "optimizer": Spec(STR, "adam, adamw or sgd", check=_one_of("adam", "adamw", "sgd")),
    "lr": Spec(FLOAT, "learning rate", check=_range(0, 10, lo_open=True)),
    "weight_decay": Spec(FLOAT, "weight decay", check=_range(0)),
    "momentum": Spec(FLOAT, "SGD momentum", check=_range(0, 1)),
    "scheduler": Spec(STR, "none, cosine or step", check=_one_of("none", "cosine", "step")),
    "step_size": Spec(INT, "epochs between LR drops (scheduler=step)", check=_range(1)),
    "gamma": Spec(FLOAT, "LR factor per drop (scheduler=step)", check=_range(0, 1, lo_open=True)),
    "monitor": Spec(STR, "metric for best checkpoint and early stopping", check=_one_of("val_micro_f1", "val_macro_f1", "val_loss")),
    "patience": Spec(INT, "epochs without improvement before stopping (0 = never)", check=_range(0)),
    "device": Spec(STR, "auto, cpu, cuda or mps", check=_one_of("auto", "cpu", "cuda", "mps")),
    "amp": Spec(BOOL, "bf16 autocast on GPU"),
    "num_workers": Spec(INT, "DataLoader worker processes (per_sample loader)", check=_range(0)),
    "loader": Spec(STR, "auto (device_batches on a GPU), per_sample or device_batches",
                   check=_one_of("auto", "per_sample", "device_batches")),
    "cache_images": Spec(BOOL, "decode images once into outputs/cache"),
    "resume": Spec(BOOL, "continue from the run's last checkpoint when its parameters match"),
    "gallery_size": Spec(INT, "misclassified images shown", check=_range(0)),
}

REPORT = {
    **DATA,
    "runs": Spec(LIST, "training runs compared, in study order", check=_str_list),
    "submission_run": Spec(STR, "run whose best checkpoint predicts the test set, or 'best' (by val micro-F1)"),
    "eval_batch_size": Spec(INT, "batch size for test predictions", check=_range(1)),
    "device": Spec(STR, "auto, cpu, cuda or mps", check=_one_of("auto", "cpu", "cuda", "mps")),
    "gallery_size": Spec(INT, "misclassified images shown", check=_range(0)),
}

SCHEMAS: dict[str, dict[str, Spec]] = {"eda": EDA, "train": TRAIN, "report": REPORT}


class Params(dict):
    """Validated parameters; keys are also attributes (``p.lr``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _repr_html_(self) -> str:
        """A compact parameter table in notebooks and their HTML reports."""
        import html

        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(v))}</code></td></tr>"
                       for k, v in self.items())
        return f"<table><thead><tr><th>parameter</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"


def _check_value(key: str, spec: Spec, value: Any) -> None:
    if value is None:
        if not spec.nullable:
            raise ParameterError(f"parameter {key!r}: must not be null ({spec.help})")
        return
    ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
    if not ok:
        want = " or ".join(t.__name__ for t in spec.types)
        raise ParameterError(f"parameter {key!r}: expected {want}, got {type(value).__name__} {value!r} ({spec.help})")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ParameterError(f"parameter {key!r}: {problem}, got {value!r}")


def validate(kind: str, values: Mapping[str, Any], partial: bool = False) -> Params:
    """Check ``values`` against the ``kind`` schema. ``partial``: missing keys are allowed (a params file
    only overrides the notebook's defaults)."""
    if kind not in SCHEMAS:
        raise ParameterError(f"unknown notebook kind {kind!r}; known: {', '.join(SCHEMAS)}")
    schema = SCHEMAS[kind]
    for key in values:
        if key not in schema:
            close = difflib.get_close_matches(key, schema, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(f"unknown parameter {key!r}{hint} for a {kind} notebook")
    if not partial:
        missing = [k for k in schema if k not in values]
        if missing:
            raise ParameterError(f"missing parameter(s): {', '.join(missing)}")
    for key, value in values.items():
        _check_value(key, schema[key], value)
    if kind == "train" and not partial:
        if values["arch"] == "transfer" and not values.get("backbone"):
            raise ParameterError("parameter 'backbone': required when arch is 'transfer'")
        if values["worst_from_run"] and values["worst_k"] is None and values["worst_below"] is None:
            raise ParameterError("parameter 'worst_k': worst_from_run needs worst_k and/or worst_below")
    return Params(values)


def from_namespace(kind: str, namespace: Mapping[str, Any]) -> Params:
    """Collect and validate a notebook's parameters from its globals (after papermill's injection)."""
    return validate(kind, {k: namespace[k] for k in SCHEMAS[kind] if k in namespace})


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: must hold a mapping of parameter names to values")
    return data


def load_run_params(path: str | Path, kind: str) -> dict:
    """A run's parameter overrides: the profile's ``_common.yaml`` (if any) under the run file, only the
    keys the ``kind`` schema knows taken from the common file, and checked (partially)."""
    path = Path(path)
    common_path = path.parent / "_common.yaml"
    values: dict = {}
    if common_path.is_file() and common_path != path:
        common = load_yaml(common_path)
        known = set().union(*SCHEMAS.values())
        for key in common:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ParameterError(f"{common_path}: unknown parameter {key!r}{hint}")
            _check_value(key, next(s[key] for s in SCHEMAS.values() if key in s), common[key])
        values.update({k: v for k, v in common.items() if k in SCHEMAS[kind]})
    own = load_yaml(path)
    try:
        validate(kind, own, partial=True)
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from None
    values.update(own)
    return values
