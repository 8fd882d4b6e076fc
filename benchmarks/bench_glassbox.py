"""Glass-box fit + transform throughput against the same pipeline in numpy + scikit-learn.

    PYTHONPATH=. python benchmarks/bench_glassbox.py --out bench_glassbox.json

Data: mnist5k (real, 4000 train / 1000 test) and synthetic 28x28x1 and 32x32x3 (CIFAR-sized)
sets of the same sizes; representations invariant and both, default config otherwise. The
numpy pipeline uses the fitted glass-box's own filters, so its fit time leaves out the filter
step (under a second for either). Transform throughput is over all 5000 images, steady state,
compile timed apart; it is timed in rounds interleaved with the numpy transform and a jitted
2048 x 2048 float32 ``jnp.dot`` (the machine's matmul rate, against which the transform's
counted FLOPs are set). See ``glassjax.bench.workloads`` for what is counted.

With ``--kymatio-python PYTHON`` (a throwaway virtualenv with kymatio, which needs scipy < 1.15,
and scikit-learn: it is not a glassjax dependency), the same mnist5k split is written to a
temporary .npz and a child process in that virtualenv times kymatio's numpy Scattering2D
(J=2) + standardised logistic regression on it; glassjax's ratio to it is printed. The child
runs right after the glassjax rounds, not interleaved with them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile

import numpy as np

from glassjax.bench import environment, glassbox_datasets, glassbox_workload, write_json

KYMATIO_CHILD = """
import json, statistics, sys, time
import numpy as np, kymatio, scipy, sklearn
from kymatio.numpy import Scattering2D
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

d = np.load(sys.argv[1])
repeats = int(sys.argv[2])
scattering = Scattering2D(J=2, shape=d["x_train"].shape[1:3])

def features(x):
    return np.concatenate([scattering(x[i:i + 256, ..., 0]).reshape(len(x[i:i + 256]), -1) for i in range(0, len(x), 256)])

start = time.perf_counter()
f_train = features(d["x_train"])
scaler = StandardScaler().fit(f_train)
clf = LogisticRegression(C=1.0 / (1e-3 * len(f_train)), max_iter=1000).fit(scaler.transform(f_train), d["y_train"])
fit_s = time.perf_counter() - start
accuracy = float(np.mean(clf.predict(scaler.transform(features(d["x_test"]))) == d["y_test"]))
x_all = np.concatenate([d["x_train"], d["x_test"]])
times = []
for _ in range(repeats):
    start = time.perf_counter()
    features(x_all)
    times.append(time.perf_counter() - start)
print(json.dumps({"kymatio": kymatio.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
                  "scikit-learn": sklearn.__version__, "J": 2, "feature_dim": int(f_train.shape[1]), "fit_s": fit_s,
                  "accuracy": accuracy, "transform_median_s": statistics.median(times),
                  "transform_images_per_s": len(x_all) / statistics.median(times)}))
"""


def kymatio_baseline(python: str, split: tuple, repeats: int) -> dict:
    """KYMATIO_CHILD run by ``python`` on the split (x_train, y_train, x_test, y_test)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "split.npz")
        np.savez(path, x_train=split[0], y_train=split[1], x_test=split[2], y_test=split[3])
        out = subprocess.run([python, "-c", KYMATIO_CHILD, path, str(repeats)], capture_output=True, text=True, check=False)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit status {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist5k,synthetic28x28x1,synthetic32x32x3", help="default: %(default)s")
    parser.add_argument("--representations", default="invariant,both", help="default: %(default)s")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved transform timing rounds (default: %(default)s)")
    parser.add_argument("--fit-repeats", type=int, default=3, help="interleaved fit timing rounds, after a first fit (default: %(default)s)")
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy + scikit-learn baseline")
    parser.add_argument("--kymatio-python", default=None, help="python of a virtualenv with kymatio: also time scattering on mnist5k")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    all_datasets = glassbox_datasets(quick=False)
    datasets = {k: v for k, v in all_datasets.items() if k in args.datasets.split(",")}
    result = {"environment": environment(), "glassbox": glassbox_workload(
        datasets, representations=tuple(args.representations.split(",")), repeats=args.repeats, fit_repeats=args.fit_repeats,
        numpy_baseline=not args.no_numpy)}
    print(json.dumps(result["environment"]))
    for key, row in result["glassbox"].items():
        print(f"{key}: glassjax fit {row['glassjax_fit_s']:.1f} s ({row['glassjax_fit_warm_s']:.1f} s compiled), transform {row['glassjax_transform_images_per_s']:.0f} img/s "
              f"({row['glassjax_transform_images_per_cpu_s']:.0f} img per CPU-second), {row['flops_per_image']['total'] / 1e6:.1f} MFLOP/img = "
              f"{row['transform_gflop_per_s']:.1f} GFLOP/s = {row['fraction_of_matmul_rate']:.2f} of jnp.dot's {row['matmul_gflop_per_s']:.0f} GFLOP/s; "
              f"accuracy {row['glassjax_accuracy']:.3f}")
        if "numpy_fit_s" in row:
            print(f"    numpy/sklearn fit {row['numpy_fit_s']:.1f} s, transform {row['numpy_transform_images_per_s']:.0f} img/s, accuracy "
                  f"{row['numpy_accuracy']:.3f} (responses agree to {row['numpy_responses_max_rel_diff']:.1e}); glassjax is "
                  f"{row['speedup_transform']:.1f}x faster on transform, {row['speedup_fit_plus_transform']:.1f}x on fit + transform "
                  f"({row['speedup_fit_plus_transform_with_compile']:.1f}x counting compilation)")
    if args.kymatio_python:
        ky = result["kymatio"] = kymatio_baseline(args.kymatio_python, all_datasets["mnist5k"], args.repeats)
        if "error" in ky:
            print(f"kymatio: did not run: {ky['error']}")
        else:
            mine = result["glassbox"].get("mnist5k/invariant")
            print(f"kymatio {ky['kymatio']} Scattering2D J=2 (scipy {ky['scipy']}) + logistic on mnist5k: fit {ky['fit_s']:.1f} s, "
                  f"transform {ky['transform_images_per_s']:.0f} img/s, accuracy {ky['accuracy']:.3f}"
                  + (f"; glassjax invariant transform is {mine['glassjax_transform_images_per_s'] / ky['transform_images_per_s']:.1f}x faster"
                     if mine else ""))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
