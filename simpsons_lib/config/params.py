"""Every parameter of the study, defined once: its type, default, help and whether it affects training.

A run's values are resolved in one way, by the pipeline and in JupyterLab alike::

    schema defaults  <  params/<profile>/_common.yaml  <  params/<profile>/<run>.yaml  <  overrides

A run file names its notebook (``notebook: 01_simple_cnn``) and holds only what differs from the
defaults. An unknown or mistyped key, or a bad value, raises ``ParameterError`` naming the key and the
file (papermill itself only warns). Overrides (given in a notebook's ``parameters`` cell) that change a
value make a run of its own: it is named ``<run>-<hash>`` and never writes over the pipeline's files.

    python -m simpsons_lib.config.params show demo mid_cnn     # resolved values, where each comes from, help
    python -m simpsons_lib.config.params runs demo             # the runs of a profile and their notebooks
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from . import choices, paths


class ParameterError(ValueError):
    """A parameter is unknown, missing or has a bad value; the message names it (and its file)."""


@dataclass(frozen=True)
class Spec:
    types: tuple
    default: Any
    help: str
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None  # returns an error message or None
    trains: bool = True      # part of the training fingerprint (see ``record``): changing it retrains
    names_runs: bool = False  # its value names other runs of the profile, which must run first
    normalise: Callable[[Any], Any] | None = None  # a checked value to the one spelling the study uses


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


def _plain_name(v):
    return None if v.replace("-", "_").isidentifier() else "must be a plain name (letters, digits, _ and -)"


def amp_setting(value: Any) -> Any:
    """``amp`` as the study spells it: YAML reads ``amp: off`` (and ``no``, ``false``) as false, and
    ``on``/``yes``/``true`` as true, the boolean ``amp`` of earlier versions, which meant mixed precision
    where the GPU has it: false is ``off``, true is ``auto``. Any other value is returned as it is."""
    return {True: "auto", False: "off"}.get(value, value) if isinstance(value, bool) else value


def _amp(v):
    return _one_of(*choices.AMP_MODES)(amp_setting(v))


def _workers(v):
    if isinstance(v, str):
        return None if v == "auto" else "must be a count (0: load in the main process) or 'auto'"
    return _range(0, 256)(v)


def _tracking(v):
    import importlib.util

    if v not in choices.TRACKING:
        return _one_of(*choices.TRACKING)(v)
    if v == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        return "needs TensorBoard: pip install -e '.[tracking]'"
    return None


INT, FLOAT, STR, BOOL, LIST = (int,), (int, float), (str,), (bool,), (list,)
# Upper bounds the values' users take: numpy's and scikit-learn's seeds, batches and counts far beyond any data.
SEED_MAX, BATCH_MAX, COUNT_MAX = 2**32 - 1, 65_536, 10_000_000
STR_OR_BOOL, INT_OR_STR = (str, bool), (int, str)

DATA = {
    "dataset": Spec(STR, "kaggle", "'kaggle' (data/kaggle, `make data`) or 'demo' (data/demo, `make demo-data`)",
                    check=_one_of(*choices.DATASETS)),
    "data_dir": Spec(STR, None, "a dataset folder of your own in the Kaggle layout (overrides dataset), relative to "
                     "the repository", nullable=True),
    "study_title": Spec(STR, None, "the study's name on its pages (default: 'Simpsons character study' on the Kaggle "
                        "and demo data, 'Image classification study' on a data_dir of your own)", nullable=True,
                        check=lambda v: None if v.strip() else "must not be empty", trains=False),
    "train_dir": Spec(STR, None, "explicit training folder (one sub-folder per class), relative to the data folder",
                      nullable=True),
    "test_dir": Spec(STR, None, "explicit test-image folder, relative to the data folder", nullable=True),
    "answers": Spec(STR, None, "CSV of the true test labels (Id,Expected), relative to the data folder: the "
                    "report scores the submission against it", nullable=True, trains=False),
    "demo_scale": Spec(FLOAT, 0.05, "size of the drawn demo data `make demo-data` generates (1.0: the real "
                       "20,933 + 991 images)", check=_range(0, 1, lo_open=True), trains=False),
    "on_bad_image": Spec(STR, "raise", "'raise' on a bad image file, or 'skip' it and list it in a report",
                         check=_one_of(*choices.ON_BAD_IMAGE)),
    "seed": Spec(INT, 0, "one seed for split, initial weights, augmentation and loader order (numpy and "
                 "scikit-learn take 0 to 2**32 - 1)", check=_range(0, SEED_MAX)),
    "val_fraction": Spec(FLOAT, 0.25, "validation share of each class", check=_range(0, 0.9, lo_open=True)),
    "split": Spec(STR, "random", "random (the recipe's stratified split) or grouped (each group of near-duplicate "
                  "frames kept on one side, stratified by class as far as the groups allow)",
                  check=_one_of(*choices.SPLITS)),
    "near_duplicate_bits": Spec(INT, 34, "two images are near-duplicates when their 195-bit DCT hashes differ in "
                                "at most this many bits (the audit, and the grouped split)", check=_range(0, 194)),
}

EDA = {
    **DATA,
    "image_stats_sample": Spec(INT, 2000, "images whose size and mode are read (0 = all)",
                                check=_range(0, COUNT_MAX)),
    "grid_classes": Spec(INT, 10, "classes shown in the sample grid (the largest)", check=_range(1, 100)),
    "grid_per_class": Spec(INT, 5, "images per class in the sample grid", check=_range(1, 50)),
}

TRAIN = {
    **DATA,
    "title": Spec(STR, "", "human title of the run (default: the run's name)", trains=False),
    "arch": Spec(STR, "transfer", "simple_cnn, mid_cnn or transfer", check=_one_of(*choices.ARCHITECTURES)),
    "backbone": Spec(STR, "resnet50", "torchvision model for arch transfer (any resnet, mobilenet_v2/v3, "
                     "efficientnet or convnext)"),
    "weights": Spec(STR, None, "torchvision weights name (IMAGENET1K_V1, DEFAULT), a state-dict path, or null "
                    "(random)", nullable=True),
    "head_hidden": Spec(INT, 512, "width of the transfer head's hidden layer: features -> head_hidden -> classes",
                        check=_range(1, 65536)),
    "head_dropout": Spec(FLOAT, 0.0, "dropout in the transfer head", check=_range(0, 0.99)),
    "dropout": Spec(FLOAT, 0.5, "dropout of MidCnn's classifier", check=_range(0, 0.99)),
    "image_size": Spec(INT, 224, "square input size in pixels", check=_range(32, 1024)),
    "augment": Spec(BOOL, True, "apply the recipe's per-class augmentation"),
    "strong_geometry": Spec(STR, "worst", "who gets the strong policy's rotation, flip and translation: worst (the "
                            "recipe: the strongly augmented classes only) or all (every class; the colour jitter "
                            "stays strong for the worst classes only)", check=_one_of(*choices.STRONG_GEOMETRY)),
    "worst_classes": Spec(LIST, [], "explicit classes that get strong augmentation", check=_str_list),
    "worst_from_run": Spec(STR, None, "run whose per-class validation F1 picks the worst classes", nullable=True,
                           names_runs=True),
    "worst_k": Spec(INT, None, "... the k lowest-F1 classes of worst_from_run", nullable=True,
                    check=_range(1, COUNT_MAX)),
    "worst_below": Spec(FLOAT, None, "... and/or those with F1 below this", nullable=True, check=_range(0, 1)),
    "epochs": Spec(INT, 10, "maximum epochs", check=_range(1, 10_000)),
    "batch_size": Spec(INT, 64, "training batch size", check=_range(1, BATCH_MAX)),
    "eval_batch_size": Spec(INT, 256, "evaluation batch size", check=_range(1, BATCH_MAX), trains=False),
    "optimizer": Spec(STR, "adam", "adam, adamw or sgd", check=_one_of(*choices.OPTIMIZERS)),
    "lr": Spec(FLOAT, 0.001, "learning rate", check=_range(0, 10, lo_open=True)),
    "weight_decay": Spec(FLOAT, 0.0, "weight decay of the weights with 2+ dimensions (biases and normalisation "
                         "weights get none, as current fine-tuning recipes do)", check=_range(0, 10)),
    "momentum": Spec(FLOAT, 0.9, "SGD momentum (optimizer sgd)", check=_range(0, 1)),
    "scheduler": Spec(STR, "none", "learning-rate schedule: none, cosine, step (per epoch) or warmup_cosine (per "
                      "step: linear warmup over warmup_epochs, then cosine to 0)",
                      check=_one_of(*choices.SCHEDULERS)),
    "warmup_epochs": Spec(FLOAT, 0.0, "epochs of linear LR warmup (scheduler warmup_cosine; fractions allowed)",
                          check=_range(0, 10_000)),
    "step_size": Spec(INT, 3, "epochs between LR drops (scheduler step)", check=_range(1, 10_000)),
    "gamma": Spec(FLOAT, 0.1, "LR factor per drop (scheduler step)", check=_range(0, 1, lo_open=True)),
    "monitor": Spec(STR, "val_micro_f1", "metric for the best checkpoint and early stopping",
                    check=_one_of(*choices.MONITORS)),
    "patience": Spec(INT, 0, "epochs without improvement before stopping (0 = never)", check=_range(0, 10_000)),
    "device": Spec(STR, "auto", "auto (CUDA, then Apple MPS, then CPU), cpu, cuda or mps", check=_one_of(*choices.DEVICES),
                   trains=False),
    "amp": Spec(STR_OR_BOOL, "auto", "mixed precision: auto (bf16 autocast on a GPU with native bf16, fp16 autocast "
                "with a gradient scaler on an older CUDA GPU such as the T4, off on the CPU and Apple MPS), bf16, "
                "fp16 or off (docs/mixed-precision.md)", check=_amp, normalise=amp_setting),
    "num_workers": Spec(INT_OR_STR, 0, "DataLoader worker processes (per_sample loader): a count (0: in the main "
                        "process), or auto (the CPUs this process may use, less one for the main process, at most 8)",
                        check=_workers, trains=False),
    "loader": Spec(STR, "auto", "auto (device_batches on a GPU, else per_sample), per_sample or device_batches",
                   check=_one_of(*choices.LOADERS)),
    "cache_images": Spec(BOOL, True, "decode images once into outputs/cache"),
    "resume": Spec(BOOL, True, "continue from the run's last checkpoint when its training fingerprint matches",
                   trains=False),
    "gallery_size": Spec(INT, 18, "misclassified images shown", check=_range(0, 500), trains=False),
    "finetune": Spec(STR, "last_stage", "what trains in a transfer model: last_stage (the recipe: last stage + new "
                     "head) or full (the whole network)", check=_one_of(*choices.FINETUNE_MODES)),
    "lr_decay": Spec(FLOAT, 1.0, "layer-wise LR factor per backbone stage towards the input (head: lr, last stage: "
                     "lr*d, the one before: lr*d^2, ...; 1.0 = one LR for all)", check=_range(0, 1, lo_open=True)),
    "label_smoothing": Spec(FLOAT, 0.0, "label smoothing of the cross-entropy loss", check=_range(0, 0.99)),
    "mixup_alpha": Spec(FLOAT, 0.0, "MixUp's Beta(alpha, alpha) on each training batch (0 = off)",
                        check=_range(0, 100)),
    "cutmix_alpha": Spec(FLOAT, 0.0, "CutMix's Beta(alpha, alpha) on each training batch (0 = off; with MixUp on "
                         "too, each batch gets one of the two at random)", check=_range(0, 100)),
    "weights_fallback": Spec(STR, "error", "when named torchvision weights cannot be had (not cached in TORCH_HOME, "
                             "not downloadable): error, or random (train from random weights and say so; not on "
                             "the Kaggle data)", check=_one_of(*choices.WEIGHTS_FALLBACKS)),
    "ema_decay": Spec(FLOAT, 0.0, "exponential moving average of the weights (torch's swa_utils.AveragedModel, "
                      "buffers included), updated after every step with this decay; validated, chosen by epoch and "
                      "exported from the average (0 = off; typical 0.99-0.9999)", check=_range(0, 1)),
    "sampling": Spec(STR, "natural", "how training images are drawn each epoch: natural (each once, shuffled: the "
                     "recipe) or balanced (drawn with replacement, an image of class c with weight "
                     "count(c)^-balance_power, seeded like the rest)", check=_one_of(*choices.SAMPLING)),
    "balance_power": Spec(FLOAT, 0.5, "sampling balanced: 1 draws every class equally often, 0.5 in proportion "
                          "to the square root of its count, 0 as natural (but with replacement)",
                          check=_range(0, 1)),
    "tta": Spec(STR, "none", "test-time augmentation of the final validation: none, flip or flip+scales "
                "(the best epoch is still chosen without it)", check=_one_of(*choices.TTA_MODES),
                trains=False),
    "tracking": Spec(STR, "none", "log the run (parameters, per-epoch and final metrics, figures) to a local store: "
                     "none, or tensorboard (outputs/<profile>/tracking; the tracking extra)", check=_tracking,
                     trains=False),
}

REPORT = {
    **DATA,
    "runs": Spec(LIST, [], "training runs compared, in study order", check=_str_list, names_runs=True),
    "split_runs": Spec(LIST, [], "runs that differ from one of runs only in split (grouped or random): the report "
                       "shows the validation score under both splits side by side", check=_str_list, names_runs=True,
                       trains=False),
    "submission_run": Spec(STR, "best", "run whose model predicts the test set, 'best' (by validation "
                           "micro-F1, the ensemble included), or 'ensemble'", names_runs=True, trains=False),
    "ensemble": Spec(LIST, [], "runs whose mean probabilities make the ensemble (validated like a run, in the "
                     "evolution table; [] = none)", check=_str_list, names_runs=True, trains=False),
    "submission_tta": Spec(STR, "auto", "test-time augmentation of the report's test predictions (the "
                           "submission, every run's test score): auto (per run, the mode with the best validation "
                           "micro-F1; of equals the cheaper: none, flip, flip+scales), or none, flip or "
                           "flip+scales for every run; the report's TTA table shows the validation F1 of each "
                           "mode it weighs", check=_one_of(*choices.SUBMISSION_TTA), trains=False),
    "eval_batch_size": Spec(INT, 256, "batch size for test predictions", check=_range(1, BATCH_MAX), trains=False),
    "device": Spec(STR, "auto", "auto, cpu, cuda or mps", check=_one_of(*choices.DEVICES), trains=False),
    "gallery_size": Spec(INT, 18, "misclassified images shown", check=_range(0, 500), trains=False),
}

SCHEMAS: dict[str, dict[str, Spec]] = {"eda": EDA, "train": TRAIN, "report": REPORT}
KNOWN_KEYS = set().union(*SCHEMAS.values())
RUN_FILE_KEYS = ("notebook",)  # what a run file holds besides parameters
COMMON_FILE = "_common.yaml"
RESERVED_RUN_NAMES = ("ensemble", "submission", "evolution", "best")  # files and values the report uses


class Params(dict):
    """A run's validated parameters; keys are also attributes (``p.lr``). ``profile``, ``run`` (its name in
    the profile) and ``run_name`` (where it writes: ``run``, or ``<run>-<hash>`` with overrides) are set by
    ``resolve``; ``kind``, ``notebook`` and ``sources`` (key -> where its value came from) ride along."""

    kind: str = ""
    notebook: str = ""
    sources: Mapping[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def changed(self) -> dict:
        """The values that differ from the schema's defaults (what a reader needs to see)."""
        return {k: v for k, v in self.items() if self.sources.get(k, "default") != "default"}

    def _repr_html_(self) -> str:
        """A compact table in notebooks and their reports: the values that differ from the defaults."""
        import html

        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(v))}</code></td>"
                       f"<td>{html.escape(self.sources.get(k, ''))}</td></tr>" for k, v in self.changed().items())
        return (f"<p>Run <b>{html.escape(str(self.get('run_name', '')))}</b> of profile "
                f"<b>{html.escape(str(self.get('profile', '')))}</b>: the parameters that differ from the defaults "
                f"(<code>python -m simpsons_lib.config.params show {self.get('profile')} {self.get('run')}</code> lists "
                f"all).</p><table><thead><tr><th>parameter</th><th>value</th><th>from</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")


