"""The Saab transform (subspace approximation with adjusted bias; Kuo et al., "Interpretable
convolutional neural networks via feedforward design", JVCIR 2019), fitted in one streaming pass.

For patches x in R^D (k x k x C windows, ``geometry.patches``) with dataset mean mu:

  DC kernel   a_0 = 1/sqrt(D) (1, ..., 1): the patch's own mean, up to a factor sqrt(D)
  AC kernels  a_1..a_{K-1}: the top principal components of the AC part P (x - mu), where
              P = I - a_0 a_0^T removes each patch's mean; orthogonal to a_0 and to each other
  response    y_k = a_k^T (x - mu) + b
  bias        b = 0 in a first layer; after it b = max_i ||x_i - mu|| over the training patches,
              so y_k >= b - ||x - mu|| >= 0 (|a_k^T v| <= ||v||) and a ReLU after it is the identity
  energy      each kernel's share of the total variance tr(Cov x): Var(a_0^T x) for the DC kernel,
              the AC part's PCA eigenvalues for the others; over all D kernels they sum to 1

The statistics are ``glassjax.core.reduction``'s streaming moments of the raw patches (sum x,
sum x x^T, count): ``init -> update -> ... -> fit``, mergeable by a sum. The moments of the AC
part are those of the raw patches mapped through P (exact algebra), and its PCA is
``reduction.fit_pca``'s: the Saab adds the DC kernel and the energies, not a second PCA. The
bias needs the mean first, so it is a second pass (``norm_max``) over the same patches, which a
layered fit makes anyway to compute the next layer's input.

Shapes: patches (..., D), responses (..., K); Saab fields mean (D,), kernels (K, D) with the DC
kernel first, bias (), energy (K,).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from glassjax.core import arrays, reduction
from glassjax.systems.saab import geometry

__all__ = ["Saab", "init", "update", "merge", "fit", "fit_array", "norm_max", "with_bias", "apply", "layer",
           "parameter_count"]

_HIGHEST = jax.lax.Precision.HIGHEST


class Saab(NamedTuple):
    """A fitted Saab transform: mean (D,), kernels (K, D) orthonormal rows (DC first), bias (),
    energy (K,) the kernels' shares of the training patches' total variance."""

    mean: jax.Array
    kernels: jax.Array
    bias: jax.Array
    energy: jax.Array


def init(dim: int, dtype: Any = jnp.float32) -> reduction.Moments:
    """Empty statistics of D = ``dim``-dimensional patches (``reduction.moments_init``)."""
    return reduction.moments_init(dim, dtype)


def _rows(where: str, p: Any, mask: Any, dim: int) -> tuple[jax.Array, jax.Array | None]:
    p = jnp.asarray(p)
    if p.ndim < 1 or p.shape[-1] != dim:
        raise ValueError(f"{where}: expected patches of shape (..., {dim}), got shape {tuple(p.shape)}")
    rows = p.reshape(-1, dim)
    if mask is None:
        return rows, None
    mask = jnp.asarray(mask)
    if mask.shape != p.shape[: mask.ndim]:
        raise ValueError(f"{where}: expected a mask of shape {tuple(p.shape[:mask.ndim])} (the leading axes of the "
                         f"patches), got shape {tuple(mask.shape)}")
    mask = jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (p.ndim - 1 - mask.ndim)), p.shape[:-1])
    return rows, mask.reshape(-1)


def update(stats: reduction.Moments, patches: Any, mask: Any = None) -> reduction.Moments:
    """``stats`` plus patches (..., D); ``mask`` (a leading-axes shape, e.g. (N,) per image) keeps real rows."""
    rows, weights = _rows("saab.update", patches, mask, stats.total.shape[0])
    return reduction.moments_update(stats, rows, weights)


merge = reduction.moments_merge


def _check_kernels(where: str, n_kernels: Any, dim: int) -> int:
    if n_kernels is None:
        return dim
    n_kernels = arrays.as_int(n_kernels, where, "n_kernels")
    if not 1 <= n_kernels <= dim:
        raise ValueError(f"{where}: expected n_kernels in 1..{dim} (the DC kernel and at most {dim - 1} AC kernels "
                         f"of {dim}-dimensional patches), got {n_kernels}")
    return n_kernels


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


@functools.partial(jax.jit, static_argnums=1)
def _fit(m: reduction.Moments, k: int) -> Saab:
    dim, dtype = m.total.shape[0], m.total.dtype
    shift = m.total / m.count
    mean = m.center / jnp.maximum(m.copies, 1) + shift
    cov = (m.outer - m.count * jnp.outer(shift, shift)) / (m.count - 1)
    dc = jnp.full((dim,), 1.0 / dim**0.5, dtype)
    dc_var = _matmul(dc, _matmul(cov, dc))
    total = jnp.trace(cov)
    total = jnp.where(total > 0, total, jnp.ones_like(total))
    if k == 1:
        return Saab(mean, dc[None, :], jnp.zeros((), dtype), (dc_var / total)[None])
    ac_map = jnp.eye(dim, dtype=dtype) - jnp.outer(dc, dc)
    # The moments of P x, P the projection that removes each patch's mean: a linear map of the sums.
    ac = reduction.Moments(m.count, _matmul(ac_map, m.total), _matmul(ac_map, _matmul(m.outer, ac_map)),
                           _matmul(ac_map, m.center), m.copies)
    pca = reduction.fit_pca(ac, k - 1)
    # Components of P Cov P with non-zero eigenvalues are orthogonal to the DC kernel up to rounding;
    # projecting again and re-orthonormalising (QR keeps their order and signs) makes the basis exact.
    q, r = jnp.linalg.qr(_matmul(pca.components, ac_map).T)
    signs = jnp.where(jnp.diagonal(r) < 0, -jnp.ones((), dtype), jnp.ones((), dtype))
    kernels = jnp.concatenate([dc[None, :], (q * signs[None, :]).T], axis=0)
    energy = jnp.concatenate([dc_var[None], pca.explained_variance]) / total
    return Saab(mean, kernels, jnp.zeros((), dtype), energy)


def fit(stats: reduction.Moments, n_kernels: int | None = None) -> Saab:
    """The Saab transform of the patches in ``stats``: the DC kernel and n_kernels - 1 AC kernels (default: all D).

    The bias is 0; ``with_bias(saab, norm_max(...))`` gives a layer after the first its bias.
    """
    dim = stats.total.shape[0]
    k = _check_kernels("saab.fit", n_kernels, dim)
    if isinstance(stats.count, jax.Array) and not isinstance(stats.count, jax.core.Tracer) and float(stats.count) < 2:
        raise ValueError(f"saab.fit: expected statistics of at least 2 patches, got a total weight of {float(stats.count)}")
    return _fit(stats, k)


def fit_array(patches: Any, n_kernels: int | None = None, *, bias: bool = False) -> Saab:
    """One-shot fit on patches (..., D) in memory; with ``bias`` the layer-after-the-first bias max ||x - mu||."""
    p = jnp.asarray(patches)
    if p.ndim < 2:
        raise ValueError(f"saab.fit_array: expected patches of shape (..., D), got shape {tuple(p.shape)}")
    dtype = p.dtype if jnp.issubdtype(p.dtype, jnp.floating) else jnp.float32
    saab = fit(update(init(p.shape[-1], dtype), p.astype(dtype)), n_kernels)
    return with_bias(saab, norm_max(saab, p.astype(dtype))) if bias else saab


@jax.jit
def _norm_max(mean: jax.Array, rows: jax.Array, weights: jax.Array | None) -> jax.Array:
    norms = jnp.linalg.norm(rows - mean[None, :], axis=1)
    if weights is not None:
        norms = jnp.where(weights > 0, norms, jnp.zeros_like(norms))
    return jnp.max(norms, initial=0.0)


def norm_max(saab: Saab, patches: Any, mask: Any = None) -> jax.Array:
    """max ||x - mu|| over patches (..., D) (masked rows left out); a streaming pass combines batches by jnp.maximum."""
    rows, weights = _rows("saab.norm_max", patches, mask, saab.mean.shape[0])
    return _norm_max(saab.mean, rows.astype(saab.mean.dtype), weights)


def with_bias(saab: Saab, bias: Any) -> Saab:
    """``saab`` with its bias set (a scalar; the layer-after-the-first choice is ``norm_max`` of its training patches)."""
    return saab._replace(bias=jnp.asarray(bias, saab.mean.dtype).reshape(()))


def apply(saab: Saab, patches: jax.Array) -> jax.Array:
    """Responses (..., K) = (patches - mu) a_k + b of patches (..., D)."""
    mean = saab.mean.reshape((1,) * (patches.ndim - 1) + saab.mean.shape)
    return _matmul(patches - mean, saab.kernels.T) + saab.bias


def layer(saab: Saab, x: jax.Array, size: int, stride: int = 1) -> jax.Array:
    """The Saab transform as a convolution: responses (N, h, w, K) of the size x size windows of x (N, H, W, C)."""
    return apply(saab, geometry.patches(x, size, stride))


def parameter_count(saab: Saab) -> int:
    """Numbers a Saab layer stores and uses: kernels K x D, the mean D and the bias (energies are not used)."""
    k, d = saab.kernels.shape[-2:]
    lead = 1
    for s in saab.kernels.shape[:-2]:
        lead *= s
    return lead * (k * d + d + 1)
