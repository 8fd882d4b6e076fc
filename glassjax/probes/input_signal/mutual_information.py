"""Normalised mutual information between images, as scikit-image defines it, batched in JAX.

  nmi(a, b, bins)        a, b (N, H, W, C) -> (N,): NMI of each pair (a[i], b[i])
  intra_inter(x, r, bins, seed)  {"intra": mean NMI(x[i], r[i]), "inter": mean NMI(x[i], r[p(i)])}

NMI(A, B) = (H(A) + H(B)) / H(A, B) (Studholme's normalisation, 1 for independent images, 2 for
images that determine each other), entropies of the ``bins`` x ``bins`` joint histogram of the
two images' pixels, each image binned into ``bins`` equal bins over its own min..max — the
definition of ``skimage.metrics.normalized_mutual_information(a, b, bins=bins)``. p is a seeded
derangement (no image paired with itself): inter-NMI is the chance level intra-NMI is read against.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays

__all__ = ["nmi", "intra_inter", "derangement"]


def _bin(v: jax.Array, bins: int) -> jax.Array:
    """Bin index (P,) of each value of v (P,): bins equal bins over v's min..max, the top edge in the last bin.
    A constant image falls in one bin (numpy puts it in the middle one; for entropy only the count matters)."""
    lo, hi = jnp.min(v), jnp.max(v)
    width = jnp.where(hi > lo, hi - lo, jnp.ones_like(hi))
    return jnp.clip(jnp.floor((v - lo) / width * bins).astype(jnp.int32), 0, bins - 1)


def _entropy(counts: jax.Array) -> jax.Array:
    p = counts / jnp.sum(counts)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, jnp.ones_like(p))), jnp.zeros_like(p)))


def _pair(a: jax.Array, b: jax.Array, bins: int) -> jax.Array:
    """NMI of one pair of images (any equal shapes)."""
    i, j = _bin(a.reshape(-1), bins), _bin(b.reshape(-1), bins)
    joint = jnp.zeros((bins * bins,), jnp.float32).at[i * bins + j].add(1.0).reshape(bins, bins)
    return (_entropy(jnp.sum(joint, axis=1)) + _entropy(jnp.sum(joint, axis=0))) / _entropy(joint)


@jax.jit(static_argnames=("bins",))
def _nmi(a: jax.Array, b: jax.Array, bins: int) -> jax.Array:
    return jax.vmap(lambda p, q: _pair(p, q, bins))(a, b)


def _check(a: Any, b: Any, bins: Any, where: str) -> tuple[jax.Array, jax.Array, int]:
    a = arrays.as_images(a, where)
    b = arrays.as_images(b, where)
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{where}: expected two image batches of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    bins = arrays.as_int(bins, where, "bins", 2)
    return jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), bins


def nmi(a: Any, b: Any, bins: int = 32) -> np.ndarray:
    """NMI (N,) float32 of each pair a[i], b[i] of images (N, H, W, C), in [1, 2]; NaN where both are constant."""
    a, b, bins = _check(a, b, bins, "input_signal.nmi")
    return np.asarray(_nmi(a, b, bins))


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation p of 0..n-1 with p[i] != i for every i (n >= 2): a random cyclic shift of a random order."""
    n = arrays.as_int(n, "input_signal.derangement", "n", 2)
    rng = np.random.default_rng(arrays.as_seed(seed, "input_signal.derangement"))
    order = rng.permutation(n)
    shift = int(rng.integers(1, n))
    p = np.empty(n, np.int64)
    p[order] = order[(np.arange(n) + shift) % n]
    return p


def intra_inter(x: Any, r: Any, *, bins: int = 32, seed: int = 0) -> dict[str, float]:
    """Mean NMI of each original x[i] with its reconstruction r[i] (intra) and with the
    reconstruction r[p(i)] of another image (inter, p a seeded derangement); x, r (N, H, W, C)."""
    x, r, bins = _check(x, r, bins, "input_signal.intra_inter")
    p = derangement(x.shape[0], seed)
    return {"intra": float(np.nanmean(np.asarray(_nmi(x, r, bins)))),
            "inter": float(np.nanmean(np.asarray(_nmi(x, r[jnp.asarray(p)], bins))))}
