"""Registered systems side by side: the same metrics, layer by layer, on the same images.

Every system's layers (``System.features``) take the data set's own images (N, H, W, C) in
[0, 1], so the group acts on the same pixels for every system; a system that resizes or
normalises (AlexNet) does so inside its features, and says so with ``System.input_split``:
the Lie derivative rotates the input its network sees (``metrics.Network``), so that every
system is measured on its own input. Rows are named ``{system}_{layer}`` and carry ``system``
and ``layer``.

The Lenc-Vedaldi maps are fitted on the fit images and their whole orbit (|G| times as
many rows; an orbit-closed fit set) and measured on held-out images. The ridge of a layer is
``ridge * max(1, width / rows)`` (rows = fit images, times positions for feature maps): when
a layer is wider than its fit rows, ``metrics`` solves the dual (rows x rows) system, and this
scaling makes the penalty relative to that system's mean eigenvalue instead of the wide
layer's (mostly zero) spectrum, so that wide layers (fc6, fc7) do not overfit the fit set.
Every row records the ridge and the number of fit rows it used.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import systems
from glassjax.analysis import metrics, scoring
from glassjax.core import arrays, groups
from glassjax.core.batching import map_batches
from glassjax.core.progress import progress
from glassjax.systems.protocol import System

__all__ = [
    "Features",
    "Fitted",
    "DEFAULT_RIDGE",
    "fit",
    "layer_shapes",
    "system_features",
    "predictor",
    "layer_function",
    "num_outputs",
    "combine",
    "layer_ridge",
    "metric_images",
    "layer_table",
    "run",
]

DEFAULT_RIDGE = 1e-3


class Features(NamedTuple):
    """A feature function x (N, H, W, C) -> {name: (N, ...)} and its layer names in display order;
    ``networks`` split it at each system's own input (``metrics.Network``; empty: at the images)."""

    names: tuple[str, ...]
    fn: metrics.FeatureFn
    networks: tuple[metrics.Network, ...] = ()


class Fitted(NamedTuple):
    """A system, its fitted params (on one device) and the seconds the fit took."""

    system: System
    params: Any
    fit_seconds: float


def _on_one_device(tree):
    """``tree`` on the default device: the metrics and predictions here are not sharded, and
    parameters replicated over a mesh (as the data-parallel fits leave them) would make every
    device run all of them."""
    return jax.device_put(tree, jax.local_devices()[0])  # jax.devices()[0] is process 0's in a run of several


def fit(system: str | System, dataset, *, seed: int = 0, mesh=None, **overrides) -> Fitted:
    """``system`` (a name or a System) fitted on ``dataset``'s train split with its default config
    and ``overrides`` (config field -> value), keyed by ``jax.random.key(seed)``; ``mesh`` (default:
    every device) is the device mesh a data-parallel fit shards its batches over."""
    system = systems.get(system) if isinstance(system, str) else system
    seed = arrays.as_seed(seed, "comparison.fit")
    config = system.configure(**overrides)
    start = time.perf_counter()
    params = system.fit(config, dataset, key=jax.random.key(seed), mesh=mesh)
    jax.block_until_ready(params)
    return Fitted(system, _on_one_device(params), time.perf_counter() - start)


def layer_shapes(fitted: Fitted, image_shape: Sequence[int]) -> dict:
    """layer -> jax.ShapeDtypeStruct of a fitted system's activations on one image of ``image_shape`` (H, W, C)."""
    probe = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
    order: list[str] = []

    def in_order(params, x):  # a dict output would come back with its keys sorted, not in depth order
        out = fitted.system.features(params, x)
        order[:] = list(out)
        return [out[name] for name in order]

    shapes = jax.eval_shape(in_order, fitted.params, probe)
    return dict(zip(order, shapes))


def system_features(fitted: Fitted, image_shape: Sequence[int], *, prefix: str | None = None) -> Features:
    """Every layer of a fitted system, in depth order, named ``{prefix}_{layer}`` (prefix: its name)."""
    prefix = fitted.system.name if prefix is None else prefix
    layers = tuple(layer_shapes(fitted, image_shape))
    features, params = fitted.system.features, fitted.params

    def fn(x):
        out = features(params, x)
        return {f"{prefix}_{layer}": out[layer] for layer in layers}

    split = None if fitted.system.input_split is None else fitted.system.input_split(params)
    if split is None:
        network = metrics.Network(fn, None, lambda x: fitted.system.scores(params, x))
    else:
        def on_input(u):
            out = split.layers(u)
            return {f"{prefix}_{layer}": out[layer] for layer in layers}

        network = metrics.Network(on_input, split.prepare, split.scores)
    return Features(tuple(f"{prefix}_{layer}" for layer in layers), fn, (network,))


