"""Size of a finished run's checkpoint folder, with and without the optimizer state kept.

The demo profile's ResNet50 run (layer4 + head trained, weights None, 64 px, 42 classes, Adam) for one
epoch on random images: checkpoint sizes depend on the model and the optimizer, not on the data.

    PYTHONPATH=. python benchmarks/checkpoint_size.py   (from the repository root)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from simpsons_lib.training import devices
from simpsons_lib.training import loop as train
from simpsons_lib.training import models
from simpsons_lib.training import optim
def finished_run_bytes(folder: Path, keep_optimizer_state: bool) -> dict[str, int]:
    devices.seed_everything(0)
    model = models.build_model("transfer", 42, 64, backbone="resnet50", weights=None)
    images, labels = torch.randn(84, 3, 64, 64), torch.arange(84) % 42
    loader = devices.make_loader(TensorDataset(images, labels), 42, shuffle=True, seed=0)
    train.fit(model, loader, loader, epochs=1, optimizer=optim.build_optimizer(model, "adam", 1e-3),
              checkpoint_dir=folder, classes=[f"class{i}" for i in range(42)], progress=False,
              keep_optimizer_state=keep_optimizer_state)
    return {f.name: f.stat().st_size for f in sorted(folder.iterdir())}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for keep in (True, False):
            sizes = finished_run_bytes(Path(tmp) / f"keep_{keep}", keep)
            files = ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in sizes.items())
            label = "with optimizer state (before)" if keep else "without (now the default)"
            print(f"{label}: folder {sum(sizes.values()) / 2**20:.1f} MiB ({files})")


if __name__ == "__main__":
    main()
