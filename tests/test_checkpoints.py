"""Checkpoints: loaded with weights_only (no code runs from a file), clear errors, RNG round trip, and
no optimizer state kept once a run is finished. Small synthetic models, so these run in seconds."""

import random

import numpy as np
import pytest
import torch
import torchvision
from torch.utils.data import TensorDataset

from simpsons_lib.training import checkpoints
from simpsons_lib.training import devices
from simpsons_lib.training import loop as train
from simpsons_lib.training import models
from simpsons_lib.training import optim
from simpsons_lib.data.datasets import DeviceBatchLoader

CLASSES = ["a", "b", "c"]


class WritesMarker:
    """Unpickling this object opens (creates) ``marker``: what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _one_line_error(exc_info, path):
    msg = str(exc_info.value)
    assert str(path) in msg and "\n" not in msg
    return msg


def test_a_crafted_pickle_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "models" / "last.pt"
    path.parent.mkdir()
    torch.save({"model_state": {"w": torch.zeros(1)}, "classes": CLASSES, "payload": WritesMarker(marker)}, path)
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load_checkpoint(path)
    assert "delete it" in _one_line_error(err, path)
    assert not marker.exists()
    # the file really is dangerous: the unsafe load that was used before would have run its code
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_crafted_weights_file_is_refused_with_a_one_line_error(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pth"
    torch.save({"conv1.weight": WritesMarker(marker)}, path)
    with pytest.raises(models.WeightsFileError) as err:
        models.load_backbone("resnet18", str(path))
    assert "not a readable state-dict file" in _one_line_error(err, path)
    assert not marker.exists()
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(models.WeightsFileError) as err:
        models.load_backbone("resnet18", str(path))
    _one_line_error(err, path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(models.WeightsFileError, match="holds a list"):
        models.load_backbone("resnet18", str(path))


def _good_checkpoint(path):
    checkpoints.save_checkpoint(path, {"model_state": torchvision.models.resnet18().state_dict(), "classes": CLASSES})
    return path


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty", "not a dict", "missing keys"])
def test_damaged_checkpoints_fail_with_one_clear_error(tmp_path, damage):
    path = _good_checkpoint(tmp_path / "best.pt")
    assert checkpoints.load_checkpoint(path)["classes"] == CLASSES
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not a dict":
        torch.save([1, 2, 3], path)
    else:
        torch.save({"model_state": {}}, path)
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load_checkpoint(path)
    msg = _one_line_error(err, path)
    assert "delete it to retrain" in msg
    if damage == "missing keys":
        assert "classes" in msg
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        checkpoints.load_checkpoint(tmp_path / "nowhere.pt")


def _draws(loader_generator):
    return (random.random(), float(np.random.rand()), float(np.random.randn()), float(torch.rand(1)),
            int(torch.randint(0, 10**9, (1,), generator=loader_generator)))


@pytest.mark.parametrize("loader_kind", ["DataLoader", "DeviceBatchLoader"])
def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path, loader_kind):
    images, labels = torch.zeros(8, 3, 4, 4, dtype=torch.uint8), torch.arange(8) % 3
    if loader_kind == "DataLoader":
        loader = devices.make_loader(TensorDataset(images.float(), labels), 4, shuffle=True, seed=7)
    else:
        loader = DeviceBatchLoader(images.numpy(), np.arange(8), labels.numpy(), 4, shuffle=True, seed=7, device=torch.device("cpu"),
                                   transform=lambda x, y, g: x)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # numpy now holds a cached gaussian: part of its state
    torch.randint(0, 5, (3,), generator=loader.generator)
    path = tmp_path / "last.pt"
    checkpoints.save_checkpoint(path, {"model_state": {}, "classes": CLASSES, "rng": checkpoints.rng_state(loader)})
    expected = _draws(loader.generator)
    for _ in range(3):  # move every generator on
        _draws(loader.generator)
    checkpoints.set_rng_state(checkpoints.load_checkpoint(path)["rng"], loader)
    assert _draws(loader.generator) == expected


def tiny_fit(tmp_path, epochs=3, **kw):
    """A linear model on 3 separable synthetic classes; the same seed gives the same run."""
    devices.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    images = torch.randn(60, 3, 4, 4, generator=g) * 0.3 + labels.view(-1, 1, 1, 1).float()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
    optimizer = optim.build_optimizer(model, "adam", 0.01)
    scheduler = optim.build_scheduler(optimizer, "cosine", epochs)
    loaders = [devices.make_loader(TensorDataset(images[i::2], labels[i::2]), 8, shuffle=i == 0, seed=0) for i in (0, 1)]
    kw = {"resume": True, "checkpoint_dir": tmp_path / "models", "classes": CLASSES, "meta": {"lr": 0.01}, **kw}
    result = train.fit(model, *loaders, epochs=epochs, optimizer=optimizer, scheduler=scheduler, **kw)
    return model, result


def test_a_finished_run_keeps_no_optimizer_state_and_is_not_trained_again(tmp_path):
    model, first = tiny_fit(tmp_path)
    last = checkpoints.load_checkpoint(first.last_checkpoint)
    assert last["finished"] and last["epoch"] == 3 and len(last["history"]) == 3 and last["fingerprint"]
    assert not {"optimizer_state", "scheduler_state", "rng"} & set(last)
    assert "optimizer_state" not in checkpoints.load_checkpoint(first.best_checkpoint)

    epochs_run = []
    again_model, again = tiny_fit(tmp_path, after_epoch=epochs_run.append)
    assert epochs_run == [] and again.resumed_from == 4
    assert again.history.equals(first.history) and again.best_epoch == first.best_epoch
    for a, b in zip(model.state_dict().values(), again_model.state_dict().values()):
        torch.testing.assert_close(a, b)  # the best weights, loaded without training


def test_an_early_stopped_run_keeps_no_optimizer_state(tmp_path):
    devices.seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
    optimizer = optim.build_optimizer(model, "sgd", 1e-12)  # learns nothing: val loss stalls at once
    data = TensorDataset(torch.randn(24, 3, 4, 4), torch.arange(24) % 3)
    loader = devices.make_loader(data, 8, shuffle=False, seed=0)
    result = train.fit(model, loader, loader, epochs=8, optimizer=optimizer, monitor="val_micro_f1", patience=1,
                       checkpoint_dir=tmp_path / "models", classes=CLASSES)
    assert len(result.history) < 8
    last = checkpoints.load_checkpoint(result.last_checkpoint)
    assert last["finished"] and "optimizer_state" not in last


def test_resuming_from_a_damaged_last_checkpoint_fails_clearly(tmp_path):
    _, result = tiny_fit(tmp_path, epochs=1)
    result.last_checkpoint.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(checkpoints.CheckpointError, match="last.pt is not a usable checkpoint"):
        tiny_fit(tmp_path, epochs=1)
    # an unfinished checkpoint that lost its optimizer state cannot be resumed
    torch.save({"model_state": {}, "fingerprint": "x"}, result.last_checkpoint)
    _, fresh = tiny_fit(tmp_path, epochs=1)  # other fingerprint: ignored, trained afresh
    assert fresh.resumed_from is None
    state = checkpoints.load_checkpoint(fresh.last_checkpoint)
    state["finished"] = False
    checkpoints.save_checkpoint(fresh.last_checkpoint, state)
    with pytest.raises(checkpoints.CheckpointError, match="cannot be resumed .*optimizer_state"):
        tiny_fit(tmp_path, epochs=1)
