"""Mixed precision chosen by the device, and worker counts from the machine.

The choice is made by ``devices.amp_mode`` alone; here a GPU's compute capability is faked (no GPU in
these tests). The fp16 path (autocast + ``torch.amp.GradScaler``) really trains on the CPU: recent torch
has fp16 autocast and a gradient scaler there, the same code path a T4 takes.
"""

import math

import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from simpsons_lib.config import params, paths
from simpsons_lib.data import parallel, study
from simpsons_lib.training import checkpoints, devices, evaluation, experiment, optim
from simpsons_lib.training import loop as train

CLASSES = ["a", "b", "c"]
CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def fake_gpu(monkeypatch, capability, *, old_torch=False, name="Fake GPU"):
    """A CUDA GPU of ``capability`` as torch describes it: ``is_bf16_supported()`` counts emulation (True
    from 5.3 on, as on a T4) unless asked ``including_emulation=False``; ``old_torch``: no such argument."""
    def is_bf16_supported(including_emulation=True):
        return capability >= (8, 0) or (including_emulation and capability >= (5, 3))

    def old_is_bf16_supported():
        return capability >= (5, 3)  # what an emulation-counting answer says on a T4: not to be trusted

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", old_is_bf16_supported if old_torch else is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


# --- the choice ------------------------------------------------------------------------------------

@pytest.mark.parametrize("old_torch", [False, True], ids=["including_emulation", "capability"])
@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((8, 0), "bf16"), ((8, 9), "bf16"),
                                                  ((9, 0), "bf16"), ((6, 0), "fp16")])
def test_auto_picks_bf16_where_native_and_fp16_on_older_gpus(monkeypatch, capability, expected, old_torch):
    fake_gpu(monkeypatch, capability, old_torch=old_torch)
    assert torch.cuda.is_bf16_supported() == (capability >= (5, 3))  # the emulation-counting answer
    assert devices.amp_mode("auto", CUDA) == expected
    assert devices.amp_mode("auto", "cuda:0") == expected
    assert devices.amp_mode("fp16", CUDA) == "fp16" and devices.amp_mode("off", CUDA) == "off"


def test_the_cpu_and_apple_mps_train_in_fp32_under_auto():
    assert devices.amp_mode("auto", CPU) == "off"
    assert devices.amp_mode("auto", torch.device("mps")) == "off"
    assert devices.amp_mode("off", CPU) == "off"


def test_explicit_values_are_honoured_and_bf16_without_native_support_is_refused(monkeypatch):
    fake_gpu(monkeypatch, (9, 0))
    assert devices.amp_mode("bf16", CUDA) == "bf16" and devices.amp_mode("fp16", CUDA) == "fp16"
    assert devices.amp_mode("bf16", CPU) == "bf16" and devices.amp_mode("fp16", CPU) == "fp16"
    fake_gpu(monkeypatch, (7, 5), name="Tesla T4")
    with pytest.raises(RuntimeError) as err:
        devices.amp_mode("bf16", CUDA)
    message = str(err.value)
    assert "Tesla T4" in message and "7.5" in message and "amp: auto or fp16" in message and "\n" not in message
    assert devices.amp_mode(True, CUDA) == "fp16" and devices.amp_mode(False, CUDA) == "off"  # the old boolean
    with pytest.raises(ValueError, match="amp must be one of"):
        devices.amp_mode("fp32", CPU)


def test_the_scaler_comes_with_fp16_only():
    assert isinstance(devices.grad_scaler(CPU, "fp16"), torch.amp.GradScaler)
    assert devices.grad_scaler(CPU, "bf16") is None and devices.grad_scaler(CPU, "off") is None
    with devices.autocast(CPU, "fp16"):
        assert torch.nn.Linear(4, 2)(torch.randn(1, 4)).dtype == torch.float16
    with devices.autocast(CPU, "bf16"):
        assert torch.nn.Linear(4, 2)(torch.randn(1, 4)).dtype == torch.bfloat16
    with devices.autocast(CPU, "off"):
        assert torch.nn.Linear(4, 2)(torch.randn(1, 4)).dtype == torch.float32


