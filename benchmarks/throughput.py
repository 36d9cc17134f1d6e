"""Training throughput of each model: the real pipeline against its GPU-resident ceiling.

For each model, in one process: the *ceiling* is the training loop's pass (``train.train_epoch``: the
mixed precision ``devices.amp_mode`` picks for the device (bf16, or fp16 with its gradient scaler) and
channels-last on GPU) over one batch that already sits on the device, repeated; the
*pipeline* is the same pass over the study's own batches (``experiment.make_train_loader``): on a GPU by default the
decoded split held on the device with the per-class augmentation applied there a batch at a time;
elsewhere (or with ``--loader per_sample``) a DataLoader with per-image v2 transforms and the
host-to-device copy. The ratio pipeline/ceiling says how much the input side costs. Not a test: a measurement.

    python benchmarks/throughput.py                          # GPU if any, 224 px, demo data
    python benchmarks/throughput.py --batch-size 256 64      # also at the full profile's batch size
    python benchmarks/throughput.py --device cpu --image-size 96 --batch-size 16 --steps 3
    python benchmarks/throughput.py --time-make-all          # also time `make all` (profile full)
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simpsons_lib.config import params  # noqa: E402
from simpsons_lib.data import study  # noqa: E402
from simpsons_lib.training import devices  # noqa: E402
from simpsons_lib.training import experiment  # noqa: E402
from simpsons_lib.training import loop as train  # noqa: E402
from simpsons_lib.training import optim  # noqa: E402
from simpsons_lib.training.devices import to_device  # noqa: E402
from simpsons_lib.training.transforms import batch_mixing  # noqa: E402
from simpsons_lib.config.files import write_csv, write_text  # noqa: E402
from simpsons_lib.config.paths import PROJECT_ROOT  # noqa: E402

MODELS = {"simple_cnn": {"arch": "simple_cnn"}, "mid_cnn": {"arch": "mid_cnn"},
          "resnet50": {"arch": "transfer", "backbone": "resnet50", "weights": None},
          # the full profile's modern run (params/full/modern.yaml): ConvNeXt-Tiny, every layer trained, with
          # its MixUp/CutMix on the device (weights: random here, the same cost as ImageNet's)
          "modern": {"arch": "transfer", "backbone": "convnext_tiny", "weights": None, "finetune": "full",
                     "head_dropout": 0.2, "mixup_alpha": 0.2, "cutmix_alpha": 1.0}}


def forever(loader):
    """The loader's batches, epoch after epoch (each new epoch reshuffles, as in training)."""
    while True:
        yield from loader


def images_per_s(stream, steps: int, warmup: int, train_one) -> float:
    """Images per second of ``train_one`` over ``steps`` batches of ``stream``, after ``warmup`` batches."""
    train_one(itertools.islice(stream, warmup))
    start = time.perf_counter()
    seen = train_one(itertools.islice(stream, steps))
    return seen / (time.perf_counter() - start)  # train_epoch reads its sums at the end: synchronised


class Bench:
    """One model with its optimizer and the study's training batches, as ``train_model`` makes them."""

    def __init__(self, p, s: study.StudyData):
        self.p, self.s = p, s
        self.device = devices.select_device(p["device"])
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        self.model = devices.to_training_device(experiment.make_model(p, s), self.device)
        self.optimizer = optim.build_optimizer(self.model, "adam", 1e-4)
        self.amp = devices.amp_mode(p["amp"], self.device)  # as train.fit decides it
        self.scaler = devices.grad_scaler(self.device, self.amp)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        # what train_model adds to each step: MixUp/CutMix on the device, the EMA's update
        self.mixing = batch_mixing(p["mixup_alpha"], p["cutmix_alpha"], s.n_classes)
        ema = train.averaged_model(self.model, p["ema_decay"])
        self.after_step = (lambda: ema.update_parameters(self.model)) if ema is not None else None
        worst = s.summary().index[-12:].tolist()  # the rarest classes get strong augmentation
        self.loader = experiment.make_train_loader(p, s, self.device, worst)  # exactly what training uses
        self.stream = forever(self.loader)
        # Pipeline warm-up: a whole epoch and one batch. The epoch's last, smaller batch is another shape
        # and cuDNN tunes each new shape once (in training that happens in the first epoch only).
        self.pipeline_warmup = len(self.loader) + 1

    def train_one(self, batches) -> int:
        """The training loop's own pass over ``batches``; returns the images seen."""
        return train.train_epoch(self.model, batches, self.optimizer, self.loss_fn, self.device, self.amp,
                                 self.mixing, after_step=self.after_step, scaler=self.scaler)[2]

    def ceiling(self, steps: int, warmup: int) -> float:
        bs, size = self.p["batch_size"], self.p["image_size"]
        on_device = [(to_device(torch.randn(bs, 3, size, size), self.device),
                      torch.randint(0, self.s.n_classes, (bs,), device=self.device))]
        return images_per_s(forever(on_device), steps, warmup, self.train_one)

    def pipeline(self, steps: int, warmup: int) -> float:
        return images_per_s(self.stream, steps, max(warmup, self.pipeline_warmup), self.train_one)


