"""Peak memory of a streaming glass-box fit over synthetic 28x28 images: it must stay flat.

    PYTHONPATH=. python benchmarks/bench_streaming_memory.py --sizes 100000,1000000 --out bench_streaming_memory.json

Each size runs in its own child process (its own peak RSS), reading ``SyntheticSource``
batches of 1024 images generated on the fly, never the whole set. The default config with
the ridge classifier (streaming class statistics; the iterative classifiers hold the (N, K)
PCA features). The ratio is the largest size's peak RSS over the smallest's, and each peak is
set beside the bytes the images would take as float32 arrays.
"""
from __future__ import annotations

import argparse
import json

from glassjax.bench import environment, memory_workload, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated image counts (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=1024, help="images per source batch (default: %(default)s)")
    parser.add_argument("--config", default="{}", help='GlassBox options as JSON, e.g. \'{"filters_per_class": 4}\'')
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    result = {"environment": environment(), "memory": memory_workload(sizes, batch=args.batch, config=json.loads(args.config))}
    for run in result["memory"]["runs"]:
        print(f"n={run['n']:>8}: fit {run['fit_seconds']:.0f} s, peak RSS {run['peak_rss_bytes'] / 2**30:.2f} GiB "
              f"(baseline {run['baseline_rss_bytes'] / 2**30:.2f} GiB; the images alone would take "
              f"{run['images_float32_bytes'] / 2**30:.2f} GiB), synthetic test accuracy {run['accuracy_synthetic_test']:.3f}")
    ratio = [v for k, v in result["memory"].items() if k.startswith("peak_rss_ratio")][0]
    print(f"peak RSS ratio, largest over smallest size: {ratio:.3f}")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
