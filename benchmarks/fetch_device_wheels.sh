#!/usr/bin/env bash
# Download, on a machine where pip reaches PyPI, the wheels benchmarks/gpu_check.sh installs on a GPU
# machine without network access (Python 3.12, torch installed). Resolves the full dependency set for
# cp312 into .whl/ (git-ignored), then keeps only what the GPU machine's image does not already provide.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d .whl -r <(grep -v '^#' benchmarks/device_wheels.txt)
# Already installed in the GPU machine's image: drop ours so one version of each stays.
for present in attrs certifi charset_normalizer click idna jinja2 markupsafe numpy packaging psutil pygments \
               python_dateutil pyyaml requests six tqdm typing_extensions urllib3; do
  rm -f .whl/"${present}"-*.whl .whl/"${present//_/-}"-*.whl
done
ls .whl | sed 's/-py.*//; s/-cp.*//' | tr '\n' ' '; echo
du -sh .whl
