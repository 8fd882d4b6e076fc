"""The glass-box and AlexNet side by side: the same metrics, layer by layer, on the same images.

Layers are named feature functions (``Features``) that take the data set's own images
(N, H, W, C) in [0, 1], so the group acts on the same pixels for both models:

  glassbox_response        E(x)[e]: the responses at the identity element      (N, D)
  glassbox_orbit           z, the orbit projection flattened: the group only
                           permutes its blocks, so it is exactly equivariant   (N, |G| d)
  glassbox_invariant       pool_g(z): exactly invariant                        (N, D_I)
  glassbox_representation  layer 1 as configured (by default only when it is
                           not the invariant part alone)                       (N, D_rep)
  glassbox_pca             layer 2, the PCA features                           (N, K)
  conv1..conv5, fc6..fc8   AlexNet's activations of ``alexnet.preprocess(x, size)``

D4 commutes with the bilinear resize of a square image, so acting before AlexNet's
preprocessing is acting on its input.

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
from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import alexnet, alexnet_training, evaluation, glassbox, groups, metrics, reduction
from glassjax import representation as rep
from glassjax.glassbox import GlassBox, GlassBoxParams
from glassjax.progress import progress

__all__ = [
    "Features",
    "GLASSBOX_LAYERS",
    "DEFAULT_RIDGE",
    "glassbox_features",
    "alexnet_features",
    "combine",
    "layer_ridge",
    "metric_images",
    "layer_table",
    "model_scores",
    "fit_glassbox",
    "load_or_train_alexnet",
    "alexnet_predictor",
    "alexnet_layer",
    "run",
]

GLASSBOX_LAYERS = ("response", "orbit", "invariant", "representation", "pca")
DEFAULT_RIDGE = 1e-3


class Features(NamedTuple):
    """A feature function x (N, H, W, C) -> {name: (N, ...)} and its layer names in display order."""

    names: tuple[str, ...]
    fn: metrics.FeatureFn


def _on_one_device(tree):
    """``tree`` on the default device: the metrics and predictions here are not sharded, and
    parameters replicated over a mesh (as the data-parallel fits leave them) would make every
    device run all of them."""
    return jax.device_put(tree, jax.devices()[0])


def glassbox_features(params: GlassBoxParams, *, prefix: str = "glassbox", layers: Sequence[str] | None = None) -> Features:
    """The glass-box's layers as features named ``{prefix}_{layer}``, layer from ``GLASSBOX_LAYERS``.

    Default layers: response, orbit, invariant, the configured representation when it is not
    the invariant one, and pca.
    """
    if layers is None:
        extra = ("representation",) if params.config.representation != "invariant" else ()
        layers = ("response", "orbit", "invariant") + extra + ("pca",)
    layers = tuple(layers)
    unknown = [layer for layer in layers if layer not in GLASSBOX_LAYERS]
    if not layers or unknown:
        raise ValueError(f"glassbox_features: expected layers from {', '.join(GLASSBOX_LAYERS)}, got {list(layers)}")
    config = params.config
    params = _on_one_device(params)

    def fn(x):
        e = glassbox.responses(params, x)  # (N, |G|, D), computed once for every layer
        z = rep.project_orbit(params.projection, e)
        orbit = z[..., : config.orbit_dim].reshape(x.shape[0], -1)
        invariant = rep.pool_group(z[..., : config.pool_dim], config.poolings)
        # Layer 1 as glassbox.represent assembles it (tests/test_comparison.py holds them equal).
        parts = {"invariant": (invariant,), "equivariant": (orbit,), "both": (invariant, orbit)}[config.representation]
        representation = jnp.concatenate(parts, axis=-1)
        values = {
            "response": e[:, 0],  # groups.Group: elements[0] is the identity
            "orbit": orbit,
            "invariant": invariant,
            "representation": representation,
            "pca": reduction.project(params.pca, representation),
        }
        return {f"{prefix}_{layer}": values[layer] for layer in layers}

    return Features(tuple(f"{prefix}_{layer}" for layer in layers), fn)


def alexnet_features(params, *, size: int = 64) -> Features:
    """AlexNet's conv1..conv5, fc6..fc8 on images (N, H, W, 1 or 3) in [0, 1], resized to ``size``."""
    params = _on_one_device(params)

    def fn(x):
        return alexnet.activations(params, alexnet.preprocess(x, size))

    return Features(alexnet.LAYER_NAMES, fn)


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

    return Features(names, fn)


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
                                             batch_size=batch_size)
        for row in rows_of_group:
            rows[row["name"]] = dict(row, ridge=value, fit_rows=int(x_orbit.shape[0]))
    return [rows[name] for name in features.names]