def num_outputs(fitted: Fitted, image_shape: Sequence[int]) -> int:
    """The width of a fitted system's scores on images of ``image_shape`` (H, W, C)."""
    probe = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
    return int(jax.eval_shape(fitted.system.scores, fitted.params, probe).shape[-1])


def predictor(fitted: Fitted, *, batch_size: int = 128) -> Callable[[np.ndarray], np.ndarray]:
    """images (N, H, W, C) in [0, 1] -> the system's predicted labels (N,)."""
    # params go in as an argument, not a closure constant that XLA would fold into the program.
    labels = jax.jit(lambda p, x: jnp.argmax(fitted.system.scores(p, x), axis=-1))
    desc = f"{fitted.system.name}: predict"
    return lambda x: map_batches(lambda chunk: labels(fitted.params, chunk), x, batch_size, desc=desc)


def layer_function(fitted: Fitted, layer: str, *, batch_size: int = 128) -> Callable[[np.ndarray], np.ndarray]:
    """images (N, H, W, C) in [0, 1] -> the system's activation ``layer`` (N, ...)."""
    layer_fn = jax.jit(lambda p, x: fitted.system.features(p, x)[layer])
    desc = f"{fitted.system.name}: {layer}"
    return lambda x: map_batches(lambda chunk: layer_fn(fitted.params, chunk), x, batch_size, desc=desc)


def combine(*features: Features) -> Features:
    """Several feature sets as one: names concatenated (they must be distinct), outputs merged."""
    names = tuple(name for f in features for name in f.names)
    if len(set(names)) != len(names):
        raise ValueError(f"combine: expected distinct layer names, got {list(names)}")

    def fn(x):
        out = {}
        for f in features:
            out.update(f.fn(x))
        return out

    networks = tuple(n for f in features for n in f.networks)
    return Features(names, fn, networks if all(f.networks for f in features) else ())


def layer_ridge(shape: Sequence[int], fit_images: int, ridge: float = DEFAULT_RIDGE) -> float:
    """The ridge for one layer of per-image shape (d,) or (h, w, c) fitted on ``fit_images`` images."""
    width = shape[-1]
    rows = fit_images * (int(np.prod(shape[:-1])) if len(shape) == 3 else 1)
    return float(ridge * max(1.0, width / rows))