def defaults(kind: str) -> dict:
    return {k: (list(s.default) if isinstance(s.default, list) else s.default) for k, s in _schema(kind).items()}


def _schema(kind: str) -> dict[str, Spec]:
    if kind not in SCHEMAS:
        raise ParameterError(f"unknown notebook kind {shown(kind)}; known: {', '.join(SCHEMAS)}")
    return SCHEMAS[kind]


def _unknown(key: str, known, where: str) -> ParameterError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {shown(close[0])}?)" if close else ""
    return ParameterError(f"{where}unknown parameter {shown(key)}{hint}")


def check_value(key: str, spec: Spec, value: Any) -> None:
    if value is None:
        if not spec.nullable:
            raise ParameterError(f"parameter {shown(key)}: must not be null ({spec.help})")
        return
    ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
    if not ok:
        want = " or ".join(t.__name__ for t in spec.types)
        raise ParameterError(f"parameter {shown(key)}: expected {want}, got {type(value).__name__} {shown(value)} ({spec.help})")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"parameter {shown(key)}: must be a finite number, got {shown(value)} ({spec.help})")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ParameterError(f"parameter {shown(key)}: {problem}, got {shown(value)}")


def _normalised(schema: Mapping[str, Spec], key: str, value: Any) -> Any:
    spec = schema.get(key)
    return spec.normalise(value) if spec is not None and spec.normalise is not None else value


