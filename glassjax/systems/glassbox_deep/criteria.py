"""A layer's filters from the statistics of its input's lifted patches, in closed form.

Per class c, float64 moments of the patches (k, k, Gin, Cin) flattened to D values
(``reduction.HostMoments``), then symmetrised: averaged over the |G| coordinate permutations
that move a patch (``lifted.patch_permutations``), which gives exactly the statistics of the
patches of every training image moved by every group element. Then, by criterion:

  pca        eigenvectors of the symmetrised total covariance S_t, largest first
  class_pca  per class, eigenvectors of the class covariance C_c (the one-layer glass-box's
             class-wise patch PCA, symmetrised)
  fisher     per class, generalized eigenvectors of M_c = C_c + (mu_c - mu)(mu_c - mu)^T against
             the pooled within-class covariance S_w (shrunk): directions in which class c varies
             or sits away from the mean more than the classes vary within themselves

The symmetrised matrices commute with the group's action on patches, so a 2-D irrep of D4 gives
a pair of equal eigenvalues: a bank is cut only between distinct eigenvalues, never inside a pair.
Filters are unit-norm, signed so their largest entry is positive; each one's bias is its response
to the symmetrised mean patch.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import reduction

__all__ = ["Bank", "PatchStats", "symmetrise", "fit_bank", "DEGENERATE"]

# Eigenvalues within this fraction of the largest are one degenerate block (a 2-D irrep's pair is
# equal to float64 rounding, ~1e-15 of the largest).
DEGENERATE = 1e-9


class Bank(NamedTuple):
    """filters (F, D) unit rows; bias (F,); classes (F,) int32: the class a filter was fitted for (-1: all)."""

    filters: np.ndarray
    bias: np.ndarray
    classes: np.ndarray


class PatchStats(NamedTuple):
    """Symmetrised per-class statistics of D-value patches: count (C,), mean (C, D), covariance (C, D, D) (ddof 0)."""

    count: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray


def symmetrise(moments: Sequence[reduction.Moments], permutations: np.ndarray, *, centre_patches: bool) -> PatchStats:
    """Per-class ``HostMoments`` results -> PatchStats averaged over the patch ``permutations`` (|G|, D).

    ``centre_patches`` removes each patch's own mean first (the lifting layer: filters then ignore
    local brightness), as the projection J = I - 11^T / D of the statistics.
    """
    counts, means, covs = [], [], []
    for m in moments:
        n = float(m.count)
        shift = np.asarray(m.total) / n
        mean = np.asarray(m.center) + shift
        # The second moment around the class mean's own orbit average: the spread of the moved means counts too.
        cov = (np.asarray(m.outer) - n * np.outer(shift, shift)) / n + np.outer(mean, mean)
        cov = sum(np.take(np.take(cov, p, axis=0), p, axis=1) for p in permutations) / len(permutations)
        mean = np.mean(mean[permutations], axis=0)
        cov = cov - np.outer(mean, mean)
        if centre_patches:
            mean = mean - mean.mean()
            cov = cov - cov.mean(axis=0, keepdims=True)
            cov = cov - cov.mean(axis=1, keepdims=True)
        counts.append(n)
        means.append(mean)
        covs.append(0.5 * (cov + cov.T))
    return PatchStats(np.asarray(counts), np.stack(means), np.stack(covs))


def _whole_blocks(values: np.ndarray, k: int) -> int:
    """The largest K <= k (values descending) that does not split a degenerate block; the first block if wider than k."""
    tol = DEGENERATE * max(float(np.abs(values).max()), np.finfo(np.float64).tiny)
    for cut in range(min(k, values.size), 0, -1):
        if cut == values.size or values[cut - 1] - values[cut] > tol:
            return cut
    return next(c for c in range(1, values.size + 1) if c == values.size or values[c - 1] - values[c] > tol)


@jax.jit
def _eigh_device(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.linalg.eigh(a)


def _eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending float64 eigenpairs by XLA's solver: LAPACK's threads beside XLA's busy pool ran ~10x slower here."""
    with reduction.float64():
        values, vectors = _eigh_device(jnp.asarray(0.5 * (a + a.T), jnp.float64))
    return np.asarray(values), np.asarray(vectors)


def _whitener(b: np.ndarray) -> np.ndarray:
    """The symmetric b^(-1/2) of a positive definite b: it commutes with whatever permutations b commutes with."""
    e, u = _eigh(b)
    return (u / np.sqrt(np.maximum(e, np.finfo(np.float64).eps * e.max()))) @ u.T


def _top(a: np.ndarray, k: int, whitener: np.ndarray | None = None) -> np.ndarray:
    """(K, D) the top eigenvectors of a (with a ``whitener`` W of b: of a v = l b v, as v = W u) in
    whole degenerate blocks, unit rows."""
    values, vectors = _eigh(a if whitener is None else whitener @ a @ whitener)
    values, vectors = values[::-1], vectors[:, ::-1]
    if whitener is not None:
        vectors = whitener @ vectors
    vectors = vectors[:, : _whole_blocks(values, k)].T
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    pivot = np.argmax(np.abs(vectors) >= np.abs(vectors).max(axis=1, keepdims=True) * (1 - 1e-9), axis=1)
    return vectors * np.sign(vectors[np.arange(vectors.shape[0]), pivot])[:, None]


def fit_bank(stats: PatchStats, criterion: str, width: int, *, shrinkage: float = 0.1) -> Bank:
    """About ``width`` filters (fewer where a degenerate block would be cut) by ``criterion``.

    pca: ``width`` from S_t. class_pca / fisher: ceil(width / C) per class, class-major.
    """
    priors = stats.count / stats.count.sum()
    mean = priors @ stats.mean
    offsets = stats.mean - mean
    within = np.einsum("c,cde->de", priors, stats.covariance)
    total = within + np.einsum("c,cd,ce->de", priors, offsets, offsets)
    num_classes, dim = stats.mean.shape
    if criterion == "pca":
        banks = [_top(total, width)]
    else:
        per_class = -(-width // num_classes)
        shrunk = (1 - shrinkage) * within + shrinkage * np.trace(within) / dim * np.eye(dim)
        whitener = _whitener(shrunk) if criterion == "fisher" else None
        banks = []
        for c in range(num_classes):
            if criterion == "class_pca":
                banks.append(_top(stats.covariance[c], per_class))
            else:
                scatter = stats.covariance[c] + np.outer(offsets[c], offsets[c])
                banks.append(_top(scatter, per_class, whitener))
    filters = np.concatenate(banks)
    classes = np.concatenate([np.full(b.shape[0], -1 if criterion == "pca" else c, np.int32) for c, b in enumerate(banks)])
    return Bank(filters.astype(np.float32), (filters @ mean).astype(np.float32), classes)
