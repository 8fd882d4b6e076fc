"""Batch sources for streaming fits: data that is read in batches, once per pass, never all at once.

A source yields (images, labels) batches: images (B, H, W) or (B, H, W, C), float in [0, 1] or
uint8; labels (B,) int. It is either re-iterable (each ``iter(source)`` starts again from the
first batch; a list of pairs will do) or a callable with no arguments that returns a fresh
iterator (a generator function). ``GlassBox.fit`` makes one pass per layer, so a one-shot
iterator is refused. Batch sizes may vary; ``rebatch`` cuts them into fixed-size batches so
every pass compiles once.

    ArraySource(x, y, batch_size)        arrays already in memory
    TFDSSource(name, split, data_dir)    a prepared TensorFlow Datasets set, read record by record
    IndexedSource(reader, indices)       rows of a random-access reader: a user's image folder,
                                         .npz, Hugging Face or parquet set (``glassjax.data.user``)
    SyntheticSource(n, ...)              generated on the fly (benchmarks of memory at scale)

Every source above has ``shard(process_index, process_count, contiguous=True)``: the same kind
of source restricted to one process's share (``shard_indices``): by default the contiguous
block of rows ``n * i // P`` to ``n * (i + 1) // P`` (``data.sharding.block``'s rule: shares
taken in process order are the source itself), with ``contiguous=False`` every P-th row from the
i-th (each share keeps the class mix of a class-sorted folder). The shares of processes 0..P-1
are disjoint, cover every example exactly once, differ in size by at most one example
(SyntheticSource: one batch) and depend on nothing but (i, P): every process computes its own
without talking to the others. ``shard(source, i, P)`` is the same as a function.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np

from glassjax.core import arrays
import glassjax.data.images as images
import glassjax.data.tfds as tfds
import glassjax.data.loader as data

__all__ = ["ArraySource", "TFDSSource", "IndexedSource", "SyntheticSource", "Stream", "TFDSStream", "tfds_stream", "stream",
           "shard", "shard_indices", "is_source", "batches", "rebatch"]


def shard_indices(indices: Any, process_index: int, process_count: int, *, contiguous: bool = True) -> np.ndarray:
    """Process i = ``process_index``'s share of ``indices`` (an int n: range(n)) among P = ``process_count``.

    contiguous (default): positions n * i // P to n * (i + 1) // P (the rule of
    ``data.sharding.block``; in process order the shares are ``indices`` itself). Else strided:
    every P-th position from the i-th (each share keeps the class mix of a class-sorted list).
    """
    count = arrays.as_int(process_count, "shard", "process_count")
    index = arrays.as_int(process_index, "shard", "process_index", minimum=0)
    if index >= count:
        raise ValueError(f"shard: expected process_index in 0..{count - 1}, got {index}")
    indices = np.arange(indices) if isinstance(indices, (int, np.integer)) else np.asarray(indices)
    if contiguous:
        n = indices.size
        return indices[n * index // count : n * (index + 1) // count]
    return indices[index::count]


def shard(source: Any, process_index: int, process_count: int, *, contiguous: bool = True) -> Any:
    """``source.shard(process_index, process_count, contiguous=...)``; TypeError for a source without one
    (a list of batches or a generator function: split those by hand)."""
    if not hasattr(source, "shard"):
        raise TypeError(f"shard: expected a source with a shard method (ArraySource, TFDSSource, IndexedSource, "
                        f"SyntheticSource), got {type(source).__name__}")
    return source.shard(process_index, process_count, contiguous=contiguous)


class ArraySource:
    """Batches of ``batch_size`` rows of in-memory images x (N, ...) and labels y (N,)."""

    def __init__(self, x: Any, y: Any, batch_size: int = 1024, *, indices: Any = None):
        if not hasattr(x, "shape") or not hasattr(y, "shape") or np.shape(x)[:1] != np.shape(y)[:1]:
            raise ValueError(f"ArraySource: expected arrays x (N, ...) and y (N,), got {np.shape(x)} and {np.shape(y)}")
        arrays.as_int(batch_size, "ArraySource", "batch_size")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.indices = None if indices is None else np.asarray(indices)  # None: every row, sliced

    def __len__(self) -> int:
        return int(np.shape(self.x)[0]) if self.indices is None else int(self.indices.size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self), self.batch_size):
            if self.indices is None:
                yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:
                rows = self.indices[start : start + self.batch_size]
                yield self.x[rows], self.y[rows]

    def shard(self, process_index: int, process_count: int, *, contiguous: bool = True) -> "ArraySource":
        """This source restricted to one process's rows (``shard_indices``)."""
        rows = np.arange(int(np.shape(self.x)[0])) if self.indices is None else self.indices
        return ArraySource(self.x, self.y, self.batch_size,
                           indices=shard_indices(rows, process_index, process_count, contiguous=contiguous))