def min_input_size(arch: str) -> int:
    """The smallest square input the study's own CNNs take: five 3x3 conv (+ 2x2 pool) blocks, without
    padding for SimpleCnn (the recipe: 224 px gives 5x5 at the end)."""
    shrink = {"simple_cnn": 2, "mid_cnn": 0}.get(arch)
    if shrink is None:
        return 32
    size = 1
    for _ in range(5):
        size = 2 * size + shrink
    return size


def image_size_problem(arch: str, image_size: int) -> str | None:
    """Why ``image_size`` is too small for ``arch`` (``min_input_size``), or None: a run's parameters and
    a model export are checked alike."""
    smallest = min_input_size(arch)
    if image_size < smallest:
        return f"parameter 'image_size': {arch} needs at least {smallest} px (five conv+pool blocks), got {image_size}"
    return None


def validate(kind: str, values: Mapping[str, Any], where: str = "") -> Params:
    """Check complete ``values`` against the ``kind`` schema, and the rules across keys."""
    schema = _schema(kind)
    for key in values:
        if key not in schema and key not in ("profile", "run", "run_name"):
            raise _unknown(key, schema, where + f"a {kind} run: ")
    missing = [k for k in schema if k not in values]
    if missing:
        raise ParameterError(f"{where}missing parameter(s): {', '.join(missing)}")
    for key in schema:
        try:
            check_value(key, schema[key], values[key])
        except ParameterError as exc:
            raise ParameterError(f"{where}{exc}") from None
    values = {k: _normalised(schema, k, v) for k, v in values.items()}
    if kind == "report" and values["submission_run"] not in [*values["runs"], "best", "ensemble"]:
        raise ParameterError(f"{where}parameter 'submission_run': {shown(values['submission_run'])} is not one of the "
                             f"report's runs {values['runs']}, 'best' or 'ensemble'")
    if kind == "report" and values["submission_run"] == "ensemble" and not values["ensemble"]:
        raise ParameterError(f"{where}parameter 'submission_run': 'ensemble' needs the runs of the ensemble "
                             "(parameter 'ensemble')")
    if kind == "train":
        if values["worst_from_run"] and values["worst_k"] is None and values["worst_below"] is None:
            raise ParameterError(f"{where}parameter 'worst_k': worst_from_run needs worst_k and/or worst_below")
        if values["weights_fallback"] == "random" and values["dataset"] == "kaggle" and not values["data_dir"]:
            raise ParameterError(f"{where}parameter 'weights_fallback': 'random' is not allowed on the Kaggle data "
                                 "(a run there must use the weights it names; set weights_fallback: error)")
        if values["scheduler"] == "warmup_cosine" and values["warmup_epochs"] >= values["epochs"]:
            raise ParameterError(f"{where}parameter 'warmup_epochs': must be less than epochs "
                                 f"({values['epochs']}), got {values['warmup_epochs']}")
        if values["lr_decay"] != 1.0 and values["arch"] != "transfer":
            raise ParameterError(f"{where}parameter 'lr_decay': applies to arch transfer only (the backbone's "
                                 f"stages), not {shown(values['arch'])}")
        if values["ema_decay"] >= 1:
            raise ParameterError(f"{where}parameter 'ema_decay': must be below 1 (1 would never move), got "
                                 f"{values['ema_decay']}")
        if too_small := image_size_problem(values["arch"], values["image_size"]):
            raise ParameterError(where + too_small)
    p = Params(values)
    p.kind = kind
    return p


