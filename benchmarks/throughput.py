"""Training throughput of each model: the real pipeline against its GPU-resident ceiling.

For each model, in one process: the *ceiling* is the same training step (bf16 autocast and
channels-last on GPU) repeated on one batch that already sits on the device; the *pipeline* is the
study's own path as training takes it (``experiment.make_train_loader``): on a GPU by default the
decoded split held on the device with the per-class augmentation applied there a batch at a time;
elsewhere (or with ``--loader per_sample``) a DataLoader with per-image v2 transforms and the
host-to-device copy. The ratio pipeline/ceiling says how much the input side costs. Not a test: a measurement.

    python benchmarks/throughput.py                          # GPU if any, 224 px, demo data
    python benchmarks/throughput.py --device cpu --image-size 96 --batch-size 16 --steps 3
    python benchmarks/throughput.py --time-make-all          # also time `make all` (profile full)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simpsons_lib import experiment, params, pipeline, study, train  # noqa: E402
from simpsons_lib.evaluate import to_device  # noqa: E402
from simpsons_lib.paths import NOTEBOOKS_DIR, PROJECT_ROOT  # noqa: E402

MODELS = {"simple_cnn": {"arch": "simple_cnn"}, "mid_cnn": {"arch": "mid_cnn"},
          "resnet50": {"arch": "transfer", "backbone": "resnet50", "weights": None}}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_steps(step, n: int, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return time.perf_counter() - start


def measure(name: str, p, s: study.StudyData, steps: int, warmup: int) -> dict:
    device = train.select_device(p["device"])
    model = experiment.make_model(p, s)
    model = model.to(device, memory_format=torch.channels_last) if device.type == "cuda" else model.to(device)
    model.train()
    optimizer = train.build_optimizer(model, "adam", 1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    bs = p["batch_size"]

    images = to_device(torch.randn(bs, 3, p["image_size"], p["image_size"]), device)
    labels = torch.randint(0, s.n_classes, (bs,), device=device)
    ceiling_step = lambda: train.train_step(model, images, labels, optimizer, loss_fn, device, p["amp"])
    timed_steps(ceiling_step, warmup, device)
    ceiling = bs * steps / timed_steps(ceiling_step, steps, device)

    worst = s.summary().index[-12:].tolist()  # the rarest classes get strong augmentation
    loader = experiment.make_train_loader(p, s, device, worst)  # exactly what training uses
    batches = iter(loader)

    def pipeline_step():
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        train.train_step(model, to_device(x, device), y.to(device, non_blocking=True), optimizer, loss_fn, device, p["amp"])

    timed_steps(pipeline_step, warmup, device)
    real = bs * steps / timed_steps(pipeline_step, steps, device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"model": name, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
            "loader": experiment.loader_kind(p, device, s),
            "image_size": p["image_size"], "batch": bs, "pipeline_img_s": round(real, 1),
            "ceiling_img_s": round(ceiling, 1), "ratio": round(real / ceiling, 3),
            "epoch_s": round(len(s.train) / real, 1), "gpu_peak_gib": round(peak, 2)}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="dataset folder (default: data/demo, generated if absent)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--num-workers", type=int, default=8, help="DataLoader workers (per_sample loader)")
    ap.add_argument("--loader", default="auto", choices=["auto", "per_sample", "device_batches"])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--out", default=None, help="also write the table as CSV here")
    ap.add_argument("--time-make-all", action="store_true", help="also run and time `make all`")
    args = ap.parse_args(argv)

    defaults = pipeline.notebook_defaults(NOTEBOOKS_DIR / "01_simple_cnn.ipynb")
    base = {**defaults, "profile": "bench", "data_dir": args.data_dir, "device": args.device,
            "image_size": args.image_size, "batch_size": args.batch_size, "num_workers": args.num_workers,
            "loader": args.loader, "augment": True}
    p0 = params.validate("train", base)
    s = study.load_study(p0, image_size=args.image_size)
    rows = []
    for name in args.models:
        p = params.validate("train", {**base, **MODELS[name]})
        rows.append(measure(name, p, s, args.steps, args.warmup))
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)
    if args.time_make_all:
        start = time.perf_counter()
        subprocess.run(["make", "all"], cwd=PROJECT_ROOT, check=True)
        print(f"make all: {time.perf_counter() - start:.0f} s")
    return table


if __name__ == "__main__":
    main()
