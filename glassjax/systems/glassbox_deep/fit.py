"""Fitting the deep glass-box analytically (no back-propagation): one pass per layer, then the top.

Layer l's filters come from lifted patches of layer l-1's maps (the images for the lifting layer)
of a seeded sample of ``filter_images`` training images per class, ``patches_per_image`` random
positions each: per-class float64 moments, symmetrised over the group, and a criterion
(``criteria``). The top then reuses the one-layer glass-box's machinery on the responses E of
every training image: the whitened orbit projection from their float64 moments, the poolings,
the symmetry-adapted PCA (``reduction.fit_symmetric_pca``, cut in whole irrep blocks) and the
classifier.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from glassjax import data
from glassjax.core import classifiers, groups, parallel, reduction
from glassjax.core.batching import map_batches
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox.config import REGULARIZATION_OPTION
from glassjax.systems.glassbox_deep import criteria, lifted
from glassjax.systems.glassbox_deep.config import DeepGlassBoxConfig
from glassjax.systems.glassbox_deep.model import DeepGlassBoxParams, _lifted, _represent, _top

__all__ = ["fit", "sample_images"]


def sample_images(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``per_class`` images of each class, drawn without replacement."""
    picks = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in range(int(y.max()) + 1)]
    return np.sort(np.concatenate(picks))


def _patches(maps: jax.Array, positions: jax.Array, k: int) -> jax.Array:
    """The k x k patches (zero padding (k - 1) / 2, as the layers see it) of maps (B, h, h, Ch) at
    positions (B, P, 2) -> (B, P, k k Ch)."""
    pad = (k - 1) // 2
    padded = jnp.pad(maps, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ch = maps.shape[-1]

    def one(image, where):
        return jax.vmap(lambda p: jax.lax.dynamic_slice(image, (p[0], p[1], 0), (k, k, ch)).reshape(-1))(where)

    return jax.vmap(one)(padded, positions)


def _layer_stats(config: DeepGlassBoxConfig, group: groups.Group, filters, biases, images: np.ndarray,
                 labels: np.ndarray, num_classes: int, layer: int, rng: np.random.Generator) -> criteria.PatchStats:
    """Symmetrised per-class statistics of layer ``layer``'s input patches on the sampled images."""
    k = config.kernel_sizes[layer]
    side = images.shape[1]
    for factor in config.downsample[:layer]:
        side = -(-side // factor)
    positions = jnp.asarray(rng.integers(0, side, size=(images.shape[0], config.patches_per_image, 2)), jnp.int32)
    images_dev = jnp.asarray(images)

    @jax.jit
    def patches(index):
        maps = images_dev[index] if layer == 0 else _lifted(config, filters, biases, images_dev[index], layer)[-1]
        return _patches(maps, positions[index], k)

    rows = map_batches(patches, np.arange(images.shape[0]), config.batch_size, desc=f"fit: layer {layer + 1} patches")
    dim = rows.shape[-1]
    moments = []
    for c in range(num_classes):
        acc = reduction.HostMoments(dim)
        acc.add(rows[labels == c].reshape(-1, dim))
        moments.append(acc.moments())
    order_in = 1 if layer == 0 else group.order
    channels = dim // (k * k * order_in)
    permutations = lifted.patch_permutations(group, k, order_in, channels)
    return criteria.symmetrise(moments, permutations, centre_patches=layer == 0)


def fit(
    config: DeepGlassBoxConfig,
    x,
    y,
    *,
    key: jax.Array,
    class_names: Sequence[str] | None = None,
    mesh: Mesh | None = None,
) -> DeepGlassBoxParams:
    """Fit every layer on images x (N, H, H, C) in [0, 1] and labels y (N,) in 0..C-1, in closed form.

    Batches of the passes over the whole training set are sharded over ``mesh`` (default: every device).
    """
    mesh = parallel.make_mesh() if mesh is None else mesh
    x = data.as_images(x, "DeepGlassBox.fit images")
    y = data.as_labels(y, x.shape[0], "DeepGlassBox.fit labels")
    n, image_shape, num_classes = x.shape[0], tuple(x.shape[1:]), int(y.max()) + 1
    missing = sorted(set(range(num_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise ValueError(f"DeepGlassBox.fit: expected every class 0..{num_classes - 1} in the training set, missing {missing}")
    class_names = tuple(str(c) for c in range(num_classes)) if class_names is None else tuple(class_names)
    if len(class_names) < num_classes:
        raise ValueError(f"DeepGlassBox.fit: expected {num_classes} class names, got {len(class_names)}")
    config = config.resolved(image_shape, n)
    group = groups.get(config.group)
    group.check_image(x.shape, "DeepGlassBox.fit")
    k_sample, k_classifier = jax.random.split(key)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_sample)).ravel())

    sample = sample_images(y, config.filter_images, rng)
    filters, biases, classes = [], [], []
    channels = image_shape[2]
    for layer, (width, k) in enumerate(zip(config.widths, config.kernel_sizes)):
        stats = _layer_stats(config, group, tuple(filters), tuple(biases), x[sample], y[sample], num_classes, layer, rng)
        bank = criteria.fit_bank(stats, config.criterion, width, shrinkage=config.shrinkage)
        order_in = 1 if layer == 0 else group.order
        filters.append(jnp.asarray(bank.filters.reshape(-1, k, k, order_in, channels)))
        biases.append(jnp.asarray(bank.bias))
        classes.append(jnp.asarray(bank.classes))
        channels = bank.filters.shape[0] * (2 if config.rho == "relu_pair" else 1)
    filters, biases = tuple(filters), tuple(biases)

    top = jax.jit(lambda xb: _top(config, _lifted(config, filters, biases, xb, len(filters))))
    e = map_batches(top, x, config.batch_size, desc="fit: responses", mesh=mesh)  # (N, |G|, D)
    acc = reduction.HostMoments(e.shape[-1])
    acc.add(e.reshape(-1, e.shape[-1]))
    proj_dim = min(max(config.pool_dim, config.orbit_dim), e.shape[-1], n * group.order - 1)
    with reduction.float64():
        projection = rep.fit_orbit_projection(acc.moments(), proj_dim)
    representation = np.asarray(jax.jit(functools.partial(_represent, config))(rep.project_orbit(projection, jnp.asarray(e))))
    eq_channels = min(config.orbit_dim, proj_dim) if config.representation != "invariant" else 0
    layout = reduction.Layout(group.name, representation.shape[1] - group.order * eq_channels, eq_channels)
    with reduction.float64():
        stats = reduction.symmetric_moments_update(reduction.symmetric_moments_init(layout), layout, representation)
    pca, blocks = reduction.fit_symmetric_pca(stats, layout, min(config.components, layout.dim, n - 1), whiten=config.whiten)
    features = reduction.project(pca, representation)
    option = {} if config.regularization is None else {REGULARIZATION_OPTION[config.classifier]: config.regularization}
    clf = classifiers.fit_classifier(config.classifier, features, y, num_classes=num_classes, key=k_classifier, **option)
    return DeepGlassBoxParams(config, image_shape, class_names, filters, biases, tuple(classes), projection, pca,
                              blocks, clf)
