"""A glass-box fit timed against the same fit at an earlier commit, in interleaved rounds.

    PYTHONPATH=. python benchmarks/bench_fit_against_commit.py --baseline 9edec7d --dataset mnist5k \
        --representation both --rounds 3 --out bench_fit_against_commit.json

The baseline commit is checked out into a temporary git worktree (removed afterwards). Each
round runs one child process per tree, baseline first, alternating, so load that drifts during
the run falls on both alike. A child loads the bundled data set, fits ``GlassBox`` (one device,
seed 0) twice and reports both times: the first includes compilation, the second is the steady
state. Printed: per round and the median over rounds, this tree's time over the baseline's.
Used for issue 17's "fit time at most 1.2x" (9edec7d: the last commit before the
symmetry-adapted reduction). ``--dataset synthetic:N`` fits a streamed ``SyntheticSource`` of N
28x28 images instead (the first fit is then a warm-up on 3000 of them, so the timed one
compiles nothing), with 2000 more synthetic images as the test set: issue 10's streaming fit.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from glassjax.bench import environment, write_json

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import jax
import glassjax
from glassjax import data

name, representation = sys.argv[1:3]
if name.startswith("synthetic:"):  # a streamed source of N 28x28 images; the warm-up fit reads 3000 of them
    from glassjax.data.sources import SyntheticSource
    n = int(name.split(":")[1])
    sets = [(SyntheticSource(min(n, 3000), (28, 28, 1), seed=0), None), (SyntheticSource(n, (28, 28, 1), seed=0), None)]
    x_test, y_test = next(iter(SyntheticSource(2000, (28, 28, 1), batch_size=2000, seed=1)))
else:
    ds = data.load(name, seed=0)
    sets, x_test, y_test = [(ds.x_train, ds.y_train)] * 2, ds.x_test, ds.y_test
times = []
for x, y in sets:
    start = time.perf_counter()
    model = glassjax.GlassBox(representation=representation, seed=0, devices=jax.devices()[:1]).fit(x, y)
    times.append(time.perf_counter() - start)
print(json.dumps({"first_fit_seconds": times[0], "fit_seconds": times[1], "accuracy": float(model.score(x_test, y_test))}))
"""


def _child(tree: Path, dataset: str, representation: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), TQDM_DISABLE="1")
    out = subprocess.run([sys.executable, "-c", CHILD, dataset, representation], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="the commit to time against (any git revision)")
    p.add_argument("--dataset", default="mnist5k", help="a bundled set, or synthetic:N (default: %(default)s)")
    p.add_argument("--representation", default="both", choices=["invariant", "equivariant", "both"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None, help="also write the result as JSON here")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds: expected at least 1, got {args.rounds}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="glassjax-baseline-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
                       check=True, capture_output=True)
        try:
            for r in range(args.rounds):
                old = _child(base, args.dataset, args.representation)
                new = _child(ROOT, args.dataset, args.representation)
                rows.append({"round": r, "baseline": old, "this": new,
                             "ratio": new["fit_seconds"] / old["fit_seconds"],
                             "first_fit_ratio": new["first_fit_seconds"] / old["first_fit_seconds"]})
                print(f"round {r}: fit {new['fit_seconds']:.1f} s vs {old['fit_seconds']:.1f} s "
                      f"(x{rows[-1]['ratio']:.2f}); first fit x{rows[-1]['first_fit_ratio']:.2f}; "
                      f"accuracy {new['accuracy']:.3f} vs {old['accuracy']:.3f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    result = {"environment": environment(), "baseline": args.baseline, "dataset": args.dataset,
              "representation": args.representation, "rounds": rows,
              "median_ratio": statistics.median(r["ratio"] for r in rows),
              "median_first_fit_ratio": statistics.median(r["first_fit_ratio"] for r in rows)}
    print(f"median fit time ratio (this / {args.baseline}): {result['median_ratio']:.2f}; "
          f"first fit {result['median_first_fit_ratio']:.2f}")
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
