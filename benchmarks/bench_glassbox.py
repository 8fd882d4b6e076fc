"""Glass-box fit + transform throughput against the same pipeline in numpy + scikit-learn.

    PYTHONPATH=. python benchmarks/bench_glassbox.py --out bench_glassbox.json

Data: mnist5k (real, 4000 train / 1000 test) and synthetic 28x28x1 and 32x32x3 (CIFAR-sized)
sets of the same sizes; representations invariant and both, default config otherwise. The
numpy pipeline uses the fitted glass-box's own filters, so its fit time leaves out the filter
step (under a second for either). Transform throughput is over all 5000 images, steady state,
compile timed apart; it is timed in rounds interleaved with the numpy transform and a jitted
2048 x 2048 float32 ``jnp.dot`` (the machine's matmul rate, against which the transform's
counted FLOPs are set). See ``glassjax.commands.bench`` for what is counted.
"""
from __future__ import annotations

import argparse
import json

from glassjax.commands.bench import environment, glassbox_datasets, glassbox_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist5k,synthetic28x28x1,synthetic32x32x3", help="default: %(default)s")
    parser.add_argument("--representations", default="invariant,both", help="default: %(default)s")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds (default: %(default)s)")
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy + scikit-learn baseline")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    datasets = {k: v for k, v in glassbox_datasets(quick=False).items() if k in args.datasets.split(",")}
    result = {"environment": environment(), "glassbox": glassbox_workload(
        datasets, representations=tuple(args.representations.split(",")), repeats=args.repeats, numpy_baseline=not args.no_numpy)}
    print(json.dumps(result["environment"]))
    for key, row in result["glassbox"].items():
        print(f"{key}: glassjax fit {row['glassjax_fit_s']:.1f} s, transform {row['glassjax_transform_images_per_s']:.0f} img/s "
              f"({row['glassjax_transform_images_per_cpu_s']:.0f} img per CPU-second), {row['flops_per_image']['total'] / 1e6:.1f} MFLOP/img = "
              f"{row['transform_gflop_per_s']:.1f} GFLOP/s = {row['fraction_of_matmul_rate']:.2f} of jnp.dot's {row['matmul_gflop_per_s']:.0f} GFLOP/s; "
              f"accuracy {row['glassjax_accuracy']:.3f}")
        if "numpy_fit_s" in row:
            print(f"    numpy/sklearn fit {row['numpy_fit_s']:.1f} s, transform {row['numpy_transform_images_per_s']:.0f} img/s, accuracy "
                  f"{row['numpy_accuracy']:.3f} (responses agree to {row['numpy_responses_max_rel_diff']:.1e}); glassjax is "
                  f"{row['speedup_transform']:.1f}x faster on transform, {row['speedup_fit_plus_transform']:.1f}x on fit + transform")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2, default=float)


if __name__ == "__main__":
    main()
