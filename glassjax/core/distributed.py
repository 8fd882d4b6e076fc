"""Several processes, one model: JAX's multi-controller runtime, and what glassjax sums across it.

    distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=0)   # in process 0
    distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=1)   # in process 1
    distributed.initialize(auto=True)        # TPU pods, SLURM, Open MPI: jax's own detection

Call it before anything else touches JAX. Then ``jax.devices()`` spans every process, the
default mesh (``parallel.make_mesh()``) too, and each process passes only its own rows to
``parallel.shard_batch``. On CPU the cross-process collectives are gloo.

Host-side merges (counts, float64 sums kept on the host, rows gathered for an in-memory
solve) go through ``gather``: every process's array, in process order, bit-exact whatever
the dtype (float64 travels as bytes, so it is not truncated when x64 is off).

Failure: a process that dies makes the others' next collective fail (gloo: "connection closed
by peer") within seconds; a process that stops sending heartbeats for ``heartbeat_timeout``
seconds is declared dead by the coordinator. At exit, processes wait for one another (process
0 may still be writing its report) up to SHUTDOWN_TIMEOUT.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import jax
import numpy as np

__all__ = ["initialize", "is_initialized", "process_index", "process_count", "is_main", "gather", "gather_rows",
           "total", "largest", "exit_now", "HEARTBEAT_TIMEOUT", "INIT_TIMEOUT", "SHUTDOWN_TIMEOUT"]

# Seconds without a heartbeat before the coordinator declares a process dead (JAX: 100).
HEARTBEAT_TIMEOUT = 60
# Seconds a process waits for the others to connect.
INIT_TIMEOUT = 300
# Seconds a finished process waits at exit for the others: process 0 writes the report alone
# after the fit, and the shutdown barrier must outlast that (JAX's 300 s aborts a long report).
SHUTDOWN_TIMEOUT = 7 * 24 * 3600


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None, *,
               auto: bool = False, heartbeat_timeout: int = HEARTBEAT_TIMEOUT, init_timeout: int = INIT_TIMEOUT) -> None:
    """Join the processes of one run (``jax.distributed.initialize``), collectives gloo on CPU.

    Either ``coordinator`` ("HOST:PORT" of process 0), ``num_processes`` and ``process_id``, or
    ``auto=True`` alone (JAX's detection of TPU pods, SLURM and Open MPI). ValueError when the
    arguments are incomplete or JAX has already started its backends in this process.
    """
    given = (coordinator, num_processes, process_id)
    if auto:
        if any(v is not None for v in given):
            raise ValueError("distributed.initialize: expected auto=True alone or coordinator, num_processes and "
                             f"process_id, got both (coordinator={coordinator!r})")
    else:
        if any(v is None for v in given):
            raise ValueError("distributed.initialize: expected coordinator HOST:PORT, num_processes and process_id "
                             f"together, got {coordinator!r}, {num_processes!r}, {process_id!r}")
        host, _, port = str(coordinator).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"distributed.initialize: expected coordinator HOST:PORT, got {coordinator!r}")
        if not isinstance(num_processes, int) or num_processes < 1:
            raise ValueError(f"distributed.initialize: expected num_processes an int >= 1, got {num_processes!r}")
        if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
            raise ValueError(f"distributed.initialize: expected process_id in 0..{num_processes - 1}, got {process_id!r}")
    for name, value in (("heartbeat_timeout", heartbeat_timeout), ("init_timeout", init_timeout)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"distributed.initialize: expected {name} an int >= 1 (seconds), got {value!r}")
    if jax.distributed.is_initialized():
        raise ValueError("distributed.initialize: expected one call per process, got a second one")
    from jax._src import xla_bridge  # the one place JAX says whether its backends have started

    if xla_bridge.backends_are_initialized():
        raise ValueError("distributed.initialize: expected to run before any JAX computation, got a process "
                         "whose JAX backends have already started")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=init_timeout,
                               heartbeat_timeout_seconds=heartbeat_timeout, shutdown_timeout_seconds=SHUTDOWN_TIMEOUT)


def is_initialized() -> bool:
    """Whether this process joined a run of several (``initialize`` was called)."""
    return jax.distributed.is_initialized()


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def is_main() -> bool:
    """Whether this is process 0, the one that writes files and prints reports."""
    return jax.process_index() == 0


def gather(x: Any) -> np.ndarray:
    """Every process's ``x`` (same shape and dtype everywhere), stacked in process order: (P, ...).

    Bit-exact: the bytes travel, so float64 stays float64 whatever ``jax_enable_x64`` says.
    """
    x = np.asarray(x)  # not ascontiguousarray, which makes a 0-d array 1-d
    if jax.process_count() == 1:
        return x[None]
    from jax.experimental import multihost_utils

    raw = np.asarray(multihost_utils.process_allgather(np.ascontiguousarray(x.reshape(-1)).view(np.uint8)))
    return raw.reshape(jax.process_count(), -1).view(x.dtype).reshape((jax.process_count(),) + x.shape)


def gather_rows(x: Any) -> np.ndarray:
    """Every process's rows of x (n_p, ...) concatenated in process order; n_p may differ."""
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x
    sizes = gather(np.asarray([x.shape[0]], np.int64))[:, 0]
    padded = np.zeros((int(sizes.max()),) + x.shape[1:], x.dtype)
    padded[: x.shape[0]] = x
    parts = gather(padded)
    return np.concatenate([parts[p, : sizes[p]] for p in range(parts.shape[0])])


def total(x: Any) -> np.ndarray:
    """The sum over processes of ``x`` (same shape everywhere), added in process order."""
    return np.sum(gather(x), axis=0, dtype=np.asarray(x).dtype)


def largest(x: Any) -> np.ndarray:
    """The maximum over processes of ``x`` (same shape everywhere)."""
    return np.max(gather(x), axis=0)


def exit_now(code: int) -> None:
    """End this process at once with ``code``, after flushing stdout and stderr.

    After a failure in a run of several processes, a normal exit would wait at JAX's shutdown
    barrier for processes that are gone, then abort with pages of C++ logs; the one-line error
    already printed says what there is to say.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
