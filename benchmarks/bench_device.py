"""The accelerator benchmark: one script, one run, inside a time budget.

Run on a machine with a GPU (or TPU) from the repository root:

    PYTHONPATH=. python benchmarks/bench_device.py --out bench_device.json --budget 420

It needs only jax, flax, optax, equinox, numpy, scikit-learn, scikit-image and tqdm (no data
set package: the data are synthetic, shaped like MNIST and CIFAR). What it measures, each
against a baseline timed in the same process:
  glassbox      glass-box fit and transform images/s on 4000 + 1000 synthetic 28x28 images,
                against the same pipeline in numpy + scikit-learn on the host CPU (same filters)
  glassbox_big  the same on 50000 + 10000 synthetic 28x28x1 and 32x32x3 images, with the FLOP rate
                of the transform against a big ``jnp.dot`` timed alongside
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

from glassjax.bench import environment, equivariance_workload, glassbox_workload, streaming_memory, synthetic_split


def alexnet_inference(batch: int = 256, size: int = 224, repeats: int = 10) -> dict:
    """Full-width AlexNet forward passes on random images (float32): images/s."""
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
    return {"batch": batch, "size": size, "compile_s": compile_s, "median_s": median, "images_per_s": batch / median}


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
        with open(args.out, "w") as f:  # what is done so far survives a timeout
            json.dump(result, f, indent=1, default=float)

    part("glassbox", 60, lambda: glassbox_workload({"synthetic28x28x1": synthetic_split(4000, 1000, (28, 28, 1))},
                                                 representations=("invariant", "both"), repeats=3, fit_repeats=2))
    part("glassbox_big", 90, lambda: glassbox_workload(
        {"synthetic28x28x1": synthetic_split(50000, 10000, (28, 28, 1)),
         "synthetic32x32x3": synthetic_split(50000, 10000, (32, 32, 3))},
        representations=("invariant",), repeats=3, fit_repeats=1, matmul=8192, numpy_baseline=False))
    part("alexnet", 30, alexnet_inference)
    part("equivariance", 30, lambda: equivariance_workload(256, repeats=5))
    part("streaming_100k", 60, lambda: streaming_memory(100_000, batch=4096))
    if "streaming_100k" in result:
        per_image = result["streaming_100k"]["fit_seconds"] / 100_000
        part("streaming_1m", 1.3 * per_image * 1_000_000 + 10, lambda: streaming_memory(1_000_000, batch=4096))
    result["seconds"] = time.perf_counter() - start
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, default=float)
    print(json.dumps({k: v for k, v in result.items() if k in ("skipped", "seconds")}))
    return result


if __name__ == "__main__":
    main()
