"""The accelerator benchmark: one script, one run, inside a time budget.

Run on a machine with a GPU (or TPU) from the repository root, best through benchmarks/device.sh
(one command, under 8 minutes):

    PYTHONPATH=. python benchmarks/bench_device.py --out bench_device.json --budget 420

It needs only jax, flax, optax, equinox, numpy, scikit-learn, scikit-image and tqdm (no data
set package: the data are synthetic, shaped like MNIST and CIFAR). What it measures, each
against a baseline timed in the same process, in this order (what issue 10 asks first):
  device        device kind, platform, local and global device counts, and the float32 matmul rate
  equality      a glass-box fitted on one device against one fitted on all local devices: test
                predictions identical, largest parameter difference (1 device: trivially equal)
  glassbox_big  glass-box fit and transform images/s on 50000 + 10000 synthetic 28x28x1 and
                32x32x3 images, with the FLOP rate of the transform against a big ``jnp.dot``
  glassbox_224  the same on 2000 + 500 synthetic 224x224x3 images
  alexnet_16, alexnet_128  full-width AlexNet inference at 224x224, float32, batch 16 and 128:
                images/s and its FLOP rate (XLA's cost analysis) against the matmul rate
  glassbox      glass-box fit and transform images/s on 4000 + 1000 synthetic 28x28 images,
                against the same pipeline in numpy + scikit-learn on the host CPU (same filters)
  alexnet       full-width AlexNet inference at 224x224, batch 256, float32: images/s
  equivariance  every AlexNet layer on the 8 D4 elements of 256 images: vmap against a loop
  streaming     a streaming fit of 100000 synthetic images (and 1000000 when the budget allows),
                seconds and images/s per pass
Each part is skipped, and says so in the JSON, when the budget left cannot cover it.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from glassjax.bench import environment, equivariance_workload, glassbox_workload, streaming_memory, synthetic_split, write_json


def matmul_rate(n: int = 8192, repeats: int = 10) -> float:
    """GFLOP/s of a jitted float32 (n, n) @ (n, n) on the default device (median of ``repeats``)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    dot = jax.jit(lambda a: a @ a)
    jax.block_until_ready(dot(a))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(dot(a))
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / float(np.median(times)) / 1e9


def device_info() -> dict:
    """The device the numbers are about, and its float32 matmul rate."""
    import jax

    device = jax.devices()[0]
    return {"name": device.device_kind, "platform": device.platform, "local_devices": jax.local_device_count(),
            "devices": jax.device_count(), "matmul_gflop_per_s": matmul_rate()}


def alexnet_inference(batch: int = 256, size: int = 224, repeats: int = 10, matmul_gflop_per_s: float | None = None) -> dict:
    """Full-width AlexNet forward passes on random images (float32): images/s, and the FLOP rate
    (XLA's cost analysis of the lowered, not yet compiled, pass: on GPUs the compiled one hands the
    convolutions to cuDNN and no longer counts them) as a fraction of ``matmul_gflop_per_s``."""
    import jax

    from glassjax.systems import alexnet

    params = alexnet.init(jax.random.PRNGKey(0), 1000)
    x = jax.random.uniform(jax.random.PRNGKey(1), (batch, size, size, 3))
    apply = jax.jit(alexnet.apply)
    start = time.perf_counter()
    jax.block_until_ready(apply(params, x))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(apply(params, x))
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    out = {"batch": batch, "size": size, "compile_s": compile_s, "median_s": median, "images_per_s": batch / median}
    try:
        cost = apply.lower(params, x).cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops = float(cost["flops"])
    except Exception as err:  # cost analysis is optional per backend: the images/s stand alone
        out["flops_error"] = f"{type(err).__name__}: {err}"[:200]
    else:
        out.update(gflop_per_image=flops / batch / 1e9, gflop_per_s=flops / median / 1e9)
        if matmul_gflop_per_s:
            out.update(matmul_gflop_per_s=matmul_gflop_per_s, fraction_of_matmul_rate=out["gflop_per_s"] / matmul_gflop_per_s)
    return out


def one_vs_all_devices(n_train: int = 4000, n_test: int = 1000) -> dict:
    """A glass-box fitted on the first device against one fitted on every local device: identical
    test predictions, and the largest parameter difference relative to the parameter's scale."""
    import jax

    from glassjax.systems.glassbox import GlassBox

    x_train, y_train, x_test, y_test = synthetic_split(n_train, n_test, (28, 28, 1))
    one = GlassBox(devices=jax.local_devices()[:1]).fit(x_train, y_train)
    every = GlassBox(devices=jax.local_devices()).fit(x_train, y_train)
    worst = 0.0
    for a, b in zip(jax.tree.leaves(one.params_), jax.tree.leaves(every.params_)):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind == "f" and a.size:
            worst = max(worst, float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-30)))
    same = bool(np.array_equal(one.predict(x_test), every.predict(x_test)))
    return {"devices": jax.local_device_count(), "predictions_identical": same, "max_relative_param_diff": worst,
            "accuracy": float(one.score(x_test, y_test))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_device.json")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds the whole run may take")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLASSJAX_QUIET", "1")
    start = time.perf_counter()
    result = {"environment": environment(), "budget_s": args.budget, "skipped": []}

    def left() -> float:
        return args.budget - (time.perf_counter() - start)

    def part(name: str, needs: float, fn):
        if left() < needs:
            result["skipped"].append(f"{name}: {left():.0f} s left, needs about {needs:.0f} s")
            return
        t = time.perf_counter()
        result[name] = fn()
        print(f"{name}: done in {time.perf_counter() - t:.1f} s", flush=True)
        write_json(args.out, result)  # what is done so far survives a timeout

    # What the issue asks for first, so that a short budget still answers it.
    part("device", 5, device_info)
    part("equality", 30, one_vs_all_devices)
    part("glassbox_big", 90, lambda: glassbox_workload(
        {"synthetic28x28x1": synthetic_split(50000, 10000, (28, 28, 1)),
         "synthetic32x32x3": synthetic_split(50000, 10000, (32, 32, 3))},
        representations=("invariant",), repeats=3, fit_repeats=1, matmul=8192, numpy_baseline=False))
    part("glassbox_224", 60, lambda: glassbox_workload(
        {"synthetic224x224x3": synthetic_split(2000, 500, (224, 224, 3))},
        representations=("invariant",), repeats=3, fit_repeats=1, matmul=8192, numpy_baseline=False))
    rate = result.get("device", {}).get("matmul_gflop_per_s")
    for batch in (16, 128):
        part(f"alexnet_{batch}", 20, lambda batch=batch: alexnet_inference(batch, matmul_gflop_per_s=rate))
    part("glassbox", 60, lambda: glassbox_workload({"synthetic28x28x1": synthetic_split(4000, 1000, (28, 28, 1))},
                                                 representations=("invariant", "both"), repeats=3, fit_repeats=2))
    part("alexnet", 30, lambda: alexnet_inference(256, matmul_gflop_per_s=rate))
    part("equivariance", 30, lambda: equivariance_workload(256, repeats=5))
    part("streaming_100k", 60, lambda: streaming_memory(100_000, batch=4096))
    if "streaming_100k" in result:
        per_image = result["streaming_100k"]["fit_seconds"] / 100_000
        part("streaming_1m", 1.3 * per_image * 1_000_000 + 10, lambda: streaming_memory(1_000_000, batch=4096))
    result["seconds"] = time.perf_counter() - start
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k in ("skipped", "seconds")}))
    return result


if __name__ == "__main__":
    main()