# --- the parameter -----------------------------------------------------------------------------------

@pytest.fixture
def profile(tmp_path, monkeypatch):
    """A profile ``p`` in a temp params folder with one SimpleCnn run, ``run``; returns a writer."""
    root = tmp_path / "params"
    (root / "p").mkdir(parents=True)
    monkeypatch.setenv("SIMPSONS_PARAMS_DIR", str(root))

    def write(common: str = "", run: str = ""):
        (root / "p" / "_common.yaml").write_text("dataset: demo\n" + common)
        (root / "p" / "run.yaml").write_text("notebook: 01_simple_cnn\n" + run)
        return root / "p"
    return write


@pytest.mark.parametrize("text, value", [("amp: auto", "auto"), ("amp: bf16", "bf16"), ("amp: fp16", "fp16"),
                                         ("amp: off", "off"), ("amp: 'off'", "off"), ("amp: false", "off"),
                                         ("amp: true", "auto"), ("amp: on", "auto"), ("", "auto")])
def test_amp_values_and_the_old_boolean_resolve_to_one_spelling(profile, text, value):
    profile(common=text + "\n")
    assert params.resolve("p", "run")["amp"] == value


@pytest.mark.parametrize("where", ["common", "run"])
@pytest.mark.parametrize("text", ["amp: fp32", "amp: 16", "amp: [bf16]"])
def test_a_bad_amp_value_is_refused_in_one_line_naming_the_file_and_the_key(profile, where, text):
    folder = profile(**{where: text + "\n"})
    with pytest.raises(params.ParameterError) as err:
        params.resolve("p", "run")
    message = str(err.value)
    expected_file = folder / ("_common.yaml" if where == "common" else "run.yaml")
    assert str(expected_file) in message and "'amp'" in message and "\n" not in message


def test_an_override_spelled_as_the_old_boolean_is_no_change(profile, capsys):
    profile()
    assert params.resolve("p", "run", {"amp": True})["run_name"] == "run"  # true is auto: the same run
    changed = params.resolve("p", "run", {"amp": False})
    assert changed["amp"] == "off" and changed["run_name"].startswith("run-")
    with pytest.raises(params.ParameterError, match="overrides: parameter 'amp'"):
        params.resolve("p", "run", {"amp": "half"})


@pytest.mark.parametrize("text, ok", [("num_workers: auto", True), ("num_workers: 0", True), ("num_workers: 5", True),
                                      ("num_workers: -1", False), ("num_workers: many", False),
                                      ("num_workers: true", False), ("num_workers: 2.5", False)])
def test_num_workers_is_a_count_or_auto(profile, text, ok):
    folder = profile(common=text + "\n")
    if ok:
        params.resolve("p", "run")
        return
    with pytest.raises(params.ParameterError) as err:
        params.resolve("p", "run")
    assert str(folder / "_common.yaml") in str(err.value) and "'num_workers'" in str(err.value)


def test_the_full_profile_derives_its_workers_and_precision_from_the_machine():
    p = params.resolve("full", "simple_cnn")
    assert p["num_workers"] == "auto" and p["amp"] == "auto"


# --- workers from the machine -----------------------------------------------------------------------

@pytest.fixture
def cpus(monkeypatch, tmp_path):
    """Fake the CPUs this process may use (its affinity), with no container quota unless ``quota`` is given."""
    def fake(n, quota=None):
        monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
        cpu_max = tmp_path / "cpu.max"
        if quota is None:
            cpu_max.unlink(missing_ok=True)
        else:
            cpu_max.write_text(quota + "\n")
        monkeypatch.setattr(parallel, "CGROUP_CPU_MAX", cpu_max)
    return fake


