import numpy as np
import pandas as pd
import pytest
import torch

from simpsons_lib.config import params, paths
from simpsons_lib.data import study
from simpsons_lib.training import checkpoints
from simpsons_lib.training import devices
from simpsons_lib.training import experiment
from simpsons_lib.training import loop as train
from simpsons_lib.training import models
from simpsons_lib.training import optim
def run(p, **kw):
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    worst = experiment.worst_classes(p, rp, s.classes)
    result = experiment.train_model(model, s, p, rp, worst, **kw)
    return s, rp, model, result


def without_timing(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=list(train.TIMING_COLUMNS))


@pytest.mark.slow
def test_fit_lowers_the_loss_beats_chance_and_its_grad_cam_favours_the_character(train_params, tiny_demo):
    """One model trained on the whole tiny demo: it learns (the loss falls, it beats always guessing the largest
    class, the best epoch is restored), and on the drawn data, where the generator knows where it drew each
    character, its maps put more of their mass inside the character's box than an even spread would."""
    from simpsons_lib.reporting import gradcam

    p = train_params(run_name="learn", epochs=6, batch_size=32, image_size=96, augment=False)
    s, rp, model, result = run(p)
    h = result.history
    assert h["train_loss"].iloc[-1] < 0.8 * h["train_loss"].iloc[0]
    majority = s.val["class_name"].value_counts().iloc[0] / len(s.val)  # always guessing the largest class
    metrics, predictions = experiment.evaluate_model(model, s, p, rp, result, ["homer_simpson"])
    assert metrics["micro_f1"] > majority + 0.1
    assert metrics["micro_f1"] == pytest.approx(h["val_micro_f1"].max())  # best checkpoint restored
    assert len(predictions) == len(s.val) and rp.metrics_json.exists() and rp.history_csv.exists()
    saved = pd.read_csv(rp.history_csv)
    assert list(saved.columns) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_micro_f1", "val_macro_f1",
                                   "val_accuracy", "lr", "seconds", "train_images_per_s"]

    boxes = gradcam.load_boxes(tiny_demo)
    assert len(boxes) == len(list((tiny_demo / "train").rglob("*.jpg"))) + len(list((tiny_demo / "testset").rglob("*.jpg")))
    check = gradcam.box_check(model, predictions, s.classes, 96, boxes)
    assert check["maps with evidence"] >= 10, check
    assert check["mass inside the box"] > check["box share of the image"] + 0.05, check
    assert check["maps favouring the character"] > check["maps with evidence"] / 2, check


def test_two_seeded_cpu_runs_are_identical_to_the_byte_and_another_seed_is_not(small_params, tmp_path, monkeypatch):
    """One seed drives everything: two runs with the same parameters in two outputs folders have the same
    history and predictions and write byte-identical checkpoints and exports; another seed trains otherwise."""
    p = small_params(run_name="a", epochs=2, batch_size=8, augment=True, resume=True,
                     worst_classes=["bart_simpson", "lisa_simpson"])
    written = []
    for where in ("one", "two"):
        monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(tmp_path / where))
        s, rp, model, result = run(p)
        best = rp.best_checkpoint.read_bytes() if rp.best_checkpoint.exists() else None
        _, predictions = experiment.evaluate_model(model, s, p, rp, result, [])
        written.append({"history": without_timing(result.history), "predictions": predictions,
                        "last.pt": rp.last_checkpoint.read_bytes(), "model.pt": rp.model_file.read_bytes(),
                        "best.pt": best, "timings": (rp.models / train.TIMINGS_FILE).is_file()})
    one, two = written
    pd.testing.assert_frame_equal(one.pop("history"), two.pop("history"))
    pd.testing.assert_frame_equal(one.pop("predictions"), two.pop("predictions"))
    assert one == two and one["timings"]
    # the times are kept beside the checkpoints, and a resumed history still has them
    history = run(p)[3].history
    assert history["seconds"].notna().all() and (history["seconds"] > 0).all()
    other = small_params(run_name="a", epochs=2, batch_size=8, augment=True, seed=1)
    monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(tmp_path / "third"))
    assert not without_timing(run(other)[3].history).equals(without_timing(history))


class Interrupt(Exception):
    pass


