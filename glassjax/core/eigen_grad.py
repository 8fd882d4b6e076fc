"""The top eigenpairs of a symmetric matrix, differentiable where they are well defined.

``top_eigh(a, k)`` returns the k largest eigenvalues (k,) of a symmetric a (D, D), descending,
and their eigenvectors as columns (D, k), each with the sign that makes its largest-magnitude
entry positive (the first within 1e-9 of the largest: ``reduction``'s ``_canonical`` rule).

What is differentiated (first order, a' = the symmetric part of the tangent, V all eigenvectors):

  eigenvalues   dw_j = v_j^T a' v_j                       (any spectrum)
  eigenvectors  dv_j = sum_{i != j} v_i (v_i^T a' v_j) / (w_j - w_i)

``isolated=True`` (each kept eigenvector is used on its own: filters, whitened coordinates):
every kept eigenvalue must be separated from every other eigenvalue; ``isolated=False`` (the
caller only uses the kept subspace, e.g. its projector, or whitens isotropically inside a
cluster): only the kept/dropped gap must be open, and the terms between two kept eigenvalues
of one (near-)degenerate cluster are dropped (a rotation inside the cluster, which such a
caller does not see). "Separated" means a gap above ``GAP_RESOLUTION`` x max |w|, the eigen-solver's
resolution: a closed gap makes the derivative undefined, and the tangent computation stops
with an error that names the pair (``equinox.error_if``, under jit too) instead of returning
NaN or inf. The forward value is never refused; the check runs only when differentiating.
"""
from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from glassjax.core.reduction import _PIVOT_TIE, _dot

__all__ = ["top_eigh", "separated", "GAP_RESOLUTION", "canonical_columns"]

# Eigenvalues closer than this times the largest magnitude are not resolved by eigh (float64:
# its error is a few eps x |a|); their eigenvectors, and so a derivative through them, are undefined.
GAP_RESOLUTION = 1e3 * float(jnp.finfo(jnp.float64).eps)


def canonical_columns(v: jax.Array) -> jax.Array:
    """v (D, k) with each column's sign flipped so that its pivot entry (the first within 1e-9 of
    the largest magnitude) is positive."""
    mag = jnp.abs(v)
    pivot = jnp.argmax(mag >= jnp.max(mag, axis=0, keepdims=True) * (1 - _PIVOT_TIE), axis=0)
    sign = jnp.sign(jnp.take_along_axis(v, pivot[None, :], axis=0))
    return v * jnp.where(sign == 0, 1, sign).astype(v.dtype)


def _descending(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    w, v = jnp.linalg.eigh(0.5 * (a + a.T))
    return w[::-1], canonical_columns(v[:, ::-1])


def _resolution(w: jax.Array) -> jax.Array:
    eps = jnp.finfo(w.dtype).eps
    return jnp.maximum(GAP_RESOLUTION, 1e3 * eps) * jnp.max(jnp.abs(w))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _top(a: jax.Array, k: int, isolated: bool):
    w, v = _descending(a)
    return w[:k], v[:, :k]


@_top.defjvp
def _top_jvp(k, isolated, primals, tangents):
    (a,), (da,) = primals, tangents
    w, v = _descending(a)
    d = w.shape[0]
    da = 0.5 * (da + da.T)
    m = _dot(v.T, _dot(da, v[:, :k]))  # (D, k): v_i^T a' v_j
    gap = w[None, :k] - w[:, None]  # (D, k): w_j - w_i
    close = jnp.abs(gap) <= _resolution(w)
    other = jnp.arange(d)[:, None] != jnp.arange(k)[None, :]
    dropped = jnp.arange(d)[:, None] >= k
    refused = close & other & (dropped | isolated)
    coef = jnp.where(close, 0, 1 / jnp.where(close, 1, gap))
    message = ("top_eigh: derivative refused: a kept eigenvalue is not separated from another one "
               + ("(each kept eigenvector is used on its own)" if isolated else "(kept vs dropped)")
               + "; the eigenvectors are not differentiable there")
    # On the coefficients, which the tangent map keeps as a residual: a check on an output that
    # reverse mode does not read would be dropped from the compiled program.
    coef = eqx.error_if(coef, jnp.any(refused), message)
    dv = _dot(v, coef * m)
    dw = jnp.diagonal(m[:k])
    return (w[:k], v[:, :k]), (dw, dv)


def top_eigh(a: jax.Array, k: int, *, isolated: bool = True) -> tuple[jax.Array, jax.Array]:
    """The k largest eigenpairs of a symmetric a (D, D): values (k,) descending, vectors (D, k)
    columns, signs canonical. Differentiable as the module docstring says; jittable."""
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"top_eigh: expected a square matrix (D, D), got shape {tuple(a.shape)}")
    if not 1 <= k <= a.shape[0]:
        raise ValueError(f"top_eigh: expected 1 <= k <= {a.shape[0]}, got {k}")
    return _top(a, int(k), bool(isolated))


@jax.custom_jvp
def _separated(kept: jax.Array, dropped: jax.Array) -> jax.Array:
    return kept


@_separated.defjvp
def _separated_jvp(primals, tangents):
    kept, dropped = primals
    dkept, _ = tangents
    closed = jnp.min(kept) - dropped <= _resolution(jnp.concatenate([kept, dropped[None]]))
    # A residual factor, not a check on the tangent: reverse mode reads the residual (see _top_jvp).
    one = eqx.error_if(jnp.ones((), kept.dtype), closed, "separated: derivative refused: the smallest kept "
                       "eigenvalue is not separated from the largest dropped one; the kept set is not differentiable there")
    return kept, dkept * one


def separated(kept: jax.Array, dropped: jax.Array) -> jax.Array:
    """kept (K,) unchanged; its derivative is refused (an error, as ``top_eigh``'s) when min(kept)
    is within the eigen-solver's resolution of ``dropped`` (), the largest value cut: a choice of
    kept eigenvectors made across several eigenproblems (irrep blocks) is differentiable only
    while the kept/dropped gap is open."""
    return _separated(kept, jax.lax.stop_gradient(jnp.asarray(dropped, kept.dtype)))
