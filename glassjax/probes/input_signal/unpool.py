"""SegNet's pooling pair: max pooling that returns where each maximum was, and the unpooling
that puts every value back at that place (zeros elsewhere).

  max_pool_with_argmax(x, window)        x (N, H, W, C) -> pooled (N, h, w, C), argmax (N, h, w, C) int8
  max_unpool(pooled, argmax, size, window)  -> (N, H, W, C), size = (H, W)

h = ceil(H / window): a side that does not divide is padded with -inf before pooling (so the
padding is never the maximum) and cropped after unpooling. ``argmax`` is the row-major position
of the maximum inside its window, 0..window**2 - 1; ties go to the first. Pure and jittable; the
gradient of the pooled values flows to the chosen positions only.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["max_pool_with_argmax", "max_unpool"]


def _check(where: str, x, window: int) -> None:
    if len(x.shape) != 4:
        raise ValueError(f"{where}: expected maps of shape (N, H, W, C), got shape {tuple(x.shape)}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"{where}: expected window an int >= 1, got {window!r}")


def _windows(x: jax.Array, window: int) -> jax.Array:
    """x (N, H, W, C) padded with -inf to multiples of window -> (N, h, w, C, window**2)."""
    n, height, width, c = x.shape
    h, w = -(-height // window), -(-width // window)
    x = jnp.pad(x, ((0, 0), (0, h * window - height), (0, w * window - width), (0, 0)), constant_values=-jnp.inf)
    x = x.reshape(n, h, window, w, window, c).transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(n, h, w, c, window * window)


def max_pool_with_argmax(x: jax.Array, window: int = 2) -> tuple[jax.Array, jax.Array]:
    """Non-overlapping window x window max pooling of x (N, H, W, C): (pooled (N, h, w, C), argmax int8)."""
    _check("max_pool_with_argmax", x, window)
    if window * window > 127:
        raise ValueError(f"max_pool_with_argmax: expected window <= 11 (argmax is int8), got {window}")
    windows = _windows(x, window)
    argmax = jnp.argmax(windows, axis=-1)
    pooled = jnp.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
    return pooled, argmax.astype(jnp.int8)


def max_unpool(pooled: jax.Array, argmax: jax.Array, size: tuple[int, int], window: int = 2) -> jax.Array:
    """pooled (N, h, w, C) placed at argmax (N, h, w, C) inside each window -> (N, H, W, C), zeros elsewhere."""
    _check("max_unpool", pooled, window)
    if tuple(argmax.shape) != tuple(pooled.shape):
        raise ValueError(f"max_unpool: expected argmax of the pooled shape {tuple(pooled.shape)}, "
                         f"got shape {tuple(argmax.shape)}")
    height, width = size
    n, h, w, c = pooled.shape
    if -(-height // window) != h or -(-width // window) != w:
        raise ValueError(f"max_unpool: expected size (H, W) that pools to ({h}, {w}) with window {window}, "
                         f"got {tuple(size)}")
    slots = jax.nn.one_hot(argmax.astype(jnp.int32), window * window, dtype=pooled.dtype)
    full = (slots * pooled[..., None]).reshape(n, h, w, c, window, window).transpose(0, 1, 4, 2, 5, 3)
    return full.reshape(n, h * window, w * window, c)[:, :height, :width]
