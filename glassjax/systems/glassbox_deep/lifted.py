"""The lifted domain: maps with a group axis, and the layers that keep the group's law on them.

A lifted map of one image is F (h, w, |G|, C) (batched and flattened for the convolutions:
(N, h, w, |G| C), group-major). Element u acts on it by

    (L_u F)[g] = T_u F[u^-1 g]          T_u: the group's pixel permutation of each (h, w) map

Every layer here maps L_u F to L_u of its output, exactly (up to float rounding):
  lifting       F[g] = x * T_g psi                        x (h, w, C): image, no group axis
  group conv    out[g] = sum_h F[h] * T_g psi[g^-1 h]     * : correlation, zero padding (k - 1) / 2
  rho, a bias constant over g and space, and area pooling P (the same symmetric bins on rows
  and columns) commute with T_u and leave the group axis alone.
The top turns the lifted map into responses on which u permutes the group axis only, as the
one-layer glass-box's (``glassbox.representation``): E(x)[g] = T_g P_grid(F[g^-1]), and
E(act(u, x))[g] = E(x)[g u].
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import groups
# The one-layer glass-box's area bins: symmetric under reversal, so pooling commutes with D4 for every side.
from glassjax.systems.glassbox.representation import area_pool_matrix

__all__ = ["act_lifted", "expand", "lifted_layer", "area_pool", "canonical_responses", "patch_permutations"]

_HIGHEST = jax.lax.Precision.HIGHEST


def _tables(group: groups.Group) -> tuple[np.ndarray, np.ndarray]:
    return group.cayley_table, group.inverse


def act_lifted(group: groups.Group | str, u, f: jax.Array) -> jax.Array:
    """(L_u f) for one lifted map f (h, w, |G|, C): T_u on every map, group axis g <- u^-1 g.

    A map without a group axis (|G| axis of size 1: an image, a lifting layer's patch) only moves.
    """
    group = groups.get(group)
    h, w, order, c = f.shape
    moved = group.act(u, f.reshape(h, w, order * c)).reshape(h, w, order, c)
    if order == 1:
        return moved
    cayley, inverse = _tables(group)
    source = jnp.asarray(cayley)[jnp.asarray(inverse)[u]]  # (|G|,): new g reads old u^-1 g
    return jnp.take(moved, source, axis=2)


def expand(group: groups.Group | str, psi: jax.Array) -> jax.Array:
    """Filters psi (F, k, k, Gin, Cin) -> the HWIO kernel (k, k, Gin Cin, |G| F) of the layer.

    Output channel (g, j) correlates with T_g psi_j[g^-1 .]: ``act_lifted(g, psi_j)`` (Gin = |G|),
    or T_g psi_j for a lifting layer (Gin = 1).
    """
    group = groups.get(group)
    f, k, _, g_in, c_in = psi.shape
    per_filter = jnp.transpose(psi, (1, 2, 3, 4, 0))  # (k, k, Gin, Cin, F): act_lifted's (h, w, G, C) with C = Cin F

    def one(g):
        return act_lifted(group, g, per_filter.reshape(k, k, g_in, c_in * f)).reshape(k, k, g_in * c_in, f)

    kernels = jax.vmap(one)(jnp.arange(group.order))  # (|G|, k, k, Gin Cin, F)
    return jnp.transpose(kernels, (1, 2, 3, 0, 4)).reshape(k, k, g_in * c_in, group.order * f)


def area_pool(maps: jax.Array, side: int) -> jax.Array:
    """Area-weighted pooling of maps (N, h, h, C) to (N, side, side, C); a 2 x 2 mean on even halvings."""
    n, h, w, c = maps.shape
    if h == w == 2 * side:
        return jnp.mean(maps.reshape(n, side, 2, side, 2, c), axis=(2, 4))
    if h == side:
        return maps
    bins = jnp.asarray(area_pool_matrix(h, side), maps.dtype)
    return jnp.einsum("ih,nhwc,jw->nijc", bins, maps, bins, precision=_HIGHEST)


def lifted_layer(group: groups.Group | str, psi: jax.Array, bias: jax.Array, maps: jax.Array, *, rho: str,
                 downsample: int) -> jax.Array:
    """One layer: maps (N, h, h, Gin Cin) -> (N, h', h', |G| C'), h' = ceil(h / downsample).

    Correlation with ``expand(psi)`` (zero padding, odd k), minus ``bias`` (F,) (the same for every
    g), rho (relu_pair: C' = 2F, [max(t, 0), max(-t, 0)] per group element; abs: C' = F), area pooling.
    """
    group = groups.get(group)
    kernel = expand(group, psi.astype(maps.dtype))
    out = jax.lax.conv_general_dilated(maps, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       precision=_HIGHEST)
    n, h, w, _ = out.shape
    out = out.reshape(n, h, w, group.order, -1) - bias.astype(maps.dtype).reshape(1, 1, 1, 1, -1)
    out = jnp.concatenate([jax.nn.relu(out), jax.nn.relu(-out)], axis=-1) if rho == "relu_pair" else jnp.abs(out)
    return area_pool(out.reshape(n, h, w, -1), -(-h // downsample))


def canonical_responses(group: groups.Group | str, maps: jax.Array, grid: int) -> jax.Array:
    """The top: lifted maps (N, h, h, |G| C) -> E (N, |G|, grid grid C), E[g] = T_g P_grid(F[g^-1]).

    Moving the image by u permutes E's group axis: E(act(u, x))[g] = E(x)[g u].
    """
    group = groups.get(group)
    pooled = area_pool(maps, grid)
    n = pooled.shape[0]
    pooled = pooled.reshape(n, grid, grid, group.order, -1)
    inverse = jnp.asarray(group.inverse)

    def frame(g, one):
        return group.act(g, one[:, :, inverse[g]]).reshape(-1)

    per_image = jax.vmap(frame, in_axes=(0, None))
    return jax.vmap(per_image, in_axes=(None, 0))(jnp.arange(group.order), pooled)


@functools.lru_cache(maxsize=64)
def patch_permutations(group: groups.Group, k: int, order_in: int, channels: int) -> np.ndarray:
    """(|G|, D) int: coordinate d of patch P moved by u is P[perm[u, d]]; patches (k, k, Gin, Cin) flattened.

    The patch of L_u F at R_u p is the patch of F at p moved so: averaging a patch covariance C
    over C[perm_u][:, perm_u] is the covariance of the patches of every image moved by every u.
    """
    index = jnp.arange(k * k * order_in * channels, dtype=jnp.int32).reshape(k, k, order_in, channels)
    moved = jax.vmap(lambda u: act_lifted(group, u, index))(jnp.arange(group.order))
    return np.asarray(moved).reshape(group.order, -1)