@pytest.mark.parametrize("n, workers", [(1, 0), (2, 1), (4, 3), (8, 7), (9, 8), (64, 8)])
def test_auto_workers_leave_the_main_process_a_cpu_and_stop_at_eight(cpus, n, workers):
    cpus(n)
    assert parallel.available_cpus() == n
    assert devices.loader_workers("auto") == workers
    assert devices.loader_workers(5) == 5 and devices.loader_workers(0) == 0  # a count is a count


@pytest.mark.parametrize("quota, expected", [("400000 100000", 4), ("150000 100000", 2), ("max 100000", 16),
                                             ("garbage", 16), ("50000 100000", 1)])
def test_a_container_cpu_quota_caps_the_cpus(cpus, quota, expected):
    cpus(16, quota)
    assert parallel.available_cpus() == expected


def test_without_an_affinity_call_the_cpu_count_is_used(cpus, monkeypatch):
    cpus(1)
    monkeypatch.delattr(parallel.os, "sched_getaffinity")
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 4)
    assert parallel.available_cpus() == 4 and devices.loader_workers("auto") == 3
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: None)
    assert parallel.available_cpus() == 1 and devices.loader_workers("auto") == 0


def test_decoding_threads_follow_the_available_cpus(cpus, monkeypatch):
    cpus(3)
    made = []

    class Recording(parallel.ThreadPoolExecutor):
        def __init__(self, workers):
            made.append(workers)
            super().__init__(workers)
    monkeypatch.setattr(parallel, "ThreadPoolExecutor", Recording)
    assert list(parallel.map_chunks(sum, list(range(10)), chunk=4, processes=False)) == [6, 22, 17]
    assert made == [3]


def test_the_training_loader_gets_the_derived_workers(cpus, train_params):
    cpus(4)
    p = train_params(num_workers="auto", loader="per_sample", image_size=96)
    s = study.load_study(p, image_size=p.image_size)
    assert experiment.make_train_loader(p, s, CPU, []).num_workers == 3
    assert experiment.make_val_loader(p, s, CPU).num_workers == 3
    p = train_params(num_workers=0, loader="per_sample", image_size=96)
    assert experiment.make_train_loader(p, s, CPU, []).num_workers == 0


# --- fp16 + GradScaler training on the CPU --------------------------------------------------------------

def tiny_model():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))


def test_an_fp16_step_with_the_gradient_scaler_trains_on_the_cpu():
    devices.seed_everything(0)
    model = tiny_model()
    optimizer = optim.build_optimizer(model, "adam", 0.01)
    scaler = devices.grad_scaler(CPU, "fp16")
    before = [w.detach().clone() for w in model.parameters()]
    images, labels = torch.randn(8, 3, 8, 8), torch.arange(8) % 3
    loss, logits = train.train_step(model, images, labels, optimizer, torch.nn.CrossEntropyLoss(), CPU, "fp16", scaler)
    assert logits.dtype == torch.float16 and torch.isfinite(loss)  # the forward pass ran in fp16
    assert scaler.get_scale() == 65536.0  # the step was taken (a skipped one halves the scale)
    assert all(w.dtype == torch.float32 for w in model.parameters())  # the weights stay fp32
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_an_overflowing_step_is_skipped_and_counted():
    devices.seed_everything(0)
    model = tiny_model()
    optimizer = optim.build_optimizer(model, "adam", 0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 40)  # scaled gradients overflow fp16: inf
    before = [w.detach().clone() for w in model.parameters()]
    batch = (torch.randn(8, 3, 8, 8), torch.arange(8) % 3)
    loss, accuracy, seen, skipped = train.train_epoch(model, [batch], optimizer, torch.nn.CrossEntropyLoss(), CPU,
                                                      "fp16", scaler=scaler)
    assert skipped == 1 and seen == 8 and scaler.get_scale() == 2.0 ** 39
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # no update from inf gradients


