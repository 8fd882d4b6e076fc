"""``glassjax bench``: the benchmark workloads, printed as ratios against baselines timed alongside."""
from __future__ import annotations

import argparse

from glassjax.cli.common import print_json

WORKLOADS = ("glassbox", "equivariance", "memory")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="time the glass-box against numpy/scikit-learn, vmap against a loop, streaming memory",
        description="Run the benchmarks of glassjax.bench in this process (memory: in child processes) "
                    "and print their ratios against the baselines timed alongside.")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated workloads from {','.join(WORKLOADS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats: a smoke run in about a minute or two")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from glassjax.bench import (environment, equivariance_workload, glassbox_datasets, glassbox_workload, memory_workload,
                                write_json)

    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown or not only:
        raise ValueError(f"--only: expected workloads from {','.join(WORKLOADS)}, got {args.only!r}")
    result = {"environment": environment(), "quick": args.quick}
    if "glassbox" in only:
        datasets = glassbox_datasets(args.quick)
        if args.quick:
            datasets = {"mnist5k": datasets["mnist5k"]}
        result["glassbox"] = glassbox_workload(datasets, representations=("invariant",) if args.quick else ("invariant", "both"),
                                               repeats=2 if args.quick else 5, fit_repeats=1 if args.quick else 3,
                                               matmul=1024 if args.quick else 2048)
        for key, row in result["glassbox"].items():
            line = (f"glassbox {key}: fit {row['glassjax_fit_s']:.1f} s, transform {row['glassjax_transform_images_per_s']:.0f} img/s, "
                    f"{row['fraction_of_matmul_rate']:.2f} of the jnp.dot rate ({row['matmul_gflop_per_s']:.0f} GFLOP/s), "
                    f"accuracy {row['glassjax_accuracy']:.3f}")
            if "numpy_fit_s" in row:
                line += (f"; numpy/sklearn fit {row['numpy_fit_s']:.1f} s, transform {row['numpy_transform_images_per_s']:.0f} img/s, "
                         f"accuracy {row['numpy_accuracy']:.3f}: fit + transform {row['speedup_fit_plus_transform']:.1f}x faster "
                         f"({row['speedup_fit_plus_transform_with_compile']:.1f}x counting compilation)")
            print(line)
    if "equivariance" in only:
        eq = result["equivariance"] = equivariance_workload(16 if args.quick else 64, repeats=3 if args.quick else 7)
        print(f"equivariance: {eq['n_images']} images x {eq['group_order']} elements x {len(eq['layers'])} AlexNet layers: "
              f"vmap {eq['timing']['vmap']['median_s'] * 1e3:.0f} ms, loop {eq['timing']['loop']['median_s'] * 1e3:.0f} ms "
              f"({eq['speedup_vmap_over_loop']:.2f}x)")
    if "memory" in only:
        sizes = [2000, 20000] if args.quick else [100000, 1000000]
        mem = result["memory"] = memory_workload(sizes)
        for r in mem["runs"]:
            print(f"memory: streaming fit of {r['n']} images, peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB, {r['fit_seconds']:.0f} s")
    if args.out:
        write_json(args.out, result)
    if args.json:
        print_json(result)
    return 0
