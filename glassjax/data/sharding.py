"""One process's share of the training data, when several processes fit one model.

    train = sharding.shard_train(dataset, jax.process_index(), jax.process_count())

Shares depend on nothing but (process index, process count): every process computes its own
without talking to the others, the shares are disjoint and cover every training example once.

  a ``Dataset`` in memory   contiguous blocks of its train rows, process 0's first (sizes differ
                            by at most one): gathered in process order they are the train split
                            itself, so a fit that gathers rows (the glass-box's filters) sees the
                            same images in the same order as one process would
  a batch source            (alone, or as a Dataset's x_train) the source's own ``shard(index, count)`` (``data.sources``: array,
                            TFDS, image-folder/npz/Hugging Face and synthetic sources)

The test split is left whole: only process 0 evaluates and reports.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from glassjax.core import arrays
import glassjax.data.loader as loader

__all__ = ["block", "shard_dataset", "shard_train"]


def block(n: int, process_index: int, process_count: int) -> slice:
    """Rows ``n * i // P`` to ``n * (i + 1) // P``: process i's contiguous share of n rows."""
    n = arrays.as_int(n, "sharding.block", "n", 0)
    count = arrays.as_int(process_count, "sharding.block", "process_count", 1)
    index = arrays.as_int(process_index, "sharding.block", "process_index", 0)
    if index >= count:
        raise ValueError(f"sharding.block: expected process_index in 0..{count - 1}, got {index}")
    return slice(n * index // count, n * (index + 1) // count)


def shard_dataset(dataset: loader.Dataset, process_index: int, process_count: int) -> loader.Dataset:
    """``dataset`` with only this process's block of train rows (``block``); the test split whole."""
    if not isinstance(dataset, loader.Dataset):
        raise TypeError(f"shard_dataset: expected a glassjax.data.Dataset, got {type(dataset).__name__}")
    n = int(np.shape(dataset.x_train)[0])
    if n < process_count:
        raise ValueError(f"shard_dataset: expected at least one train image per process ({process_count}), got {n}")
    rows = block(n, process_index, process_count)
    return dataset._replace(x_train=dataset.x_train[rows], y_train=dataset.y_train[rows])


def shard_train(data: Any, process_index: int, process_count: int) -> Any:
    """This process's share of ``data``: a ``Dataset`` (``shard_dataset``) or a batch source (its
    ``shard`` method). One process: ``data`` itself."""
    if process_count == 1:
        return data
    if isinstance(data, loader.Dataset):
        if not hasattr(data.x_train, "shape"):  # a Dataset whose train split is a source (a streamed set)
            return data._replace(x_train=shard_train(data.x_train, process_index, process_count))
        return shard_dataset(data, process_index, process_count)
    if hasattr(data, "shard"):
        return data.shard(process_index, process_count)
    raise TypeError(f"shard_train: expected a Dataset or a batch source with a shard method, got {type(data).__name__}")
