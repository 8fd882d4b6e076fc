"""Prepared TensorFlow Datasets sets, read with random access (``tfds`` array_record data
sources: no TensorFlow needed). Nothing is ever downloaded.

A set must have features 'image' and 'label'. Its directory is ``data_dir`` if given, else
``$TFDS_DATA_DIR``.

    root = data_dir(given)                     # the one lookup of the TFDS directory
    tfds_set = open_set(name, root, where)     # checked: known, prepared
    x, y = read(tfds_set.splits["train"], where)   # pixels as stored (often uint8), int32 labels

``glassjax.data.sources.TFDSSource`` reads a split in batches for streaming fits.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

__all__ = ["ENV", "data_dir", "prepared_names", "TFDSSet", "open_set", "read"]

ENV = "TFDS_DATA_DIR"


def data_dir(given: str | os.PathLike | None = None) -> str | None:
    """The TFDS directory: ``given``, else ``$TFDS_DATA_DIR``, else None."""
    root = given or os.environ.get(ENV)
    return os.fspath(root) if root else None


def prepared_names(root: str | None) -> list[str]:
    """Names of the sets in ``root`` (its folders, less tfds' own), sorted; [] without a directory."""
    if not root or not os.path.isdir(root):
        return []
    return [entry for entry in sorted(os.listdir(root))
            if os.path.isdir(os.path.join(root, entry)) and not entry.startswith(("downloads", "."))]


class TFDSSet(NamedTuple):
    """A prepared set: its name and directory, random-access records per split, and the class
    names of its 'label' feature (None when the feature does not name them)."""

    name: str
    root: str
    splits: dict[str, Any]
    class_names: tuple[str, ...] | None


def open_set(name: str, root: str | None, where: str) -> TFDSSet:
    """The prepared set ``name`` in ``root``; ValueError "where: expected ..., got ..." otherwise."""
    import tensorflow_datasets as tfds

    if not root:
        raise ValueError(f"{where}: expected a TFDS directory holding a prepared {name!r} "
                         f"(pass data_dir or set ${ENV}), got none")
    try:
        builder = tfds.builder(name, data_dir=root)
        prepared = builder.is_prepared()
    except Exception as err:  # tfds raises many types for unknown or unreadable names
        raise ValueError(f"{where}: cannot read {name!r} in {root}: expected a known, readable TFDS set, "
                         f"got {type(err).__name__}: {err}".splitlines()[0]) from None
    if not prepared:
        raise ValueError(f"{where}: expected {name!r} prepared in {root} (nothing is downloaded), got a set that is not prepared")
    features = builder.info.features
    label = features["label"] if "label" in features else None
    names = getattr(label, "names", None)
    return TFDSSet(name, root, dict(builder.as_data_source()), tuple(names) if names else None)


def read(records: Any, where: str, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Records ``start:stop`` of a split as (images (B, ...) as stored, labels (B,) int32)."""
    stop = len(records) if stop is None else stop
    batch = records.__getitems__(list(range(start, stop)))
    if batch and ("image" not in batch[0] or "label" not in batch[0]):
        raise ValueError(f"{where}: expected features 'image' and 'label', got {sorted(batch[0])}")
    return np.stack([np.asarray(r["image"]) for r in batch]), np.asarray([r["label"] for r in batch], np.int32)