def measure(name: str, p, s: study.StudyData, steps: int, warmup: int) -> dict:
    bench = Bench(p, s)
    ceiling = bench.ceiling(steps, warmup)
    real = bench.pipeline(steps, warmup)
    device = bench.device
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"model": name, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
            "loader": experiment.loader_kind(p, device, s), "amp": bench.amp,
            "image_size": p["image_size"], "batch": p["batch_size"], "pipeline_img_s": round(real, 1),
            "ceiling_img_s": round(ceiling, 1), "ratio": round(real / ceiling, 3),
            "epoch_s": float(f"{len(s.train) / real:.3g}"), "gpu_peak_gib": round(peak, 2)}


def trace(name: str, p, s: study.StudyData, steps: int) -> str:
    """Where the time of ``steps`` pipeline batches goes (torch.profiler): the operators taking the most
    device and host time, and the wall time to compare them with. Run after every measurement:
    the profiler's hooks can stay behind in the process and slow later kernel launches."""
    from torch.profiler import ProfilerActivity, profile

    bench = Bench(p, s)
    bench.pipeline(1, 0)  # warm-up
    device = bench.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        bench.train_one(itertools.islice(bench.stream, steps))
        wall = time.perf_counter() - start
    events = prof.key_averages()
    device_key = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
    lines = [f"== {name} (batch {p['batch_size']}): {steps} pipeline batches in {wall:.3f} s wall, profiled "
             "(compare with the tables' 'Self CUDA time total', the GPU's busy time)"]
    if device.type == "cuda":
        lines.append(events.table(sort_by=device_key, row_limit=15))
    lines.append(events.table(sort_by="self_cpu_time_total", row_limit=15))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="dataset folder (default: data/demo, from `make demo-data`)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, nargs="+", default=[256], help="one or more batch sizes")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--num-workers", type=int, default=8, help="DataLoader workers (per_sample loader)")
    ap.add_argument("--loader", default="auto", choices=["auto", "per_sample", "device_batches"])
    ap.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"],
                    help="mixed precision (the amp parameter; auto: what the device has)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--out", default=None, help="also write the table as CSV here")
    ap.add_argument("--trace-out", default=None, help="also profile the pipeline (torch.profiler) into this text file")
    ap.add_argument("--time-make-all", action="store_true", help="also run and time `make all`")
    args = ap.parse_args(argv)

    # The training schema's defaults (simpsons_lib/config/params.py), on the demo data unless --data-dir says otherwise.
    base = {**params.defaults("train"), "profile": "bench", "dataset": "demo", "data_dir": args.data_dir,
            "device": args.device, "image_size": args.image_size, "num_workers": args.num_workers,
            "loader": args.loader, "augment": True, "amp": args.amp}

    def model_params(name: str, batch_size: int):
        return params.validate("train", {**base, **MODELS[name], "batch_size": batch_size})

    s = study.load_study(params.validate("train", base), image_size=args.image_size)
    rows = []
    for batch_size in args.batch_size:
        for name in args.models:
            rows.append(measure(name, model_params(name, batch_size), s, args.steps, args.warmup))
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
            if args.out:  # as it goes: a run cut short keeps what it measured
                write_csv(args.out, pd.DataFrame(rows))
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False))
    if args.trace_out:  # last: nothing is timed after the profiler has run
        traces = [trace(name, model_params(name, args.batch_size[0]), s, min(args.steps, 20)) for name in args.models]
        write_text(args.trace_out, "\n\n".join(traces) + "\n")
    if args.time_make_all:
        start = time.perf_counter()
        subprocess.run(["make", "all"], cwd=PROJECT_ROOT, check=True)
        print(f"make all: {time.perf_counter() - start:.0f} s")
    return table


if __name__ == "__main__":
    main()
