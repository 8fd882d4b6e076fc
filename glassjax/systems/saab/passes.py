"""Fit passes shared by the Saab systems: batches of a cached layer input, streamed through jitted steps.

Every step is a module-level jit with the window size static, so a second fit of the same shapes
compiles nothing. Batches have a fixed size (the last one padded by repeating its last row and
masked out), so one fit compiles each step once.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, batching, reduction
from glassjax.core.progress import progress
from glassjax.systems.saab import geometry
from glassjax.systems.saab import transform as st

__all__ = ["check_positive_int", "check_int_tuple", "padded_batches", "layer_stats", "layer_bias",
           "channel_stats", "channel_bias"]


def check_positive_int(where: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= minimum (``core.arrays.as_int``)."""
    return arrays.as_int(value, where, name, minimum)


def check_int_tuple(where: str, name: str, value: Any, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as a non-empty tuple of ints >= minimum (digit strings, as a command line gives them, become
    ints), else a one-line ValueError."""
    if isinstance(value, str):
        value = tuple(p.strip() for p in value.split(",") if p.strip())
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"{where}: expected {name} a non-empty tuple of ints >= {minimum}, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        out.append(check_positive_int(where, name, v, minimum))
    return tuple(out)


def padded_batches(x: np.ndarray, batch_size: int, *, desc: str = "") -> Iterator[tuple[jax.Array, jax.Array]]:
    """(batch (B, ...), mask (B,) float) over x (N, ...), B = min(batch_size, N); the last batch padded and masked."""
    n = x.shape[0]
    size = min(batch_size, n)
    for start in progress(range(0, n, size), total=-(-n // size), desc=desc, unit="batch"):
        chunk = x[start : start + size]
        mask = (np.arange(size) < chunk.shape[0]).astype(np.float32)
        yield jnp.asarray(batching.pad_rows(chunk, size)), jnp.asarray(mask, x.dtype)


@functools.partial(jax.jit, static_argnames=("size",))
def _stats_step(m: reduction.Moments, xb: jax.Array, mask: jax.Array, *, size: int) -> reduction.Moments:
    return st.update(m, geometry.patches(xb, size), mask)


@functools.partial(jax.jit, static_argnames=("size",))
def _bias_step(running: jax.Array, saab: st.Saab, xb: jax.Array, mask: jax.Array, *, size: int) -> jax.Array:
    return jnp.maximum(running, st.norm_max(saab, geometry.patches(xb, size), mask))


def layer_stats(x: np.ndarray, size: int, batch_size: int, *, desc: str = "") -> reduction.Moments:
    """Streaming moments of every size x size patch of x (N, H, W, C)."""
    m = st.init(size * size * x.shape[-1], x.dtype)
    for xb, mask in padded_batches(x, batch_size, desc=desc):
        m = _stats_step(m, xb, mask, size=size)
    return m


def layer_bias(saab: st.Saab, x: np.ndarray, size: int, batch_size: int, *, desc: str = "") -> jax.Array:
    """max ||patch - mu|| over every size x size patch of x (N, H, W, C): the bias of a layer after the first."""
    running = jnp.zeros((), x.dtype)
    for xb, mask in padded_batches(x, batch_size, desc=desc):
        running = _bias_step(running, saab, xb, mask, size=size)
    return running


def _channel_rows(xb: jax.Array, size: int) -> jax.Array:
    """(B, H, W, P) -> (P, B, h, w, D): each channel's own windows, channels first."""
    return jnp.moveaxis(geometry.channel_patches(xb, size), 3, 0)


@functools.partial(jax.jit, static_argnames=("size",))
def _channel_stats_step(m: reduction.Moments, xb: jax.Array, mask: jax.Array, *, size: int) -> reduction.Moments:
    return jax.vmap(lambda mi, pi: st.update(mi, pi, mask))(m, _channel_rows(xb, size))


@functools.partial(jax.jit, static_argnames=("size",))
def _channel_bias_step(running: jax.Array, saab: st.Saab, xb: jax.Array, mask: jax.Array, *, size: int) -> jax.Array:
    norms = jax.vmap(lambda s, pi: st.norm_max(s, pi, mask))(saab, _channel_rows(xb, size))
    return jnp.maximum(running, norms)


def channel_stats(x: np.ndarray, size: int, batch_size: int, *, desc: str = "") -> reduction.Moments:
    """Moments of each channel's size x size patches of x (N, H, W, P), stacked: every field has a leading P axis."""
    channels = x.shape[-1]
    one = st.init(size * size, x.dtype)
    m = jax.tree.map(lambda a: jnp.broadcast_to(a, (channels,) + a.shape), one)
    for xb, mask in padded_batches(x, batch_size, desc=desc):
        m = _channel_stats_step(m, xb, mask, size=size)
    return m


def channel_bias(saab: st.Saab, x: np.ndarray, size: int, batch_size: int, *, desc: str = "") -> jax.Array:
    """(P,) max ||patch - mu_p|| of each channel's patches under its own stacked Saab (leading P axis)."""
    running = jnp.zeros((x.shape[-1],), x.dtype)
    for xb, mask in padded_batches(x, batch_size, desc=desc):
        running = _channel_bias_step(running, saab, xb, mask, size=size)
    return running


def map_images(fn: Callable[[jax.Array], jax.Array], x: np.ndarray, batch_size: int, *, desc: str = "") -> np.ndarray:
    """``batching.map_batches`` of a jitted ``fn``: x (N, ...) through it in fixed-size batches, as numpy."""
    return batching.map_batches(fn, x, batch_size, desc=desc)
