"""A function over an array in fixed-size batches, so it compiles once for any number of rows.

  map_batches(fn, x, batch_size)   host loop of jitted calls, on one device or a mesh
  map_chunks(fn, x, chunk)         inside a jitted program: ``lax.map`` over chunks

Both pad the last batch with ``arrays.pad_rows`` (copies of the last row) and drop its padded rows.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from glassjax.core import parallel
from glassjax.core.arrays import pad_rows
from glassjax.core.progress import progress

__all__ = ["map_batches", "map_chunks"]


def map_batches(
    fn: Callable[[jax.Array], Any], x: np.ndarray, batch_size: int, *, desc: str = "", mesh: Mesh | None = None
) -> Any:
    """Apply a jitted ``fn`` (batch (B, ...) -> array or pytree of (B, ...)) to x (N, ...) in
    fixed-size batches (one compile); the outputs concatenated as numpy.

    Without a mesh each batch goes to the default device as is. With one, each batch is padded to
    a multiple of the mesh's devices and sharded by rows (``parallel.shard_batch``); ``fn`` gets
    the global batch and this host's rows come back. Batch i + 1 is dispatched before batch i
    is fetched, so the host's copying overlaps the devices' work.
    """
    n = x.shape[0]
    size = min(batch_size, n) if mesh is None else parallel.padded_size(min(batch_size, n), mesh)
    outs, pending = [], []

    def fetch(out, real):
        return jax.tree.map(lambda a: parallel.local_rows(a)[:real], out)

    for start in progress(range(0, n, size), total=-(-n // size), desc=desc, unit="batch"):
        chunk = x[start : start + size]
        batch = jnp.asarray(pad_rows(chunk, size)) if mesh is None else parallel.shard_batch(mesh, chunk, size=size)[0]
        pending.append((fn(batch), chunk.shape[0]))
        if len(pending) > 1:
            outs.append(fetch(*pending.pop(0)))
    outs.extend(fetch(*p) for p in pending)
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outs)


def map_chunks(fn: Callable[[jax.Array], Any], x: jax.Array, chunk: int) -> Any:
    """``fn`` (chunk (B, ...) -> pytree of (B, ...)) over x (N, ...) in a sequential ``lax.map``
    of ``min(chunk, N)`` rows at a time; outputs concatenated to N rows. Jittable.

    Memory is bounded by one chunk's intermediates; a single chunk is one plain call.
    """
    n = x.shape[0]
    size = min(chunk, n)
    steps = -(-n // size)
    if steps == 1:
        return fn(x)
    padded = pad_rows(jnp.asarray(x), steps * size)
    out = jax.lax.map(fn, padded.reshape((steps, size) + x.shape[1:]))
    return jax.tree.map(lambda a: a.reshape((steps * size,) + a.shape[2:])[:n], out)
