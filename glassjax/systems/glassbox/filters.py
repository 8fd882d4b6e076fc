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

__all__ = ["FilterBank", "class_prototypes", "patch_filters", "filter_images"]


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


def class_prototypes(x: jax.Array, y: jax.Array, num_classes: int, group: groups.Group | str) -> FilterBank:
    """Class means at full image size, averaged over the group's orbit: (C, H, W, Cin).

    x (N, H, W, Cin), y (N,) int in 0..C-1.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check(x, y, num_classes, "class_prototypes")
    onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)  # (N, C)
    means = jnp.einsum("nc,nhwk->chwk", onehot, x) / jnp.sum(onehot, axis=0)[:, None, None, None]
    symmetric = jnp.mean(groups.orbit(group, means), axis=1)
    return FilterBank(symmetric, jnp.arange(num_classes, dtype=jnp.int32))


def _sample_patches(x: jax.Array, count: int, size: int, key: jax.Array) -> jax.Array:
    """``count`` random size x size patches of the images x (M, H, W, C) -> (count, size*size*C)."""
    m, h, w, c = x.shape
    k_img, k_row, k_col = jax.random.split(key, 3)
    img = jax.random.randint(k_img, (count,), 0, m)
    row = jax.random.randint(k_row, (count,), 0, h - size + 1)
    col = jax.random.randint(k_col, (count,), 0, w - size + 1)

    def take(i, r, s):
        # One slice of x itself: under vmap a gather of ``count`` patches. Slicing x[i] instead
        # made vmap gather ``count`` whole images first (4000 x 1 MiB at 512 x 512).
        return jax.lax.dynamic_slice(x, (i, r, s, 0), (1, size, size, c)).reshape(-1)

    return jax.vmap(take)(img, row, col)


def patch_filters(
    x: jax.Array,
    y: jax.Array,
    num_classes: int,
    *,
    size: int = 5,
    per_class: int = 8,
    patches_per_class: int = 4000,
    key: jax.Array,
) -> FilterBank:
    """Class-wise PCA filters: the top ``per_class`` components of each class's patches.

    x (N, H, W, Cin), y (N,) -> FilterBank with filters (num_classes * per_class, size, size, Cin),
    each unit-norm, ordered class-major and by explained variance within a class.
    """
    x, y = jnp.asarray(x), np.asarray(y)
    _check(x, y, num_classes, "patch_filters")
    h, w, c = x.shape[1:]
    if not 1 <= size <= min(h, w):
        raise ValueError(f"patch_filters: expected 1 <= size <= {min(h, w)} for images {h}x{w}, got size={size}")
    if not 1 <= per_class <= size * size * c - 1:
        raise ValueError(f"patch_filters: expected 1 <= per_class <= {size * size * c - 1} for {size}x{size}x{c} patches, got {per_class}")
    banks = []
    for cls, cls_key in zip(range(num_classes), jax.random.split(key, num_classes)):
        patches = _sample_patches(x[np.flatnonzero(y == cls)], patches_per_class, size, cls_key)
        patches = patches - jnp.mean(patches, axis=1, keepdims=True)
        pca = reduction.fit_pca_array(patches, per_class)
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
