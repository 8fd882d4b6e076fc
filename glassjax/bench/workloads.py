"""Benchmark workloads (``glassjax bench``, ``benchmarks/``): throughput and memory of the glass-box against baselines run in the same process.

Workloads (each a function returning a JSON-able dict; ``benchmarks/`` runs them at full size):
  glassbox     fit + transform images/s on real mnist5k and synthetic 28x28x1 / 32x32x3 data,
               against the same pipeline in numpy + scikit-learn (same filters), at their accuracy;
               FLOPs of the transform and their rate against a big ``jnp.dot`` timed alongside
  equivariance AlexNet's layers on every element of the group: one ``vmap`` over the group
               against a Python loop over it
  memory       peak RSS of a streaming fit over synthetic 28x28 images (one child process per size)

Timings are medians over repeats interleaved across the variants, so that load from other
processes on a shared machine hits every variant alike; compilation is timed apart.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable

import numpy as np




# --- measuring ------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Where, when and with what numbers were taken (every benchmark and experiment records it):
    date, command, CPU, cores, load, devices, versions, XLA flags, and the glassjax commit."""
    import jax
    import jaxlib
    import sklearn

    import glassjax

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([pathlib.Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "cpu": _cpu_model(),
        "cores": cores,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
        "python": platform.python_version(),
        "glassjax": glassjax.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        **_checkout(),
    }


def write_json(path, result: dict) -> None:
    """Write a benchmark's ``result`` to ``path`` as JSON, atomically (``core.files``: nothing
    half-written, only a regular file replaced); numpy scalars as floats."""
    from glassjax.core.files import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(result, indent=2, default=float).encode())


def _checkout() -> dict:
    """The commit of the glassjax checkout, and whether glassjax/ had uncommitted changes ({} outside git)."""
    import glassjax

    root = pathlib.Path(glassjax.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "glassjax"], cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit or None, "glassjax_dirty": bool(dirty.strip())}


