"""Filters with class information, built analytically from training images (no back-propagation).

Two kinds, each a ``FilterBank`` of images a person can look at, labelled with their class:
  prototypes  the class-mean image at full size, averaged over the group G so the class
              information itself is G-invariant (the paper's "binary prototype");
  patches     the top principal components of k x k patches of each class's images
              (patch means removed, so the filters ignore local brightness).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, groups, reduction

__all__ = ["FilterBank", "class_prototypes", "patch_filters", "patch_positions", "filter_images"]


class FilterBank(NamedTuple):
    """filters (F, k, k, C) correlated with images; classes (F,) int32 class of each filter."""

    filters: jax.Array
    classes: jax.Array


def _check(x: jax.Array, y: jax.Array, num_classes: int, where: str) -> None:
    arrays.as_images(x, where)
    arrays.as_labels(y, x.shape[0], where, num_classes=num_classes)
    missing = sorted(set(range(num_classes)) - set(np.unique(np.asarray(y)).tolist()))
    if missing:
        raise ValueError(f"{where}: expected every class 0..{num_classes - 1} in the training set, missing {missing}")


def class_prototypes(x: jax.Array, y: jax.Array, num_classes: int, group: groups.Group | str, *,
                     sample_weight: jax.Array | None = None) -> FilterBank:
    """Class means at full image size, averaged over the group's orbit: (C, H, W, Cin).

    x (N, H, W, Cin), y (N,) int in 0..C-1; ``sample_weight`` (N,) weighs the images (weighted means).
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check(x, y, num_classes, "class_prototypes")
    w = jnp.asarray(arrays.as_weights(sample_weight, x.shape[0], "class_prototypes"))
    onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype) * w[:, None]  # (N, C)
    means = jnp.einsum("nc,nhwk->chwk", onehot, x) / jnp.sum(onehot, axis=0)[:, None, None, None]
    symmetric = jnp.mean(groups.orbit(group, means), axis=1)
    return FilterBank(symmetric, jnp.arange(num_classes, dtype=jnp.int32))


def patch_positions(count: int, images: int, rows: int, cols: int, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The seeded draw of ``count`` patches: image (count,) in 0..images-1, top row in 0..rows-1 and
    left column in 0..cols-1, int32."""
    k_img, k_row, k_col = jax.random.split(key, 3)
    # int32 pinned: randint draws other values as int64, so x64 mode would move the patches.
    return (jax.random.randint(k_img, (count,), 0, images, dtype=jnp.int32),
            jax.random.randint(k_row, (count,), 0, rows, dtype=jnp.int32),
            jax.random.randint(k_col, (count,), 0, cols, dtype=jnp.int32))


def _sample_patches(x: jax.Array, count: int, size: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``count`` random size x size patches of the images x (M, H, W, C) -> (count, size*size*C),
    and the image each came from (count,)."""
    m, h, w, c = x.shape
    img, row, col = patch_positions(count, m, h - size + 1, w - size + 1, key)

    def take(i, r, s):
        # One slice of x itself: under vmap a gather of ``count`` patches. Slicing x[i] instead
        # made vmap gather ``count`` whole images first (4000 x 1 MiB at 512 x 512).
        return jax.lax.dynamic_slice(x, (i, r, s, 0), (1, size, size, c)).reshape(-1)

    return jax.vmap(take)(img, row, col), img


def patch_filters(
    x: jax.Array,
    y: jax.Array,
    num_classes: int,
    *,
    size: int = 5,
    per_class: int = 8,
    patches_per_class: int = 4000,
    key: jax.Array,
    sample_weight: jax.Array | None = None,
) -> FilterBank:
    """Class-wise PCA filters: the top ``per_class`` components of each class's patches.

    x (N, H, W, Cin), y (N,) -> FilterBank with filters (num_classes * per_class, size, size, Cin),
    each unit-norm, ordered class-major and by explained variance within a class.
    ``sample_weight`` (N,): each patch weighs what its image weighs in the class's PCA. The patch
    positions are drawn from ``key`` as if every image had weight 1, so a weight of 0 removes an
    image's patches but not its place in the draw.
    """
    x, y = jnp.asarray(x), np.asarray(y)
    _check(x, y, num_classes, "patch_filters")
    weights = jnp.asarray(arrays.as_weights(sample_weight, x.shape[0], "patch_filters"))
    h, w, c = x.shape[1:]
    if not 1 <= size <= min(h, w):
        raise ValueError(f"patch_filters: expected 1 <= size <= {min(h, w)} for images {h}x{w}, got size={size}")
    if not 1 <= per_class <= size * size * c - 1:
        raise ValueError(f"patch_filters: expected 1 <= per_class <= {size * size * c - 1} for {size}x{size}x{c} patches, got {per_class}")
    banks = []
    for cls, cls_key in zip(range(num_classes), jax.random.split(key, num_classes)):
        members = np.flatnonzero(y == cls)
        patches, image = _sample_patches(x[members], patches_per_class, size, cls_key)
        patches = patches - jnp.mean(patches, axis=1, keepdims=True)
        pca = reduction.fit_pca_array(patches, per_class, sample_weight=None if sample_weight is None else weights[members][image])
        banks.append(pca.components)
    filters = jnp.concatenate(banks).reshape(num_classes * per_class, size, size, c)
    classes = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), per_class)
    return FilterBank(filters, classes)


def filter_images(bank: FilterBank, class_names: tuple[str, ...]) -> list[tuple[np.ndarray, str]]:
    """Every filter as a displayable (k, k, C) image scaled to [0, 1], with its class name."""
    out = []
    for f, cls in zip(np.asarray(bank.filters), np.asarray(bank.classes)):
        lo, hi = f.min(), f.max()
        out.append(((f - lo) / (hi - lo) if hi > lo else np.zeros_like(f), class_names[int(cls)]))
    return out