def fp16_fit(tmp_path, monkeypatch, epochs=3, init_scale=2.0 ** 24, **kw):
    """A small CNN on 3 separable synthetic classes in fp16 on the CPU; the scaler starts at ``init_scale``
    (high: its first steps overflow and are skipped, and the scale it ends an epoch at matters to the next)."""
    def high_scaler(device, amp):
        return torch.amp.GradScaler(device.type, init_scale=init_scale) if amp == "fp16" else None
    monkeypatch.setattr(train, "grad_scaler", high_scaler)
    devices.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 3
    images = torch.randn(64, 3, 8, 8, generator=g) * 0.3 + labels.view(-1, 1, 1, 1).float()
    model = tiny_model()
    optimizer = optim.build_optimizer(model, "adam", 0.01)
    scheduler = optim.build_scheduler(optimizer, "cosine", epochs)
    loaders = [devices.make_loader(TensorDataset(images[i::2], labels[i::2]), 8, shuffle=i == 0, seed=0)
               for i in (0, 1)]
    kw = {"resume": True, "checkpoint_dir": tmp_path / "models", "classes": CLASSES, "meta": {"lr": 0.01},
          "amp": "fp16", **kw}
    return train.fit(model, *loaders, epochs=epochs, optimizer=optimizer, scheduler=scheduler, **kw)


def test_skipped_steps_are_counted_per_epoch_in_the_history(tmp_path, monkeypatch):
    scales = {}

    def scale_after(epoch):  # the scaler's own record, read from the unfinished last.pt
        state = checkpoints.load_checkpoint(tmp_path / "models" / "last.pt")
        if not state["finished"]:
            scales[epoch] = state["scaler_state"]["scale"]
    result = fp16_fit(tmp_path, monkeypatch, after_epoch=scale_after)
    h = result.history
    assert result.amp == "fp16" and "skipped_steps" in h
    assert h["skipped_steps"].iloc[0] > 0  # the first steps overflow at 2**24
    # each skip halves the scale (it grows only after 2000 good steps): the counts are the scaler's
    assert 2.0 ** 24 / 2.0 ** h["skipped_steps"].iloc[0] == scales[1]
    assert 2.0 ** 24 / 2.0 ** h["skipped_steps"].iloc[:2].sum() == scales[2]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]  # it learns once the scale has settled
    saved = checkpoints.load_checkpoint(result.last_checkpoint)
    assert saved["params"]["amp_used"] == "fp16" and "skipped_steps" in saved["history"][0]


class Interrupt(Exception):
    pass


def _stop_after_first(epoch):
    if epoch == 1:
        raise Interrupt


def test_an_interrupted_fp16_run_resumes_exactly_with_the_scalers_state(tmp_path, monkeypatch):
    full = fp16_fit(tmp_path / "full", monkeypatch)
    assert full.history["skipped_steps"].iloc[1] > 0  # the scale was still falling when epoch 1 ended

    with pytest.raises(Interrupt):
        fp16_fit(tmp_path / "resumed", monkeypatch, after_epoch=_stop_after_first)
    last = checkpoints.load_checkpoint(tmp_path / "resumed" / "models" / "last.pt")
    assert last["epoch"] == 1 and last["scaler_state"]["scale"] < 2.0 ** 24
    resumed = fp16_fit(tmp_path / "resumed", monkeypatch)
    assert resumed.resumed_from == 2
    pd.testing.assert_frame_equal(resumed.history.drop(columns=list(train.TIMING_COLUMNS)),
                                  full.history.drop(columns=list(train.TIMING_COLUMNS)))

    # the control: the same resume from a scaler that starts over does not match
    with pytest.raises(Interrupt):
        fp16_fit(tmp_path / "fresh_scaler", monkeypatch, after_epoch=_stop_after_first)
    path = tmp_path / "fresh_scaler" / "models" / "last.pt"
    state = checkpoints.load_checkpoint(path)
    state["scaler_state"] = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24).state_dict()
    checkpoints.save_checkpoint(path, state)
    other = fp16_fit(tmp_path / "fresh_scaler", monkeypatch)
    assert other.resumed_from == 2
    assert not other.history["skipped_steps"].equals(full.history["skipped_steps"])