class _DuplicateKey(Exception):
    def __init__(self, key, first: int, second: int):
        super().__init__(key, first, second)
        self.key, self.first, self.second = key, first, second


class AliasError(ParameterError):
    """A YAML alias (``*name``) in a parameter value: refused."""


class _AliasRefused(yaml.YAMLError):
    def __init__(self, anchor: str, line: int):
        super().__init__(anchor, line)
        self.anchor, self.line = anchor, line


SHOWN_CHARACTERS = 200  # the most of a value an error message quotes


def shown(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters (a value can be megabytes)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxdict, short.maxlist, short.maxtuple, short.maxset = 4, 8, 8, 8, 8
    short.maxstring = short.maxother = short.maxlong = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives one key twice (PyYAML keeps the last silently)
    and any alias (``*name``): a parameter needs none, and nested aliases expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(event.anchor, event.start_mark.line + 1)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
            except TypeError:  # an unhashable key: the base class says so
                break
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str = "") -> Any:
    """``text`` as safe YAML without aliases (``load_yaml``); a refusal is a ``ParameterError`` starting
    with ``where``, one line, that quotes no more than ``SHOWN_CHARACTERS`` of the text."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as dup:
        raise ParameterError(f"{where}key {shown(dup.key)} is given twice (lines {dup.first} and {dup.second}); "
                             "keep one") from None
    except _AliasRefused as alias:
        raise AliasError(f"{where}line {alias.line}: alias *{alias.anchor[:40]} refused: write the value out "
                             "(aliases can expand a few lines into gigabytes)") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"{where}not valid YAML: {' '.join(str(exc).split())[:SHOWN_CHARACTERS]}") from None


def load_yaml(path: str | Path) -> dict:
    """A parameter file's mapping (safe YAML; a key given twice is refused, naming both lines; aliases
    are refused)."""
    path = Path(path)
    data = parse_yaml(path.read_text(encoding="utf-8"), f"{path}: ") or {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: must hold a mapping of parameter names to values")
    return data


def notebook_kind(notebook: Path) -> str:
    """``eda``, ``train`` or ``report``, from the notebook's ``simpsons.kind`` metadata."""
    try:
        return json.loads(notebook.read_text(encoding="utf-8"))["metadata"]["simpsons"]["kind"]
    except (OSError, ValueError, KeyError) as exc:
        raise ParameterError(f"{notebook}: not a study notebook (no simpsons.kind in its metadata: {exc})") from None