def _confusion(y: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[list[int]]:
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (y, predicted), 1)
    return counts.tolist()


def model_scores(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, *, group: str, seed: int, num_classes: int
) -> dict:
    """Accuracy and confusion (rows true, columns predicted) of ``predict`` on x (N, H, W, C).

    Clean, and with every image acted on by its own seeded random element of ``group``
    (``evaluation.transformed_test_set``, so every model sees the same moved images).
    ``turned_changed`` counts images whose prediction changes when the image is turned by
    180 degrees: the turn that makes a 6 a 9.
    """
    clean = np.asarray(predict(x))
    moved = np.asarray(predict(evaluation.transformed_test_set(x, group, seed=seed)))
    turned = np.asarray(predict(np.ascontiguousarray(x[:, ::-1, ::-1])))
    return {
        "accuracy": float(np.mean(clean == y)),
        "accuracy_transformed": float(np.mean(moved == y)),
        "turned_changed": int(np.sum(turned != clean)),
        "n_test": int(y.shape[0]),
        "confusion": _confusion(y, clean, num_classes),
        "confusion_transformed": _confusion(y, moved, num_classes),
    }


def fit_glassbox(dataset, *, group: str = "d4", representation: str = "invariant", seed: int = 0, devices=None) -> GlassBox:
    """A GlassBox with default settings but ``group`` and ``representation``, fitted on the train split.

    ``devices`` (default: all) are the devices its batches are sharded over.
    """
    model = GlassBox(seed=seed, devices=devices, group=group, representation=representation)
    return model.fit(dataset.x_train, dataset.y_train, class_names=dataset.class_names)


def load_or_train_alexnet(
    dataset,
    *,
    weights: str | None = None,
    size: int = 64,
    epochs: int = 10,
    width: float = 0.5,
    augment: str = "none",
    seed: int = 0,
) -> tuple[dict, dict]:
    """AlexNet params and how they were made: read from torchvision-format ``weights``, else trained.

    Training is ``alexnet_training.train`` on the train split (``width`` times torchvision's
    widths); the info dict says which, with the seconds it took.
    """
    if not isinstance(size, int) or size < alexnet.MIN_SIZE:
        raise ValueError(f"load_or_train_alexnet: expected size an int >= {alexnet.MIN_SIZE}, got {size!r}")
    start = time.perf_counter()
    if weights is not None:
        params = alexnet.load_torchvision(weights)
        info = {"source": "weights", "weights": str(weights)}
    else:
        params, history = alexnet_training.train(
            dataset, size=size, epochs=epochs, width=width, augment=augment, key=jax.random.key(seed)
        )
        info = {"source": "trained", "epochs": epochs, "width": width, "augment": augment,
                "final_loss": history[-1]["loss"] if history else None}
    info["num_classes"] = int(np.shape(params["fc8"]["bias"])[0])
    info["size"] = size
    info["seconds"] = time.perf_counter() - start
    return params, info


def alexnet_predictor(params, *, size: int, batch_size: int = 128) -> Callable[[np.ndarray], np.ndarray]:
    """images (N, H, W, C) in [0, 1] -> AlexNet's predicted labels (N,)."""
    # params go in as an argument, not a closure constant that XLA would fold into the program.
    params = _on_one_device(params)
    labels = jax.jit(lambda p, x: jnp.argmax(alexnet.apply(p, alexnet.preprocess(x, size)), axis=-1))
    return lambda x: glassbox.map_batches(lambda chunk: labels(params, chunk), x, batch_size, desc="alexnet: predict")


