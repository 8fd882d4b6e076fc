"""Batch sources for streaming fits: data that is read in batches, once per pass, never all at once.

A source yields (images, labels) batches: images (B, H, W) or (B, H, W, C), float in [0, 1] or
uint8; labels (B,) int. It is either re-iterable (each ``iter(source)`` starts again from the
first batch; a list of pairs will do) or a callable with no arguments that returns a fresh
iterator (a generator function). ``GlassBox.fit`` makes one pass per layer, so a one-shot
iterator is refused. Batch sizes may vary; ``rebatch`` cuts them into fixed-size batches so
every pass compiles once.

    ArraySource(x, y, batch_size)        arrays already in memory
    TFDSSource(name, split, data_dir)    a prepared TensorFlow Datasets set, read record by record
    SyntheticSource(n, ...)              generated on the fly (benchmarks of memory at scale)
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np

from glassjax.core import arrays
from glassjax.data import loader as data
from glassjax.data import tfds

__all__ = ["ArraySource", "TFDSSource", "SyntheticSource", "TFDSStream", "tfds_stream", "is_source", "batches", "rebatch"]


class ArraySource:
    """Batches of ``batch_size`` rows of in-memory images x (N, ...) and labels y (N,)."""

    def __init__(self, x: Any, y: Any, batch_size: int = 1024):
        if not hasattr(x, "shape") or not hasattr(y, "shape") or np.shape(x)[:1] != np.shape(y)[:1]:
            raise ValueError(f"ArraySource: expected arrays x (N, ...) and y (N,), got {np.shape(x)} and {np.shape(y)}")
        arrays.as_int(batch_size, "ArraySource", "batch_size")
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return int(np.shape(self.x)[0])

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self), self.batch_size):
            yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


class TFDSSource:
    """A split of a prepared TFDS set (features 'image' and 'label'), read ``batch_size`` records at a time.

    Random access to array_record files (``glassjax.data.tfds``; no TensorFlow), from
    ``data_dir`` or ``$TFDS_DATA_DIR``. Nothing is downloaded.
    """

    def __init__(self, name: str, split: str = "train", *, data_dir: str | None = None, batch_size: int = 1024):
        arrays.as_int(batch_size, "TFDSSource", "batch_size")
        tfds_set = tfds.open_set(name, tfds.data_dir(data_dir), "TFDSSource")
        if split not in tfds_set.splits:
            raise ValueError(f"TFDSSource: expected a split of {name!r} ({', '.join(tfds_set.splits)}), got {split!r}")
        self.records = tfds_set.splits[split]
        self.name, self.split, self.batch_size, self.class_names = name, split, batch_size, tfds_set.class_names

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self), self.batch_size):
            yield tfds.read(self.records, f"TFDSSource {self.name}/{self.split}", start, min(start + self.batch_size, len(self)))


class SyntheticSource:
    """``n`` generated images (n, H, W, C) uint8 in ``num_classes`` classes, the same on every pass.

    Class c is noise plus a bright 3-row bar whose distance from the top depends on c.
    Batch i is drawn from ``seed`` and i alone: any pass, any order, the same pixels.
    """

    def __init__(self, n: int, shape: tuple[int, int, int] = (28, 28, 1), *, num_classes: int = 10, batch_size: int = 1024, seed: int = 0):
        arrays.as_int(batch_size, "SyntheticSource", "batch_size")
        if not isinstance(n, int) or n < 1 or len(shape) != 3 or min(shape) < 1 or num_classes < 2:
            raise ValueError(f"SyntheticSource: expected n >= 1, shape (H, W, C), num_classes >= 2, got {n}, {shape}, {num_classes}")
        self.n, self.image_shape, self.num_classes, self.batch_size, self.seed = n, tuple(shape), num_classes, batch_size, seed

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        h, w, c = self.image_shape
        for i, start in enumerate(range(0, self.n, self.batch_size)):
            rng = np.random.default_rng([self.seed, i])
            b = min(self.batch_size, self.n - start)
            y = rng.integers(0, self.num_classes, b).astype(np.int32)
            x = rng.integers(0, 96, (b, h, w, c), dtype=np.uint8)
            # bars at distinct distances from the centre, so classes stay apart even under D4
            rows = (y * max(h // 2 - 3, 0)) // (self.num_classes - 1)
            for r in range(3):
                x[np.arange(b), rows + r] = 255
            yield x, y


class TFDSStream(NamedTuple):
    """A TFDS set to fit by streaming: its train split as a source, its test split in memory
    (a ``data.Dataset`` with empty train arrays and the class names)."""

    train: TFDSSource
    test: data.Dataset


def tfds_stream(name: str, data_dir: str | None = None) -> TFDSStream | None:
    """``name``'s train split as a TFDSSource and its test split loaded, or None when ``name``
    is bundled, not a prepared TFDS set, or has no test split (``data.load`` then splits the
    train split itself, which needs it in memory)."""
    root = tfds.data_dir(data_dir)
    if name in data.BUNDLED or not root:
        return None
    try:
        splits = tfds.open_set(name, root, "tfds_stream").splits
    except ValueError:  # unknown, unreadable or not prepared: data.load reports it
        return None
    if "train" not in splits or "test" not in splits:
        return None
    train, test = TFDSSource(name, "train", data_dir=root), TFDSSource(name, "test", data_dir=root)
    x_test, y_test = tfds.read(test.records, f"{name}/test")
    x_test = data.as_images(x_test, f"{name}/test")
    names = test.class_names or tuple(str(c) for c in range(int(y_test.max()) + 1))
    empty = np.zeros((0,) + x_test.shape[1:], np.float32)
    return TFDSStream(train, data.Dataset(name, empty, np.zeros(0, np.int32), x_test, y_test, names))


def is_source(obj: Any) -> bool:
    """Whether ``obj`` is a batch source rather than an array of images."""
    if hasattr(obj, "shape") or isinstance(obj, (str, bytes)) or data.is_image_list(obj):
        return False
    return callable(obj) or isinstance(obj, Iterable)


def batches(source: Any, where: str) -> Iterator[tuple[Any, Any]]:
    """A fresh pass over ``source``: its (images, labels) batches from the first one."""
    if callable(source):
        return iter(source())
    if not isinstance(source, Iterable) or isinstance(source, (str, bytes)):
        raise TypeError(f"{where}: expected images, a re-iterable source of (images, labels) batches or a callable returning one, got {type(source).__name__}")
    if iter(source) is source:
        raise TypeError(f"{where}: expected a re-iterable source (fitting makes several passes), got a one-shot {type(source).__name__}; "
                        "pass a list, a source object or a function returning a fresh iterator")
    return iter(source)


def rebatch(pairs: Iterable[tuple[Any, Any]], batch_size: int, where: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images, labels) batches of any sizes -> batches of exactly ``batch_size`` rows (the last one shorter).

    Images are checked and converted by ``data.as_images`` (uint8 -> [0, 1] float32); every
    batch must have the image shape of the first.
    """
    held_x: list[np.ndarray] = []
    held_y: list[np.ndarray] = []
    held, shape = 0, None
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{where}: expected a source of (images, labels) batches, got an item of type "
                            f"{type(pair).__name__}{'' if not hasattr(pair, 'shape') else f' and shape {pair.shape}'}")
        x, y = pair
        x = data.as_images(x, f"{where} images")
        y = data.as_labels(y, x.shape[0], f"{where} labels", min_classes=1)
        if shape is None:
            shape = x.shape[1:]
        elif x.shape[1:] != shape:
            raise ValueError(f"{where}: expected every batch of images {shape}, got a batch of shape {x.shape}")
        held_x.append(x)
        held_y.append(y)
        held += x.shape[0]
        if held < batch_size:
            continue
        x, y = np.concatenate(held_x), np.concatenate(held_y)
        cut = held - held % batch_size
        for start in range(0, cut, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        held_x, held_y, held = [x[cut:]], [y[cut:]], held - cut
    if held:
        yield np.concatenate(held_x), np.concatenate(held_y)