def metric_images(x: np.ndarray, y: np.ndarray, count: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``count`` images of (x (N, H, W, C), y (N,)), a seeded random subset when N > count."""
    if not isinstance(count, int) or count < 2:
        raise ValueError(f"metric_images: expected count an int >= 2, got {count!r}")
    if x.shape[0] <= count:
        return x, y
    keep = np.sort(np.random.default_rng(seed).permutation(x.shape[0])[:count])
    return x[keep], y[keep]


def layer_table(
    features: Features,
    group: str | groups.Group,
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    *,
    ridge: float = DEFAULT_RIDGE,
    batch_size: int = 32,
) -> list[dict]:
    """``metrics.layer_report`` rows for every layer of ``features``, in ``features.names`` order.

    x_fit (N, H, W, C) with its orbit fits the equivariance maps and the linear probe; x_eval
    (M, H, W, C), y_eval (M,) measure everything. Layers are measured in groups that share a
    ridge (``layer_ridge``); each row gains ``ridge`` and ``fit_rows``.
    """
    group = groups.get(group)
    x_orbit = np.asarray(groups.orbit(group, jnp.asarray(x_fit)))
    x_orbit = x_orbit.reshape((-1,) + x_orbit.shape[2:])
    y_orbit = np.repeat(np.asarray(y_fit, np.int32), group.order)
    shapes = jax.eval_shape(features.fn, jax.ShapeDtypeStruct((1,) + x_fit.shape[1:], jnp.float32))
    if set(shapes) != set(features.names):
        raise ValueError(f"layer_table: expected layers {sorted(features.names)}, got {sorted(shapes)}")
    ridges = {name: layer_ridge(shapes[name].shape[1:], x_orbit.shape[0], ridge) for name in features.names}
    rows = {}
    for value in sorted(set(ridges.values())):
        chosen = tuple(name for name in features.names if ridges[name] == value)

        def subset(x, chosen=chosen):
            out = features.fn(x)
            return {name: out[name] for name in chosen}

        rows_of_group = metrics.layer_report(subset, group, x_orbit, x_eval, y_eval, y_fit=y_orbit, ridge=value,
                                             batch_size=batch_size, networks=_subset_networks(features, chosen, x_fit))
        for row in rows_of_group:
            rows[row["name"]] = dict(row, ridge=value, fit_rows=int(x_orbit.shape[0]))
    return [rows[name] for name in features.names]


def _subset_networks(features: Features, chosen: tuple[str, ...], x: np.ndarray) -> tuple[metrics.Network, ...] | None:
    """The networks of ``features`` cut to the layers in ``chosen`` (those with none left dropped)."""
    if not features.networks:
        return None
    out = []
    for network in features.networks:
        probe = jax.ShapeDtypeStruct((1,) + x.shape[1:], jnp.float32)
        if network.prepare is not None:
            probe = jax.eval_shape(network.prepare, probe)
        keep = [name for name in jax.eval_shape(network.layers, probe) if name in chosen]
        if keep:
            def layers(u, network=network, keep=tuple(keep)):
                out = network.layers(u)
                return {name: out[name] for name in keep}

            out.append(network._replace(layers=layers))
    return tuple(out)


def run(
    dataset,
    fitted: Mapping[str, Fitted],
    *,
    group: str = "d4",
    images: int = 200,
    ridge: float = DEFAULT_RIDGE,
    batch_size: int = 32,
    seed: int = 0,
) -> dict:
    """The side-by-side numbers: ``layers`` (rows of ``layer_table``), ``accuracy`` and ``systems``.

    ``fitted`` maps a system name to its ``Fitted``; every layer of every system is measured.
    A system's accuracy is measured when its scores have one output per class of ``dataset``
    (else it is None: AlexNet with ImageNet weights, say). Metric images: at most ``images``
    from each split (``metric_images``).
    """
    if not fitted:
        raise ValueError("comparison.run: expected at least one fitted system, got none")
    group_name = groups.get(group).name
    image_shape = dataset.x_test.shape[1:]
    features = combine(*(system_features(f, image_shape, prefix=name) for name, f in fitted.items()))

    x_fit, y_fit = metric_images(dataset.x_train, dataset.y_train, images, seed=seed)
    x_eval, y_eval = metric_images(dataset.x_test, dataset.y_test, images, seed=seed + 1)
    start = time.perf_counter()
    rows = layer_table(features, group_name, x_fit, y_fit, x_eval, y_eval, ridge=ridge, batch_size=batch_size)
    metric_seconds = time.perf_counter() - start
    owner = {f"{name}_{layer}": (name, layer) for name, f in fitted.items() for layer in layer_shapes(f, image_shape)}
    for row in rows:
        row.update(zip(("system", "layer"), owner[row["name"]]))

    start = time.perf_counter()
    accuracy = {}
    for name, f in progress(fitted.items(), total=len(fitted), desc="accuracy", unit="system"):
        if num_outputs(f, image_shape) != dataset.num_classes:
            accuracy[name] = None
            continue
        accuracy[name] = scoring.scores(predictor(f), dataset.x_test, dataset.y_test, group=group_name, seed=seed,
                                        num_classes=dataset.num_classes)
    described = {
        name: {"title": f.system.title, "description": f.system.description,
               "representation": f"{name}_{f.system.representation(f.params)}",
               "settings": dict(f.system.settings(f.params)), "fit_seconds": f.fit_seconds}
        for name, f in fitted.items()
    }
    return {
        "dataset": dataset.name,
        "classes": list(dataset.class_names),
        "group": group_name,
        "n_fit_images": int(x_fit.shape[0]),
        "n_eval_images": int(x_eval.shape[0]),
        "systems": described,
        "layers": rows,
        "accuracy": accuracy,
        "seconds": {"metrics": metric_seconds, "accuracy": time.perf_counter() - start},
    }
