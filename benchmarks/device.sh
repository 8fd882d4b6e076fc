#!/usr/bin/env bash
# The accelerator benchmark in one command, under 8 minutes on one GPU (or TPU):
#
#     benchmarks/device.sh [OUT.json]        # default bench_device.json
#
# Writes JSON (benchmarks/bench_device.py): the device's name and float32 matmul rate; the glass-box
# fitted on one device against all local devices (identical predictions); glass-box fit and
# transform images/s at 28x28 and 224x224x3; AlexNet inference images/s at batch 16 and 128 as a
# fraction of the matmul rate; then, as the budget allows, the numpy baseline, the equivariance
# workload and the streaming fits. Each part is written as soon as it is done, so a run cut short
# keeps what it measured. BUDGET (seconds, default 400) is what the parts may plan on; the whole
# run is killed at 470 s. Nothing here needs a GPU to run: on a CPU it measures the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench_device.json}"
budget="${BUDGET:-400}"
python=${PYTHON:-python}
"$python" -c 'import jax; print("devices:", jax.devices())'
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout --signal=TERM --kill-after=10 470 \
    "$python" benchmarks/bench_device.py --out "$out" --budget "$budget"
echo "results in $out"
