"""The recipe's partial fine-tune against the modern full fine-tune, same backbone, epochs and input size.

Both runs are the demo profile's, trained and validated by the library (``experiment``) on the drawn demo
data: ``modern`` as its run file sets it, and the recipe's ``resnet50`` run (last stage + new head, Adam,
one LR, no schedule, no smoothing or mixing) with the modern run's backbone, weights, input size and
epochs. Neither uses ``worst_from_run`` (nothing else is trained first): every class gets the mild
augmentation in both. ``val_*`` is the final validation (with the run's ``tta``), ``no_tta_*`` the best
epoch's validation during training (never with TTA). ``vs_modern``: on the same validation images, how
many only this run gets right and how many only ``modern`` does, with the exact sign test's p. The ImageNet weights must really be loaded
(TORCH_HOME with them cached): the script stops rather than compare random backbones.

    SIMPSONS_DATA_DIR=$TMP/data python -m simpsons_lib.pipeline demo-data --profile demo
    TORCH_HOME=$TMP/torch SIMPSONS_DATA_DIR=$TMP/data SIMPSONS_OUTPUTS_DIR=$TMP/out \\
        python benchmarks/finetune_compare.py [--epochs 3] [--image-size 96] [--threads N] [--out results.csv] \
        [--variant mixup_alpha=0,cutmix_alpha=0 ...]

(from the repository root, with PYTHONPATH=. ; TORCH_HOME a copy of ../shared/torch-hub.)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import pandas as pd
import torch
import yaml

from simpsons_lib.config import params
from simpsons_lib.config import paths
from simpsons_lib.data import study
from simpsons_lib.training import experiment
from simpsons_lib.config.files import write_csv

SAME = ("backbone", "weights", "image_size", "epochs", "batch_size", "seed")


def compare_params(epochs: int | None, image_size: int | None,
                   variants: list[dict] = ()) -> dict[str, params.Params]:
    """The runs' parameters: the demo's ``resnet50`` (the recipe) on the backbone, weights, input size and
    epochs of its ``modern``, then ``modern``, then ``modern`` with each of ``variants`` (an ablation)."""
    common = {"worst_from_run": None, "worst_k": None, "device": "cpu", "resume": False}
    if epochs:
        common["epochs"] = epochs
    if image_size:
        common["image_size"] = image_size
    modern = params.resolve("demo", "modern", common)
    same = {k: modern[k] for k in SAME}
    recipe = params.resolve("demo", "resnet50", {**common, **same, "weights_fallback": "error"})
    runs = {"recipe (last stage + head)": recipe, "modern (full fine-tune)": modern}
    for variant in variants:
        label = "modern, " + ", ".join(f"{k}={v}" for k, v in variant.items())
        runs[label] = params.resolve("demo", "modern", {**common, **variant})
    return runs


def parse_variant(text: str) -> dict:
    """``"mixup_alpha=0,cutmix_alpha=0"`` -> ``{"mixup_alpha": 0.0, "cutmix_alpha": 0.0}`` (YAML values,
    typed as the schema wants: ints given for floats become floats)."""
    out = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        value = yaml.safe_load(value)
        spec = params.TRAIN.get(key.strip())
        out[key.strip()] = float(value) if spec and spec.types == params.FLOAT and isinstance(value, int) else value
    return out


def run_one(label: str, p) -> dict:
    rp = paths.run_paths(p)
    start = time.perf_counter()
    s = study.load_study(p, image_size=p["image_size"])
    model = experiment.make_model(p, s)
    if model.weights_used != p["weights"]:
        raise SystemExit(f"{label}: {p['backbone']} {p['weights']} weights could not be loaded "
                         f"({model.weights_fallback_reason}); point TORCH_HOME at a copy of ../shared/torch-hub")
    result = experiment.train_model(model, s, p, rp, [], progress=False)
    metrics, predictions = experiment.evaluate_model(model, s, p, rp, result, [])
    changed = {k: v for k, v in p.changed().items() if k not in ("notebook", "title", "device", "resume")}
    best = result.history.loc[result.history["epoch"] == result.best_epoch].iloc[0]  # validated without TTA
    return {"run": label, "val_micro_f1": round(metrics["micro_f1"], 4), "val_macro_f1": round(metrics["macro_f1"], 4),
            "no_tta_micro_f1": round(best["val_micro_f1"], 4), "no_tta_macro_f1": round(best["val_macro_f1"], 4),
            "best_epoch": result.best_epoch, "train_s": round(result.train_seconds, 1),
            "total_s": round(time.perf_counter() - start, 1), "trainable": metrics["parameters"]["trainable"],
            "train_images": len(s.train), "val_images": len(s.val), "tta": p["tta"],
            "settings": ", ".join(f"{k}={v}" for k, v in sorted(changed.items())),
            "_correct": predictions.set_index("path")["correct"]}


def paired(row: dict, reference: dict) -> str:
    """``row`` against ``reference`` on the validation images they share (the same split): images only
    ``row`` gets right / only ``reference`` does, and the exact two-sided sign test's p on those (what
    one seed on a few hundred images can tell). Empty when they were validated on other images."""
    from scipy.stats import binomtest

    a, b = row["_correct"], reference["_correct"]
    if row is reference or set(a.index) != set(b.index):
        return ""
    b = b.reindex(a.index)
    gained, lost = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(gained, gained + lost).pvalue if gained + lost else 1.0
    return f"+{gained} / -{lost} (p {p:.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, help="instead of the demo modern run's epochs (both runs)")
    parser.add_argument("--image-size", type=int, help="instead of the demo modern run's input size (both runs)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="also run modern with these values (repeatable), e.g. mixup_alpha=0,cutmix_alpha=0")
    parser.add_argument("--out", help="also write the table as CSV")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = compare_params(args.epochs, args.image_size, [parse_variant(v) for v in args.variant])
    rows = [run_one(label, p) for label, p in runs.items()]
    reference = rows[1]  # the modern run as its run file sets it: what each variant changes
    for row in rows:
        row["vs_modern"] = paired(row, reference)
    table = pd.DataFrame(rows).drop(columns="_correct")
    p = next(iter(runs.values()))
    print(f"{p['backbone']} {p['weights']}, {p['image_size']} px, {p['epochs']} epochs, batch {p['batch_size']}, "
          f"seed {p['seed']}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(table.drop(columns="settings").to_string(index=False))
    for row in rows:
        print(f"{row['run']}: {row['settings']}")
    if args.out:
        write_csv(args.out, table)


if __name__ == "__main__":
    main()
