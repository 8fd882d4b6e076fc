"""Image geometry shared by the LeNet-shaped systems: the input canvas, k x k patches, max pooling.

Patches are flattened in (row, column, channel) order, so a kernel row of length k*k*C reshapes
to a (k, k, C) image, the HWC layout of a convolution kernel (``kernel.reshape(k, k, C)``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["INPUTS", "canvas", "check_canvas", "patches", "channel_patches", "max_pool", "out_size"]

INPUTS = ("pad", "resize")


def check_canvas(where: str, shape: tuple[int, ...], size: int, mode: str) -> None:
    """Raise a one-line ValueError if images of ``shape`` (N, H, W, C) cannot be put on a size x size canvas."""
    if len(shape) != 4:
        raise ValueError(f"{where}: expected images of shape (N, H, W, C), got shape {tuple(shape)}")
    if mode not in INPUTS:
        raise ValueError(f"{where}: expected input one of {', '.join(INPUTS)}, got {mode!r}")
    if mode == "pad" and (shape[1] > size or shape[2] > size):
        raise ValueError(f"{where}: images of {shape[1]}x{shape[2]} do not fit a {size}x{size} canvas by padding; "
                         f"use input='resize' or a larger size")


def canvas(x: jax.Array, size: int, mode: str = "pad") -> jax.Array:
    """Images (N, H, W, C) on a (N, size, size, C) canvas: zero-padded around the centre (LeNet's 28 -> 32
    for MNIST), or bilinearly resized."""
    n, h, w, c = x.shape
    if mode == "resize":
        return x if (h, w) == (size, size) else jax.image.resize(x, (n, size, size, c), "bilinear")
    top, left = (size - h) // 2, (size - w) // 2
    return jnp.pad(x, ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0)))


def out_size(n: int, size: int, stride: int = 1) -> int:
    """Positions of a valid (unpadded) k x k window along a side of n pixels."""
    return (n - size) // stride + 1


def patches(x: jax.Array, size: int, stride: int = 1) -> jax.Array:
    """Every valid size x size window of x (N, H, W, C), flattened: (N, h, w, size*size*C) in (row, col, channel)
    order, h = (H - size) // stride + 1."""
    n, height, width, c = x.shape
    oh, ow = out_size(height, size, stride), out_size(width, size, stride)
    if oh < 1 or ow < 1:
        raise ValueError(f"patches: expected images of at least {size}x{size}, got shape {tuple(x.shape)}")
    windows = [x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride, :]
               for i in range(size) for j in range(size)]
    return jnp.stack(windows, axis=3).reshape(n, oh, ow, size * size * c)


def channel_patches(x: jax.Array, size: int, stride: int = 1) -> jax.Array:
    """Each channel's own size x size windows of x (N, H, W, P): (N, h, w, P, size*size), (row, col) order."""
    p = patches(x, size, stride)
    return jnp.swapaxes(p.reshape(p.shape[:3] + (size * size, x.shape[-1])), -1, -2)


def max_pool(x: jax.Array, pool: int) -> jax.Array:
    """Non-overlapping pool x pool max pooling of x (N, H, W, C), rows and columns past a multiple of pool dropped."""
    if pool == 1:
        return x
    n, h, w, c = x.shape
    h, w = h // pool, w // pool
    return jnp.max(x[:, : h * pool, : w * pool].reshape(n, h, pool, w, pool, c), axis=(2, 4))