class TFDSSource:
    """A split of a prepared TFDS set (features 'image' and 'label'), read ``batch_size`` records at a time.

    Random access to array_record files (``glassjax.data.tfds``; no TensorFlow), from
    ``data_dir`` or ``$TFDS_DATA_DIR``; a tfrecord set is read in order through TensorFlow when
    it is installed. Nothing is downloaded. ``image_size`` (H, W) resizes every batch
    (``images.resize``). ``shard``: array_record by ``shard_indices``; tfrecord always by
    contiguous ranges (``tfds.even_splits``).
    """

    def __init__(self, name: str, split: str = "train", *, data_dir: str | None = None, batch_size: int = 1024,
                 image_size: Any = None):
        arrays.as_int(batch_size, "TFDSSource", "batch_size")
        tfds_set = tfds.open_set(name, tfds.data_dir(data_dir), "TFDSSource")
        if split not in tfds_set.splits:
            raise ValueError(f"TFDSSource: expected a split of {name!r} ({', '.join(tfds_set.splits)}), got {split!r}")
        self.records = tfds_set.splits[split]
        self.name, self.split, self.batch_size, self.class_names = name, split, batch_size, tfds_set.class_names
        self.image_size = images.image_size(image_size, "TFDSSource image_size")
        self.indices = None  # None: every record, in order

    def __len__(self) -> int:
        return len(self.records) if self.indices is None else int(self.indices.size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        where = f"TFDSSource {self.name}/{self.split}"
        if isinstance(self.records, tfds.TFRecordSplit):
            for x, y in self.records.batches(self.batch_size, where):
                yield images.resize(x if x.ndim == 4 else x[..., None], self.image_size), y
            return
        for start in range(0, len(self), self.batch_size):
            if self.indices is None:
                x, y = tfds.read(self.records, where, start, min(start + self.batch_size, len(self)))
            else:
                x, y = tfds.read(self.records, where, indices=self.indices[start : start + self.batch_size])
            yield (x if self.image_size is None else images.resize(x if x.ndim == 4 else x[..., None], self.image_size)), y

    def shard(self, process_index: int, process_count: int, *, contiguous: bool = True) -> "TFDSSource":
        """This split restricted to one process's records."""
        out = copy.copy(self)
        if isinstance(self.records, tfds.TFRecordSplit):
            out.records = self.records.shard(process_index, process_count)
        else:
            rows = np.arange(len(self.records)) if self.indices is None else self.indices
            out.indices = shard_indices(rows, process_index, process_count, contiguous=contiguous)
        return out


class IndexedSource:
    """Rows ``indices`` (default: all) of a random-access ``reader``, ``batch_size`` at a time, in order.

    A reader (``glassjax.data.user``: image folders, .npz, Hugging Face, parquet) has
    ``name``, ``class_names``, ``image_shape`` (H, W, C), ``labels`` (N,) int32 of every row
    (cheap: no pixels) and ``read(indices) -> (images (B, H, W, C) uint8 or float, labels (B,))``.
    Only one batch is decoded at a time, the next one in a background thread while the
    current one is used.
    """

    def __init__(self, reader: Any, indices: Any = None, *, batch_size: int = 1024):
        arrays.as_int(batch_size, "IndexedSource", "batch_size")
        self.reader, self.batch_size = reader, batch_size
        self.indices = np.arange(len(reader.labels)) if indices is None else np.asarray(indices, np.int64)

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.reader.class_names

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.reader.image_shape

    @property
    def labels(self) -> np.ndarray:
        """Labels (len(self),) int32 of this source's rows, without reading a pixel."""
        return self.reader.labels[self.indices]

    def __len__(self) -> int:
        return int(self.indices.size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from concurrent.futures import ThreadPoolExecutor

        starts = range(0, len(self), self.batch_size)
        if not starts:
            return
        with ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(self.reader.read, self.indices[: self.batch_size])
            for start in starts:
                batch = ahead.result()
                following = self.indices[start + self.batch_size : start + 2 * self.batch_size]
                if following.size:
                    ahead = pool.submit(self.reader.read, following)
                yield batch

    def shard(self, process_index: int, process_count: int, *, contiguous: bool = True) -> "IndexedSource":
        """This source restricted to one process's rows (``shard_indices``)."""
        return IndexedSource(self.reader, shard_indices(self.indices, process_index, process_count, contiguous=contiguous),
                             batch_size=self.batch_size)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row in memory: images (N, H, W, C) float32 in [0, 1] and labels (N,) int32."""
        xs, ys = [], []
        for x, y in self:
            xs.append(data.as_images(x, self.name))
            ys.append(np.asarray(y, np.int32))
        if not xs:
            return np.zeros((0,) + tuple(self.image_shape), np.float32), np.zeros(0, np.int32)
        return np.concatenate(xs), np.concatenate(ys)


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

        self.batch_ids = None  # None: every batch; a shard keeps some of them

    def _ids(self) -> np.ndarray:
        return np.arange(-(-self.n // self.batch_size)) if self.batch_ids is None else self.batch_ids

    def __len__(self) -> int:
        ids = self._ids()
        last = -(-self.n // self.batch_size) - 1
        return int(ids.size * self.batch_size - np.count_nonzero(ids == last) * (-self.n % self.batch_size))

    def shard(self, process_index: int, process_count: int, *, contiguous: bool = True) -> "SyntheticSource":
        """This source restricted to one process's batches (``shard_indices`` of the batch numbers:
        the same pixels as in the whole source, shares differing by at most one batch)."""
        out = copy.copy(self)
        out.batch_ids = shard_indices(self._ids(), process_index, process_count, contiguous=contiguous)
        return out

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        h, w, c = self.image_shape
        for i in self._ids():
            i, start = int(i), int(i) * self.batch_size
            rng = np.random.default_rng([self.seed, i])
            b = min(self.batch_size, self.n - start)
            y = rng.integers(0, self.num_classes, b).astype(np.int32)
            x = rng.integers(0, 96, (b, h, w, c), dtype=np.uint8)
            # bars at distinct distances from the centre, so classes stay apart even under D4
            rows = (y * max(h // 2 - 3, 0)) // (self.num_classes - 1)
            for r in range(3):
                x[np.arange(b), rows + r] = 255
            yield x, y


class Stream(NamedTuple):
    """A data set to fit by streaming: its train split as a source, its test split in memory
    (a ``data.Dataset`` with empty train arrays and the class names)."""

    train: Any
    test: data.Dataset


TFDSStream = Stream


def stream(name: str, data_dir: str | None = None, *, seed: int = 0, image_size: Any = None,
           batch_size: int = 1024) -> Stream | None:
    """``name``'s train split as a source and its test split loaded: a user's folder, .npz, Hugging
    Face or parquet set (``glassjax.data.user``: the seeded stratified split when it has no test
    split), or a prepared TFDS set with a test split (``tfds_stream``); None otherwise (bundled
    sets load into memory)."""
    import glassjax.data.user as user

    if name in data.BUNDLED:
        return None
    if user.is_user_path(name):
        opened = user.open_path(name, seed=seed, image_size=image_size, batch_size=batch_size)
        x_test, y_test = opened.test.arrays()
        empty = np.zeros((0,) + tuple(opened.train.image_shape), np.float32)
        return Stream(opened.train, data.Dataset(opened.name, empty, np.zeros(0, np.int32), x_test, y_test,
                                                 opened.class_names))
    return tfds_stream(name, data_dir, image_size=image_size)


def tfds_stream(name: str, data_dir: str | None = None, *, image_size: Any = None) -> Stream | None:
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
    train = TFDSSource(name, "train", data_dir=root, image_size=image_size)
    test = TFDSSource(name, "test", data_dir=root, image_size=image_size)
    x_test, y_test = tfds.read(test.records, f"{name}/test")
    x_test = images.resize(data.as_images(x_test, f"{name}/test"), test.image_size)
    names = test.class_names or tuple(str(c) for c in range(int(y_test.max()) + 1))
    empty = np.zeros((0,) + x_test.shape[1:], np.float32)
    return Stream(train, data.Dataset(name, empty, np.zeros(0, np.int32), x_test, y_test, names))


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