def test_an_fp16_checkpoint_without_its_scaler_state_is_not_resumed_silently(tmp_path, monkeypatch):
    with pytest.raises(Interrupt):
        fp16_fit(tmp_path, monkeypatch, after_epoch=_stop_after_first)
    path = tmp_path / "models" / "last.pt"
    state = checkpoints.load_checkpoint(path)
    del state["scaler_state"]
    checkpoints.save_checkpoint(path, state)
    with pytest.raises(checkpoints.CheckpointError, match="cannot be resumed .*scaler_state"):
        fp16_fit(tmp_path, monkeypatch)


def test_a_run_is_resumed_only_in_the_precision_it_began_in(tmp_path, monkeypatch):
    with pytest.raises(Interrupt):
        fp16_fit(tmp_path, monkeypatch, after_epoch=_stop_after_first)
    again = fp16_fit(tmp_path, monkeypatch, amp="off")
    assert again.resumed_from is None and again.amp == "off" and "skipped_steps" not in again.history


# --- evaluation, TTA and the record ---------------------------------------------------------------------

class DtypeRecorder(torch.nn.Module):
    """A linear classifier recording the dtype its layer computed in."""

    def __init__(self):
        super().__init__()
        self.flatten, self.linear, self.seen = torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3), []

    def forward(self, x):
        out = self.linear(self.flatten(x))
        self.seen.append(out.dtype)
        return out


@pytest.mark.parametrize("amp, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16), ("auto", torch.float32),
                                        ("off", torch.float32)])
def test_evaluation_and_tta_use_the_runs_autocast(amp, dtype):
    model = DtypeRecorder()
    loader = devices.make_loader(TensorDataset(torch.randn(6, 3, 4, 4), torch.arange(6) % 3), 3, shuffle=False, seed=0)
    for tta, views in (("none", 1), ("flip", 2)):
        model.seen.clear()
        probs, targets, loss = evaluation.predict(model, loader, CPU, amp, tta=tta)
        assert model.seen == [dtype] * (2 * views) and probs.dtype == "float32" and math.isfinite(loss)


def test_the_plot_counts_the_skipped_steps():
    from simpsons_lib.reporting import plots
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.0, 0.6],
                            "train_accuracy": [0.5, 0.7], "val_micro_f1": [0.5, 0.6], "val_macro_f1": [0.4, 0.5]})
    assert plots.learning_curves(history).axes[0].get_title() == "Loss"
    fig = plots.learning_curves(history.assign(skipped_steps=[3, 1]))
    assert fig.axes[0].get_title() == "Loss (fp16: 4 steps skipped)"


@pytest.mark.slow
def test_a_study_run_records_and_shows_its_precision(train_params):
    from simpsons_lib.pipeline import manifest
    from simpsons_lib.reporting import tables
    p = train_params(run_name="half", epochs=1, batch_size=64, image_size=96, amp="fp16")
    rp = paths.run_paths(p)
    s = study.load_study(p, image_size=p.image_size)
    model = experiment.make_model(p, s)
    result = experiment.train_model(model, s, p, rp, [])
    assert result.amp == "fp16" and "skipped_steps" in pd.read_csv(rp.history_csv)
    metrics, _ = experiment.evaluate_model(model, s, p, rp, result, [])
    assert metrics["amp"] == "fp16" and metrics["params"]["amp"] == "fp16"
    shown = tables.show(tables.metrics_table({p.run_name: metrics})).to_html()
    assert ">fp16<" in shown.replace(" ", "")
    written = manifest.write(rp.study.dir / "manifests" / "half.json", run="half", kind="train", notebook="x",
                             parameters=dict(p), keys={}, data={}, metrics=metrics, started="", finished="", seconds=1)
    assert '"amp": "fp16"' in written.read_text()