def interleaved(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Call each variant once per round for ``repeats`` rounds; per variant the median and
    min wall seconds and the median process CPU seconds (all threads) of one call."""
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {
        name: {"median_s": statistics.median(wall[name]), "min_s": min(wall[name]), "median_cpu_s": statistics.median(cpu[name])}
        for name in variants
    }


def _matmul(n: int) -> tuple[Callable[[], object], float]:
    """A jitted float32 (n, n) @ (n, n) ready to time, and its FLOPs."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    dot = jax.jit(lambda a: a @ a)
    dot(a).block_until_ready()
    return lambda: dot(a).block_until_ready(), 2.0 * n**3


def _rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return _peak_rss_bytes()


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


# --- the glass-box against numpy + scikit-learn ---------------------------------------------------


class NumpyGlassBox:
    """The glass-box pipeline (patch filters, D4 orbit, relu pair, grid pooling, whitened orbit
    projection, mean/max/bilinear group pooling, whitened PCA, standardised logistic regression)
    in numpy + scikit-learn, on filters (F, k, k, C) given from outside. The correlation is one
    BLAS matmul of patches by filters per batch of ``batch`` images (small, so the maps stay
    in cache); whole-pixel pooling bins are block means."""

    def __init__(self, filters: np.ndarray, config, batch: int = 16):
        self.filters = np.asarray(filters, np.float32)
        self.config = config
        self.batch = batch

    def responses(self, x: np.ndarray) -> np.ndarray:
        """E: x (N, H, W, C) -> (N, 8, grid * grid * 2F), D4 elements in glassjax's order."""
        f, k, _, c = self.filters.shape
        kernel = self.filters.reshape(f, k * k * c).T  # rows ordered (dy, dx, c)
        grid = self.config.grid
        out = []
        for start in range(0, x.shape[0], self.batch):
            chunk = x[start : start + self.batch]
            orbit = np.stack([np.rot90(chunk[:, :, ::-1] if flip else chunk, r, axes=(1, 2)) for r in range(4) for flip in (0, 1)], 1)
            b, g, h, w, _ = orbit.shape
            windows = np.lib.stride_tricks.sliding_window_view(orbit, (k, k), axis=(2, 3))  # (b, g, ho, wo, c, k, k)
            ho, wo = windows.shape[2:4]
            patches = windows.transpose(0, 1, 2, 3, 5, 6, 4).reshape(b * g * ho * wo, k * k * c)
            maps = (patches @ kernel).reshape(b * g, ho, wo, f)
            halves = [self._pool(np.maximum(maps, 0), grid), self._pool(np.maximum(-maps, 0), grid)]
            out.append(np.concatenate(halves, axis=-1).reshape(b, g, -1))
        return np.concatenate(out)

    @staticmethod
    def _pool(maps: np.ndarray, grid: int) -> np.ndarray:
        """Area-weighted grid pooling (M, h, w, F) -> (M, grid, grid, F): block means for whole-pixel bins."""
        from glassjax.systems.glassbox.representation import area_pool_matrix

        m, h, w, f = maps.shape
        if h % grid == 0 and w % grid == 0:
            return maps.reshape(m, grid, h // grid, grid, w // grid, f).mean(axis=(2, 4))
        pooled = np.tensordot(maps, area_pool_matrix(w, grid), axes=([2], [1]))  # (m, h, f, grid)
        return np.einsum("ih,mhfj->mijf", area_pool_matrix(h, grid), pooled, optimize=True)

    def _represent(self, e: np.ndarray) -> np.ndarray:
        n, g, d = e.shape
        z = self.projection.transform(e.reshape(n * g, d)).reshape(n, g, -1).astype(np.float32)
        cfg = self.config
        parts = []
        if cfg.representation in ("invariant", "both"):
            zp = z[..., : cfg.pool_dim]
            for mode in cfg.poolings:
                if mode == "mean":
                    parts.append(zp.mean(1))
                elif mode == "max":
                    parts.append(zp.max(1))
                else:
                    rows, cols = np.triu_indices(zp.shape[-1])
                    parts.append((np.einsum("ngi,ngj->nij", zp, zp) / g)[:, rows, cols])
        if cfg.representation in ("equivariant", "both"):
            parts.append(z[..., : cfg.orbit_dim].reshape(n, -1))
        return np.concatenate(parts, axis=1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "NumpyGlassBox":
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        e = self.responses(x)
        n, g, d = e.shape
        width = max(self.config.pool_dim if self.config.representation != "equivariant" else 0,
                    self.config.orbit_dim if self.config.representation != "invariant" else 0)
        # eigh of the covariance, as glassjax computes its PCAs (from streaming moments)
        self.projection = PCA(min(width, d), whiten=True, svd_solver="covariance_eigh").fit(e.reshape(n * g, d))
        r = self._represent(e)
        self.pca = PCA(min(self.config.components, r.shape[1], n - 1), whiten=True, svd_solver="covariance_eigh").fit(r)
        f = self.pca.transform(r)
        self.scaler = StandardScaler().fit(f)
        # glassjax's logistic: mean cross-entropy + l2/2 |W|^2 with l2 = 1e-3, i.e. C = 1 / (l2 N)
        self.classifier = LogisticRegression(C=1.0 / (1e-3 * n), max_iter=300).fit(self.scaler.transform(f), y)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self.pca.transform(self._represent(self.responses(x)))

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.classifier.predict(self.scaler.transform(self.transform(x))) == y))


def transform_flops(params) -> dict[str, float]:
    """FLOPs per image of ``glassbox.transform`` (a multiply-add is 2), by stage, as implemented.

    conv: the valid correlation of the |G| orbit images; rho_pool: relu and the grid sum, one
    each per map value; pooled_linear: the pooled windows and their product with the filters
    (the relu pair's second half); projection: the orbit projection (only the coordinates
    read); group_pool: mean, max, bilinear; pca: the layer-2 projection.
    """
    from glassjax.systems.glassbox import model as glassbox

    cfg = params.config
    g = params.group.order
    h, w, c = params.image_shape
    out = dict.fromkeys(("conv", "rho_pool", "pooled_linear", "projection", "group_pool", "pca"), 0.0)
    response_dim = 0
    for bank, grid in glassbox._banks(params):
        f, k = bank.filters.shape[:2]
        ho, wo = h - k + 1, w - k + 1
        out["conv"] += 2.0 * g * ho * wo * f * k * k * c
        out["rho_pool"] += 2.0 * g * ho * wo * f
        out["pooled_linear"] += 2.0 * g * (grid * k * h * w * c + grid * k * grid * k * w * c + grid * grid * f * k * k * c)
        response_dim += grid * grid * 2 * f
    width = glassbox._used_projection(cfg, params.projection).components.shape[0]
    out["projection"] = 2.0 * g * response_dim * width
    if cfg.representation in ("invariant", "both"):
        d = min(cfg.pool_dim, width)
        out["group_pool"] = g * d * (2 + (2 * d if "bilinear" in cfg.poolings else 0))
    out["pca"] = 2.0 * params.pca.components.size
    out["total"] = sum(out.values())
    return out


def _fit_timed(make, x, y) -> tuple[object, float]:
    start = time.perf_counter()
    model = make().fit(x, y)
    return model, time.perf_counter() - start


def glassbox_workload(datasets: dict[str, tuple], *, representations=("invariant", "both"), repeats: int = 5,
                      fit_repeats: int = 3, matmul: int = 2048, numpy_baseline: bool = True) -> dict:
    """Per data set and representation: glassjax fit seconds (first fit, with compilation, then the
    median of ``fit_repeats`` more, interleaved with the numpy fit), transform images/s (steady state, compile apart), FLOPs and their rate against a
    ``jnp.dot`` timed in the same rounds, and the numpy + scikit-learn pipeline's fit seconds,
    transform images/s and accuracy beside them. Speed-ups of fit + transform over numpy use
    the second fit; ``..._with_compile`` the first."""
    import jax

    from glassjax.systems import glassbox
    from glassjax.systems.glassbox import GlassBox

    dot, dot_flops = _matmul(matmul)
    results = {}
    for name, (x_train, y_train, x_test, y_test) in datasets.items():
        x_all = np.concatenate([x_train, x_test])
        for representation in representations:
            row = {"n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0]), "image_shape": list(x_train.shape[1:])}
            model, row["glassjax_fit_s"] = _fit_timed(lambda: GlassBox(representation=representation), x_train, y_train)
            # Later fits of the same config and shapes reuse the compiled passes; they take turns
            # with the numpy fit, like the transforms below.
            fitted = {}
            fits = {"glassjax_fit": lambda: fitted.update(glassjax=GlassBox(representation=representation).fit(x_train, y_train))}
            if numpy_baseline:
                filters, config = model.params_.patches.filters, model.params_.config
                fits["numpy_fit"] = lambda: fitted.update(numpy=NumpyGlassBox(filters, config).fit(x_train, y_train))
            fit_timing = interleaved(fits, fit_repeats)
            row["fit_timing"] = fit_timing
            row["glassjax_fit_warm_s"] = fit_timing["glassjax_fit"]["median_s"]
            model = fitted["glassjax"]
            row["glassjax_accuracy"] = model.score(x_test, y_test)
            start = time.perf_counter()
            model.transform(x_all[:1])
            row["glassjax_transform_compile_s"] = time.perf_counter() - start
            variants = {"glassjax_transform": lambda: model.transform(x_all), "matmul": dot}
            if numpy_baseline:
                ref, row["numpy_fit_s"] = fitted["numpy"], fit_timing["numpy_fit"]["median_s"]
                row["numpy_accuracy"] = ref.score(x_test, y_test)
                e_jax = np.asarray(jax.jit(glassbox.responses)(model.params_, x_test[:32]))
                row["numpy_responses_max_rel_diff"] = float(np.max(np.abs(ref.responses(x_test[:32]) - e_jax)) / np.max(np.abs(e_jax)))
                variants["numpy_transform"] = lambda: ref.transform(x_all)
            timing = interleaved(variants, repeats)
            n = x_all.shape[0]
            flops = transform_flops(model.params_)
            t = timing["glassjax_transform"]
            row.update({
                "timing": timing,
                "glassjax_transform_images_per_s": n / t["median_s"],
                "glassjax_transform_images_per_cpu_s": n / t["median_cpu_s"],
                "flops_per_image": flops,
                "transform_gflop_per_s": flops["total"] * n / t["median_s"] / 1e9,
                "matmul_gflop_per_s": dot_flops / timing["matmul"]["median_s"] / 1e9,
            })
            row["fraction_of_matmul_rate"] = row["transform_gflop_per_s"] / row["matmul_gflop_per_s"]
            if numpy_baseline:
                row["numpy_transform_images_per_s"] = n / timing["numpy_transform"]["median_s"]
                row["speedup_transform"] = row["glassjax_transform_images_per_s"] / row["numpy_transform_images_per_s"]
                transform_s = n / row["glassjax_transform_images_per_s"]
                numpy_total = row["numpy_fit_s"] + n / row["numpy_transform_images_per_s"]
                row["speedup_fit_plus_transform"] = numpy_total / (row["glassjax_fit_warm_s"] + transform_s)
                row["speedup_fit_plus_transform_with_compile"] = numpy_total / (row["glassjax_fit_s"] + transform_s)
            results[f"{name}/{representation}"] = row
    jax.clear_caches()
    return results


# --- equivariance: vmap over the group against a Python loop ----------------------------------------


def equivariance_workload(n: int = 64, *, size: int = 64, width: float = 0.5, group: str = "d4", repeats: int = 5) -> dict:
    """Every AlexNet layer (conv1..fc8) on every group element of n images, each layer's
    ||phi(g x) - phi(x)|| / ||phi(x)|| per image and element: ``jax.vmap`` over the group
    elements in one jitted call, against a Python loop calling a jitted function once per element."""
    import jax
    import jax.numpy as jnp

    from glassjax.systems import alexnet
    from glassjax.core import groups

    group = groups.get(group)
    params = alexnet.init(jax.random.PRNGKey(0), 10, width=width)
    x = alexnet.preprocess(np.random.default_rng(0).uniform(0, 1, (n, 28, 28, 1)).astype(np.float32), size)

    def errors(params, x, base, g):
        moved = alexnet.activations(params, groups.act_batch(group, jnp.full((x.shape[0],), g), x))
        out = {}
        for name, a in moved.items():
            a, b = a.reshape(a.shape[0], -1), base[name].reshape(a.shape[0], -1)
            out[name] = jnp.linalg.norm(a - b, axis=1) / jnp.maximum(jnp.linalg.norm(b, axis=1), 1e-8)
        return out

    base = jax.jit(alexnet.activations)(params, x)
    one = jax.jit(errors)
    every = jax.jit(lambda params, x, base: jax.vmap(lambda g: errors(params, x, base, g))(jnp.arange(group.order)))

    def loop():
        per = [one(params, x, base, g) for g in range(group.order)]
        return jax.block_until_ready({k: jnp.stack([p[k] for p in per]) for k in per[0]})

    def vmapped():
        return jax.block_until_ready(every(params, x, base))

    compile_s = {}
    for name, fn in (("loop", loop), ("vmap", vmapped)):
        start = time.perf_counter()
        fn()
        compile_s[name] = time.perf_counter() - start
    a, b = loop(), vmapped()
    worst = max(float(jnp.max(jnp.abs(a[k] - b[k]))) for k in a)
    timing = interleaved({"loop": loop, "vmap": vmapped}, repeats)
    return {
        "n_images": n, "size": size, "width": width, "group": group.name, "group_order": group.order,
        "layers": list(base), "first_call_s": compile_s, "timing": timing, "max_abs_difference": worst,
        "speedup_vmap_over_loop": timing["loop"]["median_s"] / timing["vmap"]["median_s"],
        "images_x_elements_per_s_vmap": n * group.order / timing["vmap"]["median_s"],
    }


# --- memory of a streaming fit ----------------------------------------------------------------------


def streaming_memory(n: int, *, shape=(28, 28, 1), batch: int = 1024, seed: int = 0, **config) -> dict:
    """Fit ``GlassBox(**config)`` on n synthetic images streamed in batches; peak RSS and an RSS timeline."""
    from glassjax.data import sources as streaming
    from glassjax.systems.glassbox import GlassBox

    config.setdefault("classifier", "ridge")
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample():
        while not done.wait(0.5):
            samples.append((time.perf_counter(), _rss_bytes()))

    test_x, test_y = next(iter(streaming.SyntheticSource(2000, shape, batch_size=2000, seed=seed + 1)))
    baseline = _rss_bytes()
    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    model = GlassBox(seed=seed, **config).fit(streaming.SyntheticSource(n, shape, batch_size=batch, seed=seed))
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    timeline = [(round(t - start, 1), r) for t, r in samples]
    deciles = [timeline[min(len(timeline) - 1, int(q * len(timeline)))][1] for q in np.linspace(0.1, 1.0, 10)] if timeline else []
    return {
        "n": n,
        "image_shape": list(shape),
        "batch": batch,
        "config": dataclasses.asdict(model.params_.config),
        "fit_seconds": seconds,
        "images_per_second": n / seconds,  # compilation included: a fresh process per size
        "accuracy_synthetic_test": model.score(test_x, test_y),
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": _peak_rss_bytes(),
        "rss_deciles_bytes": deciles,
        "images_float32_bytes": n * int(np.prod(shape)) * 4,
    }


def memory_workload(sizes: list[int], *, batch: int = 1024, config: dict | None = None) -> dict:
    """``streaming_memory`` for each size, each in a fresh child process (its own peak RSS)."""
    runs = []
    for n in sizes:
        args = [sys.executable, "-m", "glassjax.bench.workloads", "--memory-child", str(n), "--batch", str(batch),
                "--config", json.dumps(config or {})]
        out = subprocess.run(args, capture_output=True, text=True, check=False)
        if out.returncode:
            raise RuntimeError(f"memory benchmark child for n={n} failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ratio = runs[-1]["peak_rss_bytes"] / runs[0]["peak_rss_bytes"] if len(runs) > 1 else 1.0
    return {"runs": runs, f"peak_rss_ratio_{sizes[-1]}_over_{sizes[0]}": ratio}


# --- the command ------------------------------------------------------------------------------------


def synthetic_split(n_train: int, n_test: int, shape: tuple[int, int, int], *, seed: int = 0) -> tuple:
    """(x_train, y_train, x_test, y_test) float32 images from ``streaming.SyntheticSource``."""
    from glassjax import data
    from glassjax.data import sources as streaming

    x, y = next(iter(streaming.SyntheticSource(n_train + n_test, shape, batch_size=n_train + n_test, seed=seed)))
    x = data.as_images(x)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def glassbox_datasets(quick: bool) -> dict[str, tuple]:
    """mnist5k (4000/1000, real) and synthetic 28x28x1 and 32x32x3 sets of the same sizes (a tenth with quick)."""
    from glassjax import data

    d = data.load("mnist5k")
    scale = 10 if quick else 1
    return {
        # every scale-th image: the splits are sorted by class
        "mnist5k": (d.x_train[::scale], d.y_train[::scale], d.x_test[::scale], d.y_test[::scale]),
        "synthetic28x28x1": synthetic_split(4000 // scale, 1000 // scale, (28, 28, 1)),
        "synthetic32x32x3": synthetic_split(4000 // scale, 1000 // scale, (32, 32, 3)),
    }


def _memory_child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-child", type=int, required=True)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--config", default="{}")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLASSJAX_QUIET", "1")
    print(json.dumps(streaming_memory(args.memory_child, batch=args.batch, **json.loads(args.config)), default=float))


if __name__ == "__main__":
    _memory_child(sys.argv[1:])
