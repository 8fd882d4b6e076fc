"""Prepared TensorFlow Datasets sets, read with random access (``tfds`` array_record data
sources: no TensorFlow needed). Nothing is ever downloaded.

A set must have features 'image' and 'label'. Its directory is ``data_dir`` if given, else
``$TFDS_DATA_DIR``. A set prepared in TFDS' default tfrecord format is read sequentially through
TensorFlow when it is installed (``TFRecordSplit``); without it, opening one is a one-line error
saying how to prepare it as array_record.

    root = data_dir(given)                     # the one lookup of the TFDS directory
    tfds_set = open_set(name, root, where)     # checked: known, prepared
    x, y = read(tfds_set.splits["train"], where)   # pixels as stored (often uint8), int32 labels

``glassjax.data.sources.TFDSSource`` reads a split in batches for streaming fits.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

__all__ = ["ENV", "data_dir", "prepared_names", "TFDSSet", "TFRecordSplit", "open_set", "check_file_format", "read"]

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
    names = tuple(names) if names else None
    file_format = check_file_format(builder.info.file_format, name, root, where)
    if file_format == "tfrecord":
        splits = {split: TFRecordSplit(builder, split) for split in builder.info.splits}
        return TFDSSet(name, root, splits, names)
    return TFDSSet(name, root, dict(builder.as_data_source()), names)


def check_file_format(file_format: Any, name: str, root: str, where: str) -> str:
    """'array_record', or 'tfrecord' when TensorFlow is installed to read it; else a one-line ValueError.

    ``file_format``: the set's ``info.file_format`` (None for sets prepared before TFDS recorded
    it: those are tfrecord, TFDS' default).
    """
    import importlib.util

    value = getattr(file_format, "value", file_format) or "tfrecord"
    if value == "array_record":
        return value
    if value == "tfrecord":
        if importlib.util.find_spec("tensorflow") is not None:
            return value
        raise ValueError(f"{where}: {name!r} in {root} is prepared as tfrecord, which needs TensorFlow; "
                         f"pip install tensorflow, or prepare it as array_record (no TensorFlow): "
                         f"tfds build {name} --data_dir {root} --file_format array_record")
    raise ValueError(f"{where}: expected {name!r} prepared as array_record (or tfrecord with TensorFlow), got file "
                     f"format {value}; prepare it again: tfds build {name} --data_dir {root} --file_format array_record")


class TFRecordSplit:
    """A split of a set prepared as tfrecord, read sequentially through TensorFlow (``tf.data``).

    ``len()`` is its number of examples; ``batches(batch_size, process_index, process_count)``
    yields (images, labels) numpy batches of the process's contiguous range
    (``tfds.even_splits``), in file order.
    """

    def __init__(self, builder: Any, split: str, process_index: int = 0, process_count: int = 1):
        self.builder, self.split, self.process_index, self.process_count = builder, split, process_index, process_count

    def _sub_split(self):
        if self.process_count == 1:
            return self.split
        import tensorflow_datasets as tfds

        return tfds.even_splits(self.split, self.process_count)[self.process_index]

    def __len__(self) -> int:
        total = self.builder.info.splits[self.split].num_examples
        # even_splits: the first (total % count) ranges hold one example more
        return total // self.process_count + int(self.process_index < total % self.process_count)

    def shard(self, process_index: int, process_count: int) -> "TFRecordSplit":
        if self.process_count != 1:
            raise ValueError(f"TFRecordSplit: expected an unsharded split, got shard {self.process_index} of {self.process_count}")
        return TFRecordSplit(self.builder, self.split, process_index, process_count)

    def batches(self, batch_size: int, where: str):
        import tensorflow_datasets as tfds

        dataset = self.builder.as_dataset(split=self._sub_split(), batch_size=batch_size, shuffle_files=False)
        for batch in tfds.as_numpy(dataset):
            if "image" not in batch or "label" not in batch:
                raise ValueError(f"{where}: expected features 'image' and 'label', got {sorted(batch)}")
            yield np.asarray(batch["image"]), np.asarray(batch["label"], np.int32)


def read(records: Any, where: str, start: int = 0, stop: int | None = None, *,
         indices: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Records ``start:stop`` (or the given ``indices``) of a split as (images (B, ...) as stored,
    labels (B,) int32). A ``TFRecordSplit`` is read whole, in order, whatever the range."""
    if isinstance(records, TFRecordSplit):
        parts = list(records.batches(1024, where))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if indices is None:
        stop = len(records) if stop is None else stop
        indices = range(start, stop)
    batch = records.__getitems__([int(i) for i in indices])
    if batch and ("image" not in batch[0] or "label" not in batch[0]):
        raise ValueError(f"{where}: expected features 'image' and 'label', got {sorted(batch[0])}")
    return np.stack([np.asarray(r["image"]) for r in batch]), np.asarray([r["label"] for r in batch], np.int32)

