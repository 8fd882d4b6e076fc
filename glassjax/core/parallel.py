"""Data parallelism over a 1-D device mesh: the batch axis sharded, parameters replicated.

    mesh = make_mesh()                       # every device, axis "batch"
    x, mask = shard_batch(mesh, x_host)      # rows padded to a multiple of the device count
    rows = per_device(fn, mesh)(params, x)   # fn on each device's own rows (shard_map)
    m = reduction.moments_update(m, rows, mask)   # under jit: XLA sums across devices

Statistics (PCA moments, class sums, ridge/LDA scatter) are sums over rows, so computing them
under ``jax.jit`` from batch-sharded rows gives per-device partial sums and one all-reduce;
their result is replicated. Padded rows repeat the last real row (so they hold valid images)
and carry mask 0; nothing is dropped.

Multi-host (a TPU pod, several GPU hosts): call ``jax.distributed.initialize()`` in every
process first; ``make_mesh()`` then spans the devices of all hosts. Each host passes only its
own rows to ``shard_batch`` (``jax.make_array_from_process_local_data`` assembles the global
batch, every host's rows padded alike) and ``local_rows`` gives back that host's rows of a
result. Every host must make the same number of calls with the same padded batch size: a host
whose rows ran out passes empty arrays (all padding). ``glassjax.core.distributed`` starts the
processes; ``tests/test_distributed.py`` runs 2 processes x 2 CPU devices against one device.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from glassjax.core.arrays import pad_rows

__all__ = ["AXIS", "make_mesh", "batch_sharding", "replicated", "padded_size", "shard_batch", "replicate", "per_device", "local_rows"]

AXIS = "batch"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"batch"`` over ``devices`` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"make_mesh: expected a non-empty sequence of jax devices, got {devices!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"make_mesh: expected distinct devices, got {devices}")
    return Mesh(np.asarray(devices), (AXIS,))


def _check_mesh(mesh: Any, where: str) -> Mesh:
    if not isinstance(mesh, Mesh) or mesh.axis_names != (AXIS,):
        raise TypeError(f"{where}: expected a 1-D Mesh with axis {AXIS!r} (parallel.make_mesh), got {mesh!r}")
    return mesh


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows split across the mesh."""
    return NamedSharding(_check_mesh(mesh, "batch_sharding"), P(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device."""
    return NamedSharding(_check_mesh(mesh, "replicated"), P())


def _local_devices(mesh: Mesh) -> int:
    return sum(d.process_index == jax.process_index() for d in mesh.devices.flat)


def padded_size(n: int, mesh: Mesh) -> int:
    """The smallest multiple of this host's device count in the mesh that holds ``n`` rows (at least one per device)."""
    per = _local_devices(_check_mesh(mesh, "padded_size"))
    return max(per, -(-n // per) * per)


def shard_batch(mesh: Mesh, *arrays: Any, size: int | None = None) -> tuple[jax.Array, ...]:
    """This host's rows of ``arrays`` (each (n, ...)) as global arrays sharded over the mesh, plus a mask.

    Each array is padded to ``size`` rows (default ``padded_size(n, mesh)``; it must be a multiple
    of the host's device count) by repeating its last row; arrays of no rows (``size`` given)
    become zeros. Returns (*sharded, mask) with mask (size,) float32: 1 for the n real rows, 0
    for padding.
    """
    _check_mesh(mesh, "shard_batch")
    if not arrays:
        raise ValueError("shard_batch: expected at least one array, got none")
    arrays = [np.asarray(a) for a in arrays]
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    if any(a.ndim == 0 or a.shape[0] != n for a in arrays) or (n == 0 and size is None):
        raise ValueError(f"shard_batch: expected arrays with the same number of rows (0 only with size), got shapes {[a.shape for a in arrays]}")
    size = padded_size(n, mesh) if size is None else size
    if size < n or size % _local_devices(mesh):
        raise ValueError(f"shard_batch: expected size >= {n} and a multiple of {_local_devices(mesh)} devices, got {size}")
    sharding = batch_sharding(mesh)
    mask = (np.arange(size) < n).astype(np.float32)
    # No rows (a process whose share ran out before the others'): zeros, every row masked.
    pad = (lambda a: pad_rows(a, size)) if n else (lambda a: np.zeros((size,) + a.shape[1:], a.dtype))
    return tuple(jax.make_array_from_process_local_data(sharding, pad(a)) for a in arrays + [mask])


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Every array leaf of ``tree`` copied to all devices of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def per_device(fn: Callable[[Any, jax.Array], Any], mesh: Mesh) -> Callable[[Any, jax.Array], Any]:
    """``fn(params, x)`` run by every device on its own rows of x; outputs stay sharded by rows.

    ``params`` (any pytree) is replicated; every output leaf must have the rows of x as its
    leading axis. Jittable and used inside jit: each device runs ``fn`` as written (with its
    own loops and cache-sized chunks) rather than a program partitioned by XLA.
    """
    return jax.shard_map(fn, mesh=_check_mesh(mesh, "per_device"), in_specs=(P(), P(AXIS)), out_specs=P(AXIS), check_vma=False)


def local_rows(array: jax.Array) -> np.ndarray:
    """This host's rows of a batch-sharded (or replicated) result, in order, as numpy."""
    if array.is_fully_replicated:
        return np.asarray(array.addressable_data(0))
    pieces = {}
    for shard in array.addressable_shards:
        start = shard.index[0].start or 0
        pieces.setdefault(start, shard.data)
    return np.concatenate([np.asarray(pieces[s]) for s in sorted(pieces)])
