#!/usr/bin/env bash
# GPU check of the study, prepared to run once on a GPU machine without network access (Python 3.12 with
# torch and torchvision installed; papermill and the other notebook packages come as wheels in .whl/,
# downloaded beforehand on a machine with network access by `bash benchmarks/fetch_device_wheels.sh`).
# From the repository root, with .whl/ copied along:
#     DEADLINE=560 bash benchmarks/gpu_check.sh        # about 400 s on one H100 before modern joined `make all`
# It generates the full-size drawn stand-in (scale 1.0, Kaggle layout) into the profile's data folder, runs
# the throughput benchmark (every model, `modern` included), then `make pipeline PROFILE=full` (every run,
# `modern` included; params/full/ copied to a temporary params folder, PARAMS_ROOT, with the transfer runs'
# weights (resnet50, modern) set to null: no ImageNet weights can be downloaded offline)
# from a cold image cache, and writes under $OUT: gpu.txt (machine, versions, data generation),
# bench.csv (the benchmark at batch 256 and at the full profile's batch 64), bench.txt (its log), trace.txt
# (torch.profiler of the pipeline at batch 256), make_all.txt, summary.txt (wall time, peak host and GPU
# memory, val F1, epochs and training img/s of each run, the slowest cells of each notebook).
# MAKE_ALL_LIMIT (seconds, default 600), or DEADLINE (seconds for the whole script), stops the pipeline in
# time for the summary to be written. Without JOBS, make runs one job per GPU (one at a time on one GPU;
# with two or more, the runs that read only simple_cnn run at the same time, each on a GPU of its own:
# gpu_slots.txt lists the slot each run held, and when); JOBS=3 runs `make -j3` (on one GPU, the runs that
# depend only on simple_cnn share it at the same time); BENCH=0 skips the benchmark (only the pipeline is timed).
# AMP=fp16 (or bf16, off) forces that mixed precision in the benchmark and in every run (default: the
# profile's, auto).
# Dry run of the mechanics on a CPU (about 2-3 min):
#     PYTHON=.venv/bin/python PROFILE=smoke SCALE=0.02 bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}; PYTHON=${PYTHON:-python3}; PROFILE=${PROFILE:-full}; SCALE=${SCALE:-1.0}
JOBS=${JOBS:-}; BENCH=${BENCH:-1}; AMP=${AMP:-}
mkdir -p "$OUT"
if [ -d .whl ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  # --target puts the wheels' data files (nbconvert's HTML templates) under /tmp/site/share/jupyter
  export PYTHONPATH=/tmp/site:$PWD JUPYTER_PATH=/tmp/site/share/jupyter
fi
export SIMPSONS_DATA_DIR=/tmp/sim_data SIMPSONS_OUTPUTS_DIR=/tmp/sim_outputs SIMPSONS_PROGRESS=0 PYTHONUNBUFFERED=1
rm -rf "$SIMPSONS_OUTPUTS_DIR"
DATA=$SIMPSONS_DATA_DIR/$([ "$PROFILE" = full ] && echo kaggle || echo demo)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; echo "cores $(nproc)"; free -g
  "$PYTHON" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
  "$PYTHON" -m simpsons_lib.pipeline.demo --out "$DATA" --scale "$SCALE" 2>&1; } > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"
if [ "$PROFILE" = full ]; then BENCH_ARGS=(--batch-size 256 64 --steps 50 --warmup 10)
else BENCH_ARGS=(--device cpu --image-size 96 --batch-size 16 --steps 2 --warmup 1); fi
if [ "$BENCH" != 0 ]; then
  "$PYTHON" benchmarks/throughput.py --data-dir "$DATA" --out "$OUT/bench.csv" --trace-out "$OUT/trace.txt" "${BENCH_ARGS[@]}" \
    ${AMP:+--amp "$AMP"} \
    2>&1 | grep -v -e rationality -e "will create .* worker processes" | tee "$OUT/bench.txt"