def check_profile_name(profile: str) -> str:
    """``profile`` when it is a plain name (letters, digits, ``_`` and ``-``): it names a folder under
    ``params/`` and one under ``outputs/``, so a path (``../x``) is refused before anything is written."""
    if not isinstance(profile, str) or not profile or _plain_name(profile):
        raise ParameterError(f"profile {shown(profile)}: must be a plain name (letters, digits, _ and -), the name of a "
                             f"folder in {paths.params_dir()}")
    return profile


def profile_runs(profile: str) -> list[str]:
    """The runs of a profile (its run files), in study order: by notebook, then by name. A profile that is
    not a plain name, does not exist or holds no run file raises ``ParameterError``."""
    folder = paths.params_dir() / check_profile_name(profile)
    if not folder.is_dir():
        known = sorted(p.name for p in paths.params_dir().iterdir() if p.is_dir()) if paths.params_dir().is_dir() else []
        raise ParameterError(f"no profile {shown(profile)}: {folder} does not exist (profiles: {', '.join(known)})")
    runs = [p.stem for p in folder.glob("*.yaml") if p.name != COMMON_FILE]
    if not runs:
        raise ParameterError(f"profile {shown(profile)} has no runs: {folder} holds no run file (<run>.yaml naming its "
                             "notebook)")
    return sorted(runs, key=lambda r: (run_notebook(profile, r).name, r))


