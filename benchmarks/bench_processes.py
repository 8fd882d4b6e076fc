"""Fit time against the number of JAX processes and devices: ``glassjax fit`` on jax.distributed.

    PYTHONPATH=. python benchmarks/bench_processes.py --train 20000 --layouts 1x1,1x2,2x1,2x2 --out bench_processes.json

A synthetic 28x28 set (``SyntheticSource``, 10 classes) is written once to a temporary .npz,
which ``glassjax fit --dataset FILE.npz`` streams (each process reads its own shard). A layout
PxD is P processes on 127.0.0.1 (gloo collectives), each with D emulated CPU devices
(``--xla_force_host_platform_device_count``); 1xD is one process without a coordinator. The
layouts take turns for ``--rounds`` rounds, so load from other jobs hits them alike. Per run:
the wall time of the whole launch (start-up, compilation, fit, test) and process 0's
``fit_seconds``. The model must be the same whatever the layout: the script checks that each
run's test accuracy equals the first layout's and its test Fisher ratio (a continuous function
of every parameter) agrees to ``FISHER_RTOL``, and prints the largest difference.

On a machine with C cores, P x D devices share those cores: the table measures what the
distributed path costs or gains on one host, not what more hosts would add.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from glassjax.bench import environment, synthetic_split, write_json

# Statistics summed in another order agree to float32 rounding, not bit for bit.
FISHER_RTOL = 1e-4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(path: str, processes: int, devices: int, timeout: float) -> dict:
    """One ``glassjax fit`` run of ``processes`` x ``devices``; process 0's JSON report plus the wall time."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               GLASSJAX_QUIET="1")
    env.pop("JAX_ENABLE_X64", None)
    command = [sys.executable, "-m", "glassjax.cli", "fit", "--dataset", path, "--json"]
    port = _free_port()
    start = time.perf_counter()
    procs = [subprocess.Popen(command + (["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes),
                                          "--process-id", str(i)] if processes > 1 else []),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(processes)]
    outputs = [p.communicate(timeout=timeout) for p in procs]
    wall = time.perf_counter() - start
    for p, (_, err) in zip(procs, outputs):
        if p.returncode != 0:
            raise SystemExit(f"bench_processes: {processes}x{devices} failed (exit {p.returncode}): {err.strip()[-400:]}")
    report = json.loads([line for line in outputs[0][0].splitlines() if line.startswith("{")][-1])
    return {"wall_seconds": wall, "fit_seconds": report["fit_seconds"], "accuracy": report["accuracy"],
            "fisher_ratio": report["fisher_ratio"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20000, help="training images (default: %(default)s)")
    parser.add_argument("--test", type=int, default=2000, help="test images (default: %(default)s)")
    parser.add_argument("--layouts", default="1x1,1x2,2x1,2x2", help="PROCESSESxDEVICES, comma-separated (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the layouts (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take (default: %(default)s)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    layouts = [tuple(int(v) for v in layout.split("x")) for layout in args.layouts.split(",")]
    if not layouts or any(len(layout) != 2 or min(layout) < 1 for layout in layouts):
        raise SystemExit(f"bench_processes: expected --layouts like 1x1,2x2, got {args.layouts!r}")
    x_train, y_train, x_test, y_test = synthetic_split(args.train, args.test, (28, 28, 1))
    runs: dict[str, list[dict]] = {f"{p}x{d}": [] for p, d in layouts}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"synthetic{args.train}.npz")
        np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        for r in range(args.rounds):
            for p, d in layouts:
                run = _launch(path, p, d, args.timeout)
                runs[f"{p}x{d}"].append(run)
                print(f"round {r + 1}: {p} process(es) x {d} device(s): wall {run['wall_seconds']:.1f} s, "
                      f"fit {run['fit_seconds']:.1f} s, accuracy {run['accuracy']:.4f}", flush=True)
    first = next(iter(runs))
    reference = runs[first][0]
    summary = {}
    for name, rs in runs.items():
        fit = statistics.median(r["fit_seconds"] for r in rs)
        summary[name] = {"fit_seconds_median": fit, "wall_seconds_median": statistics.median(r["wall_seconds"] for r in rs),
                         "images_per_s": args.train / fit, "accuracy": rs[0]["accuracy"],
                         "same_accuracy_as_" + first: all(r["accuracy"] == reference["accuracy"] for r in rs),
                         "fisher_ratio_max_rel_diff": max(abs(r["fisher_ratio"] - reference["fisher_ratio"])
                                                          / abs(reference["fisher_ratio"]) for r in rs),
                         "fit_time_over_" + first: fit / statistics.median(r["fit_seconds"] for r in runs[first])}
        s = summary[name]
        print(f"{name}: fit {fit:.1f} s ({s['images_per_s']:.0f} img/s, {s['fit_time_over_' + first]:.2f}x the time of {first}), "
              f"wall {s['wall_seconds_median']:.1f} s, accuracy {s['accuracy']:.4f}, Fisher ratio within "
              f"{s['fisher_ratio_max_rel_diff']:.1e} of {first}'s"
              f"{'' if s['same_accuracy_as_' + first] and s['fisher_ratio_max_rel_diff'] <= FISHER_RTOL else ' (NOT the same model)'}")
    if args.out:
        write_json(args.out, {"environment": environment(), "train": args.train, "test": args.test, "runs": runs,
                              "summary": summary})


if __name__ == "__main__":
    main()
