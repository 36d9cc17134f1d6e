"""GPU slots: with several GPUs the runs that do not read each other run at the same time, one per GPU.

On this CPU machine the slots are faked (``SIMPSONS_GPU_SLOTS=2``): each run's kernel gets
``CUDA_VISIBLE_DEVICES`` set to its slot's GPU, which here simply means no GPU, as before."""

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from simpsons_lib.config.params import ParameterError
from simpsons_lib.pipeline import slots

REPO = Path(__file__).resolve().parent.parent


# --- how many slots, and which GPU each stands for --------------------------------------------------

def test_the_override_sets_the_number_of_slots_and_a_bad_one_is_one_line(monkeypatch):
    monkeypatch.setenv(slots.ENV, "2")
    assert slots.count() == 2
    monkeypatch.setenv(slots.ENV, "two")
    with pytest.raises(ParameterError, match=r"^SIMPSONS_GPU_SLOTS='two': must be a whole number"):
        slots.count()


def test_the_gpus_are_counted_in_a_child_process_and_not_at_all_without_a_driver(monkeypatch, tmp_path):
    monkeypatch.delenv(slots.ENV, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="2\n", stderr="")

    monkeypatch.setattr(slots.subprocess, "run", fake_run)
    monkeypatch.setattr(slots, "_DRIVER_NODES", (str(tmp_path / "no-driver"),))
    assert slots.count() == 0 and calls == []  # no driver: nothing to count, torch not even imported
    (tmp_path / "nvidiactl").touch()
    monkeypatch.setattr(slots, "_DRIVER_NODES", (str(tmp_path / "nvidiactl"),))
    assert slots.count() == 2
    assert calls[0][0] == sys.executable and "torch.cuda.device_count()" in calls[0][-1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the user hid every GPU
    assert slots.count() == 0 and len(calls) == 1


def test_each_slot_stands_for_one_of_the_gpus_this_process_may_use(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert slots.devices(2) == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert slots.devices(2) == ["2", "3"]


def test_make_gets_one_job_per_slot_unless_it_was_given_its_own():
    assert slots.make_command(["make", "study"], 2, makeflags="") == ["make", "-j2", "study"]
    assert slots.make_command(["make", "study"], 1, makeflags="") == ["make", "study"]
    assert slots.make_command(["make", "study"], 0, makeflags="") == ["make", "study"]
    assert slots.make_command(["make", "study"], 2, makeflags=" -j3 --jobserver-auth=3,4") == ["make", "study"]
    assert slots.jobserver_fds(" -j3 --jobserver-auth=1,2") == (1, 2)  # open here (stdout, stderr)
    assert slots.jobserver_fds(" -j3 --jobserver-auth=fifo:/tmp/x") == ()
    assert slots.jobserver_fds("s") == ()


# --- holding a slot ---------------------------------------------------------------------------------

def test_a_run_holds_a_free_slot_and_its_kernel_sees_that_gpu_only(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    with slots.held(tmp_path, "first", n=2) as first:
        assert first == slots.Slot(0, "4") and os.environ["CUDA_VISIBLE_DEVICES"] == "4"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    with open(tmp_path / "gpu-0.lock", "a+") as taken:  # another run's process holds slot 0
        fcntl.flock(taken, fcntl.LOCK_EX)
        with slots.held(tmp_path, "second", n=2) as second:
            assert second == slots.Slot(1, "5") and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
            child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"],
                                   capture_output=True, text=True, check=True)
            assert child.stdout.strip() == "5"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    log = slots.read_log(tmp_path)
    assert [(h["run"], h["slot"], h["device"]) for h in log] == [("first", 0, "4"), ("second", 1, "5")]
    assert all(h["acquired"] <= h["released"] for h in log)


def test_with_one_gpu_or_none_nothing_is_locked_nor_set(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for n in (0, 1):
        with slots.held(tmp_path, "run", n=n) as slot:
            assert slot is None and "CUDA_VISIBLE_DEVICES" not in os.environ
    assert list(tmp_path.iterdir()) == []


def overlapping_pairs(holds: list[dict]) -> list[tuple[dict, dict]]:
    return [(a, b) for i, a in enumerate(holds) for b in holds[i + 1:]
            if a["acquired"] < b["released"] and b["acquired"] < a["released"]]


def test_more_runs_than_slots_wait_for_one_and_never_share_it(tmp_path, capsys):
    """Five runs at once (threads), two slots: at most two hold one at a time, and all five run."""
    def run(name):
        with slots.held(tmp_path, name, n=2, poll_seconds=0.02):
            time.sleep(0.3)

    threads = [threading.Thread(target=run, args=(f"run{i}",)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holds = slots.read_log(tmp_path)
    assert sorted(h["run"] for h in holds) == [f"run{i}" for i in range(5)]
    assert {h["slot"] for h in holds} == {0, 1}
    pairs = overlapping_pairs(holds)
    assert pairs and all(a["slot"] != b["slot"] for a, b in pairs)
    for h in holds:  # never more than two at once
        assert sum(o["acquired"] <= h["acquired"] < o["released"] for o in holds) <= 2
    assert "waiting for a free GPU slot (all 2 taken)" in capsys.readouterr().out


def test_a_make_above_with_its_own_jobs_reaches_the_study_make(tmp_path):
    """`make -j2 pipeline` under GNU make 4.3: the pipeline's make gets the job server (its pipe stays open
    through the locked step), so two independent targets run at the same time."""
    params = tmp_path / "params" / "jobs"
    params.mkdir(parents=True)
    (params / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\n")
    inner = tmp_path / "inner.mk"
    inner.write_text("all: a b\na b:\n\t@echo start $@ $$(date +%s.%N); sleep 1; echo end $@ $$(date +%s.%N)\n")
    outer = tmp_path / "outer.mk"
    outer.write_text(f"pipeline:\n\t{sys.executable} -m simpsons_lib.pipeline locked --gpu-jobs --profile jobs -- "
                     f"$(MAKE) --no-print-directory -f {inner}\n")
    env = {**os.environ, "SIMPSONS_PARAMS_DIR": str(tmp_path / "params"), slots.ENV: "1", "PYTHONPATH": str(REPO)}
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "SIMPSONS_PIPELINE_LOCK"):
        env.pop(name, None)
    result = subprocess.run(["make", "--no-print-directory", "-j2", "-f", str(outer)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "jobserver unavailable" not in result.stderr
    times = {line.split()[0] + line.split()[1]: float(line.split()[2]) for line in result.stdout.splitlines()
             if line.startswith(("start", "end"))}
    assert times["starta"] < times["endb"] and times["startb"] < times["enda"]  # a and b overlapped


# --- the study, serial and on two faked slots ---------------------------------------------------------

RUNS = ["simple_cnn", "simple_cnn_aug", "simple_cnn_aug3"]

# Every Python process of the pipeline appends its pid, parent, command line and CUDA_VISIBLE_DEVICES here:
# what each run's kernel really saw.
SITECUSTOMIZE = """
import json, os
if os.environ.get("SLOTS_TEST_LOG"):
    with open(os.environ["SLOTS_TEST_LOG"], "a") as f:
        cmd = open("/proc/self/cmdline").read().split("\\0")
        f.write(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "cmd": cmd,
                            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\\n")
"""


def study_profile(root: Path, data: Path) -> Path:
    """Three tiny runs: ``simple_cnn``, then ``simple_cnn_aug`` and ``simple_cnn_aug3``, which read only it."""
    params = root / "params" / "slots"
    params.mkdir(parents=True)
    (params / "_common.yaml").write_text(f"data_dir: {data}\ndevice: cpu\nseed: 0\nval_fraction: 0.25\n")
    (params / "simple_cnn.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\naugment: false\n"
                                            "image_size: 96\nepochs: 1\ngallery_size: 2\n")
    for run, worst_k in (("simple_cnn_aug", 2), ("simple_cnn_aug3", 3)):
        (params / f"{run}.yaml").write_text("notebook: 01_simple_cnn\narch: simple_cnn\nworst_from_run: simple_cnn\n"
                                            f"worst_k: {worst_k}\nimage_size: 96\nepochs: 1\ngallery_size: 2\n")
    return root / "params"


def run_study(root: Path, params: Path, name: str, gpu_slots: str) -> tuple[Path, str, list[dict]]:
    """`make pipeline PROFILE=slots` into ``root/name``; its outputs, its log and its processes."""
    hook = root / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    processes = root / f"{name}.processes"
    env = {**os.environ, "SIMPSONS_OUTPUTS_DIR": str(root / name), slots.ENV: gpu_slots,
           "SLOTS_TEST_LOG": str(processes), "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)])}
    for var in ("SIMPSONS_PROGRESS", "SIMPSONS_PARAMS_DIR", "SIMPSONS_PIPELINE_LOCK", "MAKEFLAGS", "MAKELEVEL",
                "MFLAGS", "MAKEOVERRIDES", "CUDA_VISIBLE_DEVICES"):
        env.pop(var, None)
    result = subprocess.run(["make", "--no-print-directory", "pipeline", "PROFILE=slots", f"PARAMS_ROOT={params}",
                             f"PY={sys.executable}", f"STAMP={root / 'stamp'}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / name / "slots", result.stdout + result.stderr, [json.loads(line) for line in processes.open()]


def kernels_by_run(processes: list[dict]) -> dict[str, str | None]:
    """Each run's kernel's CUDA_VISIBLE_DEVICES (the kernel is a child of the run's pipeline process)."""
    by_pid = {p["pid"]: p for p in processes}
    out = {}
    for p in processes:
        parent = by_pid.get(p["ppid"], {}).get("cmd", [])
        if "ipykernel_launcher" in " ".join(p["cmd"]) and "--run" in parent:
            out[parent[parent.index("--run") + 1]] = p["cuda"]
    return out


def comparable(out: Path, run: str) -> dict:
    """A run's metrics, predictions and history without what differs between two executions (times,
    throughputs, the outputs folder's path)."""
    metrics = json.loads((out / "metrics" / f"{run}.json").read_text().replace(str(out), "<out>"))
    metrics.pop("train_seconds")
    history = pd.read_csv(out / "metrics" / f"{run}_history.csv")
    history = history[[c for c in history.columns if not any(t in c for t in ("second", "per_s", "time"))]]
    return {"metrics": metrics, "history": history.to_dict("list"),
            "predictions": (out / "metrics" / f"{run}_val_predictions.csv").read_text()}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two studies of three runs: about 6 min on two busy cores
def test_two_slots_run_the_independent_runs_at_once_each_on_its_own_gpu_with_the_serial_metrics(tmp_path, small_demo):
    params = study_profile(tmp_path, small_demo)
    (tmp_path / "stamp").touch()
    serial, serial_log, serial_processes = run_study(tmp_path, params, "serial", "1")
    parallel, parallel_log, parallel_processes = run_study(tmp_path, params, "parallel", "2")

    # one GPU or none: no slot, nothing set, as before
    assert "GPU slot" not in serial_log
    assert not (serial / ".plan" / slots.LOG_NAME).exists()
    assert kernels_by_run(serial_processes) == {run: None for run in RUNS}
    for run in RUNS:
        assert json.loads((serial / "manifests" / f"{run}.json").read_text())["gpu_slot"] is None

    # two slots: make runs two jobs, each run holds a slot of its own while it runs
    assert "plan: 2 GPU slots" in parallel_log
    holds = slots.read_log(parallel / ".plan")
    assert sorted(h["run"] for h in holds) == sorted(RUNS)
    pairs = overlapping_pairs(holds)
    assert {frozenset((a["run"], b["run"])) for a, b in pairs} == {frozenset(("simple_cnn_aug", "simple_cnn_aug3"))}
    assert all(a["slot"] != b["slot"] for a, b in pairs)
    simple = next(h for h in holds if h["run"] == "simple_cnn")
    assert all(simple["released"] <= h["acquired"] for h in holds if h["run"] != "simple_cnn")  # they read it
    kernels = kernels_by_run(parallel_processes)
    for h in holds:
        manifest = json.loads((parallel / "manifests" / f"{h['run']}.json").read_text())
        assert manifest["gpu_slot"] == {"slot": h["slot"], "cuda_visible_devices": str(h["slot"])}
        assert kernels[h["run"]] == str(h["slot"])  # the kernel saw only its slot's GPU
        assert f"[{h['run']}] notebooks/" in parallel_log
        assert f"on GPU slot {h['slot']} (CUDA_VISIBLE_DEVICES={h['slot']})" in parallel_log
    print("slots:", {h["run"]: h["slot"] for h in holds})

    # the same results as the serial study
    for run in RUNS:
        assert comparable(parallel, run) == comparable(serial, run), run