def run_notebook(profile: str, run: str) -> Path:
    """The notebook a run file names (``notebook: 02_mid_cnn``)."""
    path = paths.params_dir() / profile / f"{run}.yaml"
    if not path.is_file():
        runs = ", ".join(p.stem for p in sorted(path.parent.glob("*.yaml")) if p.name != COMMON_FILE)
        raise ParameterError(f"{path}: no such run file (runs of profile {shown(profile)}: {runs or 'none'})")
    name = load_yaml(path).get("notebook")
    if not name:
        raise ParameterError(f"{path}: a run file must name its notebook (e.g. 'notebook: 01_simple_cnn')")
    notebook = paths.NOTEBOOKS_DIR / (name if str(name).endswith(".ipynb") else f"{name}.ipynb")
    if not notebook.is_file():
        raise ParameterError(f"{path}: notebook {shown(name)} does not exist ({notebook})")
    return notebook


def _layers(profile: str, run: str, kind: str) -> list[tuple[str, dict]]:
    """(source, values) from the lowest layer up: defaults, the common file, the run file."""
    folder = paths.params_dir() / profile
    run_file = folder / f"{run}.yaml"
    layers = [("default", defaults(kind))]
    common_file = folder / COMMON_FILE
    if common_file.is_file():
        common = load_yaml(common_file)
        for key, value in common.items():
            if key not in KNOWN_KEYS:
                raise _unknown(key, KNOWN_KEYS, f"{common_file}: ")
            spec = next(s[key] for s in SCHEMAS.values() if key in s)
            try:
                check_value(key, spec, value)
            except ParameterError as exc:
                raise ParameterError(f"{common_file}: {exc}") from None
        layers.append((COMMON_FILE, {k: v for k, v in common.items() if k in _schema(kind)}))
    own = {k: v for k, v in load_yaml(run_file).items() if k not in RUN_FILE_KEYS}
    for key in own:
        if key not in _schema(kind):
            raise _unknown(key, _schema(kind), f"{run_file}: a {kind} run: ")
    layers.append((run_file.name, own))
    return layers


