"""Time and peak memory of a glass-box fit and predict as the image side grows.

    PYTHONPATH=. python benchmarks/bench_image_size.py --sides 32,64,128,256,512 --out bench_image_size.json

Each side runs in its own child process (its own peak RSS): ``GlassBox()`` with its defaults
fitted on ``--images`` random grey images of side x side in two classes, then predicting them.
The fit is timed cold (it compiles), then again warm (a second fit of the same shapes reuses
the compiled passes); the peak RSS of the whole child, jax and the data
included, is set beside the bytes of the images and of their D4 orbit. ``--rgb224`` adds the
case of ``--rgb224-images`` (default: one default batch, 256) images of 224 x 224 x 3.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from glassjax.bench import environment, write_json

CHILD = r"""
import json, resource, sys, time
import numpy as np
from glassjax import GlassBox

side, n, channels = (int(v) for v in sys.argv[1:4])
rng = np.random.default_rng(0)
x = rng.random((n, side, side, channels)).astype(np.float32)
y = np.arange(n) % 2
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
model = GlassBox().fit(x, y)
fit = time.perf_counter() - start
start = time.perf_counter()
GlassBox().fit(x, y)
fit_warm = time.perf_counter() - start
start = time.perf_counter()
model.predict(x)
predict = time.perf_counter() - start
print(json.dumps({"side": side, "n": n, "channels": channels, "fit_seconds": fit, "fit_warm_seconds": fit_warm, "predict_seconds": predict,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "baseline_rss_bytes": baseline, "images_bytes": x.nbytes, "orbit_bytes": 8 * x.nbytes}))
"""


def run(side: int, n: int, channels: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(side), str(n), str(channels)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="32,64,128,256,512", help="comma-separated image sides (default: %(default)s)")
    parser.add_argument("--images", type=int, default=8, help="grey images per run (default: %(default)s)")
    parser.add_argument("--rgb224", action="store_true", help="also images of 224 x 224 x 3")
    parser.add_argument("--rgb224-images", type=int, default=256, help="how many with --rgb224 (default: %(default)s, one batch)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    runs = [run(int(side), args.images, 1) for side in args.sides.split(",")]
    if args.rgb224:
        runs.append(run(224, args.rgb224_images, 3))
    for r in runs:
        print(f"{r['n']:>4} x {r['side']:>3}x{r['side']:<3}x{r['channels']}: fit {r['fit_seconds']:6.1f} s ({r['fit_warm_seconds']:.1f} s warm), predict "
              f"{r['predict_seconds']:5.1f} s, peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB (after import "
              f"{r['baseline_rss_bytes'] / 2**30:.2f}; images {r['images_bytes'] / 2**20:.0f} MiB, "
              f"orbit {r['orbit_bytes'] / 2**20:.0f} MiB)")
    if args.out:
        write_json(args.out, {"environment": environment(), "runs": runs})


if __name__ == "__main__":
    main()
