"""The representation layer: equivariant responses over the orbit, then invariant pooling.

For an image x and a group G (notation of docs/method.md):
  E(x)[g] = P_grid(rho(act(g, x) * W))      (N, |G|, D)   equivariant response
  z_g     = U^T (E(x)[g] - m)                (N, |G|, d)   orbit projection (PCA over all g)
  I(x)    = pool_g(z)                        (N, D_I)      invariant: mean, max, bilinear

Because E(x)[g] is a fixed function of act(g, x), acting on the input with h permutes the
group axis: E(act(h, x))[g] = E(x)[g h], exactly, for any filters, nonlinearity and spatial
pooling. Every pooling over g is therefore exactly invariant.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import reduction
from glassjax.filters import FilterBank

__all__ = ["RHOS", "POOLINGS", "respond", "OrbitProjection", "fit_orbit_projection", "project_orbit", "pool_group", "pooled_dim"]

RHOS = ("abs", "relu_pair")
POOLINGS = ("mean", "max", "bilinear")


@functools.lru_cache(maxsize=64)
def _pool_matrix(n: int, grid: int) -> np.ndarray:
    """(grid, n) area weights of ``grid`` equal bins over ``n`` pixels; symmetric under reversal."""
    edges = np.linspace(0.0, n, grid + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixels = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(hi, pixels + 1) - np.maximum(lo, pixels), 0.0, None)
    return (overlap / (hi - lo)).astype(np.float32)


def _rho(r: jax.Array, rho: str) -> jax.Array:
    if rho == "abs":
        return jnp.abs(r)
    if rho == "relu_pair":
        return jnp.concatenate([jax.nn.relu(r), jax.nn.relu(-r)], axis=-1)
    raise ValueError(f"unknown nonlinearity rho={rho!r}; expected one of {', '.join(RHOS)}")


def respond(bank: FilterBank, orbit: jax.Array, *, rho: str = "relu_pair", grid: int = 4) -> jax.Array:
    """Equivariant response E: orbit (N, G, H, W, C) -> (N, G, grid * grid * F') features.

    Valid correlation with the bank's filters (F, k, k, C), the fixed nonlinearity ``rho``
    (F' = F for abs, 2F for relu_pair), then area-weighted average pooling to a grid x grid
    layout. ``grid=1`` is global average pooling.
    """
    n, g, h, w, c = orbit.shape
    f, k, k2, c2 = bank.filters.shape
    if c2 != c or k > min(h, w):
        raise ValueError(f"respond: filters {bank.filters.shape} do not fit images {orbit.shape[2:]}")
    if grid < 1:
        raise ValueError(f"respond: expected grid >= 1, got {grid}")
    kernel = jnp.transpose(bank.filters, (1, 2, 3, 0)).astype(orbit.dtype)  # HWIO
    maps = jax.lax.conv_general_dilated(
        orbit.reshape(n * g, h, w, c), kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    maps = _rho(maps, rho)
    rows = jnp.asarray(_pool_matrix(maps.shape[1], grid))
    cols = jnp.asarray(_pool_matrix(maps.shape[2], grid))
    pooled = jnp.einsum("ih,nhwf,jw->nijf", rows, maps, cols)
    return pooled.reshape(n, g, -1)


class OrbitProjection(NamedTuple):
    """z = (e - mean) @ components.T; components (d, D) scaled so each z coordinate has unit variance."""

    mean: jax.Array
    components: jax.Array


def fit_orbit_projection(moments: reduction.Moments, dim: int) -> OrbitProjection:
    """Whitened PCA of the responses of every orbit element, from streaming moments."""
    pca = reduction.fit_pca(moments, dim, whiten=True)
    return OrbitProjection(pca.mean, pca.components * pca.scale[:, None])


def project_orbit(projection: OrbitProjection, responses: jax.Array) -> jax.Array:
    """responses (N, G, D) -> z (N, G, d); the same map for every group element."""
    centred = responses - projection.mean[None, None, :]
    return jnp.einsum("ngd,kd->ngk", centred, projection.components)


def pooled_dim(dim: int, poolings: Sequence[str]) -> int:
    """Width of ``pool_group`` output for z of width ``dim``."""
    sizes = {"mean": dim, "max": dim, "bilinear": dim * (dim + 1) // 2}
    return sum(sizes[p] for p in poolings)


def pool_group(z: jax.Array, poolings: Sequence[str] = ("mean", "max", "bilinear")) -> jax.Array:
    """Invariant pooling over the group axis: z (N, G, d) -> (N, pooled_dim(d, poolings)).

    mean      mean_g z_g
    max       max_g z_g (per coordinate)
    bilinear  the upper triangle of mean_g z_g z_g^T: a degree-2 invariant that keeps which
              features occur together in the same frame, which mean pooling loses.
    """
    if not poolings:
        raise ValueError("pool_group: expected at least one pooling, got none")
    parts = []
    for mode in poolings:
        if mode == "mean":
            parts.append(jnp.mean(z, axis=1))
        elif mode == "max":
            parts.append(jnp.max(z, axis=1))
        elif mode == "bilinear":
            rows, cols = np.triu_indices(z.shape[-1])
            second = jnp.einsum("ngi,ngj->nij", z, z) / z.shape[1]
            parts.append(second[:, rows, cols])
        else:
            raise ValueError(f"pool_group: unknown pooling {mode!r}; expected one of {', '.join(POOLINGS)}")
    return jnp.concatenate(parts, axis=-1)