def as_overrides(overrides: Any) -> Mapping[str, Any]:
    """``overrides`` as a mapping: papermill's ``-p overrides "{epochs: 2}"`` always passes a string, read
    here as YAML; anything but a mapping (a list, a number) is refused in one line."""
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        try:
            overrides = yaml.load(overrides, Loader=_UniqueKeyLoader) if overrides.strip() else {}
        except _DuplicateKey as dup:
            raise ParameterError(f"overrides: key {dup.key!r} is given twice") from None
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ParameterError(f"overrides: not valid YAML ({problem}); give a mapping such as "
                                 "'{epochs: 2, lr: 0.0003}'") from None
    if not isinstance(overrides, Mapping):
        shown = repr(overrides)
        raise ParameterError(f"overrides: must be a mapping of parameter names to values, such as "
                             f"{{'epochs': 2}}; got {type(overrides).__name__} "
                             f"{shown[:80] + ('...' if len(shown) > 80 else '')}")
    return overrides


def resolve(profile: str, run: str, overrides: Mapping[str, Any] | None = None) -> Params:
    """The complete, validated parameters of ``run`` of ``profile``, exactly as the pipeline runs it, with
    ``overrides`` on top. Overrides that change a value name the run ``<run>-<hash>`` (printed in one line)."""
    for key, value in (("profile", profile), ("run", run)):
        if not isinstance(value, str) or _plain_name(value):
            raise ParameterError(f"parameter {shown(key)}: must be a plain name, got {shown(value)}")
    if run in RESERVED_RUN_NAMES:
        raise ParameterError(f"{paths.params_dir() / profile / (run + '.yaml')}: {shown(run)} names a file the report "
                             f"writes; choose another run name (reserved: {', '.join(RESERVED_RUN_NAMES)})")
    notebook = run_notebook(profile, run)
    kind = notebook_kind(notebook)
    values: dict = {}
    sources: dict = {}
    for source, layer in _layers(profile, run, kind):
        values.update(layer)
        sources.update(dict.fromkeys(layer, source))
    where = f"{paths.params_dir() / profile / (run + '.yaml')}: "
    base = validate(kind, values, where)
    changed = {}
    for key, value in as_overrides(overrides).items():
        if key not in _schema(kind):
            raise _unknown(key, _schema(kind), "overrides: ")
        value = _normalised(_schema(kind), key, value)
        if value != base[key]:
            changed[key] = value
    values.update(changed)
    sources.update(dict.fromkeys(changed, "override"))
    p = validate(kind, values, "overrides: " if changed else where)
    if kind == "train" and not p["title"]:
        p["title"] = run
    name = run
    if changed:
        digest = hashlib.sha1(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:6]
        name = f"{run}-{digest}"
        print(f"Overrides {changed}: this run writes as '{name}', never over the pipeline's '{run}'.")
    p.update(profile=profile, run=run, run_name=name)
    p.kind, p.notebook, p.sources = kind, str(notebook.relative_to(paths.PROJECT_ROOT)), sources
    return p


def upstream_runs(p: Mapping[str, Any]) -> list[str]:
    """The runs of the profile that ``p`` reads (through keys that name runs), in order, without duplicates."""
    out: list[str] = []
    schema = _schema(p.kind) if getattr(p, "kind", "") else {}
    for key, spec in schema.items():
        if spec.names_runs and p.get(key):
            value = p[key]
            for name in value if isinstance(value, list) else [value]:
                if name not in ("best", "ensemble") and name not in out:
                    out.append(name)
    return out


def check_named_runs(run: str, p: Mapping[str, Any], resolved: Mapping[str, Mapping[str, Any]],
                     where: str = "") -> None:
    """Every run that ``run``'s parameters name (``upstream_runs``) is another run of the profile, and one that
    trains a model (a report or EDA has no weights nor scores to read), with no cycle through the runs it names;
    checked when the study is planned, before any run removes its results."""
    trains = [r for r, q in resolved.items() if getattr(q, "kind", "") == "train"]
    for key, spec in (_schema(p.kind) if getattr(p, "kind", "") else {}).items():
        value = p.get(key) if spec.names_runs else None
        for name in (value if isinstance(value, list) else [value] if value else []):
            if name in ("best", "ensemble"):
                continue
            if name in resolved and name not in trains:
                raise ParameterError(f"{where}parameter {key!r}: {name!r} is a {resolved[name].kind} run, which "
                                     f"trains no model; name training runs: {', '.join(trains) or 'none'}")
            if name == run:
                raise ParameterError(f"{where}parameter {key!r}: names this run itself ({run!r}); name another "
                                     f"training run: {', '.join(r for r in trains if r != run) or 'none'}")
    seen, todo = set(), list(upstream_runs(p))
    while todo:
        name = todo.pop()
        if name == run:
            raise ParameterError(f"{where}the runs its parameters name read {run!r} in turn (a cycle); break it")
        if name not in seen and name in resolved:
            seen.add(name)
            todo.extend(upstream_runs(resolved[name]))