def alexnet_layer(params, name: str, *, size: int, batch_size: int = 128) -> Callable[[np.ndarray], np.ndarray]:
    """images (N, H, W, C) in [0, 1] -> AlexNet's activation ``name`` (N, ...)."""
    if name not in alexnet.LAYER_NAMES:
        raise ValueError(f"alexnet_layer: expected a layer from {', '.join(alexnet.LAYER_NAMES)}, got {name!r}")
    params = _on_one_device(params)
    layer = jax.jit(lambda p, x: alexnet.activations(p, alexnet.preprocess(x, size))[name])
    return lambda x: glassbox.map_batches(lambda chunk: layer(params, chunk), x, batch_size, desc=f"alexnet: {name}")


def run(
    dataset,
    *,
    glassboxes: Mapping[str, GlassBox],
    alexnet_params=None,
    alexnet_size: int = 64,
    group: str = "d4",
    images: int = 200,
    ridge: float = DEFAULT_RIDGE,
    batch_size: int = 32,
    seed: int = 0,
) -> dict:
    """The side-by-side numbers: ``layers`` (rows of ``layer_table``) and ``accuracy`` per model.

    ``glassboxes`` maps a row prefix to a fitted model: the first contributes all its layers,
    the others only their representation (if not invariant) and PCA layers, which are all
    that differ when the filters and orbit projection are shared. ``alexnet_params`` adds
    AlexNet's layers; its accuracy is measured only when fc8 has one output per class.
    Metric images: at most ``images`` from each split (``metric_images``).
    """
    if not glassboxes:
        raise ValueError("comparison.run: expected at least one fitted glass-box, got none")
    group_name = groups.get(group).name
    sets = []
    for i, (prefix, model) in enumerate(glassboxes.items()):
        if model.params_ is None:
            raise ValueError(f"comparison.run: expected fitted glass-boxes, got an unfitted {prefix!r}")
        layers = None if i == 0 else tuple(layer for layer in ("representation", "pca")
                                            if layer != "representation" or model.config.representation != "invariant")
        sets.append(glassbox_features(model.params_, prefix=prefix, layers=layers))
    if alexnet_params is not None:
        sets.append(alexnet_features(alexnet_params, size=alexnet_size))
    features = combine(*sets)

    x_fit, y_fit = metric_images(dataset.x_train, dataset.y_train, images, seed=seed)
    x_eval, y_eval = metric_images(dataset.x_test, dataset.y_test, images, seed=seed + 1)
    start = time.perf_counter()
    rows = layer_table(features, group_name, x_fit, y_fit, x_eval, y_eval, ridge=ridge, batch_size=batch_size)
    metric_seconds = time.perf_counter() - start

    predictors = {prefix: model.predict for prefix, model in glassboxes.items()}
    if alexnet_params is not None and np.shape(alexnet_params["fc8"]["bias"])[0] == dataset.num_classes:
        predictors["alexnet"] = alexnet_predictor(alexnet_params, size=alexnet_size)
    start = time.perf_counter()
    accuracy = {}
    for name, predict in progress(predictors.items(), total=len(predictors), desc="accuracy", unit="model"):
        accuracy[name] = model_scores(predict, dataset.x_test, dataset.y_test, group=group_name, seed=seed,
                                      num_classes=dataset.num_classes)
    if alexnet_params is not None and "alexnet" not in predictors:
        accuracy["alexnet"] = None
    return {
        "dataset": dataset.name,
        "classes": list(dataset.class_names),
        "group": group_name,
        "n_fit_images": int(x_fit.shape[0]),
        "n_eval_images": int(x_eval.shape[0]),
        "layers": rows,
        "accuracy": accuracy,
        "seconds": {"metrics": metric_seconds, "accuracy": time.perf_counter() - start},
    }