def interrupted_then_resumed(p) -> train.FitResult:
    """Train ``p``, stop it after epoch 1 (as a crash would), then run it again: it resumes."""
    def stop_after_first(epoch):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(p, after_epoch=stop_after_first)
    ckpt = checkpoints.load_checkpoint(paths.run_paths(p).models / "last.pt")
    assert ckpt["epoch"] == 1 and not ckpt["finished"]
    return run(p)[3]


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(small_params, tmp_path, monkeypatch):
    p = small_params(run_name="r", epochs=3, batch_size=8, augment=True, resume=True, scheduler="cosine",
                     worst_classes=["bart_simpson"])
    full = run(p)[3]

    monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(tmp_path / "interrupted"))
    resumed = interrupted_then_resumed(p)
    assert resumed.resumed_from == 2
    pd.testing.assert_frame_equal(without_timing(resumed.history), without_timing(full.history))
    # a finished run with the same parameters is not trained again; other parameters start afresh (at epoch 1)
    assert run(p)[3].resumed_from == 4
    epochs = []

    def stop(epoch):
        epochs.append(epoch)
        raise Interrupt

    with pytest.raises(Interrupt):
        run(small_params(run_name="r", epochs=3, batch_size=8, augment=True, resume=True, scheduler="cosine",
                         worst_classes=["bart_simpson"], lr=0.01), after_epoch=stop)
    assert epochs == [1]


def test_checkpoints_hold_what_a_user_needs(small_params):
    p = small_params(run_name="ck", epochs=2, batch_size=8)
    s, rp, model, result = run(p)
    best = checkpoints.load_checkpoint(rp.models / "best.pt")
    last = checkpoints.load_checkpoint(rp.models / "last.pt")
    for ckpt in (best, last):
        assert ckpt["classes"] == s.classes and ckpt["params"]["lr"] == p.lr
        assert set(ckpt["metrics"]) >= {"val_micro_f1", "val_macro_f1", "train_loss"}
        assert ckpt["epoch"] in (1, 2)
    # a finished run keeps no optimizer, scheduler or RNG state, but stays marked finished
    assert last["epoch"] == 2 and last["finished"] and last["fingerprint"] and len(last["history"]) == 2
    assert not {"optimizer_state", "scheduler_state", "rng"} & set(last)
    assert not [f for f in rp.models.iterdir() if f.name.startswith(".")]  # no temp files left
    rebuilt, _ = checkpoints.load_model(checkpoints.export_checkpoint(rp.best_checkpoint))
    x = torch.randn(2, 3, p.image_size, p.image_size)
    model.eval()
    torch.testing.assert_close(rebuilt(x), model(x))


def test_early_stopping(small_params):
    # SimpleCnn (no dropout): at lr 1e-9 only its BatchNorm statistics move, and its val_loss stops improving
    p = small_params(run_name="es", arch="simple_cnn", image_size=96, epochs=6, lr=1e-9, patience=1, monitor="val_loss")
    history = run(p)[3].history
    assert len(history) < 6


def test_device_selection():
    assert devices.select_device("cpu").type == "cpu"
    assert devices.select_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            devices.select_device("cuda")


def test_device_batch_loader_trains_repeatably_and_resumes(small_params, tmp_path, monkeypatch):
    p = small_params(run_name="db", epochs=3, batch_size=8, augment=True, loader="device_batches", resume=True,
                     worst_classes=["bart_simpson", "homer_simpson"])
    s, rp, model, first = run(p)
    assert checkpoints.load_checkpoint(rp.models / "last.pt")["params"]["loader_used"] == "device_batches"
    assert first.history["train_loss"].iloc[-1] < first.history["train_loss"].iloc[0]
    metrics, _ = experiment.evaluate_model(model, s, p, rp, first, [])
    assert metrics["micro_f1"] == pytest.approx(first.history["val_micro_f1"].max())
    monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(tmp_path / "again"))
    resumed = interrupted_then_resumed(p)
    assert resumed.resumed_from == 2
    pd.testing.assert_frame_equal(without_timing(resumed.history), without_timing(first.history))


