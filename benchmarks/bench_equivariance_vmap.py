"""The equivariance workload, every AlexNet layer x every D4 element x N images: vmap over the group against a Python loop.

    PYTHONPATH=. python benchmarks/bench_equivariance_vmap.py --out bench_equivariance_vmap.json

AlexNet (width 0.5, random weights: the speed does not depend on them) on 28x28 grey images
resized to 64x64; per layer and element, the relative change ||phi(g x) - phi(x)|| / ||phi(x)||.
``vmap``: one jitted call over all 8 elements; loop: 8 calls of one jitted function, results
stacked. Rounds interleave the two; compilation (first call) is reported apart.
"""
from __future__ import annotations

import argparse

from glassjax.bench import environment, equivariance_workload, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="16,64", help="comma-separated image counts N (default: %(default)s)")
    parser.add_argument("--width", type=float, default=0.5, help="AlexNet width multiplier (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds (default: %(default)s)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    result = {"environment": environment(), "equivariance": []}
    for n in (int(v) for v in args.images.split(",")):
        r = equivariance_workload(n, width=args.width, repeats=args.repeats)
        result["equivariance"].append(r)
        print(f"N={n}: vmap {r['timing']['vmap']['median_s'] * 1e3:.0f} ms (CPU {r['timing']['vmap']['median_cpu_s'] * 1e3:.0f} ms), "
              f"loop {r['timing']['loop']['median_s'] * 1e3:.0f} ms (CPU {r['timing']['loop']['median_cpu_s'] * 1e3:.0f} ms): "
              f"vmap {r['speedup_vmap_over_loop']:.2f}x the loop's speed; first calls {r['first_call_s']}")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