fi
rm -rf "$SIMPSONS_OUTPUTS_DIR"   # make all starts from a cold image cache
P=/tmp/sim_params; rm -rf "$P"; mkdir -p "$P"; cp -r "params/$PROFILE" "$P/"
sed -i "s/^weights: .*/weights: null/" "$P/$PROFILE/resnet50.yaml" "$P/$PROFILE/modern.yaml"
[ -n "$AMP" ] && printf '\namp: "%s"\n' "$AMP" >> "$P/$PROFILE/_common.yaml"
touch /tmp/sim_stamp
[ -n "${DEADLINE:-}" ] && export MAKE_ALL_LIMIT=$((DEADLINE - SECONDS))  # DEADLINE: seconds for the whole script
"$PYTHON" - "$OUT" "$PROFILE" "$P" "$JOBS" <<'PY'
import json, os, resource, subprocess, sys, threading, time
import pandas as pd
from pathlib import Path
out, profile, params, jobs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
results = Path(os.environ["SIMPSONS_OUTPUTS_DIR"]) / profile  # where make writes this profile
def host_in_use():  # the whole machine's memory in use (MemTotal - MemAvailable; the file cache is not counted)
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) / 2**20
host_base = host_in_use()
gpu_peak, host_peak, stop = [0], [host_base], threading.Event()
def watch():
    while not stop.wait(0.5):
        host_peak[0] = max(host_peak[0], host_in_use())
        try:
            used = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True).stdout.split()
            gpu_peak[0] = max(gpu_peak[0], int(used[0]))
        except Exception:
            pass
threading.Thread(target=watch, daemon=True).start()
start, started = time.perf_counter(), time.time()
limit = float(os.environ.get("MAKE_ALL_LIMIT", "600"))
make = ["make", *([f"-j{jobs}"] if jobs else []), "pipeline", f"PROFILE={profile}", f"PY={sys.executable}", "STAMP=/tmp/sim_stamp", f"PARAMS_ROOT={params}"]
with open(out / "make_all.txt", "w") as log:
    try:
        rc = subprocess.run(make, stdout=log, stderr=subprocess.STDOUT, timeout=limit).returncode
    except subprocess.TimeoutExpired:
        rc = f"stopped after {limit:.0f} s (MAKE_ALL_LIMIT)"
wall = time.perf_counter() - start
stop.set()
peak_host = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
lines = [f"make {f'-j{jobs} ' if jobs else ''}pipeline PROFILE={profile}: rc={rc}, wall {wall:.0f} s, peak host RSS (largest process) "
         f"{peak_host:.2f} GiB, peak host memory in use (whole machine) {host_peak[0]:.2f} GiB ({host_base:.2f} GiB "
         f"before make), peak GPU memory (nvidia-smi) {gpu_peak[0] / 1024:.1f} GiB"]
for m in sorted((results / "metrics").glob("*.json")):
    d = json.loads(m.read_text())
    if "micro_f1" in d and "title" in d:
        history = m.with_name(f"{d['run']}_history.csv")
        rate = pd.read_csv(history)["train_images_per_s"].median() if history.exists() else float("nan")
        if d.get("epochs_trained") is None:  # an ensemble of trained runs, validated by the report (not trained)
            lines.append(f"{d['run']:16s} val micro-F1 {d['micro_f1']:.4f} macro-F1 {d['macro_f1']:.4f} "
                         f"(mean of {', '.join(d.get('members', []))}, not trained)")
            continue
        lines.append(f"{d['run']:16s} val micro-F1 {d['micro_f1']:.4f} macro-F1 {d['macro_f1']:.4f} epochs {d['epochs_trained']} "
                     f"train {d['train_seconds']} s ({rate:.0f} img/s median epoch) on {d.get('device_name')}, amp {d.get('amp')}")
for nb in sorted((results / "manifests").glob("*.json")):
    d = json.loads(nb.read_text())
    slot = d.get("gpu_slot")
    lines.append(f"{d['run']:16s} notebook {d['seconds']} s" + (f" on GPU slot {slot['slot']} (CUDA_VISIBLE_DEVICES="
                 f"{slot['cuda_visible_devices']})" if slot else ""))
slots_log = results / ".plan" / "gpu-slots.log"  # run, slot, device, taken and given back (Unix seconds)
if slots_log.exists():
    rows = [r.split("\t") for r in slots_log.read_text().splitlines()]
    (out / "gpu_slots.txt").write_text("".join(f"{r[0]:16s} slot {r[1]} (GPU {r[2]}) from {float(r[3]) - started:7.1f} s "
                                               f"to {float(r[4]) - started:7.1f} s after make started\n" for r in rows))
for nb in sorted((results / "notebooks").glob("*.ipynb")):
    cells = json.loads(nb.read_text())["cells"]
    timed = sorted(((c["metadata"].get("papermill", {}).get("duration") or 0, "".join(c["source"]).split("\n")[0][:70])
                    for c in cells if c["cell_type"] == "code"), reverse=True)
    lines.append(f"{nb.stem:16s} cells {sum(d for d, _ in timed):.1f} s; slowest: "
                 + "; ".join(f"{d:.1f} s {src}" for d, src in timed[:4]))
(out / "summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