def test_an_epoch_ending_in_a_batch_of_one_image_trains():
    model = models.SimpleCnn(3, input_size=96)  # its last BatchNorm sees 1x1 maps: one value per channel
    images, labels = torch.rand(9, 3, 96, 96), torch.tensor([0, 1, 2] * 3)
    batches = [(images[:4], labels[:4]), (images[4:8], labels[4:8]), (images[8:], labels[8:])]
    optimizer = optim.build_optimizer(model, "adam", 1e-3)
    loss, accuracy, seen, skipped = train.train_epoch(model, batches, optimizer, torch.nn.CrossEntropyLoss(),
                                                      torch.device("cpu"), "off")
    assert seen == 8 and loss > 0 and 0 <= accuracy <= 1 and skipped == 0


# --- EMA of the weights and class-balanced sampling ---------------------------------------------------------

def test_ema_weights_are_the_ones_validated_chosen_and_kept(small_params):
    p = small_params(run_name="ema", epochs=2, batch_size=8, ema_decay=0.9)
    raw = {}

    def keep_raw(epoch):  # what the optimizer trained, before the average
        raw[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    result = experiment.train_model(model, s, p, rp, [], after_epoch=keep_raw)
    best = checkpoints.load_checkpoint(rp.best_checkpoint)
    assert best["epoch"] == result.best_epoch
    for key, value in model.state_dict().items():  # the model ends with the best epoch's average ...
        torch.testing.assert_close(value, best["model_state"][key])
    differs = [k for k, v in model.state_dict().items() if v.is_floating_point()
               and not torch.equal(v, raw[result.best_epoch][k])]
    assert differs  # ... not with the weights the optimizer left at that epoch
    metrics, _ = experiment.evaluate_model(model, s, p, rp, result, [])
    assert metrics["micro_f1"] == pytest.approx(result.history["val_micro_f1"].max())  # validated on the average


def test_an_interrupted_ema_run_resumes_exactly(small_params, tmp_path, monkeypatch):
    p = small_params(run_name="ema_r", epochs=3, batch_size=8, resume=True, ema_decay=0.8)
    full = run(p)[3]
    monkeypatch.setenv("SIMPSONS_OUTPUTS_DIR", str(tmp_path / "interrupted"))
    resumed = interrupted_then_resumed(p)
    assert resumed.resumed_from == 2
    pd.testing.assert_frame_equal(without_timing(resumed.history), without_timing(full.history))


def test_balanced_sampling_draws_rare_classes_as_often_as_common_ones():
    from simpsons_lib.data.datasets import DeviceBatchLoader, balanced_weights
    labels = torch.tensor([0] * 900 + [1] * 100)
    weights = balanced_weights(labels, power=1.0)
    assert torch.allclose(weights[:900], torch.full((900,), 1 / 900, dtype=torch.float64))

    def drawn(loader):
        return torch.cat([batch_labels for _, batch_labels in loader])

    dataset = torch.utils.data.TensorDataset(torch.zeros(1000, 1), labels)
    one = drawn(devices.make_loader(dataset, 100, shuffle=True, seed=3, weights=weights))
    assert len(one) == 1000 and 0.4 < (one == 1).float().mean() < 0.6  # natural: 0.1
    assert torch.equal(one, drawn(devices.make_loader(dataset, 100, shuffle=True, seed=3, weights=weights)))
    root = balanced_weights(labels, power=0.5)  # in proportion to sqrt(count): 30 : 10
    share = (drawn(devices.make_loader(dataset, 100, shuffle=True, seed=3, weights=root)) == 1).float().mean()
    assert 0.18 < share < 0.32
    images = np.zeros((1000, 4, 4, 3), dtype=np.uint8)
    gpu_path = DeviceBatchLoader(images, np.arange(1000), labels.numpy(), 100, shuffle=True, seed=3, device="cpu",
                                 transform=lambda x, y, g: x, weights=weights)
    same_draw = drawn(gpu_path)
    assert 0.4 < (same_draw == 1).float().mean() < 0.6 and torch.equal(same_draw, drawn(
        DeviceBatchLoader(images, np.arange(1000), labels.numpy(), 100, shuffle=True, seed=3, device="cpu",
                          transform=lambda x, y, g: x, weights=weights)))


def test_a_balanced_run_trains_and_is_its_own_run(small_params):
    natural = small_params(run_name="nat", epochs=1, batch_size=8)
    balanced = small_params(run_name="bal", epochs=1, batch_size=8, sampling="balanced", balance_power=1.0)
    assert params.training_values(natural) != params.training_values(balanced)
    result = run(balanced)[3]
    assert len(result.history) == 1 and result.history["train_loss"].notna().all()