def training_values(p: Mapping[str, Any]) -> dict:
    """The parameters that shape the trained weights (``Spec.trains``): the training fingerprint's part."""
    schema = _schema(p.kind)
    return {k: p[k] for k, spec in schema.items() if spec.trains}


RUN_NAMES = ("profile", "run", "run_name")  # set by ``resolve``: they name a run and configure nothing


def changed_values(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, keys: Iterable[str] | None = None,
                   ignore: Iterable[str] = RUN_NAMES, missing: Any = None) -> dict[str, tuple]:
    """The parameter diff: ``{key: (old, new)}`` for each of ``keys`` (default: both sides' keys, in order)
    whose value differs, ``ignore``'s keys left out; a key one side lacks reads as ``missing`` there. No
    differences when either side is None."""
    if before is None or after is None:
        return {}
    ignore = set(ignore)
    keys = dict.fromkeys([*before, *after]) if keys is None else keys
    pairs = {k: (before.get(k, missing), after.get(k, missing)) for k in keys if k not in ignore}
    return {k: pair for k, pair in pairs.items() if pair[0] != pair[1]}


def trained_alike(a: Mapping[str, Any], b: Mapping[str, Any], apart: Iterable[str] = ()) -> bool:
    """Whether two runs' parameters (training values, or all of a run's) are equal in every parameter that
    shapes the weights (``Spec.trains``; a missing key reads as its default) but those of ``apart``."""
    keys = [k for k, spec in TRAIN.items() if spec.trains and k not in set(apart)]
    return all(a.get(k, TRAIN[k].default) == b.get(k, TRAIN[k].default) for k in keys)


def split_partner(run: str, values_by_run: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The run of ``values_by_run`` (each run's training parameters) trained like ``run`` but under the other
    ``split``: every other parameter that shapes the weights equal. None when there is none."""
    mine = values_by_run[run]
    for other, theirs in values_by_run.items():
        if (other != run and theirs.get("split", "random") != mine.get("split", "random")
                and trained_alike(theirs, mine, apart=("split",))):
            return other
    return None


STRONG_POLICY_KEYS = ("augment", "strong_geometry", "worst_classes", "worst_from_run", "worst_k", "worst_below")


def is_cue_control(control: Mapping[str, Any], run: Mapping[str, Any]) -> bool:
    """Whether ``control`` is trained like ``run`` without the per-class augmentation (``augment: false``):
    every parameter that shapes the weights equal but those of the strong policy (``STRONG_POLICY_KEYS``)."""
    return not control.get("augment", TRAIN["augment"].default) and trained_alike(control, run, STRONG_POLICY_KEYS)


def check_split_runs(p: Mapping[str, Any], resolved: Mapping[str, Mapping[str, Any]], where: str = "") -> None:
    """A report's ``split_runs``: each must have a partner among its ``runs`` (``split_partner``), checked when
    the study is planned, before any training."""
    for run in p.get("split_runs") or []:
        values = {r: training_values(resolved[r]) for r in dict.fromkeys([*p["runs"], run]) if r in resolved}
        if run in values and split_partner(run, values) is None:
            raise ParameterError(f"{where}parameter 'split_runs': run {shown(run)} ({values[run]['split']} split) differs "
                                 f"in more than its split from every run of runs ({', '.join(p['runs'])}); give it "
                                 "the same parameters as one of them but split")


def describe(p: Params) -> str:
    """A plain-text table: every key, its value, where it came from, and its help."""
    schema = _schema(p.kind)
    width = max(map(len, schema))
    lines = [f"profile {p['profile']}, run {p['run']} ({p.notebook}, a {p.kind} run); writes as {p['run_name']}"]
    for key, spec in schema.items():
        lines.append(f"  {key:<{width}}  {json.dumps(p[key]):<28} {p.sources.get(key, ''):<18} {spec.help}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.config.params", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="a run's resolved parameters, where each value comes from, and its help")
    show.add_argument("profile")
    show.add_argument("run", nargs="?", help="one run (default: every run of the profile)")
    show.add_argument("--json", action="store_true", help="print the values as JSON")
    runs = sub.add_parser("runs", help="the runs of a profile, in study order, with their notebooks")
    runs.add_argument("profile")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "runs":
            for run in profile_runs(args.profile):
                print(f"{run:<20} {run_notebook(args.profile, run).name}")
            return
        for run in [args.run] if args.run else profile_runs(args.profile):
            p = resolve(args.profile, run)
            print(json.dumps(p, indent=2) if args.json else describe(p))
    except ParameterError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
