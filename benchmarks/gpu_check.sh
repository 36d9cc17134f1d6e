#!/usr/bin/env bash
# Issue 5's device check, prepared to run ONCE on the lent GPU machine (no network, Python 3.12 with
# torch there; papermill & co. travel as wheels). Here, first: `bash benchmarks/fetch_device_wheels.sh`.
# Then, with the device tool, from the repo root:
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
# It generates the full-size demo stand-in (scale 1.0, Kaggle layout), runs the throughput benchmark,
# then `make all` (profile full; ResNet50 with weights null: ImageNet weights cannot be fetched there)
# from a cold image cache, and writes under $OUT: gpu.txt, gen.txt, bench.csv, bench.txt, make_all.txt,
# summary.txt (wall time, peak host and GPU memory, val F1 of each run).
# Local smoke of the mechanics: PYTHON=.venv/bin/python PROFILE=smoke SCALE=0.02 bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}; PYTHON=${PYTHON:-python3}; PROFILE=${PROFILE:-full}; SCALE=${SCALE:-1.0}
mkdir -p "$OUT"
if [ -d .whl ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export SIMPSONS_DATA_DIR=/tmp/sim_data SIMPSONS_OUTPUTS_DIR=/tmp/sim_outputs SIMPSONS_PROGRESS=0 PYTHONUNBUFFERED=1
rm -rf "$SIMPSONS_OUTPUTS_DIR"
DATA=$SIMPSONS_DATA_DIR/$([ "$PROFILE" = full ] && echo kaggle || echo demo)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; nproc; free -g
  "$PYTHON" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"; } > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"
"$PYTHON" -m simpsons_lib.demo_data --out "$DATA" --scale "$SCALE" 2>&1 | tee "$OUT/gen.txt"
if [ "$PROFILE" = full ]; then BENCH_ARGS=(); else BENCH_ARGS=(--device cpu --image-size 96 --batch-size 16 --steps 2 --warmup 1); fi
"$PYTHON" benchmarks/throughput.py --data-dir "$DATA" --out "$OUT/bench.csv" "${BENCH_ARGS[@]}" 2>&1 | tee "$OUT/bench.txt"
rm -rf "$SIMPSONS_OUTPUTS_DIR"   # make all starts from a cold image cache
P=/tmp/sim_params; rm -rf "$P"; mkdir -p "$P"; cp -r "params/$PROFILE" "$P/"
sed -i 's/^weights: .*/weights: null/' "$P/$PROFILE/resnet50.yaml"
touch /tmp/sim_stamp
"$PYTHON" - "$OUT" "$PROFILE" "$P" <<'PY'
import json, resource, subprocess, sys, threading, time
from pathlib import Path
out, profile, params = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
gpu_peak, stop = [0], threading.Event()
def watch():
    while not stop.wait(0.5):
        try:
            used = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True).stdout.split()
            gpu_peak[0] = max(gpu_peak[0], int(used[0]))
        except Exception:
            return
threading.Thread(target=watch, daemon=True).start()
start = time.perf_counter()
with open(out / "make_all.txt", "w") as log:
    rc = subprocess.run(["make", "pipeline", f"PROFILE={profile}", f"PYTHON_BASE={sys.executable}", f"PY={sys.executable}",
                         "STAMP=/tmp/sim_stamp", f"PARAMS_ROOT={params}"], stdout=log, stderr=subprocess.STDOUT).returncode
wall = time.perf_counter() - start
stop.set()
peak_host = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
lines = [f"make pipeline PROFILE={profile}: rc={rc}, wall {wall:.0f} s, peak host RSS (largest process) {peak_host:.2f} GiB, "
         f"peak GPU memory (nvidia-smi) {gpu_peak[0] / 1024:.1f} GiB"]
for m in sorted((Path("/tmp/sim_outputs") / profile / "metrics").glob("*.json")):
    d = json.loads(m.read_text())
    if "micro_f1" in d and "title" in d:
        lines.append(f"{d['run']:16s} val micro-F1 {d['micro_f1']:.4f} macro-F1 {d['macro_f1']:.4f} epochs {d['epochs_trained']} "
                     f"train {d['train_seconds']} s on {d['device_name']}")
for nb in sorted((Path("/tmp/sim_outputs") / profile / "manifests").glob("*.json")):
    d = json.loads(nb.read_text())
    lines.append(f"{d['run']:16s} notebook {d['seconds']} s")
(out / "summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
